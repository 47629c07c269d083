package format

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/schema"
)

func init() { decoders[InputCSV] = decodeCSVBatches }

// decodeCSVBatches loads a CSV object (a header row, then records; RFC
// 4180) into typed batches: each declared column takes the header field
// named by its Field, and each value is cast as the curate job casts CSV
// values (CastString; see appendCast), straight into the column's
// vector. It reads the input as DecodeCSV does — gzip and zstd
// decompressed, a byte order mark skipped, CRLF, quoted fields across
// lines, every Limit checked while reading — but keeps no map and no
// []any per record.
//
// The empty string is NULL for every type, text included, as in curate.
// A Required column that is empty, or absent from the header, rejects
// the record. Columns with a nested path are an error: CSV has none.
//
// Header policies (MapperOptions), applied as the JSON decoder applies
// them to fields, with the header deciding for every record at once:
//   - OnMissing: a declared field absent from the header is NULL in every
//     record and listed in Report.Missing (warn), or fails the object at
//     its first record (error).
//   - Extra: header fields no column takes are dropped (ignore), dropped
//     and listed in Report.Extra (warn), reject every record (error), or
//     kept per record as one JSON object of header → string, an empty
//     value as null, in the extra column (json).
//
// A rejected record (a value that does not cast, a required value that
// is NULL, an undeclared field with extra: error) becomes a
// schema.Reject whose Raw is the record as a JSON object of header →
// string when o.Quarantine is set, and otherwise stops the object with
// an error matching ErrRejected and wrapping a *RecordError that names
// the record, its line and the column. Errors about the file itself
// (quotes, field counts, encoding, limits) are *RecordError and stop the
// object whatever the options.
func decodeCSVBatches(ctx context.Context, r io.Reader, o *ReadOptions, s *sink) (Report, error) {
	cols := o.Mapper.Columns()
	opts := o.Mapper.Options()
	types := o.Mapper.Schema()
	extraCol := -1
	for j, c := range cols {
		switch {
		case opts.ExtraColumn != "" && c.Name == opts.ExtraColumn:
			extraCol = j
		case len(c.Path) > 1:
			return Report{}, fmt.Errorf("format: column %q takes the nested path %q, but CSV records are flat; name a header field instead", c.Name, strings.Join(c.Path, "."))
		}
	}
	sc, err := newCSVScanner(r, o.Delimiter, o.Limits)
	if err != nil {
		return Report{}, err
	}

	// Map the header: per column the field it takes (-1: absent), and
	// the header fields no column takes.
	byName := make(map[string]int, len(sc.header))
	for i, h := range sc.header {
		byName[h] = i
	}
	src := make([]int, len(cols))
	taken := make([]bool, len(sc.header))
	var missing []string
	for j, c := range cols {
		src[j] = -1
		if j == extraCol {
			continue
		}
		if i, ok := byName[c.Field]; ok {
			src[j], taken[i] = i, true
		} else {
			missing = append(missing, c.Field)
		}
	}
	var extras []int // header indexes no column takes
	if opts.Extra != ExtraIgnore {
		for i := range sc.header {
			if !taken[i] {
				extras = append(extras, i)
			}
		}
	}

	rep := Report{}
	var raw, extraBuf []byte
	for n := int64(1); ; n++ {
		fields, line, size, err := sc.next(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return rep, err
		}
		if n == 1 {
			if len(missing) > 0 && opts.OnMissing == MissingError {
				return rep, &RecordError{Line: 1, Column: missing[0], Err: fmt.Errorf("the declared field is not in the header (%s); check its spelling in the spec, or set on_missing to warn", strings.Join(sc.header, ", "))}
			}
			for _, i := range extras {
				rep.Extra = append(rep.Extra, ExtraField{Field: sc.header[i], Record: 1, Line: line})
			}
		}
		rep.Records++
		b, err := s.Batch()
		if err != nil {
			return rep, err
		}
		row := b.Len()
		var bad *RecordError
		for j := range cols {
			v := &b.Vecs[j]
			if j == extraCol {
				if len(extras) == 0 {
					v.AppendNull()
					continue
				}
				extraBuf = appendCSVObject(extraBuf[:0], sc.header, fields, extras, true)
				v.AppendText(extraBuf)
				continue
			}
			i := src[j]
			if i < 0 || fields[i] == "" {
				if cols[j].Required {
					what := "missing from the header"
					if i >= 0 {
						what = "empty (NULL)"
					}
					bad = &RecordError{Record: int(n), Line: line, Column: cols[j].Field, Err: fmt.Errorf("required field is %s", what)}
					break
				}
				v.AppendNull()
				continue
			}
			if err := appendCast(v, types[j].Type, fields[i]); err != nil {
				at, _ := sc.cr.FieldPos(i)
				bad = &RecordError{Record: int(n), Line: at, Column: cols[j].Field, Err: err}
				break
			}
		}
		if bad == nil && opts.Extra == ExtraError && len(extras) > 0 {
			bad = &RecordError{Record: int(n), Line: line, Column: sc.header[extras[0]],
				Err: errors.New("the field is not declared; declare it as a column, or set extra to ignore, warn or json")}
		}
		b.Bytes += size
		if bad != nil {
			for j := range b.Vecs {
				b.Vecs[j].Truncate(row)
			}
			if !o.Quarantine {
				return rep, &rejectError{bad}
			}
			raw = appendCSVObject(raw[:0], sc.header, fields, nil, false)
			b.Rejects = append(b.Rejects, schema.Reject{N: n, Line: int64(line), Reason: rejectReason(bad, cols, types), Raw: string(raw)})
			continue
		}
		b.EndRow(n, int64(line))
	}
	if rep.Records > 0 {
		rep.Missing = missing
	}
	if extraCol >= 0 {
		rep.ExtraColumn = cols[extraCol].Name
	}
	if opts.Extra == ExtraIgnore {
		rep.Extra = nil
	}
	return rep, nil
}


// rejectReason is a schema.Reject's Reason for re: the column, its type
// and what is wrong, e.g. `column id (bigint): want bigint, got "x"`.
func rejectReason(re *RecordError, cols []Column, types []schema.Column) string {
	for j, c := range cols {
		if c.Field == re.Column || strings.Join(c.Path, ".") == re.Column {
			return fmt.Sprintf("column %s (%s): %v", re.Column, types[j].Type, re.Err)
		}
	}
	if re.Column != "" {
		return fmt.Sprintf("column %s: %v", re.Column, re.Err)
	}
	return re.Err.Error()
}

// appendCSVObject appends a JSON object of header[i] → fields[i] for the
// indexes idx (all fields when idx is nil); with emptyNull an empty value
// is null, otherwise "".
func appendCSVObject(dst []byte, header, fields []string, idx []int, emptyNull bool) []byte {
	dst = append(dst, '{')
	put := func(k int, i int) {
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONText(dst, header[i])
		dst = append(dst, ':')
		if emptyNull && fields[i] == "" {
			dst = append(dst, "null"...)
		} else {
			dst = appendJSONText(dst, fields[i])
		}
	}
	if idx == nil {
		for i := range header {
			put(i, i)
		}
	} else {
		for k, i := range idx {
			put(k, i)
		}
	}
	return append(dst, '}')
}

// appendJSONText appends s, valid UTF-8, as a JSON string: quotes,
// backslashes and control characters escaped, nothing else (no HTML
// escaping, as the mapper's json casts).
func appendJSONText(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendCast casts the CSV value s (not empty) to t and appends it to v,
// with CastString's rules and messages, without boxing the value.
// Unlike CastString it also refuses a NUL character in text and json
// (PostgreSQL cannot store one; the mapper refuses it too).
func appendCast(v *schema.Vector, t schema.Type, s string) error {
	switch t {
	case schema.Text:
		if strings.IndexByte(s, 0) >= 0 {
			return fmt.Errorf("text %w", errNULChar)
		}
		v.AppendString(s)
	case schema.Integer, schema.BigInt:
		bits := 64
		if t == schema.Integer {
			bits = 32
		}
		n, err := strconv.ParseInt(s, 10, bits)
		if err != nil {
			return castFailed(t, s, err)
		}
		v.AppendInt(n)
	case schema.Real, schema.Double:
		bits := 64
		if t == schema.Real {
			bits = 32
		}
		f, err := strconv.ParseFloat(s, bits)
		if err == nil && (math.IsInf(f, 0) || math.IsNaN(f)) {
			err = errInfinite
		}
		if err != nil {
			return castFailed(t, s, err)
		}
		v.AppendFloat(f)
	case schema.Boolean:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return castFailed(t, s, nil)
		}
		v.AppendBool(b)
	case schema.Date:
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return fmt.Errorf("want date (YYYY-MM-DD), got %s", quoteValue(s))
		}
		v.AppendTime(d)
	case schema.Timestamp:
		ts, ok := parseTimestamp(s)
		if !ok {
			return fmt.Errorf("want timestamp (RFC 3339, e.g. 2006-01-02T15:04:05Z), got %s", quoteValue(s))
		}
		v.AppendTime(ts)
	case schema.JSON:
		if !json.Valid([]byte(s)) {
			return fmt.Errorf("want json, got %s (not valid JSON)", quoteValue(s))
		}
		if strings.Contains(s, `\u0000`) {
			return fmt.Errorf("json %w", errNULChar)
		}
		v.AppendString(s)
	default:
		return fmt.Errorf("unknown column type %q", t)
	}
	return nil
}

// errNULChar refuses NUL characters in text and json values, as the
// mapper does: PostgreSQL cannot store them.
var errNULChar = errors.New("contains a NUL character (\\u0000), which PostgreSQL cannot store")

// errInfinite refuses NaN and infinities, as CastString does.
var errInfinite = errors.New("not finite")

// timestampLayouts are the zone-less layouts CastString reads as UTC.
var timestampLayouts = []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"}

// parseTimestamp parses a timestamp as CastString does: RFC 3339, or a
// zone-less layout read as UTC.
func parseTimestamp(s string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), true
	}
	for _, layout := range timestampLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// castFailed is CastString's message for a value s that is not a t; err
// adds "out of range" or "not finite" when that is the reason.
func castFailed(t schema.Type, s string, err error) error {
	switch {
	case errors.Is(err, strconv.ErrRange):
		return fmt.Errorf("want %s, got %s (out of range)", t, quoteValue(s))
	case errors.Is(err, errInfinite):
		return fmt.Errorf("want %s, got %s (not finite)", t, quoteValue(s))
	}
	return fmt.Errorf("want %s, got %s", t, quoteValue(s))
}

// quoteValue quotes a value for a message, cut to 40 characters.
func quoteValue(s string) string {
	const limit = 40
	n := 0
	for i := range s {
		if n == limit {
			return strconv.Quote(s[:i] + "…")
		}
		n++
	}
	return strconv.Quote(s)
}

// csvScanner reads a CSV object's header and then its records with
// encoding/csv, checking every Limit and locating every error by line,
// as DecodeCSV does.
type csvScanner struct {
	cr     *csv.Reader
	rl     *recordLimitReader
	lim    Limits
	header []string
	end    int64 // input offset where the last record ended
	// The line of the last record's last field and that field (which may
	// span lines), for locating a record that fails before encoding/csv
	// returns it.
	lastLine  int
	lastField string
}

// newCSVScanner opens r (gzip, zstd, byte order mark) and reads and
// checks the header row.
func newCSVScanner(r io.Reader, delim rune, limits Limits) (*csvScanner, error) {
	if delim == 0 {
		delim = ','
	}
	if delim == '"' || delim == '\r' || delim == '\n' || delim == utf8.RuneError || !utf8.ValidRune(delim) {
		return nil, fmt.Errorf("format: invalid CSV delimiter %q", delim)
	}
	lim, err := limits.withDefaults()
	if err != nil {
		return nil, err
	}
	in, _, err := openInput(r, lim.MaxObjectBytes)
	if err != nil {
		return nil, err
	}
	sc := &csvScanner{lim: lim, rl: &recordLimitReader{r: in, max: lim.MaxRecordBytes + csvReadSlack}}
	sc.cr = csv.NewReader(sc.rl)
	sc.cr.Comma = delim
	sc.cr.FieldsPerRecord = -1 // checked in next, with a clearer message
	sc.cr.ReuseRecord = true
	head, err := sc.cr.Read()
	if err == io.EOF {
		return nil, &RecordError{Err: errors.New("empty file: no header row")}
	}
	if err != nil {
		return nil, sc.readErr(err)
	}
	if err := sc.checkLimits(head, nil); err != nil {
		return nil, err
	}
	if sc.header, err = checkHeader(sc.cr, head); err != nil {
		return nil, err
	}
	return sc, nil
}

// next returns record n (1: the first after the header): its fields
// (valid until the next call), the line where it starts and the bytes it
// took; io.EOF after the last.
func (sc *csvScanner) next(n int64) (fields []string, line int, size int64, err error) {
	fields, err = sc.cr.Read()
	if err == io.EOF {
		return nil, 0, 0, io.EOF
	}
	if err != nil {
		return nil, 0, 0, sc.readErr(err)
	}
	line, _ = sc.cr.FieldPos(0)
	if n > sc.lim.MaxRecords {
		return nil, 0, 0, &RecordError{Line: line, Err: &LimitError{Key: KeyMaxRecords, Limit: sc.lim.MaxRecords}}
	}
	prev := sc.end
	if err := sc.checkLimits(fields, sc.header); err != nil {
		return nil, 0, 0, err
	}
	if len(fields) != len(sc.header) {
		return nil, 0, 0, &RecordError{Record: int(n), Line: line, Err: fmt.Errorf("%s, header has %d", plural(len(fields), "field"), len(sc.header))}
	}
	for i, v := range fields {
		if !utf8.ValidString(v) {
			at, _ := sc.cr.FieldPos(i)
			return nil, 0, 0, &RecordError{Record: int(n), Line: at, Column: sc.header[i], Err: errors.New("not valid UTF-8; convert the file to UTF-8")}
		}
	}
	return fields, line, sc.end - prev, nil
}

// checkLimits checks the record encoding/csv just returned and moves the
// record limit's mark past it.
func (sc *csvScanner) checkLimits(fields, names []string) error {
	line, _ := sc.cr.FieldPos(0)
	prev, end := sc.end, sc.cr.InputOffset()
	if end-prev > sc.lim.MaxRecordBytes {
		return &RecordError{Line: line, Err: &LimitError{Key: KeyMaxRecordBytes, Limit: sc.lim.MaxRecordBytes}}
	}
	for i, v := range fields {
		if int64(len(v)) > sc.lim.MaxFieldBytes {
			at, _ := sc.cr.FieldPos(i)
			col := ""
			if i < len(names) {
				col = names[i]
			}
			return &RecordError{Line: at, Column: col, Err: &LimitError{Key: KeyMaxFieldBytes, Limit: sc.lim.MaxFieldBytes}}
		}
	}
	sc.end, sc.rl.mark = end, end
	sc.lastLine, _ = sc.cr.FieldPos(len(fields) - 1)
	sc.lastField = fields[len(fields)-1]
	return nil
}

// readErr turns an error of encoding/csv or of the input into a
// *RecordError.
func (sc *csvScanner) readErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return csvErr(err)
	}
	return &RecordError{Line: sc.lastLine + strings.Count(sc.lastField, "\n") + 1, Err: err}
}
