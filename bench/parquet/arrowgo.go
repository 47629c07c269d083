package parquetbench

import (
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// ArrowBatchRows is the number of rows per Arrow record batch.
const ArrowBatchRows = 64 * 1024

// arrowSchema is the hydropower schema, every field nullable.
var arrowSchema = arrow.NewSchema([]arrow.Field{
	{Name: "Entity", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "Code", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "Year", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
	{Name: "consumption", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
}, nil)

// WriteArrowGo writes rows to w with arrow-go's pqarrow.FileWriter: rows are
// appended to a RecordBuilder, cut into record batches of ArrowBatchRows,
// and written with WriteBuffered into row groups of 128Ki rows (curate's
// size), snappy. dict keeps arrow-go's default (dictionary encoding on);
// !dict turns it off so every column is PLAIN. It
// returns the number of rows in the batches written.
func WriteArrowGo(w io.Writer, rows [][]any, dict bool) (int64, error) {
	props := parquet.NewWriterProperties(
		parquet.WithCompression(compress.Codecs.Snappy),
		parquet.WithMaxRowGroupLength(rowGroupRows),
		parquet.WithDictionaryDefault(dict),
		parquet.WithCreatedBy("sluice"),
		parquet.WithRootName("spark_schema"),
	)
	fw, err := pqarrow.NewFileWriter(arrowSchema, w, props, pqarrow.DefaultWriterProps())
	if err != nil {
		return 0, fmt.Errorf("arrow-go: new file writer: %w", err)
	}
	b := array.NewRecordBuilder(memory.DefaultAllocator, arrowSchema)
	defer b.Release()
	entity := b.Field(0).(*array.StringBuilder)
	code := b.Field(1).(*array.StringBuilder)
	year := b.Field(2).(*array.Int32Builder)
	cons := b.Field(3).(*array.Float32Builder)

	var total, pending int64
	flush := func() error {
		if pending == 0 {
			return nil
		}
		rec := b.NewRecordBatch()
		defer rec.Release()
		if err := fw.WriteBuffered(rec); err != nil {
			return fmt.Errorf("arrow-go: write batch ending at row %d: %w", total, err)
		}
		pending = 0
		return nil
	}
	appendString := func(sb *array.StringBuilder, v any) error {
		switch x := v.(type) {
		case nil:
			sb.AppendNull()
		case string:
			sb.Append(x)
		default:
			return fmt.Errorf("a %T value does not fit kind string", v)
		}
		return nil
	}
	for _, row := range rows {
		if err := appendString(entity, row[0]); err != nil {
			return total, fmt.Errorf("arrow-go: row %d column %q: %w", total, columnNames[0], err)
		}
		if err := appendString(code, row[1]); err != nil {
			return total, fmt.Errorf("arrow-go: row %d column %q: %w", total, columnNames[1], err)
		}
		switch x := row[2].(type) {
		case nil:
			year.AppendNull()
		case int32:
			year.Append(x)
		default:
			return total, fmt.Errorf("arrow-go: row %d column %q: a %T value does not fit kind int32", total, columnNames[2], x)
		}
		switch x := row[3].(type) {
		case nil:
			cons.AppendNull()
		case float32:
			cons.Append(x)
		default:
			return total, fmt.Errorf("arrow-go: row %d column %q: a %T value does not fit kind float32", total, columnNames[3], x)
		}
		total++
		pending++
		if pending >= ArrowBatchRows {
			if err := flush(); err != nil {
				return total, err
			}
		}
	}
	if err := flush(); err != nil {
		return total, err
	}
	if err := fw.Close(); err != nil {
		return total, fmt.Errorf("arrow-go: close writer: %w", err)
	}
	return total, nil
}
