package engine

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/sluicehq/sluice/deadletter"
	"github.com/sluicehq/sluice/job"
)

const reconcileSpec = `name: rec
store: mem://
queue: mem://
warehouse: sqlite://%s
loads:
  items:
    on: {prefix: raw/items/, suffix: .json}
    table: items
    write: merge
    primary_key: [id]
    columns: {id: bigint, name: text}
`

// putQuietly writes an object without an event, as an upload made before
// the queue existed, or one whose notification was lost.
func putQuietly(t *testing.T, e *Engine, key, body string) {
	t.Helper()
	if _, err := e.Store.Put(context.Background(), key, []byte(body), "application/json"); err != nil {
		t.Fatal(err)
	}
}

func reconcile(t *testing.T, e *Engine, opts ReconcileOptions) ReconcileResult {
	t.Helper()
	opts.Keys = true
	res, err := e.Reconcile(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func runOnce(t *testing.T, e *Engine) {
	t.Helper()
	res, err := e.Run(context.Background(), RunOptions{Once: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
}

func TestReconcileLoadsObjectsThatNeverHadAnEventAndThenFindsNothing(t *testing.T) {
	wh := filepath.Join(t.TempDir(), "wh.db")
	e := openEngine(t, fmt.Sprintf(reconcileSpec, wh))
	for i := 1; i <= 3; i++ {
		putQuietly(t, e, fmt.Sprintf("raw/items/%d.json", i), fmt.Sprintf(`{"id": %d, "name": "n%d"}`, i, i))
	}
	// Objects the load would ignore: staging, job logs, another suffix,
	// another prefix.
	putQuietly(t, e, "raw/items/.staging/9.json", `{"id": 9}`)
	putQuietly(t, e, "raw/items/_temporary/0/9.json", `{"id": 9}`)
	putQuietly(t, e, "raw/items/readme.txt", `not json`)
	putQuietly(t, e, "raw/other/9.json", `{"id": 9}`)
	putQuietly(t, e, LogPrefix+"x.log", `log`)

	dry := reconcile(t, e, ReconcileOptions{DryRun: true})
	if l := dry.Loads[0]; l.Checked != 3 || l.Emitted != 3 || e.Stats.Events.Load() != 0 {
		t.Fatalf("dry run: %+v, %d events published; want 3 checked, 3 to emit, none published", l, e.Stats.Events.Load())
	}

	runOnce(t, e) // reconciles at start, before consuming
	if got := count(t, e, "select count(*) from items"); got != "3" {
		t.Fatalf("rows after run --once = %s, want the 3 objects uploaded before sluice ran", got)
	}
	if e.Stats.Events.Load() != 3 || e.Stats.Duplicates.Load() != 0 {
		t.Fatalf("events %d, duplicates %d; want 3 and 0", e.Stats.Events.Load(), e.Stats.Duplicates.Load())
	}

	again := reconcile(t, e, ReconcileOptions{})
	if l := again.Loads[0]; l.Checked != 3 || l.Loaded != 3 || l.Emitted != 0 || again.Emitted() != 0 {
		t.Fatalf("second reconcile after draining: %+v; want 3 checked, 3 loaded, nothing emitted", l)
	}

	// A lost ledger row (the version is no longer known as loaded): the
	// next reconcile emits exactly that one.
	db, err := sql.Open("sqlite", wh)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM _sluice_ledger WHERE object_key = 'raw/items/2.json'`); err != nil {
		t.Fatal(err)
	}
	lost := reconcile(t, e, ReconcileOptions{})
	if l := lost.Loads[0]; l.Emitted != 1 || !slices.Equal(l.Keys, []string{"raw/items/2.json"}) || l.Loaded != 2 {
		t.Fatalf("reconcile after deleting a ledger row: %+v; want exactly raw/items/2.json emitted", l)
	}
}

func TestReconcileSkipsADeadLetteredVersionAndAYoungObject(t *testing.T) {
	e := openEngine(t, fmt.Sprintf(reconcileSpec, filepath.Join(t.TempDir(), "wh.db")))
	ctx := context.Background()
	putQuietly(t, e, "raw/items/bad.json", `{"id": "not a number"}`)
	putQuietly(t, e, "raw/items/good.json", `{"id": 1, "name": "a"}`)
	bad, err := e.Store.Stat(ctx, "raw/items/bad.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.State.AddDeadLetter(ctx, deadletter.DeadLetter{Target: "load-items", Kind: deadletter.Load, Name: "items",
		Key: bad.Key, ETag: bad.ETag, Reason: "test", LastFailure: time.Now()}); err != nil {
		t.Fatal(err)
	}
	res := reconcile(t, e, ReconcileOptions{})
	if l := res.Loads[0]; l.DeadLettered != 1 || l.Emitted != 1 || !slices.Equal(l.Keys, []string{"raw/items/good.json"}) {
		t.Fatalf("reconcile: %+v; want the dead-lettered version skipped and only good.json emitted", l)
	}
	// A new version of the dead-lettered key is new work.
	putQuietly(t, e, "raw/items/bad.json", `{"id": 2, "name": "fixed"}`)
	res = reconcile(t, e, ReconcileOptions{DryRun: true})
	if l := res.Loads[0]; l.DeadLettered != 0 || !slices.Contains(l.Keys, "raw/items/bad.json") {
		t.Fatalf("reconcile after fixing the object: %+v; want its new version emitted", l)
	}
	// The periodic reconcile leaves objects younger than MinAge to their
	// own events.
	res = reconcile(t, e, ReconcileOptions{DryRun: true, MinAge: time.Hour})
	if l := res.Loads[0]; l.Checked != 0 || l.Emitted != 0 {
		t.Fatalf("reconcile with MinAge 1h: %+v; want nothing checked", l)
	}
}

func TestReconcileRequestsAJobGroupWhoseInputsChangedWithoutAnEvent(t *testing.T) {
	e := openEngine(t, `name: recjobs
store: mem://
queue: mem://
jobs:
  count:
    on: {prefix: data/, suffix: .csv}
    command: ["true"]
`)
	ctx := context.Background()
	for _, k := range []string{"data/d1/a.csv", "data/d2/a.csv", "data/d3/a.csv", "data/d4/a.csv", "data/d5/a.csv"} {
		putQuietly(t, e, k, "x\n1\n")
	}
	putQuietly(t, e, "data/d1/notes.txt", "ignored: another suffix")
	inputs := func(keys ...string) []job.Input {
		var in []job.Input
		for _, k := range keys {
			o, err := e.Store.Stat(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			in = append(in, job.Input{Key: o.Key, ETag: o.ETag})
		}
		return in
	}
	now := time.Now()
	run := func(id, group string, st job.State, in []job.Input) {
		t.Helper()
		if err := e.State.CreateRun(ctx, job.Run{ID: id, Rule: "count", Group: group, State: st, Inputs: in, Created: now}); err != nil {
			t.Fatal(err)
		}
	}
	// d1 ran on its current inputs; d2 ran, then a.csv changed and b.csv
	// arrived with no event; d3 has a run in flight; d4 is
	// dead-lettered; d5 never ran and has a pending request.
	run("r1", "d1", job.Succeeded, inputs("data/d1/a.csv"))
	run("r2", "d2", job.Succeeded, inputs("data/d2/a.csv"))
	putQuietly(t, e, "data/d2/a.csv", "x\n2\n")
	putQuietly(t, e, "data/d2/b.csv", "x\n3\n")
	run("r3", "d3", job.Running, nil)
	if _, err := e.State.AddDeadLetter(ctx, deadletter.DeadLetter{Target: "job-count", Kind: deadletter.Job, Name: "count", Key: "d4", Reason: "test", LastFailure: now}); err != nil {
		t.Fatal(err)
	}
	if err := e.State.RequestRun(ctx, "count", "d5", now); err != nil {
		t.Fatal(err)
	}

	res := reconcile(t, e, ReconcileOptions{})
	j := res.Jobs[0]
	if j.Groups != 5 || j.Current != 1 || j.Busy != 2 || j.DeadLettered != 1 || j.Requested != 1 || !slices.Equal(j.Requests, []string{"d2"}) {
		t.Fatalf("reconcile: %+v; want d2 requested, d1 current, d3 and d5 busy, d4 dead-lettered", j)
	}
	reqs, err := e.State.PendingRequests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var groups []string
	for _, r := range reqs {
		groups = append(groups, r.Group)
	}
	slices.Sort(groups)
	if !slices.Equal(groups, []string{"d2", "d5"}) {
		t.Fatalf("pending requests %v, want data/d2 (reconciled) and data/d5 (already pending)", groups)
	}
	// Requested once: the next reconcile finds the request pending.
	if res := reconcile(t, e, ReconcileOptions{}); res.Requested() != 0 || res.Jobs[0].Busy != 3 {
		t.Fatalf("second reconcile: %+v; want nothing requested again", res.Jobs[0])
	}
}
