package curate

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	pformat "github.com/parquet-go/parquet-go/format"
)

// dataPageEncodings returns, per column name and row group, the encodings of
// the column chunk's data pages (from the footer's page encoding stats) and
// whether the chunk has a dictionary page.
func dataPageEncodings(t *testing.T, data []byte) (encs map[string][][]pformat.Encoding, dict map[string][]bool) {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("parquet-go cannot open the part: %v", err)
	}
	encs, dict = map[string][][]pformat.Encoding{}, map[string][]bool{}
	for _, rg := range f.Metadata().RowGroups {
		for _, c := range rg.Columns {
			name := strings.Join(c.MetaData.PathInSchema, ".")
			var e []pformat.Encoding
			for _, st := range c.MetaData.EncodingStats {
				if st.PageType != pformat.DictionaryPage && !slices.Contains(e, st.Encoding) {
					e = append(e, st.Encoding)
				}
			}
			slices.Sort(e)
			encs[name] = append(encs[name], e)
			dict[name] = append(dict[name], c.MetaData.DictionaryPageOffset > 0)
		}
	}
	return encs, dict
}

// assertChunkStatistics checks that every column chunk of a part has its
// min, max and null count, and a column index: readers skip row groups and
// pages by them (page headers carry no statistics, as parquet-mr writes).
func assertChunkStatistics(t *testing.T, key string, data []byte) {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for i, rg := range f.Metadata().RowGroups {
		for _, c := range rg.Columns {
			st := c.MetaData.Statistics
			if st.MinValue == nil || st.MaxValue == nil || c.ColumnIndexLength == 0 {
				t.Errorf("%s row group %d column %v: statistics %+v, column index %d bytes; want min, max and an index", key, i, c.MetaData.PathInSchema, st, c.ColumnIndexLength)
			}
		}
	}
}

// formatRow renders a row for comparison: null as <null>, strings quoted,
// floats by their bits so that equality is exact.
func formatRow(r parquet.Row) string {
	var b strings.Builder
	for i, v := range r {
		if i > 0 {
			b.WriteString(" | ")
		}
		switch {
		case v.IsNull():
			b.WriteString("<null>")
		case v.Kind() == parquet.ByteArray:
			b.WriteString(strconv.Quote(string(v.ByteArray())))
		case v.Kind() == parquet.Int32:
			b.WriteString(strconv.Itoa(int(v.Int32())))
		case v.Kind() == parquet.Float:
			fmt.Fprintf(&b, "%g/%#x", v.Float(), math.Float32bits(v.Float()))
		default:
			b.WriteString(v.String())
		}
	}
	return b.String()
}

func TestHydropowerPartsDictionaryEncodeTheStringsAndReadBackAsExactlyTheInputRows(t *testing.T) {
	st := newMemStore()
	data := hydroCSV(t)
	facts := hydroFacts(t, data)
	st.put(t, "data/x/h.csv", data)
	spec := hydroSpec("data/x/", "curated/x/")
	spec.MaxRowsPerFile = 1500 // a part spans a full and a partial batch of 1024
	res, err := Run(context.Background(), st, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 3 {
		t.Fatalf("files = %d, want 3 parts of at most 1500 rows", res.Files)
	}

	var want []string
	for _, rec := range facts.records {
		code := "<null>"
		if rec[1] != "" {
			code = strconv.Quote(rec[1])
		}
		y, err := strconv.ParseInt(rec[2], 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		c, err := strconv.ParseFloat(rec[3], 32)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, fmt.Sprintf("%s | %s | %d | %g/%#x", strconv.Quote(rec[0]), code, y, float32(c), math.Float32bits(float32(c))))
	}

	var got []string
	for _, ob := range res.Outputs {
		if strings.HasSuffix(ob.Key, "/_SUCCESS") {
			continue
		}
		part := readObject(t, st, ob.Key)
		encs, dict := dataPageEncodings(t, part)
		for _, col := range []string{"Entity", "Code", "Year", "consumption"} {
			if len(encs[col]) == 0 {
				t.Fatalf("%s: no column chunk for %s", ob.Key, col)
			}
			want, wantDict := []pformat.Encoding{pformat.Plain}, false // numbers
			if col == "Entity" || col == "Code" {
				want, wantDict = []pformat.Encoding{pformat.RLEDictionary}, true
			}
			for rg, e := range encs[col] {
				if !slices.Equal(e, want) || dict[col][rg] != wantDict {
					t.Errorf("%s row group %d column %s: data pages %v, dictionary page %v; want %v, %v", ob.Key, rg, col, e, dict[col][rg], want, wantDict)
				}
			}
		}
		assertChunkStatistics(t, ob.Key, part)
		for _, r := range readParquet(t, part).rows {
			got = append(got, formatRow(r))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("read back %d rows, the CSV has %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("row %d reads back as %s, want %s", i, got[i], want[i])
		}
	}
}

func TestAReusedRowSlotNeverCarriesAValueIntoALaterRow(t *testing.T) {
	// Rows cycle long string, short string, null (empty field) in column s,
	// and the opposite phase in column t, over 2,500 rows: every batch slot
	// is reused for each kind of value, across batches and across parts.
	var csv strings.Builder
	csv.WriteString("s,t,n\n")
	var want []string
	cell := func(i, phase int) (field, read string) {
		switch (i + phase) % 3 {
		case 0:
			v := fmt.Sprintf("long-%d-%s", i, strings.Repeat("x", 300))
			return v, strconv.Quote(v)
		case 1:
			v := fmt.Sprintf("s%d", i%10)
			return v, strconv.Quote(v)
		}
		return "", "<null>"
	}
	for i := range 2500 {
		s, sr := cell(i, 0)
		tt, tr := cell(i, 1)
		n, nr := "", "<null>"
		if i%2 == 0 {
			n, nr = strconv.Itoa(i), strconv.Itoa(i)
		}
		fmt.Fprintf(&csv, "%s,%s,%s\n", s, tt, n)
		want = append(want, sr+" | "+tr+" | "+nr)
	}
	st := newMemStore()
	st.put(t, "in/r/a.csv", []byte(csv.String()))
	spec := Spec{Input: "in/r/", Output: "out/r", MaxRowsPerFile: 1100, Columns: []Column{
		{Name: "s", Type: "string"}, {Name: "t", Type: "string"}, {Name: "n", Type: "int32"},
	}}
	res, err := Run(context.Background(), st, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, pf := range readOutput(t, st, res) {
		for _, r := range pf.rows {
			got = append(got, formatRow(r))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("read back %d rows, wrote %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("row %d reads back as %.80s…, want %.80s…", i, got[i], want[i])
		}
	}
}

func TestRunAllocatesAlmostNothingPerRow(t *testing.T) {
	// 83,520 rows: before typed vectors, each row cost a map, boxed
	// values and strings (about 10 allocations a row). Now allocations
	// come per chunk, row group and part, not per row.
	st := newMemStore()
	st.put(t, "data/a/h.csv", hydroCopies(t, 20))
	spec := hydroSpec("data/a/", "curated/a/")
	if _, err := Run(context.Background(), st, spec, nil); err != nil { // warm the pools
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := Run(context.Background(), st, spec, nil)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if perRow := float64(after.Mallocs-before.Mallocs) / float64(res.Rows); perRow > 0.05 {
		t.Errorf("curating %d rows allocated %d times, %.3f a row; want at most 0.05 a row", res.Rows, after.Mallocs-before.Mallocs, perRow)
	}
}

func TestAColumnOfDistinctStringsFallsBackToPlainPastTheDictionaryLimit(t *testing.T) {
	// 140,000 distinct 23-byte strings: the dictionary passes 1 MiB about
	// 45,000 rows into the first row group (131,072 rows); the second row
	// group starts a new dictionary.
	const rows = 140_000
	var in strings.Builder
	in.WriteString("s,k\n")
	for i := range rows {
		k := "same"
		if i%7 == 0 {
			k = ""
		}
		fmt.Fprintf(&in, "distinct-value-%08d,%s\n", i, k)
	}
	st := newMemStore()
	st.put(t, "in/d/a.csv", []byte(in.String()))
	spec := Spec{Input: "in/d/", Output: "out/d/", MaxRowsPerFile: math.MaxInt, Columns: []Column{{Name: "s", Type: "string"}, {Name: "k", Type: "string"}}}
	res, err := Run(context.Background(), st, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	data := readObject(t, st, res.Outputs[0].Key)
	encs, dict := dataPageEncodings(t, data)
	if len(encs["s"]) != 2 {
		t.Fatalf("%d row groups, want 2", len(encs["s"]))
	}
	dictOnly := []pformat.Encoding{pformat.RLEDictionary}
	if e := encs["s"][0]; !slices.Equal(e, []pformat.Encoding{pformat.Plain, pformat.RLEDictionary}) || !dict["s"][0] {
		t.Errorf("row group 0 column s: data pages %v, dictionary page %v; want RLE_DICTIONARY pages, then PLAIN after the fallback", e, dict["s"][0])
	}
	if e := encs["s"][1]; !slices.Equal(e, dictOnly) || !dict["s"][1] {
		t.Errorf("row group 1 column s: data pages %v, dictionary page %v; want a new dictionary, only RLE_DICTIONARY pages", e, dict["s"][1])
	}
	for rg, e := range encs["k"] {
		if !slices.Equal(e, dictOnly) || !dict["k"][rg] {
			t.Errorf("row group %d column k: data pages %v; want only RLE_DICTIONARY with a dictionary page", rg, e)
		}
	}
	got := readParquet(t, data).rows
	if len(got) != rows {
		t.Fatalf("read back %d rows, wrote %d", len(got), rows)
	}
	for i, r := range got {
		want := fmt.Sprintf("distinct-value-%08d", i)
		if string(r[0].ByteArray()) != want || r[1].IsNull() != (i%7 == 0) || (!r[1].IsNull() && string(r[1].ByteArray()) != "same") {
			t.Fatalf("row %d reads back as %s, want %q | %q (or null every 7th)", i, formatRow(r), want, "same")
		}
	}
}

func TestRowGroupsEncodedInParallelKeepTheirSizesAndTheRowOrder(t *testing.T) {
	// 334,080 rows with parts of 300,000: part 0 holds row groups of
	// 131,072, 131,072 and 37,856 rows (encoded concurrently, committed in
	// order), part 1 the remaining 34,080.
	data := hydroCopies(t, 80)
	st := newMemStore()
	st.put(t, "data/p/h.csv", data)
	spec := hydroSpec("data/p/", "curated/p/")
	spec.MaxRowsPerFile = 300_000
	res, err := Run(context.Background(), st, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	facts := hydroFacts(t, data)
	wantGroups := [][]int64{{131072, 131072, 37856}, {34080}}
	if res.Files != len(wantGroups) || res.Rows != int64(len(facts.records)) {
		t.Fatalf("%d files, %d rows; want %d files, %d rows", res.Files, res.Rows, len(wantGroups), len(facts.records))
	}
	row := 0
	for i, ob := range res.Outputs[:res.Files] {
		part := readObject(t, st, ob.Key)
		f, err := parquet.OpenFile(bytes.NewReader(part), int64(len(part)))
		if err != nil {
			t.Fatal(err)
		}
		var sizes []int64
		for _, rg := range f.Metadata().RowGroups {
			sizes = append(sizes, rg.NumRows)
		}
		if !slices.Equal(sizes, wantGroups[i]) {
			t.Errorf("part %d has row groups of %v rows, want %v", i, sizes, wantGroups[i])
		}
		for _, r := range readParquet(t, part).rows {
			rec := facts.records[row]
			if string(r[0].ByteArray()) != rec[0] || strconv.Itoa(int(r[2].Int32())) != rec[2] {
				t.Fatalf("row %d reads back as %s, want %q", row, formatRow(r), rec)
			}
			row++
		}
	}
}
