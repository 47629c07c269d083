package parquetbench

import (
	"bytes"
	"testing"
)

// benchWrite times w writing the BenchRows hydropower rows to an in-memory
// buffer. Loading and replicating the CSV happens before the timer starts.
// After the loop it reads the last file's footer and fails unless it holds
// BenchRows rows, so the reported rows/s counts rows actually written.
func benchWrite(b *testing.B, w writer) {
	rows := mustRows(b)
	var buf bytes.Buffer
	if _, err := w.fn(&buf, rows, w.dict); err != nil { // warm-up; sizes the buffer
		b.Fatal(err)
	}
	size := buf.Len()
	buf.Grow(size)
	b.ReportAllocs()
	b.ResetTimer()
	var written int64
	for b.Loop() {
		buf.Reset()
		n, err := w.fn(&buf, rows, w.dict)
		if err != nil {
			b.Fatal(err)
		}
		written += n
	}
	b.StopTimer()
	info, err := ReadFooter(buf.Bytes())
	if err != nil {
		b.Fatal(err)
	}
	if info.Rows != BenchRows || buf.Len() != size {
		b.Fatalf("last file: %d rows in %d bytes, want %d rows in %d bytes (as the warm-up wrote)", info.Rows, buf.Len(), BenchRows, size)
	}
	b.ReportMetric(float64(written)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(buf.Len()), "file-bytes")
}

// BenchmarkWriteParquetGo is curate's writer: nodict is exactly curate's
// setup (parquet-go's default encodings: PLAIN numbers,
// DELTA_LENGTH_BYTE_ARRAY strings); dict turns on RLE_DICTIONARY for every
// column; nodict-reused and dict-reused are the same without the per-row
// allocations of curate's stager (see WriteParquetGoReused).
func BenchmarkWriteParquetGo(b *testing.B) {
	b.Run("nodict", func(b *testing.B) { benchWrite(b, writerNamed(b, "parquet-go/nodict")) })
	b.Run("dict", func(b *testing.B) { benchWrite(b, writerNamed(b, "parquet-go/dict")) })
	b.Run("nodict-reused", func(b *testing.B) { benchWrite(b, writerNamed(b, "parquet-go/nodict-reused")) })
	b.Run("dict-reused", func(b *testing.B) { benchWrite(b, writerNamed(b, "parquet-go/dict-reused")) })
}

// BenchmarkWriteArrowGo is arrow-go's pqarrow writer with 64Ki-row record
// batches: dict is arrow-go's default (RLE_DICTIONARY on every column),
// nodict turns dictionaries off (every column PLAIN).
func BenchmarkWriteArrowGo(b *testing.B) {
	b.Run("nodict", func(b *testing.B) { benchWrite(b, writerNamed(b, "arrow-go/nodict")) })
	b.Run("dict", func(b *testing.B) { benchWrite(b, writerNamed(b, "arrow-go/dict")) })
}
