package format

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// CSVSplitter cuts a CSV object (a header row, then records; RFC 4180:
// quoted fields may hold delimiters, doubled quotes and newlines) into
// chunks of whole records, so that the chunks can be parsed in parallel
// (CSVParser) while the object is read once, in order. The CSV load
// (decodeCSVBatches) and the curate job read CSV through it. Input that
// starts with the gzip or zstd magic bytes is decompressed first; a UTF-8
// byte order mark is skipped; CRLF line ends, blank lines and a missing
// final newline are fine.
//
// Records, lines and errors are encoding/csv's, checked as a loader needs
// them: errors about the data are *RecordError with Line (and Column
// where one value is at fault) — an empty file, empty or duplicate header
// names, a row whose field count differs from the header's, a bare or
// unbalanced quote, invalid UTF-8, a broken limit. An invalid delimiter is
// a plain error. Tests hold the fast parser, on chunks of any size, to
// encoding/csv on the whole object (CSVParser's exact path).
//
// # Where a chunk may end
//
// A record ends at a newline outside quotes, and a chunk must end at one;
// but whether a newline is inside a quoted field depends on every quote
// before it. The splitter is the first of two passes: it scans each block
// it reads from the previous boundary on, counting quotes (bytes.IndexByte
// from quote to quote, so a block without quotes costs two memchr calls),
// and cuts after the last newline met outside quotes. It runs in order, so
// it always starts at a true boundary and never needs to guess. For valid
// CSV, quote parity is exactly encoding/csv's state: a field opens and
// closes with one quote each and an escaped quote is two. Invalid input
// can fool the parity only after its first stray quote, and the chunk that
// holds that quote starts at a true boundary, so its parser reports the
// quote exactly where encoding/csv does. Blank lines at the end of a block
// go to the next chunk, so a record's size and an error's line are counted
// from the end of the record before, as encoding/csv counts them on the
// whole object.
//
// The second pass, CSVParser.Parse, parses each chunk on its own. A chunk
// whose records are all valid is parsed by a hand-written parser that
// aliases its fields in the chunk (no copies, no allocations); a chunk with
// any problem — a syntax error, a ragged row, invalid UTF-8, a limit, a
// read error — is parsed again with encoding/csv and the same checks,
// which locate the first error exactly.
//
// Limits: the object stream is bounded by MaxObjectBytes; a record that
// does not end within MaxRecordBytes (plus the read slack of encoding/csv)
// stops the splitter with a *LimitError, so a chunk holds at most one
// oversized record's worth of bytes; CSVParser checks the record and field
// sizes and the record count. The
// header counts as a record for MaxRecordBytes and MaxFieldBytes, not
// for MaxRecords. A 1 GiB field is refused after about MaxRecordBytes of
// it, with a *RecordError (Line: where the record starts; Column: for
// MaxFieldBytes) wrapping a *LimitError that names the spec key.
type CSVSplitter struct {
	src    io.Reader // decompressed and bounded
	delim  rune
	lim    Limits
	header []string
	size   int

	tail   []byte // bytes read past the last chunk: the start of the next
	line   int    // line of tail[0]
	srcErr error  // the first error of src (io.EOF at its end)
	done   bool
}

// CSVOptions configures NewCSVSplitter. The zero value reads
// comma-separated values.
type CSVOptions struct {
	// Delimiter separates fields; 0 means ','.
	Delimiter rune
	// OnHeader, if set, is called once with the header row (in file
	// order; the slice is the caller's to keep) after the header checks
	// pass and before any record, so a file with no rows still shows its
	// header. An error from it stops decoding and is returned unchanged.
	OnHeader func(header []string) error
	// Limits bound the object; the zero value means the defaults. The
	// header row counts as a record for MaxRecordBytes and
	// MaxFieldBytes, not for MaxRecords.
	Limits Limits
}

// DefaultCSVChunkBytes is the chunk size NewCSVSplitter uses for 0.
const DefaultCSVChunkBytes = 1 << 20

// CSVChunk is a run of whole CSV records of one object.
type CSVChunk struct {
	// Data holds the records as written. It ends after a record's newline,
	// or at the end of the object, or where Err stopped the input.
	Data []byte
	// Line is the 1-based line of Data[0] in the object.
	Line int
	// Err is what stopped the input right after Data (a read failure or a
	// limit), nil when the input went on or ended normally. Parse reports
	// it, located by line, after the records before it.
	Err error
}

// NewCSVSplitter reads r's header row (gzip and zstd input decompressed, a
// byte order mark skipped), checks it, calls opts.OnHeader and returns a
// splitter for the records after it. chunk is the target chunk size in
// bytes (0: DefaultCSVChunkBytes); a chunk grows past it only to hold one
// longer record.
func NewCSVSplitter(r io.Reader, opts CSVOptions, chunk int) (*CSVSplitter, error) {
	delim := opts.Delimiter
	if delim == 0 {
		delim = ','
	}
	if delim == '"' || delim == '\r' || delim == '\n' || delim == utf8.RuneError || !utf8.ValidRune(delim) {
		return nil, fmt.Errorf("format: invalid CSV delimiter %q", delim)
	}
	lim, err := opts.Limits.withDefaults()
	if err != nil {
		return nil, err
	}
	if chunk <= 0 {
		chunk = DefaultCSVChunkBytes
	}
	src, _, err := openInput(r, lim.MaxObjectBytes)
	if err != nil {
		return nil, err
	}
	s := &CSVSplitter{src: src, delim: delim, lim: lim, size: chunk}

	// The header goes through encoding/csv, bounded by recordLimitReader;
	// tee keeps what it read past the header for the first chunk.
	tee := &teeReader{r: src}
	rl := &recordLimitReader{r: tee, max: lim.MaxRecordBytes + csvReadSlack}
	cr := csv.NewReader(rl)
	cr.Comma = delim
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err == io.EOF {
		return nil, &RecordError{Err: errors.New("empty file: no header row")}
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, csvErr(err)
		}
		return nil, &RecordError{Line: 1, Err: err}
	}
	end := cr.InputOffset()
	if err := checkRecordLimits(cr, lim, head, nil, 0, end, 0); err != nil {
		return nil, err
	}
	header, err := checkHeader(cr, head)
	if err != nil {
		return nil, err
	}
	s.header = header
	s.srcErr = tee.err
	// The header's own bytes and what encoding/csv read ahead.
	s.line = 1 + bytes.Count(tee.buf[:end], []byte{'\n'})
	s.tail = append([]byte(nil), tee.buf[end:]...)
	if opts.OnHeader != nil {
		if err := opts.OnHeader(slices.Clone(header)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// teeReader keeps every byte it reads (only the header goes through it).
type teeReader struct {
	r   io.Reader
	buf []byte
	err error
}

func (t *teeReader) Read(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	n, err := t.r.Read(p)
	t.buf = append(t.buf, p[:n]...)
	t.err = err
	return n, err
}

// Header returns the header row (the splitter's; do not modify it).
func (s *CSVSplitter) Header() []string { return s.header }

// Next returns the next chunk, in buf's memory when it is large enough
// (the chunk is the caller's until it passes buf in again), or io.EOF
// after the last chunk. A chunk with Err set is the last.
func (s *CSVSplitter) Next(buf []byte) (CSVChunk, error) {
	if s.done {
		return CSVChunk{}, io.EOF
	}
	target := s.size
	maxRec := int(min(s.lim.MaxRecordBytes+csvReadSlack, int64(^uint(0)>>2)))
	buf = append(buf[:0], s.tail...)
	// Each read adds at least step bytes (tests cut chunks of a few).
	step := min(s.size, 4096)
	for {
		if target < len(buf)+step {
			target = len(buf) + step
		}
		if cap(buf) < target {
			buf = append(make([]byte, 0, target), buf...)
		}
		for len(buf) < target && s.srcErr == nil {
			n, err := s.src.Read(buf[len(buf):target])
			buf = buf[:len(buf)+n]
			if err != nil {
				s.srcErr = err
			}
		}
		if s.srcErr != nil {
			// The input ended: what is left is the last chunk.
			s.done = true
			c := CSVChunk{Data: buf, Line: s.line}
			if s.srcErr != io.EOF {
				c.Err = s.srcErr
			} else if len(buf) == 0 {
				return CSVChunk{}, io.EOF
			}
			return c, nil
		}
		if end := lastRecordEnd(buf); end > 0 {
			c := CSVChunk{Data: buf[:end], Line: s.line}
			s.tail = append(s.tail[:0], buf[end:]...)
			s.line += bytes.Count(c.Data, []byte{'\n'})
			return c, nil
		}
		// One record longer than the block: read on, up to the limit.
		if len(buf) > maxRec {
			s.done = true
			return CSVChunk{Data: buf, Line: s.line, Err: &LimitError{Key: KeyMaxRecordBytes, Limit: s.lim.MaxRecordBytes}}, nil
		}
		target = min(2*len(buf), maxRec+1)
	}
}

// lastRecordEnd returns the offset just past the last newline outside
// quotes in b (which starts at a record boundary), moved back over blank
// lines before it, or 0 when b holds no such newline.
func lastRecordEnd(b []byte) int {
	last, in, i := -1, false, 0
	for {
		q := bytes.IndexByte(b[i:], '"')
		seg := b[i:]
		if q >= 0 {
			seg = seg[:q]
		}
		if !in {
			if j := bytes.LastIndexByte(seg, '\n'); j >= 0 {
				last = i + j
			}
		}
		if q < 0 {
			break
		}
		i += q + 1
		in = !in
	}
	if last < 0 {
		return 0
	}
	end := last + 1
	for {
		p := end - 1 // a '\n' outside quotes
		if p > 0 && b[p-1] == '\r' {
			p--
		}
		if p == 0 {
			return last + 1 // nothing but blank lines: keep them
		}
		if b[p-1] != '\n' {
			return end
		}
		end = p // the line before the newline is blank
	}
}

// NewParser returns a parser of this splitter's chunks. Each goroutine
// needs its own.
func (s *CSVSplitter) NewParser() *CSVParser {
	d := []byte(string(s.delim))
	return &CSVParser{delim: s.delim, dbytes: d, header: s.header, lim: s.lim}
}

// CSVParser parses the chunks of one CSVSplitter. It is not safe for
// concurrent use; it may be used for any number of chunks.
type CSVParser struct {
	delim   rune
	dbytes  []byte
	header  []string
	lim     Limits
	fields  [][]byte
	scratch []byte
	strs    [][]byte

	// end is the offset in the chunk just past the record being
	// delivered (its line end), for the caller to count its bytes.
	end int
	// numbered sets Record, counted from 1 at the chunk's first record,
	// on the errors about one whole record (its field count, invalid
	// UTF-8), for a caller that renumbers them (the CSV load).
	numbered bool
}

// Parse calls fn for each record of c, in order, with the line where the
// record starts and its fields in header order (one per header column;
// valid only during the call, and not to be modified). base is the number
// of data records before c in the object, or -1 when unknown: then the
// record limit is not checked, and the caller adds up the counts in order
// and parses a chunk again with its base where NeedsBase says so. Parse
// returns the number of records it delivered.
//
// Errors are located by line (see CSVSplitter), and an error of fn is
// returned unchanged. fn is called once per record: when a chunk is not
// plainly valid it is parsed a second time from its start, to locate the
// first error exactly, and fn only sees the records it has not seen yet.
func (p *CSVParser) Parse(c CSVChunk, base int64, fn func(line int, fields [][]byte) error) (int64, error) {
	var done int64
	if c.Err == nil && utf8.Valid(c.Data) {
		n, ok, err := p.fast(c, base, fn)
		if ok {
			return n, err
		}
		done = n
	}
	return p.exact(c, base, done, fn)
}

// NeedsBase reports whether a chunk that Parse returned n records and err
// for, with base -1, must be parsed again with its base to check the
// record limit: whether the limit may be passed at or before the place
// where it stopped.
func (p *CSVParser) NeedsBase(base, n int64, err error) bool {
	return base+n > p.lim.MaxRecords || (err != nil && base+n >= p.lim.MaxRecords)
}

// fast parses a chunk of valid UTF-8 that ends with the object or at a
// record boundary. It reports ok == false, without an error, at the first
// thing it does not accept (syntax, field count, a limit); exact then
// finds the error. An error from fn is exact, since every record before
// it was plainly valid.
func (p *CSVParser) fast(c CSVChunk, base int64, fn func(int, [][]byte) error) (n int64, ok bool, err error) {
	data := c.Data
	nf := len(p.header)
	line := c.Line
	pos, prevEnd := 0, 0
	dlen := len(p.dbytes)
	d0 := p.dbytes[0]
	maxRec, maxField := p.lim.MaxRecordBytes, p.lim.MaxFieldBytes
	for pos < len(data) {
		// Blank lines ("\n", "\r\n", a lone "\r" at the end) are skipped.
		switch {
		case data[pos] == '\n':
			pos++
			line++
			continue
		case data[pos] == '\r' && (pos+1 == len(data) || data[pos+1] == '\n'):
			pos += 2
			line++
			continue
		}
		recLine := line
		fields := p.fields[:0]
		p.scratch = p.scratch[:0]
		f := pos // start of the current field
	record:
		for {
			if f < len(data) && data[f] == '"' {
				// Quoted field.
				start, q := f+1, f+1
				escaped := false
				for {
					i := bytes.IndexByte(data[q:], '"')
					if i < 0 {
						return n, false, nil // not closed in this chunk
					}
					q += i
					if q+1 < len(data) && data[q+1] == '"' {
						escaped = true
						q += 2
						continue
					}
					break
				}
				content := data[start:q]
				if nl := bytes.Count(content, []byte{'\n'}); nl > 0 {
					line += nl
					if bytes.IndexByte(content, '\r') >= 0 {
						escaped = true
					}
				}
				if escaped {
					content = p.unescape(content)
				}
				fields = append(fields, content)
				after := q + 1
				switch {
				case after == len(data):
					pos = after
					break record
				case data[after] == d0 && (dlen == 1 || bytes.HasPrefix(data[after:], p.dbytes)):
					f = after + dlen
				case data[after] == '\n':
					pos = after + 1
					line++
					break record
				case data[after] == '\r' && after+1 == len(data):
					pos = after + 1
					break record
				case data[after] == '\r' && data[after+1] == '\n':
					pos = after + 2
					line++
					break record
				default:
					return n, false, nil // `"x` after a closing quote
				}
				continue
			}
			// Unquoted fields to the end of the line, or up to a quoted one.
			eol := bytes.IndexByte(data[f:], '\n')
			next := len(data)
			if eol >= 0 {
				eol += f
				next = eol + 1
			} else {
				eol = len(data)
			}
			end := eol
			if end > f && data[end-1] == '\r' {
				end-- // "\r\n" is a line end, and so is a final "\r"
			}
			rest := data[f:end]
			if bytes.IndexByte(rest, '"') < 0 {
				for {
					i := bytes.IndexByte(rest, d0)
					if dlen > 1 {
						i = bytes.Index(rest, p.dbytes)
					}
					if i < 0 {
						fields = append(fields, rest)
						break
					}
					fields = append(fields, rest[:i])
					rest = rest[i+dlen:]
				}
				pos = next
				if eol < len(data) {
					line++
				}
				break record
			}
			// The line holds a quote: take one unquoted field and look again.
			i := bytes.IndexByte(rest, d0)
			if dlen > 1 {
				i = bytes.Index(rest, p.dbytes)
			}
			if i < 0 {
				return n, false, nil // a bare quote in the last field
			}
			if bytes.IndexByte(rest[:i], '"') >= 0 {
				return n, false, nil // a bare quote
			}
			fields = append(fields, rest[:i])
			f += i + dlen
		}
		p.fields = fields
		if len(fields) != nf || int64(pos-prevEnd) > maxRec {
			return n, false, nil
		}
		for _, v := range fields {
			if int64(len(v)) > maxField {
				return n, false, nil
			}
		}
		if base >= 0 && base+n+1 > p.lim.MaxRecords {
			return n, false, nil
		}
		n++
		prevEnd = pos
		p.end = pos
		if err := fn(recLine, fields); err != nil {
			return n, true, err
		}
	}
	return n, true, nil
}

// unescape returns a quoted field's content with "" as " and "\r\n" as
// "\n", as encoding/csv reads it, in p.scratch.
func (p *CSVParser) unescape(b []byte) []byte {
	start := len(p.scratch)
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '"' && i+1 < len(b) && b[i+1] == '"':
			p.scratch = append(p.scratch, '"')
			i++
		case b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n':
		default:
			p.scratch = append(p.scratch, b[i])
		}
	}
	return p.scratch[start:len(p.scratch):len(p.scratch)]
}

// exact parses c with encoding/csv and the checks of every record, so
// that errors are located exactly (the fast pass only sees that there is
// one); fn is not called for the first skip records (the fast pass
// delivered them).
func (p *CSVParser) exact(c CSVChunk, base, skip int64, fn func(int, [][]byte) error) (int64, error) {
	var src io.Reader = bytes.NewReader(c.Data)
	if c.Err != nil {
		src = io.MultiReader(src, &failReader{c.Err})
	}
	cr := csv.NewReader(src)
	cr.Comma = p.delim
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	off := c.Line - 1
	lastLine, lastField := c.Line-1, ""
	var end int64
	for n := int64(1); ; n++ {
		fields, err := cr.Read()
		if err == io.EOF {
			return n - 1, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				moved := *pe
				moved.Line += off
				moved.StartLine += off
				return n - 1, csvErr(&moved)
			}
			return n - 1, &RecordError{Line: lastLine + strings.Count(lastField, "\n") + 1, Err: err}
		}
		line, _ := cr.FieldPos(0)
		line += off
		if base >= 0 && base+n > p.lim.MaxRecords {
			return n - 1, &RecordError{Line: line, Err: &LimitError{Key: KeyMaxRecords, Limit: p.lim.MaxRecords}}
		}
		prev := end
		end = cr.InputOffset()
		if err := checkRecordLimits(cr, p.lim, fields, p.header, prev, end, off); err != nil {
			return n - 1, err
		}
		lastLine, _ = cr.FieldPos(len(fields) - 1)
		lastLine += off
		lastField = fields[len(fields)-1]
		rec := 0
		if p.numbered {
			rec = int(n)
		}
		if len(fields) != len(p.header) {
			return n - 1, &RecordError{Record: rec, Line: line, Err: fmt.Errorf("%s, header has %d", plural(len(fields), "field"), len(p.header))}
		}
		p.strs = p.strs[:0]
		for i, v := range fields {
			if !utf8.ValidString(v) {
				at, _ := cr.FieldPos(i)
				return n - 1, &RecordError{Record: rec, Line: at + off, Column: p.header[i], Err: errors.New("not valid UTF-8; convert the file to UTF-8")}
			}
			p.strs = append(p.strs, unsafe.Slice(unsafe.StringData(v), len(v)))
		}
		if n <= skip {
			continue
		}
		p.end = int(end)
		if err := fn(line, p.strs); err != nil {
			return n, err
		}
	}
}

// checkRecordLimits checks the sizes of the record cr just returned,
// which ends at input offset end (prev: where the one before ended); off
// is added to cr's line numbers.
func checkRecordLimits(cr *csv.Reader, lim Limits, fields, names []string, prev, end int64, off int) error {
	line, _ := cr.FieldPos(0)
	if end-prev > lim.MaxRecordBytes {
		return &RecordError{Line: line + off, Err: &LimitError{Key: KeyMaxRecordBytes, Limit: lim.MaxRecordBytes}}
	}
	for i, v := range fields {
		if int64(len(v)) > lim.MaxFieldBytes {
			at, _ := cr.FieldPos(i)
			col := ""
			if i < len(names) {
				col = names[i]
			}
			return &RecordError{Line: at + off, Column: col, Err: &LimitError{Key: KeyMaxFieldBytes, Limit: lim.MaxFieldBytes}}
		}
	}
	return nil
}

// failReader fails every read with err.
type failReader struct{ err error }

func (f *failReader) Read([]byte) (int, error) { return 0, f.err }

// csvReadSlack is how far encoding/csv may read ahead of the record it
// has returned: its bufio.Reader's buffer (4 KiB), with room to spare.
const csvReadSlack = 64 << 10

// recordLimitReader feeds encoding/csv, which gathers a whole record in
// memory, and fails with a *LimitError for KeyMaxRecordBytes once it
// would return more than max bytes past mark, the input offset where the
// last complete record ended. So a record far longer than the limit (a
// 1 GiB field) is refused after about max bytes, not held.
type recordLimitReader struct {
	r    io.Reader
	n    int64 // bytes returned so far
	mark int64
	max  int64
}

func (l *recordLimitReader) Read(p []byte) (int, error) {
	rem := l.mark + l.max - l.n
	if rem <= 0 {
		return 0, &LimitError{Key: KeyMaxRecordBytes, Limit: l.max - csvReadSlack}
	}
	if int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	return n, err
}

// checkHeader copies the header row and checks its names.
func checkHeader(cr *csv.Reader, head []string) ([]string, error) {
	header := make([]string, len(head))
	seen := make(map[string]int, len(head))
	for i, name := range head {
		line, _ := cr.FieldPos(i)
		switch j, dup := seen[name]; {
		case !utf8.ValidString(name):
			return nil, &RecordError{Line: line, Err: fmt.Errorf("header field %d is not valid UTF-8; convert the file to UTF-8", i+1)}
		case strings.TrimSpace(name) == "":
			return nil, &RecordError{Line: line, Err: fmt.Errorf("header field %d has an empty name; every column needs a name", i+1)}
		case dup:
			return nil, &RecordError{Line: line, Column: name, Err: fmt.Errorf("duplicate header name (fields %d and %d)", j+1, i+1)}
		}
		seen[name] = i
		header[i] = name
	}
	return header, nil
}

// csvErr turns an encoding/csv error into a *RecordError.
func csvErr(err error) error {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return &RecordError{Err: err}
	}
	switch {
	case errors.Is(pe.Err, csv.ErrBareQuote):
		return &RecordError{Line: pe.Line, Err: fmt.Errorf(`bare " in an unquoted field (character %d); quote the whole field and double the quotes inside it`, pe.Column)}
	case errors.Is(pe.Err, csv.ErrQuote):
		where := ""
		if pe.StartLine != pe.Line {
			where = fmt.Sprintf("; the record starts on line %d", pe.StartLine)
		}
		return &RecordError{Line: pe.Line, Err: fmt.Errorf(`extraneous or missing " in a quoted field (character %d)%s; a quoted field must close with " right before a delimiter or line end`, pe.Column, where)}
	}
	return &RecordError{Line: pe.Line, Err: pe.Err}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
