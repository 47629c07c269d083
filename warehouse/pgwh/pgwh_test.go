package pgwh_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sluicehq/sluice/schema"
	"github.com/sluicehq/sluice/warehouse"
	"github.com/sluicehq/sluice/warehouse/driver"
	"github.com/sluicehq/sluice/warehouse/drivertest"
	"github.com/sluicehq/sluice/warehouse/pgwh"
)

// baseURL is the test server: $SLUICE_TEST_POSTGRES or the local default.
func baseURL() string {
	if u := os.Getenv("SLUICE_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

const startHint = "start PostgreSQL (e.g. `pg_ctlcluster <version> main start`) or point SLUICE_TEST_POSTGRES at a server"

// freshSchema creates a uniquely named schema, dropped when tb ends, and
// returns a warehouse URL that selects it.
func freshSchema(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, baseURL())
	if err != nil {
		tb.Fatalf("PostgreSQL test server unreachable: %v\n%s", err, startHint)
	}
	defer conn.Close(ctx)
	var b [6]byte
	rand.Read(b[:])
	schema := "sluice_test_" + hex.EncodeToString(b[:])
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, baseURL())
		if err != nil {
			tb.Errorf("drop test schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop test schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(baseURL())
	if err != nil {
		tb.Fatalf("SLUICE_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("schema", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func open(tb testing.TB) *pgwh.Warehouse {
	tb.Helper()
	w, err := pgwh.Open(context.Background(), freshSchema(tb))
	if err != nil {
		tb.Fatalf("%v\n%s", err, startHint)
	}
	tb.Cleanup(func() { w.Close() }) // runs before the schema is dropped
	return w
}

func TestConformance(t *testing.T) {
	drivertest.RunConformanceTests(t, func(t *testing.T) driver.Warehouse { return open(t) })
}

// The merge path for tables whose stored rows must be updated in place
// (see reinsertable) passes the same suite.
func TestConformanceUpdatingStoredRowsInPlace(t *testing.T) {
	defer pgwh.SetReinsert(false)()
	drivertest.RunConformanceTests(t, func(t *testing.T) driver.Warehouse { return open(t) })
}

func TestOpenCreatesSchemaAndLedgerThatQuerySeesUnqualified(t *testing.T) {
	w := open(t)
	if !strings.HasPrefix(w.Schema(), "sluice_test_") {
		t.Fatalf("Schema() = %q, want the test schema", w.Schema())
	}
	_, rows, err := w.Query(t.Context(), "SELECT table_schema FROM information_schema.tables WHERE table_name = '"+warehouse.LedgerTable+"' AND table_schema = current_schema()")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0][0] != w.Schema() {
		t.Fatalf("ledger table in schemas %v, want [%s]", rows, w.Schema())
	}
}

func TestOpenTwiceOnOneSchemaSharesTheLedger(t *testing.T) {
	u := freshSchema(t)
	ctx := t.Context()
	a, err := pgwh.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := pgwh.Open(ctx, u)
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
	if r, err := a.Load(ctx, batch()); err != nil || !r.Loaded {
		t.Fatalf("first Load = %+v, %v", r, err)
	}
	if r, err := b.Load(ctx, batch()); err != nil || r.Loaded {
		t.Fatalf("Load of the same version through a second Open = %+v, %v; want Loaded=false", r, err)
	}
}

func TestOpenUnreachableServerSaysWhereAndWhatToDo(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	// Port 1 on loopback refuses connections immediately.
	_, err := pgwh.Open(ctx, "postgres://bob:s3cret-pw@127.0.0.1:1/db?sslmode=disable&connect_timeout=5")
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"127.0.0.1:1", "is PostgreSQL running"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "s3cret-pw") {
		t.Errorf("error %q leaks the password", msg)
	}
}

func TestSplitURL(t *testing.T) {
	tests := []struct {
		in, url, schema, err string
	}{
		{in: "postgres://u@h/db", url: "postgres://u@h/db", schema: "public"},
		{in: "postgresql://u@h:5433/db?sslmode=disable&schema=raw_1", url: "postgresql://u@h:5433/db?sslmode=disable", schema: "raw_1"},
		{in: "postgres://u@h/db?schema=Bad-Name", err: "schema must be"},
		{in: "postgres://u@h/db?schema=a&schema=b", err: "schema must be"},
		{in: "postgres://u@h/db?schema=", err: "schema must be"},
		{in: "mysql://u@h/db", err: "scheme must be"},
		{in: "postgres://u:pw@h/db?schema=1x", err: "schema must be"},
	}
	for _, tc := range tests {
		u, s, err := pgwh.SplitURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("SplitURL(%q) error = %v, want one containing %q", tc.in, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), ":pw@") {
				t.Errorf("SplitURL(%q) error %q leaks the password", tc.in, err)
			}
			continue
		}
		if err != nil || u != tc.url || s != tc.schema {
			t.Errorf("SplitURL(%q) = %q, %q, %v; want %q, %q", tc.in, u, s, err, tc.url, tc.schema)
		}
	}
}

func FuzzSplitURL(f *testing.F) {
	for _, s := range []string{
		"postgres://u@h/db", "postgresql://u:pw@h:1/db?schema=x&sslmode=disable",
		"postgres://u:p%zz@h/db", "postgres://[::1", "postgres://u@h/db?schema=%",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, schema, err := pgwh.SplitURL(raw)
		if err != nil {
			if pw := password(raw); len(pw) >= 4 && strings.Contains(err.Error(), pw) {
				t.Fatalf("error %q leaks password %q", err, pw)
			}
			return
		}
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatalf("SplitURL(%q) returned unparsable URL %q: %v", raw, u, err)
		}
		if pu.Query().Has("schema") || schema == "" || strings.ContainsAny(schema, `"'.;- `) {
			t.Fatalf("SplitURL(%q) = %q, %q: schema not split off or unsafe", raw, u, schema)
		}
	})
}

func password(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return ""
	}
	p, _ := u.User.Password()
	return p
}

func TestOpenMigratesAVersion1LedgerAndRefusesANewerSchema(t *testing.T) {
	ctx := t.Context()
	u := freshSchema(t)
	_, schema, err := pgwh.SplitURL(u)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, baseURL())
	if err != nil {
		t.Fatalf("%v\n%s", err, startHint)
	}
	defer conn.Close(context.Background())
	s := pgx.Identifier{schema}.Sanitize()
	// The ledger as sluice wrote it before schema versions existed.
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+s+`;
		CREATE TABLE `+s+`._sluice_ledger (table_name text NOT NULL, object_key text NOT NULL, etag text NOT NULL,
			rows bigint NOT NULL, loaded_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (table_name, object_key, etag));
		INSERT INTO `+s+`._sluice_ledger (table_name, object_key, etag, rows) VALUES ('t', 'old.csv', 'e1', 7)`); err != nil {
		t.Fatal(err)
	}
	w, err := pgwh.Open(ctx, u)
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
	if w, err = pgwh.Open(ctx, u); err != nil {
		t.Fatalf("second Open: %v", err)
	}
	w.Close()
	if _, err := conn.Exec(ctx, `UPDATE `+s+`._sluice_meta SET value = '99' WHERE key = 'schema_version'`); err != nil {
		t.Fatal(err)
	}
	_, err = pgwh.Open(ctx, u)
	if err == nil || !strings.Contains(err.Error(), "schema version 99, newer than") || !strings.Contains(err.Error(), "upgrade sluice") {
		t.Fatalf("Open of a newer schema: error %v, want one naming version 99 and saying to upgrade sluice", err)
	}
}

func TestUndefinedTableIsErrNoTableAndNotBadData(t *testing.T) {
	err := pgError("42P01")
	if !pgwh.IsNoTable(err) || pgwh.IsDataError(err) {
		t.Fatalf("SQLSTATE 42P01: IsNoTable = %v, IsDataError = %v; want true, false", pgwh.IsNoTable(err), pgwh.IsDataError(err))
	}
	for _, code := range []string{"40001", "40P01", "08006", "53100", "23505"} {
		if pgwh.IsNoTable(pgError(code)) {
			t.Errorf("SQLSTATE %s is IsNoTable", code)
		}
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

// TestQueriesCannotCopyToTheServersFiles: a read-only transaction still
// lets a superuser's COPY … TO write a file on the database server (or run
// a program): `sluice sql` refuses COPY.
func TestQueriesCannotCopyToTheServersFiles(t *testing.T) {
	w := open(t)
	target := filepath.Join(os.TempDir(), fmt.Sprintf("sluice-copy-%d.txt", time.Now().UnixNano()))
	defer os.Remove(target)
	for _, q := range []string{
		"COPY (SELECT 1) TO '" + target + "'",
		"  /* a comment */ -- another\n copy (select 1) to '" + target + "'",
	} {
		_, _, err := w.Query(t.Context(), q)
		if err == nil || !strings.Contains(err.Error(), "COPY is refused") {
			t.Errorf("Query(%q) = %v, want COPY refused", q, err)
		}
		if _, err := os.Stat(target); err == nil {
			t.Fatalf("Query(%q) wrote %s on the server", q, target)
		}
	}
	if _, rows, err := w.Query(t.Context(), "SELECT 'COPY' AS copy"); err != nil || len(rows) != 1 {
		t.Errorf("a query naming COPY in a string: %v %v", rows, err)
	}
}
