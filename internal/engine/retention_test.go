package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/deadletter"
	"github.com/sluicehq/sluice/internal/datadir"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/schema"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/warehouse"
)

// retentionNow is the engine clock of the retention tests.
var retentionNow = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

// openRetention opens an engine for spec (whose %s are the lake, the
// state and the warehouse) on a file:// lake, whose files' modification
// times the tests set, with the engine clock at retentionNow.
func openRetention(t *testing.T, spec string) (*Engine, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil { // a data dir is its owner's
		t.Fatal(err)
	}
	lake := filepath.Join(dir, "lake")
	if err := os.MkdirAll(lake, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := pipeline.Parse("test.yaml", []byte(fmt.Sprintf(spec, "file://"+lake, filepath.Join(dir, "state.db"), filepath.Join(dir, "wh.db"))),
		func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	e, err := Open(context.Background(), Config{Spec: s, DataDir: datadir.Dir{Path: dir}, Logger: slog.New(slog.DiscardHandler),
		Clock: func() time.Time { return retentionNow }, LeaseTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	return e, lake
}

// putAged writes key to the lake as modified age before the engine clock,
// and returns its version.
func putAged(t *testing.T, e *Engine, lake, key string, age time.Duration) store.Object {
	t.Helper()
	ctx := context.Background()
	if _, err := e.Store.Put(ctx, key, []byte(fmt.Sprintf(`{"id": %d}`, len(key))), "application/json"); err != nil {
		t.Fatal(err)
	}
	at := retentionNow.Add(-age)
	if err := os.Chtimes(filepath.Join(lake, filepath.FromSlash(key)), at, at); err != nil {
		t.Fatal(err)
	}
	o, err := e.Store.Stat(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// ledger records o as loaded into table (its rows are of no interest).
func ledger(t *testing.T, e *Engine, table string, o store.Object) {
	t.Helper()
	tbl := warehouse.Table{Name: table, Columns: []schema.Column{{Name: "id", Type: schema.BigInt}}}
	if err := e.WH.EnsureTable(context.Background(), tbl); err != nil {
		t.Fatal(err)
	}
	if _, err := e.WH.Load(context.Background(), warehouse.Batch{Table: tbl, Mode: warehouse.Append, Key: o.Key, ETag: o.ETag}); err != nil {
		t.Fatal(err)
	}
}

func retain(t *testing.T, e *Engine, opts RetentionOptions) RetentionSource {
	t.Helper()
	res, err := e.Retain(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Sources) != 1 {
		t.Fatalf("retention handled %d sources, want 1", len(res.Sources))
	}
	return res.Sources[0]
}

// keys lists the keys under prefix.
func keys(t *testing.T, e *Engine, prefix string) []string {
	t.Helper()
	objs, err := e.Store.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		out = append(out, o.Key)
	}
	slices.Sort(out)
	return out
}

const retentionLoadSpec = `name: ret
store: %s
queue: mem://
state: sqlite://%s
warehouse: sqlite://%s
sources:
  api:
    http: {url: "http://127.0.0.1:1/"}
    retention: 30d
loads:
  items:
    on: {prefix: raw/api/, suffix: .json}
    table: items
    columns: {id: bigint}
`

func TestRetentionDeletesOnlyExpiredObjectsEveryLoadHasCommitted(t *testing.T) {
	e, lake := openRetention(t, retentionLoadSpec)
	const old, young = 40 * 24 * time.Hour, 24 * time.Hour
	committed := putAged(t, e, lake, "raw/api/old-committed.json", old)
	uncommitted := putAged(t, e, lake, "raw/api/old-uncommitted.json", old)
	youngCommitted := putAged(t, e, lake, "raw/api/young-committed.json", young)
	dead := putAged(t, e, lake, "raw/api/old-dead-lettered.json", old)
	putAged(t, e, lake, "raw/other/old.json", old) // not the source's folder
	putAged(t, e, lake, "raw/api/notes.txt", old)  // no load selects it: nothing to wait for
	for _, o := range []store.Object{committed, youngCommitted, dead} {
		ledger(t, e, "items", o)
	}
	// A dead letter names it (from before a replay that loaded it, say):
	// it needs the user, so it stays.
	if _, err := e.State.AddDeadLetter(context.Background(), deadletter.DeadLetter{Target: "load-items", Kind: deadletter.Load,
		Name: "items", Key: dead.Key, ETag: dead.ETag, Reason: "test", LastFailure: retentionNow}); err != nil {
		t.Fatal(err)
	}
	all := keys(t, e, "raw/")

	dry := retain(t, e, RetentionOptions{DryRun: true})
	if dry.Expired != 4 || dry.Deleted != 2 || dry.Uncommitted != 1 || dry.DeadLettered != 1 || dry.Prefix != "raw/api/" {
		t.Errorf("dry run = %+v; want 4 expired, 2 to delete, 1 uncommitted, 1 dead-lettered under raw/api/", dry)
	}
	if got := keys(t, e, "raw/"); !slices.Equal(got, all) {
		t.Fatalf("a dry run deleted objects: %q left of %q", got, all)
	}

	res := retain(t, e, RetentionOptions{})
	if res != dry {
		t.Errorf("retention = %+v, want what the dry run said: %+v", res, dry)
	}
	want := []string{"raw/api/old-dead-lettered.json", "raw/api/old-uncommitted.json", "raw/api/young-committed.json", "raw/other/old.json"}
	if got := keys(t, e, "raw/"); !slices.Equal(got, want) {
		t.Errorf("left %q, want %q (gone: the old committed object and the old file no load selects)", got, want)
	}

	// Once loaded, the uncommitted one goes at the next pass.
	ledger(t, e, "items", uncommitted)
	if res := retain(t, e, RetentionOptions{}); res.Deleted != 1 || res.DeadLettered != 1 {
		t.Errorf("second pass = %+v, want 1 deleted, 1 still dead-lettered", res)
	}
	if got := keys(t, e, "raw/api/"); !slices.Equal(got, []string{"raw/api/old-dead-lettered.json", "raw/api/young-committed.json"}) {
		t.Errorf("left %q after the second pass", got)
	}
}

// An object landed again at its key after it was loaded is a new version:
// the ledger has the old one only, so it stays.
func TestRetentionKeepsANewVersionOfALoadedKey(t *testing.T) {
	e, lake := openRetention(t, retentionLoadSpec)
	o := putAged(t, e, lake, "raw/api/a.json", 40*24*time.Hour)
	ledger(t, e, "items", o)
	if _, err := e.Store.Put(context.Background(), o.Key, []byte(`{"id": 2}`), "application/json"); err != nil {
		t.Fatal(err)
	}
	at := retentionNow.Add(-35 * 24 * time.Hour)
	if err := os.Chtimes(filepath.Join(lake, "raw", "api", "a.json"), at, at); err != nil {
		t.Fatal(err)
	}
	if res := retain(t, e, RetentionOptions{}); res.Deleted != 0 || res.Uncommitted != 1 {
		t.Errorf("retention = %+v, want the new version kept as uncommitted", res)
	}
}

const retentionJobSpec = `name: ret
store: %s
queue: mem://
state: sqlite://%s
warehouse: sqlite://%s
sources:
  api:
    http: {url: "http://127.0.0.1:1/"}
    retention: 30d
jobs:
  daily:
    on: {prefix: raw/api/, suffix: .json}
    command: ["true"]
`

// A job group (here the key's parent folder, the default) goes whole,
// once a succeeded run took every one of its inputs, or not at all.
func TestRetentionDeletesAJobGroupWholeOnceARunOfItSucceeded(t *testing.T) {
	e, lake := openRetention(t, retentionJobSpec)
	ctx := context.Background()
	const old, young = 40 * 24 * time.Hour, time.Hour
	succeeded := func(group string, objs ...store.Object) {
		t.Helper()
		var in []job.Input
		for _, o := range objs {
			in = append(in, job.Input{Key: o.Key, ETag: o.ETag})
		}
		if err := e.State.CreateRun(ctx, job.Run{ID: "run-" + group, Rule: "daily", Group: group, State: job.Succeeded,
			Inputs: in, Created: retentionNow.Add(-old)}); err != nil {
			t.Fatal(err)
		}
	}
	// done: every input taken by a succeeded run → the group goes.
	d1, d2 := putAged(t, e, lake, "raw/api/done/1.json", old), putAged(t, e, lake, "raw/api/done/2.json", old)
	succeeded("done", d1, d2)
	// late: an input arrived after the run → nothing of it goes (deleting
	// 1.json alone would make reconcile run the job over 2.json).
	l1 := putAged(t, e, lake, "raw/api/late/1.json", old)
	putAged(t, e, lake, "raw/api/late/2.json", old)
	succeeded("late", l1)
	// young: an input still inside the retention → the group waits.
	y1, y2 := putAged(t, e, lake, "raw/api/young/1.json", old), putAged(t, e, lake, "raw/api/young/2.json", young)
	succeeded("young", y1, y2)
	// dead: the group is dead-lettered.
	x1 := putAged(t, e, lake, "raw/api/dead/1.json", old)
	succeeded("dead", x1)
	if _, err := e.State.AddDeadLetter(ctx, deadletter.DeadLetter{Target: job.Target("daily"), Kind: deadletter.Job, Name: "daily",
		Key: "dead", Reason: "test", LastFailure: retentionNow}); err != nil {
		t.Fatal(err)
	}
	// requested: a run is requested (a replay, say) → it stays for it.
	r1 := putAged(t, e, lake, "raw/api/requested/1.json", old)
	succeeded("requested", r1)
	if err := e.State.RequestRun(ctx, "daily", "requested", retentionNow); err != nil {
		t.Fatal(err)
	}
	// never: no run at all.
	putAged(t, e, lake, "raw/api/never/1.json", old)

	res := retain(t, e, RetentionOptions{})
	want := []string{
		"raw/api/dead/1.json", "raw/api/late/1.json", "raw/api/late/2.json", "raw/api/never/1.json",
		"raw/api/requested/1.json", "raw/api/young/1.json", "raw/api/young/2.json",
	}
	if got := keys(t, e, "raw/"); !slices.Equal(got, want) {
		t.Errorf("left %q, want %q", got, want)
	}
	// Expired: done 2, late 2, young 1, dead 1, requested 1, never 1.
	if res.Expired != 8 || res.Deleted != 2 || res.DeadLettered != 1 || res.Uncommitted != 2 || res.Busy != 3 {
		t.Errorf("retention = %+v; want 8 expired, 2 deleted, 1 dead-lettered, 2 uncommitted (late/2, never), 3 busy (late/1, young/1, requested)", res)
	}
	// The claim taken for the deletion was released: the group can run.
	if l, ok, err := e.State.Get(ctx, job.LeaseName("daily", "done")); err != nil || (ok && l.Expires.After(time.Now())) {
		t.Errorf("the done group's claim is still held: %+v %v", l, err)
	}
}

// A group whose claim is held (a run is starting somewhere) is left alone.
func TestRetentionLeavesAJobGroupWhoseClaimIsHeld(t *testing.T) {
	e, lake := openRetention(t, retentionJobSpec)
	ctx := context.Background()
	o := putAged(t, e, lake, "raw/api/g/1.json", 40*24*time.Hour)
	if err := e.State.CreateRun(ctx, job.Run{ID: "r", Rule: "daily", Group: "g", State: job.Succeeded,
		Inputs: []job.Input{{Key: o.Key, ETag: o.ETag}}, Created: retentionNow}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.State.Acquire(ctx, job.LeaseName("daily", "g"), "elsewhere/1/aaaa", time.Hour); err != nil {
		t.Fatal(err)
	}
	if res := retain(t, e, RetentionOptions{}); res.Deleted != 0 || res.Busy != 1 {
		t.Errorf("retention = %+v, want the group kept as busy", res)
	}
	if got := keys(t, e, "raw/"); len(got) != 1 {
		t.Errorf("left %q, want the group's input", got)
	}
}

// Two jobs that group the same objects differently tie their groups
// together: an object goes only when every group it is in can go whole.
func TestRetentionDecidesJobGroupsThatShareInputsTogether(t *testing.T) {
	e, lake := openRetention(t, retentionJobSpec+`  everything:
    on: {prefix: raw/api/, suffix: .json}
    group: all
    command: ["true"]
`)
	ctx := context.Background()
	run := func(id, rule, group string, objs ...store.Object) {
		t.Helper()
		var in []job.Input
		for _, o := range objs {
			in = append(in, job.Input{Key: o.Key, ETag: o.ETag})
		}
		if err := e.State.CreateRun(ctx, job.Run{ID: id, Rule: rule, Group: group, State: job.Succeeded, Inputs: in, Created: retentionNow}); err != nil {
			t.Fatal(err)
		}
	}
	a := putAged(t, e, lake, "raw/api/d1/1.json", 40*24*time.Hour)
	b := putAged(t, e, lake, "raw/api/d2/1.json", time.Hour) // young: group "all" must wait for it
	run("1", "daily", "d1", a)
	run("2", "daily", "d2", b)
	run("3", "everything", "all", a, b)
	if res := retain(t, e, RetentionOptions{}); res.Deleted != 0 || res.Busy != 1 {
		t.Errorf("retention = %+v, want d1/1.json kept (busy): group all still has a young input", res)
	}
	at := retentionNow.Add(-31 * 24 * time.Hour)
	if err := os.Chtimes(filepath.Join(lake, "raw", "api", "d2", "1.json"), at, at); err != nil {
		t.Fatal(err)
	}
	if res := retain(t, e, RetentionOptions{}); res.Deleted != 2 {
		t.Errorf("retention = %+v, want both deleted once every group can go", res)
	}
	if got := keys(t, e, "raw/"); len(got) != 0 {
		t.Errorf("left %q", got)
	}
}

// Run's retention duty applies retention at start, under its lease.
func TestTheRetentionDutyRunsAtStartUnderItsLease(t *testing.T) {
	e, lake := openRetention(t, retentionLoadSpec)
	o := putAged(t, e, lake, "raw/api/a.json", 40*24*time.Hour)
	ledger(t, e, "items", o)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	e.startRetention(ctx, &wg)
	deadline := time.Now().Add(20 * time.Second) // a hang, not a timing decision
	for len(keys(t, e, "raw/")) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the retention duty did not delete the expired, loaded object within 20s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	l, ok, err := e.State.Get(ctx, "retention")
	if err != nil || !ok || l.Holder != e.holder {
		t.Errorf("lease retention = %+v, %v, %v; want held by this engine", l, ok, err)
	}
	cancel()
	wg.Wait()
}
