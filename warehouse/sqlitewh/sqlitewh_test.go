package sqlitewh_test

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/schema"
	"github.com/sluicehq/sluice/warehouse/driver"
	"github.com/sluicehq/sluice/warehouse/drivertest"
	"github.com/sluicehq/sluice/warehouse/sqlitewh"
)

func TestConformance(t *testing.T) {
	drivertest.RunConformanceTests(t, func(t *testing.T) driver.Warehouse {
		w, err := sqlitewh.Open(t.Context(), filepath.Join(t.TempDir(), "wh.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := w.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return w
	})
}

func TestOpenRefusesInMemoryAndEmptyPaths(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file::memory:"} {
		if w, err := sqlitewh.Open(t.Context(), p); err == nil {
			w.Close()
			t.Errorf("Open(%q) succeeded, want an error", p)
		}
	}
}

func TestOpenOnAPathWithURICharactersUsesThatFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a?b#c%20d")
	w, err := sqlitewh.Open(t.Context(), filepath.Join(dir, "wh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := os.Stat(filepath.Join(dir, "wh.db")); err != nil {
		t.Fatalf("database not created at the literal path: %v", err)
	}
}

func TestTwoOpensOfOneFileShareTheLedger(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wh.db")
	ctx := t.Context()
	a, err := sqlitewh.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := sqlitewh.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tbl := driver.Table{Name: "t", Columns: []driver.Column{{Name: "a", Type: driver.BigInt}}}
	if err := a.EnsureTable(ctx, tbl); err != nil {
		t.Fatal(err)
	}
	batch := func() driver.Batch {
		return driver.Batch{Table: tbl, Mode: driver.Append, Key: "k", ETag: "e", Rows: mustRows(tbl, [][]any{{int64(1)}})}
	}
	var wg sync.WaitGroup
	results := make([]driver.Result, 8)
	errs := make([]error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := a
			if i%2 == 1 {
				w = b // another connection set, as another process would have
			}
			results[i], errs[i] = w.Load(ctx, batch())
		}()
	}
	wg.Wait()
	loaded := 0
	for i := range 8 {
		if errs[i] != nil {
			t.Fatalf("Load %d: %v", i, errs[i])
		}
		if results[i].Loaded {
			loaded++
		}
	}
	if loaded != 1 {
		t.Fatalf("%d loads committed, want 1", loaded)
	}
	_, rows, err := b.Query(ctx, "SELECT count(*) FROM t")
	if err != nil || rows[0][0] != int64(1) {
		t.Fatalf("count = %v, %v; want 1", rows, err)
	}
}

func TestTimestampsAndDatesAreStoredAsSortableUTCText(t *testing.T) {
	w, err := sqlitewh.Open(t.Context(), filepath.Join(t.TempDir(), "wh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	tbl := driver.Table{Name: "t", Columns: []driver.Column{{Name: "ts", Type: driver.Timestamp}, {Name: "d", Type: driver.Date}, {Name: "b", Type: driver.Boolean}}}
	if err := w.EnsureTable(t.Context(), tbl); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2020, 8, 7, 16, 3, 4, 123456789, time.FixedZone("+02", 7200))
	if _, err := w.Load(t.Context(), driver.Batch{Table: tbl, Mode: driver.Append, Key: "k", ETag: "e",
		Rows: mustRows(tbl, [][]any{{ts, time.Date(2020, 8, 7, 0, 0, 0, 0, time.UTC), true}})}); err != nil {
		t.Fatal(err)
	}
	_, rows, err := w.Query(t.Context(), "SELECT ts || '', d || '', typeof(ts), b + 0 FROM t")
	if err != nil {
		t.Fatal(err)
	}
	want := []any{"2020-08-07T14:03:04.123456Z", "2020-08-07", "text", int64(1)}
	if len(rows) != 1 || !reflect.DeepEqual(rows[0], want) {
		t.Fatalf("stored %v, want %v", rows, want)
	}
}

func TestOpenMigratesAVersion1LedgerAndRefusesANewerSchema(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	// The ledger as sluice wrote it before schema versions existed.
	if _, err := db.ExecContext(ctx, `CREATE TABLE _sluice_ledger (table_name TEXT NOT NULL, object_key TEXT NOT NULL,
		etag TEXT NOT NULL, rows INTEGER NOT NULL, loaded_at TEXT NOT NULL, PRIMARY KEY (table_name, object_key, etag));
		INSERT INTO _sluice_ledger VALUES ('t', 'old.csv', 'e1', 7, '2020-08-07T14:00:00.000000Z')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	w, err := sqlitewh.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open of a version 1 ledger: %v", err)
	}
	l, err := w.Ledger(ctx, "")
	if err != nil || len(l) != 1 || l[0].Key != "old.csv" || l[0].Rows != 7 || l[0].Version != "" || l[0].Rejected != 0 {
		t.Fatalf("ledger after migration = %+v, %v; want the old entry", l, err)
	}
	_, rows, err := w.Query(ctx, "SELECT value FROM _sluice_meta WHERE key = 'schema_version'")
	if err != nil || len(rows) != 1 || rows[0][0] != fmt.Sprint(driver.SchemaVersion) {
		t.Fatalf("schema version after migration = %v, %v; want %d", rows, err, driver.SchemaVersion)
	}
	tbl := driver.Table{Name: "t", Columns: []driver.Column{{Name: "a", Type: driver.BigInt}}}
	if err := w.EnsureTable(ctx, tbl); err != nil {
		t.Fatal(err)
	}
	if r, err := w.Load(ctx, driver.Batch{Table: tbl, Mode: driver.Replace, Key: "old.csv", ETag: "e2", Version: "2", Rows: mustRows(tbl, [][]any{{int64(1)}})}); err != nil || r.Rows != 1 {
		t.Fatalf("replace after migration = %+v, %v", r, err)
	}
	w.Close()
	// Opening again is a no-op; a schema from a newer sluice is refused.
	if w, err = sqlitewh.Open(ctx, path); err != nil {
		t.Fatalf("second Open: %v", err)
	}
	w.Close()
	db, err = sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `UPDATE _sluice_meta SET value = '99' WHERE key = 'schema_version'`); err != nil {
		t.Fatal(err)
	}
	_, err = sqlitewh.Open(ctx, path)
	if err == nil || !strings.Contains(err.Error(), "schema version 99, newer than") || !strings.Contains(err.Error(), "upgrade sluice") {
		t.Fatalf("Open of a newer schema: error %v, want one naming version 99 and saying to upgrade sluice", err)
	}
}

// mustRows streams rows of t's columns.
func mustRows(t driver.Table, rows [][]any) schema.Reader {
	r, err := schema.FromRows(t.Columns, rows, 0)
	if err != nil {
		panic(err)
	}
	return r
}

// TestQueriesCannotAttachWriteOrChangePragmas: Query (`sluice sql`) reads.
// ATTACH and VACUUM INTO would create a file anywhere the process may
// write; a pragma could turn query_only off for a DELETE after it.
func TestQueriesCannotAttachWriteOrChangePragmas(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "wh.db")
	w, err := sqlitewh.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if err := sqlitewh.ExecForTest(w, `CREATE TABLE t (a INTEGER); INSERT INTO t VALUES (1), (2)`); err != nil {
		t.Fatal(err)
	}
	ro, err := sqlitewh.OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ro.Close() })
	target := filepath.Join(dir, "elsewhere.db")
	for name, wh := range map[string]driver.Warehouse{"read-write": w, "read-only": ro} {
		for _, q := range []string{
			"ATTACH DATABASE '" + target + "' AS x",
			"attach '" + target + "' as x",
			"/* c */ select 1; ATTACH '" + target + "' AS x",
			"DETACH DATABASE main",
			"VACUUM INTO '" + target + "'",
			"PRAGMA query_only = 0; DELETE FROM t",
			"PRAGMA query_only(0)",
			"pragma main.journal_mode=DELETE",
			"DELETE FROM t",
			"select 1; delete from t",
		} {
			if _, _, err := wh.Query(ctx, q); err == nil {
				t.Errorf("%s: Query(%q) succeeded", name, q)
			}
			if _, err := os.Stat(target); err == nil {
				t.Fatalf("%s: Query(%q) created %s", name, q, target)
			}
		}
		_, rows, err := wh.Query(ctx, "SELECT count(*) FROM t")
		if err != nil || fmt.Sprint(rows) != "[[2]]" {
			t.Fatalf("%s: after the refused queries t holds %v (%v), want 2 rows", name, rows, err)
		}
		// Reading pragmas and a ';' or keyword inside a string still work.
		for _, q := range []string{"PRAGMA table_info(t)", "pragma user_version", "SELECT 'ATTACH; PRAGMA a=1' AS s", `SELECT a AS "pragma" FROM t -- ; attach`} {
			if _, _, err := wh.Query(ctx, q); err != nil {
				t.Errorf("%s: Query(%q): %v", name, q, err)
			}
		}
	}
	_, _, err = ro.Query(ctx, "ATTACH '"+target+"' AS x")
	if err == nil || !strings.Contains(err.Error(), "ATTACH") || !strings.Contains(err.Error(), "read") {
		t.Errorf("the refusal does not say why: %v", err)
	}
}
