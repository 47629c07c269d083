package sqsqueue

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/queue"
	"github.com/sluicehq/sluice/queue/driver"
	"github.com/sluicehq/sluice/queue/drivertest"
	"github.com/sluicehq/sluice/queue/sqsqueue/sqsfake"
)

// newClient makes a fresh SDK client for the fake, as a new process would.
func fakeClient(fake *sqsfake.Server) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:       sqsfake.Region,
		BaseEndpoint: aws.String(fake.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
	})
}

// harness runs each subtest against its own fake; Restart keeps the fake
// (its queues are the durable state) and opens the topic with a new client.
type harness struct {
	fake *sqsfake.Server
	n    int
	urls map[driver.Topic]string
}

func newHarness(ctx context.Context, t *testing.T) (drivertest.Harness, error) {
	return &harness{fake: sqsfake.Start(t), urls: map[driver.Topic]string{}}, nil
}

func (h *harness) open(ctx context.Context, u string) (driver.Topic, error) {
	top, err := Open(ctx, u, &Options{Client: fakeClient(h.fake), EmptyPolls: -1})
	if err != nil {
		return nil, err
	}
	h.urls[top] = u
	return top, nil
}

func (h *harness) MakeTopic(ctx context.Context) (driver.Topic, error) {
	h.n++
	return h.open(ctx, fmt.Sprintf("sqs://sluice-test%d?region=%s&endpoint=%s", h.n, sqsfake.Region, h.fake.URL))
}

func (h *harness) Restart(ctx context.Context, t driver.Topic) (driver.Topic, error) {
	u, ok := h.urls[t]
	if !ok {
		return nil, fmt.Errorf("restart: topic %v was not made by this harness", t)
	}
	_ = t.Close()
	return h.open(ctx, u)
}

func (h *harness) Close() {}

// SubscriptionsStartEmpty: one SQS queue per subscription holds only what
// was published after it was created.
func (h *harness) SubscriptionsStartEmpty() bool { return true }

func TestConformance(t *testing.T) {
	drivertest.RunConformanceTests(t, newHarness)
}

func TestQueueNameKeepsSimpleNamesAndHashesOthers(t *testing.T) {
	long := strings.Repeat("x", 90)
	for _, tc := range []struct{ prefix, sub, want string }{
		{"sluice-posts", "loader", "sluice-posts-loader"},
		{"sluice-posts", "load_er-2", "sluice-posts-load_er-2"},
	} {
		if got := QueueName(tc.prefix, tc.sub); got != tc.want {
			t.Errorf("QueueName(%q, %q) = %q, want %q", tc.prefix, tc.sub, got, tc.want)
		}
	}
	a, b := QueueName("p", "a.b"), QueueName("p", "a/b")
	if a == b || !strings.HasPrefix(a, "p-a_b-") || len(a) != len("p-a_b-")+10 {
		t.Errorf("QueueName of a.b = %q and of a/b = %q: want distinct p-a_b-<10 hex>", a, b)
	}
	if l := QueueName("sluice-posts", long); len(l) > 80 || !strings.HasPrefix(l, "sluice-posts-xxx") {
		t.Errorf("QueueName of a 90-byte name = %q (%d bytes), want at most 80", l, len(l))
	}
	if QueueName("p", long) == QueueName("p", long+"y") {
		t.Error("two long names that differ after the cut share a queue")
	}
}

func TestOpenRejectsBadURLs(t *testing.T) {
	ctx := context.Background()
	fake := sqsfake.Start(t)
	for _, u := range []string{
		"nats://x",
		"sqs://bad.prefix?region=us-east-1",
		"sqs://p?region=us-east-1&colour=blue",
		"sqs://p?poll_wait=21s",
		"sqs://p?endpoint=not-a-url",
		"sqs://?region=us-east-1", // no prefix, none in Options
	} {
		_, err := Open(ctx, u, &Options{Client: fakeClient(fake)})
		if err == nil || !fault.IsPermanent(err) {
			t.Errorf("Open(%q) = %v, want a permanent error", u, err)
		}
	}
	top, err := Open(ctx, "sqs://?region=us-east-1&ack_wait=5s&max_deliveries=3", &Options{Client: fakeClient(fake), Prefix: "sluice-orders"})
	if err != nil {
		t.Fatalf("Open with the prefix from Options and the engine's parameters: %v", err)
	}
	defer top.Close()
	if got := fake.QueueNames(); !maps.Equal(map[string]bool{"sluice-orders_dead-letters": true}, setOf(got)) {
		t.Errorf("queues after Open = %v, want only the dead-letter queue sluice-orders_dead-letters", got)
	}
}

func setOf(ss []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range ss {
		m[s] = true
	}
	return m
}

// Publish reaches a subscription queue another process created after this
// topic last listed the queues, once the list is refreshed, and never the
// queues of a topic whose prefix extends this one's.
func TestPublishFansOutToQueuesOfOtherProcesses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fake := sqsfake.Start(t)
	now := time.Now()
	clock := func() time.Time { return now }
	a, err := Open(ctx, "sqs://sluice-posts", &Options{Client: fakeClient(fake), Now: clock, EmptyPolls: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Publish(ctx, []byte("nobody"), nil); err == nil || !strings.Contains(err.Error(), "reach no one") {
		t.Fatalf("publish without any subscription queue = %v, want an error saying it would reach no one", err)
	}
	la, err := a.Subscribe(ctx, "loader", driver.SubscriptionOptions{AckWait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// Another process, and a topic whose prefix extends ours.
	b, err := Open(ctx, "sqs://sluice-posts", &Options{Client: fakeClient(fake), EmptyPolls: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	other, err := Open(ctx, "sqs://sluice-posts-v2", &Options{Client: fakeClient(fake), EmptyPolls: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := a.Publish(ctx, []byte("one"), nil); err != nil {
		t.Fatal(err)
	}
	audit, err := b.Subscribe(ctx, "audit", driver.SubscriptionOptions{AckWait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	v2, err := other.Subscribe(ctx, "x", driver.SubscriptionOptions{AckWait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(defaultList) // a's list of queues is stale now
	if err := a.Publish(ctx, []byte("two"), map[string]string{"K": "v"}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"one", "two"} {
		m := recvWithin(t, la, 5*time.Second)
		if string(m.Body) != want {
			t.Fatalf("loader got %q, want %q", m.Body, want)
		}
	}
	m := recvWithin(t, audit, 5*time.Second)
	if string(m.Body) != "two" || m.Header["K"] != "v" {
		t.Fatalf("audit (created by another process) got %q %v, want %q with K=v", m.Body, m.Header, "two")
	}
	if n, err := v2.Pending(ctx); err != nil || n != 0 {
		t.Errorf("the queue of topic sluice-posts-v2 holds %d messages (err %v), want 0: a publish to sluice-posts reached it", n, err)
	}
}

func recvWithin(t *testing.T, s driver.Subscription, d time.Duration) *driver.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	m, err := s.Receive(ctx)
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	return m
}

// Bodies and headers SQS cannot carry as they are survive the trip: bytes
// that are not text, a header SQS would refuse as an attribute, an empty
// value, more headers than attributes.
func TestBodiesAndHeadersSQSCannotCarryPlainlyRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fake := sqsfake.Start(t)
	top, err := Open(ctx, "sqs://sluice-t", &Options{Client: fakeClient(fake), EmptyPolls: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer top.Close()
	s, err := top.Subscribe(ctx, "loader", driver.SubscriptionOptions{AckWait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	many := map[string]string{}
	for i := range 12 {
		many[fmt.Sprintf("H%d", i)] = "v"
	}
	cases := []struct {
		body   []byte
		header map[string]string
	}{
		{[]byte{0, 1, 2, 0xff, 'x'}, map[string]string{"Content-Type": "application/octet-stream"}},
		{[]byte(`{"plain":"json ü"}`), map[string]string{"has space": "x", "Empty": ""}},
		{[]byte("many"), many},
		{[]byte("reserved"), map[string]string{"Sluice-Id": "forged", "aws.x": "y"}},
	}
	for _, c := range cases {
		if err := top.Publish(ctx, c.body, c.header); err != nil {
			t.Fatalf("publish %q: %v", c.body, err)
		}
	}
	ids := map[string]bool{}
	for _, c := range cases {
		m := recvWithin(t, s, 5*time.Second)
		if string(m.Body) != string(c.body) || !maps.Equal(m.Header, c.header) {
			t.Errorf("received %q %v, want %q %v", m.Body, m.Header, c.body, c.header)
		}
		if ids[m.ID] || m.ID == "forged" {
			t.Errorf("message %q has ID %q, want a fresh one", m.Body, m.ID)
		}
		ids[m.ID] = true
		if err := s.Ack(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
}

// With EmptyPolls, Pending does not report 0 until the subscription's long
// polls found the queue empty that many times in a row, so --once does not
// stop on SQS's lagging counts; a publish starts the count again.
func TestPendingWaitsForEmptyPolls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fake := sqsfake.Start(t)
	top, err := Open(ctx, "sqs://sluice-t?poll_wait=1s&empty_polls=2", &Options{Client: fakeClient(fake)})
	if err != nil {
		t.Fatal(err)
	}
	defer top.Close()
	s, err := top.Subscribe(ctx, "loader", driver.SubscriptionOptions{AckWait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	pending := func(want int, when string) {
		t.Helper()
		if n, err := s.Pending(ctx); err != nil || n != want {
			t.Fatalf("Pending %s = %d (err %v), want %d", when, n, err, want)
		}
	}
	pending(1, "before any long poll (unconfirmed)")
	if err := top.Publish(ctx, []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	m := recvWithin(t, s, 5*time.Second)
	pending(1, "with the message in flight")
	if err := s.Ack(ctx, m); err != nil {
		t.Fatal(err)
	}
	pending(1, "after the ack, before empty polls")
	polls := fake.Calls("ReceiveMessage")
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	go func() { _, _ = s.Receive(rctx) }() // a consumer loop, polling
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := s.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Pending stayed %d for 10s of empty polls", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if done := fake.Calls("ReceiveMessage") - polls; done < 2 {
		t.Errorf("Pending reported 0 after %d empty polls, want 2", done)
	}
	if err := top.Publish(ctx, []byte("y"), nil); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Pending(ctx); err != nil || n == 0 {
		t.Errorf("Pending after a new publish = %d (err %v), want more than 0", n, err)
	}
}

// A stale receipt handle (the message was received again after its
// visibility ran out) cannot extend the deadline: InProgress says so.
func TestInProgressAfterTheVisibilityRanOutFails(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fake := sqsfake.Start(t)
	top, err := Open(ctx, "sqs://sluice-t", &Options{Client: fakeClient(fake), EmptyPolls: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer top.Close()
	s, err := top.Subscribe(ctx, "loader", driver.SubscriptionOptions{AckWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Publish(ctx, []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	first := recvWithin(t, s, 5*time.Second)
	second := recvWithin(t, s, 5*time.Second) // after the visibility ran out
	if second.ID != first.ID || second.Deliveries != 2 {
		t.Fatalf("got %s delivery %d, want %s delivery 2", second.ID, second.Deliveries, first.ID)
	}
	err = s.InProgress(ctx, first)
	if err == nil || !strings.Contains(err.Error(), "may be delivered again") {
		t.Errorf("InProgress with the first delivery's handle = %v, want an error saying the visibility ran out", err)
	}
	if err := s.Ack(ctx, second); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Pending(ctx); err != nil || n != 0 {
		t.Errorf("Pending after the ack = %d (err %v), want 0", n, err)
	}
}

func TestClosedTopicRefusesWork(t *testing.T) {
	ctx := context.Background()
	fake := sqsfake.Start(t)
	top, err := Open(ctx, "sqs://sluice-t", &Options{Client: fakeClient(fake)})
	if err != nil {
		t.Fatal(err)
	}
	s, err := top.Subscribe(ctx, "loader", driver.SubscriptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = top.Close()
	if err := top.Publish(ctx, []byte("x"), nil); !errors.Is(err, errClosed()) {
		t.Errorf("Publish after Close = %v, want queue.ErrClosed", err)
	}
	if _, err := s.Receive(ctx); !errors.Is(err, errClosed()) {
		t.Errorf("Receive after Close = %v, want queue.ErrClosed", err)
	}
}

func errClosed() error { return queue.ErrClosed }

// Without Options.Client, Open builds a client from the URL's region and
// endpoint and the default credential chain, as the sluice binary does (an
// e2e test gives its child process AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY and the fake's URL as endpoint).
func TestOpenBuildsAClientFromTheURL(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_CONFIG_FILE", dir+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/none")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fake := sqsfake.Start(t)
	if _, err := Open(ctx, "sqs://sluice-t?endpoint="+fake.URL, nil); err == nil || !fault.IsPermanent(err) || !strings.Contains(err.Error(), "region") {
		t.Errorf("Open without a region = %v, want a permanent error asking for one", err)
	}
	top, err := Open(ctx, "sqs://sluice-t?region=us-east-1&endpoint="+fake.URL, &Options{EmptyPolls: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer top.Close()
	s, err := top.Subscribe(ctx, "loader", driver.SubscriptionOptions{AckWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Publish(ctx, []byte("hello"), nil); err != nil {
		t.Fatal(err)
	}
	if m := recvWithin(t, s, 5*time.Second); string(m.Body) != "hello" {
		t.Fatalf("got %q, want hello", m.Body)
	}
}
