package parquetbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	arrowparquet "github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/parquet-go/parquet-go"
)

// FileInfo is what a file's footer says, read with parquet-go.
type FileInfo struct {
	Rows       int64
	RowGroups  int
	MaxRGRows  int64          // rows of the largest row group
	Codecs     []string       // distinct codecs of all column chunks
	Optional   []bool         // per column, in schema order
	Names      []string       // column names, in schema order
	Encodings  map[string]int // encoding name → number of column chunks using it
	SchemaName string
}

// ReadFooter opens data with parquet-go and reports its footer.
func ReadFooter(data []byte) (FileInfo, error) {
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return FileInfo{}, fmt.Errorf("open parquet file (%d bytes) with parquet-go: %w", len(data), err)
	}
	md := f.Metadata()
	info := FileInfo{Rows: md.NumRows, RowGroups: len(md.RowGroups), Encodings: map[string]int{}, SchemaName: f.Schema().Name()}
	codecs := map[string]bool{}
	for _, rg := range md.RowGroups {
		info.MaxRGRows = max(info.MaxRGRows, rg.NumRows)
		for _, c := range rg.Columns {
			name := c.MetaData.Codec.String()
			if !codecs[name] {
				codecs[name] = true
				info.Codecs = append(info.Codecs, name)
			}
			for _, e := range c.MetaData.Encoding {
				info.Encodings[e.String()]++
			}
		}
	}
	for _, fld := range f.Schema().Fields() {
		info.Names = append(info.Names, fld.Name())
		info.Optional = append(info.Optional, fld.Optional())
	}
	return info, nil
}

// SummarizeParquetGo reads every row of data with parquet-go.
func SummarizeParquetGo(data []byte) (Summary, error) {
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return Summary{}, fmt.Errorf("open parquet file with parquet-go: %w", err)
	}
	var s Summary
	buf := make([]parquet.Row, 1024)
	for g, rg := range f.RowGroups() {
		rows := rg.Rows()
		for {
			n, err := rows.ReadRows(buf)
			for _, row := range buf[:n] {
				s.Rows++
				for _, v := range row {
					switch v.Column() {
					case 0:
						if v.IsNull() {
							s.EntityNulls++
						}
					case 1:
						if v.IsNull() {
							s.CodeNulls++
						}
					case 2:
						s.YearSum += int64(v.Int32())
					case 3:
						s.Consumption += float64(v.Float())
					}
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rows.Close()
				return s, fmt.Errorf("read row group %d with parquet-go: %w", g, err)
			}
		}
		if err := rows.Close(); err != nil {
			return s, fmt.Errorf("close row group %d: %w", g, err)
		}
	}
	if int64(s.Rows) != f.NumRows() {
		return s, fmt.Errorf("parquet-go read %d rows, footer says %d", s.Rows, f.NumRows())
	}
	return s, nil
}

// SummarizeArrowGo reads data into an Arrow table with arrow-go's pqarrow.
// It fails unless the columns are, in order, nullable Entity and Code
// (utf8), Year (int32) and consumption (float32).
func SummarizeArrowGo(data []byte) (Summary, error) {
	mem := memory.DefaultAllocator
	tbl, err := pqarrow.ReadTable(context.Background(), bytes.NewReader(data), arrowparquet.NewReaderProperties(mem), pqarrow.ArrowReadProperties{}, mem)
	if err != nil {
		return Summary{}, fmt.Errorf("read parquet file with arrow-go: %w", err)
	}
	defer tbl.Release()
	got := tbl.Schema().Fields()
	want := arrowSchema.Fields()
	if len(got) != len(want) {
		return Summary{}, fmt.Errorf("arrow-go read schema %s, want %s", tbl.Schema(), arrowSchema)
	}
	for i := range want {
		if got[i].Name != want[i].Name || !arrow.TypeEqual(got[i].Type, want[i].Type) || got[i].Nullable != want[i].Nullable {
			return Summary{}, fmt.Errorf("arrow-go read column %d as %s, want %s", i, got[i], want[i])
		}
	}
	s := Summary{Rows: tbl.NumRows()}
	for _, chunk := range tbl.Column(0).Data().Chunks() {
		s.EntityNulls += int64(chunk.NullN())
	}
	for _, chunk := range tbl.Column(1).Data().Chunks() {
		s.CodeNulls += int64(chunk.NullN())
	}
	for _, chunk := range tbl.Column(2).Data().Chunks() {
		a := chunk.(*array.Int32)
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				s.YearSum += int64(a.Value(i))
			}
		}
	}
	for _, chunk := range tbl.Column(3).Data().Chunks() {
		a := chunk.(*array.Float32)
		for i := 0; i < a.Len(); i++ {
			if a.IsValid(i) {
				s.Consumption += float64(a.Value(i))
			}
		}
	}
	return s, nil
}
