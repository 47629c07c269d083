package format

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/sluicehq/sluice/schema"
)

// JSON input formats (ReadOptions.Format).
const (
	InputJSON   = "json"   // one JSON array of objects, or one object
	InputNDJSON = "ndjson" // objects separated by white space, usually one a line
	InputAuto   = "auto"   // sniff: '[' is an array, '{' one object or NDJSON
)

func init() {
	for _, f := range []string{InputJSON, InputNDJSON, InputAuto} {
		decoders[f] = decodeJSON
	}
}

// The JSON decoders read a JSON array of objects, a single JSON object, or
// NDJSON (objects separated by white space — normally one a line; blank
// lines are skipped). Input that starts with the gzip magic bytes is
// decompressed first; a UTF-8 byte order mark is skipped.
//
// Format "json" is an array of objects or one object (anything after it is
// an error); "ndjson" requires every top-level value to be an object (empty
// input is zero records); "auto" lets the first non-space byte decide: '['
// is an array, '{' is one object — or NDJSON when another value follows.
//
// Errors about the data are *RecordError, naming the record number and, for
// syntax errors, the line and byte — with encoding/json's wording
// ("invalid character '5' after object key"): truncated input, an element
// that is not an object, data after the top-level value, invalid UTF-8, a
// top-level scalar, empty input ("json" and "auto"), nesting deeper than
// encoding/json's 10,000 levels.
//
// Limits (see Limits) are checked while reading: the decompressed bytes,
// the bytes of one record (as written), of one string and of the raw text
// of a nested value of a top-level field, and the number of records. A
// small gzip object holding a 2 GiB string is refused after MaxFieldBytes
// of it, without holding the string. A broken limit is a *RecordError
// wrapping a *LimitError that names the spec key to raise.
//
// How it parses, and why by hand: one pass over the buffered bytes
// validates each record exactly as encoding/json would, and casts each
// declared value from its bytes as written straight into the batch's
// vectors (mapping.go); undeclared values are only validated. There is no
// tokenizer in between, no per-record map and no allocation per value
// (text is unescaped into the column's arena). Measured into batches
// (bench/json/README.md, MB per CPU second, posts-shaped / hydropower-shaped
// NDJSON): this scanner 999 / 304, jsontext 474 / 306, fastjson 511 / 240
// (350 / 174 with the validation it skips), segmentio's tokenizer 192 /
// 218, sonic into maps 178 / 83, goccy/go-json into maps 113 / 57,
// encoding/json into maps — the decoder before — 90 / 36. No library came
// within 10 % on the posts shape, and none reports limits mid-value or
// encoding/json's error positions, which the scanner would have to do
// anyway.
//
// Parallelism: an NDJSON object (and "auto" input that starts with '{') is
// cut into chunks of about 1 MiB at line ends and the chunks are parsed by
// ReadOptions.Workers goroutines; the batches are handed on in order with
// the record numbers and lines of a serial parse. A chunk that ends inside
// a record (an object spread over several lines) is joined with the next
// one and parsed again, so the result never depends on where the cuts
// fall (records longer than a chunk are parsed again for every chunk they
// reach, so objects of such records gain nothing from more workers).
// Arrays and single objects are parsed by one goroutine. Memory is
// bounded by 2 × Workers + 1 chunks (being parsed, or parsed and waiting
// for the consumer) and their batches.
func decodeJSON(ctx context.Context, r io.Reader, o *ReadOptions, s *sink) (Report, error) {
	lim, err := o.Limits.withDefaults()
	if err != nil {
		return Report{}, err
	}
	src, skipped, err := openInput(r, lim.MaxObjectBytes)
	if err != nil {
		return Report{}, err
	}
	m := o.Mapper
	t := m.newTally()
	d := newJSONDecoder(o, lim, m, t, s)
	d.src, d.base = src, skipped
	d.buf = getReadBuf()
	defer func() { putReadBuf(d.buf) }()

	c, ok := d.skipSpace()
	if !ok {
		if err := d.readErr(0); err != nil {
			return Report{}, err
		}
		if o.Format == InputNDJSON {
			return m.finish(t)
		}
		return Report{}, &RecordError{Err: errors.New("empty input: no JSON value")}
	}
	switch {
	case c == '[' && o.Format != InputNDJSON:
		err = d.array()
	case c == '{' && o.Format != InputJSON && o.Workers > 1 && (d.rerr == nil || d.end-d.pos > o.chunkSize()):
		// More than one chunk: worth more goroutines.
		return decodeNDJSONParallel(ctx, d, o, lim, t, s)
	case c == '{' || o.Format == InputNDJSON:
		err = d.objects()
	default:
		if what, ok := describeStart(c); ok {
			err = d.errAt(0, d.off(), d.line, fmt.Errorf("the top-level value is %s; want an array of objects, an object, or NDJSON", what))
		} else {
			err = d.errAt(0, d.off(), d.line, fmt.Errorf("invalid character %s looking for the start of a JSON value", quoteByte(c)))
		}
	}
	if err != nil {
		return Report{}, err
	}
	return m.finish(t)
}

// serialBuffer is the read buffer of a serial decoder; it grows for a
// record that does not fit (up to about twice MaxRecordBytes). It is also
// the size of the chunks of a parallel one (defaultChunk).
const serialBuffer = 1 << 20

// readBufs recycles read buffers of serialBuffer bytes across objects.
var readBufs sync.Pool

func getReadBuf() []byte {
	if b, ok := readBufs.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, serialBuffer)
}

// putReadBuf recycles b if it has the standard size; nothing may use it
// afterwards.
func putReadBuf(b []byte) {
	if cap(b) == serialBuffer {
		b = b[:serialBuffer]
		readBufs.Put(&b)
	}
}

// batcher hands out the batch to append the next record to.
type batcher interface {
	Batch() (*schema.Batch, error)
}

// jsonDecoder reads top-level values from a window of buffered input: from
// a reader (refilled as it goes) or from one chunk of an NDJSON object.
type jsonDecoder struct {
	src      io.Reader // nil: buf[:end] is all this decoder gets
	buf      []byte
	pos, end int
	base     int64 // input offset of buf[0]
	line     int64 // line of buf[pos]
	rerr     error // error from src (or after the chunk), reported once buf is used up
	cut      bool  // buf ends where the next chunk starts, not at the end of the input
	kind     string
	lim      Limits
	n        int64 // records started (numbered from the decoder's base)
	lastEnd  int64 // input offset after the last record (for Batch.Bytes)

	p          parser
	r          *recMap
	out        batcher
	quarantine bool
}

func newJSONDecoder(o *ReadOptions, lim Limits, m *Mapper, t *tally, out batcher) *jsonDecoder {
	d := &jsonDecoder{line: 1, kind: o.Format, lim: lim, out: out, quarantine: o.Quarantine}
	d.r = m.newRecMap(t)
	d.p = parser{r: d.r, root: m.tree, maxField: int(min(lim.MaxFieldBytes, math.MaxInt32)), extras: m.opts.Extra != ExtraIgnore}
	return d
}

// errCut ends the parse of a chunk that ends inside a record.
var errCut = errors.New("chunk ends inside a record")

// off is the input offset of buf[pos].
func (d *jsonDecoder) off() int64 { return d.base + int64(d.pos) }

// refill keeps buf[pos:end], moving it to the front (and growing buf when
// it is full), and reads from src until buf is full or src fails; false
// when nothing more came.
func (d *jsonDecoder) refill() bool {
	if d.src == nil || d.rerr != nil {
		return false
	}
	if d.pos > 0 {
		n := copy(d.buf, d.buf[d.pos:d.end])
		d.base += int64(d.pos)
		d.pos, d.end = 0, n
	}
	if d.end == len(d.buf) {
		nb := make([]byte, 2*len(d.buf))
		copy(nb, d.buf[:d.end])
		d.buf = nb
	}
	start := d.end
	for empty := 0; d.end < len(d.buf) && d.rerr == nil; {
		n, err := d.src.Read(d.buf[d.end:])
		d.end += n
		if err != nil {
			d.rerr = err
		}
		if n == 0 && err == nil {
			if empty++; empty == 100 {
				d.rerr = io.ErrNoProgress
			}
		}
	}
	return d.end > start
}

// readErr turns a failure of src into a *RecordError for record rec, or
// returns nil when src simply ended.
func (d *jsonDecoder) readErr(rec int64) error {
	if d.rerr == nil || d.rerr == io.EOF {
		return nil
	}
	return &RecordError{Record: int(rec), Line: int(d.line), Offset: d.off(), Err: d.rerr}
}

// skipSpace skips JSON white space and returns the next byte without
// consuming it; false at the end of the input (or chunk) or on a read
// error.
func (d *jsonDecoder) skipSpace() (byte, bool) {
	for {
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
		if !d.refill() {
			return 0, false
		}
	}
}

// errAt builds a *RecordError at the 0-based offset off on line line.
func (d *jsonDecoder) errAt(rec int64, off int64, line int64, err error) error {
	return &RecordError{Record: int(rec), Line: int(line), Offset: off + 1, Err: err}
}

// array decodes the elements of a top-level array; buf[pos] is '['.
func (d *jsonDecoder) array() error {
	d.pos++
	first := d.n
	for {
		c, ok := d.skipSpace()
		n := d.n - first
		if !ok {
			if err := d.readErr(d.n + 1); err != nil {
				return err
			}
			if n == 0 {
				return d.errAt(0, d.off()-1, d.line, errors.New("unexpected end of JSON input: the array is not closed"))
			}
			return d.errAt(0, d.off()-1, d.line, fmt.Errorf("unexpected end of JSON input after record %d: the array is not closed", d.n))
		}
		if n > 0 {
			switch c {
			case ']':
				d.pos++
				return d.trailing("array")
			case ',':
				d.pos++
			default:
				return d.errAt(0, d.off(), d.line, fmt.Errorf("invalid character %s after record %d: want ',' or ']'", quoteByte(c), d.n))
			}
			if c, ok = d.skipSpace(); !ok {
				if err := d.readErr(d.n + 1); err != nil {
					return err
				}
				return d.errAt(d.n+1, d.off()-1, d.line, errors.New("unexpected end of JSON input: the array is not closed"))
			}
			if c == ']' {
				return d.errAt(d.n+1, d.off(), d.line, fmt.Errorf("',' after record %d is followed by ']'; remove the trailing comma", d.n))
			}
		} else if c == ']' {
			d.pos++
			return d.trailing("array")
		}
		if err := d.element(c); err != nil {
			return err
		}
	}
}

// objects decodes a stream of top-level objects.
func (d *jsonDecoder) objects() error {
	first := d.n
	for {
		c, ok := d.skipSpace()
		if !ok {
			return d.readErr(d.n + 1)
		}
		if d.n-first == 1 && d.kind == InputJSON {
			return d.errAt(0, d.off(), d.line, errors.New("unexpected data after the JSON object; for one object a line use format ndjson"))
		}
		if err := d.element(c); err != nil {
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

// element parses, maps and delivers the next record, which starts with c
// at buf[pos].
func (d *jsonDecoder) element(c byte) error {
	d.n++
	n := d.n
	start, line := d.off(), d.line
	if c != '{' {
		if what, ok := describeStart(c); ok {
			return d.errAt(n, start, line, fmt.Errorf("got %s, want an object", what))
		}
		return d.errAt(n, start, line, fmt.Errorf("invalid character %s where an object should start", quoteByte(c)))
	}
	if n > d.lim.MaxRecords {
		return d.errAt(n, start, line, &LimitError{Key: KeyMaxRecords, Limit: d.lim.MaxRecords})
	}
	b, err := d.out.Batch()
	if err != nil {
		return err
	}
	for {
		d.r.begin(b)
		rec := d.buf[d.pos:d.end]
		used, err := d.p.record(rec, (d.src == nil && !d.cut) || d.rerr != nil)
		if err == nil {
			if used > d.lim.MaxRecordBytes {
				d.r.abort()
				return d.recordLimit(n, start, line)
			}
			rec = rec[:used]
			if rej := d.r.end(rec, n, line); rej != nil {
				if !d.quarantine {
					return &rejectError{rej}
				}
				b.Rejects = append(b.Rejects, schema.Reject{N: n, Line: line, Reason: rej.Error(), Raw: string(rec)})
			}
			d.line += int64(bytes.Count(rec, newline))
			d.pos += int(used)
			b.Bytes += start + used - d.lastEnd
			d.lastEnd = start + used
			return nil
		}
		d.r.abort()
		if err != errNeedMore {
			return d.parseErr(err, n, start, line, rec)
		}
		if err := d.p.limitAtEnd(len(rec)); err != nil {
			return d.parseErr(err, n, start, line, rec)
		}
		if int64(len(rec)) > d.lim.MaxRecordBytes {
			return d.recordLimit(n, start, line)
		}
		if d.refill() {
			continue
		}
		if d.cut {
			return errCut
		}
		// The input ended inside the record.
		if d.rerr != nil && d.rerr != io.EOF {
			return &RecordError{Record: int(n), Line: int(line) + bytes.Count(rec, newline), Offset: start + int64(len(rec)), Err: d.rerr}
		}
		at := max(len(rec)-1, 0)
		return d.errAt(n, start+int64(at), line+int64(bytes.Count(rec[:at], newline)), errors.New("unexpected end of JSON input: the object is truncated"))
	}
}

var newline = []byte{'\n'}

// recordLimit reports record n, at offset start on line line, as larger
// than MaxRecordBytes.
func (d *jsonDecoder) recordLimit(n, start, line int64) error {
	return &RecordError{Record: int(n), Line: int(line), Offset: start + 1, Err: &LimitError{Key: KeyMaxRecordBytes, Limit: d.lim.MaxRecordBytes}}
}

// parseErr locates an error of the parser in record n, which starts at
// offset start on line line and is rec so far.
func (d *jsonDecoder) parseErr(err error, n, start, line int64, rec []byte) error {
	switch e := err.(type) {
	case *syntaxError:
		at := e.at
		msg := e.msg
		if !e.utf8 && rec[at] >= utf8.RuneSelf {
			if r, size := utf8.DecodeRune(rec[at:]); r == utf8.RuneError && size <= 1 {
				msg = ""
			}
		}
		if e.utf8 || msg == "" {
			msg = "not valid UTF-8; convert the input to UTF-8"
		}
		return d.errAt(n, start+int64(at), line+int64(bytes.Count(rec[:at], newline)), errors.New(msg))
	case *fieldLimit:
		var col string
		if e.key >= 0 {
			col = string(appendUnquoted(nil, rec[e.key:e.keyEnd]))
		}
		return &RecordError{Record: int(n), Line: int(line), Offset: start + int64(e.at) + 1, Column: col, Err: &LimitError{Key: KeyMaxFieldBytes, Limit: d.lim.MaxFieldBytes}}
	}
	return err
}

// rejectError is a record the mapper refused, with quarantine off: it
// matches ErrRejected and unwraps to the *RecordError.
type rejectError struct{ e *RecordError }

func (r *rejectError) Error() string   { return r.e.Error() }
func (r *rejectError) Unwrap() []error { return []error{ErrRejected, r.e} }

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

// quoteChar quotes c as encoding/json's syntax errors do.
func quoteChar(c byte) string {
	switch c {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	s := strconv.Quote(string(rune(c)))
	return "'" + s[1:len(s)-1] + "'"
}
