package curate

import (
	"fmt"
	"os"
	"path"
	"reflect"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/sluicehq/sluice/format"
)

// rowGroupRows bounds the rows buffered in memory per row group.
const rowGroupRows = 128 * 1024

// batchRows is how many rows are handed to the parquet writer at once.
const batchRows = 1024

// leafNode returns the Parquet type of a column kind, as Spark writes it.
func leafNode(k format.Kind) (parquet.Node, error) {
	switch k {
	case "string":
		return parquet.String(), nil // BYTE_ARRAY, STRING
	case "int32":
		return parquet.Leaf(parquet.Int32Type), nil // INT32
	case "int64":
		return parquet.Leaf(parquet.Int64Type), nil // INT64
	case "float32":
		return parquet.Leaf(parquet.FloatType), nil // FLOAT
	case "float64":
		return parquet.Leaf(parquet.DoubleType), nil // DOUBLE
	case "bool":
		return parquet.Leaf(parquet.BooleanType), nil // BOOLEAN
	case "date":
		return parquet.Date(), nil // INT32, DATE
	case "timestamp":
		return parquet.Timestamp(parquet.Microsecond), nil // INT64, TIMESTAMP(MICROS, isAdjustedToUTC)
	}
	return nil, fmt.Errorf("curate: unsupported column kind %q", k)
}

// parquetSchema builds a schema whose columns keep the declared order
// (parquet.Group sorts its fields by name), all OPTIONAL, named
// "spark_schema" as Spark names it.
func parquetSchema(cols []Column) (*parquet.Schema, error) {
	g := orderedGroup{group: parquet.Group{}}
	for _, c := range cols {
		n, err := leafNode(c.Kind)
		if err != nil {
			return nil, fmt.Errorf("curate: column %q: %w", c.Name, err)
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

// stager writes rows into numbered part files in a local directory.
type stager struct {
	dir       string
	id        string
	cols      []Column
	max       int
	schema    *parquet.Schema
	afterPart func(n int)

	names []string // part file names, in order
	total int64    // rows written to all parts

	f     *os.File
	w     *parquet.Writer
	rows  int // rows in the current part
	batch []parquet.Row
}

func partName(n int, id string) string {
	return fmt.Sprintf("part-%05d-%s-c000.snappy.parquet", n, id)
}

func (s *stager) open() error {
	name := partName(len(s.names), s.id)
	f, err := os.OpenFile(path.Join(s.dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("stage part %s: %w", name, err)
	}
	s.f = f
	s.names = append(s.names, name)
	s.rows = 0
	s.w = parquet.NewWriter(f, s.schema,
		parquet.Compression(&parquet.Snappy),
		parquet.MaxRowsPerRowGroup(rowGroupRows),
		parquet.CreatedBy("sluice", "", ""),
	)
	return nil
}

// write appends one row of cast values (nil for null).
func (s *stager) write(row []any) error {
	if s.w == nil {
		if err := s.open(); err != nil {
			return err
		}
	}
	r := make(parquet.Row, len(row))
	for i, v := range row {
		pv, err := toValue(s.cols[i].Kind, v)
		if err != nil {
			return fmt.Errorf("column %q: %w", s.cols[i].Name, err)
		}
		if v == nil {
			r[i] = pv.Level(0, 0, i)
		} else {
			r[i] = pv.Level(0, 1, i)
		}
	}
	s.batch = append(s.batch, r)
	s.rows++
	s.total++
	if len(s.batch) >= batchRows {
		if err := s.flushBatch(); err != nil {
			return err
		}
	}
	if s.rows >= s.max {
		return s.closePart()
	}
	return nil
}

func (s *stager) flushBatch() error {
	if len(s.batch) == 0 {
		return nil
	}
	if _, err := s.w.WriteRows(s.batch); err != nil {
		return fmt.Errorf("stage part %s: %w", s.names[len(s.names)-1], err)
	}
	s.batch = s.batch[:0]
	return nil
}

func (s *stager) closePart() error {
	name := s.names[len(s.names)-1]
	if err := s.flushBatch(); err != nil {
		return err
	}
	if err := s.w.Close(); err != nil {
		return fmt.Errorf("stage part %s: %w", name, err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("stage part %s: sync: %w", name, err)
	}
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("stage part %s: %w", name, err)
	}
	s.w, s.f = nil, nil
	if s.afterPart != nil {
		s.afterPart(len(s.names) - 1)
	}
	return nil
}

// finish closes the last part; with no rows at all it writes one empty part
// so readers still see the schema, as Spark does.
func (s *stager) finish() error {
	if s.w == nil && len(s.names) == 0 {
		if err := s.open(); err != nil {
			return err
		}
	}
	if s.w == nil {
		return nil
	}
	return s.closePart()
}

// abort closes an open part after an error; the caller removes the dir.
func (s *stager) abort() {
	if s.f != nil {
		s.f.Close()
		s.w, s.f = nil, nil
	}
}

// toValue converts a cast value to a Parquet value of the column's type.
func toValue(k format.Kind, v any) (parquet.Value, error) {
	if v == nil {
		return parquet.NullValue(), nil
	}
	switch x := v.(type) {
	case string:
		if k == "string" {
			return parquet.ByteArrayValue([]byte(x)), nil
		}
	case int32:
		if k == "int32" {
			return parquet.Int32Value(x), nil
		}
	case int64:
		if k == "int64" {
			return parquet.Int64Value(x), nil
		}
	case float32:
		if k == "float32" {
			return parquet.FloatValue(x), nil
		}
	case float64:
		if k == "float64" {
			return parquet.DoubleValue(x), nil
		}
	case bool:
		if k == "bool" {
			return parquet.BooleanValue(x), nil
		}
	case time.Time:
		switch k {
		case "date":
			y, m, d := x.Date()
			days := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400 // exact: midnight
			return parquet.Int32Value(int32(days)), nil
		case "timestamp":
			return parquet.Int64Value(x.UnixMicro()), nil
		}
	}
	return parquet.Value{}, fmt.Errorf("a %T value does not fit kind %s", v, k)
}

type (
	encodingT    = encoding.Encoding
	compressionT = compress.Codec
)
