package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/datadir"
	"github.com/sluicehq/sluice/lease"
	"github.com/sluicehq/sluice/pipeline"
)

// runDone is a slog handler that reports each source run's end (the
// engine's "source run done" or "source run failed" line) on a channel.
type runDone struct {
	slog.Handler
	done chan string
}

func (h runDone) Enabled(context.Context, slog.Level) bool { return true }

func (h runDone) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "source run done") || strings.HasPrefix(r.Message, "source run failed") {
		h.done <- r.Message
	}
	return nil
}

func (h runDone) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h runDone) WithGroup(string) slog.Handler      { return h }

// tickedSource drives a scheduled source (every: 1m) through ticks on the
// engine's injected clock: for each tick it sets the clock half a minute
// past the tick, runs the source's duty (the real sourceDuty: it moves the
// recorded tick forward under the lease and imports) until the import has
// ended, and stops it. No sleep decides anything: each tick waits for the
// engine to say its import ended.
type tickedSource struct {
	t    *testing.T
	e    *Engine
	src  pipeline.Source
	now  atomic.Int64 // the engine clock, Unix nanoseconds
	done chan string
}

func newTickedSource(t *testing.T, sourceYAML string) *tickedSource {
	t.Helper()
	spec, err := pipeline.Parse("test.yaml", []byte(fmt.Sprintf("name: ticks\nstore: mem://\nqueue: mem://\nstate: sqlite://%s\nsources:\n%s",
		filepath.Join(t.TempDir(), "state.db"), sourceYAML)), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	ts := &tickedSource{t: t, src: spec.Sources[0], done: make(chan string, 1)}
	ts.now.Store(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	e, err := Open(context.Background(), Config{Spec: spec, DataDir: datadir.Dir{Path: t.TempDir()},
		Logger: slog.New(runDone{done: ts.done}), Clock: func() time.Time { return time.Unix(0, ts.now.Load()).UTC() }, LeaseTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	ts.e = e
	return ts
}

// tick runs tick number n (1-based) and returns how its import ended.
func (ts *tickedSource) tick(n int) string {
	ts.t.Helper()
	at := time.Date(2030, 1, 1, 12, n, 30, 0, time.UTC)
	ts.now.Store(at.UnixNano())
	ctx := context.Background()
	l, err := ts.e.State.Acquire(ctx, "source/"+ts.src.Name, ts.e.holder, time.Minute)
	if err != nil {
		ts.t.Fatal(err)
	}
	im, err := ts.e.newImporter(ts.src)
	if err != nil {
		ts.t.Fatal(err)
	}
	dctx, cancel := context.WithCancel(ctx)
	stopped := make(chan error, 1)
	go func() { stopped <- ts.e.sourceDuty(dctx, ts.src, im, func() lease.Lease { return l }) }()
	var msg string
	select {
	case msg = <-ts.done:
	case err := <-stopped:
		ts.t.Fatalf("tick %d: the source duty stopped before importing: %v", n, err)
	case <-time.After(30 * time.Second): // a hang, not a timing decision
		ts.t.Fatalf("tick %d: no import ended within 30s", n)
	}
	cancel() // it now waits for the next tick
	if err := <-stopped; err != nil {
		ts.t.Fatalf("tick %d: source duty: %v", n, err)
	}
	return msg
}

// landed returns the bodies of the objects the source landed, in key
// (tick) order.
func (ts *tickedSource) landed() []string {
	ts.t.Helper()
	ctx := context.Background()
	objs, err := ts.e.Store.List(ctx, "raw/")
	if err != nil {
		ts.t.Fatal(err)
	}
	var bodies []string
	for _, o := range objs {
		b, _, err := ts.e.Store.ReadAll(ctx, o.Key)
		if err != nil {
			ts.t.Fatal(err)
		}
		bodies = append(bodies, string(b))
	}
	return bodies
}

// A scheduled source with skip_unchanged, against a server that ignores
// conditional requests (always 200, no ETag, no Last-Modified) and whose
// body changes at tick 6, lands exactly 2 objects over 10 ticks: the first
// body at tick 1 and the second at tick 6.
func TestAScheduledSourceWithSkipUnchangedLandsOnlyWhenTheBodyChanges(t *testing.T) {
	var tick atomic.Int64
	var requests atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if tick.Load() < 6 {
			fmt.Fprint(w, `[{"id":1,"title":"first"}]`)
		} else {
			fmt.Fprint(w, `[{"id":1,"title":"second"}]`)
		}
	}))
	t.Cleanup(api.Close)
	ts := newTickedSource(t, fmt.Sprintf("  api:\n    http: {url: %q}\n    every: 1m\n    skip_unchanged: true\n", api.URL))
	for n := 1; n <= 10; n++ {
		tick.Store(int64(n))
		if msg := ts.tick(n); msg != "source run done" {
			t.Fatalf("tick %d: %s", n, msg)
		}
	}
	if got := requests.Load(); got != 10 {
		t.Errorf("the API got %d requests over 10 ticks, want 10 (one per tick)", got)
	}
	want := []string{`[{"id":1,"title":"first"}]`, `[{"id":1,"title":"second"}]`}
	if got := ts.landed(); !slices.Equal(got, want) {
		t.Errorf("landed %d objects %q over 10 ticks, want exactly 2: %q", len(got), got, want)
	}
}

// Without skip_unchanged, the same server makes every tick land an object:
// the opt-in is what saves the eight.
func TestAScheduledSourceWithoutSkipUnchangedLandsEveryTick(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `[{"id":1}]`)
	}))
	t.Cleanup(api.Close)
	ts := newTickedSource(t, fmt.Sprintf("  api:\n    http: {url: %q}\n    every: 1m\n", api.URL))
	for n := 1; n <= 3; n++ {
		ts.tick(n)
	}
	if got := ts.landed(); len(got) != 3 {
		t.Errorf("landed %d objects over 3 ticks, want 3", len(got))
	}
}

// A server that honours If-None-Match answers the unchanged ticks 304:
// they land nothing, and each request carried the validator of the last
// landed response (kept in the state between ticks).
func TestAScheduledSourceSendsItsValidatorAndA304LandsNothing(t *testing.T) {
	var tick atomic.Int64
	var mu sync.Mutex
	var sent []string // If-None-Match of each request
	statuses := map[int]int{}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		etag, body := `"v1"`, `[{"id":1,"title":"first"}]`
		if tick.Load() >= 6 {
			etag, body = `"v2"`, `[{"id":1,"title":"second"}]`
		}
		mu.Lock()
		defer mu.Unlock()
		sent = append(sent, r.Header.Get("If-None-Match"))
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			statuses[304]++
			w.WriteHeader(http.StatusNotModified)
			return
		}
		statuses[200]++
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	}))
	t.Cleanup(api.Close)
	ts := newTickedSource(t, fmt.Sprintf("  api:\n    http: {url: %q}\n    every: 1m\n", api.URL))
	for n := 1; n <= 10; n++ {
		tick.Store(int64(n))
		if msg := ts.tick(n); msg != "source run done" {
			t.Fatalf("tick %d: %s", n, msg)
		}
	}
	want := []string{`[{"id":1,"title":"first"}]`, `[{"id":1,"title":"second"}]`}
	if got := ts.landed(); !slices.Equal(got, want) {
		t.Errorf("landed %q over 10 ticks, want exactly %q", got, want)
	}
	wantSent := []string{"", `"v1"`, `"v1"`, `"v1"`, `"v1"`, `"v1"`, `"v2"`, `"v2"`, `"v2"`, `"v2"`}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(sent, wantSent) {
		t.Errorf("If-None-Match sent per tick = %q, want %q", sent, wantSent)
	}
	if statuses[200] != 2 || statuses[304] != 8 {
		t.Errorf("answers: %d × 200, %d × 304; want 2 and 8", statuses[200], statuses[304])
	}
}
