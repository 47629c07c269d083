package format

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/schema"
)

// loadCSV decodes in with the CSV decoder.
func loadCSV(t testing.TB, in []byte, cols []Column, mo *MapperOptions, ro ReadOptions) ([][]any, []schema.Reject, Report, error) {
	t.Helper()
	m, err := NewMapper(cols, mo)
	if err != nil {
		t.Fatal(err)
	}
	ro.Format, ro.Mapper = InputCSV, m
	return readBatches(t, bytes.NewReader(in), ro)
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readBatches decodes r with NewReader and returns rows, rejects and the
// report; every batch must pass Check.
func readBatches(t testing.TB, r io.Reader, ro ReadOptions) ([][]any, []schema.Reject, Report, error) {
	t.Helper()
	ctx := context.Background()
	rd, err := NewReader(ctx, r, ro)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	var rows [][]any
	var rejects []schema.Reject
	for {
		b, err := rd.Next(ctx)
		if err == io.EOF {
			return rows, rejects, rd.Report(), nil
		}
		if err != nil {
			return rows, rejects, Report{}, err
		}
		if err := b.Check(); err != nil {
			t.Fatalf("inconsistent batch: %v", err)
		}
		for i := range b.Len() {
			rows = append(rows, b.Row(i))
		}
		rejects = append(rejects, b.Rejects...)
	}
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
		{int64(3), int64(7), -1e300, false, time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(2001, 2, 3, 4, 5, 6, 789e6, time.UTC), "two\nlines", "null"}, // encoding/csv turns a quoted CRLF into LF
		{int64(math.MaxInt64), int64(math.MaxInt32), 0.0, true, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC), "é", `"s"`},
	}
}

func TestCSVLoadCastsEveryTypeAsCurateDoes(t *testing.T) {
	plain := []byte(csvSample)
	for name, in := range map[string][]byte{"plain": plain, "gzip": gzipped(t, plain), "zstd": zstded(t, plain)} {
		t.Run(name, func(t *testing.T) {
			got, rejects, rep, err := loadCSV(t, in, csvCols, nil, ReadOptions{BatchRows: 3})
			if err != nil {
				t.Fatal(err)
			}
			if len(rejects) > 0 || rep.Records != 4 || len(rep.Missing) > 0 || len(rep.Extra) > 0 {
				t.Fatalf("rejects %v report %+v", rejects, rep)
			}
			want := csvSampleWant()
			if len(got) != len(want) {
				t.Fatalf("%d rows, want %d", len(got), len(want))
			}
			for i := range want {
				for j := range want[i] {
					if !sameAny(got[i][j], want[i][j]) {
						t.Errorf("row %d column %s = %#v, want %#v", i+1, csvCols[j].Field, got[i][j], want[i][j])
					}
				}
			}
		})
	}
}

// TestCSVLoadTypedCastsAgreeWithCastString holds appendCast, which casts
// into vectors without boxing, to the curate job's CastString.
func TestCSVLoadTypedCastsAgreeWithCastString(t *testing.T) {
	values := []string{"0", "1", "-1", "+5", " 1", "1.0", "1e3", "2147483647", "2147483648", "-2147483649", "9223372036854775808",
		"1.5", "-0", "NaN", "Inf", "1e39", "1e309", "0x10", "true", "TRUE", "t", "F", "yes", "2024-02-30", "2024-2-1", "2024-02-29",
		"2024-02-29T10:00:00Z", "2024-02-29T10:00:00.123456789+05:30", "2024-02-29 10:00:00", "2024-02-29T10:00", "{}", "[1,", `"x"`, "abc", "é"}
	for _, typ := range schema.Types {
		for _, s := range values {
			want, wantErr := CastString(typ, s)
			var v schema.Vector
			v.Reset(typ)
			err := appendCast(&v, typ, s)
			if (err != nil) != (wantErr != nil) {
				t.Errorf("%s %q: appendCast error %v, CastString error %v", typ, s, err, wantErr)
				continue
			}
			if err != nil {
				if err.Error() != wantErr.Error() {
					t.Errorf("%s %q: appendCast says %q, CastString %q", typ, s, err, wantErr)
				}
				continue
			}
			got := v.Value(0)
			switch w := want.(type) {
			case int32:
				want = int64(w)
			case float32:
				want = float64(w)
			}
			if !sameAny(got, want) {
				t.Errorf("%s %q: appendCast gives %#v, CastString %#v", typ, s, got, want)
			}
		}
	}
}

func TestCSVLoadLocatesBadValuesAndQuarantinesThem(t *testing.T) {
	in := []byte("id,n,s\n1,5,a\n2,x,b\n3,6,\"c\nd\"\n4,99999999999,e\n5,7,f\n")
	cols := []Column{{Field: "id", Type: schema.BigInt}, {Field: "n", Type: schema.Integer}, {Field: "s", Type: schema.Text}}

	_, _, _, err := loadCSV(t, in, cols, nil, ReadOptions{})
	var re *RecordError
	if !errors.Is(err, ErrRejected) || !errors.As(err, &re) || re.Record != 2 || re.Line != 3 || re.Column != "n" ||
		err.Error() != `record 2 (line 3): column n: want integer, got "x"` {
		t.Fatalf("got %v; want ErrRejected naming record 2, line 3, column n", err)
	}

	got, rejects, rep, err := loadCSV(t, in, cols, nil, ReadOptions{Quarantine: true, BatchRows: 2})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 5 || len(got) != 3 || got[1][2] != "c\nd" || got[2][0] != int64(5) {
		t.Fatalf("rows %v report %+v", got, rep)
	}
	want := []schema.Reject{
		{N: 2, Line: 3, Reason: `column n (integer): want integer, got "x"`, Raw: `{"id":"2","n":"x","s":"b"}`},
		{N: 4, Line: 6, Reason: `column n (integer): want integer, got "99999999999" (out of range)`, Raw: `{"id":"4","n":"99999999999","s":"e"}`},
	}
	if fmt.Sprint(rejects) != fmt.Sprint(want) {
		t.Fatalf("rejects\n%+v\nwant\n%+v", rejects, want)
	}
}

func TestCSVLoadRefusesBrokenFilesNamingTheLine(t *testing.T) {
	cols := []Column{{Field: "a", Type: schema.Text}, {Field: "b", Type: schema.Text}}
	for _, c := range []struct{ in, want string }{
		{"a,b\n1,2\n3\n", "record 2 (line 3): 1 field, header has 2"},
		{"a,b\n1,2\n3,4,5\n", "record 2 (line 3): 3 fields, header has 2"},
		{"a,b\n1,\"2\n", `line 2: extraneous or missing " in a quoted field`},
		{"a,b\n1,x\"y\n", `line 2: bare " in an unquoted field`},
		{"a,b\n1,\xff\n", "record 1 (line 2): column b: not valid UTF-8"},
		{"", "empty file: no header row"},
		{"a,a\n1,2\n", "column a: duplicate header name"},
	} {
		_, _, _, err := loadCSV(t, []byte(c.in), cols, nil, ReadOptions{Quarantine: true})
		var re *RecordError
		if !errors.As(err, &re) || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v; want a RecordError containing %q", c.in, err, c.want)
		}
	}
}

func TestCSVLoadAppliesTheHeaderPolicies(t *testing.T) {
	in := []byte("id,extra1,name,extra2\n1,x,a,\n2,\"y\"\"\",,z\n")
	base := []Column{{Field: "id", Type: schema.BigInt}, {Field: "name", Type: schema.Text}, {Field: "absent", Type: schema.Text}}

	got, _, rep, err := loadCSV(t, in, base, nil, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[[1 a <nil>] [2 <nil> <nil>]]" || fmt.Sprint(rep.Missing) != "[absent]" ||
		fmt.Sprint(rep.Extra) != "[{extra1 1 2} {extra2 1 2}]" || rep.Records != 2 {
		t.Fatalf("warn: rows %v report %+v", got, rep)
	}
	if rep.Warning() == "" {
		t.Fatal("no warning for a report with findings")
	}

	_, _, rep, err = loadCSV(t, in, base, &MapperOptions{Extra: ExtraIgnore}, ReadOptions{})
	if err != nil || len(rep.Extra) > 0 {
		t.Fatalf("ignore: %v, report %+v", err, rep)
	}

	_, _, _, err = loadCSV(t, in, base, &MapperOptions{OnMissing: MissingError}, ReadOptions{})
	var re *RecordError
	if !errors.As(err, &re) || re.Column != "absent" || errors.Is(err, ErrRejected) {
		t.Fatalf("missing error: got %v", err)
	}
	// An object without records reports nothing and fails nothing.
	if _, _, rep, err := loadCSV(t, []byte("id,extra1\n"), base, &MapperOptions{OnMissing: MissingError}, ReadOptions{}); err != nil || len(rep.Missing)+len(rep.Extra) > 0 {
		t.Fatalf("empty object: %v, %+v", err, rep)
	}

	_, rejects, _, err := loadCSV(t, in, base[:2], &MapperOptions{Extra: ExtraError}, ReadOptions{Quarantine: true})
	if err != nil || len(rejects) != 2 || !strings.HasPrefix(rejects[0].Reason, "column extra1: the field is not declared") {
		t.Fatalf("extra error: %v, rejects %+v", err, rejects)
	}

	cols := append(base[:2:2], Column{Name: "_extra", Type: schema.JSON})
	got, _, rep, err = loadCSV(t, in, cols, &MapperOptions{Extra: ExtraJSON, ExtraColumn: "_extra"}, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got[0][2] != `{"extra1":"x","extra2":null}` || got[1][2] != `{"extra1":"y\"","extra2":"z"}` || rep.ExtraColumn != "_extra" {
		t.Fatalf("extra json: rows %v report %+v", got, rep)
	}

	req := []Column{{Field: "id", Type: schema.BigInt}, {Field: "name", Type: schema.Text, Required: true}, {Field: "absent", Type: schema.Text, Required: true}}
	_, rejects, _, err = loadCSV(t, in, req[:2], nil, ReadOptions{Quarantine: true})
	if err != nil || len(rejects) != 1 || rejects[0].N != 2 || rejects[0].Reason != "column name (text): required field is empty (NULL)" {
		t.Fatalf("required: %v, rejects %+v", err, rejects)
	}
	_, _, _, err = loadCSV(t, in, req, nil, ReadOptions{})
	if !errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), "record 1 (line 2): column absent: required field is missing from the header") {
		t.Fatalf("required, no quarantine: %v", err)
	}

	if _, _, _, err := loadCSV(t, in, []Column{{Path: []string{"a", "b"}, Type: schema.Text}}, nil, ReadOptions{}); err == nil || !strings.Contains(err.Error(), "CSV records are flat") {
		t.Fatalf("nested path: %v", err)
	}
}

func TestCSVLoadTakesTheDelimiter(t *testing.T) {
	cols := []Column{{Field: "a", Type: schema.Text}, {Field: "b", Type: schema.BigInt}}
	for delim, in := range map[rune]string{';': "a;b\n\"x;y\";1\n", '\t': "a\tb\nx,y\t1\n"} {
		got, _, _, err := loadCSV(t, []byte(in), cols, nil, ReadOptions{Delimiter: delim})
		if err != nil || len(got) != 1 || got[0][1] != int64(1) || !strings.HasPrefix(got[0][0].(string), "x") {
			t.Errorf("delimiter %q: rows %v, %v", delim, got, err)
		}
	}
	if _, _, _, err := loadCSV(t, []byte("a,b\n"), cols, nil, ReadOptions{Delimiter: '"'}); err == nil {
		t.Error("a quote as delimiter is accepted")
	}
}

func TestCSVLoadLimits(t *testing.T) {
	cols := []Column{{Field: "a", Type: schema.Text}}
	big := "a\n" + strings.Repeat("x", 5000) + "\n"
	many := "a\n" + strings.Repeat("1\n", 11)
	bomb := zstded(t, []byte("a\n"+strings.Repeat(strings.Repeat("z", 99)+"\n", 200_000))) // 20 MB of text
	gzBomb := gzipped(t, []byte("a\n"+strings.Repeat(strings.Repeat("z", 99)+"\n", 200_000)))
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
			got, _, _, err := loadCSV(t, c.in, cols, nil, ReadOptions{Limits: c.lim})
			var le *LimitError
			var re *RecordError
			if !errors.As(err, &le) || le.Key != c.key || !errors.As(err, &re) || IsReadFailure(err) {
				t.Fatalf("got %v; want a RecordError wrapping a LimitError for %s", err, c.key)
			}
			if c.key == KeyMaxObjectBytes && int64(len(got))*100 > c.lim.MaxObjectBytes {
				t.Fatalf("%d rows (%d bytes) passed a %d-byte limit", len(got), len(got)*100, c.lim.MaxObjectBytes)
			}
		})
	}
}

// FuzzCSVLoadAgreesWithDecodeCSV holds the batch decoder to DecodeCSV on
// any input: both fail, or both read the same records (an empty value is
// NULL in batches).
func FuzzCSVLoadAgreesWithDecodeCSV(f *testing.F) {
	for _, s := range []string{"a,b\n1,2\n", "a,b\r\n\"x,\"\"y\",\n", "b,a,c\n1,2,3\n4,5,6", "a,b\n1\n", "\ufeffa,b\n\"\n\",z\n", "a,b\n\n\n1,2\n", "a\n1\n"} {
		f.Add([]byte(s))
	}
	cols := []Column{{Field: "a", Type: schema.Text}, {Field: "b", Type: schema.Text}}
	f.Fuzz(func(t *testing.T, in []byte) {
		if bytes.IndexByte(in, 0) >= 0 {
			return // batches refuse NUL in text; DecodeCSV has no types
		}
		var want [][]any
		werr := DecodeCSV(bytes.NewReader(in), CSVOptions{}, func(r Record) error {
			row := []any{r.Fields["a"], r.Fields["b"]}
			for j, v := range row {
				if v == nil || v == "" {
					row[j] = nil
				}
			}
			want = append(want, row)
			return nil
		})
		got, rejects, rep, err := loadCSV(t, in, cols, &MapperOptions{Extra: ExtraIgnore}, ReadOptions{BatchRows: 2})
		if (err != nil) != (werr != nil) {
			t.Fatalf("batch decoder error %v, DecodeCSV error %v", err, werr)
		}
		if err != nil {
			return
		}
		if len(rejects) > 0 || rep.Records != len(want) || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("batches %v (rejects %v, report %+v), DecodeCSV %v", got, rejects, rep, want)
		}
	})
}
