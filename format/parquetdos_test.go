package format

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime/metrics"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	pformat "github.com/parquet-go/parquet-go/format"

	"github.com/sluicehq/sluice/schema"
)

// allocated is the bytes the process has allocated so far (runtime/metrics,
// no stop of the world).
func allocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// maxWorkAlloc bounds what loading one small corrupt file may allocate: a
// few pages at the test's 1 MiB page limit. Before the checks of
// parquetpage.go and checkShape each of the files below made parquet-go
// allocate from 500 MB to 64 GiB (the Go runtime's fatal out-of-memory
// error), or sluice loop for millions of rows.
const maxWorkAlloc = 64 << 20

// TestParquetLoadRefusesFilesThatStateMoreThanTheyHold loads small files
// whose sizes and counts lie — each class of input that made the fuzzer
// stall for seconds or the process run out of memory — and wants each
// refused with an error naming what is wrong, having allocated little (in
// bytes, not time: no test here depends on the machine's speed).
func TestParquetLoadRefusesFilesThatStateMoreThanTheyHold(t *testing.T) {
	for _, c := range parquetLies(t) {
		t.Run(c.name, func(t *testing.T) {
			before := allocated()
			_, _, _, err := loadParquet(t, c.data, c.cols, nil, ReadOptions{Quarantine: true, Limits: fuzzLimits})
			used := allocated() - before
			var re *RecordError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), c.want) || IsReadFailure(err) {
				t.Fatalf("got %v; want a RecordError containing %q", err, c.want)
			}
			if c.key != "" {
				var le *LimitError
				if !errors.As(err, &le) || le.Key != c.key {
					t.Fatalf("got %v; want a LimitError for %s", err, c.key)
				}
			}
			if used > maxWorkAlloc {
				t.Fatalf("refusing a %d-byte file allocated %d MiB; want at most %d MiB", len(c.data), used>>20, maxWorkAlloc>>20)
			}
		})
	}
}

// fuzzLimits are the limits FuzzParquetLoad and the tests of lying files
// load with: small enough that no input within them makes much work.
var fuzzLimits = Limits{MaxRecordBytes: 1 << 20, MaxObjectBytes: 8 << 20, MaxRecords: 4096, MaxFieldBytes: 1 << 10}

// parquetLie is a crafted file that lies, what it is loaded as and what
// the error must say.
type parquetLie struct {
	name string
	data []byte
	cols []Column
	want string
	key  string // the LimitError's key, if one
}

// parquetLies crafts one file of each kind of lie (also kept as inputs of
// FuzzParquetLoad in testdata/fuzz/FuzzParquetLoad).
func parquetLies(t testing.TB) []parquetLie {
	id := craftLeaf("id", pformat.Int64, pformat.Required)
	name := craftLeaf("name", pformat.ByteArray, pformat.Optional)
	name.LogicalType = pformat.LogicalType{Value: &pformat.StringType{}}
	reqName := craftLeaf("name", pformat.ByteArray, pformat.Required)
	reqName.LogicalType = name.LogicalType
	ok := craftLeaf("ok", pformat.Boolean, pformat.Required)
	idPage := craftPage{h: dataPageV1(3, pformat.Plain), data: plainInt64(1, 2, 3)}
	plainNames := []byte{1, 0, 0, 0, 'a', 1, 0, 0, 0, 'b', 1, 0, 0, 0, 'c'}
	// An RLE run of 2^31-1 values of 1: six bytes.
	huge := rleRun(math.MaxInt32, []byte{1})
	cols := []Column{{Field: "id", Type: schema.BigInt}, {Field: "name", Type: schema.Text}, {Field: "day", Type: schema.Date}, {Path: []string{"addr", "city"}, Type: schema.Text}}
	delta := func(total uint64) []byte {
		b := binary.AppendUvarint(nil, 128)
		b = binary.AppendUvarint(b, 4)
		b = binary.AppendUvarint(b, total)
		b = binary.AppendVarint(b, 5)
		return append(b, 0, 0, 0, 0, 0) // min delta 0, bit widths 0
	}
	int32s := func(v ...int32) []byte {
		b, err := parquet.DeltaBinaryPacked.EncodeInt32(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// DELTA_BYTE_ARRAY: a value of 20 KiB, then 3,999 more each repeating
	// it whole as their prefix: 80 MiB decoded from a 20 KiB page.
	const big, copies = 20 << 10, 4000
	prefix, suffix := make([]int32, copies), make([]int32, copies)
	for i := range prefix {
		prefix[i] = big
	}
	prefix[0], suffix[0] = 0, big
	dba := append(int32s(prefix...), int32s(suffix...)...)
	dba = append(dba, bytes.Repeat([]byte("x"), big)...)

	// 4,000 leaves and 4,000 row groups without chunks: parquet-go makes
	// 16 million chunk pointers (128 MB) before it sees that the chunks are
	// missing; 128,000 of each, within the default limits, 128 GB.
	wide := craftParquet(t, 0, nil, func(md *pformat.FileMetaData) {
		md.Schema[0].NumChildren = thrift.New(int32(4000))
		for i := range 4000 {
			md.Schema = append(md.Schema, craftLeaf(fmt.Sprint(i), pformat.Int64, pformat.Required))
		}
		md.RowGroups = make(thrift.Slice[pformat.RowGroup], 4000)
	})
	// 300 groups, each the only child of the one before.
	deep := craftParquet(t, 3, []craftColumn{{se: id, pages: []craftPage{idPage}}}, func(md *pformat.FileMetaData) {
		leaf := md.Schema[1]
		md.Schema = md.Schema[:1]
		md.Schema[0].NumChildren = thrift.New(int32(1))
		for i := range 300 {
			md.Schema = append(md.Schema, pformat.SchemaElement{Name: fmt.Sprint("g", i), NumChildren: thrift.New(int32(1))})
		}
		md.Schema = append(md.Schema, leaf)
	})
	dec := func(length, scale int32) pformat.SchemaElement {
		return pformat.SchemaElement{Name: "dec", Type: thrift.New(pformat.FixedLenByteArray), TypeLength: thrift.New(length), RepetitionType: thrift.New(pformat.Required),
			LogicalType: pformat.LogicalType{Value: &pformat.DecimalType{Scale: scale, Precision: 10}}}
	}
	decCols := []Column{{Field: "dec", Type: schema.Text}}
	return []parquetLie{
		{"row group rows past the file's", craftParquet(t, 3, []craftColumn{{se: craftLeaf("other", pformat.Int64, pformat.Required), pages: []craftPage{idPage}}},
			func(md *pformat.FileMetaData) { md.RowGroups[0].NumRows = 1 << 40 }), cols, "its row groups hold 1099511627776 rows, its footer says the file has 3", ""},
		{"leaves times row groups", wide, cols, "row group 1 has 0 column chunks for the schema's 4000 columns", ""},
		{"schema nesting", deep, cols, "its schema nests more than 255 levels deep", ""},
		{"definition level run, DATA_PAGE", craftParquet(t, 3, []craftColumn{{se: id, pages: []craftPage{idPage}},
			{se: name, pages: []craftPage{{h: dataPageV1(3, pformat.Plain), data: append(levelsV1(huge), plainNames...)}}}}, nil),
			cols, "column name: corrupt Parquet file: row group 1: the page at byte 49: its definition levels state more than 1030 values; the page holds 3", ""},
		{"definition level run, DATA_PAGE_V2", craftParquet(t, 3, []craftColumn{{se: id, pages: []craftPage{idPage}},
			{se: name, pages: []craftPage{{h: dataPageV2(3, 0, pformat.Plain, int32(len(huge))), data: append(huge, plainNames...)}}}}, nil),
			cols, "its definition levels state more than 1030 values; the page holds 3", ""},
		{"dictionary index run", craftParquet(t, 3, []craftColumn{{se: id, pages: []craftPage{
			{h: dictPage(1), data: plainInt64(7)}, {h: dataPageV1(3, pformat.RLEDictionary), data: append([]byte{1}, rleRun(math.MaxInt32, []byte{0})...)}}}}, nil),
			cols, "column id: corrupt Parquet file: row group 1: the page at byte 25: its dictionary indexes state more than 1030 values; the page holds 3", ""},
		{"RLE boolean run", craftParquet(t, 3, []craftColumn{{se: ok, pages: []craftPage{{h: dataPageV1(3, pformat.RLE), data: levelsV1(huge)}}}}, nil),
			[]Column{{Field: "ok", Type: schema.Boolean}}, "its RLE values state more than 1030 values; the page holds 3", ""},
		{"DELTA_BINARY_PACKED count", craftParquet(t, 3, []craftColumn{{se: id, pages: []craftPage{{h: dataPageV1(3, pformat.DeltaBinaryPacked), data: delta(math.MaxInt32)}}}}, nil),
			cols, "its DELTA_BINARY_PACKED values state 2147483647 values; the page holds 3", ""},
		{"DELTA_BINARY_PACKED count, 256 mini-blocks of 128 values", craftParquet(t, 3, []craftColumn{{se: id, pages: []craftPage{{h: dataPageV1(3, pformat.DeltaBinaryPacked),
			data: append(append(binary.AppendUvarint(binary.AppendUvarint(binary.AppendUvarint(nil, 128), 256), math.MaxInt32), 10), make([]byte, 64)...)}}}}, nil),
			cols, "its DELTA_BINARY_PACKED values state 2147483647 values; the page holds 3", ""},
		{"DELTA_LENGTH_BYTE_ARRAY dictionary lengths", craftParquet(t, 3, []craftColumn{{se: reqName, pages: []craftPage{
			{h: pformat.PageHeader{Type: pformat.DictionaryPage, DictionaryPageHeader: thrift.New(pformat.DictionaryPageHeader{NumValues: 1, Encoding: pformat.DeltaLengthByteArray})},
				data: append(int32s(math.MaxInt32), 'x')},
			{h: dataPageV1(3, pformat.RLEDictionary), data: []byte{1, 6, 0}}}}}, nil),
			[]Column{{Field: "name", Type: schema.Text}}, "decodes to DELTA_LENGTH_BYTE_ARRAY values of more than 1048576 bytes", KeyMaxRecordBytes},
		{"DELTA_LENGTH_BYTE_ARRAY count", craftParquet(t, 3, []craftColumn{{se: id, pages: []craftPage{idPage}},
			{se: reqName, pages: []craftPage{{h: dataPageV1(3, pformat.DeltaLengthByteArray), data: delta(math.MaxInt32)}}}}, nil),
			cols, "its DELTA_LENGTH_BYTE_ARRAY values state 2147483647 values; the page holds 3", ""},
		{"DELTA_BYTE_ARRAY prefixes", craftParquet(t, copies, []craftColumn{{se: reqName, pages: []craftPage{{h: dataPageV1(copies, pformat.DeltaByteArray), data: dba}}}}, nil),
			[]Column{{Field: "name", Type: schema.Text}}, "decodes to DELTA_BYTE_ARRAY values of more than 1048576 bytes", KeyMaxRecordBytes},
		{"DECIMAL of 2^30 bytes", craftParquet(t, 3, []craftColumn{{se: dec(1<<30, 0), pages: []craftPage{{h: dictPage(64), data: make([]byte, 16)}, {h: dataPageV1(3, pformat.RLEDictionary), data: []byte{1, 6, 0}}}}}, nil),
			decCols, "column dec: the Parquet column has type FIXED_LEN_BYTE_ARRAY DECIMAL(10,0) of 1073741824 bytes, which sluice does not load", ""},
		{"DECIMAL scale", craftParquet(t, 3, []craftColumn{{se: dec(16, math.MinInt32), pages: []craftPage{{h: dataPageV1(3, pformat.Plain), data: make([]byte, 48)}}}}, nil),
			decCols, "which sluice does not load: it loads decimals of 0 <= scale <= precision <= 2466", ""},
		{"FIXED_LEN_BYTE_ARRAY dictionary", craftParquet(t, 3, []craftColumn{{se: dec(1024, 0), pages: []craftPage{{h: dictPage(1 << 17), data: make([]byte, 1024)}, {h: dataPageV1(3, pformat.RLEDictionary), data: []byte{1, 6, 0}}}}}, nil),
			decCols, "decodes to 131072 values of 1024 bytes; for Parquet limits.max_record_bytes bounds one page", KeyMaxRecordBytes},
		{"stored page larger than decoded", craftParquet(t, 3, []craftColumn{{se: id, codec: pformat.Snappy, pages: []craftPage{{h: pformat.PageHeader{Type: pformat.DataPage, UncompressedPageSize: 24,
			DataPageHeader: thrift.New(pformat.DataPageHeader{NumValues: 3})}, data: make([]byte, 4200)}}}}, nil),
			cols, "a page at byte 4 stores 4200 bytes that it says decode to 24", ""},
	}
}

// TestParquetLoadBoundsTheTextOfABatch loads a dictionary of one 1 MiB
// value named by 200 rows (a few bytes of indexes): the batches hold
// about maxBatchBytes of text each, not 200 MiB.
func TestParquetLoadBoundsTheTextOfABatch(t *testing.T) {
	name := craftLeaf("name", pformat.ByteArray, pformat.Required)
	const rows, size = 200, 1 << 20
	dict := binary.LittleEndian.AppendUint32(nil, size)
	dict = append(dict, bytes.Repeat([]byte("a"), size)...)
	data := craftParquet(t, rows, []craftColumn{{se: name, pages: []craftPage{{h: dictPage(1), data: dict},
		{h: dataPageV1(rows, pformat.RLEDictionary), data: append([]byte{1}, rleRun(rows, []byte{0})...)}}}}, nil)
	rd, err := NewReader(context.Background(), bytes.NewReader(data), ReadOptions{Format: InputParquet, Mapper: mustMapper(t, []Column{{Field: "name", Type: schema.Text}}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	n := 0
	for {
		b, err := rd.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if held := heldBytes(b); held > maxBatchBytes+size {
			t.Fatalf("a batch of %d rows holds %d MiB of text; want at most %d MiB", b.Len(), held>>20, (maxBatchBytes+size)>>20)
		}
		for i := range b.Len() {
			if v := b.Vecs[0].TextString(i); len(v) != size {
				t.Fatalf("row %d has %d bytes, want %d", n+i+1, len(v), size)
			}
		}
		n += b.Len()
	}
	if n != rows {
		t.Fatalf("loaded %d rows, want %d", n, rows)
	}
}

// TestParquetLoadReadsDeltaAndDictionaryEncodings loads, value for value,
// pages of the encodings whose contents checkPage walks, as parquet-go
// writes them: DELTA_BINARY_PACKED, DELTA_BYTE_ARRAY (long shared
// prefixes), dictionary-encoded UUIDs and optional strings.
func TestParquetLoadReadsDeltaAndDictionaryEncodings(t *testing.T) {
	type row struct {
		ID   int64    `parquet:"id,delta"`
		Day  int32    `parquet:"day,delta,date"`
		URL  string   `parquet:"url,delta"`
		Tag  *string  `parquet:"tag,optional,dict"`
		U    [16]byte `parquet:"u,uuid,dict"`
		Note string   `parquet:"note,delta"`
	}
	var rows []row
	for i := range 5000 {
		r := row{ID: int64(i*i) - 7, Day: int32(19000 + i%400), URL: fmt.Sprintf("https://example.com/a/very/long/shared/prefix/%08d", i*37)}
		if i%3 != 0 {
			r.Tag = ptr(fmt.Sprint("tag", i%11))
		}
		r.Note = strings.Repeat("n", i%50) + fmt.Sprint(i)
		r.U[0], r.U[15] = byte(i%7), 0xab
		rows = append(rows, r)
	}
	for _, codec := range []parquet.WriterOption{parquet.Compression(&parquet.Snappy), parquet.Compression(&parquet.Zstd), parquet.Compression(&parquet.Uncompressed)} {
		data := writeParquet(t, rows, codec, parquet.PageBufferSize(4096))
		cols := []Column{{Field: "id", Type: schema.BigInt}, {Field: "day", Type: schema.Date}, {Field: "url", Type: schema.Text},
			{Field: "tag", Type: schema.Text}, {Field: "u", Type: schema.Text}, {Field: "note", Type: schema.Text}}
		got, rejects, _, err := loadParquet(t, data, cols, nil, ReadOptions{})
		if err != nil || len(rejects) > 0 || len(got) != len(rows) {
			t.Fatalf("got %d rows, %d rejects, %v", len(got), len(rejects), err)
		}
		for i, r := range rows {
			g := got[i]
			u := fmt.Sprintf("%02x000000-0000-0000-0000-0000000000ab", r.U[0])
			if g[0] != r.ID || g[1].(interface{ Unix() int64 }).Unix() != int64(r.Day)*86400 || g[2] != r.URL || g[4] != u ||
				(r.Tag == nil) != (g[3] == nil) || (r.Tag != nil && g[3] != *r.Tag) || g[5] != r.Note {
				t.Fatalf("row %d = %v, want %+v", i+1, g, r)
			}
		}
	}
}
