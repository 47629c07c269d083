package format

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

// csvRun is what a parse made of an input: the header, the records and
// the error.
type csvRun struct {
	header []string
	recs   []csvRec
	err    string
	errv   error // viaSplitter's
}

type csvRec struct {
	line   int
	fields []string
}

func (r csvRun) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "header %q\n", r.header)
	for _, rec := range r.recs {
		fmt.Fprintf(&b, "%d:%q\n", rec.line, rec.fields)
	}
	fmt.Fprintf(&b, "error %s", r.err)
	return b.String()
}

// viaExact is the reference: encoding/csv and the checks of every record
// (CSVParser's exact path) on the whole object as one chunk.
func viaExact(data []byte, opts CSVOptions) csvRun {
	var r csvRun
	opts.OnHeader = func(h []string) error { r.header = h; return nil }
	s, err := NewCSVSplitter(bytes.NewReader(data), opts, len(data)+1)
	if err != nil {
		r.err = err.Error()
		return r
	}
	// The chunks, joined: every record after the header, as read.
	var all CSVChunk
	for i := 0; ; i++ {
		c, err := s.Next(nil)
		if err == io.EOF {
			break
		}
		if i == 0 {
			all.Line = c.Line
		}
		all.Data, all.Err = append(all.Data, c.Data...), c.Err
	}
	_, err = s.NewParser().exact(all, 0, 0, func(line int, fields [][]byte) error {
		rec := csvRec{line: line}
		for _, f := range fields {
			rec.fields = append(rec.fields, string(f))
		}
		r.recs = append(r.recs, rec)
		return nil
	})
	if err != nil {
		r.err = err.Error()
	}
	return r
}

// viaSplitter splits data into chunks of about chunk bytes and parses them
// in order, the way a parallel reader does: base unknown (-1) first, and
// again with the base when the record limit is passed.
func viaSplitter(t *testing.T, data []byte, opts CSVOptions, chunk int) csvRun {
	var r csvRun
	opts.OnHeader = func(h []string) error { r.header = h; return nil }
	s, err := NewCSVSplitter(bytes.NewReader(data), opts, chunk)
	if err != nil {
		var re *RecordError
		if !errors.As(err, &re) {
			t.Fatalf("header error %T, not a *RecordError: %v", err, err)
		}
		r.err, r.errv = err.Error(), err
		return r
	}
	p := s.NewParser()
	var base int64
	var buf []byte
	for {
		c, err := s.Next(buf)
		if err == io.EOF {
			return r
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if len(c.Data) > 2*chunk+4096+int(p.lim.MaxRecordBytes)+csvReadSlack {
			t.Fatalf("a chunk of %d bytes for a target of %d", len(c.Data), chunk)
		}
		var got []csvRec
		lastLine := 0
		collect := func(line int, fields [][]byte) error {
			if line <= lastLine {
				t.Fatalf("a record at line %d after one at line %d: Parse delivered a record twice", line, lastLine)
			}
			lastLine = line
			rec := csvRec{line: line}
			for _, f := range fields {
				if !utf8.Valid(f) {
					t.Fatalf("line %d: field %q is not valid UTF-8", line, f)
				}
				rec.fields = append(rec.fields, string(f))
			}
			if len(rec.fields) != len(r.header) {
				t.Fatalf("line %d: %d fields, header has %d", line, len(rec.fields), len(r.header))
			}
			got = append(got, rec)
			return nil
		}
		n, err := p.Parse(c, -1, collect)
		if p.NeedsBase(base, n, err) {
			got, lastLine = got[:0], 0
			n, err = p.Parse(c, base, collect)
		}
		if int(n) != len(got) && err == nil {
			t.Fatalf("Parse returned %d records and delivered %d", n, len(got))
		}
		r.recs = append(r.recs, got...)
		base += n
		if err != nil {
			var re *RecordError
			if !errors.As(err, &re) {
				t.Fatalf("error %T, not a *RecordError: %v", err, err)
			}
			r.err, r.errv = err.Error(), err
			return r
		}
		buf = c.Data
	}
}

func TestCSVSplitterGivesEncodingCSVsRecordsAndErrors(t *testing.T) {
	hydro, err := os.ReadFile("testdata/hydropower-consumption.csv")
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 5000)
	cases := map[string]string{
		"hydropower":                 string(hydro),
		"crlf and no final newline":  "a,b\r\n1,2\r\n3,4",
		"blank lines":                "a,b\n\n1,2\r\n\r\n\n3,4\n\n",
		"final lone CR":              "a,b\n1,2\r",
		"quoted fields":              "a,b\n\"x,y\",\"say \"\"hi\"\"\"\n\"\",\"\"\n",
		"quoted newlines":            "a,b\n\"line 1\nline 2\",2\n\"crlf\r\ninside\",3\n4,\"end\"",
		"quotes across chunks":       "a,b\n" + strings.Repeat("\"q\n,\n\"\"\",z\n", 200),
		"record longer than a chunk": "a,b\n1," + long + "\n2,\"" + long + "\n" + long + "\"\n3,4\n",
		"bare quote":                 "a,b\n1,2\nx\"y,3\n",
		"bare quote late":            "a,b\n" + strings.Repeat("1,2\n", 300) + "x,y\"\n" + strings.Repeat("1,2\n", 300),
		"junk after quote":           "a,b\n\"x\"y,2\n",
		"unterminated quote":         "a,b\n1,2\n\"abc,3\n4,5\n",
		"ragged row":                 "a,b\n1,2\n3\n",
		"too many fields late":       "a,b\n" + strings.Repeat("1,2\n", 500) + "1,2,3\n",
		"invalid utf-8":              "a,b\n1,2\nS\xe3o,3\n",
		"invalid utf-8 in quotes":    "a,b\n\"x\n\xff\",3\n",
		"empty":                      "",
		"only blank lines":           "\n\n\n",
		"header only":                "a,b\n",
		"header without newline":     "a,b",
		"bom":                        "\ufeffa,b\n1,2\n",
		"duplicate header":           "a,a\n1,2\n",
		"empty header name":          "a,,b\n1,2,3\n",
		"bare quote in header":       "a\"x,b\n1,2\n",
		"blank lines before header":  "\n\r\na,b\n1,2\n",
		"cr inside unquoted field":   "a,b\nx\ry,2\n",
		"delimiter at line end":      "a,b\n1,\n,2\n,\n",
		"quoted empty at eof":        "a,b\n1,\"\"",
		"quote then cr at eof":       "a,b\n1,\"x\"\r",
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			for _, delim := range []rune{',', ';', '→'} {
				data := []byte(in)
				if delim != ',' {
					data = bytes.ReplaceAll(data, []byte(","), []byte(string(delim)))
				}
				for _, lim := range []Limits{{}, {MaxObjectBytes: 300, MaxRecordBytes: 60, MaxFieldBytes: 12, MaxRecords: 3}} {
					opts := CSVOptions{Delimiter: delim, Limits: lim}
					want := viaExact(data, opts)
					for _, chunk := range []int{1, 7, 64, 1 << 20} {
						got := viaSplitter(t, data, opts, chunk)
						if got.String() != want.String() {
							t.Fatalf("delimiter %q, limits %+v, chunks of %d bytes:\nsplitter:\n%s\nencoding/csv:\n%s", delim, lim, chunk, got, want)
						}
					}
				}
			}
		})
	}
}

func TestCSVSplitterNeverCutsInsideAQuotedField(t *testing.T) {
	// Every record holds a quoted newline and a comma; chunks of 10 bytes
	// would cut most of them if the splitter ignored quotes.
	var b strings.Builder
	b.WriteString("id,text\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "%d,\"a,\n\"\"b\"\"\"\n", i)
	}
	s, err := NewCSVSplitter(strings.NewReader(b.String()), CSVOptions{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	p := s.NewParser()
	n := 0
	for {
		c, err := s.Next(nil)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(c.Data, []byte("\"\n")) {
			t.Fatalf("chunk at line %d ends %q, not after a record", c.Line, c.Data[max(0, len(c.Data)-10):])
		}
		_, err = p.Parse(c, -1, func(line int, f [][]byte) error {
			if want := fmt.Sprint(n); string(f[0]) != want || string(f[1]) != "a,\n\"b\"" || line != 2+2*n {
				return fmt.Errorf("record at line %d = %q, want %s,%q at line %d", line, f, want, "a,\n\"b\"", 2+2*n)
			}
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if n != 1000 {
		t.Fatalf("parsed %d records, want 1000", n)
	}
}

func TestCSVSplitterStopsARecordPastTheLimitWithBoundedChunks(t *testing.T) {
	// A quoted field that never ends: the splitter gives up after
	// MaxRecordBytes (plus the read slack), naming the record's line.
	data := io.MultiReader(strings.NewReader("a,b\n1,2\n3,\""), endless{})
	s, err := NewCSVSplitter(data, CSVOptions{Limits: Limits{MaxRecordBytes: 1 << 20}}, 4096)
	if err != nil {
		t.Fatal(err)
	}
	p := s.NewParser()
	var last error
	for {
		c, err := s.Next(nil)
		if err == io.EOF {
			break
		}
		if len(c.Data) > 1<<20+2*csvReadSlack {
			t.Fatalf("chunk of %d bytes", len(c.Data))
		}
		if _, err := p.Parse(c, -1, func(int, [][]byte) error { return nil }); err != nil {
			last = err
			break
		}
	}
	var le *LimitError
	if !errors.As(last, &le) || le.Key != KeyMaxRecordBytes || !strings.HasPrefix(last.Error(), "line 3: ") {
		t.Fatalf("err = %v, want a record limit error on line 3", last)
	}
}

type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// FuzzCSVSplitterMatchesEncodingCSV checks that splitting and parsing
// never panic, that errors are *RecordError, that every record has the
// header's width in valid UTF-8, that chunks of any size give what
// encoding/csv gives on the whole object, and that small limits stop the
// parse with a *LimitError no later than it stops without them.
func FuzzCSVSplitterMatchesEncodingCSV(f *testing.F) {
	hydro, err := os.ReadFile("testdata/hydropower-consumption.csv")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(hydro[:3000]), "a,b\n1,2\n", "a,b\r\n1,2", "\ufeffa\n1\n", "", "a,a\n", "a,,b\n", "a,b\n1\n",
		"a\n\"x\ny\"\n", "a\n\"x\n", "a\nx\"y\n", "a\n\xff\n", "\xff\n1\n", "a;b\n1;2\n", "a,b\n\"\"\"\",\"x\"\"\n\"\n\n\r\n",
	} {
		f.Add([]byte(s), uint8(0), uint8(3))
		f.Add([]byte(s), uint8(1), uint8(40))
	}
	delims := []rune{',', ';', '\t', '|'}
	f.Fuzz(func(t *testing.T, data []byte, d, chunk uint8) {
		for _, lim := range []Limits{{}, {MaxObjectBytes: 300, MaxRecordBytes: 60, MaxFieldBytes: 12, MaxRecords: 3}} {
			opts := CSVOptions{Delimiter: delims[int(d)%len(delims)], Limits: lim}
			want := viaExact(data, opts)
			got := viaSplitter(t, data, opts, int(chunk)+1)
			if got.String() != want.String() {
				t.Fatalf("limits %+v, chunks of %d bytes:\nsplitter:\n%s\nencoding/csv:\n%s", lim, int(chunk)+1, got, want)
			}
		}
		opts := CSVOptions{Delimiter: delims[int(d)%len(delims)]}
		run := viaSplitter(t, data, opts, int(chunk)+1)
		checkSmallLimits(t, data, len(run.recs), run.errv, func(lim *Limits) (int, error) {
			o := opts
			o.Limits = *lim
			r := viaSplitter(t, data, o, int(chunk)+1)
			return len(r.recs), r.errv
		})
	})
}

// BenchmarkCSVSplitter measures splitting and parsing the hydropower file
// ×50 (208,800 rows) on one goroutine, against encoding/csv reading the
// same bytes in the same run.
//
//	go test -run '^$' -bench CSVSplitter -benchmem ./format/
func BenchmarkCSVSplitter(b *testing.B) {
	hydro, err := os.ReadFile("testdata/hydropower-consumption.csv")
	if err != nil {
		b.Fatal(err)
	}
	nl := bytes.IndexByte(hydro, '\n')
	body := append(bytes.TrimRight(hydro[nl+1:], "\n"), '\n')
	in := append(bytes.Clone(hydro[:nl+1]), bytes.Repeat(body, 50)...)
	const want = 4176 * 50
	b.Run("encoding-csv", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			cr := csv.NewReader(bytes.NewReader(in))
			cr.ReuseRecord = true
			n := -1 // the header
			for {
				_, err := cr.Read()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != want {
				b.Fatalf("%d records", n)
			}
		}
	})
	b.Run("split+parse", func(b *testing.B) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			s, err := NewCSVSplitter(bytes.NewReader(in), CSVOptions{}, 0)
			if err != nil {
				b.Fatal(err)
			}
			p, n := s.NewParser(), int64(0)
			for {
				c, err := s.Next(buf)
				if err == io.EOF {
					break
				}
				k, err := p.Parse(c, -1, func(int, [][]byte) error { return nil })
				if err != nil {
					b.Fatal(err)
				}
				n += k
				buf = c.Data
			}
			if n != want {
				b.Fatalf("%d records", n)
			}
		}
	})
}

func TestCSVSplitterShowsTheHeaderOnceBeforeAnyRecord(t *testing.T) {
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
				h[0] = "changed" // the slice is the caller's; the splitter must not see this
				return nil
			}}
			s, err := NewCSVSplitter(bytes.NewReader(tt.in), opts, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(events) != 1 || events[0] != tt.want || fmt.Sprint(s.Header()) != tt.want {
				t.Fatalf("OnHeader calls = %q, header %q; want one with %s", events, s.Header(), tt.want)
			}
			var recs []string
			for {
				c, err := s.Next(nil)
				if err == io.EOF {
					break
				}
				if _, err := s.NewParser().Parse(c, 0, func(_ int, f [][]byte) error { recs = append(recs, fmt.Sprintf("%s", f)); return nil }); err != nil {
					t.Fatal(err)
				}
			}
			if len(recs) != tt.recs || (tt.recs > 0 && recs[0] != "[1 2]") {
				t.Fatalf("records %q, want %d, the first [1 2]", recs, tt.recs)
			}
		})
	}
}

func TestCSVSplitterStopsWithTheErrorReturnedByOnHeader(t *testing.T) {
	stop := errors.New("stop")
	if _, err := NewCSVSplitter(strings.NewReader("a\n1\n2\n"), CSVOptions{OnHeader: func([]string) error { return stop }}, 0); err != stop {
		t.Errorf("err = %v, want the OnHeader error unchanged", err)
	}
}

func TestCSVSplitterDoesNotShowABadHeader(t *testing.T) {
	for _, in := range []string{"", "a,a\n1,2\n", "a,,b\n"} {
		called := false
		_, err := NewCSVSplitter(strings.NewReader(in), CSVOptions{OnHeader: func([]string) error { called = true; return nil }}, 0)
		var re *RecordError
		if !errors.As(err, &re) || called {
			t.Errorf("%q: err = %v, OnHeader called = %v; want a *RecordError and no call", in, err, called)
		}
	}
}

func TestCSVParserStopsWithTheErrorReturnedByFn(t *testing.T) {
	stop := errors.New("stop")
	for _, in := range []string{"a\n1\n2\n3\n", "a\n1\n2\n3\n\"x\"y\n"} { // plainly valid, and not
		s, err := NewCSVSplitter(strings.NewReader(in), CSVOptions{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := s.Next(nil)
		calls := 0
		n, err := s.NewParser().Parse(c, 0, func(int, [][]byte) error {
			if calls++; calls == 2 {
				return stop
			}
			return nil
		})
		if err != stop || n != 2 || calls != 2 {
			t.Errorf("%q: err = %v after %d records (%d calls), want the fn error unchanged after 2", in, err, n, calls)
		}
	}
}
