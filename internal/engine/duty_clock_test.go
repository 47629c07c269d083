package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/datadir"
	"github.com/sluicehq/sluice/lease"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/state"
)

// A holder whose clock runs ahead (or a clock stepped back) must not make
// the next holder move the source's recorded tick backwards and fetch a
// tick that was already fetched: tick T was fetched, then T+every by a
// holder whose clock was ahead; the next holder, whose clock still says T,
// must fetch nothing.
func TestASourceTickNeverMovesBackwardsWhenAHoldersClockIsBehind(t *testing.T) {
	var requests atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `[{"id": 1}]`)
	}))
	t.Cleanup(api.Close)
	spec, err := pipeline.Parse("test.yaml", []byte(fmt.Sprintf(`name: ticks
store: mem://
queue: mem://
state: sqlite://%s
sources:
  api:
    http: {url: %q}
    every: 1m
`, filepath.Join(t.TempDir(), "state.db"), api.URL)), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 1, 1, 12, 0, 30, 0, time.UTC) // tick 12:00
	var calls atomic.Int64
	clock := func() time.Time { calls.Add(1); return now }
	ctx := context.Background()
	e, err := Open(ctx, Config{Spec: spec, DataDir: datadir.Dir{Path: t.TempDir()}, Logger: slog.New(slog.DiscardHandler),
		Clock: clock, LeaseTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)

	// The previous holder, its clock 40s ahead, fetched tick 12:01 and died.
	ahead := strconv.FormatInt(time.Date(2030, 1, 1, 12, 1, 0, 0, time.UTC).UnixNano(), 10)
	prev, err := e.State.Acquire(ctx, "source/api", "elsewhere/1/aaaa", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := e.State.CompareAndSwap(ctx, prev, "source-tick/api", "", ahead); err != nil || !ok {
		t.Fatalf("record tick: %v %v", ok, err)
	}
	if err := e.State.Release(ctx, prev); err != nil {
		t.Fatal(err)
	}
	l, err := e.State.Acquire(ctx, "source/api", e.holder, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	im, err := e.newImporter(spec.Sources[0])
	if err != nil {
		t.Fatal(err)
	}
	calls.Store(0)
	dctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.sourceDuty(dctx, spec.Sources[0], im, func() lease.Lease { return l }) }()
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() < 2 { // past the first decision: fetched, or gone to sleep
		if time.Now().After(deadline) {
			t.Fatal("sourceDuty did not get past its first tick within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	v, _, err := e.State.Value(ctx, "source-tick/api")
	if err != nil {
		t.Fatal(err)
	}
	if v != ahead {
		t.Errorf("recorded tick moved from %s back to %s: tick 12:00 is fetched again (and 12:01 again a minute later); API requests so far: %d", ahead, v, requests.Load())
	}
}

// cutOff is a state whose lease renewals fail (the holder is cut off from
// the database) after the first one.
type cutOff struct {
	state.Store
	mu      sync.Mutex
	renews  int
	expires time.Time // of the last successful renewal
}

func (c *cutOff) Renew(ctx context.Context, l lease.Lease, ttl time.Duration) (lease.Lease, error) {
	c.mu.Lock()
	c.renews++
	n := c.renews
	c.mu.Unlock()
	if n > 1 {
		return l, errors.New("dial tcp: connection refused")
	}
	nl, err := c.Store.Renew(ctx, l, ttl)
	if err == nil {
		c.mu.Lock()
		c.expires = nl.Expires
		c.mu.Unlock()
	}
	return nl, err
}

// A duty holder cut off from the state must stop acting before its lease
// expires (the duty's doc: "so a holder cut off from the state stops before
// anyone else can take over"); otherwise two holders act at once.
func TestADutyHolderCutOffFromTheStateStopsBeforeItsLeaseExpires(t *testing.T) {
	spec, err := pipeline.Parse("test.yaml", []byte(fmt.Sprintf("name: cut\nstore: mem://\nqueue: mem://\nstate: sqlite://%s\nsources:\n  api:\n    http: {url: \"http://127.0.0.1:1/\"}\n",
		filepath.Join(t.TempDir(), "state.db"))), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ttl := 600 * time.Millisecond
	ctx := context.Background()
	e, err := Open(ctx, Config{Spec: spec, DataDir: datadir.Dir{Path: t.TempDir()}, Logger: slog.New(slog.DiscardHandler), LeaseTTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	cut := &cutOff{Store: e.State}
	e.State = cut
	l, err := e.State.Acquire(ctx, "watch", e.holder, ttl)
	if err != nil {
		t.Fatal(err)
	}
	var stopped time.Time
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.holdDuty(ctx, e.log, l, false, func(ctx context.Context, _ func() lease.Lease) error {
			<-ctx.Done()
			stopped = time.Now()
			return nil
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the cut-off holder never gave its duty up")
	}
	cut.mu.Lock()
	expires := cut.expires
	cut.mu.Unlock()
	if expires.IsZero() {
		t.Fatal("no renewal succeeded")
	}
	if !stopped.Before(expires) {
		t.Errorf("the duty stopped %s after its lease expired (another process may take it over at expiry)", stopped.Sub(expires))
	}
}
