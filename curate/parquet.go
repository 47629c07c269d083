package curate

import (
	"fmt"
	"os"
	"path"
	"reflect"
	"slices"
	"time"

	"github.com/sluicehq/sluice/schema"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"
)

// rowGroupRows bounds the rows buffered in memory per row group.
const rowGroupRows = 128 * 1024

// dictionaryMaxBytes bounds each column's dictionary per row group, as
// parquet-mr's parquet.dictionary.page.size (1 MiB) does for Spark: past it,
// the column falls back to PLAIN for the rest of the row group, so a column
// of mostly distinct values does not carry a dictionary as large as its data.
const dictionaryMaxBytes = 1 << 20

// leafNode returns the Parquet type of a column kind, as Spark writes it.
func leafNode(k schema.Type) (parquet.Node, error) {
	switch k.Canonical() {
	case schema.Text:
		return parquet.String(), nil // BYTE_ARRAY, STRING
	case schema.Integer:
		return parquet.Leaf(parquet.Int32Type), nil // INT32
	case schema.BigInt:
		return parquet.Leaf(parquet.Int64Type), nil // INT64
	case schema.Real:
		return parquet.Leaf(parquet.FloatType), nil // FLOAT
	case schema.Double:
		return parquet.Leaf(parquet.DoubleType), nil // DOUBLE
	case schema.Boolean:
		return parquet.Leaf(parquet.BooleanType), nil // BOOLEAN
	case schema.Date:
		return parquet.Date(), nil // INT32, DATE
	case schema.Timestamp:
		return parquet.Timestamp(parquet.Microsecond), nil // INT64, TIMESTAMP(MICROS, isAdjustedToUTC)
	}
	return nil, fmt.Errorf("curate: unsupported column kind %q", k)
}

// parquetSchema builds a schema whose columns keep the declared order
// (parquet.Group sorts its fields by name), all OPTIONAL, named
// "spark_schema" as Spark names it.
//
// String columns are dictionary-encoded (RLE_DICTIONARY), as Spark's writer
// does by default; on the hydropower reference file (one part) Entity and
// Code shrink from 3,356 and 1,043 bytes to 1,446 and 932. Other kinds keep
// parquet-go's default encodings: parquet-mr drops a dictionary that does
// not pay off after the first page, parquet-go does not, and a dictionary on
// the mostly distinct consumption floats grows that column from 14,765 to
// 19,589 bytes (the whole part from 20,955 to 23,179 bytes, against 18,947
// with string dictionaries only).
func parquetSchema(cols []Column) (*parquet.Schema, error) {
	g := orderedGroup{group: parquet.Group{}}
	for _, c := range cols {
		n, err := leafNode(c.Type)
		if err != nil {
			return nil, fmt.Errorf("curate: column %q: %w", c.Name, err)
		}
		if c.Type.Canonical() == schema.Text {
			n = parquet.Encoded(n, &parquet.RLEDictionary)
		}
		n = parquet.Optional(n)
		g.group[c.Name] = n
		g.fields = append(g.fields, field{Node: n, name: c.Name})
	}
	return parquet.NewSchema("spark_schema", g), nil
}

// orderedGroup is a parquet group node whose fields keep insertion order.
// Rows are written as parquet.Row values, so the reflection entry points
// (GoType, Field.Value) are only there to satisfy the interface.
type orderedGroup struct {
	group  parquet.Group
	fields []parquet.Field
}

func (g orderedGroup) ID() int                         { return 0 }
func (g orderedGroup) String() string                  { return g.group.String() }
func (g orderedGroup) Type() parquet.Type              { return g.group.Type() }
func (g orderedGroup) Optional() bool                  { return false }
func (g orderedGroup) Repeated() bool                  { return false }
func (g orderedGroup) Required() bool                  { return true }
func (g orderedGroup) Leaf() bool                      { return false }
func (g orderedGroup) Fields() []parquet.Field         { return g.fields }
func (g orderedGroup) Encoding() encodingT             { return nil }
func (g orderedGroup) Compression() compressionT       { return nil }
func (g orderedGroup) GoType() reflect.Type            { return g.group.GoType() }
func (f field) Name() string                           { return f.name }
func (f field) Value(base reflect.Value) reflect.Value { return reflect.Value{} }

type field struct {
	parquet.Node
	name string
}

// rowGroupBytes also ends a row group once its values take this much
// memory, so that a row group of very long values stays bounded in memory
// (it is held whole before it is encoded). Ordinary rows never reach it:
// 128Ki hydropower rows take about 7 MiB.
const rowGroupBytes = 64 << 20

func partName(n int, id string) string {
	return fmt.Sprintf("part-%05d-%s-c000.snappy.parquet", n, id)
}

// part is one part file being written: its Parquet writer writes into
// the staged file, which is created by the first write (the commit of the
// part's first row group, or Close for an empty part) — on Run's
// goroutine, so that a crash emulated in AfterPart leaves exactly the
// parts before it staged.
type part struct {
	n    int
	name string
	file lazyFile
	w    *parquet.Writer
}

func newPart(dir, id string, n int, sch *parquet.Schema) *part {
	p := &part{n: n, name: partName(n, id)}
	p.file.path = path.Join(dir, p.name)
	p.w = parquet.NewWriter(&p.file, sch,
		parquet.Compression(&parquet.Snappy),
		parquet.MaxRowsPerRowGroup(rowGroupRows),
		parquet.DictionaryMaxBytes(dictionaryMaxBytes),
		// No statistics in each page header: as parquet-mr since 1.11
		// (PARQUET-1365) writes for Spark, min and max live in the column
		// index and the column chunk's statistics, which parquet-go still
		// writes. Page header statistics made parquet-go compute every
		// page's bounds twice: 7 % of the CPU of a hydropower run.
		parquet.DataPageStatistics(false),
		parquet.CreatedBy("sluice", "", ""),
	)
	return p
}

// close writes the footer and syncs the staged file.
func (p *part) close() error {
	if err := p.w.Close(); err != nil {
		p.file.close()
		return fmt.Errorf("stage part %s: %w", p.name, err)
	}
	if err := p.file.open(); err != nil {
		return fmt.Errorf("stage part %s: %w", p.name, err)
	}
	if err := p.file.f.Sync(); err != nil {
		p.file.close()
		return fmt.Errorf("stage part %s: sync: %w", p.name, err)
	}
	if err := p.file.f.Close(); err != nil {
		return fmt.Errorf("stage part %s: %w", p.name, err)
	}
	p.file.f = nil
	return nil
}

// lazyFile creates its file (exclusively) at the first write.
type lazyFile struct {
	path string
	f    *os.File
}

func (l *lazyFile) open() error {
	if l.f != nil {
		return nil
	}
	f, err := os.OpenFile(l.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	l.f = f
	return nil
}

func (l *lazyFile) Write(b []byte) (int, error) {
	if err := l.open(); err != nil {
		return 0, err
	}
	return l.f.Write(b)
}

func (l *lazyFile) close() {
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// encodeBatch is how many values of one column go to the column writer at
// once.
const encodeBatch = 2048

// encodeRowGroup encodes the first n rows of cols (typed vectors in the
// schema's column order) into a new row group of p, column by column,
// and returns it for p's writer to commit. Row groups of one part may be
// encoded concurrently (parquet-go's ConcurrentRowGroupWriter); only
// their commits must be in order. Text values are handed to parquet-go as
// views of the vector's arena: the column buffer or dictionary copies
// them.
func encodeRowGroup(p *part, cols []schema.Vector, n int, vals []parquet.Value) (*parquet.ConcurrentRowGroupWriter, []parquet.Value, error) {
	rg := p.w.BeginRowGroup()
	for j, cw := range rg.ColumnWriters() {
		v := &cols[j]
		for lo := 0; lo < n; lo += encodeBatch {
			hi := min(lo+encodeBatch, n)
			vals = appendValues(vals[:0], v, lo, hi, j)
			if _, err := cw.WriteRowValues(vals); err != nil {
				return nil, vals, err
			}
		}
	}
	// The last page of each column is encoded here, in parallel, rather
	// than at the commit.
	if err := rg.Flush(); err != nil {
		return nil, vals, err
	}
	return rg, vals, nil
}

// appendValues appends rows lo..hi of v as Parquet values of column j
// (definition level 1, or 0 for null). One loop per type: the type is
// decided once per batch, not per value (schema.Type is a string).
func appendValues(vals []parquet.Value, v *schema.Vector, lo, hi, j int) []parquet.Value {
	n := len(vals)
	vals = slices.Grow(vals, hi-lo)[:n+hi-lo]
	out, null := vals[n:], v.Null[lo:hi]
	nv := parquet.NullValue().Level(0, 0, j)
	switch v.Type {
	case schema.Text, schema.JSON:
		for i := range out {
			if null[i] {
				out[i] = nv
				continue
			}
			out[i] = parquet.ByteArrayValue(v.Bytes[v.Off[lo+i]:v.Off[lo+i+1]]).Level(0, 1, j)
		}
	case schema.Integer:
		for i, x := range v.Int[lo:hi] {
			if null[i] {
				out[i] = nv
				continue
			}
			out[i] = parquet.Int32Value(int32(x)).Level(0, 1, j)
		}
	case schema.BigInt:
		for i, x := range v.Int[lo:hi] {
			if null[i] {
				out[i] = nv
				continue
			}
			out[i] = parquet.Int64Value(x).Level(0, 1, j)
		}
	case schema.Real:
		for i, x := range v.Float[lo:hi] {
			if null[i] {
				out[i] = nv
				continue
			}
			out[i] = parquet.FloatValue(float32(x)).Level(0, 1, j)
		}
	case schema.Double:
		for i, x := range v.Float[lo:hi] {
			if null[i] {
				out[i] = nv
				continue
			}
			out[i] = parquet.DoubleValue(x).Level(0, 1, j)
		}
	case schema.Boolean:
		for i, x := range v.Bool[lo:hi] {
			if null[i] {
				out[i] = nv
				continue
			}
			out[i] = parquet.BooleanValue(x).Level(0, 1, j)
		}
	case schema.Date:
		for i, x := range v.Time[lo:hi] {
			if null[i] {
				out[i] = nv
				continue
			}
			y, m, d := x.Date()
			days := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400 // exact: midnight
			out[i] = parquet.Int32Value(int32(days)).Level(0, 1, j)
		}
	case schema.Timestamp:
		for i, x := range v.Time[lo:hi] {
			if null[i] {
				out[i] = nv
				continue
			}
			out[i] = parquet.Int64Value(x.UnixMicro()).Level(0, 1, j)
		}
	}
	return vals
}

type (
	encodingT    = encoding.Encoding
	compressionT = compress.Codec
)
