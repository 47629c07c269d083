package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/datadir"
	"github.com/sluicehq/sluice/pipeline"
)

// Two processes sharing one state run a scheduled source: only the one
// holding its lease fetches, every tick is fetched once (the landed keys,
// derived from the tick, never repeat across both stores), and when the
// holder stops the other takes over.
func TestAScheduledSourceIsFetchedOncePerTickByWhicheverProcessHoldsItsLease(t *testing.T) {
	var requests atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `[{"id": %d}]`, requests.Add(1))
	}))
	t.Cleanup(api.Close)
	shared := t.TempDir()
	spec, err := pipeline.Parse("test.yaml", []byte(fmt.Sprintf(`name: ticks
store: mem://
queue: mem://
state: sqlite://%s
sources:
  api:
    http: {url: %q}
    every: 1s
`, filepath.Join(shared, "state.db"), api.URL)), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	type proc struct {
		e    *Engine
		stop func()
	}
	start := func() proc {
		e, err := Open(context.Background(), Config{Spec: spec, DataDir: datadir.Dir{Path: t.TempDir()},
			Logger: slog.New(slog.DiscardHandler), LeaseTTL: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); e.Run(ctx, RunOptions{}) }()
		stop := func() { cancel(); <-done }
		t.Cleanup(func() { stop(); e.Close() })
		return proc{e, stop}
	}
	procs := []proc{start(), start()}
	keys := func() map[string]int {
		out := map[string]int{}
		for _, p := range procs {
			objs, err := p.e.Store.List(context.Background(), "raw/")
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				out[o.Key]++
			}
		}
		return out
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("waited 30s for %s; %d requests, keys %v", what, requests.Load(), keys())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	landed := func(p proc) int { return int(p.e.Stats.Landed.Load()) }
	waitFor("three ticks", func() bool { return landed(procs[0])+landed(procs[1]) >= 3 })
	l, ok, err := procs[0].e.State.Get(context.Background(), "source/api")
	if err != nil || !ok {
		t.Fatalf("the source's lease: %+v, %v, %v", l, ok, err)
	}
	holder, other := procs[0], procs[1]
	if l.Holder == procs[1].e.holder {
		holder, other = procs[1], procs[0]
	}
	if landed(other) > 0 {
		t.Fatalf("the process not holding the lease fetched %d objects", landed(other))
	}
	holder.stop()
	before := landed(other)
	waitFor("the other process to take the source over", func() bool { return landed(other) >= before+2 })
	ks := keys()
	total := 0
	for k, n := range ks {
		if n != 1 {
			t.Errorf("tick key %s landed %d times, want once", k, n)
		}
		total += n
	}
	// A request in flight when the test looked may not have landed yet.
	if r := int(requests.Load()); r != total && r != total+1 {
		t.Errorf("API requests = %d for %d landed ticks: a tick was fetched more than once", r, total)
	}
}
