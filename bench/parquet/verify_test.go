package parquetbench

import (
	"bytes"
	"slices"
	"sync"
	"testing"
)

// benchData loads the hydropower rows once and replicates them to
// BenchRows; tests and benchmarks share it.
var benchData = sync.OnceValues(func() ([][]any, error) {
	src, err := LoadHydropower("testdata/hydropower-consumption.csv")
	if err != nil {
		return nil, err
	}
	return Replicate(src, BenchRows), nil
})

func mustRows(tb testing.TB) [][]any {
	tb.Helper()
	rows, err := benchData()
	if err != nil {
		tb.Fatalf("benchmark data: %v (the CSV is a copy of shared/data/hydropower, kept in testdata/)", err)
	}
	return rows
}

type writer struct {
	name string
	dict bool
	fn   func(*bytes.Buffer, [][]any, bool) (int64, error)
}

var writers = []writer{
	{"parquet-go/nodict", false, func(b *bytes.Buffer, r [][]any, d bool) (int64, error) { return WriteParquetGo(b, r, d) }},
	{"parquet-go/dict", true, func(b *bytes.Buffer, r [][]any, d bool) (int64, error) { return WriteParquetGo(b, r, d) }},
	{"parquet-go/nodict-reused", false, func(b *bytes.Buffer, r [][]any, d bool) (int64, error) { return WriteParquetGoReused(b, r, d) }},
	{"parquet-go/dict-reused", true, func(b *bytes.Buffer, r [][]any, d bool) (int64, error) { return WriteParquetGoReused(b, r, d) }},
	{"arrow-go/nodict", false, func(b *bytes.Buffer, r [][]any, d bool) (int64, error) { return WriteArrowGo(b, r, d) }},
	{"arrow-go/dict", true, func(b *bytes.Buffer, r [][]any, d bool) (int64, error) { return WriteArrowGo(b, r, d) }},
}

func writerNamed(tb testing.TB, name string) writer {
	for _, w := range writers {
		if w.name == name {
			return w
		}
	}
	tb.Fatalf("no writer named %q", name)
	return writer{}
}

// TestReusedRowsWriteTheSameBytesAsCuratesStager shows that reusing row
// buffers and aliasing string bytes changes nothing in the output.
func TestReusedRowsWriteTheSameBytesAsCuratesStager(t *testing.T) {
	rows := mustRows(t)
	for _, dict := range []string{"nodict", "dict"} {
		var a, b bytes.Buffer
		curate, reused := writerNamed(t, "parquet-go/"+dict), writerNamed(t, "parquet-go/"+dict+"-reused")
		if _, err := curate.fn(&a, rows, curate.dict); err != nil {
			t.Fatal(err)
		}
		if _, err := reused.fn(&b, rows, reused.dict); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%s: reused rows wrote %d bytes that differ from curate's %d bytes", dict, b.Len(), a.Len())
		}
	}
}

func TestLoadHydropowerReadsEveryRowAndMapsEmptyCodeToNull(t *testing.T) {
	src, err := LoadHydropower("testdata/hydropower-consumption.csv")
	if err != nil {
		t.Fatal(err)
	}
	if len(src) != 4176 {
		t.Errorf("rows = %d, want 4176 (the CSV has a header and 4176 records, the last without a newline)", len(src))
	}
	s := Summarize(src)
	if s.CodeNulls == 0 || s.CodeNulls == s.Rows {
		t.Errorf("Code nulls = %d of %d rows; the data has both regions without a code and countries with one", s.CodeNulls, s.Rows)
	}
	if got := src[0]; got[0] != "Africa" || got[1] != nil || got[2] != int32(1965) {
		t.Errorf("first row = %v, want Africa, null Code, 1965", got)
	}
}

func TestReplicateCyclesTheSourceRowsInOrder(t *testing.T) {
	src := [][]any{{"a", nil, int32(1), float32(1)}, {"b", "B", int32(2), float32(2)}}
	got := Replicate(src, 5)
	want := []string{"a", "b", "a", "b", "a"}
	for i, r := range got {
		if r[0] != want[i] {
			t.Errorf("row %d Entity = %v, want %s", i, r[0], want[i])
		}
	}
	got[0][0] = "changed"
	if src[0][0] != "a" || got[2][0] != "a" {
		t.Error("replicated rows share their slice; each row must be its own slice, as the decoder hands them")
	}
}

// TestEveryWriterWritesTheRowsBothLibrariesReadBack is the check behind the
// benchmarks: each writer's output, read by parquet-go and by arrow-go,
// holds exactly the input rows (count, nulls per string column, sum of Year,
// sum of consumption in row order), snappy, all columns OPTIONAL, row groups
// of at most 128Ki rows.
func TestEveryWriterWritesTheRowsBothLibrariesReadBack(t *testing.T) {
	rows := mustRows(t)
	want := Summarize(rows)
	if want.Rows != BenchRows || want.CodeNulls != 186_680 || want.EntityNulls != 0 {
		t.Fatalf("input summary %+v: want %d rows, 186680 null Codes, no null Entity", want, BenchRows)
	}
	for _, w := range writers {
		t.Run(w.name, func(t *testing.T) {
			var buf bytes.Buffer
			n, err := w.fn(&buf, rows, w.dict)
			if err != nil {
				t.Fatalf("write: %v", err)
			}
			if n != BenchRows {
				t.Errorf("writer reported %d rows, want %d", n, BenchRows)
			}
			data := buf.Bytes()
			info, err := ReadFooter(data)
			if err != nil {
				t.Fatal(err)
			}
			if info.Rows != BenchRows {
				t.Errorf("footer rows = %d, want %d", info.Rows, BenchRows)
			}
			if info.MaxRGRows > rowGroupRows || info.RowGroups != (BenchRows+rowGroupRows-1)/rowGroupRows {
				t.Errorf("row groups = %d (largest %d rows), want %d of at most %d rows", info.RowGroups, info.MaxRGRows, (BenchRows+rowGroupRows-1)/rowGroupRows, rowGroupRows)
			}
			if !slices.Equal(info.Codecs, []string{"SNAPPY"}) {
				t.Errorf("codecs = %v, want only SNAPPY", info.Codecs)
			}
			if !slices.Equal(info.Names, columnNames) {
				t.Errorf("columns = %v, want %v", info.Names, columnNames)
			}
			if !slices.Equal(info.Optional, []bool{true, true, true, true}) {
				t.Errorf("optional per column = %v, want all OPTIONAL", info.Optional)
			}
			if info.SchemaName != "spark_schema" {
				t.Errorf("schema name = %q, want spark_schema", info.SchemaName)
			}
			_, hasDict := info.Encodings["RLE_DICTIONARY"]
			if hasDict != w.dict {
				t.Errorf("encodings %v: dictionary used = %v, want %v", info.Encodings, hasDict, w.dict)
			}
			t.Logf("%d bytes, %d row groups, encodings %v", len(data), info.RowGroups, info.Encodings)

			for reader, summarize := range map[string]func([]byte) (Summary, error){
				"parquet-go": SummarizeParquetGo,
				"arrow-go":   SummarizeArrowGo,
			} {
				got, err := summarize(data)
				if err != nil {
					t.Errorf("read back with %s: %v", reader, err)
					continue
				}
				if got != want {
					t.Errorf("read back with %s: %+v, want %+v", reader, got, want)
				}
			}
		})
	}
}

// TestSummariesCatchAWrongFile guards the check itself: a file with a
// different row (one Code made null) must not summarize equal.
func TestSummariesCatchAWrongFile(t *testing.T) {
	src, err := LoadHydropower("testdata/hydropower-consumption.csv")
	if err != nil {
		t.Fatal(err)
	}
	bad := Replicate(src, len(src))
	for i := range bad {
		if bad[i][1] != nil {
			bad[i][1] = nil
			break
		}
	}
	for _, w := range writers {
		var buf bytes.Buffer
		if _, err := w.fn(&buf, bad, w.dict); err != nil {
			t.Fatalf("%s: write: %v", w.name, err)
		}
		for reader, summarize := range map[string]func([]byte) (Summary, error){
			"parquet-go": SummarizeParquetGo,
			"arrow-go":   SummarizeArrowGo,
		} {
			got, err := summarize(buf.Bytes())
			if err != nil {
				t.Fatalf("%s read by %s: %v", w.name, reader, err)
			}
			if got == Summarize(src) {
				t.Errorf("%s read by %s: a file with one more null Code summarized equal to the original", w.name, reader)
			}
			if got != Summarize(bad) {
				t.Errorf("%s read by %s: %+v, want %+v", w.name, reader, got, Summarize(bad))
			}
		}
	}
}
