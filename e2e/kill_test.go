package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

const (
	killObjects = 200
	killRecords = 1000
	killRounds  = 3
)

// writeKillInput drops the objects straight into the local lake, as another
// program would; the owning sluice finds them and emits their events.
func writeKillInput(t *testing.T, dataDir string) {
	t.Helper()
	dir := filepath.Join(dataDir, "lake", "in")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for o := 0; o < killObjects; o++ {
		var b strings.Builder
		b.WriteString("[")
		for n := 0; n < killRecords; n++ {
			if n > 0 {
				b.WriteString(",\n")
			}
			fmt.Fprintf(&b, `{"obj": %d, "n": %d, "payload": "object %d record %d"}`, o, n, o, n)
		}
		b.WriteString("]\n")
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("obj-%03d.json", o)), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Make them look long settled.
	old := time.Now().Add(-time.Minute)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.Chtimes(filepath.Join(dir, e.Name()), old, old)
	}
}

const killSpec = `name: killtest
queue: "embedded?ack_wait=2s"
loads:
  events:
    on: {prefix: in/, suffix: .json}
    format: json
    table: events
    write: append
    columns:
      obj: bigint
      n: bigint
      payload: text
`

// counter reads how many objects the ledger holds.
type counter func(ctx context.Context) (int, error)

func runKillTest(t *testing.T, env []string, ledger counter, check func(t *testing.T)) {
	dataDir := t.TempDir()
	writeKillInput(t, dataDir)
	specFile := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(specFile, []byte(killSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	killDuringRuns(t, dataDir, specFile, env, ledger, killObjects, 20, killRounds)
	r := sluice(t, env, "run", "--data-dir="+dataDir, "-f", specFile, "--once", "--log-level=warn")
	if r.code != 0 {
		t.Fatalf("final run --once: exit %d\n%s\n%s", r.code, r.stdout, tail(r.stderr, 3000))
	}
	check(t)
}

// killDuringRuns starts `sluice run` on dataDir rounds times and SIGKILLs it
// when the ledger reaches a random count: distinct points between the
// first object and objects-margin, so the kill lands before the last
// object commits however fast the machine is.
func killDuringRuns(t *testing.T, dataDir, specFile string, env []string, ledger counter, objects, margin, rounds int) {
	t.Helper()
	var points []int
	for len(points) < rounds {
		p := 1 + rand.IntN(objects-margin)
		if !slices.Contains(points, p) {
			points = append(points, p)
		}
	}
	slices.Sort(points)
	ctx := context.Background()
	for round, point := range points {
		cmd := exec.Command(bin, "run", "--data-dir="+dataDir, "-f", specFile, "--log-level=warn")
		cmd.Env = append(cleanEnv(), env...)
		logf, err := os.Create(filepath.Join(dataDir, fmt.Sprintf("run-%d.log", round)))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Minute)
		var n int
		for {
			n, err = ledger(ctx)
			if err == nil && n >= point {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				log, _ := os.ReadFile(logf.Name())
				t.Fatalf("round %d: ledger reached %d of %d objects in 2m (last error %v)\n%s", round, n, point, err, tail(string(log), 3000))
			}
			time.Sleep(2 * time.Millisecond)
		}
		if n >= objects {
			t.Fatalf("round %d: all %d objects loaded before the kill at %d; the kill must land mid-run", round, n, point)
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		logf.Close()
		t.Logf("round %d: killed -9 with %d objects in the ledger (target %d)", round, n, point)
	}
}

func TestKillNineDuringRunsLosesAndDuplicatesNothingOnSQLite(t *testing.T) {
	// The embedded warehouse, placed where the test can find it.
	whPath := filepath.Join(t.TempDir(), "warehouse.db")
	env := []string{"SLUICE_WAREHOUSE=sqlite://" + whPath}
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", "file:"+whPath+"?mode=ro&_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	ledger := func(ctx context.Context) (int, error) {
		if _, err := os.Stat(whPath); err != nil {
			return 0, err
		}
		db := open()
		defer db.Close()
		var n int
		err := db.QueryRowContext(ctx, "select count(*) from _sluice_ledger").Scan(&n)
		return n, err
	}
	runKillTest(t, env, ledger, func(t *testing.T) {
		db := open()
		defer db.Close()
		assertExactlyOnce(t, func(q string) int64 {
			var n int64
			if err := db.QueryRow(q).Scan(&n); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			return n
		}, "events", "_sluice_ledger")
	})
}

func TestKillNineDuringRunsLosesAndDuplicatesNothingOnPostgres(t *testing.T) {
	whURL, schema, conn := pgSchema(t)
	env := []string{"SLUICE_WAREHOUSE=" + whURL}
	ledger := func(ctx context.Context) (int, error) {
		var n int
		err := conn.QueryRow(ctx, "select count(*) from "+schema+"._sluice_ledger").Scan(&n)
		return n, err
	}
	runKillTest(t, env, ledger, func(t *testing.T) {
		assertExactlyOnce(t, func(q string) int64 {
			var n int64
			if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			return n
		}, schema+".events", schema+"._sluice_ledger")
	})
}

func assertExactlyOnce(t *testing.T, one func(string) int64, events, ledger string) {
	t.Helper()
	if n := one("select count(*) from " + events); n != killObjects*killRecords {
		t.Errorf("rows = %d, want exactly %d", n, killObjects*killRecords)
	}
	if n := one("select count(*) from (select obj, n from " + events + " group by obj, n having count(*) > 1) d"); n != 0 {
		t.Errorf("%d duplicate (object, record) pairs, want 0", n)
	}
	if n := one("select count(*) from (select distinct obj, n from " + events + ") d"); n != killObjects*killRecords {
		t.Errorf("distinct (object, record) pairs = %d, want %d", n, killObjects*killRecords)
	}
	if n := one("select count(*) from " + ledger); n != killObjects {
		t.Errorf("ledger rows = %d, want %d (one per object)", n, killObjects)
	}
	if n := one("select count(distinct object_key) from " + ledger); n != killObjects {
		t.Errorf("distinct ledger objects = %d, want %d", n, killObjects)
	}
}
