package format

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	pformat "github.com/parquet-go/parquet-go/format"

	"github.com/sluicehq/sluice/schema"
)

// writeParquet writes rows of T as a snappy Parquet file with parquet-go.
func writeParquet[T any](t testing.TB, rows []T, opts ...parquet.WriterOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf, append([]parquet.WriterOption{parquet.Compression(&parquet.Snappy)}, opts...)...)
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// loadParquet decodes data with the Parquet decoder.
func loadParquet(t testing.TB, data []byte, cols []Column, mo *MapperOptions, ro ReadOptions) ([][]any, []schema.Reject, Report, error) {
	t.Helper()
	m, err := NewMapper(cols, mo)
	if err != nil {
		t.Fatal(err)
	}
	ro.Format, ro.Mapper = InputParquet, m
	d := readAll(t, bytes.NewReader(data), ro)
	return d.rows, d.rejects, d.report, d.err
}

type pqRow struct {
	ID    int64     `parquet:"id"`
	Small int64     `parquet:"small"`
	Name  *string   `parquet:"name,optional"`
	Score *float64  `parquet:"score,optional"`
	OK    bool      `parquet:"ok"`
	Day   int32     `parquet:"day,date"`
	At    time.Time `parquet:"at,timestamp(microsecond)"`
	Num   string    `parquet:"num"`
}

func ptr[T any](v T) *T { return &v }

func sampleRows(n int) []pqRow {
	rows := make([]pqRow, n)
	for i := range rows {
		rows[i] = pqRow{
			ID: int64(i + 1), Small: int64(i) * 1000, OK: i%2 == 0,
			Day: int32(19000 + i), At: time.Date(2024, 1, 1, 0, 0, i, 1000*i, time.UTC),
			Num: []string{"12", "-7", "", "x"}[i%4],
		}
		if i%3 != 0 {
			rows[i].Name = ptr("name " + strings.Repeat("é", i%5))
			rows[i].Score = ptr(float64(i) / 4)
		}
	}
	return rows
}

func TestParquetLoadConvertsTypesAndRejectsValuesThatDoNotFit(t *testing.T) {
	rows := sampleRows(40)
	rows[5].Small = math.MaxInt32 + 1 // does not fit integer
	rows[9].Score = ptr(math.NaN())   // not finite
	data := writeParquet(t, rows)
	cols := []Column{
		{Field: "id", Type: schema.BigInt},
		{Field: "small", Type: schema.Integer},            // INT64 → integer, range checked
		{Field: "name", Type: schema.Text},                // STRING
		{Field: "score", Type: schema.Double},             // DOUBLE
		{Field: "ok", Type: schema.Text},                  // BOOLEAN → text
		{Field: "day", Type: schema.Timestamp},            // DATE → timestamp
		{Field: "at", Type: schema.Text},                  // TIMESTAMP → text
		{Name: "n", Field: "num", Type: schema.BigInt},    // STRING → bigint, cast as CSV
		{Name: "id_f", Field: "id", Type: schema.Double},  // INT64 → double
		{Name: "id_j", Field: "id", Type: schema.JSON},    // INT64 → json
		{Name: "day_t", Field: "day", Type: schema.Text},  // DATE → text
		{Name: "at_j", Field: "at", Type: schema.JSON},    // TIMESTAMP → json
		{Name: "ok_j", Field: "ok", Type: schema.Boolean}, // BOOLEAN
	}
	got, rejects, rep, err := loadParquet(t, data, cols, nil, ReadOptions{Quarantine: true, BatchRows: 8})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 40 || len(rep.Missing) > 0 || len(rep.Extra) > 0 {
		t.Fatalf("report %+v", rep)
	}
	// Rows 6 (small), 10 (score) and every 4th (num "x") are rejected.
	wantBad := map[int64]string{6: "column small (integer): want integer, got 2147483648 (out of range)", 10: "column score (double): want double, got NaN (not finite)"}
	for i := 4; i <= 40; i += 4 {
		if _, ok := wantBad[int64(i)]; !ok {
			wantBad[int64(i)] = `column num (bigint): want bigint, got "x"`
		}
	}
	if len(rejects) != len(wantBad) {
		t.Fatalf("%d rejects %+v; want %d", len(rejects), rejects, len(wantBad))
	}
	for _, r := range rejects {
		if wantBad[r.N] != r.Reason {
			t.Errorf("reject of row %d says %q; want %q", r.N, r.Reason, wantBad[r.N])
		}
		var raw map[string]any
		if err := json.Unmarshal([]byte(r.Raw), &raw); err != nil || raw["id"] != float64(r.N) {
			t.Errorf("reject of row %d has raw %q (%v); want the row's values as JSON", r.N, r.Raw, err)
		}
	}
	if len(got)+len(rejects) != 40 {
		t.Fatalf("%d rows and %d rejects for 40 records", len(got), len(rejects))
	}
	for _, row := range got {
		id := row[0].(int64)
		src := rows[id-1]
		if _, bad := wantBad[id]; bad {
			t.Fatalf("rejected row %d is among the rows", id)
		}
		want := []any{id, src.Small, nil, nil, "false", time.Unix(int64(src.Day)*86400, 0).UTC(), src.At.Format(time.RFC3339Nano), nil,
			float64(id), itoa(id), time.Unix(int64(src.Day)*86400, 0).UTC().Format(time.DateOnly), `"` + src.At.Format(time.RFC3339Nano) + `"`, src.OK}
		if src.Name != nil {
			want[2], want[3] = *src.Name, *src.Score
		}
		if src.OK {
			want[4] = "true"
		}
		if src.Num != "" {
			want[7] = int64(map[string]int{"12": 12, "-7": -7}[src.Num])
		}
		for j := range want {
			if !sameAny(row[j], want[j]) {
				t.Fatalf("row %d column %s = %#v, want %#v", id, cols[j].Field, row[j], want[j])
			}
		}
	}

	// Without quarantine the first rejected row stops the object.
	_, _, _, err = loadParquet(t, data, cols, nil, ReadOptions{BatchRows: 8})
	var re *RecordError
	if !errors.Is(err, ErrRejected) || !errors.As(err, &re) || re.Record != 4 || re.Column != "num" {
		t.Fatalf("got %v; want ErrRejected for record 4, column num", err)
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestParquetLoadRefusesAColumnWhoseTypeCannotLoadNamingBoth(t *testing.T) {
	data := writeParquet(t, sampleRows(3))
	for _, c := range []struct {
		col  Column
		want string
	}{
		{Column{Field: "ok", Type: schema.BigInt}, "column ok: the Parquet column has type BOOLEAN, which does not load into a bigint column (it loads into text, boolean, json)"},
		{Column{Field: "at", Type: schema.Date}, "column at: the Parquet column has type INT64 TIMESTAMP(isAdjustedToUTC=true,unit=MICROS), which does not load into a date column (it loads into text, timestamp, json)"},
		{Column{Field: "score", Type: schema.BigInt}, "does not load into a bigint column (it loads into real, double, text, json)"},
	} {
		_, _, _, err := loadParquet(t, data, []Column{c.col}, nil, ReadOptions{})
		var re *RecordError
		if !errors.As(err, &re) || errors.Is(err, ErrRejected) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s as %s: got %v; want a RecordError containing %q", c.col.Field, c.col.Type, err, c.want)
		}
	}
}

type nestedRow struct {
	ID   int64 `parquet:"id"`
	Addr *struct {
		City string  `parquet:"city"`
		Zip  *string `parquet:"zip,optional"`
	} `parquet:"addr,optional"`
	Tags  []string `parquet:"tags,list"`
	Note  *string  `parquet:"note,optional"`
	Score float32  `parquet:"score"`
}

func nestedRows() []nestedRow {
	rows := []nestedRow{{ID: 1, Note: ptr("a\"b"), Score: 0.1}, {ID: 2, Score: 2.5}, {ID: 3, Tags: []string{"x"}, Score: -1}}
	rows[0].Addr = &struct {
		City string  `parquet:"city"`
		Zip  *string `parquet:"zip,optional"`
	}{City: "Oslo", Zip: ptr("0150")}
	rows[2].Addr = &struct {
		City string  `parquet:"city"`
		Zip  *string `parquet:"zip,optional"`
	}{City: "Bergen"}
	return rows
}

func TestParquetLoadAppliesTheMissingAndExtraPolicies(t *testing.T) {
	data := writeParquet(t, nestedRows())
	base := []Column{{Field: "id", Type: schema.BigInt}, {Path: []string{"addr", "city"}, Type: schema.Text}, {Field: "absent", Type: schema.Text}}

	t.Run("warn lists missing and undeclared columns", func(t *testing.T) {
		got, _, rep, err := loadParquet(t, data, base, nil, ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0][1] != "Oslo" || got[1][1] != nil || got[2][2] != nil {
			t.Fatalf("rows %v", got)
		}
		var extra []string
		for _, e := range rep.Extra {
			extra = append(extra, e.Field)
		}
		if strings.Join(rep.Missing, ",") != "absent" || strings.Join(extra, ",") != "addr.zip,tags,note,score" {
			t.Fatalf("report %+v; want absent missing and addr.zip, tags, note, score extra", rep)
		}
	})
	t.Run("missing error fails the object", func(t *testing.T) {
		_, _, _, err := loadParquet(t, data, base, &MapperOptions{OnMissing: MissingError}, ReadOptions{})
		var re *RecordError
		if !errors.As(err, &re) || re.Column != "absent" || errors.Is(err, ErrRejected) {
			t.Fatalf("got %v; want a RecordError for column absent", err)
		}
	})
	t.Run("extra error rejects every row", func(t *testing.T) {
		_, rejects, _, err := loadParquet(t, data, base[:2], &MapperOptions{Extra: ExtraError}, ReadOptions{Quarantine: true})
		if err != nil || len(rejects) != 3 || !strings.Contains(rejects[0].Reason, "column addr.zip: the column is not declared") {
			t.Fatalf("got %v, rejects %+v", err, rejects)
		}
	})
	t.Run("extra json keeps undeclared values nested, repeated ones refused", func(t *testing.T) {
		cols := append(base[:2:2], Column{Name: "_extra", Type: schema.JSON})
		_, _, _, err := loadParquet(t, data, cols, &MapperOptions{Extra: ExtraJSON, ExtraColumn: "_extra"}, ReadOptions{})
		if err == nil || !strings.Contains(err.Error(), "column tags: the undeclared column is repeated") {
			t.Fatalf("got %v; want the repeated column tags refused", err)
		}
		type flat struct {
			ID   int64 `parquet:"id"`
			Addr *struct {
				City string  `parquet:"city"`
				Zip  *string `parquet:"zip,optional"`
			} `parquet:"addr,optional"`
			Note  *string `parquet:"note,optional"`
			Score float32 `parquet:"score"`
		}
		var fr []flat
		for _, r := range nestedRows() {
			fr = append(fr, flat{ID: r.ID, Addr: r.Addr, Note: r.Note, Score: r.Score})
		}
		got, _, rep, err := loadParquet(t, writeParquet(t, fr), cols, &MapperOptions{Extra: ExtraJSON, ExtraColumn: "_extra"}, ReadOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{`{"addr":{"zip":"0150"},"note":"a\"b","score":0.1}`, `{"score":2.5}`, `{"score":-1}`}
		for i, w := range want {
			if got[i][2] != w {
				t.Errorf("row %d extra = %v, want %s", i+1, got[i][2], w)
			}
			if !json.Valid([]byte(w)) {
				t.Fatalf("bad test: %s", w)
			}
		}
		if rep.ExtraColumn != "_extra" {
			t.Errorf("report %+v", rep)
		}
	})
	t.Run("a declared repeated or group column is refused", func(t *testing.T) {
		for _, c := range []Column{{Field: "tags", Type: schema.Text}, {Field: "addr", Type: schema.Text}} {
			_, _, _, err := loadParquet(t, data, []Column{c}, nil, ReadOptions{})
			if err == nil || !strings.Contains(err.Error(), "column "+c.Field+":") {
				t.Errorf("%s: got %v; want an error naming the column", c.Field, err)
			}
		}
	})
	t.Run("a required column with NULLs rejects those rows", func(t *testing.T) {
		cols := []Column{{Field: "id", Type: schema.BigInt}, {Field: "note", Type: schema.Text, Required: true}}
		got, rejects, _, err := loadParquet(t, data, cols, &MapperOptions{Extra: ExtraIgnore}, ReadOptions{Quarantine: true})
		if err != nil || len(got) != 1 || len(rejects) != 2 || rejects[0].Reason != "column note (text): required field is null" || rejects[0].Raw != `{"id":2,"note":null}` {
			t.Fatalf("rows %v rejects %+v err %v", got, rejects, err)
		}
	})
}

func TestParquetLoadLimits(t *testing.T) {
	rows := sampleRows(5000)
	data := writeParquet(t, rows)
	cols := []Column{{Field: "id", Type: schema.BigInt}, {Field: "name", Type: schema.Text}}
	for _, c := range []struct {
		name string
		lim  Limits
		key  string
	}{
		{"records", Limits{MaxRecords: 4999}, KeyMaxRecords},
		{"a page larger than max_record_bytes", Limits{MaxRecordBytes: 4 << 10}, KeyMaxRecordBytes},
		{"a value longer than max_field_bytes", Limits{MaxFieldBytes: 9}, KeyMaxFieldBytes},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, _, err := loadParquet(t, data, cols, nil, ReadOptions{Limits: c.lim})
			var le *LimitError
			var re *RecordError
			if !errors.As(err, &le) || le.Key != c.key || !errors.As(err, &re) {
				t.Fatalf("got %v; want a RecordError wrapping a LimitError for %s", err, c.key)
			}
		})
	}
	t.Run("decoded bytes past max_object_bytes", func(t *testing.T) {
		// 2,000 values of 1,000 bytes: 2 MB decoded, a few KiB as snappy.
		rows := sampleRows(2000)
		for i := range rows {
			rows[i].Name = ptr(strings.Repeat("a", 999) + string(rune('a'+i%26)))
		}
		data := writeParquet(t, rows)
		_, _, _, err := loadParquet(t, data, cols, nil, ReadOptions{Limits: Limits{MaxObjectBytes: 1 << 20}})
		var le *LimitError
		if len(data) > 1<<20 || !errors.As(err, &le) || le.Key != KeyMaxObjectBytes {
			t.Fatalf("a %d-byte file decoding to 2 MB under a 1 MiB limit gave %v; want a LimitError for %s", len(data), err, KeyMaxObjectBytes)
		}
	})
}

func TestParquetLoadRefusesFilesThatAreNotParquetOrAreBroken(t *testing.T) {
	data := writeParquet(t, sampleRows(100))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(data)
	zw.Close()
	long := append(bytes.Clone(data[:len(data)-8]), 0xff, 0xff, 0xff, 0x7f, 'P', 'A', 'R', '1')
	cols := []Column{{Field: "id", Type: schema.BigInt}}
	for _, c := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"csv", []byte("id\n1\n2\n3\n4\n5\n"), `not a Parquet file: it starts with "id\n1"`},
		{"gzip", gz.Bytes(), "gzip-compressed"},
		{"truncated", data[:len(data)-100], "not a complete Parquet file"},
		{"footer longer than the file", long, "its footer claims"},
	} {
		_, _, _, err := loadParquet(t, c.in, cols, nil, ReadOptions{})
		var re *RecordError
		if !errors.As(err, &re) || !strings.Contains(err.Error(), c.want) || IsReadFailure(err) {
			t.Errorf("%s: got %v; want a RecordError containing %q", c.name, err, c.want)
		}
	}
}

// TestParquetLoadSurvivesCorruptFiles flips bytes of a valid file at
// random (a fixed seed) and loads each result: every outcome is rows or
// an error, never a panic, a hang or an allocation past the limits.
func TestParquetLoadSurvivesCorruptFiles(t *testing.T) {
	rows := sampleRows(300)
	for _, opt := range [][]parquet.WriterOption{nil, {parquet.Compression(&parquet.Zstd)}, {parquet.Compression(&parquet.Gzip), parquet.PageBufferSize(512)}} {
		data := writeParquet(t, rows, opt...)
		cols := []Column{{Field: "id", Type: schema.BigInt}, {Field: "name", Type: schema.Text}, {Field: "at", Type: schema.Timestamp}, {Field: "ok", Type: schema.Boolean}}
		rng := rand.New(rand.NewPCG(1, 2))
		for range 300 {
			bad := bytes.Clone(data)
			for range 1 + rng.IntN(4) {
				bad[rng.IntN(len(bad))] = byte(rng.Uint32())
			}
			_, _, _, _ = loadParquet(t, bad, cols, nil, ReadOptions{Limits: Limits{MaxRecordBytes: 1 << 20, MaxObjectBytes: 64 << 20}})
		}
	}
}

// TestParquetFooterCheckRefusesClaimsLargerThanTheFooter feeds checkFooter
// thrift that claims more than it holds.
func TestParquetFooterCheckRefusesClaimsLargerThanTheFooter(t *testing.T) {
	// Field 1, type list (9); list header 0xF? (long size) of structs (12),
	// size 2^31-1.
	hugeList := []byte{0x19, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00}
	// A string field claiming 1 GiB.
	hugeString := append([]byte{0x18}, binary.AppendUvarint(nil, 1<<30)...)
	// 100,000 empty structs in a list: a valid encoding that would make
	// the decoder allocate about 100 MB.
	many := append([]byte{0x19, 0xfc}, binary.AppendUvarint(nil, 100_000)...)
	many = append(many, make([]byte, 100_000)...)
	many = append(many, 0)
	for _, c := range []struct {
		name string
		in   []byte
		want error
	}{
		{"list", hugeList, nil},
		{"string", hugeString, nil},
		{"budget", many, errFooterBudget},
	} {
		err := checkFooter(c.in, 16<<20)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: got %v; want an error", c.name, err)
		}
	}
	if err := checkFooter(many, 1<<30); err != nil {
		t.Fatalf("within the budget the same footer gave %v", err)
	}
	// A real footer passes.
	data := writeParquet(t, sampleRows(10))
	n := binary.LittleEndian.Uint32(data[len(data)-8:])
	if err := checkFooter(data[len(data)-8-int(n):len(data)-8], 1<<20); err != nil {
		t.Fatalf("a real footer: %v", err)
	}
}

// TestParquetPageCheckRefusesDataThatExpandsPastItsHeader compresses more
// than a page header declares with every codec the check decompresses.
func TestParquetPageCheckRefusesDataThatExpandsPastItsHeader(t *testing.T) {
	plain := make([]byte, 8<<20) // 8 MiB of zeros: a few KiB compressed
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	enc, _ := zstd.NewWriter(nil)
	zs := enc.EncodeAll(plain, nil)
	sn := snappy.Encode(nil, plain)
	for _, c := range []struct {
		codec pformat.CompressionCodec
		data  []byte
	}{{pformat.Gzip, gz.Bytes()}, {pformat.Zstd, zs}, {pformat.Snappy, sn}} {
		sec := func() *io.SectionReader { return io.NewSectionReader(bytes.NewReader(c.data), 0, int64(len(c.data))) }
		if err := checkPageSize(c.codec, sec(), 1<<10); err == nil || !strings.Contains(err.Error(), "expands to more than") && !strings.Contains(err.Error(), "snappy") {
			t.Errorf("%s: 8 MiB declared as 1 KiB gave %v; want an error", c.codec, err)
		}
		if err := checkPageSize(c.codec, sec(), 8<<20); err != nil {
			t.Errorf("%s: the true size gave %v", c.codec, err)
		}
	}
	if err := checkCodec(pformat.Lz4Raw); err == nil {
		t.Error("LZ4_RAW is accepted")
	}
}

// FuzzParquetLoad loads arbitrary bytes as Parquet: every input gives
// consistent batches or an error, never a crash or a hang — and never
// much work: within fuzzLimits an input may allocate at most
// maxWorkAlloc bytes (counted, not timed). testdata/fuzz/FuzzParquetLoad
// keeps the inputs that once took seconds or gigabytes (parquetLies).
//
// The Go fuzzer minimizes every new interesting input for up to
// -fuzzminimizetime (60s): a Parquet input of 2 KB always takes all of
// it (the minimizer tries every pair of cut points), and the executions
// of a minimization that times out are not counted, so `execs` stalls for
// a minute at a time. -fuzzminimizetime=0 (or a count, e.g. 1000x) keeps
// the fuzzer fuzzing.
func FuzzParquetLoad(f *testing.F) {
	valid := writeParquet(f, sampleRows(20))
	f.Add(valid)
	f.Add(valid[:len(valid)/2])
	f.Add(writeParquet(f, nestedRows()))
	f.Add([]byte("PAR1PAR1"))
	cols := []Column{{Field: "id", Type: schema.BigInt}, {Field: "name", Type: schema.Text}, {Field: "day", Type: schema.Date}, {Path: []string{"addr", "city"}, Type: schema.Text}}
	f.Fuzz(func(t *testing.T, in []byte) {
		before := allocated()
		rows, rejects, _, err := loadParquet(t, in, cols, nil, ReadOptions{Quarantine: true, Limits: fuzzLimits})
		if used := allocated() - before; used > maxWorkAlloc {
			t.Fatalf("a %d-byte input allocated %d MiB (%v); want at most %d MiB", len(in), used>>20, err, maxWorkAlloc>>20)
		}
		if err == nil && len(rows)+len(rejects) == 0 && bytes.Equal(in, valid) {
			t.Fatal("the valid seed loads nothing")
		}
	})
}

// TestParquetFuzzCorpusHoldsTheLies checks that every crafted lying file
// is an input of FuzzParquetLoad in testdata/fuzz/FuzzParquetLoad (so the
// fuzzer starts from each), byte for byte as parquetLies makes it now.
// SLUICE_WRITE_FUZZ_CORPUS=1 writes them.
func TestParquetFuzzCorpusHoldsTheLies(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParquetLoad")
	for _, c := range parquetLies(t) {
		name := "lie-" + strings.NewReplacer(" ", "-", ",", "", "'", "", "^", "").Replace(c.name)
		want := []byte("go test fuzz v1\n[]byte(" + strconv.Quote(string(c.data)) + ")\n")
		path := filepath.Join(dir, name)
		if os.Getenv("SLUICE_WRITE_FUZZ_CORPUS") != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %v; it is not the file parquetLies makes (SLUICE_WRITE_FUZZ_CORPUS=1 writes it)", path, err)
		}
	}
}
