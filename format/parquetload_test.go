package format_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/curate"
	"github.com/sluicehq/sluice/format"
	"github.com/sluicehq/sluice/schema"
	"github.com/sluicehq/sluice/store"
)

// curateStore adapts sluice's store to curate.Store, as the engine does.
type curateStore struct{ s *store.Store }

func (c curateStore) List(ctx context.Context, prefix string) ([]curate.Object, error) {
	objs, err := c.s.List(ctx, prefix)
	out := make([]curate.Object, len(objs))
	for i, o := range objs {
		out[i] = curate.Object{Key: o.Key, Size: o.Size, ETag: o.ETag}
	}
	return out, err
}

func (c curateStore) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, _, err := c.s.Open(ctx, key)
	return rc, err
}

func (c curateStore) Write(ctx context.Context, key string, r io.Reader, contentType string) error {
	_, err := c.s.Write(ctx, key, r, contentType)
	return err
}

func (c curateStore) Delete(ctx context.Context, key string) error { return c.s.Delete(ctx, key) }
func (c curateStore) LocalDir() string                             { return c.s.LocalDir() }

// readAll decodes everything r holds with o and returns the rows (boxed),
// the rejects and the report.
func readAll(t testing.TB, r io.Reader, o format.ReadOptions) ([][]any, []schema.Reject, format.Report, error) {
	t.Helper()
	ctx := context.Background()
	rd, err := format.NewReader(ctx, r, o)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var rows [][]any
	var rejects []schema.Reject
	last := int64(0)
	for {
		b, err := rd.Next(ctx)
		if err == io.EOF {
			return rows, rejects, rd.Report(), nil
		}
		if err != nil {
			return rows, rejects, format.Report{}, err
		}
		if err := b.Check(); err != nil {
			t.Fatalf("a batch is inconsistent: %v", err)
		}
		for i := range b.Len() {
			if b.N[i] <= last {
				t.Fatalf("record numbers do not increase: %d after %d", b.N[i], last)
			}
			last = b.N[i]
			rows = append(rows, b.Row(i))
		}
		rejects = append(rejects, b.Rejects...)
	}
}

func mapper(t testing.TB, cols []format.Column, opts *format.MapperOptions) *format.Mapper {
	t.Helper()
	m, err := format.NewMapper(cols, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// plainReader hides every method of r but Read, so that the decoder has
// to spool a Parquet object to a temporary file.
type plainReader struct{ r io.Reader }

func (p plainReader) Read(b []byte) (int, error) { return p.r.Read(b) }

// TestParquetLoadReadsBackWhatCurateWrote curates a CSV with every column
// type curate writes into snappy Parquet (several parts, several row
// groups' worth of batches) in a file store and in a memory store, and
// loads every part back with the Parquet decoder — in place from the file
// store, spooled from the memory store — comparing every value with the
// curate cast of the CSV value.
func TestParquetLoadReadsBackWhatCurateWrote(t *testing.T) {
	const rows = 5000
	var csvText strings.Builder
	csvText.WriteString("name,small,big,ratio,score,ok,day,at\n")
	base := time.Date(2024, 2, 29, 12, 30, 0, 0, time.UTC)
	for i := range rows {
		name := fmt.Sprintf("row %d, \"quoted\"", i)
		if i%7 == 0 {
			name = ""
		}
		fmt.Fprintf(&csvText, "%s,%d,%d,%g,%g,%t,%s,%s\n",
			csvQuote(name), i-2500, int64(i)*1_000_000_007, float32(i)/3, float64(i)*1.25e-3,
			i%3 == 0, base.AddDate(0, 0, i).Format(time.DateOnly), base.Add(time.Duration(i)*time.Microsecond*1234567).Format(time.RFC3339Nano))
		if i%11 == 0 { // a row of NULLs but the name
			fmt.Fprintf(&csvText, "n%d,,,,,,,\n", i)
		}
	}
	data := []byte(csvText.String())
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	curateCols := []curate.Column{
		{Name: "name", Type: "string"}, {Name: "small", Type: "int32"}, {Name: "big", Type: "int64"},
		{Name: "ratio", Type: "float32"}, {Name: "score", Type: "float64"}, {Name: "ok", Type: "bool"},
		{Name: "day", Type: "date"}, {Name: "at", Type: "timestamp"},
	}
	// The load declares the warehouse types (a FLOAT loads into double).
	loadCols := []format.Column{
		{Field: "name", Type: schema.Text}, {Field: "small", Type: schema.Integer}, {Field: "big", Type: schema.BigInt},
		{Field: "ratio", Type: schema.Double}, {Field: "score", Type: schema.Double}, {Field: "ok", Type: schema.Boolean},
		{Field: "day", Type: schema.Date}, {Field: "at", Type: schema.Timestamp},
	}
	want := make([][]any, 0, len(recs)-1)
	for _, rec := range recs[1:] {
		row := make([]any, len(rec))
		for j, v := range rec {
			x, err := format.CastString(curateCols[j].Type, v)
			if err != nil {
				t.Fatal(err)
			}
			switch y := x.(type) {
			case int32:
				x = int64(y)
			case float32:
				x = float64(y)
			}
			row[j] = x
		}
		want = append(want, row)
	}

	for _, url := range []string{"file://" + t.TempDir(), "mem://"} {
		t.Run(strings.TrimSuffix(url[:strings.Index(url, ":")], ":"), func(t *testing.T) {
			ctx := context.Background()
			st, err := store.Open(ctx, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if _, err := st.Put(ctx, "raw/in.csv", data, "text/csv"); err != nil {
				t.Fatal(err)
			}
			res, err := curate.Run(ctx, curateStore{st}, curate.Spec{Input: "raw/", Output: "curated/", Columns: curateCols, MaxRowsPerFile: 2000},
				&curate.Options{TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if res.Files < 3 {
				t.Fatalf("curate wrote %d parts; want several", res.Files)
			}
			var got [][]any
			for _, ob := range res.Outputs {
				if !strings.HasSuffix(ob.Key, ".parquet") {
					continue
				}
				rc, _, err := st.Open(ctx, ob.Key)
				if err != nil {
					t.Fatal(err)
				}
				_, isFile := rc.(*os.File)
				if isFile != strings.HasPrefix(url, "file:") {
					t.Fatalf("the %s store opens %T; the test means to cover both read paths", url, rc)
				}
				rows, rejects, rep, err := readAll(t, rc, format.ReadOptions{Format: format.InputParquet, Mapper: mapper(t, loadCols, nil), BatchRows: 700})
				rc.Close()
				if err != nil {
					t.Fatalf("%s: %v", ob.Key, err)
				}
				if len(rejects) > 0 || len(rep.Missing) > 0 || len(rep.Extra) > 0 || rep.Records != len(rows) {
					t.Fatalf("%s: rejects %v, report %+v for %d rows", ob.Key, rejects, rep, len(rows))
				}
				got = append(got, rows...)
			}
			if len(got) != len(want) {
				t.Fatalf("read %d rows back, the CSV has %d", len(got), len(want))
			}
			for i := range want {
				for j := range want[i] {
					if !sameValue(got[i][j], want[i][j]) {
						t.Fatalf("row %d column %s = %#v, the CSV cast gives %#v", i+1, loadCols[j].Field, got[i][j], want[i][j])
					}
				}
			}
		})
	}
}

func csvQuote(s string) string {
	if strings.ContainsAny(s, ",\"\n") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

func sameValue(a, b any) bool {
	if ta, ok := a.(time.Time); ok {
		tb, ok := b.(time.Time)
		return ok && ta.Equal(tb)
	}
	return a == b
}

// duckSQL runs SQL statements in an in-memory DuckDB (tools/duckcheck) and
// returns the last one's rows as JSON objects.
func duckSQL(t *testing.T, stmts ...string) []map[string]any {
	t.Helper()
	const hint = "run `npm install` in tools/duckcheck (or ./scripts/test.sh)"
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: %v; %s", err, hint)
	}
	tool, err := filepath.Abs(filepath.Join("..", "tools", "duckcheck"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tool, "node_modules", "@duckdb", "node-api", "package.json")); err != nil {
		t.Fatalf("%s/node_modules lacks @duckdb/node-api (%v); %s", tool, err, hint)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, append([]string{filepath.Join(tool, "sql.mjs")}, stmts...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("duckdb failed: %v\n%s", err, stderr.String())
	}
	var rows []map[string]any
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	if err := dec.Decode(&rows); err != nil {
		t.Fatalf("sql.mjs printed %q: %v", out, err)
	}
	return rows
}

// TestParquetLoadReadsEveryTypeDuckDBWrites has DuckDB, an independent
// writer, write a Parquet file with a column of every type it maps to a
// Parquet type sluice loads — with NULLs, extremes and several row groups
// — and loads it, comparing every value with DuckDB's own rendering of it.
func TestParquetLoadReadsEveryTypeDuckDBWrites(t *testing.T) {
	dir := t.TempDir()
	const n = 3000
	// Row i; every 10th row is NULL in every column but id.
	sel := `SELECT i AS id,
	  CASE WHEN i % 10 = 0 THEN NULL ELSE i % 2 = 0 END AS b,
	  CASE WHEN i % 10 = 0 THEN NULL ELSE (i % 256 - 128)::TINYINT END AS i8,
	  CASE WHEN i % 10 = 0 THEN NULL ELSE (i * 7 - 10000)::SMALLINT END AS i16,
	  CASE WHEN i % 10 = 0 THEN NULL ELSE (i * 1000003 - 1500000000)::INTEGER END AS i32,
	  CASE WHEN i % 10 = 0 THEN NULL WHEN i = 1 THEN -9223372036854775808 WHEN i = 2 THEN 9223372036854775807 ELSE (i * 3000000000017 - 4000000000000000)::BIGINT END AS i64,
	  CASE WHEN i % 10 = 0 THEN NULL ELSE (i % 256)::UTINYINT END AS u8,
	  CASE WHEN i % 10 = 0 THEN NULL ELSE (i * 20)::USMALLINT END AS u16,
	  CASE WHEN i % 10 = 0 THEN NULL WHEN i = 1500 THEN 4294967295 ELSE (i * 1000003)::UINTEGER END AS u32,
	  CASE WHEN i % 10 = 0 THEN NULL ELSE (i * 1000000000007)::UBIGINT END AS u64,
	  CASE WHEN i % 10 = 0 THEN NULL ELSE (i / 7.0)::FLOAT END AS f32,
	  CASE WHEN i % 10 = 0 THEN NULL ELSE i / 3.0e5 - 1e-3 END AS f64,
	  CASE WHEN i % 10 = 0 THEN NULL ELSE (i * 1.25 - 100)::DECIMAL(9,2) END AS dec9,
	  CASE WHEN i % 10 = 0 THEN NULL ELSE (i * 123456.789 - 1e8)::DECIMAL(18,3) END AS dec18,
	  CASE WHEN i % 10 = 0 THEN NULL ELSE (i * 1234567.0123456789 - 1e9)::DECIMAL(38,10) END AS dec38,
	  CASE WHEN i % 10 = 0 THEN NULL WHEN i % 10 = 3 THEN 'ünïcödé "q", ' || i ELSE 'v' || (i % 17) END AS s,
	  CASE WHEN i % 10 = 0 THEN NULL ELSE DATE '1970-01-01' + (i * 37 - 50000)::INTEGER END AS d,
	  CASE WHEN i % 10 = 0 THEN NULL ELSE TIMESTAMP '2001-02-03 04:05:06.789012' + to_microseconds(i * 3600000123) END AS ts,
	  CASE WHEN i % 10 = 0 THEN NULL ELSE (TIMESTAMP '1960-01-01 00:00:00.123' + to_milliseconds(i * 86400007))::TIMESTAMP_MS END AS ts_ms,
	  CASE WHEN i % 10 = 0 THEN NULL ELSE make_timestamp_ns(1577836800000000000 + i * 1000000001) END AS ts_ns,
	  CASE WHEN i % 10 = 0 THEN NULL ELSE (TIMESTAMPTZ '2022-06-01 00:00:00+00' + to_microseconds(i * 999999)) END AS tstz,
	  CASE WHEN i % 10 = 0 THEN NULL ELSE {'city': 'c' || (i % 5), 'zip': i} END AS addr
	FROM range(1, ` + strconv.Itoa(n+1) + `) t(i)`
	// The file in several of DuckDB's codecs and page formats, so that
	// every page check (decompressing into a counter) meets real pages.
	variants := []string{
		"COMPRESSION snappy",
		"COMPRESSION zstd, PARQUET_VERSION V2",
		"COMPRESSION gzip",
		"COMPRESSION brotli",
		"COMPRESSION uncompressed",
		"COMPRESSION lz4_raw, PARQUET_VERSION V2", // refused: see below
	}
	stmts := []string{"SET TimeZone = 'UTC'"}
	for k, v := range variants {
		stmts = append(stmts, fmt.Sprintf("COPY (%s) TO '%s' (FORMAT parquet, ROW_GROUP_SIZE 1024, %s)", sel, filepath.Join(dir, strconv.Itoa(k)+".parquet"), v))
	}
	file := filepath.Join(dir, "0.parquet")
	rows := duckSQL(t, append(stmts,
		// DuckDB's rendering of every value, to compare with.
		fmt.Sprintf(`SELECT id, b, i8::VARCHAR i8, i16::VARCHAR i16, i32::VARCHAR i32, i64::VARCHAR i64, u8::VARCHAR u8, u16::VARCHAR u16,
		  u32::VARCHAR u32, u64::VARCHAR u64, f32::DOUBLE::VARCHAR f32, f64::VARCHAR f64, dec9::VARCHAR dec9, dec18::VARCHAR dec18, dec38::VARCHAR dec38, s,
		  (d - DATE '1970-01-01')::VARCHAR d, epoch_us(ts)::VARCHAR ts, epoch_ms(ts_ms)::VARCHAR ts_ms, epoch_ns(ts_ns)::VARCHAR ts_ns,
		  epoch_us(tstz)::VARCHAR tstz, addr.city AS city, addr.zip::VARCHAR AS zip
		  FROM read_parquet('%s') ORDER BY id`, file))...)
	if len(rows) != n {
		t.Fatalf("DuckDB reads back %d rows, want %d", len(rows), n)
	}
	cols := []format.Column{
		{Field: "id", Type: schema.BigInt, Required: true},
		{Field: "b", Type: schema.Boolean},
		{Field: "i8", Type: schema.Integer}, {Field: "i16", Type: schema.Integer}, {Field: "i32", Type: schema.Integer},
		{Field: "i64", Type: schema.BigInt},
		{Field: "u8", Type: schema.Integer}, {Field: "u16", Type: schema.Integer}, {Field: "u32", Type: schema.BigInt}, {Field: "u64", Type: schema.BigInt},
		{Field: "f32", Type: schema.Double}, {Field: "f64", Type: schema.Double},
		{Field: "dec9", Type: schema.Text}, {Field: "dec18", Type: schema.Text}, {Field: "dec38", Type: schema.Text},
		{Field: "s", Type: schema.Text},
		{Field: "d", Type: schema.Date}, {Field: "ts", Type: schema.Timestamp}, {Field: "ts_ms", Type: schema.Timestamp},
		{Field: "ts_ns", Type: schema.Timestamp}, {Field: "tstz", Type: schema.Timestamp},
		{Path: []string{"addr", "city"}, Type: schema.Text}, {Path: []string{"addr", "zip"}, Type: schema.BigInt},
	}
	for k, v := range variants {
		t.Run(v, func(t *testing.T) {
			f, err := os.Open(filepath.Join(dir, strconv.Itoa(k)+".parquet"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, rejects, rep, err := readAll(t, f, format.ReadOptions{Format: format.InputParquet, Mapper: mapper(t, cols, &format.MapperOptions{Extra: format.ExtraError})})
			if strings.Contains(v, "lz4") {
				// parquet-go misreads LZ4_RAW pages (checkCodec): the
				// decoder must say so, not load wrong values.
				var re *format.RecordError
				if !errors.As(err, &re) || re.Column != "id" || !strings.Contains(err.Error(), "LZ4_RAW") || len(got) > 0 {
					t.Fatalf("an LZ4_RAW file gave %d rows and error %v; want a RecordError naming column id and LZ4_RAW", len(got), err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != n || len(rejects) > 0 || rep.Records != n || len(rep.Missing) > 0 || len(rep.Extra) > 0 {
				t.Fatalf("loaded %d rows, %d rejects, report %+v; want %d clean rows", len(got), len(rejects), rep, n)
			}
			compareWithDuckDB(t, cols, got, rows)
		})
	}
}

// compareWithDuckDB compares loaded rows with DuckDB's rendering of them.
func compareWithDuckDB(t *testing.T, cols []format.Column, got [][]any, rows []map[string]any) {
	t.Helper()
	epoch := time.Unix(0, 0).UTC()
	for i, w := range rows {
		for j, c := range cols {
			key := c.Field
			if key == "" { // addr.city, addr.zip: DuckDB selected city and zip
				key = c.Path[1]
			}
			dv := w[key]
			g := got[i][j]
			if dv == nil {
				if g != nil {
					t.Fatalf("row %d column %s = %#v, DuckDB has NULL", i+1, key, g)
				}
				continue
			}
			ds := fmt.Sprint(dv)
			var gs string
			switch x := g.(type) {
			case nil:
				t.Fatalf("row %d column %s is NULL, DuckDB has %v", i+1, key, dv)
			case int64:
				gs = strconv.FormatInt(x, 10)
			case bool:
				gs = strconv.FormatBool(x)
			case float64:
				want, err := strconv.ParseFloat(ds, 64)
				if err != nil {
					t.Fatal(err)
				}
				if x != want {
					t.Fatalf("row %d column %s = %v, DuckDB has %v", i+1, key, x, want)
				}
				continue
			case string:
				gs = x
			case time.Time:
				switch key {
				case "d":
					gs = strconv.FormatInt(int64(x.Sub(epoch)/(24*time.Hour)), 10)
				case "ts_ms":
					gs = strconv.FormatInt(x.UnixMilli(), 10)
				case "ts_ns":
					gs = strconv.FormatInt(x.UnixNano(), 10)
				default:
					gs = strconv.FormatInt(x.UnixMicro(), 10)
				}
			}
			if gs != ds {
				t.Fatalf("row %d column %s = %q, DuckDB has %q", i+1, key, gs, ds)
			}
		}
	}
}

// TestParquetLoadSpoolsAReaderWithoutRandomAccessAndLeavesNothing loads a
// Parquet object through a plain io.Reader and checks that the temporary
// copy is gone (unlinked from the start) and that MaxObjectBytes bounds it.
func TestParquetLoadSpoolsAReaderWithoutRandomAccessAndLeavesNothing(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dir := t.TempDir()
	file := filepath.Join(dir, "x.parquet")
	duckSQL(t, fmt.Sprintf("COPY (SELECT i AS id, 'name ' || i AS name FROM range(10000) t(i)) TO '%s' (FORMAT parquet)", file))
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cols := []format.Column{{Field: "id", Type: schema.BigInt}, {Field: "name", Type: schema.Text}}
	rows, _, _, err := readAll(t, plainReader{bytes.NewReader(data)}, format.ReadOptions{Format: format.InputParquet, Mapper: mapper(t, cols, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 10000 || rows[9999][0] != int64(9999) || rows[9999][1] != "name 9999" {
		t.Fatalf("read %d rows, last %v", len(rows), rows[len(rows)-1])
	}
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Fatalf("the temporary directory still holds %v", left)
	}
	_, _, _, err = readAll(t, plainReader{bytes.NewReader(data)}, format.ReadOptions{Format: format.InputParquet, Mapper: mapper(t, cols, nil), Limits: format.Limits{MaxObjectBytes: int64(len(data)) - 1}})
	var le *format.LimitError
	if !errors.As(err, &le) || le.Key != format.KeyMaxObjectBytes {
		t.Fatalf("a Parquet object one byte over max_object_bytes gave %v; want a LimitError for %s", err, format.KeyMaxObjectBytes)
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Fatalf("after a refused object the temporary directory still holds %v", left)
	}
}

// TestParquetLoadSaysWhenParquetGoCannotDecodeAPage loads a page that
// parquet-go refuses (DuckDB writes a UINT32 column's DELTA_BINARY_PACKED
// first value unsigned, parquet-go wants it within int32): the error names
// the column; no row of the column is loaded wrong.
func TestParquetLoadSaysWhenParquetGoCannotDecodeAPage(t *testing.T) {
	file := filepath.Join(t.TempDir(), "u32.parquet")
	duckSQL(t, fmt.Sprintf("COPY (SELECT (4294967295 - i)::UINTEGER AS u32 FROM range(100) t(i)) TO '%s' (FORMAT parquet, PARQUET_VERSION V2)", file))
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, _, _, err := readAll(t, f, format.ReadOptions{Format: format.InputParquet, Mapper: mapper(t, []format.Column{{Field: "u32", Type: schema.BigInt}}, nil)})
	var re *format.RecordError
	if err == nil {
		// A later parquet-go may read it: then every value must be right.
		for i, r := range rows {
			if r[0] != int64(4294967295-i) {
				t.Fatalf("row %d = %v, want %d", i+1, r[0], 4294967295-i)
			}
		}
		return
	}
	if !errors.As(err, &re) || re.Column != "u32" || len(rows) > 0 || !strings.Contains(err.Error(), "cannot decode the Parquet page") {
		t.Fatalf("got %d rows and %v; want a RecordError for column u32", len(rows), err)
	}
}
