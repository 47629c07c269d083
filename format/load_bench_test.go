package format

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"unsafe"

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

// benchRows runs load, which must return rows, b.N times, reporting the
// throughput of size input bytes and rows/s.
func benchRows(b *testing.B, size int64, rows int, load func() int) {
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		if n := load(); n != rows {
			b.Fatalf("loaded %d rows, want %d", n, rows)
		}
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkCSVLoad measures the CSV load into typed batches (MB/s of CSV,
// rows/s) on the hydropower CSV ×40 (167,040 rows, 6 MB) with 1 and 2
// workers, against a baseline in the same run: encoding/csv on one
// goroutine with the same casts (AppendCast) into one reused batch — the
// decoder the load used before CSVSplitter, less its checks. Reproduce
// with
//
//	go test -run '^$' -bench CSVLoad -benchmem -count 5 ./format/
func BenchmarkCSVLoad(b *testing.B) {
	in := hydroCSV(b, 40)
	const rows = 4176 * 40
	m, err := NewMapper(hydroCols, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("batches/workers=%d", workers), func(b *testing.B) {
			benchRows(b, int64(len(in)), rows, func() int {
				rd, err := NewReader(context.Background(), bytes.NewReader(in), ReadOptions{Format: InputCSV, Mapper: m, Workers: workers})
				if err != nil {
					b.Fatal(err)
				}
				defer rd.Close()
				return drain(b, rd)
			})
		})
	}
	b.Run("baseline-encoding-csv", func(b *testing.B) {
		batch := schema.NewBatch(m.Schema())
		benchRows(b, int64(len(in)), rows, func() int {
			cr := csv.NewReader(bytes.NewReader(in))
			cr.ReuseRecord = true
			head, err := cr.Read()
			if err != nil {
				b.Fatal(err)
			}
			idx := make([]int, len(hydroCols))
			for j, c := range hydroCols {
				idx[j] = slices.Index(head, c.Field)
			}
			n := 0
			for {
				rec, err := cr.Read()
				if err == io.EOF {
					return n
				}
				if err != nil {
					b.Fatal(err)
				}
				for j, i := range idx {
					if err := AppendCast(&batch.Vecs[j], unsafe.Slice(unsafe.StringData(rec[i]), len(rec[i]))); err != nil {
						b.Fatal(err)
					}
				}
				batch.EndRow(int64(n+1), 0)
				if n++; batch.Len() == DefaultBatchRows {
					batch.Reset()
				}
			}
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
	b.Run("batches", func(b *testing.B) {
		benchRows(b, int64(len(data)), rows, func() int {
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
		benchRows(b, int64(len(data)), rows, func() int {
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
