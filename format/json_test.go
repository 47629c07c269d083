package format

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/sluicehq/sluice/schema"
)

// decoded is everything a Reader delivered for one object.
type decoded struct {
	rows    [][]any
	n, line []int64
	rejects []schema.Reject
	report  Report
	err     error
}

// readAll reads in through NewReader until io.EOF or an error, checking
// every batch.
func readAll(t testing.TB, in io.Reader, o ReadOptions) decoded {
	t.Helper()
	rd, err := NewReader(context.Background(), in, o)
	if err != nil {
		return decoded{err: err}
	}
	defer rd.Close()
	var d decoded
	for {
		b, err := rd.Next(context.Background())
		if err == io.EOF {
			d.report = rd.Report()
			return d
		}
		if err != nil {
			d.err = err
			return d
		}
		if err := b.Check(); err != nil {
			t.Fatalf("a batch does not check: %v", err)
		}
		for i := range b.Len() {
			d.rows = append(d.rows, b.Row(i))
		}
		d.n = append(d.n, b.N...)
		d.line = append(d.line, b.Line...)
		d.rejects = append(d.rejects, b.Rejects...)
	}
}

// mustMapper builds a Mapper or fails the test.
func mustMapper(t testing.TB, cols []Column, opts *MapperOptions) *Mapper {
	t.Helper()
	m, err := NewMapper(cols, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// wholeMapper maps every field of a record into one json column, _all (a
// column nothing has, plus extra: json): what the record is, as
// encoding/json would re-encode it.
func wholeMapper(t testing.TB) *Mapper {
	return mustMapper(t, []Column{{Field: "\x00sluice test: no such field\x00", Name: "none", Type: schema.Text}, {Name: "_all", Type: schema.JSON}},
		&MapperOptions{Extra: ExtraJSON, ExtraColumn: "_all"})
}

// wholeRecords decodes in as format and returns each record as JSON text
// (records without fields as "{}"), in record order; a record the json
// cast refuses (a NUL) is "rejected: " and the reason.
func wholeRecords(t testing.TB, in io.Reader, format string, lim *Limits, workers int) ([]string, decoded) {
	t.Helper()
	o := ReadOptions{Format: format, Mapper: wholeMapper(t), Workers: workers, Quarantine: true}
	if lim != nil {
		o.Limits = *lim
	}
	return wholeText(readAll(t, in, o))
}

// wholeText lists the rows and rejects of d in record order.
func wholeText(d decoded) ([]string, decoded) {
	byN := map[int64]string{}
	var ns []int64
	for i, r := range d.rows {
		byN[d.n[i]] = "{}"
		if r[1] != nil {
			byN[d.n[i]] = r[1].(string)
		}
		ns = append(ns, d.n[i])
	}
	for _, r := range d.rejects {
		byN[r.N] = "rejected: " + r.Reason
		ns = append(ns, r.N)
	}
	slices.Sort(ns)
	out := make([]string, len(ns))
	for i, n := range ns {
		out[i] = byN[n]
	}
	return out, d
}

// ids decodes in as format, with the field "id" as text.
func ids(t testing.TB, in io.Reader, format string) ([]string, decoded) {
	t.Helper()
	d := readAll(t, in, ReadOptions{Format: format, Mapper: mustMapper(t, []Column{{Field: "id", Type: schema.Text}}, &MapperOptions{Extra: ExtraIgnore})})
	out := make([]string, len(d.rows))
	for i, r := range d.rows {
		out[i] = fmt.Sprint(r[0])
	}
	return out, d
}

// canonicalJSON is what encoding/json makes of a JSON text decoded into an
// any (UseNumber) and encoded again without HTML escaping.
func canonicalJSON(t testing.TB, in []byte) string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("canonicalJSON(%q): %v", in, err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// gzipBytes compresses b as one gzip member.
func gzipBytes(t testing.TB, b []byte) []byte { return gzipLevel(t, b, gzip.DefaultCompression) }

// gzipLevel compresses b as one gzip member at level: gzip.NoCompression
// is cheap enough for every fuzz input, gzip.BestSpeed for gigabytes.
func gzipLevel(t testing.TB, b []byte, level int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, level)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestJSONDecodersDeliverRecordsInOrderWithNumbersAndLines(t *testing.T) {
	tests := []struct {
		name  string
		kind  string
		in    string
		ids   []string // value of field "id" per record
		lines []int64
	}{
		{"array", InputJSON, `[{"id":1},{"id":2},{"id":3}]`, []string{"1", "2", "3"}, []int64{1, 1, 1}},
		{"pretty array", InputJSON, "[\n  {\n    \"id\": 1\n  },\n  {\n    \"id\": 2\n  }\n]\n", []string{"1", "2"}, []int64{2, 5}},
		{"empty array", InputJSON, " [ ] ", nil, nil},
		{"single object", InputJSON, "\n\n{\"id\": 7}\n", []string{"7"}, []int64{3}},
		{"ndjson with blank lines", InputNDJSON, "{\"id\":1}\n\n{\"id\":2}\n   \n\n{\"id\":3}\n", []string{"1", "2", "3"}, []int64{1, 3, 6}},
		{"ndjson with CRLF", InputNDJSON, "{\"id\":1}\r\n{\"id\":2}\r\n", []string{"1", "2"}, []int64{1, 2}},
		{"ndjson without final newline", InputNDJSON, "{\"id\":1}\n{\"id\":2}", []string{"1", "2"}, []int64{1, 2}},
		{"ndjson with pretty objects", InputNDJSON, "{\n\"id\":1\n}\n{\"id\":2} {\"id\":3}", []string{"1", "2", "3"}, []int64{1, 4, 4}},
		{"empty ndjson is zero records", InputNDJSON, "\n\n", nil, nil},
		{"auto sniffs an array", InputAuto, "  [{\"id\":1}]", []string{"1"}, []int64{1}},
		{"auto sniffs one object", InputAuto, "{\"id\":1}\n", []string{"1"}, []int64{1}},
		{"auto sniffs ndjson", InputAuto, "{\"id\":1}\n{\"id\":2}\n", []string{"1", "2"}, []int64{1, 2}},
		{"byte order mark is skipped", InputJSON, "\ufeff[{\"id\":1}]", []string{"1"}, []int64{1}},
		{"braces inside strings do not end a record", InputJSON, `[{"id":1,"s":"}]{[\"\\"},{"id":2}]`, []string{"1", "2"}, []int64{1, 1}},
		{"objects nested in records", InputJSON, `[{"id":1,"o":{"a":[{"b":{}}]}},{"id":2}]`, []string{"1", "2"}, []int64{1, 1}},
		{"a missing id is NULL", InputNDJSON, `{"x":1}`, []string{"<nil>"}, []int64{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, d := ids(t, strings.NewReader(tt.in), tt.kind)
			if d.err != nil {
				t.Fatalf("decode: %v", d.err)
			}
			if len(got) != len(tt.ids) {
				t.Fatalf("got %d records, want %d", len(got), len(tt.ids))
			}
			for i := range got {
				if d.n[i] != int64(i+1) {
					t.Errorf("record %d: N = %d", i+1, d.n[i])
				}
				if d.line[i] != tt.lines[i] {
					t.Errorf("record %d: Line = %d, want %d", i+1, d.line[i], tt.lines[i])
				}
				if got[i] != tt.ids[i] {
					t.Errorf("record %d: id = %s, want %s", i+1, got[i], tt.ids[i])
				}
			}
			if d.report.Records != len(tt.ids) {
				t.Errorf("report counts %d records, want %d", d.report.Records, len(tt.ids))
			}
		})
	}
}

func TestJSONDecodersSeeValuesAsEncodingJSONWithUseNumberDoes(t *testing.T) {
	in := `[{"n":12345678901234567890,"f":1.50,"s":"é\u00e9\ud83d\ude00\ud800x\"<&>\u2028","b":true,"z":null,"a":[1,"x", {"y":[]}],"o":{"k":false,"k":true,"\u0041":1e5}}]`
	got, d := wholeRecords(t, strings.NewReader(in), InputJSON, nil, 1)
	if d.err != nil || len(got) != 1 {
		t.Fatalf("decode: %d records, %v", len(got), d.err)
	}
	want := canonicalJSON(t, []byte(in[1:len(in)-1]))
	if got[0] != want {
		t.Errorf("record\n got %s\nwant %s", got[0], want)
	}
}

func TestJSONDecodersReadTheJSONPlaceholderPosts(t *testing.T) {
	f, err := os.Open("testdata/posts.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := mustMapper(t, []Column{{Field: "id", Type: schema.BigInt}, {Field: "userId", Type: schema.BigInt}, {Field: "title", Type: schema.Text}, {Field: "body", Type: schema.Text}}, nil)
	d := readAll(t, f, ReadOptions{Format: InputAuto, Mapper: m})
	if d.err != nil {
		t.Fatalf("decode posts.json: %v", d.err)
	}
	if len(d.rows) != 100 {
		t.Fatalf("got %d posts, want 100", len(d.rows))
	}
	if last := d.rows[99]; last[0] != int64(100) || last[1] != int64(10) {
		t.Errorf("post 100 = %v", last)
	}
	if !strings.HasPrefix(d.rows[0][3].(string), "quia et suscipit\nsuscipit") {
		t.Errorf("body of post 1 = %q, want its escapes decoded", d.rows[0][3])
	}
	if d.line[0] != 2 || d.line[1] != 8 {
		t.Errorf("record lines = %d, %d; want 2, 8", d.line[0], d.line[1])
	}
	if len(d.report.Missing) != 0 || len(d.report.Extra) != 0 {
		t.Errorf("report = %+v, want nothing missing or extra", d.report)
	}
}

func TestJSONDecodersGunzipInputThatStartsWithTheGzipMagic(t *testing.T) {
	raw, err := os.ReadFile("testdata/posts.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{InputJSON, InputAuto} {
		got, d := ids(t, bytes.NewReader(gzipBytes(t, raw)), kind)
		if d.err != nil || len(got) != 100 {
			t.Errorf("%s: got %d records, %v; want 100", kind, len(got), d.err)
		}
	}
	nd := gzipBytes(t, []byte("{\"id\":1}\n\n{\"id\":2}\n"))
	got, d := ids(t, bytes.NewReader(nd), InputNDJSON)
	if d.err != nil || fmt.Sprint(got) != "[1 2]" {
		t.Errorf("gzip ndjson: got %v, %v; want [1 2]", got, d.err)
	}
}

func TestJSONDecodersReportACorruptOrTruncatedGzipStreamAsAReadError(t *testing.T) {
	gz := gzipBytes(t, bytes.Repeat([]byte(`{"a":"some text to compress"}`+"\n"), 2000))
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"truncated", gz[:len(gz)/2], "decompressing gzip input: unexpected EOF"},
		{"bad header", []byte{0x1f, 0x8b, 0, 0}, "reading gzip header"},
	}
	for _, tt := range tests {
		for _, workers := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/workers=%d", tt.name, workers), func(t *testing.T) {
				_, d := wholeRecords(t, bytes.NewReader(tt.in), InputNDJSON, nil, workers)
				var re *RecordError
				if !errors.As(d.err, &re) || !strings.Contains(d.err.Error(), tt.want) {
					t.Fatalf("err = %v, want a *RecordError containing %q", d.err, tt.want)
				}
				if strings.Contains(d.err.Error(), "JSON input") || IsReadFailure(d.err) {
					t.Errorf("a gzip failure is reported as a JSON problem or a read failure: %v", d.err)
				}
			})
		}
	}
}

func TestJSONDecoderErrorsNameRecordLineAndByte(t *testing.T) {
	// 40 good records on lines 2..41, then line 42 holds record 41.
	var good strings.Builder
	good.WriteString("[\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&good, "{\"id\":%d},\n", i) // {"id":N},\n
	}
	prefix := good.String()
	tests := []struct {
		name    string
		kind    string
		in      string
		records int // records delivered before the error
		rec     int
		line    int
		offset  int64
		msg     string
	}{
		{
			name: "truncated object", kind: InputJSON, in: prefix + `{"id":41,"title":"abc`,
			records: 40, rec: 41, line: 42, offset: int64(len(prefix) + 21),
			msg: "record 41 (line 42, byte " + fmt.Sprint(len(prefix)+21) + "): unexpected end of JSON input: the object is truncated",
		},
		{
			name: "syntax error inside a record", kind: InputJSON, in: prefix + "{\"id\":41,\n\"x\" 5}]",
			records: 40, rec: 41, line: 43, offset: int64(len(prefix) + 15),
			msg: "invalid character '5' after object key",
		},
		{
			name: "array not closed", kind: InputJSON, in: `[{"a":1}` + "\n",
			records: 1, rec: 0, line: 2, offset: 9,
			msg: "line 2, byte 9: unexpected end of JSON input after record 1: the array is not closed",
		},
		{
			name: "missing comma", kind: InputJSON, in: `[{"a":1}` + "\n" + `{"a":2}]`,
			records: 1, rec: 0, line: 2, offset: 10,
			msg: `invalid character '{' after record 1: want ',' or ']'`,
		},
		{
			name: "trailing comma", kind: InputJSON, in: `[{"a":1},]`,
			records: 1, rec: 2, line: 1, offset: 10,
			msg: "',' after record 1 is followed by ']'",
		},
		{
			name: "element is not an object", kind: InputJSON, in: "[{\"a\":1},\n \"x\"]",
			records: 1, rec: 2, line: 2, offset: 12,
			msg: "record 2 (line 2, byte 12): got a string, want an object",
		},
		{
			name: "null element", kind: InputJSON, in: `[null]`,
			rec: 1, line: 1, offset: 2, msg: "got null, want an object",
		},
		{
			name: "garbage after the array", kind: InputJSON, in: "[{\"a\":1}]\n]",
			records: 1, rec: 0, line: 2, offset: 11, msg: "unexpected data after the JSON array",
		},
		{
			name: "second value after one object", kind: InputJSON, in: "{\"a\":1}\n{\"a\":2}",
			records: 1, rec: 0, line: 2, offset: 9, msg: "unexpected data after the JSON object; for one object a line use format ndjson",
		},
		{
			name: "ndjson line that is not an object", kind: InputNDJSON, in: "{\"a\":1}\n\n[1]\n",
			records: 1, rec: 2, line: 3, offset: 10, msg: "got an array, want an object",
		},
		{
			name: "ndjson object that spills into the next", kind: InputNDJSON, in: "{\"a\":1\n{\"a\":2}\n",
			rec: 1, line: 2, offset: 8, msg: "invalid character '{' after object key:value pair",
		},
		{
			name: "top-level scalar", kind: InputAuto, in: "  42",
			rec: 0, line: 1, offset: 3, msg: "the top-level value is a number; want an array of objects, an object, or NDJSON",
		},
		{
			name: "top-level garbage", kind: InputJSON, in: "<html>",
			rec: 0, line: 1, offset: 1, msg: "invalid character '<' looking for the start of a JSON value",
		},
		{
			name: "empty input", kind: InputJSON, in: " \n ",
			msg: "empty input: no JSON value",
		},
		{
			name: "invalid UTF-8", kind: InputNDJSON, in: "{\"a\":\"ok\"}\n{\"a\":\n\"caf\xe9\"}\n",
			records: 1, rec: 2, line: 3, offset: 22, msg: "record 2 (line 3, byte 22): not valid UTF-8; convert the input to UTF-8",
		},
		{
			name: "invalid UTF-8 outside a string", kind: InputNDJSON, in: "{\"a\":1,\xff}",
			rec: 1, line: 1, offset: 8, msg: "not valid UTF-8",
		},
		{
			name: "mismatched brackets stop at the bad closer", kind: InputJSON, in: `[{"a":[1}, {"b":2}]`,
			rec: 1, line: 1, offset: 9, msg: "invalid character '}' after array element",
		},
		{
			name: "control character in a string", kind: InputJSON, in: "[{\"a\":\"x\ny\"}]",
			rec: 1, line: 1, offset: 9, msg: "invalid character '\\n' in string literal",
		},
		{
			name: "bad escape", kind: InputNDJSON, in: `{"a":"\x"}`,
			rec: 1, line: 1, offset: 8, msg: "invalid character 'x' in string escape code",
		},
		{
			name: "bad number", kind: InputNDJSON, in: `{"a":-x}`,
			rec: 1, line: 1, offset: 7, msg: "invalid character 'x' in numeric literal",
		},
		{
			name: "leading zero", kind: InputNDJSON, in: `{"a":01}`,
			rec: 1, line: 1, offset: 7, msg: "invalid character '1' after object key:value pair",
		},
		{
			name: "bad literal", kind: InputNDJSON, in: `{"a":nul}`,
			rec: 1, line: 1, offset: 9, msg: "invalid character '}' in literal null (expecting 'l')",
		},
		{
			name: "too deep", kind: InputNDJSON, in: `{"a":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "}",
			rec: 1, line: 1, offset: 6 + 9999, msg: "invalid character '[' exceeded max depth",
		},
	}
	for _, tt := range tests {
		for _, workers := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/workers=%d", tt.name, workers), func(t *testing.T) {
				got, d := wholeRecords(t, strings.NewReader(tt.in), tt.kind, nil, workers)
				var re *RecordError
				if !errors.As(d.err, &re) {
					t.Fatalf("err = %v (%T), want *RecordError", d.err, d.err)
				}
				if errors.Is(d.err, ErrRejected) {
					t.Errorf("a decode error matches ErrRejected: %v", d.err)
				}
				if len(got) != tt.records || len(d.rejects) != 0 {
					t.Errorf("delivered %d records before the error, want %d", len(got), tt.records)
				}
				if re.Record != tt.rec || re.Line != tt.line || re.Offset != tt.offset {
					t.Errorf("record/line/offset = %d/%d/%d, want %d/%d/%d (%v)", re.Record, re.Line, re.Offset, tt.rec, tt.line, tt.offset, d.err)
				}
				if !strings.Contains(d.err.Error(), tt.msg) {
					t.Errorf("err = %q, want it to contain %q", d.err, tt.msg)
				}
			})
		}
	}
}

func TestJSONDecoderAcceptsNestingUpToEncodingJSONsLimit(t *testing.T) {
	in := `{"a":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + "}"
	got, d := wholeRecords(t, strings.NewReader(in), InputNDJSON, nil, 1)
	if d.err != nil || len(got) != 1 || got[0] != canonicalJSON(t, []byte(in)) {
		t.Errorf("9,999 nested arrays in a record: %d records, %v", len(got), d.err)
	}
}

func TestJSONDecoderFindsTheSameErrorsWhenTheInputArrivesOneByteAtATime(t *testing.T) {
	in := "[\n{\"a\":\"x\"},\n{\"b\": [1, 2, {\"c\": \"}\"}]},\n{\"d\":1 \"e\":2}\n]"
	_, whole := wholeRecords(t, strings.NewReader(in), InputJSON, nil, 1)
	got, d := wholeRecords(t, iotest.OneByteReader(strings.NewReader(in)), InputJSON, nil, 1)
	if whole.err == nil || d.err == nil || whole.err.Error() != d.err.Error() {
		t.Fatalf("one byte at a time: %v; whole: %v", d.err, whole.err)
	}
	if len(got) != 2 || !strings.Contains(d.err.Error(), "record 3 (line 4, byte 48)") {
		t.Errorf("got %d records, err %v; want 2 records and record 3 at line 4 byte 48", len(got), d.err)
	}
}

func TestJSONDecoderHandlesRecordsLargerThanItsReadBuffer(t *testing.T) {
	big := strings.Repeat("é", 1_500_000) // 3 MB, more than the 1 MiB buffer
	in := fmt.Sprintf("[{\"s\":%q},\n{\"s\":\"x\"}]", big)
	m := mustMapper(t, []Column{{Field: "s", Type: schema.Text}}, nil)
	for _, r := range []io.Reader{strings.NewReader(in), iotest.HalfReader(strings.NewReader(in))} {
		d := readAll(t, r, ReadOptions{Format: InputJSON, Mapper: m})
		if d.err != nil || len(d.rows) != 2 {
			t.Fatalf("got %d records, %v", len(d.rows), d.err)
		}
		if d.rows[0][0] != big || d.rows[1][0] != "x" || d.line[1] != 2 {
			t.Errorf("big record mangled or line wrong (line %d)", d.line[1])
		}
	}
}

func TestJSONDecoderReportsReadFailuresWithTheRecordBeingRead(t *testing.T) {
	boom := errors.New("connection reset")
	for _, tt := range []struct {
		kind, in string
		rec      int
		records  int
	}{
		{InputJSON, `[{"a":1},{"a":`, 2, 1},
		{InputNDJSON, "{\"a\":1}\n{\"a\":", 2, 1},
		{InputNDJSON, "{\"a\":1}\n", 2, 1},
	} {
		for _, workers := range []int{1, 2} {
			r := io.MultiReader(strings.NewReader(tt.in), iotest.ErrReader(boom))
			got, d := wholeRecords(t, r, tt.kind, nil, workers)
			var re *RecordError
			if !errors.As(d.err, &re) || !errors.Is(d.err, boom) || re.Record != tt.rec || len(got) != tt.records || !IsReadFailure(d.err) {
				t.Fatalf("%s %q workers %d: err = %v (record %v), %d records; want record %d wrapping the read error after %d records",
					tt.kind, tt.in, workers, d.err, re, len(got), tt.rec, tt.records)
			}
			if !strings.Contains(d.err.Error(), "reading input: connection reset") {
				t.Errorf("err = %q", d.err)
			}
		}
	}
}

func TestNewReaderRejectsAnUnknownFormatOrNoMapper(t *testing.T) {
	m := mustMapper(t, []Column{{Field: "a", Type: schema.Text}}, nil)
	if _, err := NewReader(context.Background(), strings.NewReader(`{}`), ReadOptions{Format: "xml", Mapper: m}); err == nil || !strings.Contains(err.Error(), `unknown input format "xml"`) {
		t.Errorf("err = %v", err)
	}
	if _, err := NewReader(context.Background(), strings.NewReader(`{}`), ReadOptions{Format: InputJSON}); err == nil {
		t.Error("no error without a Mapper")
	}
}

func TestClosingAReaderStopsItsDecoders(t *testing.T) {
	for _, workers := range []int{1, 3} {
		pr, pw := io.Pipe()
		go func() {
			line := []byte(`{"id":1,"title":"endless"}` + "\n")
			for {
				if _, err := pw.Write(bytes.Repeat(line, 1000)); err != nil {
					return
				}
			}
		}()
		m := mustMapper(t, []Column{{Field: "id", Type: schema.BigInt}}, &MapperOptions{Extra: ExtraIgnore})
		rd, err := NewReader(context.Background(), pr, ReadOptions{Format: InputNDJSON, Mapper: m, Workers: workers, BatchRows: 100})
		if err != nil {
			t.Fatal(err)
		}
		for range 50 {
			b, err := rd.Next(context.Background())
			if err != nil || b.Len() == 0 {
				t.Fatalf("Next: %v", err)
			}
		}
		pr.CloseWithError(errors.New("closed by the test")) // unblocks a reader waiting for input
		if err := rd.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if _, err := rd.Next(context.Background()); err == nil {
			t.Error("Next after Close returned a batch")
		}
	}
}
