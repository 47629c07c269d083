package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/datadir"
	"github.com/sluicehq/sluice/pipeline"
)

// pagedAPI serves /items?page=N: pages 1..pages with per items each, then [].
func pagedAPI(t *testing.T, pages, per int) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := strconv.Atoi(r.URL.Query().Get("page"))
		w.Header().Set("Content-Type", "application/json")
		var items []string
		if p >= 1 && p <= pages {
			for i := 0; i < per; i++ {
				id := (p-1)*per + i + 1
				items = append(items, fmt.Sprintf(`{"id": %d, "name": "item %d"}`, id, id))
			}
		}
		fmt.Fprintf(w, "[%s]", strings.Join(items, ","))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func openEngine(t testing.TB, yaml string) *Engine {
	t.Helper()
	spec, err := pipeline.Parse("test.yaml", []byte(yaml), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	dir := datadir.Dir{Path: t.TempDir()}
	e, err := Open(context.Background(), Config{Spec: spec, DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e
}

func count(t *testing.T, e *Engine, q string) string {
	t.Helper()
	_, rows, err := e.WH.Query(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(rows[0][0])
}

func TestRunOnceLandsEveryPageAsItsOwnObjectAndLoadsEachOnce(t *testing.T) {
	api := pagedAPI(t, 3, 4)
	e := openEngine(t, fmt.Sprintf(`name: paged
store: mem://
queue: mem://
warehouse: sqlite://%s
sources:
  items:
    http:
      url: %s/items
      pagination: {type: page, param: page}
loads:
  items:
    on: {prefix: raw/items/}
    table: items
    write: merge
    primary_key: [id]
    columns: {id: bigint, name: text}
`, filepath.Join(t.TempDir(), "wh.db"), api.URL))
	res, err := e.Run(context.Background(), RunOptions{Once: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	objs, err := e.Store.List(context.Background(), "raw/items/")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 3 || e.Stats.Landed.Load() != 3 {
		t.Fatalf("landed %d objects (stats %d), want 3 pages", len(objs), e.Stats.Landed.Load())
	}
	if got := count(t, e, "select count(*) from items"); got != "12" {
		t.Fatalf("rows = %s, want 12", got)
	}
	if got := count(t, e, "select count(*) from _sluice_ledger"); got != "3" {
		t.Fatalf("ledger rows = %s, want 3", got)
	}
	// Replaying every event is a no-op: the ledger already has each version.
	for _, o := range objs {
		st, err := e.Store.Stat(context.Background(), o.Key)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Emit(context.Background(), st); err != nil {
			t.Fatal(err)
		}
	}
	e.cfg.Spec.Sources = nil
	if _, err := e.Run(context.Background(), RunOptions{Once: true}); err != nil {
		t.Fatal(err)
	}
	if e.Stats.Duplicates.Load() != 3 || count(t, e, "select count(*) from items") != "12" {
		t.Fatalf("replay: %d duplicates, %s rows", e.Stats.Duplicates.Load(), count(t, e, "select count(*) from items"))
	}
}

func TestScheduledSourcesRunAgainEveryPeriod(t *testing.T) {
	var hits int
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `[{"id": %d}]`, hits)
	}))
	t.Cleanup(api.Close)
	e := openEngine(t, fmt.Sprintf(`name: sched
store: mem://
queue: mem://
warehouse: sqlite://%s
sources:
  ticks:
    http: {url: %s}
    every: 1s
loads:
  ticks:
    on: {prefix: raw/ticks/}
    table: ticks
    columns: {id: bigint}
`, filepath.Join(t.TempDir(), "wh.db"), api.URL))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := e.Run(ctx, RunOptions{}); done <- err }()
	deadline := time.Now().Add(20 * time.Second)
	for e.Stats.ObjectsLoaded.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("after 20s only %d imports were loaded, want 3 (every: 1s)", e.Stats.ObjectsLoaded.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, _ := strconv.Atoi(count(t, e, "select count(distinct id) from ticks")); got < 3 {
		t.Fatalf("distinct ticks = %d, want at least 3", got)
	}
}

// TestFoundFilesAreVersionedByTheirModificationTime: files found together
// (the rescan at start, or one scan) are emitted in key order, yet a merge
// must keep the version written last, so a found file's event time is its
// modification time, not the time sluice found it.
func TestFoundFilesAreVersionedByTheirModificationTime(t *testing.T) {
	e := openEngine(t, fmt.Sprintf(`name: found
store: mem://
queue: mem://
warehouse: sqlite://%s
loads:
  rows:
    on: {prefix: in/}
    table: rows
    write: merge
    primary_key: [id]
    columns: {id: bigint, version: bigint}
`, filepath.Join(t.TempDir(), "wh.db")))
	ctx := context.Background()
	// A first run creates the load's subscription.
	if _, err := e.Run(ctx, RunOptions{Once: true}); err != nil {
		t.Fatal(err)
	}
	written := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	// in/a.json was written last, in/b.json a second before; found in key
	// order, a first.
	for i, f := range []struct{ key, body string }{
		{"in/a.json", `{"id": 1, "version": 2}`},
		{"in/b.json", `{"id": 1, "version": 1}`},
	} {
		o, err := e.Store.Write(ctx, f.key, strings.NewReader(f.body), "application/json")
		if err != nil {
			t.Fatal(err)
		}
		o.ModTime = written.Add(-time.Duration(i) * time.Second)
		if err := e.emitFound(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	res, err := e.Run(ctx, RunOptions{Once: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if got := count(t, e, "select count(*) from _sluice_ledger"); got != "2" {
		t.Fatalf("ledger rows = %s, want 2", got)
	}
	if got := count(t, e, "select version from rows where id = 1"); got != "2" {
		t.Errorf("row 1 holds version %s, want 2: the file written last (in/a.json), not the one found last", got)
	}
}
