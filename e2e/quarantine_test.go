package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"
)

const (
	quarObjects = 200
	quarRecords = 100
	quarRounds  = 3
)

// quarSpec quarantines bad records into events__rejected.
const quarSpec = `name: quartest
queue: "embedded?ack_wait=2s"
loads:
  events:
    on: {prefix: in/, suffix: .json}
    format: json
    table: events
    write: append
    on_bad_record: quarantine
    columns:
      obj: bigint
      n: bigint
      payload: {type: text, required: true}
`

// quarBad returns the 1-based record numbers of object o's two bad
// records: the first has a string for the bigint n, the second lacks the
// required payload. They differ per object.
func quarBad(o int) (badType, badMissing int) {
	return 1 + o%50, 51 + (o*7)%50
}

// writeQuarInput drops quarObjects objects of quarRecords records, one
// record per line, straight into the local lake.
func writeQuarInput(t *testing.T, dataDir string) {
	t.Helper()
	dir := filepath.Join(dataDir, "lake", "in")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	pad := strings.Repeat("x", 200)
	for o := 0; o < quarObjects; o++ {
		badType, badMissing := quarBad(o)
		var b strings.Builder
		b.WriteString("[")
		for r := 1; r <= quarRecords; r++ {
			if r > 1 {
				b.WriteString(",\n")
			}
			switch r {
			case badType:
				fmt.Fprintf(&b, `{"obj": %d, "n": "not-a-number-%d", "payload": "object %d record %d %s"}`, o, r, o, r, pad)
			case badMissing:
				fmt.Fprintf(&b, `{"obj": %d, "n": %d}`, o, r)
			default:
				fmt.Fprintf(&b, `{"obj": %d, "n": %d, "payload": "object %d record %d %s"}`, o, r, o, r, pad)
			}
		}
		b.WriteString("]\n")
		p := filepath.Join(dir, fmt.Sprintf("obj-%03d.json", o))
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// runQuarKillTest kills `sluice run` with SIGKILL quarRounds times, each
// at a random ledger count with a margin before the last object, then
// finishes with `run --once` and checks the warehouse; then it replays
// every object and checks again.
func runQuarKillTest(t *testing.T, env []string, ledger counter, check func(t *testing.T)) {
	dataDir := t.TempDir()
	writeQuarInput(t, dataDir)
	specFile := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(specFile, []byte(quarSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	killDuringRuns(t, dataDir, specFile, env, ledger, quarObjects, 40, quarRounds)
	r := sluice(t, env, "run", "--data-dir="+dataDir, "-f", specFile, "--once", "--log-level=warn")
	if r.code != 0 {
		t.Fatalf("final run --once: exit %d\n%s\n%s", r.code, r.stdout, tail(r.stderr, 3000))
	}
	if dl := mustRun(t, env, "dlq", "ls", "--data-dir="+dataDir); !strings.Contains(dl.stdout, "no dead letters") {
		t.Errorf("quarantined records dead-lettered objects:\n%s", dl.stdout)
	}
	check(t)
	// Replaying every object writes neither rows nor rejected rows again.
	r = mustRun(t, env, "replay", "--data-dir="+dataDir, "-f", specFile, "--prefix", "in/", "--log-level=warn")
	if want := fmt.Sprintf("loaded 0 object(s), 0 row(s), 0 row(s) quarantined; %d duplicate(s) skipped", quarObjects); !strings.Contains(r.stdout, want) {
		t.Errorf("replay --prefix in/ does not say %q:\n%s", want, r.stdout)
	}
	check(t)
}

// rejectedRow is one row of events__rejected.
type rejectedRow struct {
	key    string
	record int
	reason string
	raw    string
}

// assertQuarantinedOnce checks that every object loaded its 98 good rows
// and its 2 bad ones into the quarantine table, once.
func assertQuarantinedOnce(t *testing.T, one func(string) int64, rejected func(string) []rejectedRow, events, ledger string) {
	t.Helper()
	good := quarRecords - 2
	if n := one("select count(*) from " + events); n != int64(quarObjects*good) {
		t.Errorf("rows = %d, want exactly %d", n, quarObjects*good)
	}
	if n := one("select count(*) from (select obj from " + events + " group by obj having count(*) <> " + fmt.Sprint(good) + ") d"); n != 0 {
		t.Errorf("%d objects do not have exactly %d rows", n, good)
	}
	if n := one("select count(distinct obj) from " + events); n != quarObjects {
		t.Errorf("objects with rows = %d, want %d", n, quarObjects)
	}
	if n := one("select count(*) from (select obj, n from " + events + " group by obj, n having count(*) > 1) d"); n != 0 {
		t.Errorf("%d duplicate (object, record) pairs, want 0", n)
	}
	if n := one("select count(*) from " + events + " where payload is null or n is null"); n != 0 {
		t.Errorf("%d bad records were loaded into the table (null n or payload)", n)
	}
	if n := one("select count(*) from " + ledger); n != quarObjects {
		t.Errorf("ledger rows = %d, want %d (one per object)", n, quarObjects)
	}
	if n := one("select count(distinct object_key) from " + ledger); n != quarObjects {
		t.Errorf("distinct ledger objects = %d, want %d", n, quarObjects)
	}
	if n := one("select count(*) from " + ledger + " where rows <> " + fmt.Sprint(good) + " or rejected <> 2"); n != 0 {
		t.Errorf("%d ledger rows do not record %d rows and 2 rejected", n, good)
	}

	rows := rejected("select _sluice_key, record, reason, raw from " + events + "__rejected order by _sluice_key, record")
	if len(rows) != 2*quarObjects {
		t.Errorf("rejected rows = %d, want %d (2 per object)", len(rows), 2*quarObjects)
	}
	seen := map[string]int{}
	bad := 0
	for _, r := range rows {
		seen[r.key]++
		var o int
		if _, err := fmt.Sscanf(r.key, "in/obj-%03d.json", &o); err != nil {
			t.Errorf("rejected row of an unknown object %q", r.key)
			continue
		}
		badType, badMissing := quarBad(o)
		var want []string
		switch r.record {
		case badType:
			want = []string{fmt.Sprintf("record %d", badType), "column n", fmt.Sprintf("not-a-number-%d", badType)}
		case badMissing:
			want = []string{fmt.Sprintf("record %d", badMissing), "column payload", "missing"}
		default:
			t.Errorf("%s: record %d was rejected; its bad records are %d and %d", r.key, r.record, badType, badMissing)
			continue
		}
		for _, w := range want {
			if !strings.Contains(r.reason, w) && bad < 5 {
				bad++
				t.Errorf("%s record %d: reason %q does not contain %q", r.key, r.record, r.reason, w)
			}
		}
		if !strings.Contains(r.raw, fmt.Sprintf(`"obj":%d`, o)) && !strings.Contains(r.raw, fmt.Sprintf(`"obj": %d`, o)) && bad < 5 {
			bad++
			t.Errorf("%s record %d: raw record %q is not the record", r.key, r.record, r.raw)
		}
	}
	if len(seen) != quarObjects {
		t.Errorf("objects with rejected rows = %d, want %d", len(seen), quarObjects)
	}
	for k, n := range seen {
		if n != 2 {
			t.Errorf("%s has %d rejected rows, want 2", k, n)
		}
	}
}

// TestQuarantineAcrossKillNineLoadsEachObjectsGoodAndBadRowsOnceOnSQLite
// (and OnPostgres): with on_bad_record: quarantine, 200 objects of 100
// records, each with a string for a bigint and a record without a required
// field, survive three kill -9s of sluice run and a final run --once with
// 98 rows per object in the table, its 2 bad records in events__rejected
// with reasons naming the record and the column, one ledger row per object
// and no duplicates; a replay of every object then changes nothing.
func TestQuarantineAcrossKillNineLoadsEachObjectsGoodAndBadRowsOnceOnSQLite(t *testing.T) {
	whPath := filepath.Join(t.TempDir(), "warehouse.db")
	env := []string{"SLUICE_WAREHOUSE=sqlite://" + whPath}
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", "file:"+whPath+"?mode=ro&_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	runQuarKillTest(t, env, func(ctx context.Context) (int, error) {
		if _, err := os.Stat(whPath); err != nil {
			return 0, err
		}
		db := open()
		defer db.Close()
		var n int
		err := db.QueryRowContext(ctx, "select count(*) from _sluice_ledger").Scan(&n)
		return n, err
	}, func(t *testing.T) {
		db := open()
		defer db.Close()
		checkSQLiteQuarantine(t, db)
	})
}

func checkSQLiteQuarantine(t *testing.T, db *sql.DB) {
	t.Helper()
	assertQuarantinedOnce(t, func(q string) int64 {
		var n int64
		if err := db.QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}, func(q string) []rejectedRow {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		var out []rejectedRow
		for rows.Next() {
			var r rejectedRow
			if err := rows.Scan(&r.key, &r.record, &r.reason, &r.raw); err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}, "events", "_sluice_ledger")
}

func TestQuarantineAcrossKillNineLoadsEachObjectsGoodAndBadRowsOnceOnPostgres(t *testing.T) {
	whURL, schema, conn := pgSchema(t)
	env := []string{"SLUICE_WAREHOUSE=" + whURL}
	runQuarKillTest(t, env, func(ctx context.Context) (int, error) {
		var n int
		err := conn.QueryRow(ctx, "select count(*) from "+schema+"._sluice_ledger").Scan(&n)
		return n, err
	}, func(t *testing.T) { checkPostgresQuarantine(t, conn, schema) })
}

func checkPostgresQuarantine(t *testing.T, conn *pgx.Conn, schema string) {
	t.Helper()
	ctx := context.Background()
	assertQuarantinedOnce(t, func(q string) int64 {
		var n int64
		if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}, func(q string) []rejectedRow {
		rows, err := conn.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		var out []rejectedRow
		for rows.Next() {
			var r rejectedRow
			if err := rows.Scan(&r.key, &r.record, &r.reason, &r.raw); err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}, schema+".events", schema+"._sluice_ledger")
}

// nullKeySpec merges in/*.json into posts on id; %s is an extra load key.
const nullKeySpec = `name: nullkey
queue: "embedded?ack_wait=2s"
loads:
  posts:
    on: {prefix: in/, suffix: .json}
    table: posts
    write: merge
    primary_key: [id]
    columns: {id: bigint, title: text}
%s`

// TestARowTheWarehouseRefusesNamesTheSpecKeyThatQuarantinesIt loads an
// object whose second record has a null primary key, which the decoder
// lets through and the warehouse refuses: its dead letter names the row,
// the column and the spec key that keeps the good rows, and once the spec
// sets that key, `sluice dlq replay` loads the two good rows and
// quarantines the bad one, once.
func TestARowTheWarehouseRefusesNamesTheSpecKeyThatQuarantinesIt(t *testing.T) {
	dataDir := t.TempDir()
	dd := "--data-dir=" + dataDir
	putLake(t, dataDir, "in/nullkey.json", `[{"id": 1, "title": "one"}, {"id": null, "title": "two"}, {"id": 3, "title": "three"}]`)
	dir := t.TempDir()
	plain, quar := filepath.Join(dir, "plain.yaml"), filepath.Join(dir, "quarantine.yaml")
	if err := os.WriteFile(plain, []byte(fmt.Sprintf(nullKeySpec, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(quar, []byte(fmt.Sprintf(nullKeySpec, "    on_bad_record: quarantine\n")), 0o644); err != nil {
		t.Fatal(err)
	}

	if r := sluice(t, nil, "run", dd, "-f", plain, "--once"); r.code == 0 {
		t.Fatalf("run --once exited 0 with a row the warehouse refuses:\n%s", r.stdout)
	}
	dls := deadLetters(t, nil, dataDir)
	dl, ok := dls["in/nullkey.json"]
	if !ok {
		t.Fatalf("in/nullkey.json was not dead-lettered: %v", dls)
	}
	// dlq ls shows a reason's first 200 characters: they must say why.
	if !strings.Contains(dl.line, "row 2") || !strings.Contains(dl.line, "column id") {
		t.Errorf("dlq ls does not show which row and column the warehouse refused:\n%s", dl.line)
	}
	show := mustRun(t, nil, "dlq", "show", dd, dl.id)
	for _, want := range []string{"row 2", "column id", "primary key column is null", "on_bad_record: quarantine"} {
		if !strings.Contains(show.stdout, want) {
			t.Errorf("the dead letter's reason does not contain %q:\n%s", want, show.stdout)
		}
	}
	// The key the reason names is one the spec accepts.
	mustRun(t, nil, "validate", "-f", quar)

	r := mustRun(t, nil, "dlq", "replay", dd, "--all", "-f", quar)
	if !strings.Contains(r.stdout, "loaded 1 object(s), 2 row(s), 1 row(s) quarantined") {
		t.Errorf("dlq replay with on_bad_record: quarantine says:\n%s", r.stdout)
	}
	count := func(q string) string {
		return strings.TrimSpace(mustRun(t, nil, "sql", dd, "--format=csv", "--no-header", q).stdout)
	}
	if got := count("select count(*) from posts where id in (1, 3)"); got != "2" || count("select count(*) from posts") != "2" {
		t.Errorf("posts holds %s rows, want ids 1 and 3", count("select count(*) from posts"))
	}
	if got := count("select count(*) from posts__rejected where _sluice_key = 'in/nullkey.json' and record = 2 and reason like '%column id%'"); got != "1" || count("select count(*) from posts__rejected") != "1" {
		t.Errorf("posts__rejected does not hold exactly in/nullkey.json's record 2 with a reason naming column id")
	}
	if got := count("select count(*) || ' ' || sum(rows) || ' ' || sum(rejected) from _sluice_ledger"); got != "1 2 1" {
		t.Errorf("ledger (objects rows rejected) = %q, want 1 2 1", got)
	}
	if dl := deadLetters(t, nil, dataDir); len(dl) != 0 {
		t.Errorf("dead letters after the replay: %v", dl)
	}
	// Replaying the object again writes nothing.
	mustRun(t, nil, "replay", dd, "--prefix", "in/", "-f", quar)
	if got := count("select (select count(*) from posts) || ' ' || (select count(*) from posts__rejected)"); got != "2 1" {
		t.Errorf("after replay --prefix (rows rejected) = %q, want 2 1", got)
	}
}
