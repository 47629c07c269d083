package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluicehq/sluice/job"
)

// The chain the design promises — raw CSV → curated Parquet → warehouse
// table — across kill -9: CSV objects load straight into one table (with
// the curate job's casts), a curate job per folder turns the same CSVs
// into Parquet, and a load with format parquet takes the job's part files
// into a second table. Each table must end with every record exactly once.

const (
	chainGroups  = 10
	chainObjects = 20 // per group
	chainRecords = 500
)

func writeChainInput(t *testing.T, dataDir string) {
	t.Helper()
	old := time.Now().Add(-time.Minute)
	for g := range chainGroups {
		dir := filepath.Join(dataDir, "lake", "in", fmt.Sprintf("g%02d", g))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for o := range chainObjects {
			var b strings.Builder
			b.WriteString("obj,n,payload,amount\r\n")
			obj := g*chainObjects + o
			for n := range chainRecords {
				// Quoted fields with the delimiter and a quote in them, CRLF.
				fmt.Fprintf(&b, "%d,%d,\"object %d, record \"\"%d\"\"\",%d.5\r\n", obj, n, obj, n, n)
			}
			f := filepath.Join(dir, fmt.Sprintf("obj-%03d.csv", obj))
			if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			os.Chtimes(f, old, old)
		}
	}
}

const chainSpec = `name: chain
queue: "embedded?ack_wait=2s"
loads:
  csv_events:
    on: {prefix: in/, suffix: .csv}
    table: csv_events
    columns: {obj: bigint, n: bigint, payload: text, amount: double}
  curated_events:
    on: {prefix: curated/}
    format: parquet
    table: curated_events
    columns: {obj: bigint, n: bigint, payload: text, amount: double}
jobs:
  curate:
    on: {prefix: in/, suffix: .csv}
    group: "{{.Key.Parent}}"
    settle: 1s
    curate:
      input: "in/{{.Group}}/"
      output: "curated/{{.Group}}/"
      columns: {obj: bigint, n: bigint, payload: text, amount: double}
`

// chainSetup writes the chain's input and spec and gives a PostgreSQL
// schema for its tables.
func chainSetup(t *testing.T) (env []string, dataDir, specFile, schema string, conn *pgx.Conn) {
	t.Helper()
	whURL, schema, conn := pgSchema(t)
	dataDir = t.TempDir()
	writeChainInput(t, dataDir)
	specFile = filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(specFile, []byte(chainSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	return []string{"SLUICE_WAREHOUSE=" + whURL}, dataDir, specFile, schema, conn
}

func TestCSVAndChainedParquetLoadsAreExactlyOnceAcrossKillNine(t *testing.T) {
	env, dataDir, specFile, schema, conn := chainSetup(t)
	ctx := context.Background()
	one := func(q string) int64 {
		t.Helper()
		var n int64
		if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	objects := chainGroups * chainObjects
	ledger := func(ctx context.Context) (int, error) {
		var n int
		err := conn.QueryRow(ctx, "select count(*) from "+schema+"._sluice_ledger where table_name = 'csv_events'").Scan(&n)
		return n, err
	}
	killDuringRuns(t, dataDir, specFile, env, ledger, objects, 20, 3)
	// Runs until every load and job is done; a second --once catches the
	// part files whose events the last one emitted.
	for range 2 {
		if r := sluice(t, env, "run", "--data-dir="+dataDir, "-f", specFile, "--once", "--log-level=warn"); r.code != 0 {
			t.Fatalf("final run --once: exit %d\n%s\n%s", r.code, r.stdout, tail(r.stderr, 3000))
		}
	}
	want := int64(objects * chainRecords)
	for _, table := range []string{"csv_events", "curated_events"} {
		tq := schema + "." + table
		if n := one("select count(*) from " + tq); n != want {
			t.Errorf("%s: %d rows, want exactly %d", table, n, want)
		}
		if n := one("select count(*) from (select obj, n from " + tq + " group by obj, n having count(*) > 1) d"); n != 0 {
			t.Errorf("%s: %d duplicate (object, record) pairs, want 0", table, n)
		}
		// The casts: amount is n + 0.5, payload keeps its quotes and comma.
		if n := one("select count(*) from " + tq + " where amount <> n + 0.5 or payload <> format('object %s, record \"%s\"', obj, n)"); n != 0 {
			t.Errorf("%s: %d rows whose values did not survive the casts", table, n)
		}
	}
	if n := one("select count(*) from " + schema + "._sluice_ledger where table_name = 'csv_events'"); n != int64(objects) {
		t.Errorf("csv_events ledger rows = %d, want %d", n, objects)
	}
	if n := one("select count(*) from " + schema + "._sluice_ledger where table_name = 'curated_events' and object_key not like 'curated/g__/part-%.snappy.parquet'"); n != 0 {
		t.Errorf("the parquet load took %d objects that are not part files (_SUCCESS?)", n)
	}
}

// A job run killed together with its `sluice run` after its commit and
// before its record (the failpoint SIGKILLs the parent, then itself) is
// marked FAILED at the next start and its group runs again. The rerun reads
// the same input versions, so it must rewrite the same part files — same
// keys, same bytes — and the load chained onto the output must hold every
// record once, whether it took the first run's parts or the rerun's.
func TestARerunOfACommittedButUnrecordedJobDuplicatesNothingDownstream(t *testing.T) {
	env, dataDir, specFile, schema, conn := chainSetup(t)
	r := sluice(t, append(env, "SLUICE_FAILPOINT=curate-after-commit"), "run", "--data-dir="+dataDir, "-f", specFile, "--once", "--log-level=warn")
	if r.code != -1 {
		t.Fatalf("run with the failpoint: exit %d, want killed\n%s", r.code, tail(r.stderr, 3000))
	}
	committed := map[string][]string{} // group → its output keys, as the killed run left them
	for g := range chainGroups {
		group := fmt.Sprintf("g%02d", g)
		if out := curated(t, dataDir, group); len(out) > 0 {
			committed[group] = out
		}
	}
	if len(committed) == 0 {
		t.Fatal("no group's output was committed before the kill")
	}
	for range 2 {
		if r := sluice(t, env, "run", "--data-dir="+dataDir, "-f", specFile, "--once", "--log-level=warn"); r.code != 0 {
			t.Fatalf("run --once: exit %d\n%s\n%s", r.code, r.stdout, tail(r.stderr, 3000))
		}
	}
	// Other groups' runs in flight at the kill fail too, before their
	// commit; at least one FAILED run must be a committed one.
	var rerun int
	for _, run := range runs(t, dataDir) {
		if _, ok := committed[run.Group]; ok && run.State == job.Failed {
			rerun++
		}
	}
	if rerun == 0 {
		t.Fatal("no committed group's run was left FAILED by the kill: the failpoint did not fire between commit and record")
	}
	for group, before := range committed {
		if after := curated(t, dataDir, group); !slices.Equal(after, before) {
			t.Errorf("group %s: the rerun over unchanged inputs wrote %v, the killed run %v", group, after, before)
		}
	}
	var rows, dups int64
	q := schema + ".curated_events"
	if err := conn.QueryRow(context.Background(), "select count(*) from "+q).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(context.Background(), "select count(*) from (select obj, n from "+q+" group by obj, n having count(*) > 1) d").Scan(&dups); err != nil {
		t.Fatal(err)
	}
	if want := int64(chainGroups * chainObjects * chainRecords); rows != want || dups != 0 {
		t.Fatalf("curated_events: %d rows with %d duplicate (object, record) pairs; want exactly %d and 0", rows, dups, want)
	}
}
