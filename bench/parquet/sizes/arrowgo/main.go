// Command arrowgo writes two hydropower rows to a snappy Parquet file with
// arrow-go's pqarrow writer and a record batch: a probe for the binary size
// arrow-go adds.
package main

import (
	"log"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

func main() {
	f, err := os.Create(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "Entity", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "Code", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "Year", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		{Name: "consumption", Type: arrow.PrimitiveTypes.Float32, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	b.Field(0).(*array.StringBuilder).AppendValues([]string{"Africa", "Norway"}, nil)
	b.Field(1).(*array.StringBuilder).AppendValues([]string{"", "NOR"}, []bool{false, true})
	b.Field(2).(*array.Int32Builder).AppendValues([]int32{1965, 2019}, nil)
	b.Field(3).(*array.Float32Builder).AppendValues([]float32{14.28, 125.77}, nil)
	rec := b.NewRecordBatch()
	defer rec.Release()
	props := parquet.NewWriterProperties(parquet.WithCompression(compress.Codecs.Snappy))
	w, err := pqarrow.NewFileWriter(schema, f, props, pqarrow.DefaultWriterProps())
	if err != nil {
		log.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil { // also closes f
		log.Fatal(err)
	}
}
