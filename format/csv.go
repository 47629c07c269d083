package format

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// CSVOptions configures DecodeCSV. The zero value reads comma-separated
// values.
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

// DecodeCSV reads a header row and then data records (RFC 4180: quoted
// fields may hold delimiters, doubled quotes and newlines) and calls fn for
// each record, in order, with Record{N: 1 for the first data row, Line: the
// 1-based line where the record starts, Fields: header name → string
// value}. Input that starts with the gzip magic bytes is
// decompressed first; a UTF-8 byte order mark is skipped; CRLF line ends,
// blank lines and a missing final newline are fine. A file with a header
// and no rows is zero records (see CSVOptions.OnHeader to see its header).
//
// Errors about the data are *RecordError with Line (and Column where one
// value is at fault), and Record 0: an empty file, empty or duplicate
// header names, a row whose field count differs from the header's, a bare
// or unbalanced quote, invalid UTF-8. An error returned by fn or OnHeader
// stops decoding and is returned unchanged. An invalid delimiter is a
// plain error.
//
// opts.Limits are checked while reading: encoding/csv gathers a whole
// record in memory, so DecodeCSV feeds it through a reader that fails once
// the record being read is longer than MaxRecordBytes (plus a small read
// buffer). A 1 GiB field is refused after about MaxRecordBytes of it. A
// broken limit is a *RecordError (Line: where the record starts; Column:
// for MaxFieldBytes) wrapping a *LimitError that names the spec key.
func DecodeCSV(r io.Reader, opts CSVOptions, fn func(rec Record) error) error {
	delim := opts.Delimiter
	if delim == 0 {
		delim = ','
	}
	if delim == '"' || delim == '\r' || delim == '\n' || delim == utf8.RuneError || !utf8.ValidRune(delim) {
		return fmt.Errorf("format: invalid CSV delimiter %q", delim)
	}
	lim, err := opts.Limits.withDefaults()
	if err != nil {
		return err
	}
	src, _, err := openInput(r, lim.MaxObjectBytes)
	if err != nil {
		return err
	}
	rl := &recordLimitReader{r: src, max: lim.MaxRecordBytes + csvReadSlack}
	cr := csv.NewReader(rl)
	cr.Comma = delim
	cr.FieldsPerRecord = -1 // checked below, with a clearer message
	cr.ReuseRecord = true

	// Where the last record ended: the line of its last field and that
	// field (which may span lines), for locating a record that fails
	// before encoding/csv returns it.
	lastLine, lastField := 0, ""
	nextLine := func() int { return lastLine + strings.Count(lastField, "\n") + 1 }
	// checkLimits checks the record cr just returned, which ends at input
	// offset end; prev is where the one before it ended.
	checkLimits := func(fields, names []string, prev, end int64) error {
		line, _ := cr.FieldPos(0)
		if end-prev > lim.MaxRecordBytes {
			return &RecordError{Line: line, Err: &LimitError{Key: KeyMaxRecordBytes, Limit: lim.MaxRecordBytes}}
		}
		for i, v := range fields {
			if int64(len(v)) > lim.MaxFieldBytes {
				at, _ := cr.FieldPos(i)
				col := ""
				if i < len(names) {
					col = names[i]
				}
				return &RecordError{Line: at, Column: col, Err: &LimitError{Key: KeyMaxFieldBytes, Limit: lim.MaxFieldBytes}}
			}
		}
		return nil
	}
	readErr := func(err error) error {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return csvErr(err)
		}
		return &RecordError{Line: nextLine(), Err: err}
	}

	head, err := cr.Read()
	if err == io.EOF {
		return &RecordError{Err: errors.New("empty file: no header row")}
	}
	if err != nil {
		return readErr(err)
	}
	end := cr.InputOffset()
	if err := checkLimits(head, nil, 0, end); err != nil {
		return err
	}
	rl.mark = end
	lastLine, _ = cr.FieldPos(len(head) - 1)
	lastField = head[len(head)-1]
	header, err := checkHeader(cr, head)
	if err != nil {
		return err
	}
	if opts.OnHeader != nil {
		if err := opts.OnHeader(slices.Clone(header)); err != nil {
			return err
		}
	}
	for n := 1; ; n++ {
		fields, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return readErr(err)
		}
		line, _ := cr.FieldPos(0)
		if int64(n) > lim.MaxRecords {
			return &RecordError{Line: line, Err: &LimitError{Key: KeyMaxRecords, Limit: lim.MaxRecords}}
		}
		prev := end
		end = cr.InputOffset()
		if err := checkLimits(fields, header, prev, end); err != nil {
			return err
		}
		rl.mark = end
		lastLine, _ = cr.FieldPos(len(fields) - 1)
		lastField = fields[len(fields)-1]
		if len(fields) != len(header) {
			return &RecordError{Line: line, Err: fmt.Errorf("%s, header has %d", plural(len(fields), "field"), len(header))}
		}
		rec := Record{N: n, Line: line, Fields: make(map[string]any, len(header))}
		for i, v := range fields {
			if !utf8.ValidString(v) {
				at, _ := cr.FieldPos(i)
				return &RecordError{Line: at, Column: header[i], Err: errors.New("not valid UTF-8; convert the file to UTF-8")}
			}
			rec.Fields[header[i]] = v
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
}

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
