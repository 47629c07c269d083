package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/datadir"
	"github.com/sluicehq/sluice/lease"
	"github.com/sluicehq/sluice/pipeline"
)

// A holder whose clock runs ahead (or a clock stepped back) must not make
// the next holder move the source's recorded tick backwards and fetch a
// tick that was already fetched: tick T was fetched, then T+every by a
// holder whose clock was ahead; the next holder, whose clock still says T,
// must fetch nothing.
func TestReviewSourceTickNeverMovesBackwards(t *testing.T) {
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
