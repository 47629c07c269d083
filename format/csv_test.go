package format

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/sluicehq/sluice/schema"
)

func decodeCSVAll(t testing.TB, r io.Reader, opts CSVOptions) ([]Record, error) {
	t.Helper()
	var rows []Record
	err := DecodeCSV(r, opts, func(rec Record) error {
		rows = append(rows, rec)
		return nil
	})
	return rows, err
}

func TestDecodeCSVDeliversHeaderKeyedRecordsWithLines(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		opts  CSVOptions
		recs  string // fmt of each record's fields, joined by " | "
		lines []int
	}{
		{"plain", "a,b\n1,2\n3,4\n", CSVOptions{}, "map[a:1 b:2] | map[a:3 b:4]", []int{2, 3}},
		{"no final newline", "a,b\n1,2\n3,4", CSVOptions{}, "map[a:1 b:2] | map[a:3 b:4]", []int{2, 3}},
		{"CRLF", "a,b\r\n1,2\r\n3,4\r\n", CSVOptions{}, "map[a:1 b:2] | map[a:3 b:4]", []int{2, 3}},
		{"byte order mark", "\ufeffa,b\n1,2\n", CSVOptions{}, "map[a:1 b:2]", []int{2}},
		{"quoted field with newline and quotes", "a,b\n\"x\ny\",\"say \"\"hi\"\"\"\n5,6\n", CSVOptions{}, "map[a:x\ny b:say \"hi\"] | map[a:5 b:6]", []int{2, 4}},
		{"empty values", "a,b\n,\n", CSVOptions{}, "map[a: b:]", []int{2}},
		{"blank lines are skipped", "a,b\n\n1,2\n\n", CSVOptions{}, "map[a:1 b:2]", []int{3}},
		{"semicolon delimiter", "a;b\n1,5;2\n", CSVOptions{Delimiter: ';'}, "map[a:1,5 b:2]", []int{2}},
		{"tab delimiter", "a\tb\n1\t2\n", CSVOptions{Delimiter: '\t'}, "map[a:1 b:2]", []int{2}},
		{"header only", "a,b\n", CSVOptions{}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := decodeCSVAll(t, strings.NewReader(tt.in), tt.opts)
			if err != nil {
				t.Fatalf("DecodeCSV: %v", err)
			}
			var got []string
			for i, r := range rows {
				got = append(got, fmt.Sprint(r.Fields))
				if r.N != i+1 || r.Line != tt.lines[i] {
					t.Errorf("row %d: N=%d Line=%d, want N=%d Line=%d", i, r.N, r.Line, i+1, tt.lines[i])
				}
			}
			if s := strings.Join(got, " | "); s != tt.recs {
				t.Errorf("records = %q, want %q", s, tt.recs)
			}
		})
	}
}

func TestDecodeCSVErrorsNameLineAndColumn(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		records int
		line    int
		column  string
		msg     string
	}{
		{"empty file", "", 0, 0, "", "empty file: no header row"},
		{"only blank lines", "\n\r\n\n", 0, 0, "", "empty file: no header row"},
		{"ragged row", "a,b,c,d\n" + strings.Repeat("1,2,3,4\n", 10) + "1,2,3\n", 10, 12, "", "line 12: 3 fields, header has 4"},
		{"row with one field", "a,b\n1\n", 0, 2, "", "line 2: 1 field, header has 2"},
		{"too many fields", "a,b\n1,2,3\n", 0, 2, "", "line 2: 3 fields, header has 2"},
		{"invalid UTF-8", "a,Code\n1,x\n2,y\n3,z\n4,caf\xe9\n", 3, 5, "Code", "line 5: column Code: not valid UTF-8; convert the file to UTF-8"},
		{"invalid UTF-8 in the header", "a,caf\xe9\n1,2\n", 0, 1, "", "line 1: header field 2 is not valid UTF-8; convert the file to UTF-8"},
		{"empty header name", "a,,c\n1,2,3\n", 0, 1, "", "line 1: header field 2 has an empty name"},
		{"trailing delimiter in header", "a,b,\n1,2,3\n", 0, 1, "", "line 1: header field 3 has an empty name"},
		{"duplicate header name", "Year,Code,Year\n", 0, 1, "Year", "line 1: column Year: duplicate header name (fields 1 and 3)"},
		{"bare quote", "a,b\n1,2\n3,4 \"inch\"\n", 1, 3, "", `line 3: bare " in an unquoted field (character 5)`},
		{"unclosed quote", "a,b\n1,2\n\"3,4\n5,6\n", 1, 4, "", `line 4: extraneous or missing " in a quoted field (character 5); the record starts on line 3`},
		{"text after a closing quote", "a,b\n\"1\"x,2\n", 0, 2, "", `line 2: extraneous or missing " in a quoted field (character 3)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows, err := decodeCSVAll(t, strings.NewReader(tt.in), CSVOptions{})
			var re *RecordError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v (%T), want *RecordError", err, err)
			}
			if len(rows) != tt.records {
				t.Errorf("delivered %d records before the error, want %d", len(rows), tt.records)
			}
			if re.Line != tt.line || re.Column != tt.column || re.Record != 0 {
				t.Errorf("line/column/record = %d/%q/%d, want %d/%q/0 (%v)", re.Line, re.Column, re.Record, tt.line, tt.column, err)
			}
			if !strings.HasPrefix(err.Error(), tt.msg) {
				t.Errorf("err = %q, want it to start with %q", err, tt.msg)
			}
		})
	}
}

func TestDecodeCSVReadsTheHydropowerFile(t *testing.T) {
	raw, err := os.ReadFile("testdata/hydropower-consumption.csv")
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{"plain": raw, "gzip": gzipBytes(t, raw)} {
		t.Run(name, func(t *testing.T) {
			rows, emptyCodes := 0, 0
			var first Record
			err := DecodeCSV(bytes.NewReader(in), CSVOptions{}, func(rec Record) error {
				rows++
				if rows == 1 {
					first = rec
				}
				if rec.Line != rec.N+1 {
					return fmt.Errorf("record %d on line %d", rec.N, rec.Line)
				}
				if rec.Fields["Code"] == "" {
					emptyCodes++
				}
				// The curate step's casts must accept every row.
				if _, err := CastString(schema.Integer, rec.Fields["Year"].(string)); err != nil {
					return err
				}
				if _, err := CastString(schema.Real, rec.Fields["Hydropower (Terawatt-hours)"].(string)); err != nil {
					return err
				}
				return nil
			})
			if err != nil {
				t.Fatalf("DecodeCSV: %v", err)
			}
			if rows != 4176 || emptyCodes != 780 {
				t.Errorf("got %d rows with %d empty Codes, want 4176 and 780", rows, emptyCodes)
			}
			if got := fmt.Sprint(first.Fields); got != "map[Code: Entity:Africa Hydropower (Terawatt-hours):14.278805574733003 Year:1965]" {
				t.Errorf("first row = %s", got)
			}
		})
	}
}

func TestDecodeCSVStopsWithTheErrorReturnedByFn(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := DecodeCSV(strings.NewReader("a\n1\n2\n3\n"), CSVOptions{}, func(Record) error {
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

func TestDecodeCSVReportsReadFailures(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("a,b\n1,2\n"), iotest.ErrReader(boom))
	_, err := decodeCSVAll(t, r, CSVOptions{})
	var re *RecordError
	if !errors.As(err, &re) || !errors.Is(err, boom) || !strings.Contains(err.Error(), "reading input: connection reset") {
		t.Errorf("err = %v, want a *RecordError wrapping the read error", err)
	}
}

func TestDecodeCSVRejectsAnInvalidDelimiter(t *testing.T) {
	for _, d := range []rune{'"', '\n', '\r', 0xFFFD, -1} {
		err := DecodeCSV(strings.NewReader("a\n"), CSVOptions{Delimiter: d}, func(Record) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "invalid CSV delimiter") {
			t.Errorf("delimiter %q: err = %v", d, err)
		}
	}
}

func TestDecodeCSVShowsTheHeaderOnceBeforeAnyRecord(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
		recs int
	}{
		{"with rows", []byte("b,a\n1,2\n3,4\n"), "[b a]", 2},
		{"header only", []byte("b,a\n"), "[b a]", 0},
		{"gzip and byte order mark, header only", gzipBytes(t, []byte("\ufeffb,a\r\n")), "[b a]", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var events []string
			opts := CSVOptions{OnHeader: func(h []string) error {
				events = append(events, fmt.Sprint(h))
				h[0] = "changed" // the slice is the caller's; decoding must not see this
				return nil
			}}
			rows, err := decodeCSVAll(t, bytes.NewReader(tt.in), opts)
			if err != nil {
				t.Fatalf("DecodeCSV: %v", err)
			}
			if len(events) != 1 || events[0] != tt.want {
				t.Errorf("OnHeader calls = %q, want one with %s", events, tt.want)
			}
			if len(rows) != tt.recs {
				t.Fatalf("got %d records, want %d", len(rows), tt.recs)
			}
			if tt.recs > 0 && fmt.Sprint(rows[0].Fields) != "map[a:2 b:1]" {
				t.Errorf("first record = %v, want map[a:2 b:1]", rows[0].Fields)
			}
		})
	}
}

func TestDecodeCSVStopsWithTheErrorReturnedByOnHeader(t *testing.T) {
	stop := errors.New("stop")
	rows, err := decodeCSVAll(t, strings.NewReader("a\n1\n2\n"), CSVOptions{OnHeader: func([]string) error { return stop }})
	if err != stop || len(rows) != 0 {
		t.Errorf("err = %v after %d records, want the OnHeader error unchanged before any record", err, len(rows))
	}
}

func TestDecodeCSVDoesNotShowABadHeader(t *testing.T) {
	for _, in := range []string{"", "a,a\n1,2\n", "a,,b\n"} {
		called := false
		_, err := decodeCSVAll(t, strings.NewReader(in), CSVOptions{OnHeader: func([]string) error { called = true; return nil }})
		var re *RecordError
		if !errors.As(err, &re) || called {
			t.Errorf("%q: err = %v, OnHeader called = %v; want a *RecordError and no call", in, err, called)
		}
	}
}
