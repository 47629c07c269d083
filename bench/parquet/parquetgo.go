package parquetbench

// This file replicates, as faithfully as it can, the Parquet writer of
// github.com/sluicehq/sluice/curate (curate/parquet.go at the commit named in
// README.md). curate does not export its stager, so the schema (ordered
// OPTIONAL group named spark_schema), the writer options (snappy,
// MaxRowsPerRowGroup 128Ki, CreatedBy "sluice"), the row conversion
// (toValue + Level, one new parquet.Row per row) and the batching
// (WriteRows every 1024 rows) are copied here. The only change: the sink is
// an io.Writer instead of a staged *os.File, so no Sync/Close of a file.

import (
	"fmt"
	"io"
	"reflect"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"
)

// Same values as curate/parquet.go.
const (
	rowGroupRows = 128 * 1024
	batchRows    = 1024
)

// leafNode is curate's, for the kinds the hydropower data uses. With dict it
// asks for RLE_DICTIONARY on every column (a variant curate does not use; it
// matches arrow-go's default).
func leafNode(k string, dict bool) (parquet.Node, error) {
	var n parquet.Node
	switch k {
	case "string":
		n = parquet.String()
	case "int32":
		n = parquet.Leaf(parquet.Int32Type)
	case "float32":
		n = parquet.Leaf(parquet.FloatType)
	default:
		return nil, fmt.Errorf("parquetbench: unsupported column kind %q", k)
	}
	if dict {
		n = parquet.Encoded(n, &parquet.RLEDictionary)
	}
	return n, nil
}

// parquetSchema is curate's parquetSchema: declared order, all OPTIONAL.
func parquetSchema(dict bool) (*parquet.Schema, error) {
	g := orderedGroup{group: parquet.Group{}}
	for i, name := range columnNames {
		n, err := leafNode(columnKinds[i], dict)
		if err != nil {
			return nil, fmt.Errorf("parquetbench: column %q: %w", name, err)
		}
		n = parquet.Optional(n)
		g.group[name] = n
		g.fields = append(g.fields, field{Node: n, name: name})
	}
	return parquet.NewSchema("spark_schema", g), nil
}

// orderedGroup is curate's group node whose fields keep insertion order.
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
func (g orderedGroup) Encoding() encoding.Encoding     { return nil }
func (g orderedGroup) Compression() compress.Codec     { return nil }
func (g orderedGroup) GoType() reflect.Type            { return g.group.GoType() }
func (f field) Name() string                           { return f.name }
func (f field) Value(base reflect.Value) reflect.Value { return reflect.Value{} }

type field struct {
	parquet.Node
	name string
}

// WriteParquetGo writes rows to w the way curate's stager does and returns
// the number of rows handed to the writer. With dict, every column is
// dictionary-encoded; dict false is curate (parquet-go's default encodings:
// PLAIN for numbers, DELTA_LENGTH_BYTE_ARRAY for strings).
func WriteParquetGo(w io.Writer, rows [][]any, dict bool) (int64, error) {
	schema, err := parquetSchema(dict)
	if err != nil {
		return 0, err
	}
	pw := parquet.NewWriter(w, schema,
		parquet.Compression(&parquet.Snappy),
		parquet.MaxRowsPerRowGroup(rowGroupRows),
		parquet.CreatedBy("sluice", "", ""),
	)
	var (
		batch []parquet.Row
		total int64
	)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := pw.WriteRows(batch); err != nil {
			return fmt.Errorf("parquet-go: write rows ending at row %d: %w", total, err)
		}
		batch = batch[:0]
		return nil
	}
	for _, row := range rows {
		r := make(parquet.Row, len(row))
		for i, v := range row {
			pv, err := toValue(columnKinds[i], v)
			if err != nil {
				return total, fmt.Errorf("parquet-go: row %d column %q: %w", total, columnNames[i], err)
			}
			if v == nil {
				r[i] = pv.Level(0, 0, i)
			} else {
				r[i] = pv.Level(0, 1, i)
			}
		}
		batch = append(batch, r)
		total++
		if len(batch) >= batchRows {
			if err := flush(); err != nil {
				return total, err
			}
		}
	}
	if err := flush(); err != nil {
		return total, err
	}
	if err := pw.Close(); err != nil {
		return total, fmt.Errorf("parquet-go: close writer: %w", err)
	}
	return total, nil
}

// toValue is curate's, for the kinds the hydropower data uses.
func toValue(k string, v any) (parquet.Value, error) {
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
	case float32:
		if k == "float32" {
			return parquet.FloatValue(x), nil
		}
	}
	return parquet.Value{}, fmt.Errorf("a %T value does not fit kind %s", v, k)
}

// WriteParquetGoReused is WriteParquetGo (curate's schema and writer
// options; dict as there) with the two per-row allocations of curate's stager
// removed: the batch's rows are allocated once and reused (WriteRows copies
// the values it is handed), and string values point at the string's bytes
// instead of a copy (parquet-go only reads them). It is not what curate does
// today; it measures how much of curate's cost is its own row conversion
// rather than parquet-go's encoder.
func WriteParquetGoReused(w io.Writer, rows [][]any, dict bool) (int64, error) {
	schema, err := parquetSchema(dict)
	if err != nil {
		return 0, err
	}
	pw := parquet.NewWriter(w, schema,
		parquet.Compression(&parquet.Snappy),
		parquet.MaxRowsPerRowGroup(rowGroupRows),
		parquet.CreatedBy("sluice", "", ""),
	)
	ncol := len(columnNames)
	values := make([]parquet.Value, batchRows*ncol)
	batch := make([]parquet.Row, batchRows)
	for i := range batch {
		batch[i] = values[i*ncol : (i+1)*ncol : (i+1)*ncol]
	}
	var total int64
	n := 0
	for _, row := range rows {
		r := batch[n]
		for i, v := range row {
			var pv parquet.Value
			switch x := v.(type) {
			case nil:
				r[i] = parquet.NullValue().Level(0, 0, i)
				continue
			case string:
				pv = parquet.ByteArrayValue(unsafe.Slice(unsafe.StringData(x), len(x)))
			default:
				if pv, err = toValue(columnKinds[i], v); err != nil {
					return total, fmt.Errorf("parquet-go: row %d column %q: %w", total, columnNames[i], err)
				}
			}
			r[i] = pv.Level(0, 1, i)
		}
		n++
		total++
		if n == batchRows {
			if _, err := pw.WriteRows(batch); err != nil {
				return total, fmt.Errorf("parquet-go: write rows ending at row %d: %w", total, err)
			}
			n = 0
		}
	}
	if n > 0 {
		if _, err := pw.WriteRows(batch[:n]); err != nil {
			return total, fmt.Errorf("parquet-go: write rows ending at row %d: %w", total, err)
		}
	}
	if err := pw.Close(); err != nil {
		return total, fmt.Errorf("parquet-go: close writer: %w", err)
	}
	return total, nil
}
