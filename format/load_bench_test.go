package format

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/sluicehq/sluice/schema"
)

// hydroCSV is the curate job's reference CSV (4,176 rows) repeated times
// times, header once.
func hydroCSV(b *testing.B, times int) []byte {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("..", "curate", "testdata", "hydropower-consumption.csv"))
	if err != nil {
		b.Fatal(err)
	}
	head, body, _ := bytes.Cut(data, []byte("\n"))
	if !bytes.HasSuffix(body, []byte("\n")) {
		body = append(body, '\n')
	}
	out := append(append([]byte(nil), head...), '\n')
	for range times {
		out = append(out, body...)
	}
	return out
}

var hydroCols = []Column{
	{Field: "Entity", Type: schema.Text},
	{Field: "Code", Type: schema.Text},
	{Field: "Year", Type: schema.Integer},
	{Field: "Hydropower (Terawatt-hours)", Name: "consumption", Type: schema.Double},
}

// drain reads every batch of rd and returns the rows.
func drain(b *testing.B, rd *Reader) int {
	ctx := context.Background()
	n := 0
	for {
		bt, err := rd.Next(ctx)
		if err == io.EOF {
			return n
		}
		if err != nil {
			b.Fatal(err)
		}
		n += bt.Len()
	}
}

// BenchmarkCSVLoad measures the CSV decoder into typed batches (MB/s of
// CSV, rows/s) on the hydropower CSV ×40 (167,040 rows, 6 MB), against
// the path it replaces in the same run: DecodeCSV (a map per record) and
// CastString (a boxed value per field) into a []any row. Reproduce with
//
//	go test -run '^$' -bench CSVLoad -benchmem ./format/
func BenchmarkCSVLoad(b *testing.B) {
	in := hydroCSV(b, 40)
	const rows = 4176 * 40
	m, err := NewMapper(hydroCols, nil)
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, load func() int) {
		b.SetBytes(int64(len(in)))
		b.ReportAllocs()
		for b.Loop() {
			if n := load(); n != rows {
				b.Fatalf("loaded %d rows, want %d", n, rows)
			}
		}
		b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	}
	b.Run("batches", func(b *testing.B) {
		run(b, func() int {
			rd, err := NewReader(context.Background(), bytes.NewReader(in), ReadOptions{Format: InputCSV, Mapper: m})
			if err != nil {
				b.Fatal(err)
			}
			defer rd.Close()
			return drain(b, rd)
		})
	})
	b.Run("DecodeCSV+CastString", func(b *testing.B) {
		row := make([]any, len(hydroCols))
		run(b, func() int {
			n := 0
			err := DecodeCSV(bytes.NewReader(in), CSVOptions{}, func(r Record) error {
				for j, c := range hydroCols {
					v, err := CastString(c.Type, r.Fields[c.Field].(string))
					if err != nil {
						return err
					}
					row[j] = v
				}
				n++
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			return n
		})
	})
}

type hydroRow struct {
	Entity      string  `parquet:"Entity,dict"`
	Code        *string `parquet:"Code,optional,dict"`
	Year        int32   `parquet:"Year"`
	Consumption float32 `parquet:"consumption"`
}

// hydroParquet writes the hydropower rows ×times as one snappy Parquet
// file, as the curate job lays it out (dictionary strings, optional Code).
func hydroParquet(b *testing.B, times int) ([]byte, int) {
	b.Helper()
	recs, err := csv.NewReader(bytes.NewReader(hydroCSV(b, 1))).ReadAll()
	if err != nil {
		b.Fatal(err)
	}
	var rows []hydroRow
	for _, r := range recs[1:] {
		y, _ := strconv.Atoi(r[2])
		c, _ := strconv.ParseFloat(r[3], 32)
		row := hydroRow{Entity: r[0], Year: int32(y), Consumption: float32(c)}
		if r[1] != "" {
			row.Code = &r[1]
		}
		rows = append(rows, row)
	}
	var all []hydroRow
	for range times {
		all = append(all, rows...)
	}
	return writeParquet(b, all, parquet.MaxRowsPerRowGroup(128*1024)), len(all)
}

// BenchmarkParquetLoad measures the Parquet decoder into typed batches
// (rows/s) on the hydropower rows ×250 (1,044,000 rows) in curate's
// layout, against parquet-go's own row reader (parquet.Row values, the
// generic path) over the same file in the same run. Reproduce with
//
//	go test -run '^$' -bench ParquetLoad -benchmem ./format/
func BenchmarkParquetLoad(b *testing.B) {
	data, rows := hydroParquet(b, 250)
	cols := []Column{
		{Field: "Entity", Type: schema.Text},
		{Field: "Code", Type: schema.Text},
		{Field: "Year", Type: schema.Integer},
		{Field: "consumption", Type: schema.Double},
	}
	m, err := NewMapper(cols, nil)
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, load func() int) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			if n := load(); n != rows {
				b.Fatalf("loaded %d rows, want %d", n, rows)
			}
		}
		b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	}
	b.Run("batches", func(b *testing.B) {
		run(b, func() int {
			rd, err := NewReader(context.Background(), bytes.NewReader(data), ReadOptions{Format: InputParquet, Mapper: m})
			if err != nil {
				b.Fatal(err)
			}
			defer rd.Close()
			return drain(b, rd)
		})
	})
	b.Run("parquet-go rows", func(b *testing.B) {
		buf := make([]parquet.Row, 4096)
		run(b, func() int {
			f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for _, rg := range f.RowGroups() {
				rr := rg.Rows()
				for {
					k, err := rr.ReadRows(buf)
					n += k
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				rr.Close()
			}
			return n
		})
	})
}
