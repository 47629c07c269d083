package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/datadir"
)

// After `SLUICE_WAREHOUSE=postgres://… sluice demo`, a plain `sluice sql`
// (the variable unset) queries PostgreSQL, where the demo loaded, not the
// data dir's SQLite: the owner recorded its warehouse and state in the
// data dir, without the password. jobs and dlq read the recorded state
// the same way.
func TestSQLAfterAPostgresDemoReadsPostgresWithoutTheVariable(t *testing.T) {
	whURL, schema, _ := pgSchema(t)
	stURL, stSchema, _ := pgSchema(t)
	// A password in the URLs (the server trusts local connections, so it
	// is not needed later): it must not be kept in the data dir.
	withPW := func(u string) string { return strings.Replace(u, "postgres@", "postgres:s3cret-pw@", 1) }
	dataDir := t.TempDir()
	dd := "--data-dir=" + dataDir
	mustRun(t, []string{"SLUICE_WAREHOUSE=" + withPW(whURL), "SLUICE_STATE=" + withPW(stURL)}, "demo", dd)

	r := mustRun(t, nil, "sql", dd, "--format=csv", "--no-header", "-v", "select count(*) from posts")
	if r.stdout != "100\n" {
		t.Fatalf("sql count(*) without SLUICE_WAREHOUSE = %q, want 100\n%s", r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "sluice sql: reading warehouse postgres://postgres@127.0.0.1:5432/test?") || !strings.Contains(r.stderr, "recorded by the data dir's last owner") {
		t.Errorf("sql -v note = %q", r.stderr)
	}
	// It is PostgreSQL, in the demo's schema …
	if got := mustRun(t, nil, "sql", dd, "--format=csv", "--no-header", "select current_database(), current_schema()").stdout; got != "test,"+schema+"\n" {
		t.Errorf("current_database(), current_schema() = %q, want test,%s", got, schema)
	}
	// … and the data dir's own warehouse has no posts table.
	own := datadir.Dir{Path: dataDir}.WarehouseURL()
	if _, err := os.Stat(filepath.Join(dataDir, "warehouse.db")); err == nil {
		if got := mustRun(t, nil, "sql", dd, "--warehouse", own, "--format=csv", "--no-header", "select count(*) from sqlite_master where name = 'posts'").stdout; got != "0\n" {
			t.Errorf("the data dir's warehouse.db has a posts table (%q)", got)
		}
	}

	// What was recorded: both URLs without the password, the owner's alone.
	p := filepath.Join(dataDir, datadir.RecordFile)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "s3cret-pw") || !strings.Contains(string(b), "schema="+schema) || !strings.Contains(string(b), "schema="+stSchema) {
		t.Errorf("%s:\n%s", p, b)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v, %v; want 0600", p, fi.Mode().Perm(), err)
	}

	// jobs and dlq read the recorded PostgreSQL state.
	r = mustRun(t, nil, "jobs", dd, "-v")
	if !strings.Contains(r.stdout, "hydropower  2020-08-07_2PM  SUCCEEDED") || !strings.Contains(r.stderr, "schema="+stSchema) {
		t.Errorf("jobs without SLUICE_STATE:\n%s\n%s", r.stdout, r.stderr)
	}
	if r = mustRun(t, nil, "dlq", "ls", dd); r.stdout != "no dead letters\n" {
		t.Errorf("dlq ls = %q", r.stdout)
	}
	if r = mustRun(t, nil, "jobs", dd, "--cost"); !strings.Contains(r.stdout, "hydropower  1     1") {
		t.Errorf("jobs --cost:\n%s", r.stdout)
	}

	// A later demo on the embedded defaults records them, and sql follows.
	mustRun(t, nil, "demo", dd)
	if got := mustRun(t, nil, "sql", dd, "--format=csv", "--no-header", "select count(*) from sqlite_master where name = 'posts'").stdout; got != "1\n" {
		t.Errorf("after a demo on the defaults, sql reads the data dir's SQLite: %q", got)
	}
}
