package warehouse_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sluicehq/sluice/schema"
	"github.com/sluicehq/sluice/warehouse"
	_ "github.com/sluicehq/sluice/warehouse/pgwh"
	_ "github.com/sluicehq/sluice/warehouse/sqlitewh"
)

func TestOpenSQLiteURLsGiveWorkingWarehouses(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, u := range []string{"sqlite://" + filepath.Join(dir, "abs", "wh.db"), "sqlite://./rel/wh.db"} {
		w, err := warehouse.Open(t.Context(), u)
		if err != nil {
			t.Fatalf("warehouse.Open(%q): %v", u, err)
		}
		if w.URL() != u {
			t.Errorf("URL() = %q, want %q", w.URL(), u)
		}
		tbl := warehouse.Table{Name: "t", Columns: []schema.Column{{Name: "a", Type: schema.Text}}}
		if err := w.EnsureTable(t.Context(), tbl); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Load(t.Context(), warehouse.Batch{Table: tbl, Mode: warehouse.Append, Key: "k", ETag: "e", Rows: rowsOf(t, tbl, [][]any{{"x"}})}); err != nil {
			t.Fatal(err)
		}
		_, rows, err := w.Query(t.Context(), "SELECT a FROM t")
		if err != nil || len(rows) != 1 || rows[0][0] != "x" {
			t.Fatalf("Query = %v, %v; want [[x]]", rows, err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{filepath.Join(dir, "abs", "wh.db"), filepath.Join(dir, "rel", "wh.db")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("database file not created: %v", err)
		}
	}
}

func TestOpenPostgresURLHidesThePassword(t *testing.T) {
	base := os.Getenv("SLUICE_TEST_POSTGRES")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var b [6]byte
	rand.Read(b[:])
	schema := "sluice_test_" + hex.EncodeToString(b[:])
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("SLUICE_TEST_POSTGRES: %v", err)
	}
	if _, ok := u.User.Password(); !ok {
		u.User = url.UserPassword(u.User.Username(), "not-checked-by-trust-auth")
	}
	pw, _ := u.User.Password()
	q := u.Query()
	q.Set("schema", schema)
	u.RawQuery = q.Encode()
	w, err := warehouse.Open(ctx, u.String())
	if err != nil {
		t.Fatalf("%v\nstart PostgreSQL (e.g. `pg_ctlcluster <version> main start`) or point SLUICE_TEST_POSTGRES at a server", err)
	}
	t.Cleanup(func() {
		w.Close()
		conn, err := pgx.Connect(context.Background(), base)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	if strings.Contains(w.URL(), pw) || !strings.Contains(w.URL(), "xxxxx") {
		t.Errorf("URL() = %q shows the password", w.URL())
	}
	// Errors carry the URL; the password must stay out of them too.
	_, _, err = w.Query(ctx, "SELECT * FROM no_such_table")
	if err == nil || strings.Contains(err.Error(), pw) || !strings.Contains(err.Error(), "no_such_table") {
		t.Errorf("Query error = %v; want it to name the table and hide the password", err)
	}
}

func TestOpenUnreachablePostgresFailsWithHint(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := warehouse.Open(ctx, "postgres://u:topsecret@127.0.0.1:1/db?sslmode=disable&connect_timeout=5")
	if err == nil || !strings.Contains(err.Error(), "is PostgreSQL running at 127.0.0.1:1") || strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("Open error = %v; want a hint naming 127.0.0.1:1 and no password", err)
	}
}

func TestLoadRefusesBatchesItCannotHonour(t *testing.T) {
	w, err := warehouse.Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "wh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	keyed := warehouse.Table{Name: "t", Columns: []schema.Column{{Name: "id", Type: schema.BigInt}}, PrimaryKey: []string{"id"}}
	long := warehouse.Table{Name: strings.Repeat("x", 60), Columns: keyed.Columns}
	tests := []struct {
		name string
		b    warehouse.Batch
		msg  string
	}{
		{"merge without a version", warehouse.Batch{Table: keyed, Mode: warehouse.Merge, Key: "k", ETag: "e"}, "merge needs the object version's order"},
		{"replace without a version", warehouse.Batch{Table: keyed, Mode: warehouse.Replace, Key: "k", ETag: "e"}, "replace needs the object version's order"},
		{"unknown on_bad_row", warehouse.Batch{Table: keyed, Mode: warehouse.Append, Key: "k", ETag: "e", OnBadRow: "skip"}, `unknown on_bad_row "skip"`},
		{"quarantine table name too long", warehouse.Batch{Table: long, Mode: warehouse.Append, Key: "k", ETag: "e", OnBadRow: warehouse.Quarantine}, "shorten the table name"},
	}
	for _, tc := range tests {
		_, err := w.Load(t.Context(), tc.b)
		if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "object k") {
			t.Errorf("%s: Load error = %v, want one naming the object and containing %q", tc.name, err, tc.msg)
		}
	}
}

func rowsOf(t *testing.T, tbl warehouse.Table, rows [][]any) schema.Reader {
	t.Helper()
	r, err := schema.FromRows(tbl.Columns, rows, 0)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
