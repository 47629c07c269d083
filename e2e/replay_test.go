package e2e

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// replaySpec loads in/*.json into table posts, appending.
const replaySpec = `name: replay
queue: "embedded?ack_wait=2s"
loads:
  posts:
    on: {prefix: in/, suffix: .json}
    table: posts
    columns: {id: bigint, title: text}
`

// putLake writes an object straight into the local lake, as another
// program would, with a modification time old enough that the owning
// sluice takes it as settled.
func putLake(t *testing.T, dataDir, key, body string) {
	t.Helper()
	p := filepath.Join(dataDir, "lake", filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
}

// pgInt runs a one-number query.
func pgInt(t *testing.T, conn *pgx.Conn, q string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// ledgerOf counts the ledger rows of one object key.
func ledgerOf(t *testing.T, conn *pgx.Conn, schema, key string) int {
	t.Helper()
	return pgInt(t, conn, "select count(*) from "+schema+"._sluice_ledger where table_name = 'posts' and object_key = $1", key)
}

// ledgerSnapshot is the whole ledger as text, to compare before and after.
func ledgerSnapshot(t *testing.T, conn *pgx.Conn, schema string) string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "select concat_ws('|', table_name, object_key, etag, version, rows, rejected, loaded_at) from "+schema+"._sluice_ledger order by table_name, object_key, etag")
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n") + "\n"
}

// deadLetter is one row of `sluice dlq ls`.
type deadLetter struct {
	id       string
	key      string
	attempts int
	line     string
}

// deadLetters lists the data dir's dead letters through `sluice dlq ls`.
func deadLetters(t *testing.T, env []string, dataDir string) map[string]deadLetter {
	t.Helper()
	r := mustRun(t, env, "dlq", "ls", "--data-dir="+dataDir)
	out := map[string]deadLetter{}
	for _, l := range deadLetterLines(r.stdout) {
		f := strings.Fields(l)
		n, _ := strconv.Atoi(f[3])
		out[f[2]] = deadLetter{id: f[0], key: f[2], attempts: n, line: l}
	}
	if len(out) == 0 && !strings.Contains(r.stdout, "no dead letters") {
		t.Fatalf("dlq ls printed neither dead letters nor \"no dead letters\":\n%s", r.stdout)
	}
	return out
}

// waitDaemon polls cond until it holds, for up to 90 s.
func waitDaemon(t *testing.T, what string, d *daemon, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			log := ""
			if d != nil {
				log = d.logTail()
			}
			t.Fatalf("waited 90s for %s\n%s", what, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitTable waits until the daemon has created table posts (run creates
// the tables of its loads when it starts).
func waitTable(t *testing.T, d *daemon, conn *pgx.Conn, schema string) {
	t.Helper()
	waitDaemon(t, "sluice run to create table posts", d, func() bool {
		return pgInt(t, conn, "select count(*) from information_schema.tables where table_schema = $1 and table_name = 'posts'", schema) == 1
	})
}

// TestADeadLetterForAMissingTableLoadsOnceWhenReplayedAfterTheTableIsBack
// drops the load's table under a running sluice: the objects that arrive
// are dead-lettered at once, naming the table. After a restart (which
// creates the table again), `sluice dlq replay ID` through the running
// sluice loads that object exactly once and its dead letter disappears;
// with no sluice running, `sluice dlq replay --all` does the work itself,
// exits 0 and loads the other one exactly once.
func TestADeadLetterForAMissingTableLoadsOnceWhenReplayedAfterTheTableIsBack(t *testing.T) {
	whURL, schema, conn := pgSchema(t)
	env := []string{"SLUICE_WAREHOUSE=" + whURL}
	dataDir := t.TempDir()
	dd := "--data-dir=" + dataDir

	d := startRun(t, dataDir, replaySpec, env...)
	waitTable(t, d, conn, schema)
	if _, err := conn.Exec(context.Background(), "DROP TABLE "+schema+".posts"); err != nil {
		t.Fatal(err)
	}
	putLake(t, dataDir, "in/a.json", `[{"id": 1, "title": "a1"}, {"id": 2, "title": "a2"}, {"id": 3, "title": "a3"}]`)
	putLake(t, dataDir, "in/b.json", `[{"id": 4, "title": "b1"}, {"id": 5, "title": "b2"}]`)

	var dls map[string]deadLetter
	waitDaemon(t, "both objects to be dead-lettered for the missing table", d, func() bool {
		dls = deadLetters(t, env, dataDir)
		return len(dls) == 2
	})
	for _, key := range []string{"in/a.json", "in/b.json"} {
		dl, ok := dls[key]
		if !ok {
			t.Fatalf("no dead letter for %s: %v", key, dls)
		}
		if dl.attempts != 1 {
			t.Errorf("%s: %d attempts, want 1 (a missing table is permanent: not retried)", key, dl.attempts)
		}
		// The reason as dlq ls shows it (its first 200 characters) says
		// which table is missing (not the load's name: "load-posts").
		if !strings.Contains(dl.line, "table posts does not exist") && !strings.Contains(dl.line, "table "+schema+".posts does not exist") {
			t.Errorf("dlq ls does not name the missing table posts for %s:\n%s\nshow:\n%s", key, dl.line, mustRun(t, env, "dlq", "show", dd, dl.id).stdout)
		}
		show := mustRun(t, env, "dlq", "show", dd, dl.id)
		if !strings.Contains(show.stdout, "posts") || !strings.Contains(show.stdout, "does not exist") || !strings.Contains(show.stdout, "sluice dlq replay") {
			t.Errorf("dead letter of %s does not name the missing table posts and say to replay:\n%s", key, show.stdout)
		}
		if n := ledgerOf(t, conn, schema, key); n != 0 {
			t.Errorf("%s is in the ledger %d times while its table is missing", key, n)
		}
	}

	// An unknown ID is refused, saying where the IDs are.
	if r := sluice(t, env, "dlq", "replay", dd, "999"); r.code == 0 || !strings.Contains(r.stderr, "no such dead letter") || !strings.Contains(r.stderr, "sluice dlq ls") {
		t.Errorf("dlq replay 999: exit %d\n%s", r.code, tail(r.stderr, 2000))
	}

	// A restart creates the table again; replay one dead letter through the
	// running sluice.
	d.stop()
	d = startRun(t, dataDir, replaySpec, env...)
	waitTable(t, d, conn, schema)
	r := mustRun(t, env, "dlq", "replay", dd, dls["in/a.json"].id)
	if !strings.Contains(r.stdout, "replayed 1 dead letter(s)") || !strings.Contains(r.stdout, "the running sluice") {
		t.Errorf("dlq replay through the running sluice says:\n%s", r.stdout)
	}
	waitDaemon(t, "the replayed object to load and its dead letter to disappear", d, func() bool {
		_, listed := deadLetters(t, env, dataDir)["in/a.json"]
		return ledgerOf(t, conn, schema, "in/a.json") == 1 && !listed
	})
	if n := pgInt(t, conn, "select count(*) from "+schema+".posts"); n != 3 {
		t.Errorf("posts has %d rows after replaying in/a.json, want 3", n)
	}
	if n := pgInt(t, conn, "select rows from "+schema+"._sluice_ledger where object_key = 'in/a.json'"); n != 3 {
		t.Errorf("ledger rows of in/a.json = %d, want 3", n)
	}
	rest := deadLetters(t, env, dataDir)
	if _, ok := rest["in/b.json"]; !ok || len(rest) != 1 {
		t.Errorf("after replaying in/a.json only, dead letters are %v, want in/b.json alone", rest)
	}
	if n := ledgerOf(t, conn, schema, "in/b.json"); n != 0 {
		t.Errorf("in/b.json loaded without being replayed (%d ledger rows)", n)
	}

	// No sluice running: the replay does the work itself.
	d.stop()
	r = mustRun(t, env, "dlq", "replay", dd, "--all")
	if !strings.Contains(r.stdout, "replayed 1 dead letter(s)") || !strings.Contains(r.stdout, "loaded 1 object(s), 2 row(s)") {
		t.Errorf("dlq replay --all with no sluice running says:\n%s", r.stdout)
	}
	if dl := deadLetters(t, env, dataDir); len(dl) != 0 {
		t.Errorf("dead letters left after replaying all: %v", dl)
	}
	for key, rows := range map[string]int{"in/a.json": 3, "in/b.json": 2} {
		if n := ledgerOf(t, conn, schema, key); n != 1 {
			t.Errorf("ledger rows for %s = %d, want 1", key, n)
		}
		if n := pgInt(t, conn, "select coalesce(sum(rows), 0) from "+schema+"._sluice_ledger where object_key = $1", key); n != rows {
			t.Errorf("ledger row count of %s = %d, want %d", key, n, rows)
		}
	}
	if n := pgInt(t, conn, "select count(*) from "+schema+".posts"); n != 5 {
		t.Errorf("posts has %d rows, want 5", n)
	}
	if n := pgInt(t, conn, "select count(*) from (select id from "+schema+".posts group by id having count(*) > 1) d"); n != 0 {
		t.Errorf("%d ids loaded more than once", n)
	}
}

// TestReplayingAMixLoadsExactlyTheDeadLetteredObjectWhoseCauseIsFixed
// replays five objects: A (loaded), B and E (dead-lettered for a missing
// table, since created), C (dead-lettered likewise, then deleted from the
// store) and D (dead-lettered for bad data nobody fixed). `sluice dlq
// replay` of B, C and D loads B once; C fails again with an error saying
// it is gone, and D with its bad record; both stay dead letters. `sluice
// replay --prefix in/` then writes nothing for A and B, loads E once
// (clearing its dead letter), and D fails once more.
func TestReplayingAMixLoadsExactlyTheDeadLetteredObjectWhoseCauseIsFixed(t *testing.T) {
	whURL, schema, conn := pgSchema(t)
	env := []string{"SLUICE_WAREHOUSE=" + whURL}
	dataDir := t.TempDir()
	dd := "--data-dir=" + dataDir
	ctx := context.Background()

	d := startRun(t, dataDir, replaySpec, env...)
	waitTable(t, d, conn, schema)
	putLake(t, dataDir, "in/a.json", `[{"id": 1, "title": "a1"}, {"id": 2, "title": "a2"}]`)
	putLake(t, dataDir, "in/d.json", `[{"id": 7, "title": "d1"}, {"id": "seven", "title": "d2"}]`)
	waitDaemon(t, "in/a.json to load and in/d.json to be dead-lettered", d, func() bool {
		_, dead := deadLetters(t, env, dataDir)["in/d.json"]
		return ledgerOf(t, conn, schema, "in/a.json") == 1 && dead
	})
	if _, err := conn.Exec(ctx, "DROP TABLE "+schema+".posts"); err != nil {
		t.Fatal(err)
	}
	putLake(t, dataDir, "in/b.json", `[{"id": 3, "title": "b1"}, {"id": 4, "title": "b2"}]`)
	putLake(t, dataDir, "in/c.json", `[{"id": 5, "title": "c1"}]`)
	putLake(t, dataDir, "in/e.json", `[{"id": 6, "title": "e1"}]`)
	var dls map[string]deadLetter
	waitDaemon(t, "in/b.json, in/c.json and in/e.json to be dead-lettered", d, func() bool {
		dls = deadLetters(t, env, dataDir)
		return len(dls) == 4
	})
	d.stop()
	// Attempts are counted from here: the first load's count includes the
	// tries a transient failure may have needed before the permanent one.
	tries := map[string]int{}
	for k, dl := range deadLetters(t, env, dataDir) {
		tries[k] = dl.attempts
	}
	// C is deleted; the table comes back, created by hand.
	if err := os.Remove(filepath.Join(dataDir, "lake", "in", "c.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE "+schema+".posts (id bigint, title text)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO "+schema+".posts VALUES (1, 'a1'), (2, 'a2')"); err != nil {
		t.Fatal(err)
	}
	before := ledgerSnapshot(t, conn, schema)

	r := sluice(t, env, "dlq", "replay", dd, dls["in/b.json"].id, dls["in/c.json"].id, dls["in/d.json"].id)
	if r.code == 0 {
		t.Fatalf("dlq replay exited 0 although two of its dead letters fail again:\n%s\n%s", r.stdout, tail(r.stderr, 3000))
	}
	i := strings.LastIndex(r.stderr, "sluice dlq: ")
	if i < 0 {
		t.Fatalf("dlq replay printed no final error:\n%s", tail(r.stderr, 3000))
	}
	final := r.stderr[i:]
	if !strings.Contains(final, "in/c.json") || !strings.Contains(final, "not found") {
		t.Errorf("the final error does not say in/c.json is gone from the store:\n%s", final)
	}
	if !strings.Contains(final, "in/d.json") || !strings.Contains(final, "record 2") {
		t.Errorf("the final error does not name in/d.json's bad record 2:\n%s", final)
	}
	if !strings.Contains(r.stdout, "replayed 3 dead letter(s)") || !strings.Contains(r.stdout, "loaded 1 object(s), 2 row(s)") {
		t.Errorf("dlq replay says:\n%s", r.stdout)
	}
	for key, want := range map[string]int{"in/a.json": 1, "in/b.json": 1, "in/c.json": 0, "in/d.json": 0, "in/e.json": 0} {
		if n := ledgerOf(t, conn, schema, key); n != want {
			t.Errorf("after dlq replay: ledger rows for %s = %d, want %d", key, n, want)
		}
	}
	if n := pgInt(t, conn, "select count(*) from "+schema+".posts"); n != 4 {
		t.Errorf("posts has %d rows, want 4 (A's 2 and B's 2)", n)
	}
	dls = deadLetters(t, env, dataDir)
	if _, ok := dls["in/b.json"]; ok || len(dls) != 3 {
		t.Errorf("dead letters after replay: %v, want in/c.json, in/d.json and in/e.json", dls)
	}
	if dls["in/e.json"].attempts != tries["in/e.json"] {
		t.Errorf("in/e.json, not replayed, has %d attempts, want %d as before", dls["in/e.json"].attempts, tries["in/e.json"])
	}
	for _, key := range []string{"in/c.json", "in/d.json"} {
		if dls[key].attempts != tries[key]+1 {
			t.Errorf("%s: %d attempts, want %d (it failed once more on replay)", key, dls[key].attempts, tries[key]+1)
		}
	}
	if show := mustRun(t, env, "dlq", "show", dd, dls["in/c.json"].id); !strings.Contains(show.stdout, "not found in store") || !strings.Contains(show.stdout, "upload it again") {
		t.Errorf("in/c.json's dead letter does not say the object is gone and what to do:\n%s", show.stdout)
	}
	// D's bad record could also be set aside: the reason says how.
	if show := mustRun(t, env, "dlq", "show", dd, dls["in/d.json"].id); !strings.Contains(show.stdout, "column id") || !strings.Contains(show.stdout, "on_bad_record: quarantine") {
		t.Errorf("in/d.json's dead letter does not name column id and the spec key that quarantines bad records:\n%s", show.stdout)
	}
	// A is untouched: its ledger row is the one it had.
	afterA := ledgerSnapshot(t, conn, schema)
	if !strings.Contains(afterA, firstLine(before)) {
		t.Errorf("in/a.json's ledger row changed:\nbefore:\n%s\nafter:\n%s", before, afterA)
	}

	// Replaying the whole prefix writes nothing for A and B, loads E, and D
	// fails again.
	r = sluice(t, env, "replay", dd, "--prefix", "in/")
	if r.code == 0 {
		t.Errorf("replay --prefix exited 0 although in/d.json fails again:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "replayed 4 object event(s)") || !strings.Contains(r.stdout, "loaded 1 object(s), 1 row(s)") || !strings.Contains(r.stdout, "2 duplicate(s) skipped") {
		t.Errorf("replay --prefix says:\n%s\n%s", r.stdout, tail(r.stderr, 2000))
	}
	after := ledgerSnapshot(t, conn, schema)
	for _, l := range strings.Split(strings.TrimSpace(afterA), "\n") {
		if !strings.Contains(after, l+"\n") {
			t.Errorf("replay --prefix changed the ledger row %s:\nafter:\n%s", l, after)
		}
	}
	if n := strings.Count(after, "\n"); n != 3 {
		t.Errorf("ledger has %d rows after replay --prefix, want 3 (A, B, E):\n%s", n, after)
	}
	for key, want := range map[string]int{"in/a.json": 1, "in/b.json": 1, "in/c.json": 0, "in/d.json": 0, "in/e.json": 1} {
		if n := ledgerOf(t, conn, schema, key); n != want {
			t.Errorf("after replay --prefix: ledger rows for %s = %d, want %d", key, n, want)
		}
	}
	if n := pgInt(t, conn, "select count(*) from "+schema+".posts"); n != 5 {
		t.Errorf("posts has %d rows after replay --prefix, want 5", n)
	}
	if n := pgInt(t, conn, "select count(*) from (select id from "+schema+".posts group by id having count(*) > 1) d"); n != 0 {
		t.Errorf("%d ids loaded more than once", n)
	}
	dls = deadLetters(t, env, dataDir)
	if len(dls) != 2 || dls["in/d.json"].attempts != tries["in/d.json"]+2 || dls["in/c.json"].attempts != tries["in/c.json"]+1 {
		t.Errorf("dead letters after replay --prefix: %v, want in/c.json (%d attempts) and in/d.json (%d)", dls, tries["in/c.json"]+1, tries["in/d.json"]+2)
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// TestReplayingAPrefixOfLoadedObjectsLoadsNothingTwice loads 20 objects,
// then replays their prefix: the command exits 0 and neither the rows nor
// the ledger change.
func TestReplayingAPrefixOfLoadedObjectsLoadsNothingTwice(t *testing.T) {
	whURL, schema, conn := pgSchema(t)
	env := []string{"SLUICE_WAREHOUSE=" + whURL}
	dataDir := t.TempDir()
	dd := "--data-dir=" + dataDir
	writeObjects(t, dataDir, 20, 50)
	spec := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(spec, []byte(outageSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, env, "run", dd, "-f", spec, "--once")
	if n := pgInt(t, conn, "select count(*) from "+schema+".events"); n != 20*50 {
		t.Fatalf("first run loaded %d rows, want %d", n, 20*50)
	}
	before := ledgerSnapshot(t, conn, schema)
	if n := strings.Count(before, "\n"); n != 20 {
		t.Fatalf("ledger has %d rows, want 20:\n%s", n, before)
	}

	r := mustRun(t, env, "replay", dd, "--prefix", "in/")
	if !strings.Contains(r.stdout, "replayed 20 object event(s)") || !strings.Contains(r.stdout, "loaded 0 object(s), 0 row(s)") || !strings.Contains(r.stdout, "20 duplicate(s) skipped") {
		t.Errorf("replay --prefix says:\n%s", r.stdout)
	}
	if n := pgInt(t, conn, "select count(*) from "+schema+".events"); n != 20*50 {
		t.Errorf("rows after replay = %d, want %d", n, 20*50)
	}
	if after := ledgerSnapshot(t, conn, schema); after != before {
		t.Errorf("replay changed the ledger:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if dl := deadLetters(t, env, dataDir); len(dl) != 0 {
		t.Errorf("dead letters after replay: %v", dl)
	}

	// The same through a running sluice: it processes the replayed events
	// (its log says so for each) and writes nothing.
	d := startRun(t, dataDir, outageSpec, env...)
	// owner.json names the embedded queue once it is up: replay publishes
	// into it.
	waitDaemon(t, "sluice run to own the data dir and publish its queue", d, func() bool {
		b, err := os.ReadFile(filepath.Join(dataDir, "owner.json"))
		return err == nil && strings.Contains(string(b), `"queue_url"`)
	})
	r = mustRun(t, env, "replay", dd, "--prefix", "in/")
	if !strings.Contains(r.stdout, "replayed 20 object event(s)") || !strings.Contains(r.stdout, "the running sluice") {
		t.Errorf("replay --prefix through the running sluice says:\n%s", r.stdout)
	}
	waitDaemon(t, "the running sluice to skip the 20 replayed objects as already loaded", d, func() bool {
		log, _ := os.ReadFile(d.log)
		return strings.Count(string(log), "object version already loaded") >= 20
	})
	if n := pgInt(t, conn, "select count(*) from "+schema+".events"); n != 20*50 {
		t.Errorf("rows after replay through the running sluice = %d, want %d", n, 20*50)
	}
	if after := ledgerSnapshot(t, conn, schema); after != before {
		t.Errorf("replay through the running sluice changed the ledger:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestReplayingADeadLetterOfAnOverwrittenObjectClearsIt dead-letters a
// truncated object, then fixes it by overwriting it (a new version, with
// its own event, which loads). Replaying the old version's dead letter has
// nothing left to do — the old version is gone from the store and the new
// one is loaded — so the replay exits 0 and the dead letter disappears
// instead of staying listed forever; nothing is loaded twice.
func TestReplayingADeadLetterOfAnOverwrittenObjectClearsIt(t *testing.T) {
	dataDir := t.TempDir()
	dd := "--data-dir=" + dataDir
	spec := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(spec, []byte(replaySpec), 0o644); err != nil {
		t.Fatal(err)
	}
	putLake(t, dataDir, "in/b.json", `[{"id": 1, "title": "b1"}, {"id": 2, "ti`)
	if r := sluice(t, nil, "run", dd, "-f", spec, "--once"); r.code == 0 {
		t.Fatalf("run --once exited 0 with a truncated object:\n%s", r.stdout)
	}
	if dls := deadLetters(t, nil, dataDir); len(dls) != 1 {
		t.Fatalf("dead letters: %v, want in/b.json's", dls)
	}
	// The fix: a new version of the object.
	putLake(t, dataDir, "in/b.json", `[{"id": 1, "title": "b1"}, {"id": 2, "title": "b2"}]`)
	mustRun(t, nil, "run", dd, "-f", spec, "--once")
	count := func(q string) string {
		return strings.TrimSpace(mustRun(t, nil, "sql", dd, "--format=csv", "--no-header", q).stdout)
	}
	if n := count("select count(*) from posts"); n != "2" {
		t.Fatalf("the fixed version loaded %s rows, want 2", n)
	}

	r := mustRun(t, nil, "dlq", "replay", dd, "--all")
	if !strings.Contains(r.stdout, "replayed 1 dead letter(s)") {
		t.Errorf("dlq replay --all says:\n%s", r.stdout)
	}
	if dls := deadLetters(t, nil, dataDir); len(dls) != 0 {
		t.Errorf("the old version's dead letter is still listed after its replay found nothing left to do: %v", dls)
	}
	if n := count("select count(*) from posts"); n != "2" {
		t.Errorf("posts has %s rows after the replay, want 2", n)
	}
	if n := count("select count(*) from _sluice_ledger where object_key = 'in/b.json'"); n != "1" {
		t.Errorf("ledger rows for in/b.json = %s, want 1 (the new version)", n)
	}
}

// TestADeadLetterForAMissingTableLoadsOnceWhenReplayedOnSQLite is the
// missing-table case on the embedded warehouse: a table dropped under a
// running sluice dead-letters the object at once, naming the table, and
// `sluice dlq replay --all` with no sluice running recreates the table and
// loads the object once.
func TestADeadLetterForAMissingTableLoadsOnceWhenReplayedOnSQLite(t *testing.T) {
	dataDir := t.TempDir()
	dd := "--data-dir=" + dataDir
	whPath := filepath.Join(dataDir, "warehouse.db")
	d := startRun(t, dataDir, replaySpec)
	db, err := sql.Open("sqlite", "file:"+whPath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	waitDaemon(t, "sluice run to create table posts", d, func() bool {
		var n int
		err := db.QueryRow("select count(*) from sqlite_master where type = 'table' and name = 'posts'").Scan(&n)
		return err == nil && n == 1
	})
	if _, err := db.Exec("DROP TABLE posts"); err != nil {
		t.Fatal(err)
	}
	putLake(t, dataDir, "in/a.json", `[{"id": 1, "title": "a1"}, {"id": 2, "title": "a2"}]`)
	var dls map[string]deadLetter
	waitDaemon(t, "in/a.json to be dead-lettered for the missing table", d, func() bool {
		dls = deadLetters(t, nil, dataDir)
		return len(dls) == 1
	})
	dl := dls["in/a.json"]
	if dl.attempts != 1 || !strings.Contains(dl.line, "table posts does not exist") {
		t.Errorf("dlq ls does not show in/a.json dead-lettered once for the missing table posts:\n%s", dl.line)
	}
	d.stop()
	r := mustRun(t, nil, "dlq", "replay", dd, "--all")
	if !strings.Contains(r.stdout, "loaded 1 object(s), 2 row(s)") {
		t.Errorf("dlq replay --all says:\n%s", r.stdout)
	}
	count := func(q string) string {
		return strings.TrimSpace(mustRun(t, nil, "sql", dd, "--format=csv", "--no-header", q).stdout)
	}
	if got := count("select (select count(*) from posts) || ' ' || (select count(*) from _sluice_ledger where object_key = 'in/a.json')"); got != "2 1" {
		t.Errorf("rows and ledger rows of in/a.json = %q, want \"2 1\"", got)
	}
	if dls := deadLetters(t, nil, dataDir); len(dls) != 0 {
		t.Errorf("dead letters after the replay: %v", dls)
	}
}
