package warehouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/schema"
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

func TestCheckTableRejectsBadSpecs(t *testing.T) {
	cols := []schema.Column{{Name: "id", Type: schema.BigInt}}
	tests := []struct {
		name string
		t    Table
		err  string
	}{
		{"valid", Table{Name: "t", Columns: cols, PrimaryKey: []string{"id"}}, ""},
		{"bad table name", Table{Name: "1t", Columns: cols}, "invalid table name"},
		{"no columns", Table{Name: "t"}, "no columns"},
		{"bad column name", Table{Name: "t", Columns: []schema.Column{{Name: "a-b", Type: schema.Text}}}, "invalid column name"},
		{"unknown type", Table{Name: "t", Columns: []schema.Column{{Name: "a", Type: "uuid"}}}, "unknown type"},
		{"duplicate column", Table{Name: "t", Columns: append(cols, cols...)}, "appears twice"},
		{"key not a column", Table{Name: "t", Columns: cols, PrimaryKey: []string{"nope"}}, "not a column"},
		{"order_by not a column", Table{Name: "t", Columns: cols, PrimaryKey: []string{"id"}, OrderBy: "seq"}, "order_by column seq is not a column"},
		{"reserved column name", Table{Name: "t", Columns: []schema.Column{{Name: "_sluice_version", Type: schema.Text}}}, "reserved for sluice's hidden columns"},
	}
	for _, tc := range tests {
		err := checkTable(tc.t)
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: checkTable = %v, want %q", tc.name, err, tc.err)
		}
	}
}

// checkRows runs rows of columns cols through Load's checks as table t's,
// in batches of size rows, and returns the rows that passed and the
// rejects (with quarantine), or the error that stopped the stream.
func checkRows(t Table, cols []schema.Column, rows [][]any, size int, quarantine bool) ([][]any, []schema.Reject, error) {
	src, err := schema.FromRows(cols, rows, size)
	if err != nil {
		return nil, nil, err
	}
	b := Batch{Table: t, Mode: Append, Rows: src}
	if quarantine {
		b.OnBadRow = Quarantine
	}
	c := newChecker(b)
	var out [][]any
	var rejects []schema.Reject
	for {
		bt, err := c.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return out, rejects, nil
		}
		if err != nil {
			return nil, nil, err
		}
		for i := range bt.Len() {
			out = append(out, bt.Row(i))
		}
		rejects = append(rejects, bt.Rejects...)
	}
}

func TestChecksPassGoodBatchesUntouched(t *testing.T) {
	tbl := Table{Name: "t", Columns: []schema.Column{
		{Name: "id", Type: schema.BigInt}, {Name: "n", Type: schema.Integer}, {Name: "r", Type: schema.Real},
		{Name: "s", Type: schema.Text}, {Name: "j", Type: schema.JSON}, {Name: "b", Type: schema.Boolean},
		{Name: "ts", Type: schema.Timestamp},
	}, PrimaryKey: []string{"id"}}
	ts := time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC)
	rows := [][]any{
		{int64(1) << 40, int64(2147483647), 3.4e38, "héllo", `{"a":[1,"\\u0000"]}`, true, ts},
		{int64(2), int64(-2147483648), -3.4e38, `a\u0000b`, `[1]`, false, ts}, // a backslash, not a NUL
		{int64(3), nil, nil, nil, nil, nil, nil},
		{int64(4), int64(0), 0.5, "日本語", `"x"`, true, ts},
	}
	src, err := schema.FromRows(tbl.Columns, rows, 3)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := schema.FromRows(tbl.Columns, rows, 3)
	c := newChecker(Batch{Table: tbl, Mode: Append, Rows: src})
	for {
		got, err := c.Next(context.Background())
		w, werr := want.Next(context.Background())
		if errors.Is(err, io.EOF) && errors.Is(werr, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("checks refused good rows: %v", err)
		}
		if got != w && fmt.Sprint(got.Row(0)) != fmt.Sprint(w.Row(0)) {
			t.Fatalf("batch changed: %v, want %v", got.Row(0), w.Row(0))
		}
	}
	// The batches themselves pass through, not copies.
	src, _ = schema.FromRows(tbl.Columns, rows, 3)
	first, _ := src.Next(context.Background())
	c = newChecker(Batch{Table: tbl, Mode: Append, Rows: &replay{b: first}})
	if got, err := c.Next(context.Background()); err != nil || got != first {
		t.Fatalf("checker returned %p, %v; want the batch itself %p", got, err, first)
	}
}

// replay returns b, then io.EOF.
type replay struct{ b *schema.Batch }

func (r *replay) Next(context.Context) (*schema.Batch, error) {
	if r.b == nil {
		return nil, io.EOF
	}
	b := r.b
	r.b = nil
	return b, nil
}

func (r *replay) Close() error { return nil }

func TestChecksRefuseBadValuesAsErrInvalidDataNamingRowAndColumn(t *testing.T) {
	tbl := Table{Name: "t", Columns: []schema.Column{
		{Name: "id", Type: schema.BigInt}, {Name: "n", Type: schema.Integer}, {Name: "x", Type: schema.Real},
		{Name: "s", Type: schema.Text}, {Name: "j", Type: schema.JSON},
	}, PrimaryKey: []string{"id"}}
	row := func(col int, v any) []any {
		r := []any{int64(1), nil, nil, nil, nil}
		r[col] = v
		return r
	}
	tests := []struct {
		name string
		row  []any
		msg  string
	}{
		{"null primary key", row(0, nil), "row 2, column id (bigint): primary key column is null"},
		{"integer out of 32 bits", row(1, int64(1)<<31), "row 2, column n (integer): 2147483648 does not fit a 32-bit integer"},
		{"real out of float32", row(2, -1e39), "row 2, column x (real): -1e+39 does not fit a 32-bit float (use double)"},
		{"NUL in text", row(3, "a\x00"), `row 2, column s (text): text contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{"invalid UTF-8 in text", row(3, "a\xff"), "row 2, column s (text): text \"a\\xff\" is not valid UTF-8"},
		{"invalid JSON", row(4, `{"a":`), `row 2, column j (json): invalid JSON`},
		{"NUL in JSON", row(4, `{"a\u0000":1}`), `column j (json): JSON contains a NUL character`},
		{"invalid UTF-8 in JSON", row(4, "\"\xff\""), "is not valid UTF-8"},
	}
	for _, tc := range tests {
		good := []any{int64(0), int64(1), 1.5, "ok", `{}`}
		_, _, err := checkRows(tbl, tbl.Columns, [][]any{good, tc.row, good}, 10, false)
		if !errors.Is(err, ErrInvalidData) || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "set on_bad_record: quarantine") {
			t.Errorf("%s: error = %v, want ErrInvalidData containing %q and the remedy", tc.name, err, tc.msg)
		}
		// With quarantine the row becomes a reject and the others pass.
		out, rejects, err := checkRows(tbl, tbl.Columns, [][]any{good, tc.row, good}, 10, true)
		if err != nil || len(out) != 2 || len(rejects) != 1 || rejects[0].N != 2 || !strings.Contains("row 2, "+rejects[0].Reason, tc.msg) {
			t.Errorf("%s: quarantined = %v, %+v, %v; want 2 rows and record 2 rejected", tc.name, out, rejects, err)
		}
	}
}

func TestTextChecksFindTheBadValueWhereverItIs(t *testing.T) {
	tbl := Table{Name: "t", Columns: []schema.Column{{Name: "s", Type: schema.Text}}}
	for _, tc := range []struct {
		name string
		vals []any
		bad  []int64 // record numbers
	}{
		// Each value is invalid, their concatenation is "é".
		{"a character split across values", []any{"a", "\xc3", "\xa9", "b"}, []int64{2, 3}},
		{"NULs in several values", []any{"\x00", "ok", "x\x00y\x00", "", "\x00"}, []int64{1, 3, 5}},
		{"an empty value before a NUL", []any{"", "", "\x00"}, []int64{3}},
		{"a truncated character at the end", []any{"é", "\xc3"}, []int64{2}},
	} {
		var rows [][]any
		for _, v := range tc.vals {
			rows = append(rows, []any{v})
		}
		_, rejects, err := checkRows(tbl, tbl.Columns, rows, 0, true)
		var got []int64
		for _, r := range rejects {
			got = append(got, r.N)
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.bad) {
			t.Errorf("%s: rejected records %v, %v; want %v", tc.name, got, err, tc.bad)
		}
	}
}

func TestChecksRefuseBatchesThatAreNotTheTables(t *testing.T) {
	tbl := Table{Name: "t", Columns: []schema.Column{{Name: "id", Type: schema.BigInt}, {Name: "s", Type: schema.Text}}}
	for _, tc := range []struct {
		name string
		cols []schema.Column
		row  []any
		msg  string
	}{
		{"fewer columns", tbl.Columns[:1], []any{int64(1)}, "the batch of rows 1 to 1 has 1 columns, the table t has 2"},
		{"another type", []schema.Column{{Name: "id", Type: schema.Integer}, {Name: "s", Type: schema.Text}}, []any{int64(1), "a"}, "column 1 (id) is integer, but bigint in table t"},
		{"an alias of the type is the type", []schema.Column{{Name: "id", Type: "int64"}, {Name: "s", Type: "string"}}, nil, ""},
	} {
		rows := [][]any{tc.row}
		if tc.row == nil {
			rows = nil
		}
		_, _, err := checkRows(tbl, tc.cols, rows, 0, true)
		if tc.msg == "" && err != nil || tc.msg != "" && (!errors.Is(err, ErrInvalidData) || !strings.Contains(err.Error(), tc.msg)) {
			t.Errorf("%s: error %v, want ErrInvalidData containing %q", tc.name, err, tc.msg)
		}
	}
}

func TestOpenWithoutTheBackendLinkedInSaysWhatToImport(t *testing.T) {
	backendsMu.Lock()
	linked, ok := backends["sqlite"]
	delete(backends, "sqlite")
	backendsMu.Unlock()
	if ok {
		defer Register("sqlite", linked)
	}
	_, err := Open(context.Background(), "sqlite:///tmp/x.db")
	if err == nil || !strings.Contains(err.Error(), `import _ "github.com/sluicehq/sluice/warehouse/sqlitewh"`) {
		t.Fatalf("Open without sqlitewh: error %v, want one naming the import", err)
	}
}
