package format

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sluicehq/sluice/schema"
)

func init() { decoders[InputCSV] = decodeCSVBatches }

// decodeCSVBatches loads a CSV object (a header row, then records; RFC
// 4180) into typed batches: each declared column takes the header field
// named by its Field, and each value is cast as the curate job casts CSV
// values (Caster, with loadCaster's refusal of NUL), straight from the
// field's bytes into the column's vector. It reads the input with
// CSVSplitter and CSVParser — gzip and zstd decompressed, a byte order
// mark skipped, CRLF, quoted fields across lines, every Limit checked
// while reading — and keeps no map and no []any per record.
//
// Parallelism: the splitter cuts the object into chunks of whole records
// (quote-aware, in order, in one goroutine), ReadOptions.Workers
// goroutines parse and cast the chunks into batches of their own, and the
// batches are handed over in input order, their record numbers counted
// from the object's first record once the records of the chunks before
// are known. A batch never spans two chunks, so the batches, rejects and
// errors are the same whatever Workers is (a test holds 1 to 4). A chunk
// in which the record limit may be passed is parsed again, in order, with
// the count before it, so the limit stops at the same record as a serial
// read. Memory: Workers+1 chunks (1 MiB, or one longer record) and their
// batches.
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
// the record, the line of the value and the column. Errors about the
// file itself (quotes, field counts, encoding, limits) are *RecordError
// and stop the object whatever the options; those about one whole record
// (its field count, invalid UTF-8) name the record too.
func decodeCSVBatches(ctx context.Context, r io.Reader, o *ReadOptions, s *sink) (Report, error) {
	cl, err := newCSVLoad(r, o)
	if err != nil {
		return Report{}, err
	}
	size := o.chunkSize()
	produce := func(send func(*csvChunk) error) error {
		for {
			var buf []byte
			if size == serialBuffer {
				buf = getReadBuf()
			}
			c, err := cl.split.Next(buf)
			if err == io.EOF {
				putReadBuf(buf)
				return nil
			}
			ch := &csvChunk{chunk: c, chunkBatches: chunkBatches{rows: o.BatchRows, pool: s.pool}}
			if err := send(ch); err != nil {
				return err
			}
			if c.Err != nil {
				return nil // the input stopped; the chunk reports why
			}
		}
	}
	work := func(ch *csvChunk) { cl.parse(ch, -1) }

	var rep Report
	var base int64 // records before the chunk
	limit := cl.split.NewParser()
	consume := func(ch *csvChunk) error {
		if limit.NeedsBase(base, ch.records, ch.err) {
			ch.release()
			cl.parse(ch, base)
		}
		ch.renumber(base, ch.err)
		if base == 0 && ch.records > 0 {
			// The header's findings, at the object's first record.
			if len(cl.missing) > 0 && cl.opts.OnMissing == MissingError {
				ch.release()
				return &RecordError{Line: 1, Column: cl.missing[0], Err: fmt.Errorf("the declared field is not in the header (%s); check its spelling in the spec, or set on_missing to warn", strings.Join(cl.header, ", "))}
			}
			for _, i := range cl.extras {
				rep.Extra = append(rep.Extra, ExtraField{Field: cl.header[i], Record: 1, Line: ch.firstLine})
			}
		}
		if err := ch.sendTo(s); err != nil {
			return err
		}
		base += ch.records
		putReadBuf(ch.chunk.Data)
		return ch.err
	}
	if err := ordered(ctx, o.Workers, o.Workers+1, produce, work, consume); err != nil {
		return Report{}, err
	}
	rep.Records = int(base)
	if rep.Records > 0 {
		rep.Missing = cl.missing
	}
	if cl.extraCol >= 0 {
		rep.ExtraColumn = cl.cols[cl.extraCol].Name
	}
	return rep, nil
}

// csvLoad is what the chunks of one CSV object share: the header and how
// it maps to the columns, decided once.
type csvLoad struct {
	quarantine bool
	split      *CSVSplitter
	cols       []Column
	types      []schema.Column
	opts       MapperOptions
	header     []string
	src        []int                                // per column: the header field it takes, -1: none
	casts      []func(*schema.Vector, []byte) error // per column: loadCaster
	extraCol   int                                  // the column keeping undeclared fields, or -1
	extras     []int                                // header fields no column takes (none with extra: ignore)
	missing    []string                             // declared fields the header lacks
}

func newCSVLoad(r io.Reader, o *ReadOptions) (*csvLoad, error) {
	cl := &csvLoad{quarantine: o.Quarantine, cols: o.Mapper.Columns(), opts: o.Mapper.Options(), types: o.Mapper.Schema(), extraCol: -1}
	for j, c := range cl.cols {
		switch {
		case cl.opts.ExtraColumn != "" && c.Name == cl.opts.ExtraColumn:
			cl.extraCol = j
		case len(c.Path) > 1:
			// About this object (a load with format auto meets a .csv key):
			// permanent, as every *RecordError is.
			return nil, &RecordError{Column: strings.Join(c.Path, "."), Err: fmt.Errorf("column %s takes a nested path, but CSV records are flat; name a header field instead, or set the load's format to json", c.Name)}
		}
	}
	var err error
	cl.split, err = NewCSVSplitter(r, CSVOptions{Delimiter: o.Delimiter, Limits: o.Limits}, o.chunkSize())
	if err != nil {
		return nil, err
	}
	cl.header = cl.split.Header()
	byName := make(map[string]int, len(cl.header))
	for i, h := range cl.header {
		byName[h] = i
	}
	cl.src = make([]int, len(cl.cols))
	taken := make([]bool, len(cl.header))
	for j, c := range cl.cols {
		cl.src[j] = -1
		cl.casts = append(cl.casts, loadCaster(cl.types[j].Type))
		if j == cl.extraCol {
			continue
		}
		if i, ok := byName[c.Field]; ok {
			cl.src[j], taken[i] = i, true
		} else {
			cl.missing = append(cl.missing, c.Field)
		}
	}
	if cl.opts.Extra != ExtraIgnore {
		for i := range cl.header {
			if !taken[i] {
				cl.extras = append(cl.extras, i)
			}
		}
	}
	return cl, nil
}

// csvChunk is one chunk of a CSV object and what parsing it gave.
type csvChunk struct {
	chunk CSVChunk
	chunkBatches
	records   int64 // records parsed (rows and rejects)
	firstLine int   // the line of the first
	err       error // what stopped the parse
}

// parse parses ch into its own batches, with record numbers counted from
// 1 at its first record; base is the number of records before it, or -1
// when not known yet (CSVParser.Parse).
func (cl *csvLoad) parse(ch *csvChunk, base int64) {
	p := cl.split.NewParser()
	p.numbered = true
	var n int64
	prevEnd := 0
	var raw, extra []byte
	ch.records, ch.err = p.Parse(ch.chunk, base, func(line int, fields [][]byte) error {
		n++
		if n == 1 {
			ch.firstLine = line
		}
		size := int64(p.end - prevEnd)
		prevEnd = p.end
		b, err := ch.Batch()
		if err != nil {
			return err
		}
		b.Bytes += size
		bad, at := cl.record(b, fields, &extra)
		if bad == nil {
			b.EndRow(n, int64(line))
			return nil
		}
		for j := range b.Vecs {
			b.Vecs[j].Truncate(b.Len())
		}
		bad.Record, bad.Line = int(n), line
		if at >= 0 {
			bad.Line = fieldLine(line, fields, at)
		}
		if !cl.quarantine {
			return &rejectError{bad}
		}
		raw = appendCSVObject(raw[:0], cl.header, fields, nil, false)
		b.Rejects = append(b.Rejects, schema.Reject{N: n, Line: int64(line), Reason: rejectReason(bad, cl.cols, cl.types), Raw: string(raw)})
		return nil
	})
	ch.dropEmpty()
}

// record appends the values of one record to b's vectors, or returns why
// the record is rejected and the header field at fault (-1: the record),
// leaving a partial row for the caller to truncate.
func (cl *csvLoad) record(b *schema.Batch, fields [][]byte, extra *[]byte) (*RecordError, int) {
	for j := range cl.cols {
		v := &b.Vecs[j]
		if j == cl.extraCol {
			if len(cl.extras) == 0 {
				v.AppendNull()
				continue
			}
			*extra = appendCSVObject((*extra)[:0], cl.header, fields, cl.extras, true)
			v.AppendText(*extra)
			continue
		}
		i := cl.src[j]
		if i < 0 || len(fields[i]) == 0 {
			if cl.cols[j].Required {
				what := "missing from the header"
				if i >= 0 {
					what = "empty (NULL)"
				}
				return &RecordError{Column: cl.cols[j].Field, Err: fmt.Errorf("required field is %s", what)}, -1
			}
			v.AppendNull()
			continue
		}
		if err := cl.casts[j](v, fields[i]); err != nil {
			return &RecordError{Column: cl.cols[j].Field, Err: err}, i
		}
	}
	if cl.opts.Extra == ExtraError && len(cl.extras) > 0 {
		return &RecordError{Column: cl.header[cl.extras[0]], Err: errors.New("the field is not declared; declare it as a column, or set extra to ignore, warn or json")}, -1
	}
	return nil, -1
}

// fieldLine is the line where field i of a record starting on line
// starts: quoted fields before it may span lines.
func fieldLine(line int, fields [][]byte, i int) int {
	for _, f := range fields[:i] {
		line += bytes.Count(f, newline)
	}
	return line
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
func appendCSVObject(dst []byte, header []string, fields [][]byte, idx []int, emptyNull bool) []byte {
	dst = append(dst, '{')
	put := func(k int, i int) {
		if k > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, header[i])
		dst = append(dst, ':')
		if emptyNull && len(fields[i]) == 0 {
			dst = append(dst, "null"...)
		} else {
			dst = appendJSONString(dst, view(fields[i]))
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
