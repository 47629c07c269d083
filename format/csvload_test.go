package format

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/sluicehq/sluice/schema"
)

// loadCSV decodes in with the CSV decoder.
func loadCSV(t testing.TB, in []byte, cols []Column, mo *MapperOptions, ro ReadOptions) decoded {
	t.Helper()
	ro.Format, ro.Mapper = InputCSV, mustMapper(t, cols, mo)
	return readAll(t, bytes.NewReader(in), ro)
}

// textCols are text columns taking the header fields names.
func textCols(names ...string) []Column {
	cols := make([]Column, len(names))
	for i, n := range names {
		cols[i] = Column{Field: n, Type: schema.Text}
	}
	return cols
}

func sameAny(a, b any) bool {
	if ta, ok := a.(time.Time); ok {
		tb, ok := b.(time.Time)
		return ok && ta.Equal(tb)
	}
	return a == b
}

var csvCols = []Column{
	{Field: "id", Type: schema.BigInt},
	{Field: "n", Type: schema.Integer},
	{Field: "x", Type: schema.Double},
	{Field: "ok", Type: schema.Boolean},
	{Field: "day", Type: schema.Date},
	{Field: "at", Type: schema.Timestamp},
	{Field: "s", Type: schema.Text},
	{Field: "j", Type: schema.JSON},
}

// csvSample has quotes with delimiters, doubled quotes and a newline in a
// field, CRLF line ends, a byte order mark, empty values and no final
// newline.
const csvSample = "\ufeffid,n,x,ok,day,at,s,j\r\n" +
	"1,-2147483648,1.5,true,2024-02-29,2024-02-29T10:00:00+02:00,\"a, \"\"b\"\"\",\"{\"\"k\"\":[1,2]}\"\r\n" +
	"2,,,,,,,\r\n" +
	"3,7,-1e300,F,1999-12-31,2001-02-03 04:05:06.789,\"two\r\nlines\",null\r\n" +
	"9223372036854775807,2147483647,0,1,0001-01-01,2001-02-03T04:05:06,é,\"\"\"s\"\"\""

func csvSampleWant() [][]any {
	return [][]any{
		{int64(1), int64(math.MinInt32), 1.5, true, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC), time.Date(2024, 2, 29, 8, 0, 0, 0, time.UTC), `a, "b"`, `{"k":[1,2]}`},
		{int64(2), nil, nil, nil, nil, nil, nil, nil},
		{int64(3), int64(7), -1e300, false, time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(2001, 2, 3, 4, 5, 6, 789e6, time.UTC), "two\nlines", "null"}, // a quoted CRLF is read as LF, as encoding/csv reads it
		{int64(math.MaxInt64), int64(math.MaxInt32), 0.0, true, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC), "é", `"s"`},
	}
}

func TestCSVLoadCastsEveryTypeAsCurateDoes(t *testing.T) {
	plain := []byte(csvSample)
	for name, in := range map[string][]byte{"plain": plain, "gzip": gzipBytes(t, plain), "zstd": zstded(t, plain)} {
		t.Run(name, func(t *testing.T) {
			d := loadCSV(t, in, csvCols, nil, ReadOptions{BatchRows: 3})
			if d.err != nil {
				t.Fatal(d.err)
			}
			if len(d.rejects) > 0 || d.report.Records != 4 || len(d.report.Missing) > 0 || len(d.report.Extra) > 0 {
				t.Fatalf("rejects %v report %+v", d.rejects, d.report)
			}
			want := csvSampleWant()
			if len(d.rows) != len(want) || fmt.Sprint(d.n) != "[1 2 3 4]" || fmt.Sprint(d.line) != "[2 3 4 6]" {
				t.Fatalf("%d rows, numbers %v, lines %v; want %d rows, [1 2 3 4], [2 3 4 6]", len(d.rows), d.n, d.line, len(want))
			}
			for i := range want {
				for j := range want[i] {
					if !sameAny(d.rows[i][j], want[i][j]) {
						t.Errorf("row %d column %s = %#v, want %#v", i+1, csvCols[j].Field, d.rows[i][j], want[i][j])
					}
				}
			}
		})
	}
}

func TestCSVLoadReadsRecordsWithTheirLines(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		delim rune
		rows  string
		lines string
	}{
		{"plain", "a,b\n1,2\n3,4\n", 0, "[[1 2] [3 4]]", "[2 3]"},
		{"no final newline", "a,b\n1,2\n3,4", 0, "[[1 2] [3 4]]", "[2 3]"},
		{"CRLF", "a,b\r\n1,2\r\n3,4\r\n", 0, "[[1 2] [3 4]]", "[2 3]"},
		{"byte order mark", "\ufeffa,b\n1,2\n", 0, "[[1 2]]", "[2]"},
		{"quoted field with newline and quotes", "a,b\n\"x\ny\",\"say \"\"hi\"\"\"\n5,6\n", 0, "[[x\ny say \"hi\"] [5 6]]", "[2 4]"},
		{"empty values are NULL", "a,b\n,\n", 0, "[[<nil> <nil>]]", "[2]"},
		{"blank lines are skipped", "a,b\n\n1,2\n\n", 0, "[[1 2]]", "[3]"},
		{"semicolon delimiter", "a;b\n1,5;2\n", ';', "[[1,5 2]]", "[2]"},
		{"tab delimiter", "a\tb\n1\t2\n", '\t', "[[1 2]]", "[2]"},
		{"header in another order", "b,a\n1,2\n", 0, "[[2 1]]", "[2]"},
		{"header only", "a,b\n", 0, "[]", "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := loadCSV(t, []byte(tt.in), textCols("a", "b"), nil, ReadOptions{Delimiter: tt.delim})
			if d.err != nil {
				t.Fatal(d.err)
			}
			if got := fmt.Sprint(d.rows); got != tt.rows {
				t.Errorf("rows %q, want %q", got, tt.rows)
			}
			if got := fmt.Sprint(d.line); got != tt.lines {
				t.Errorf("lines %s, want %s", got, tt.lines)
			}
			for i, n := range d.n {
				if n != int64(i+1) {
					t.Errorf("record numbers %v", d.n)
				}
			}
		})
	}
}

func TestCSVLoadReadsTheHydropowerFile(t *testing.T) {
	raw, err := os.ReadFile("testdata/hydropower-consumption.csv")
	if err != nil {
		t.Fatal(err)
	}
	cols := []Column{{Field: "Entity", Type: schema.Text}, {Field: "Code", Type: schema.Text}, {Field: "Year", Type: schema.Integer}, {Field: "Hydropower (Terawatt-hours)", Type: schema.Double}}
	for name, in := range map[string][]byte{"plain": raw, "gzip": gzipBytes(t, raw)} {
		t.Run(name, func(t *testing.T) {
			d := loadCSV(t, in, cols, &MapperOptions{OnMissing: MissingError, Extra: ExtraError}, ReadOptions{Workers: 2, chunkBytes: 16 << 10})
			if d.err != nil || len(d.rejects) > 0 {
				t.Fatalf("%v, rejects %v", d.err, d.rejects)
			}
			nullCodes := 0
			for i, r := range d.rows {
				if r[1] == nil {
					nullCodes++
				}
				if d.n[i] != int64(i+1) || d.line[i] != int64(i+2) {
					t.Fatalf("row %d: record %d on line %d", i, d.n[i], d.line[i])
				}
			}
			if len(d.rows) != 4176 || nullCodes != 780 {
				t.Errorf("got %d rows with %d NULL Codes, want 4176 and 780", len(d.rows), nullCodes)
			}
			if got := fmt.Sprint(d.rows[0]); got != "[Africa <nil> 1965 14.278805574733003]" {
				t.Errorf("first row = %s", got)
			}
		})
	}
}

func TestCSVLoadLocatesBadValuesAndQuarantinesThem(t *testing.T) {
	in := []byte("id,n,s\n1,5,a\n2,x,b\n3,6,\"c\nd\"\n4,99999999999,e\n5,7,f\n")
	cols := []Column{{Field: "id", Type: schema.BigInt}, {Field: "n", Type: schema.Integer}, {Field: "s", Type: schema.Text}}

	d := loadCSV(t, in, cols, nil, ReadOptions{})
	var re *RecordError
	if !errors.Is(d.err, ErrRejected) || !errors.As(d.err, &re) || re.Record != 2 || re.Line != 3 || re.Column != "n" ||
		d.err.Error() != `record 2 (line 3): column n: want integer, got "x"` || len(d.rows) != 1 {
		t.Fatalf("got %v after %d rows; want ErrRejected naming record 2, line 3, column n after 1 row", d.err, len(d.rows))
	}

	d = loadCSV(t, in, cols, nil, ReadOptions{Quarantine: true, BatchRows: 2})
	if d.err != nil {
		t.Fatal(d.err)
	}
	if d.report.Records != 5 || len(d.rows) != 3 || d.rows[1][2] != "c\nd" || d.rows[2][0] != int64(5) || fmt.Sprint(d.n) != "[1 3 5]" {
		t.Fatalf("rows %v (records %v) report %+v", d.rows, d.n, d.report)
	}
	want := []schema.Reject{
		{N: 2, Line: 3, Reason: `column n (integer): want integer, got "x"`, Raw: `{"id":"2","n":"x","s":"b"}`},
		{N: 4, Line: 6, Reason: `column n (integer): want integer, got "99999999999" (out of range)`, Raw: `{"id":"4","n":"99999999999","s":"e"}`},
	}
	if fmt.Sprint(d.rejects) != fmt.Sprint(want) {
		t.Fatalf("rejects\n%+v\nwant\n%+v", d.rejects, want)
	}

	// A value after a quoted field that spans lines is on a later line.
	d = loadCSV(t, []byte("s,n\n\"a\nb\nc\",x\n"), []Column{{Field: "s", Type: schema.Text}, {Field: "n", Type: schema.Integer}}, nil, ReadOptions{})
	if d.err == nil || d.err.Error() != `record 1 (line 4): column n: want integer, got "x"` {
		t.Fatalf("got %v; want the value located on line 4", d.err)
	}
}

func TestCSVLoadRefusesNULInTextAndJSON(t *testing.T) {
	cols := []Column{{Field: "s", Type: schema.Text}, {Field: "j", Type: schema.JSON}}
	d := loadCSV(t, []byte("s,j\na\x00b,1\nok,\"\"\"\\u0000\"\"\"\nok,2\n"), cols, nil, ReadOptions{Quarantine: true})
	if d.err != nil {
		t.Fatal(d.err)
	}
	want := "[{1 2 column s (text): text contains a NUL character (\\u0000), which PostgreSQL cannot store {\"s\":\"a\\u0000b\",\"j\":\"1\"}} " +
		"{2 3 column j (json): json contains a NUL character (\\u0000), which PostgreSQL cannot store {\"s\":\"ok\",\"j\":\"\\\"\\\\u0000\\\"\"}}]"
	if got := fmt.Sprint(d.rejects); got != want || fmt.Sprint(d.rows) != "[[ok 2]]" {
		t.Fatalf("rows %v, rejects\n%s\nwant\n%s", d.rows, got, want)
	}
}

func TestCSVLoadRefusesBrokenFilesNamingTheLine(t *testing.T) {
	cols := textCols("a", "b", "c", "d", "Code")
	for _, c := range []struct {
		name    string
		in      string
		records int // rows delivered before the error
		line    int
		column  string
		record  int
		msg     string
	}{
		{"empty file", "", 0, 0, "", 0, "empty file: no header row"},
		{"only blank lines", "\n\r\n\n", 0, 0, "", 0, "empty file: no header row"},
		{"ragged row", "a,b,c,d\n" + strings.Repeat("1,2,3,4\n", 10) + "1,2,3\n", 10, 12, "", 11, "record 11 (line 12): 3 fields, header has 4"},
		{"row with one field", "a,b\n1\n", 0, 2, "", 1, "record 1 (line 2): 1 field, header has 2"},
		{"too many fields", "a,b\n1,2,3\n", 0, 2, "", 1, "record 1 (line 2): 3 fields, header has 2"},
		{"invalid UTF-8", "a,Code\n1,x\n2,y\n3,z\n4,caf\xe9\n", 3, 5, "Code", 4, "record 4 (line 5): column Code: not valid UTF-8; convert the file to UTF-8"},
		{"invalid UTF-8 in the header", "a,caf\xe9\n1,2\n", 0, 1, "", 0, "line 1: header field 2 is not valid UTF-8; convert the file to UTF-8"},
		{"empty header name", "a,,c\n1,2,3\n", 0, 1, "", 0, "line 1: header field 2 has an empty name"},
		{"trailing delimiter in header", "a,b,\n1,2,3\n", 0, 1, "", 0, "line 1: header field 3 has an empty name"},
		{"duplicate header name", "Year,Code,Year\n", 0, 1, "Year", 0, "line 1: column Year: duplicate header name (fields 1 and 3)"},
		{"bare quote", "a,b\n1,2\n3,4 \"inch\"\n", 1, 3, "", 0, `line 3: bare " in an unquoted field (character 5)`},
		{"unclosed quote", "a,b\n1,2\n\"3,4\n5,6\n", 1, 4, "", 0, `line 4: extraneous or missing " in a quoted field (character 5); the record starts on line 3`},
		{"text after a closing quote", "a,b\n\"1\"x,2\n", 0, 2, "", 0, `line 2: extraneous or missing " in a quoted field (character 3)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, workers := range []int{1, 3} {
				d := loadCSV(t, []byte(c.in), cols, nil, ReadOptions{Quarantine: true, Workers: workers, chunkBytes: 8})
				var re *RecordError
				if !errors.As(d.err, &re) || errors.Is(d.err, ErrRejected) || IsReadFailure(d.err) {
					t.Fatalf("workers %d: got %v (%T); want a RecordError", workers, d.err, d.err)
				}
				if len(d.rows) != c.records || re.Line != c.line || re.Column != c.column || re.Record != c.record || !strings.HasPrefix(d.err.Error(), c.msg) {
					t.Errorf("workers %d: %d rows, then record/line/column %d/%d/%q: %v\nwant %d rows, then %d/%d/%q: %s",
						workers, len(d.rows), re.Record, re.Line, re.Column, d.err, c.records, c.record, c.line, c.column, c.msg)
				}
			}
		})
	}
}

func TestCSVLoadReportsReadFailures(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("a,b\n1,2\n"), iotest.ErrReader(boom))
	m := mustMapper(t, textCols("a", "b"), nil)
	d := readAll(t, r, ReadOptions{Format: InputCSV, Mapper: m})
	var re *RecordError
	if !errors.As(d.err, &re) || !errors.Is(d.err, boom) || !IsReadFailure(d.err) || !strings.Contains(d.err.Error(), "line 3: reading input: connection reset") || len(d.rows) != 1 {
		t.Errorf("got %v after %d rows; want the row, then a read failure on line 3", d.err, len(d.rows))
	}
}

func TestCSVLoadAppliesTheHeaderPolicies(t *testing.T) {
	in := []byte("id,extra1,name,extra2\n1,x,a,\n2,\"y\"\"\",,z\n")
	base := []Column{{Field: "id", Type: schema.BigInt}, {Field: "name", Type: schema.Text}, {Field: "absent", Type: schema.Text}}

	d := loadCSV(t, in, base, nil, ReadOptions{})
	if d.err != nil {
		t.Fatal(d.err)
	}
	if fmt.Sprint(d.rows) != "[[1 a <nil>] [2 <nil> <nil>]]" || fmt.Sprint(d.report.Missing) != "[absent]" ||
		fmt.Sprint(d.report.Extra) != "[{extra1 1 2} {extra2 1 2}]" || d.report.Records != 2 {
		t.Fatalf("warn: rows %v report %+v", d.rows, d.report)
	}
	if d.report.Warning() == "" {
		t.Fatal("no warning for a report with findings")
	}

	d = loadCSV(t, in, base, &MapperOptions{Extra: ExtraIgnore}, ReadOptions{})
	if d.err != nil || len(d.report.Extra) > 0 {
		t.Fatalf("ignore: %v, report %+v", d.err, d.report)
	}

	d = loadCSV(t, in, base, &MapperOptions{OnMissing: MissingError}, ReadOptions{})
	var re *RecordError
	if !errors.As(d.err, &re) || re.Column != "absent" || errors.Is(d.err, ErrRejected) || len(d.rows) > 0 {
		t.Fatalf("missing error: got %v after %d rows", d.err, len(d.rows))
	}
	// An object without records reports nothing and fails nothing.
	if d := loadCSV(t, []byte("id,extra1\n\n"), base, &MapperOptions{OnMissing: MissingError}, ReadOptions{}); d.err != nil || len(d.report.Missing)+len(d.report.Extra) > 0 {
		t.Fatalf("empty object: %v, %+v", d.err, d.report)
	}

	d = loadCSV(t, in, base[:2], &MapperOptions{Extra: ExtraError}, ReadOptions{Quarantine: true})
	if d.err != nil || len(d.rejects) != 2 || !strings.HasPrefix(d.rejects[0].Reason, "column extra1: the field is not declared") {
		t.Fatalf("extra error: %v, rejects %+v", d.err, d.rejects)
	}

	cols := append(base[:2:2], Column{Name: "_extra", Type: schema.JSON})
	d = loadCSV(t, in, cols, &MapperOptions{Extra: ExtraJSON, ExtraColumn: "_extra"}, ReadOptions{})
	if d.err != nil {
		t.Fatal(d.err)
	}
	if d.rows[0][2] != `{"extra1":"x","extra2":null}` || d.rows[1][2] != `{"extra1":"y\"","extra2":"z"}` || d.report.ExtraColumn != "_extra" {
		t.Fatalf("extra json: rows %v report %+v", d.rows, d.report)
	}

	req := []Column{{Field: "id", Type: schema.BigInt}, {Field: "name", Type: schema.Text, Required: true}, {Field: "absent", Type: schema.Text, Required: true}}
	d = loadCSV(t, in, req[:2], nil, ReadOptions{Quarantine: true})
	if d.err != nil || len(d.rejects) != 1 || d.rejects[0].N != 2 || d.rejects[0].Reason != "column name (text): required field is empty (NULL)" {
		t.Fatalf("required: %v, rejects %+v", d.err, d.rejects)
	}
	d = loadCSV(t, in, req, nil, ReadOptions{})
	if !errors.Is(d.err, ErrRejected) || !strings.Contains(d.err.Error(), "record 1 (line 2): column absent: required field is missing from the header") {
		t.Fatalf("required, no quarantine: %v", d.err)
	}

	if d := loadCSV(t, in, []Column{{Path: []string{"a", "b"}, Type: schema.Text}}, nil, ReadOptions{}); d.err == nil || !strings.Contains(d.err.Error(), "CSV records are flat") {
		t.Fatalf("nested path: %v", d.err)
	}
}

func TestCSVLoadTakesTheDelimiter(t *testing.T) {
	cols := []Column{{Field: "a", Type: schema.Text}, {Field: "b", Type: schema.BigInt}}
	for delim, in := range map[rune]string{';': "a;b\n\"x;y\";1\n", '\t': "a\tb\nx,y\t1\n", '→': "a→b\nx,y→1\n"} {
		d := loadCSV(t, []byte(in), cols, nil, ReadOptions{Delimiter: delim})
		if d.err != nil || len(d.rows) != 1 || d.rows[0][1] != int64(1) || !strings.HasPrefix(d.rows[0][0].(string), "x") {
			t.Errorf("delimiter %q: rows %v, %v", delim, d.rows, d.err)
		}
	}
	for _, delim := range []rune{'"', '\n', '\r', 0xFFFD, -1} {
		if d := loadCSV(t, []byte("a,b\n"), cols, nil, ReadOptions{Delimiter: delim}); d.err == nil || !strings.Contains(d.err.Error(), "invalid CSV delimiter") {
			t.Errorf("delimiter %q: %v", delim, d.err)
		}
	}
}

func TestCSVLoadLimits(t *testing.T) {
	cols := []Column{{Field: "a", Type: schema.Text}}
	big := "a\n" + strings.Repeat("x", 5000) + "\n"
	many := "a\n" + strings.Repeat("1\n", 11)
	bomb := zstded(t, []byte("a\n"+strings.Repeat(strings.Repeat("z", 99)+"\n", 200_000))) // 20 MB of text
	gzBomb := gzipBytes(t, []byte("a\n"+strings.Repeat(strings.Repeat("z", 99)+"\n", 200_000)))
	for _, c := range []struct {
		name string
		in   []byte
		lim  Limits
		key  string
	}{
		{"record bytes", []byte(big), Limits{MaxRecordBytes: 1000}, KeyMaxRecordBytes},
		{"field bytes", []byte(big), Limits{MaxFieldBytes: 1000}, KeyMaxFieldBytes},
		{"records", []byte(many), Limits{MaxRecords: 10}, KeyMaxRecords},
		{"zstd bomb", bomb, Limits{MaxObjectBytes: 1 << 20}, KeyMaxObjectBytes},
		{"gzip bomb", gzBomb, Limits{MaxObjectBytes: 1 << 20}, KeyMaxObjectBytes},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := loadCSV(t, c.in, cols, nil, ReadOptions{Limits: c.lim})
			var le *LimitError
			var re *RecordError
			if !errors.As(d.err, &le) || le.Key != c.key || !errors.As(d.err, &re) || IsReadFailure(d.err) {
				t.Fatalf("got %v; want a RecordError wrapping a LimitError for %s", d.err, c.key)
			}
			if c.key == KeyMaxObjectBytes && int64(len(d.rows))*100 > c.lim.MaxObjectBytes {
				t.Fatalf("%d rows (%d bytes) passed a %d-byte limit", len(d.rows), len(d.rows)*100, c.lim.MaxObjectBytes)
			}
		})
	}
}

// batchDump describes every batch a Reader hands over — rows with their
// record numbers and lines, rejects, input bytes — and the error.
func batchDump(t testing.TB, in []byte, m *Mapper, ro ReadOptions) string {
	t.Helper()
	ro.Format, ro.Mapper = InputCSV, m
	var out strings.Builder
	rd, err := NewReader(t.Context(), bytes.NewReader(in), ro)
	if err != nil {
		return "NewReader: " + err.Error()
	}
	defer rd.Close()
	for {
		b, err := rd.Next(t.Context())
		if err == io.EOF {
			fmt.Fprintf(&out, "report %+v\n", rd.Report())
			return out.String()
		}
		if err != nil {
			var re *RecordError
			errors.As(err, &re)
			fmt.Fprintf(&out, "error %v (record %d, rejected %v)\n", err, re.Record, errors.Is(err, ErrRejected))
			return out.String()
		}
		fmt.Fprintf(&out, "batch of %d bytes:\n", b.Bytes)
		for i := range b.Len() {
			fmt.Fprintf(&out, "  %d@%d %#v\n", b.N[i], b.Line[i], b.Row(i))
		}
		for _, r := range b.Rejects {
			fmt.Fprintf(&out, "  reject %+v\n", r)
		}
	}
}

// csvMixed has quoted fields across lines, CRLF, blank lines, a byte
// order mark, values that do not cast and an undeclared field: records
// of every kind, for chunks to cut anywhere.
func csvMixed(rows int) []byte {
	var b bytes.Buffer
	b.WriteString("\ufeffid,name,score,note\r\n")
	for i := 1; i <= rows; i++ {
		switch i % 7 {
		case 0:
			fmt.Fprintf(&b, "%d,\"multi\nline, \"\"quoted\"\"\",%d.5,\"x\r\ny\"\r\n", i, i)
		case 3:
			fmt.Fprintf(&b, "%d,bad score,%dx,\n\n", i, i)
		case 5:
			fmt.Fprintf(&b, "%d,,,\r\n", i)
		default:
			fmt.Fprintf(&b, "%d,name %d,%d,n\n", i, i, i*3)
		}
	}
	return b.Bytes()
}

func TestCSVLoadGivesTheSameBatchesOnAnyNumberOfWorkers(t *testing.T) {
	cols := []Column{{Field: "id", Type: schema.BigInt, Required: true}, {Field: "name", Type: schema.Text}, {Field: "score", Type: schema.Double}, {Name: "_extra", Type: schema.JSON}}
	m := mustMapper(t, cols, &MapperOptions{Extra: ExtraJSON, ExtraColumn: "_extra"})
	good := csvMixed(3000)
	cases := map[string]struct {
		in  []byte
		ro  ReadOptions
		lim Limits
	}{
		"quarantined rejects":               {in: good, ro: ReadOptions{Quarantine: true}},
		"a rejected record stops the load":  {in: good},
		"a ragged row late":                 {in: append(bytes.Clone(good), "3001,a,1\n3002,b,2,n\n"...), ro: ReadOptions{Quarantine: true}},
		"a bare quote late":                 {in: append(bytes.Clone(good), "3001,a\"b,1,n\n"...), ro: ReadOptions{Quarantine: true}},
		"invalid UTF-8 late":                {in: append(bytes.Clone(good), "3001,\xff,1,n\n"...), ro: ReadOptions{Quarantine: true}},
		"the record limit":                  {in: good, ro: ReadOptions{Quarantine: true, Limits: Limits{MaxRecords: 250}}},
		"the record limit at the last":      {in: good, ro: ReadOptions{Quarantine: true, Limits: Limits{MaxRecords: 3000}}},
		"the object limit":                  {in: good, ro: ReadOptions{Quarantine: true, Limits: Limits{MaxObjectBytes: 50000}}},
		"a field over its limit":            {in: append(bytes.Clone(good), "3001,\""+strings.Repeat("x", 300)+"\",1,n\n"...), ro: ReadOptions{Quarantine: true, Limits: Limits{MaxFieldBytes: 200}}},
		"small batches":                     {in: good, ro: ReadOptions{Quarantine: true, BatchRows: 7}},
		"an object smaller than one chunk":  {in: []byte("id,name\n1,a\n2,b\n"), ro: ReadOptions{Quarantine: true}},
		"an object of blank lines":          {in: []byte("id,name\n\n\n\r\n\n"), ro: ReadOptions{Quarantine: true}},
		"a required value missing, stopped": {in: []byte("id,name\n1,a\n,b\n3,c\n"), ro: ReadOptions{}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			for _, chunk := range []int{1, 64, 1000} {
				ro := c.ro
				ro.chunkBytes, ro.Workers = chunk, 1
				want := batchDump(t, c.in, m, ro)
				ro.Workers = 4
				if got := batchDump(t, c.in, m, ro); got != want {
					t.Fatalf("chunks of %d bytes: 4 workers give\n%s\n1 worker gives\n%s", chunk, got, want)
				}
			}
			// One chunk: the same records, rejects and error, in
			// batches cut only by BatchRows.
			ro := c.ro
			ro.Workers = 1
			one := readAll(t, bytes.NewReader(c.in), ReadOptions{Format: InputCSV, Mapper: m, Quarantine: ro.Quarantine, Limits: ro.Limits, BatchRows: ro.BatchRows, Workers: 1})
			ro.Workers, ro.chunkBytes = 4, 64
			many := readAll(t, bytes.NewReader(c.in), ReadOptions{Format: InputCSV, Mapper: m, Quarantine: ro.Quarantine, Limits: ro.Limits, BatchRows: ro.BatchRows, Workers: 4, chunkBytes: 64})
			if fmt.Sprint(one) != fmt.Sprint(many) {
				t.Fatalf("one chunk:\n%v\nchunks of 64 bytes on 4 workers:\n%v", one, many)
			}
		})
	}
}

// FuzzCSVLoadIsTheSameOnAnyNumberOfWorkers holds the parallel load on
// chunks of a few bytes to the load of one chunk on one goroutine, and
// both to encoding/csv's records (CSVParser's exact path on the whole
// object): the same rows, record numbers, lines, rejects and errors.
func FuzzCSVLoadIsTheSameOnAnyNumberOfWorkers(f *testing.F) {
	for _, s := range []string{"a,b\n1,2\n", "a,b\r\n\"x,\"\"y\",\n", "b,a,c\n1,2,3\n4,5,6", "a,b\n1\n", "\ufeffa,b\n\"\n\",z\n", "a,b\n\n\n1,2\n", "a\n1\n", "a,b\n1,\x00\n2,3\n"} {
		f.Add([]byte(s), uint8(3))
	}
	m := mustMapper(f, textCols("a", "b"), &MapperOptions{Extra: ExtraIgnore})
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		one := readAll(t, bytes.NewReader(in), ReadOptions{Format: InputCSV, Mapper: m, Quarantine: true, Workers: 1, BatchRows: 3})
		many := readAll(t, bytes.NewReader(in), ReadOptions{Format: InputCSV, Mapper: m, Quarantine: true, Workers: 3, BatchRows: 3, chunkBytes: int(chunk) + 1})
		if fmt.Sprint(one) != fmt.Sprint(many) {
			t.Fatalf("one chunk:\n%v\nchunks of %d bytes on 3 workers:\n%v", one, int(chunk)+1, many)
		}
		want := viaExact(in, CSVOptions{})
		if (one.err != nil) != (want.err != "") {
			t.Fatalf("load error %v, encoding/csv error %q", one.err, want.err)
		}
		if one.err != nil {
			return
		}
		a, b := slices.Index(want.header, "a"), slices.Index(want.header, "b")
		var rows, wantRows []string
		for i, r := range one.rows {
			rows = append(rows, fmt.Sprintf("%d:%q", one.line[i], r))
		}
		for _, rec := range want.recs {
			row, nul := []any{nil, nil}, false
			for j, i := range []int{a, b} {
				if i >= 0 && rec.fields[i] != "" {
					row[j] = rec.fields[i]
					nul = nul || strings.IndexByte(rec.fields[i], 0) >= 0
				}
			}
			if !nul { // a NUL in text is rejected
				wantRows = append(wantRows, fmt.Sprintf("%d:%q", rec.line, row))
			}
		}
		if fmt.Sprint(rows) != fmt.Sprint(wantRows) {
			t.Fatalf("load rows %v, encoding/csv %v", rows, wantRows)
		}
	})
}

// String describes d fully, errors included, for comparisons.
func (d decoded) String() string {
	var b strings.Builder
	for i, r := range d.rows {
		fmt.Fprintf(&b, "%d@%d %#v\n", d.n[i], d.line[i], r)
	}
	for _, r := range d.rejects {
		fmt.Fprintf(&b, "reject %+v\n", r)
	}
	fmt.Fprintf(&b, "report %+v\nerror %v\n", d.report, d.err)
	return b.String()
}

// A nested path meets a CSV object when a load's format is auto and a key
// ends in .csv: an error about the object (a *RecordError, which callers
// dead-letter at once), not one a retry could fix.
func TestCSVLoadRefusesANestedPathAsAnErrorAboutTheObject(t *testing.T) {
	d := loadCSV(t, []byte("a\n1\n"), []Column{{Path: []string{"address", "city"}, Name: "city", Type: schema.Text}}, nil, ReadOptions{})
	var re *RecordError
	if !errors.As(d.err, &re) || re.Column != "address.city" || !strings.Contains(d.err.Error(), "CSV records are flat") {
		t.Fatalf("got %v; want a *RecordError naming column address.city", d.err)
	}
}
