// Command parquetgo writes two hydropower rows to a snappy Parquet file
// with parquet-go, the way curate builds rows (parquet.Row with definition
// levels): a probe for the binary size parquet-go adds.
package main

import (
	"log"
	"os"

	"github.com/parquet-go/parquet-go"
)

func main() {
	f, err := os.Create(os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	schema := parquet.NewSchema("spark_schema", parquet.Group{
		"Entity":      parquet.Optional(parquet.String()),
		"Code":        parquet.Optional(parquet.String()),
		"Year":        parquet.Optional(parquet.Leaf(parquet.Int32Type)),
		"consumption": parquet.Optional(parquet.Leaf(parquet.FloatType)),
	})
	w := parquet.NewWriter(f, schema, parquet.Compression(&parquet.Snappy))
	// parquet.Group sorts its fields: Code, Entity, Year, consumption.
	rows := []parquet.Row{
		{parquet.NullValue().Level(0, 0, 0), parquet.ByteArrayValue([]byte("Africa")).Level(0, 1, 1), parquet.Int32Value(1965).Level(0, 1, 2), parquet.FloatValue(14.28).Level(0, 1, 3)},
		{parquet.ByteArrayValue([]byte("NOR")).Level(0, 1, 0), parquet.ByteArrayValue([]byte("Norway")).Level(0, 1, 1), parquet.Int32Value(2019).Level(0, 1, 2), parquet.FloatValue(125.77).Level(0, 1, 3)},
	}
	if _, err := w.WriteRows(rows); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}
