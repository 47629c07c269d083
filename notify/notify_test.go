package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/queue"
	"github.com/sluicehq/sluice/queue/driver"
	"github.com/sluicehq/sluice/queue/memqueue"
	"github.com/sluicehq/sluice/queue/natsqueue"
	"github.com/sluicehq/sluice/store/storetest"
)

func natsURL() string {
	if u := os.Getenv("SLUICE_TEST_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

// env is one bridge under test: an inbox on the machine's NATS, a memqueue
// bus with a subscription the test reads, and recorded dead letters.
type env struct {
	t       *testing.T
	nc      *nats.Conn
	js      jetstream.JetStream
	subject string
	inbox   driver.Subscription
	bus     *failingTopic
	jobs    *queue.Subscription
	bridge  *Bridge

	mu        sync.Mutex
	dead      []deadLetter
	failDLQ   atomic.Int64 // DeadLetter calls left to fail
	dlqCalls  atomic.Int64
	runErr    chan error
	cancelRun context.CancelFunc
}

type deadLetter struct {
	body   []byte
	reason string
}

// failingTopic is a bus backend whose Publish fails while fail is set.
type failingTopic struct {
	driver.Topic
	fail     atomic.Bool
	attempts atomic.Int64
}

func (f *failingTopic) Publish(ctx context.Context, body []byte, header map[string]string) error {
	f.attempts.Add(1)
	if f.fail.Load() {
		return errors.New("bus unavailable (test)")
	}
	return f.Topic.Publish(ctx, body, header)
}

func newEnv(t *testing.T, enc event.KeyEncoding) *env {
	t.Helper()
	nc, err := nats.Connect(natsURL(), nats.Timeout(3*time.Second))
	if err != nil {
		t.Fatalf("NATS at %s is not reachable: %v; run ./scripts/test.sh (which starts nats-server -js) or point SLUICE_TEST_NATS_URL at a JetStream server", natsURL(), err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, nc: nc, js: js, subject: "notifytest." + strings.ToLower(rand.Text()) + ".s3"}
	t.Cleanup(func() { js.DeleteStream(context.Background(), natsqueue.InboxStreamName(e.subject)) })
	ctx := context.Background()
	e.inbox, err = natsqueue.OpenInbox(ctx, nc, e.subject, "bridge", &natsqueue.InboxOptions{AckWait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e.bus = &failingTopic{Topic: memqueue.New()}
	bus := queue.NewTopic("mem://bus", e.bus)
	e.jobs, err = bus.Subscribe(ctx, "jobs", nil)
	if err != nil {
		t.Fatal(err)
	}
	e.bridge = &Bridge{
		Name:        "nats " + e.subject,
		Inbox:       e.inbox,
		Bus:         bus,
		KeyEncoding: enc,
		DeadLetter: func(ctx context.Context, body []byte, reason string) error {
			e.dlqCalls.Add(1)
			if e.failDLQ.Add(-1) >= 0 {
				return errors.New("dead-letter store unavailable (test)")
			}
			e.mu.Lock()
			defer e.mu.Unlock()
			e.dead = append(e.dead, deadLetter{slices.Clone(body), reason})
			return nil
		},
		Retry:     fault.Retry{For: 300 * time.Millisecond, Backoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond},
		Heartbeat: 50 * time.Millisecond,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	return e
}

func (e *env) start() {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancelRun = cancel
	e.runErr = make(chan error, 1)
	go func() { e.runErr <- e.bridge.Run(ctx) }()
	e.t.Cleanup(e.stop)
}

func (e *env) stop() {
	if e.cancelRun == nil {
		return
	}
	e.cancelRun()
	e.cancelRun = nil
	select {
	case err := <-e.runErr:
		if err != nil {
			e.t.Errorf("Run returned %v after cancel", err)
		}
	case <-time.After(10 * time.Second):
		e.t.Error("Run did not return within 10s of cancel")
	}
}

// publish puts body on the inbox subject as a foreign server would, and
// waits for the stream to hold it.
func (e *env) publish(body []byte) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := e.js.Publish(ctx, e.subject, body); err != nil {
		e.t.Fatal(err)
	}
}

// records reads n messages from the bus, acking them, and decodes them as
// the jobs do.
func (e *env) records(n int) []event.Record {
	e.t.Helper()
	var out []event.Record
	for len(out) < n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		m, err := e.jobs.Receive(ctx)
		cancel()
		if err != nil {
			e.t.Fatalf("bus: %d of %d records received: %v", len(out), n, err)
		}
		recs, err := event.Parse(m.Body, event.KeyURL)
		if err != nil {
			e.t.Fatalf("bus message is not in sluice's format: %v: %s", err, m.Body)
		}
		if len(recs) != 1 {
			e.t.Fatalf("bus message carries %d records, want one: %s", len(recs), m.Body)
		}
		if m.Header[HeaderInboxMessage] == "" {
			e.t.Errorf("bus message without %s header", HeaderInboxMessage)
		}
		out = append(out, recs[0])
		if err := m.Ack(context.Background()); err != nil {
			e.t.Fatal(err)
		}
	}
	return out
}

// waitFor polls cond until it holds or 15s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *env) inboxPending() int {
	n, err := e.inbox.Pending(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) busPending() int {
	n, err := e.jobs.Pending(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func sample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "event", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBridgePublishesEveryDialectDecodedAndAcksTestEventsAndDeadLettersGarbage(t *testing.T) {
	e := newEnv(t, event.KeyURL)
	e.start()
	for _, f := range []string{"aws-sqs.json", "test-event.json", "sns.json", "minio.json", "sns-test-event.json", "eventbridge-created.json", "eventbridge-deleted.json"} {
		e.publish(sample(t, f))
	}
	e.publish([]byte("<html>502 Bad Gateway</html>"))

	recs := e.records(7)
	var keys []string
	for _, r := range recs {
		keys = append(keys, r.EventName+" "+r.S3.Bucket.Name+"/"+r.S3.Object.Key+"@"+r.S3.Object.ETag)
	}
	want := []string{
		"ObjectCreated:Put amzn-s3-demo-bucket/data/2024-05-01 2PM/hydro+power consumption.csv@d41d8cd98f00b204e9800998ecf8427e",
		"ObjectCreated:CompleteMultipartUpload amzn-s3-demo-bucket/café/日本 語.csv@b1946ac92492d2347c6235b4d2611184-10",
		"ObjectCreated:Put amzn-s3-demo-bucket/data/2024-05-01 2PM/hydro+power consumption.csv@d41d8cd98f00b204e9800998ecf8427e",
		"ObjectCreated:CompleteMultipartUpload amzn-s3-demo-bucket/café/日本 語.csv@b1946ac92492d2347c6235b4d2611184-10",
		"ObjectCreated:Put lake/data/2024-05-01/a b+c.csv@9b2cf535f27731c974343645a3985328",
		"ObjectCreated:Put amzn-s3-demo-bucket1/data/2021-11-12 2PM/a+b café.csv@b1946ac92492d2347c6235b4d2611184",
		"ObjectRemoved:DeleteMarkerCreated amzn-s3-demo-bucket1/example-key@",
	}
	if !slices.Equal(keys, want) {
		t.Errorf("bus records:\n%s\nwant:\n%s", strings.Join(keys, "\n"), strings.Join(want, "\n"))
	}
	waitFor(t, "the inbox to be fully acked", func() bool {
		return e.bridge.Stats.DeadLettered.Load() == 1 && e.bridge.Stats.Tests.Load() == 2 && e.inboxPending() == 0
	})
	if n := e.busPending(); n != 0 {
		t.Errorf("%d unexpected extra messages on the bus", n)
	}
	if got := e.bridge.Stats.Published.Load(); got != 7 {
		t.Errorf("Stats.Published = %d, want 7", got)
	}
	if got := e.bridge.Stats.Received.Load(); got != 8 {
		t.Errorf("Stats.Received = %d, want 8 (no redeliveries)", got)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.dead) != 1 || string(e.dead[0].body) != "<html>502 Bad Gateway</html>" ||
		!strings.Contains(e.dead[0].reason, "not an S3 event notification") || !strings.Contains(e.dead[0].reason, e.subject) {
		t.Fatalf("dead letters = %+v", e.dead)
	}
}

func TestBridgeDecodesRawKeysForVersitygwInboxes(t *testing.T) {
	e := newEnv(t, event.KeyRaw)
	e.start()
	e.publish(sample(t, "versitygw.json"))
	r := e.records(1)[0]
	if r.S3.Object.Key != "data/2024-05-01 2PM/a+b %2B café.csv" || r.S3.Object.ETag != "9b2cf535f27731c974343645a3985328" || r.EventName != event.ObjectCreatedPut {
		t.Fatalf("record = %+v", r)
	}
}

func TestBridgeKeepsTheInboxMessageWhileTheBusFailsAndPublishesItOnceTheBusWorks(t *testing.T) {
	e := newEnv(t, event.KeyURL)
	e.bus.fail.Store(true)
	e.start()
	e.publish(sample(t, "aws-sqs.json"))

	// The retry budget (300ms) runs out, the message is nacked and comes
	// back: received again, never acked, nothing on the bus.
	waitFor(t, "the notification to be redelivered while the bus fails", func() bool {
		return e.bridge.Stats.Received.Load() >= 2 && e.bus.attempts.Load() >= 4
	})
	if n := e.inboxPending(); n != 1 {
		t.Fatalf("inbox pending = %d while the bus fails; the notification must stay", n)
	}
	if n := e.busPending(); n != 0 {
		t.Fatalf("bus holds %d messages although every publish failed", n)
	}
	if e.bridge.Stats.Published.Load() != 0 || e.bridge.Stats.PublishRetries.Load() == 0 {
		t.Fatalf("stats: published %d, retries %d", e.bridge.Stats.Published.Load(), e.bridge.Stats.PublishRetries.Load())
	}

	e.bus.fail.Store(false)
	recs := e.records(2)
	if recs[0].S3.Object.Key != "data/2024-05-01 2PM/hydro+power consumption.csv" || recs[1].S3.Object.Key != "café/日本 語.csv" {
		t.Fatalf("records = %+v", recs)
	}
	waitFor(t, "the inbox message to be acked", func() bool { return e.inboxPending() == 0 })
	if got := e.bridge.Stats.DeadLettered.Load(); got != 0 {
		t.Fatalf("a transient bus failure dead-lettered %d notifications", got)
	}
}

func TestBridgeDoesNotAckAnUnreadableNotificationUntilItIsDeadLettered(t *testing.T) {
	e := newEnv(t, event.KeyURL)
	e.failDLQ.Store(2)
	e.start()
	e.publish([]byte(`{"Records":"x"}`))
	waitFor(t, "the notification to be dead-lettered on the third try", func() bool {
		return e.bridge.Stats.DeadLettered.Load() == 1 && e.inboxPending() == 0
	})
	if calls, got := e.dlqCalls.Load(), e.bridge.Stats.Received.Load(); calls != 3 || got != 3 {
		t.Fatalf("DeadLetter called %d times over %d deliveries; want 3 and 3 (failed twice, nacked, delivered again)", calls, got)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.dead) != 1 || !strings.Contains(e.dead[0].reason, "its Records are not S3 event records") {
		t.Fatalf("dead letters = %+v", e.dead)
	}
}

func TestBridgeSkipsRecordsOfOtherBuckets(t *testing.T) {
	e := newEnv(t, event.KeyURL)
	e.bridge.Bucket = "lake"
	e.start()
	e.publish(sample(t, "aws-sqs.json")) // bucket amzn-s3-demo-bucket
	e.publish(sample(t, "minio.json"))   // bucket lake
	if r := e.records(1)[0]; r.S3.Bucket.Name != "lake" {
		t.Fatalf("record of bucket %q published", r.S3.Bucket.Name)
	}
	waitFor(t, "both messages acked", func() bool { return e.inboxPending() == 0 })
	if e.bridge.Stats.Skipped.Load() != 2 || e.busPending() != 0 {
		t.Fatalf("skipped %d, bus pending %d", e.bridge.Stats.Skipped.Load(), e.busPending())
	}
}

func TestBridgeRefusesToRunWithoutADeadLetterDestination(t *testing.T) {
	b := &Bridge{Inbox: memSub(t), Bus: queue.NewTopic("mem://", memqueue.New())}
	if err := b.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "DeadLetter") {
		t.Fatalf("Run = %v", err)
	}
}

func memSub(t *testing.T) driver.Subscription {
	s, err := memqueue.New().Subscribe(context.Background(), "x", driver.SubscriptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBridgeCarriesVersitygwsOwnNotificationsWithARawKeyToTheBus runs a
// real versitygw publishing its bucket notifications to the inbox subject.
func TestBridgeCarriesVersitygwsOwnNotificationsWithARawKeyToTheBus(t *testing.T) {
	e := newEnv(t, event.KeyRaw)
	e.start()
	// The inbox exists (newEnv opened it) before versitygw publishes.
	v := storetest.StartVersitygw(t, "--event-nats-url", natsURL(), "--event-nats-topic", e.subject)
	v.Bucket(t, "lake")
	key := "data/2024-05-01 2PM/hydro+power consumption é.csv"
	body := []byte("Entity,Year\nNorway,2020\n")
	out, err := v.Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("lake"), Key: aws.String(key), Body: bytes.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
	var got event.Record
	for {
		r := e.records(1)[0]
		if strings.HasPrefix(r.EventName, "ObjectCreated:") {
			got = r
			break
		}
	}
	if got.S3.Object.Key != key || got.S3.Bucket.Name != "lake" || got.S3.Object.ETag != event.NormalizeETag(aws.ToString(out.ETag)) || got.S3.Object.Size != int64(len(body)) {
		t.Fatalf("record on the bus = %+v; want key %q, etag %s, size %d", got, key, aws.ToString(out.ETag), len(body))
	}
	waitFor(t, "versitygw's notification to be acked", func() bool { return e.inboxPending() == 0 })
	if d := e.bridge.Stats.DeadLettered.Load(); d != 0 {
		t.Fatalf("%d of versitygw's notifications were dead-lettered: %+v", d, e.dead)
	}
}
