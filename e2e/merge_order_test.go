package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sluicehq/sluice/internal/testsvc"
	_ "modernc.org/sqlite"
)

// The merge-order tests: 30 objects, each a new version of the one row
// id=1, must leave that row at its last version, whatever order sluice's
// consumers commit them in. The defect they guard against: with an outage
// in the middle, retried objects committed in backoff order and the table
// ended with version 4 of 30.

const mergeVersions = 30

// mergeSpec is a merge load of in/*.json into table versions. --workers 4
// (see startMergeRun) gives several consumers, so commit order differs from
// write order. retry.max_backoff is lowered from its 1m default so that
// after an outage the next try comes within 2 s instead of up to a minute
// later, keeping each test well under two minutes; the backoff still grows
// (1s, 2s, 2s, ...) and is jittered, so the retried objects still commit in
// an order of their own.
func mergeSpec(orderBy bool) string {
	s := `name: mergeorder
retry: {max_backoff: 2s}
loads:
  versions:
    on: {prefix: in/, suffix: .json}
    table: versions
    write: merge
    primary_key: [id]
    columns: {id: bigint, version: bigint, seq: bigint}
`
	if orderBy {
		s += "    order_by: seq\n"
	}
	return s
}

// startMergeRun starts `sluice run --workers 4`, like startRun.
func startMergeRun(t *testing.T, dataDir, spec string, env []string) *daemon {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(f, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "run.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--data-dir="+dataDir, "-f", f, "--workers", "4")
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, dataDir: dataDir, log: logPath}
	t.Cleanup(func() { d.stop(); logf.Close() })
	return d
}

// versionFile writes in/vNN.json holding version n into the data dir's lake,
// as another program would.
func versionFile(dataDir string, n int) (string, error) {
	dir := filepath.Join(dataDir, "lake", "in")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	p := filepath.Join(dir, fmt.Sprintf("v%02d.json", n))
	return p, os.WriteFile(p, fmt.Appendf(nil, `{"id":1,"version":%d,"seq":%d}`+"\n", n, n), 0o644)
}

// writeVersions writes versions 1..30 (reverse: 30..1) 0.5 s apart, and
// checks that every file's modification time is later than the previous
// one's, since that is the order the versions were written in.
func writeVersions(dataDir string, reverse bool) error {
	var prev time.Time
	for i := 1; i <= mergeVersions; i++ {
		n := i
		if reverse {
			n = mergeVersions + 1 - i
		}
		if i > 1 {
			time.Sleep(500 * time.Millisecond)
		}
		p, err := versionFile(dataDir, n)
		if err != nil {
			return err
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if !fi.ModTime().After(prev) {
			return fmt.Errorf("%s: modification time %s is not after the previous file's %s", p, fi.ModTime(), prev)
		}
		prev = fi.ModTime()
	}
	return nil
}

// mergeWarehouse is the warehouse a merge-order test runs on.
type mergeWarehouse struct {
	env []string
	// ledger counts the objects in the ledger; -1 while it cannot be read.
	ledger func() int
	// rows returns (version, seq) of every row of table versions.
	rows func(t *testing.T) [][2]int64
	// outage makes the warehouse unavailable for a while and brings it
	// back once foundAll has also returned true; nil for no outage.
	outage func(t *testing.T, foundAll func() bool)
	// committed returns the ledger's object keys in commit order (for the
	// log: it shows how far commit order strayed from write order).
	committed func(t *testing.T) []string
}

// logCommitOrder logs the order the objects were committed in and how many
// pairs of them were committed in the opposite order to the one they were
// written in.
func logCommitOrder(t *testing.T, keys []string, reverse bool) {
	t.Helper()
	var vs []int
	for _, k := range keys {
		var n int
		if _, err := fmt.Sscanf(k, "in/v%d.json", &n); err != nil {
			t.Fatalf("ledger key %q: %v", k, err)
		}
		if reverse {
			n = mergeVersions + 1 - n // the write position
		}
		vs = append(vs, n)
	}
	inversions := 0
	for i := range vs {
		for j := i + 1; j < len(vs); j++ {
			if vs[i] > vs[j] {
				inversions++
			}
		}
	}
	t.Logf("objects committed in write positions %v: %d pairs out of write order", vs, inversions)
}

// runMergeOrder runs sluice, writes the 30 versions, makes the outage once
// about a third of them are in the ledger, and checks that the table ends
// with the one row at version 30 (and seq 30), that every object is in the
// ledger once and that nothing was dead-lettered.
func runMergeOrder(t *testing.T, wh mergeWarehouse, orderBy, reverse bool) {
	dataDir := t.TempDir()
	d := startMergeRun(t, dataDir, mergeSpec(orderBy), wh.env)
	written := make(chan error, 1)
	go func() { written <- writeVersions(dataDir, reverse) }()

	waitLedger := func(n int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for wh.ledger() < n {
			if time.Now().After(deadline) {
				t.Fatalf("ledger has %d of %d objects after %s:\n%s", wh.ledger(), n, within, d.logTail())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if wh.outage != nil {
		waitLedger(10, 90*time.Second)
		if n := wh.ledger(); n >= mergeVersions {
			t.Fatalf("all %d objects were loaded before the outage; it must land mid-run", n)
		}
		// The outage lasts until sluice has found every file too, so that
		// the last versions are among the work that waits it out rather
		// than arriving after it.
		wh.outage(t, func() bool {
			log, _ := os.ReadFile(d.log)
			return strings.Count(string(log), `msg="found object" key=in/`) >= mergeVersions
		})
	}
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	waitLedger(mergeVersions, 2*time.Minute)

	if n := wh.ledger(); n != mergeVersions {
		t.Errorf("ledger rows = %d, want %d (one per object)", n, mergeVersions)
	}
	rows := wh.rows(t)
	if len(rows) != 1 || rows[0] != [2]int64{mergeVersions, mergeVersions} {
		t.Errorf("table versions holds (version, seq) %v, want exactly [[30 30]]\n%s", rows, d.logTail())
	}
	logCommitOrder(t, wh.committed(t), reverse)
	if dl := mustRun(t, wh.env, "dlq", "ls", "--data-dir="+dataDir); !strings.Contains(dl.stdout, "no dead letters") {
		t.Errorf("dead letters:\n%s", dl.stdout)
	}
	if wh.outage != nil {
		if log, _ := os.ReadFile(d.log); !strings.Contains(string(log), "succeeded after retries") {
			t.Errorf("the log shows no load that succeeded after retries, so the outage hit nothing:\n%s", d.logTail())
		}
	}
}

// waitFor polls cond for up to a minute.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 1m for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// privatePGMerge is a merge warehouse on a private PostgreSQL, in schema m,
// whose outage stops the server for 8 s (or until sluice has found every
// file, if that is later).
func privatePGMerge(t *testing.T) mergeWarehouse {
	pg := testsvc.StartPG(t)
	return mergeWarehouse{
		env:    []string{"SLUICE_WAREHOUSE=" + pg.URL("m")},
		ledger: func() int { return pg.Count("select count(*) from m._sluice_ledger") },
		rows: func(t *testing.T) [][2]int64 {
			t.Helper()
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.Port))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			return pgVersions(t, conn, "select version, seq from m.versions order by version")
		},
		committed: func(t *testing.T) []string {
			t.Helper()
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.Port))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			return pgKeys(t, conn, "m")
		},
		outage: func(t *testing.T, foundAll func() bool) {
			pg.Stop()
			stopped := time.Now()
			time.Sleep(8 * time.Second)
			waitFor(t, foundAll, "sluice to find every file")
			pg.Start()
			t.Logf("PostgreSQL was down for %s", time.Since(stopped).Round(100*time.Millisecond))
		},
	}
}

// pgVersions runs a (version, seq) query on PostgreSQL.
func pgVersions(t *testing.T, conn *pgx.Conn, q string) [][2]int64 {
	t.Helper()
	rs, err := conn.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rs.Close()
	var out [][2]int64
	for rs.Next() {
		var r [2]int64
		if err := rs.Scan(&r[0], &r[1]); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

// pgKeys returns the object keys of schema's ledger in the order of their
// transactions' start (loaded_at is now()), close to commit order.
func pgKeys(t *testing.T, conn *pgx.Conn, schema string) []string {
	t.Helper()
	rs, err := conn.Query(context.Background(), "select object_key from "+schema+"._sluice_ledger order by loaded_at, object_key")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := pgx.CollectRows(rs, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// scanVersions runs a (version, seq) query on SQLite.
func scanVersions(t *testing.T, db *sql.DB, q string) [][2]int64 {
	t.Helper()
	rs, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rs.Close()
	var out [][2]int64
	for rs.Next() {
		var r [2]int64
		if err := rs.Scan(&r[0], &r[1]); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// sqliteMerge is a merge warehouse on the embedded SQLite warehouse. SQLite
// has no server to stop, so its outage is another process's write lock: a
// connection of the test holds BEGIN EXCLUSIVE on the warehouse file for
// 15 s (or until sluice has found every file, if that is later), longer
// than sluice's 10 s busy timeout, so loads fail with SQLITE_BUSY
// (transient) and are retried until the lock is released.
func sqliteMerge(t *testing.T, outage bool) mergeWarehouse {
	path := filepath.Join(t.TempDir(), "warehouse.db")
	ro := func() *sql.DB {
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	wh := mergeWarehouse{
		env: []string{"SLUICE_WAREHOUSE=sqlite://" + path},
		ledger: func() int {
			if _, err := os.Stat(path); err != nil {
				return -1
			}
			db := ro()
			defer db.Close()
			var n int
			if err := db.QueryRow("select count(*) from _sluice_ledger").Scan(&n); err != nil {
				return -1
			}
			return n
		},
		rows: func(t *testing.T) [][2]int64 {
			t.Helper()
			db := ro()
			defer db.Close()
			return scanVersions(t, db, "select version, seq from versions order by version")
		},
		committed: func(t *testing.T) []string {
			t.Helper()
			db := ro()
			defer db.Close()
			// One writer: rowid order is commit order.
			rs, err := db.Query("select object_key from _sluice_ledger order by rowid")
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			var keys []string
			for rs.Next() {
				var k string
				if err := rs.Scan(&k); err != nil {
					t.Fatal(err)
				}
				keys = append(keys, k)
			}
			if err := rs.Err(); err != nil {
				t.Fatal(err)
			}
			return keys
		},
	}
	if outage {
		wh.outage = func(t *testing.T, foundAll func() bool) {
			t.Helper()
			ctx := context.Background()
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(30000)")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			conn, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := conn.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
				t.Fatalf("lock the warehouse: %v", err)
			}
			locked := time.Now()
			time.Sleep(15 * time.Second)
			waitFor(t, foundAll, "sluice to find every file")
			if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
				t.Fatalf("unlock the warehouse: %v", err)
			}
			t.Logf("the warehouse was locked for %s", time.Since(locked).Round(100*time.Millisecond))
		}
	}
	return wh
}

// TestMergeOfThirtyVersionsWithAPostgresOutageEndsAtTheLastVersion writes 30
// versions of one row 0.5 s apart while four consumers load them, stops
// PostgreSQL for 8 s after about ten: the row ends at version 30.
func TestMergeOfThirtyVersionsWithAPostgresOutageEndsAtTheLastVersion(t *testing.T) {
	runMergeOrder(t, privatePGMerge(t), false, false)
}

// TestMergeOfThirtyVersionsWithASQLiteLockEndsAtTheLastVersion is the same
// on SQLite, the outage being another process's exclusive lock held 15 s.
func TestMergeOfThirtyVersionsWithASQLiteLockEndsAtTheLastVersion(t *testing.T) {
	runMergeOrder(t, sqliteMerge(t, true), false, false)
}

// TestMergeOrderByWinsOverWriteOrderOnPostgres writes the 30 versions in
// reverse (the newest file holds seq 1); with order_by: seq the row ends
// at seq 30.
func TestMergeOrderByWinsOverWriteOrderOnPostgres(t *testing.T) {
	whURL, schema, conn := pgSchema(t)
	ctx := context.Background()
	runMergeOrder(t, mergeWarehouse{
		env: []string{"SLUICE_WAREHOUSE=" + whURL},
		ledger: func() int {
			var n int
			if err := conn.QueryRow(ctx, "select count(*) from "+schema+"._sluice_ledger").Scan(&n); err != nil {
				return -1
			}
			return n
		},
		rows: func(t *testing.T) [][2]int64 {
			t.Helper()
			return pgVersions(t, conn, "select version, seq from "+schema+".versions order by version")
		},
		committed: func(t *testing.T) []string { return pgKeys(t, conn, schema) },
	}, true, true)
}

// TestMergeOrderByWinsOverWriteOrderOnSQLiteThroughALock is the same on
// SQLite, with the 15 s lock in the middle.
func TestMergeOrderByWinsOverWriteOrderOnSQLiteThroughALock(t *testing.T) {
	runMergeOrder(t, sqliteMerge(t, true), true, true)
}

// TestMergeOrdersFoundFilesByTheirModificationTime: files another program
// wrote while sluice was down are found together by the rescan at start,
// in key order; their versions must still be ordered by when they were
// written (the modification time), not by when sluice found them. Here
// v30.json is the oldest and v01.json the newest file, so without order_by
// the row ends at version 1.
func TestMergeOrdersFoundFilesByTheirModificationTime(t *testing.T) {
	wh := sqliteMerge(t, false)
	dataDir := t.TempDir()
	written := time.Now().Add(-time.Hour)
	for n := mergeVersions; n >= 1; n-- {
		p, err := versionFile(dataDir, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, written, written); err != nil {
			t.Fatal(err)
		}
		written = written.Add(500 * time.Millisecond)
	}
	specFile := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(specFile, []byte(mergeSpec(false)), 0o644); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, wh.env, "run", "--data-dir="+dataDir, "-f", specFile, "--once", "--workers", "4")
	if n := wh.ledger(); n != mergeVersions {
		t.Errorf("ledger rows = %d, want %d", n, mergeVersions)
	}
	if rows := wh.rows(t); len(rows) != 1 || rows[0] != [2]int64{1, 1} {
		t.Errorf("table versions holds (version, seq) %v, want exactly [[1 1]], the newest file's\n%s", rows, tail(r.stderr, 3000))
	}
}
