package warehouse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sluicehq/sluice/warehouse/driver"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		in                  string
		kind, target, shown string
		err                 string
	}{
		{in: "sqlite:///var/lib/sluice/wh.db", kind: "sqlite", target: "/var/lib/sluice/wh.db", shown: "sqlite:///var/lib/sluice/wh.db"},
		{in: "sqlite://./sluice-data/warehouse.db", kind: "sqlite", target: "./sluice-data/warehouse.db", shown: "sqlite://./sluice-data/warehouse.db"},
		{in: "sqlite://wh.db", kind: "sqlite", target: "wh.db", shown: "sqlite://wh.db"},
		{in: "SQLite:///a%20b.db", kind: "sqlite", target: "/a b.db", shown: "SQLite:///a%20b.db"},
		{in: "sqlite://", err: "no file path"},
		{in: "sqlite:///", err: "no file path"},
		{in: "sqlite:./x.db", err: "write sqlite:///abs/path.db"},
		{in: "sqlite://./x.db?mode=ro", err: "takes no parameters"},
		{in: "sqlite:///bad%zz.db", err: "invalid URL escape"},
		{in: "postgres://u@h/db", kind: "postgres", target: "postgres://u@h/db", shown: "postgres://u@h/db"},
		{in: "postgresql://u:secret@h:5433/db?sslmode=disable", kind: "postgres", target: "postgresql://u:secret@h:5433/db?sslmode=disable", shown: "postgresql://u:xxxxx@h:5433/db?sslmode=disable"},
		{in: "postgres://u@h/db?password=secret&schema=x", kind: "postgres", target: "postgres://u@h/db?password=secret&schema=x", shown: "postgres://u@h/db?password=xxxxx&schema=x"},
		{in: "postgres://u:secret@h:port/db", err: "invalid PostgreSQL warehouse URL"},
		{in: "mysql://u@h/db", err: `unknown warehouse URL scheme "mysql"; supported: sqlite:///abs/path.db`},
		{in: "/plain/path.db", err: "no scheme; supported: sqlite://"},
	}
	for _, tc := range tests {
		kind, target, shown, err := parseURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseURL(%q) error = %v, want one containing %q", tc.in, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("parseURL(%q) error %q leaks the password", tc.in, err)
			}
			continue
		}
		if err != nil || kind != tc.kind || target != tc.target || shown != tc.shown {
			t.Errorf("parseURL(%q) = %q, %q, %q, %v; want %q, %q, %q", tc.in, kind, target, shown, err, tc.kind, tc.target, tc.shown)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{
		"sqlite:///a.db", "sqlite://./a.db", "postgres://u:pw@h/db?password=pw2", "postgresql://u@[::1]:5/db",
		"postgres://u:p%zz@h/db", "x://", "", "sqlite://%", "postgres://u:pw@h:port/db",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		kind, target, shown, err := parseURL(raw)
		if err != nil {
			return
		}
		switch kind {
		case "sqlite":
			if target == "" || shown != raw {
				t.Fatalf("parseURL(%q) = %q, %q", raw, target, shown)
			}
		case "postgres":
			if target != raw {
				t.Fatalf("parseURL(%q) target %q, want the URL unchanged", raw, target)
			}
			u, err := url.Parse(shown)
			if err != nil {
				t.Fatalf("shown URL %q does not parse: %v", shown, err)
			}
			if p, ok := u.User.Password(); ok && p != "xxxxx" {
				t.Fatalf("shown URL %q keeps password %q", shown, p)
			}
			if q := u.Query(); q.Has("password") && q.Get("password") != "xxxxx" {
				t.Fatalf("shown URL %q keeps the password parameter", shown)
			}
		default:
			t.Fatalf("parseURL(%q) kind %q", raw, kind)
		}
	})
}

func TestOpenSQLiteURLsGiveWorkingWarehouses(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, u := range []string{"sqlite://" + filepath.Join(dir, "abs", "wh.db"), "sqlite://./rel/wh.db"} {
		w, err := Open(t.Context(), u)
		if err != nil {
			t.Fatalf("Open(%q): %v", u, err)
		}
		if w.URL() != u {
			t.Errorf("URL() = %q, want %q", w.URL(), u)
		}
		tbl := driver.Table{Name: "t", Columns: []driver.Column{{Name: "a", Type: driver.Text}}}
		if err := w.EnsureTable(t.Context(), tbl); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Load(t.Context(), driver.Batch{Table: tbl, Mode: driver.Append, Key: "k", ETag: "e", Rows: driver.SliceSource([][]any{{"x"}})}); err != nil {
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
	w, err := Open(ctx, u.String())
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
	_, err := Open(ctx, "postgres://u:topsecret@127.0.0.1:1/db?sslmode=disable&connect_timeout=5")
	if err == nil || !strings.Contains(err.Error(), "is PostgreSQL running at 127.0.0.1:1") || strings.Contains(err.Error(), "topsecret") {
		t.Fatalf("Open error = %v; want a hint naming 127.0.0.1:1 and no password", err)
	}
}

func TestCheckTableRejectsBadSpecs(t *testing.T) {
	cols := []driver.Column{{Name: "id", Type: driver.BigInt}}
	tests := []struct {
		name string
		t    driver.Table
		err  string
	}{
		{"valid", driver.Table{Name: "t", Columns: cols, PrimaryKey: []string{"id"}}, ""},
		{"bad table name", driver.Table{Name: "1t", Columns: cols}, "invalid table name"},
		{"no columns", driver.Table{Name: "t"}, "no columns"},
		{"bad column name", driver.Table{Name: "t", Columns: []driver.Column{{Name: "a-b", Type: driver.Text}}}, "invalid column name"},
		{"unknown type", driver.Table{Name: "t", Columns: []driver.Column{{Name: "a", Type: "uuid"}}}, "unknown type"},
		{"duplicate column", driver.Table{Name: "t", Columns: append(cols, cols...)}, "appears twice"},
		{"key not a column", driver.Table{Name: "t", Columns: cols, PrimaryKey: []string{"nope"}}, "not a column"},
		{"order_by not a column", driver.Table{Name: "t", Columns: cols, PrimaryKey: []string{"id"}, OrderBy: "seq"}, "order_by column seq is not a column"},
		{"reserved column name", driver.Table{Name: "t", Columns: []driver.Column{{Name: "_sluice_version", Type: driver.Text}}}, "reserved for sluice's hidden columns"},
	}
	for _, tc := range tests {
		err := checkTable(tc.t)
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: checkTable = %v, want %q", tc.name, err, tc.err)
		}
	}
}

func TestCheckRowsAcceptsCanonicalValuesAndConvertsTheOthers(t *testing.T) {
	ts := time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC)
	tests := []struct {
		typ     driver.Type
		in, out any
	}{
		{driver.BigInt, int64(1) << 40, int64(1) << 40},
		{driver.BigInt, int(7), int64(7)},
		{driver.Integer, int32(-5), int64(-5)},
		{driver.Integer, int64(2147483647), int64(2147483647)},
		{driver.Double, 0.5, 0.5},
		{driver.Double, float32(0.25), 0.25},
		{driver.Text, "héllo", "héllo"},
		{driver.Text, `a\u0000b`, `a\u0000b`}, // a backslash, not a NUL
		{driver.JSON, `{"a":[1,"\\u0000"]}`, `{"a":[1,"\\u0000"]}`},
		{driver.JSON, []byte(`[1]`), `[1]`},
		{driver.Boolean, true, true},
		{driver.Timestamp, ts, ts},
		{driver.Date, ts, ts},
		{driver.Text, nil, nil},
	}
	for _, tc := range tests {
		tbl := driver.Table{Name: "t", Columns: []driver.Column{{Name: "c", Type: tc.typ}}}
		in := [][]any{{tc.in}}
		out, err := checkRows(tbl, in)
		if err != nil {
			t.Errorf("%s from %T %v: %v", tc.typ, tc.in, tc.in, err)
			continue
		}
		if fmt.Sprintf("%T %v", out[0][0], out[0][0]) != fmt.Sprintf("%T %v", tc.out, tc.out) {
			t.Errorf("%s from %T %v = %T %v, want %T %v", tc.typ, tc.in, tc.in, out[0][0], out[0][0], tc.out, tc.out)
		}
		if fmt.Sprintf("%T", in[0][0]) != fmt.Sprintf("%T", tc.in) {
			t.Errorf("%s: checkRows changed the caller's row to %T", tc.typ, in[0][0])
		}
		if canonical := fmt.Sprintf("%T", tc.in) == fmt.Sprintf("%T", tc.out); canonical && &out[0][0] != &in[0][0] {
			t.Errorf("%s from %T: checkRows copied a row that was already canonical", tc.typ, tc.in)
		}
	}
}

func TestCheckRowsRejectsBadValuesAsErrInvalidData(t *testing.T) {
	tbl := driver.Table{Name: "t", Columns: []driver.Column{
		{Name: "id", Type: driver.BigInt}, {Name: "n", Type: driver.Integer}, {Name: "x", Type: driver.Double},
		{Name: "s", Type: driver.Text}, {Name: "j", Type: driver.JSON}, {Name: "b", Type: driver.Boolean},
		{Name: "ts", Type: driver.Timestamp}, {Name: "d", Type: driver.Date},
	}, PrimaryKey: []string{"id"}}
	row := func(col int, v any) []any {
		r := []any{int64(1), nil, nil, nil, nil, nil, nil, nil}
		r[col] = v
		return r
	}
	tests := []struct {
		name string
		row  []any
		msg  string
	}{
		{"short row", []any{int64(1)}, "row 2: 1 values for 8 columns"},
		{"null primary key", row(0, nil), "row 2, column id (bigint): primary key column is null"},
		{"string for a bigint", row(0, "1"), "row 2, column id (bigint): want an integer, got string"},
		{"integer out of 32 bits", row(1, int64(1)<<31), "row 2, column n (integer): 2147483648 does not fit a 32-bit integer"},
		{"int for a double", row(2, 1), "column x (double): want a float64, got int"},
		{"bytes for text", row(3, []byte("a")), "column s (text): want a string, got []uint8"},
		{"NUL in text", row(3, "a\x00"), `column s (text): text contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{"invalid UTF-8 in text", row(3, "a\xff"), "is not valid UTF-8"},
		{"invalid JSON", row(4, `{"a":`), `column j (json): invalid JSON`},
		{"NUL in JSON", row(4, `{"a\u0000":1}`), `column j (json): JSON contains a NUL character`},
		{"invalid UTF-8 in JSON", row(4, "\"\xff\""), "is not valid UTF-8"},
		{"string for a boolean", row(5, "true"), "column b (boolean): want a bool, got string"},
		{"string for a timestamp", row(6, "2020-01-01T00:00:00Z"), "column ts (timestamp): want a time.Time, got string"},
		{"int64 for a date", row(7, int64(0)), "column d (date): want a time.Time, got int64"},
	}
	for _, tc := range tests {
		good := []any{int64(0), int64(1), 1.5, "ok", `{}`, true, time.Now(), time.Now()}
		_, err := checkRows(tbl, [][]any{good, tc.row})
		if !errors.Is(err, ErrInvalidData) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: checkRows error = %v, want ErrInvalidData containing %q", tc.name, err, tc.msg)
		}
	}
}

// checkRows runs rows through Load's checks, as Load would stream them.
func checkRows(t driver.Table, rows [][]any) ([][]any, error) {
	s := newCheckedSource(driver.Batch{Table: t, Mode: driver.Append, Rows: driver.SliceSource(rows)})
	var out [][]any
	for {
		r, err := s.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r.Values)
	}
}

func TestLoadRefusesBatchesItCannotHonour(t *testing.T) {
	w, err := Open(t.Context(), "sqlite://"+filepath.Join(t.TempDir(), "wh.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	keyed := driver.Table{Name: "t", Columns: []driver.Column{{Name: "id", Type: driver.BigInt}}, PrimaryKey: []string{"id"}}
	long := driver.Table{Name: strings.Repeat("x", 60), Columns: keyed.Columns}
	tests := []struct {
		name string
		b    driver.Batch
		msg  string
	}{
		{"merge without a version", driver.Batch{Table: keyed, Mode: driver.Merge, Key: "k", ETag: "e"}, "merge needs the object version's order"},
		{"replace without a version", driver.Batch{Table: keyed, Mode: driver.Replace, Key: "k", ETag: "e"}, "replace needs the object version's order"},
		{"unknown on_bad_row", driver.Batch{Table: keyed, Mode: driver.Append, Key: "k", ETag: "e", OnBadRow: "skip"}, `unknown on_bad_row "skip"`},
		{"quarantine table name too long", driver.Batch{Table: long, Mode: driver.Append, Key: "k", ETag: "e", OnBadRow: driver.Quarantine}, "shorten the table name"},
	}
	for _, tc := range tests {
		_, err := w.Load(t.Context(), tc.b)
		if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "object k") {
			t.Errorf("%s: Load error = %v, want one naming the object and containing %q", tc.name, err, tc.msg)
		}
	}
}
