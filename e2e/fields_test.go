package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMisspeltAndUndeclaredFieldsAreReportedAndNewColumnsAdded covers the
// "silent NULLs and dropped columns" defect: a declared field that never
// occurs (a misspelt titel) and an undeclared one (zip) are reported in the
// log and the run summary instead of loading NULLs without a word, and a
// column added to the spec of an existing table is added to the table.
func TestMisspeltAndUndeclaredFieldsAreReportedAndNewColumnsAdded(t *testing.T) {
	dataDir := t.TempDir()
	dd := "--data-dir=" + dataDir
	in := filepath.Join(dataDir, "lake", "in")
	os.MkdirAll(in, 0o755)
	write := func(name, body string) {
		p := filepath.Join(in, name)
		os.WriteFile(p, []byte(body), 0o644)
		old := time.Now().Add(-time.Minute)
		os.Chtimes(p, old, old)
	}
	spec := func(cols string) string {
		f := filepath.Join(t.TempDir(), "pipeline.yaml")
		os.WriteFile(f, []byte("name: fields\nloads:\n  posts:\n    on: {prefix: in/}\n    table: posts\n    columns: {"+cols+"}\n"), 0o644)
		return f
	}
	write("a.json", `[{"id": 1, "title": "first", "zip": "12345", "body": "b1"}]`)
	r := mustRun(t, nil, "run", dd, "-f", spec("id: bigint, titel: text"), "--once")
	if !strings.Contains(r.stdout, "1 object(s) with field warnings") {
		t.Errorf("the summary does not count the object with field warnings:\n%s", r.stdout)
	}
	for _, want := range []string{"titel", "zip", "in/a.json"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the log does not name %q:\n%s", want, tail(r.stderr, 2000))
		}
	}

	// A column added to the spec is added to the existing table.
	write("b.json", `[{"id": 2, "title": "second", "body": "b2"}]`)
	mustRun(t, nil, "run", dd, "-f", spec("id: bigint, titel: text, body: text"), "--once")
	got := mustRun(t, nil, "sql", dd, "--format=csv", "--no-header", "select id, coalesce(body, 'NULL') from posts order by id")
	if got.stdout != "1,NULL\n2,b2\n" {
		t.Errorf("rows after adding column body = %q, want 1,NULL and 2,b2", got.stdout)
	}
}

// TestNestedPathsLoadTypedColumns loads address.city and a key with a dot
// through path: [...].
func TestNestedPathsLoadTypedColumns(t *testing.T) {
	dataDir := t.TempDir()
	in := filepath.Join(dataDir, "lake", "in")
	os.MkdirAll(in, 0o755)
	p := filepath.Join(in, "a.json")
	os.WriteFile(p, []byte(`[{"id": 1, "address": {"city": "Oslo", "geo": {"lat": 59.9}}, "a.b": "dotted"}, {"id": 2}]`), 0o644)
	old := time.Now().Add(-time.Minute)
	os.Chtimes(p, old, old)
	f := filepath.Join(t.TempDir(), "pipeline.yaml")
	os.WriteFile(f, []byte(`name: nested
loads:
  people:
    on: {prefix: in/}
    table: people
    columns:
      id: bigint
      address.city: text
      address.geo.lat: double
      ab: {type: text, path: ["a.b"]}
`), 0o644)
	dd := "--data-dir=" + dataDir
	mustRun(t, nil, "run", dd, "-f", f, "--once")
	got := mustRun(t, nil, "sql", dd, "--format=csv", "--no-header", "select id, coalesce(address_city, 'NULL'), coalesce(address_geo_lat, -1), coalesce(ab, 'NULL') from people order by id")
	if got.stdout != "1,Oslo,59.9,dotted\n2,NULL,-1,NULL\n" {
		t.Errorf("rows = %q", got.stdout)
	}
}
