package natsqueue

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/queue/driver"
	"github.com/sluicehq/sluice/queue/drivertest"
)

// embeddedHarness runs each subtest on its own embedded server; Restart shuts
// the server down and starts a new one on the same directory.
type embeddedHarness struct {
	dir  string
	e    *Embedded
	nc   *nats.Conn
	n    int
	opts map[driver.Topic]Options
}

func newEmbeddedHarness(ctx context.Context, t *testing.T) (drivertest.Harness, error) {
	h := &embeddedHarness{dir: t.TempDir(), opts: map[driver.Topic]Options{}}
	if err := h.start(ctx); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *embeddedHarness) start(ctx context.Context) error {
	e, err := StartEmbedded(ctx, h.dir, nil)
	if err != nil {
		return err
	}
	nc, err := e.Connect()
	if err != nil {
		e.Shutdown()
		return err
	}
	h.e, h.nc = e, nc
	return nil
}

func (h *embeddedHarness) MakeTopic(ctx context.Context) (driver.Topic, error) {
	h.n++
	opts := Options{Stream: fmt.Sprintf("SLUICE_test%d", h.n), Subject: fmt.Sprintf("sluice.test%d.events", h.n)}
	top, err := Open(ctx, h.nc, opts)
	if err != nil {
		return nil, err
	}
	h.opts[top] = opts
	return top, nil
}

func (h *embeddedHarness) Restart(ctx context.Context, t driver.Topic) (driver.Topic, error) {
	opts, ok := h.opts[t]
	if !ok {
		return nil, fmt.Errorf("restart: topic %v was not made by this harness", t)
	}
	_ = t.Close()
	h.nc.Close()
	h.e.Shutdown()
	if err := h.start(ctx); err != nil {
		return nil, fmt.Errorf("restart embedded server on %s: %w", h.dir, err)
	}
	top, err := Open(ctx, h.nc, opts)
	if err != nil {
		return nil, err
	}
	h.opts[top] = opts
	return top, nil
}

func (h *embeddedHarness) Close() {
	h.nc.Close()
	h.e.Shutdown()
}

func TestConformanceEmbedded(t *testing.T) {
	drivertest.RunConformanceTests(t, newEmbeddedHarness)
}

// externalURL is the NATS server the external tests use.
func externalURL() string {
	if u := os.Getenv("SLUICE_TEST_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

func connectExternal() (*nats.Conn, error) {
	url := externalURL()
	nc, err := nats.Connect(url, nats.Timeout(3*time.Second), nats.Name("sluice-natsqueue-test"))
	if err != nil {
		return nil, fmt.Errorf("cannot reach NATS at %s: %w; start nats-server with JetStream (nats-server -js) or point SLUICE_TEST_NATS_URL at one", url, err)
	}
	return nc, nil
}

// externalHarness makes a uniquely named stream per topic on the external
// server and deletes it at Close; Restart reconnects.
type externalHarness struct {
	nc      *nats.Conn
	opts    map[driver.Topic]Options
	streams []string
}

func newExternalHarness(ctx context.Context, t *testing.T) (drivertest.Harness, error) {
	nc, err := connectExternal()
	if err != nil {
		return nil, err
	}
	return &externalHarness{nc: nc, opts: map[driver.Topic]Options{}}, nil
}

func (h *externalHarness) MakeTopic(ctx context.Context) (driver.Topic, error) {
	id := strings.ToLower(rand.Text())
	opts := Options{Stream: "SLUICE_test_" + id, Subject: "sluice.test." + id + ".events"}
	h.streams = append(h.streams, opts.Stream)
	top, err := Open(ctx, h.nc, opts)
	if err != nil {
		return nil, err
	}
	h.opts[top] = opts
	return top, nil
}

func (h *externalHarness) Restart(ctx context.Context, t driver.Topic) (driver.Topic, error) {
	opts, ok := h.opts[t]
	if !ok {
		return nil, fmt.Errorf("restart: topic %v was not made by this harness", t)
	}
	_ = t.Close()
	h.nc.Close()
	nc, err := connectExternal()
	if err != nil {
		return nil, err
	}
	h.nc = nc
	top, err := Open(ctx, nc, opts)
	if err != nil {
		return nil, err
	}
	h.opts[top] = opts
	return top, nil
}

func (h *externalHarness) Close() {
	defer h.nc.Close()
	js, err := jetstream.New(h.nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range h.streams {
		_ = js.DeleteStream(ctx, s)
	}
}

func TestConformanceExternal(t *testing.T) {
	nc, err := connectExternal()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err == nil {
		_, err = js.AccountInfo(ctx)
	}
	nc.Close()
	if err != nil {
		t.Fatalf("NATS at %s has no usable JetStream: %v; start nats-server with JetStream (nats-server -js)", externalURL(), err)
	}
	drivertest.RunConformanceTests(t, newExternalHarness)
}

func TestEmbeddedRestartKeepsStreamsConsumersAndAckState(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	e, err := StartEmbedded(ctx, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Stream: "SLUICE_posts", Subject: "sluice.posts.events"}
	top, err := Open(ctx, nc, opts)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := top.Subscribe(ctx, "loader.posts", driver.SubscriptionOptions{AckWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"a", "b", "c"} {
		if err := top.Publish(ctx, []byte(b), nil); err != nil {
			t.Fatal(err)
		}
	}
	m, err := sub.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Ack(ctx, m); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Receive(ctx); err != nil { // left unacked
		t.Fatal(err)
	}
	_ = top.Close()
	nc.Close()
	e.Shutdown()

	e, err = StartEmbedded(ctx, dir, nil)
	if err != nil {
		t.Fatalf("restart on the same dir: %v", err)
	}
	defer e.Shutdown()
	// Over TCP, as another local process would connect.
	if u, err := url.Parse(e.ClientURL()); err != nil || u.Hostname() != "127.0.0.1" || u.Scheme != "nats" {
		t.Errorf("ClientURL = %q, want nats://TOKEN@127.0.0.1:PORT", e.ClientURL())
	}
	nc, err = nats.Connect(e.ClientURL())
	if err != nil {
		t.Fatalf("connect over TCP to %s: %v", e.ClientURL(), err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(ctx, opts.Stream)
	if err != nil {
		t.Fatalf("stream %s after restart: %v", opts.Stream, err)
	}
	if n := stream.CachedInfo().State.Msgs; n != 3 {
		t.Errorf("stream holds %d messages after restart, want 3", n)
	}
	cons, err := stream.Consumer(ctx, consumerName("loader.posts"))
	if err != nil {
		t.Fatalf("consumer of subscription loader.posts after restart: %v", err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.AckFloor.Stream != 1 || info.NumAckPending != 1 || info.NumPending != 1 {
		t.Errorf("consumer after restart: ack floor %d, ack pending %d, pending %d; want 1, 1, 1",
			info.AckFloor.Stream, info.NumAckPending, info.NumPending)
	}
	if info.Config.AckWait != time.Minute || info.Config.MaxDeliver != -1 || info.Config.FilterSubject != opts.Subject {
		t.Errorf("consumer config after restart = ack wait %v, max deliver %d, filter %q; want 1m, -1, %q",
			info.Config.AckWait, info.Config.MaxDeliver, info.Config.FilterSubject, opts.Subject)
	}
}

// syncBuffer is a bytes.Buffer safe for the server's and the test's
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestEmbeddedLogsThroughSlog(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e, err := StartEmbedded(context.Background(), t.TempDir(), &EmbeddedOptions{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e.Shutdown()
	if !strings.Contains(buf.String(), "level=DEBUG msg=\"nats: ") || !strings.Contains(buf.String(), "JetStream") {
		t.Errorf("the logger received no debug line about JetStream starting; got %q", buf.String())
	}
	if strings.Contains(buf.String(), "level=INFO") {
		t.Errorf("the server's routine notices reached the info level: %q", buf.String())
	}
}

func TestSecondEmbeddedServerOnTheSameDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	e, err := StartEmbedded(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := StartEmbedded(context.Background(), dir, nil)
	if err == nil {
		e2.Shutdown()
		e.Shutdown()
		t.Fatal("a second embedded server started on a store dir already in use")
	}
	if !strings.Contains(err.Error(), "in use") {
		t.Errorf("second StartEmbedded error = %v, want it to say the dir is in use", err)
	}
	e.Shutdown()
	e3, err := StartEmbedded(context.Background(), dir, nil)
	if err != nil {
		t.Fatalf("start after the first server shut down: %v", err)
	}
	e3.Shutdown()
}

func TestStartEmbeddedRefusesEmptyDir(t *testing.T) {
	if _, err := StartEmbedded(context.Background(), "", nil); err == nil || !strings.Contains(err.Error(), "store dir") {
		t.Errorf("StartEmbedded with no dir = %v, want an error about the store dir", err)
	}
}

func startTestServer(t *testing.T) *nats.Conn {
	t.Helper()
	e, err := StartEmbedded(context.Background(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := e.Connect()
	if err != nil {
		e.Shutdown()
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close(); e.Shutdown() })
	return nc
}

func TestOpenKeepsLimitsOfAnExistingStreamAndAddsSubjects(t *testing.T) {
	ctx := context.Background()
	nc := startTestServer(t)
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.events"}, MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, nc, Options{Stream: "S", Subject: "s.events"}); err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, "S")
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	if cfg.MaxAge != time.Hour {
		t.Errorf("Open changed MaxAge to %v, want the operator's 1h", cfg.MaxAge)
	}
	if strings.Join(cfg.Subjects, " ") != "s.events s.events.dlq.>" {
		t.Errorf("stream subjects = %v, want [s.events s.events.dlq.>]", cfg.Subjects)
	}
}

func TestOpenRefusesAWorkQueueStream(t *testing.T) {
	ctx := context.Background()
	nc := startTestServer(t)
	js, _ := jetstream.New(nc)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "W", Subjects: []string{"w.events"}, Retention: jetstream.WorkQueuePolicy}); err != nil {
		t.Fatal(err)
	}
	_, err := Open(ctx, nc, Options{Stream: "W", Subject: "w.events"})
	if err == nil || !strings.Contains(err.Error(), "work-queue") {
		t.Errorf("Open on a work-queue stream = %v, want an error naming work-queue retention", err)
	}
}

func TestOpenRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"empty stream", Options{Subject: "a.b"}, "Options.Stream"},
		{"dotted stream", Options{Stream: "a.b", Subject: "a.b"}, "Options.Stream"},
		{"stream with space", Options{Stream: "a b", Subject: "a.b"}, "Options.Stream"},
		{"empty subject", Options{Stream: "S"}, "Options.Subject"},
		{"wildcard subject", Options{Stream: "S", Subject: "a.*"}, "wildcard"},
		{"full wildcard subject", Options{Stream: "S", Subject: "a.>"}, "wildcard"},
		{"empty token", Options{Stream: "S", Subject: "a..b"}, "empty token"},
		{"trailing dot", Options{Stream: "S", Subject: "a.b."}, "empty token"},
	}
	nc := &nats.Conn{} // never used: validation comes first
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(context.Background(), nc, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open(%+v) = %v, want an error mentioning %q", tc.opts, err, tc.want)
			}
		})
	}
}

func TestConsumerNameKeepsSafeNamesAndEncodesOthers(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"loader", "loader"},
		{"load-posts_2", "load-posts_2"},
		{"loads.posts", "loads_posts_" + hash5("loads.posts")},
		{"a b*c>d", "a_b_c_d_" + hash5("a b*c>d")},
		{"", "_" + hash5("")},
		{strings.Repeat("x", 65), strings.Repeat("x", 40) + "_" + hash5(strings.Repeat("x", 65))},
	}
	for _, tc := range tests {
		if got := consumerName(tc.in); got != tc.want {
			t.Errorf("consumerName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if consumerName("a.b") == consumerName("a_b") {
		t.Error(`"a.b" and "a_b" map to the same consumer`)
	}
}

// hash5 is the first 5 bytes of the SHA-256 of s, in hex.
func hash5(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:5])
}

func FuzzConsumerName(f *testing.F) {
	for _, s := range []string{"loader", "a.b", "a b", "*", ">", "", strings.Repeat("é", 50)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got := consumerName(name)
		if got == "" || len(got) > 64 {
			t.Fatalf("consumerName(%q) = %q: empty or longer than 64 bytes", name, got)
		}
		for i := 0; i < len(got); i++ {
			if !nameByte(got[i]) {
				t.Fatalf("consumerName(%q) = %q has byte %q, not valid in a consumer name or subject token", name, got, got[i])
			}
		}
		if consumerName(name) != got {
			t.Fatalf("consumerName(%q) is not deterministic", name)
		}
	})
}

func TestDeadLetterFromToleratesMissingHeaders(t *testing.T) {
	at := time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		h    nats.Header
		want driver.DeadLetter
	}{
		{
			name: "all headers",
			h: nats.Header{HeaderReason: {"bad row"}, HeaderSubscription: {"loads.posts"}, HeaderDeliveries: {"3"},
				HeaderMessageID: {"17"}, "Trace": {"t1"}, "Nats-Msg-Id": {"x"}},
			want: driver.DeadLetter{Subscription: "loads.posts", ID: "17", Reason: "bad row", Deliveries: 3, Header: map[string]string{"Trace": "t1"}},
		},
		{"no headers", nil, driver.DeadLetter{}},
		{"bad deliveries", nats.Header{HeaderDeliveries: {"many"}}, driver.DeadLetter{}},
		{"negative deliveries", nats.Header{HeaderDeliveries: {"-2"}}, driver.DeadLetter{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := deadLetterFrom(tc.h, []byte("body"), at)
			tc.want.Body, tc.want.At = []byte("body"), at
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("deadLetterFrom = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzDeadLetterFrom(f *testing.F) {
	f.Add("bad row", "loader", "3", "17", "Trace", "t1")
	f.Add("", "", "x", "", "Sluice-X", "")
	f.Add("r", "s", "-1", "1", "Nats-Msg-Id", "a")
	f.Fuzz(func(t *testing.T, reason, sub, deliveries, id, key, value string) {
		h := nats.Header{HeaderReason: {reason}, HeaderSubscription: {sub}, HeaderDeliveries: {deliveries}, HeaderMessageID: {id}, key: {value}}
		dl := deadLetterFrom(h, nil, time.Time{})
		if dl.Deliveries < 0 {
			t.Fatalf("Deliveries = %d from header %q", dl.Deliveries, deliveries)
		}
		if dl.Reason != reason || dl.Subscription != sub || dl.ID != id {
			t.Fatalf("dead letter %+v lost a Sluice header", dl)
		}
		for k := range dl.Header {
			if strings.HasPrefix(k, "Sluice-") || strings.HasPrefix(k, "Nats-") {
				t.Fatalf("reserved header %q leaked into the dead letter's user headers", k)
			}
		}
	})
}

func TestDiagnoseNamesTheStorageCause(t *testing.T) {
	full := fmt.Errorf("natsqueue: the disk of the embedded queue's store /data/queue is full: %w", ErrDiskFull)
	apiErr := func(code jetstream.ErrorCode) error {
		return fmt.Errorf("nats: %w", &jetstream.APIError{Code: 503, ErrorCode: code, Description: "insufficient resources"})
	}
	tests := []struct {
		name       string
		storageErr func() error
		err        error
		want       []error // errors.Is targets
		wantNot    []error
	}{
		{"known fault joins a timeout", func() error { return full }, context.DeadlineExceeded, []error{context.DeadlineExceeded, ErrDiskFull}, nil},
		{"no fault leaves a timeout alone", func() error { return nil }, context.DeadlineExceeded, []error{context.DeadlineExceeded}, []error{ErrDiskFull, ErrStorage}},
		{"no reporter leaves a timeout alone", nil, context.DeadlineExceeded, []error{context.DeadlineExceeded}, []error{ErrDiskFull, ErrStorage}},
		{"insufficient resources", nil, apiErr(codeInsufficientResources), []error{ErrStorage}, nil},
		{"storage resources exceeded", nil, apiErr(codeStorageResourcesExceeded), []error{ErrStorage}, nil},
		{"store failed", nil, apiErr(codeStreamStoreFailed), []error{ErrStorage}, nil},
		{"other API error", nil, apiErr(jetstream.JSErrCodeStreamNotFound), nil, []error{ErrStorage}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := (&Topic{storageErr: tc.storageErr}).diagnose(tc.err)
			if !errors.Is(got, tc.err) {
				t.Errorf("diagnose(%v) = %v, which lost the original error", tc.err, got)
			}
			for _, w := range tc.want {
				if !errors.Is(got, w) {
					t.Errorf("diagnose(%v) = %v, want it to match %v", tc.err, got, w)
				}
			}
			for _, w := range tc.wantNot {
				if errors.Is(got, w) {
					t.Errorf("diagnose(%v) = %v, should not match %v", tc.err, got, w)
				}
			}
		})
	}
}

// TestTheEmbeddedServerAdmitsOnlyClientsWithItsCredential: the embedded
// server listens on a loopback port every local user can reach; without the
// data dir's credential nobody may connect, let alone publish events.
func TestTheEmbeddedServerAdmitsOnlyClientsWithItsCredential(t *testing.T) {
	e, err := StartEmbedded(t.Context(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	u, err := url.Parse(e.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	if u.User == nil || u.User.Username() == "" {
		t.Fatalf("ClientURL %s carries no credential", u.Redacted())
	}
	bare := "nats://" + u.Host
	if nc, err := nats.Connect(bare); err == nil {
		nc.Close()
		t.Fatalf("a client without the credential connected to %s", bare)
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization") {
		t.Errorf("the refusal is %v, want an authorization violation", err)
	}
	if nc, err := nats.Connect("nats://wrong-token@" + u.Host); err == nil {
		nc.Close()
		t.Fatal("a client with a wrong credential connected")
	}
	for name, connect := range map[string]func() (*nats.Conn, error){
		"ClientURL": func() (*nats.Conn, error) { return nats.Connect(e.ClientURL()) },
		"Connect":   e.Connect,
	} {
		nc, err := connect()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := nc.Publish("x", []byte("y")); err != nil {
			t.Errorf("%s: publish: %v", name, err)
		}
		nc.Close()
	}
	e2, err := StartEmbedded(t.Context(), t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Shutdown()
	if e2.ClientURL() == e.ClientURL() {
		t.Error("two servers have the same client URL")
	} else if u2, _ := url.Parse(e2.ClientURL()); u2.User.Username() == u.User.Username() {
		t.Error("two servers share a credential")
	}
}
