package format

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

// decodeAll collects every record DecodeJSON delivers.
func decodeAll(t testing.TB, r io.Reader, kind string) ([]Record, error) {
	t.Helper()
	var recs []Record
	err := DecodeJSON(r, kind, nil, func(rec Record) error {
		recs = append(recs, rec)
		return nil
	})
	return recs, err
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeJSONDeliversRecordsInOrderWithNumbersAndLines(t *testing.T) {
	tests := []struct {
		name  string
		kind  string
		in    string
		ids   []string // value of field "id" per record
		lines []int
	}{
		{"array", InputJSON, `[{"id":1},{"id":2},{"id":3}]`, []string{"1", "2", "3"}, []int{1, 1, 1}},
		{"pretty array", InputJSON, "[\n  {\n    \"id\": 1\n  },\n  {\n    \"id\": 2\n  }\n]\n", []string{"1", "2"}, []int{2, 5}},
		{"empty array", InputJSON, " [ ] ", nil, nil},
		{"single object", InputJSON, "\n\n{\"id\": 7}\n", []string{"7"}, []int{3}},
		{"ndjson with blank lines", InputNDJSON, "{\"id\":1}\n\n{\"id\":2}\n   \n\n{\"id\":3}\n", []string{"1", "2", "3"}, []int{1, 3, 6}},
		{"ndjson with CRLF", InputNDJSON, "{\"id\":1}\r\n{\"id\":2}\r\n", []string{"1", "2"}, []int{1, 2}},
		{"ndjson without final newline", InputNDJSON, "{\"id\":1}\n{\"id\":2}", []string{"1", "2"}, []int{1, 2}},
		{"empty ndjson is zero records", InputNDJSON, "\n\n", nil, nil},
		{"auto sniffs an array", InputAuto, "  [{\"id\":1}]", []string{"1"}, []int{1}},
		{"auto sniffs one object", InputAuto, "{\"id\":1}\n", []string{"1"}, []int{1}},
		{"auto sniffs ndjson", InputAuto, "{\"id\":1}\n{\"id\":2}\n", []string{"1", "2"}, []int{1, 2}},
		{"byte order mark is skipped", InputJSON, "\ufeff[{\"id\":1}]", []string{"1"}, []int{1}},
		{"braces inside strings do not end a record", InputJSON, `[{"id":1,"s":"}]{[\"\\"},{"id":2}]`, []string{"1", "2"}, []int{1, 1}},
		{"objects nested in records", InputJSON, `[{"id":1,"o":{"a":[{"b":{}}]}},{"id":2}]`, []string{"1", "2"}, []int{1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := decodeAll(t, strings.NewReader(tt.in), tt.kind)
			if err != nil {
				t.Fatalf("DecodeJSON: %v", err)
			}
			if len(recs) != len(tt.ids) {
				t.Fatalf("got %d records, want %d", len(recs), len(tt.ids))
			}
			for i, rec := range recs {
				if rec.N != i+1 {
					t.Errorf("record %d: N = %d", i+1, rec.N)
				}
				if rec.Line != tt.lines[i] {
					t.Errorf("record %d: Line = %d, want %d", i+1, rec.Line, tt.lines[i])
				}
				id, ok := rec.Fields["id"].(json.Number)
				if !ok || id.String() != tt.ids[i] {
					t.Errorf("record %d: id = %#v, want json.Number %s", i+1, rec.Fields["id"], tt.ids[i])
				}
			}
		})
	}
}

func TestDecodeJSONKeepsValuesAsEncodingJSONWithUseNumberDoes(t *testing.T) {
	in := `[{"n":12345678901234567890,"f":1.50,"s":"é\u00e9","b":true,"z":null,"a":[1,"x"],"o":{"k":false}}]`
	recs, err := decodeAll(t, strings.NewReader(in), InputJSON)
	if err != nil || len(recs) != 1 {
		t.Fatalf("DecodeJSON: %d records, %v", len(recs), err)
	}
	want := map[string]any{
		"n": json.Number("12345678901234567890"),
		"f": json.Number("1.50"),
		"s": "éé",
		"b": true,
		"z": nil,
		"a": []any{json.Number("1"), "x"},
		"o": map[string]any{"k": false},
	}
	if got := fmt.Sprintf("%#v", recs[0].Fields); got != fmt.Sprintf("%#v", want) {
		t.Errorf("fields\n got %s\nwant %#v", got, want)
	}
}

func TestDecodeJSONReadsTheJSONPlaceholderPosts(t *testing.T) {
	f, err := os.Open("testdata/posts.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := decodeAll(t, f, InputAuto)
	if err != nil {
		t.Fatalf("DecodeJSON(posts.json): %v", err)
	}
	if len(recs) != 100 {
		t.Fatalf("got %d posts, want 100", len(recs))
	}
	last := recs[99].Fields
	if last["id"] != json.Number("100") || last["userId"] != json.Number("10") {
		t.Errorf("post 100 = %v", last)
	}
	if recs[0].Line != 2 || recs[1].Line != 8 {
		t.Errorf("record lines = %d, %d; want 2, 8", recs[0].Line, recs[1].Line)
	}
}

func TestDecodeJSONGunzipsInputThatStartsWithTheGzipMagic(t *testing.T) {
	raw, err := os.ReadFile("testdata/posts.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{InputJSON, InputAuto} {
		recs, err := decodeAll(t, bytes.NewReader(gzipBytes(t, raw)), kind)
		if err != nil || len(recs) != 100 {
			t.Errorf("%s: got %d records, %v; want 100", kind, len(recs), err)
		}
	}
	nd := gzipBytes(t, []byte("{\"a\":1}\n\n{\"a\":2}\n"))
	recs, err := decodeAll(t, bytes.NewReader(nd), InputNDJSON)
	if err != nil || len(recs) != 2 {
		t.Errorf("gzip ndjson: got %d records, %v; want 2", len(recs), err)
	}
}

func TestDecodeJSONReportsACorruptOrTruncatedGzipStreamAsAReadError(t *testing.T) {
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
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeAll(t, bytes.NewReader(tt.in), InputNDJSON)
			var re *RecordError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a *RecordError containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "JSON input") {
				t.Errorf("a gzip failure is reported as a JSON problem: %v", err)
			}
		})
	}
}

func TestDecodeJSONErrorsNameRecordLineAndByte(t *testing.T) {
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
			name: "mismatched brackets stop at the bad closer", kind: InputJSON, in: `[{"a":[1}, {"b":2}]`,
			rec: 1, line: 1, offset: 9, msg: "invalid character '}' after array element",
		},
		{
			name: "control character in a string", kind: InputJSON, in: "[{\"a\":\"x\ny\"}]",
			rec: 1, line: 1, offset: 9, msg: "invalid character '\\n' in string literal",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := decodeAll(t, strings.NewReader(tt.in), tt.kind)
			var re *RecordError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v (%T), want *RecordError", err, err)
			}
			if len(recs) != tt.records {
				t.Errorf("delivered %d records before the error, want %d", len(recs), tt.records)
			}
			if re.Record != tt.rec || re.Line != tt.line || re.Offset != tt.offset {
				t.Errorf("record/line/offset = %d/%d/%d, want %d/%d/%d (%v)", re.Record, re.Line, re.Offset, tt.rec, tt.line, tt.offset, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %q, want it to contain %q", err, tt.msg)
			}
		})
	}
}

func TestDecodeJSONFindsTheSameErrorsWhenTheInputArrivesOneByteAtATime(t *testing.T) {
	in := "[\n{\"a\":\"x\"},\n{\"b\": [1, 2, {\"c\": \"}\"}]},\n{\"d\":1 \"e\":2}\n]"
	_, whole := decodeAll(t, strings.NewReader(in), InputJSON)
	recs, err := decodeAll(t, iotest.OneByteReader(strings.NewReader(in)), InputJSON)
	if whole == nil || err == nil || whole.Error() != err.Error() {
		t.Fatalf("one byte at a time: %v; whole: %v", err, whole)
	}
	if len(recs) != 2 || !strings.Contains(err.Error(), "record 3 (line 4, byte 48)") {
		t.Errorf("got %d records, err %v; want 2 records and record 3 at line 4 byte 48", len(recs), err)
	}
}

func TestDecodeJSONHandlesRecordsLargerThanItsReadBuffer(t *testing.T) {
	big := strings.Repeat("é", 100_000) // 200 kB, crosses several buffer refills
	in := fmt.Sprintf("[{\"s\":%q},\n{\"s\":\"x\"}]", big)
	recs, err := decodeAll(t, strings.NewReader(in), InputJSON)
	if err != nil || len(recs) != 2 {
		t.Fatalf("got %d records, %v", len(recs), err)
	}
	if recs[0].Fields["s"] != big || recs[1].Line != 2 {
		t.Errorf("big record mangled or line wrong (line %d)", recs[1].Line)
	}
}

func TestDecodeJSONStopsWithTheErrorReturnedByFn(t *testing.T) {
	stop := errors.New("stop here")
	n := 0
	err := DecodeJSON(strings.NewReader(`[{"a":1},{"a":2},{"a":3}]`), InputJSON, nil, func(Record) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if err != stop || n != 2 {
		t.Errorf("err = %v after %d records, want the fn error unchanged after 2", err, n)
	}
}

func TestDecodeJSONReportsReadFailuresWithTheRecordBeingRead(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader(`[{"a":1},{"a":`), iotest.ErrReader(boom))
	recs, err := decodeAll(t, r, InputJSON)
	var re *RecordError
	if !errors.As(err, &re) || !errors.Is(err, boom) || re.Record != 2 || len(recs) != 1 {
		t.Fatalf("err = %v (record %v), %d records; want record 2 wrapping the read error after 1 record", err, re, len(recs))
	}
	if !strings.Contains(err.Error(), "reading input: connection reset") {
		t.Errorf("err = %q", err)
	}
}

func TestDecodeJSONRejectsAnUnknownKind(t *testing.T) {
	err := DecodeJSON(strings.NewReader(`{}`), "xml", nil, func(Record) error { return nil })
	if err == nil || !strings.Contains(err.Error(), `unknown JSON kind "xml"`) {
		t.Errorf("err = %v", err)
	}
}
