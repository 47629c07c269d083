package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Record is one decoded record.
type Record struct {
	// N is the 1-based record number in the object (CSV: 1 = first data
	// row).
	N int
	// Line is the 1-based line where the record starts.
	Line int
	// Fields maps field names to values: for JSON, the values
	// encoding/json produces with UseNumber (json.Number for numbers,
	// string, bool, nil, map[string]any, []any); for CSV, strings.
	Fields map[string]any
}

// JSON input kinds accepted by DecodeJSON.
const (
	InputJSON   = "json"   // one JSON array of objects, or one object
	InputNDJSON = "ndjson" // objects separated by white space, usually one a line
	InputAuto   = "auto"   // sniff: see DecodeJSON
)

// DecodeJSON reads a JSON array of objects, a single JSON object, or NDJSON
// (objects separated by white space — normally one a line; blank lines are
// skipped) and calls fn for each object, in order. Input that starts with
// the gzip magic bytes is decompressed first.
//
// kind is "json" (an array of objects or one object; anything after it is
// an error), "ndjson" (every top-level value must be an object; empty input
// is zero records), or "auto" (the first non-space byte decides: '[' is an
// array, '{' is one object — or NDJSON when another value follows it).
//
// Errors about the data are *RecordError, naming the record number and,
// for syntax errors, the line and byte: truncated input, an element that is
// not an object, data after the top-level value, invalid UTF-8, a
// top-level scalar, empty input ("json" and "auto"). An error returned by
// fn stops decoding and is returned unchanged. An unknown kind is a plain
// error.
//
// lim bounds the object (nil means the defaults; see Limits): the
// decompressed bytes, the bytes of one record (as written), of one string
// and of the raw text of a nested value of a top-level field, and the
// number of records. Each is checked while reading, so a small gzip object
// holding a 2 GiB string is refused after MaxFieldBytes of it, without
// holding the string. A broken limit is a *RecordError wrapping a
// *LimitError that names the spec key to raise.
//
// DecodeJSON holds one record at a time: memory does not grow with the
// number of records.
func DecodeJSON(r io.Reader, kind string, lim *Limits, fn func(Record) error) error {
	switch kind {
	case InputJSON, InputNDJSON, InputAuto:
	default:
		return fmt.Errorf("format: unknown JSON kind %q (want %q, %q or %q)", kind, InputJSON, InputNDJSON, InputAuto)
	}
	l, err := lim.withDefaults()
	if err != nil {
		return err
	}
	src, skipped, err := openInput(r, l.MaxObjectBytes)
	if err != nil {
		return err
	}
	d := &jsonDecoder{
		src:  src,
		buf:  make([]byte, 32<<10),
		base: skipped,
		line: 1,
		lim:  l,
		fn:   fn,
	}
	d.dec = json.NewDecoder(&d.feed)
	d.dec.UseNumber()

	c, ok := d.skipSpace()
	if !ok {
		if err := d.readErr(0); err != nil {
			return err
		}
		if kind == InputNDJSON {
			return nil
		}
		return &RecordError{Err: errors.New("empty input: no JSON value")}
	}
	switch {
	case c == '[' && kind != InputNDJSON:
		return d.array()
	case c == '{' || kind == InputNDJSON:
		return d.objects(kind)
	default:
		if what, ok := describeStart(c); ok {
			return d.errAt(0, d.off(), d.line, fmt.Errorf("the top-level value is %s; want an array of objects, an object, or NDJSON", what))
		}
		return d.errAt(0, d.off(), d.line, fmt.Errorf("invalid character %s looking for the start of a JSON value", quoteByte(c)))
	}
}

// jsonDecoder frames one top-level element at a time with a small
// scanner (which knows exact offsets and lines) and hands the element's
// bytes to encoding/json.
type jsonDecoder struct {
	src      io.Reader
	buf      []byte
	pos, end int
	base     int64 // input offset of buf[0]
	line     int   // line of buf[pos]
	rerr     error // error from src, reported once buf is used up

	raw   []byte // the current element
	stack []byte // closers expected while framing
	lim   Limits

	feed feeder
	dec  *json.Decoder
	fn   func(Record) error
}

// feeder hands one framed element at a time to the json.Decoder, which
// never reads past an object's closing brace.
type feeder struct{ b []byte }

func (f *feeder) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

// off is the 0-based input offset of buf[pos].
func (d *jsonDecoder) off() int64 { return d.base + int64(d.pos) }

// fill makes buf[pos:end] non-empty, reading from src; false when src is
// exhausted or failed.
func (d *jsonDecoder) fill() bool {
	for d.pos == d.end {
		if d.rerr != nil {
			return false
		}
		d.base += int64(d.end)
		d.pos, d.end = 0, 0
		n, err := d.src.Read(d.buf)
		d.end = n
		if err != nil {
			d.rerr = err
		}
	}
	return true
}

// readErr turns a failure of src into a *RecordError for record rec, or
// returns nil when src simply ended.
func (d *jsonDecoder) readErr(rec int) error {
	if d.rerr == nil || d.rerr == io.EOF {
		return nil
	}
	return &RecordError{Record: rec, Line: d.line, Offset: d.off(), Err: d.rerr}
}

// skipSpace skips JSON white space and returns the next byte without
// consuming it; false at the end of the input or on a read error.
func (d *jsonDecoder) skipSpace() (byte, bool) {
	for d.fill() {
		for d.pos < d.end {
			switch c := d.buf[d.pos]; c {
			case '\n':
				d.line++
				d.pos++
			case ' ', '\t', '\r':
				d.pos++
			default:
				return c, true
			}
		}
	}
	return 0, false
}

// errAt builds a *RecordError at the 0-based offset off on line line.
func (d *jsonDecoder) errAt(rec int, off int64, line int, err error) error {
	return &RecordError{Record: rec, Line: line, Offset: off + 1, Err: err}
}

// array decodes the elements of a top-level array; buf[pos] is '['.
func (d *jsonDecoder) array() error {
	d.pos++
	n := 0
	for {
		c, ok := d.skipSpace()
		if !ok {
			if err := d.readErr(n + 1); err != nil {
				return err
			}
			if n == 0 {
				return d.errAt(0, d.off()-1, d.line, errors.New("unexpected end of JSON input: the array is not closed"))
			}
			return d.errAt(0, d.off()-1, d.line, fmt.Errorf("unexpected end of JSON input after record %d: the array is not closed", n))
		}
		if n > 0 {
			switch c {
			case ']':
				d.pos++
				return d.trailing("array")
			case ',':
				d.pos++
			default:
				return d.errAt(0, d.off(), d.line, fmt.Errorf("invalid character %s after record %d: want ',' or ']'", quoteByte(c), n))
			}
			if c, ok = d.skipSpace(); !ok {
				if err := d.readErr(n + 1); err != nil {
					return err
				}
				return d.errAt(n+1, d.off()-1, d.line, errors.New("unexpected end of JSON input: the array is not closed"))
			}
			if c == ']' {
				return d.errAt(n+1, d.off(), d.line, fmt.Errorf("',' after record %d is followed by ']'; remove the trailing comma", n))
			}
		} else if c == ']' {
			d.pos++
			return d.trailing("array")
		}
		n++
		if err := d.element(n, c); err != nil {
			return err
		}
	}
}

// objects decodes a stream of top-level objects.
func (d *jsonDecoder) objects(kind string) error {
	n := 0
	for {
		c, ok := d.skipSpace()
		if !ok {
			return d.readErr(n + 1)
		}
		if n == 1 && kind == InputJSON {
			return d.errAt(0, d.off(), d.line, errors.New("unexpected data after the JSON object; for one object a line use format ndjson"))
		}
		n++
		if err := d.element(n, c); err != nil {
			return err
		}
	}
}

// trailing checks that only white space follows the top-level value.
func (d *jsonDecoder) trailing(what string) error {
	if _, ok := d.skipSpace(); ok {
		return d.errAt(0, d.off(), d.line, fmt.Errorf("unexpected data after the JSON %s", what))
	}
	return d.readErr(0)
}

// element frames, decodes and delivers record n, which starts with c at
// buf[pos].
func (d *jsonDecoder) element(n int, c byte) error {
	start, line := d.off(), d.line
	if c != '{' {
		if what, ok := describeStart(c); ok {
			return d.errAt(n, start, line, fmt.Errorf("got %s, want an object", what))
		}
		return d.errAt(n, start, line, fmt.Errorf("invalid character %s where an object should start", quoteByte(c)))
	}
	if int64(n) > d.lim.MaxRecords {
		return d.errAt(n, start, line, &LimitError{Key: KeyMaxRecords, Limit: d.lim.MaxRecords})
	}
	complete, err := d.frame(n, start, line)
	if err != nil {
		return err
	}
	if !utf8.Valid(d.raw) {
		i := invalidUTF8(d.raw)
		return d.errAt(n, start+int64(i), line+bytes.Count(d.raw[:i], newline), errors.New("not valid UTF-8; convert the input to UTF-8"))
	}
	var v any
	if complete {
		d.feed.b = d.raw
		if err = d.dec.Decode(&v); err != nil {
			// The stream decoder's error offsets count from its first
			// value; a fresh parse of the element gives the exact one.
			d.dec = json.NewDecoder(&d.feed)
			d.dec.UseNumber()
		}
	}
	if !complete || err != nil {
		return d.syntaxErr(n, start, line)
	}
	obj, ok := v.(map[string]any)
	if !ok { // cannot happen: the element starts with '{'
		return d.errAt(n, start, line, errors.New("want an object"))
	}
	return d.fn(Record{N: n, Line: line, Fields: obj})
}

var newline = []byte{'\n'}

// syntaxErr explains why d.raw, record n starting at offset start on line
// line, is not a valid object.
func (d *jsonDecoder) syntaxErr(n int, start int64, line int) error {
	var v any
	err := json.Unmarshal(d.raw, &v)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		if err == nil {
			err = errors.New("invalid JSON object")
		}
		return d.errAt(n, start, line, err)
	}
	at := int(se.Offset) // bytes read up to and including the bad one
	if at > len(d.raw) {
		at = len(d.raw)
	}
	if at == len(d.raw) && se.Error() == "unexpected end of JSON input" {
		if err := d.readErr(n); err != nil {
			return err
		}
		return d.errAt(n, start+int64(at)-1, line+bytes.Count(d.raw[:max(at-1, 0)], newline), errors.New("unexpected end of JSON input: the object is truncated"))
	}
	at = max(at-1, 0)
	return d.errAt(n, start+int64(at), line+bytes.Count(d.raw[:at], newline), errors.New(se.Error()))
}

// frame copies the object starting at buf[pos] — record n, at offset
// start on line line — into d.raw. complete is false when the input ended
// (or a closer did not match) before the object closed; the caller parses
// d.raw to say why. err is a limit broken: d.raw never grows much past
// MaxRecordBytes (by at most one read buffer), and a string or a nested
// value of a top-level field longer than MaxFieldBytes is refused as soon
// as it is, not when it ends.
func (d *jsonDecoder) frame(n int, start int64, line int) (complete bool, err error) {
	d.raw = d.raw[:0]
	d.stack = d.stack[:0]
	inString, escaped := false, false
	maxField := d.lim.MaxFieldBytes
	// Offsets in the record: of the current string's opening quote, of the
	// open nested value of a top-level field (-1: none), and of the last
	// top-level key's quotes (for naming the field).
	var strStart, nestStart, keyStart, keyEnd int64 = 0, -1, -1, -1
	wantKey, isKey := false, false
	for d.fill() {
		from := d.pos
		base := int64(len(d.raw)) - int64(from) // record offset of buf[i] is base+i
		for i := d.pos; i < d.end; i++ {
			c := d.buf[i]
			if inString {
				switch {
				case escaped:
					escaped = false
				case c == '\\':
					escaped = true
				case c == '"':
					inString = false
					at := base + int64(i)
					if at-strStart+1 > maxField {
						return false, d.fieldLimit(n, start, line, from, i, strStart, keyStart, keyEnd, isKey)
					}
					if isKey {
						keyStart, keyEnd, isKey, wantKey = strStart, at, false, false
					}
				case c == '\n':
					d.line++
				}
				continue
			}
			switch c {
			case '"':
				inString = true
				strStart = base + int64(i)
				isKey = wantKey && len(d.stack) == 1
			case ',':
				wantKey = len(d.stack) == 1
			case '{':
				if len(d.stack) == 1 {
					nestStart = base + int64(i)
				}
				d.stack = append(d.stack, '}')
				wantKey = len(d.stack) == 1
			case '[':
				if len(d.stack) == 1 {
					nestStart = base + int64(i)
				}
				d.stack = append(d.stack, ']')
			case '}', ']':
				top := len(d.stack) - 1
				if d.stack[top] != c {
					d.raw = append(d.raw, d.buf[from:i+1]...)
					d.pos = i + 1
					return false, nil
				}
				d.stack = d.stack[:top]
				switch top {
				case 0:
					d.raw = append(d.raw, d.buf[from:i+1]...)
					d.pos = i + 1
					if int64(len(d.raw)) > d.lim.MaxRecordBytes {
						return false, d.recordLimit(n, start, line)
					}
					return true, nil
				case 1:
					if base+int64(i)-nestStart+1 > maxField {
						return false, d.fieldLimit(n, start, line, from, i, nestStart, keyStart, keyEnd, false)
					}
					nestStart = -1
				}
			case '\n':
				d.line++
			}
		}
		d.raw = append(d.raw, d.buf[from:d.end]...)
		d.pos = d.end
		end := int64(len(d.raw))
		switch {
		case inString && end-strStart > maxField:
			return false, d.fieldLimit(n, start, line, d.end, d.end, strStart, keyStart, keyEnd, isKey)
		case nestStart >= 0 && end-nestStart > maxField:
			return false, d.fieldLimit(n, start, line, d.end, d.end, nestStart, keyStart, keyEnd, false)
		case end > d.lim.MaxRecordBytes:
			return false, d.recordLimit(n, start, line)
		}
	}
	return false, nil
}

// recordLimit reports record n, at offset start on line line, as larger
// than MaxRecordBytes.
func (d *jsonDecoder) recordLimit(n int, start int64, line int) error {
	return &RecordError{Record: n, Line: line, Offset: start + 1, Err: &LimitError{Key: KeyMaxRecordBytes, Limit: d.lim.MaxRecordBytes}}
}

// fieldLimit reports the value at record offset at, in record n, as
// larger than MaxFieldBytes, naming the top-level field whose key is at
// raw[keyStart:keyEnd+1] when the value is not itself a key.
// buf[from:upto] is the part of the record not yet in d.raw.
func (d *jsonDecoder) fieldLimit(n int, start int64, line int, from, upto int, at, keyStart, keyEnd int64, isKey bool) error {
	d.raw = append(d.raw, d.buf[from:upto]...)
	d.pos = upto
	var field string
	if !isKey && keyStart >= 0 && keyEnd < int64(len(d.raw)) {
		_ = json.Unmarshal(d.raw[keyStart:keyEnd+1], &field)
	}
	return &RecordError{Record: n, Line: line, Offset: start + at + 1, Column: field, Err: &LimitError{Key: KeyMaxFieldBytes, Limit: d.lim.MaxFieldBytes}}
}

// invalidUTF8 returns the index of the first byte of b that is not part
// of a valid UTF-8 sequence.
func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			return i
		}
		i += size
	}
	return len(b)
}

// describeStart names the kind of JSON value that starts with c; false
// when no JSON value starts with c.
func describeStart(c byte) (string, bool) {
	switch {
	case c == '{':
		return "an object", true
	case c == '[':
		return "an array", true
	case c == '"':
		return "a string", true
	case c == 't' || c == 'f':
		return "a boolean", true
	case c == 'n':
		return "null", true
	case c == '-' || ('0' <= c && c <= '9'):
		return "a number", true
	default:
		return "", false
	}
}

// quoteByte quotes c for a message.
func quoteByte(c byte) string {
	if c < utf8.RuneSelf {
		return fmt.Sprintf("%q", rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}
