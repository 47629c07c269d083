package e2e

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/storetest"
)

// The bad-input corpus: testdata/bad/ holds the small hostile inputs (its
// README lists each case and what sluice does with it); the big ones —
// decompression bombs, 100 MB lines, 100,000 columns — are generated here
// at test time. TestBadInputCorpus feeds each case to `sluice run --once`
// beside good objects and checks what the user sees (the error names the
// object, the record or line, the column, and what to do) and that nothing
// else was affected: the good objects load completely, the bad object
// leaves no row behind (unless its load quarantines per record), and it is
// dead-lettered or refused — never silently dropped, never retried.

// corpusDir holds the corpus's small inputs.
const corpusDir = "../testdata/bad"

// corpusSpec loads everything under in/ (JSON, NDJSON by suffix, gzip and
// zstd detected) into rows, everything under csv/ into csvrows and
// everything under pq/ into pqrows.
const corpusSpec = `name: corpus
queue: "embedded?ack_wait=30s"
loads:
  rows:
    on: {prefix: in/}
    table: rows
%s    columns: {id: bigint, v: text, n: double, d: date}
  csvrows:
    on: {prefix: csv/}
    format: csv
    table: csvrows
    columns: {id: bigint, v: text, n: double}
  pqrows:
    on: {prefix: pq/}
    format: parquet
    table: pqrows
    columns: {id: bigint, v: text}
`

// specWith returns corpusSpec with extra keys (indented four spaces) in
// load rows.
func specWith(extra ...string) string {
	var b strings.Builder
	for _, e := range extra {
		b.WriteString("    " + e + "\n")
	}
	return fmt.Sprintf(corpusSpec, b.String())
}

// goodRows is what in/good.json and csv/good.csv each hold (ids 1 to 3);
// the corpus's own records use other ids.
const goodRows = 3

// corpusCase is one row of the corpus. The common flow: the good objects
// and the case's inputs are put in a fresh data dir's lake, `sluice run
// --once` runs once (its peak RSS measured), then every check below, then
// a second run that must find nothing to do. A case with custom has its
// own flow.
type corpusCase struct {
	name string
	// spec is the pipeline (default specWith()).
	spec string
	// files maps lake keys to the files of testdata/bad they hold.
	files map[string]string
	// gen writes generated inputs into dataDir's lake.
	gen func(t *testing.T, dataDir string)
	// puts are uploaded with `sluice put` before the run.
	puts []corpusPut
	// exit is the exit code of the run.
	exit int
	// dead maps each key that must be dead-lettered to fragments of its
	// reason, which `dlq show` and the run's final error both give.
	dead map[string][]string
	// loaded maps keys that must be loaded exactly once to the rows their
	// ledger entry records.
	loaded map[string]int
	// rows and csvRows count the rows of tables rows and csvrows besides
	// the good objects' 3 each; rejected the rows of rows__rejected.
	rows, csvRows, rejected int
	// logs are fragments of the run's log (warnings).
	logs []string
	// queries map one-value queries to their results.
	queries map[string]string
	// bomb marks the decompression bombs, whose peak RSS is reported.
	bomb   bool
	custom func(t *testing.T)
}

// corpusPut is one `sluice put` of a testdata file under key; err lists
// fragments of its error, nil when it must succeed.
type corpusPut struct {
	key, file string
	err       []string
}

// fixHint ends the reason of every dead letter about an object's data.
const fixHint = "fix the object and upload it again"

// quarantineHint ends the reason of every record that does not cast.
const quarantineHint = "or set on_bad_record: quarantine in load rows to load the other records and keep such records in rows__rejected"

// TestBadInputCorpus runs every case of corpusCases (see the top of this
// file and testdata/bad/README.md) and logs the decompression bombs' peak
// RSS and the time the corpus took.
func TestBadInputCorpus(t *testing.T) {
	begin := time.Now()
	var bombs []string
	for _, c := range corpusCases() {
		t.Run(c.name, func(t *testing.T) {
			if c.custom != nil {
				c.custom(t)
				return
			}
			m := c.run(t)
			if c.bomb {
				bombs = append(bombs, fmt.Sprintf("%s: peak RSS %.1f MiB in %s", c.name, float64(m.maxRSS)/(1<<20), m.took.Round(100*time.Millisecond)))
			}
		})
	}
	for _, b := range bombs {
		t.Log(b)
	}
	t.Logf("the corpus took %s", time.Since(begin).Round(time.Second))
}

func corpusCases() []corpusCase {
	return []corpusCase{
		// Compression and size.
		{
			name:  "truncated gzip",
			files: map[string]string{"in/truncated.json.gz": "truncated.json.gz"},
			exit:  1,
			dead:  map[string][]string{"in/truncated.json.gz": {"record 969 (line 1, byte 27086): decompressing gzip input: unexpected EOF", fixHint}},
		},
		{
			name:  "gzip magic with a garbage header",
			files: map[string]string{"in/garbage.json.gz": "gzip-bad-header.json.gz"},
			exit:  1,
			dead:  map[string][]string{"in/garbage.json.gz": {"reading gzip header: gzip: invalid header", fixHint}},
		},
		{
			name: "10 GiB of spaces in a JSON array, gzip",
			gen: func(t *testing.T, dataDir string) {
				size := writeInput(t, dataDir, "spaces.json.gz", 0, func(w io.Writer) error {
					return gzipBomb(w, "[", ' ', 10<<10, "]")
				})
				if size > 12<<20 {
					t.Fatalf("the bomb is %d bytes, want about 10 MiB", size)
				}
			},
			exit: 1,
			bomb: true,
			dead: map[string][]string{"in/spaces.json.gz": {
				"record 1 (line 1, byte 4294967296): the decompressed object is larger than limits.max_object_bytes = 4294967296 bytes (4 GiB); " +
					"raise limits.max_object_bytes in the spec if the object is genuine (a small compressed object that expands this far is a decompression bomb)", fixHint}},
		},
		{
			name: "10 GiB of NDJSON whitespace, gzip",
			gen: func(t *testing.T, dataDir string) {
				writeInput(t, dataDir, "spaces.ndjson.gz", 0, func(w io.Writer) error {
					return gzipBomb(w, "", ' ', 10<<10, "")
				})
			},
			exit: 1,
			bomb: true,
			dead: map[string][]string{"in/spaces.ndjson.gz": {
				"line 1, byte 4294967296: the decompressed object is larger than limits.max_object_bytes = 4294967296 bytes (4 GiB); raise limits.max_object_bytes in the spec", fixHint}},
		},
		{
			name: "10 GiB of NDJSON newlines, zstd",
			gen: func(t *testing.T, dataDir string) {
				size := writeInput(t, dataDir, "newlines.ndjson.zst", 0, func(w io.Writer) error {
					return zstdBomb(w, '\n', 10<<10)
				})
				if size > 4<<20 {
					t.Fatalf("the bomb is %d bytes, want well under 4 MiB", size)
				}
			},
			exit: 1,
			bomb: true,
			dead: map[string][]string{"in/newlines.ndjson.zst": {
				"the decompressed object is larger than limits.max_object_bytes = 4294967296 bytes (4 GiB); raise limits.max_object_bytes in the spec", fixHint}},
		},
		{
			name: "one 2 GiB JSON string, gzip",
			gen: func(t *testing.T, dataDir string) {
				size := writeInput(t, dataDir, "string.json.gz", 0, func(w io.Writer) error {
					return gzipBomb(w, `[{"id":10,"v":"ok"},{"id":11,"v":"`, 'x', 2<<10, `"}]`)
				})
				if size > 3<<20 {
					t.Fatalf("the bomb is %d bytes, want about 2 MiB", size)
				}
			},
			exit: 1,
			bomb: true,
			dead: map[string][]string{"in/string.json.gz": {
				"record 2 (line 1, byte 34): column v: the value is larger than limits.max_field_bytes = 16777216 bytes (16 MiB); raise limits.max_field_bytes in the spec to accept it", fixHint}},
		},
		{
			name: "a 100 MB NDJSON line (one value)",
			gen: func(t *testing.T, dataDir string) {
				writeInput(t, dataDir, "line.ndjson", 0, func(w io.Writer) error {
					io.WriteString(w, "{\"id\":10,\"v\":\"ok\"}\n{\"id\":11,\"v\":\"")
					repeat(w, 'x', 100e6)
					_, err := io.WriteString(w, "\"}\n{\"id\":12,\"v\":\"ok\"}\n")
					return err
				})
			},
			exit: 1,
			dead: map[string][]string{"in/line.ndjson": {
				"record 2 (line 2, byte 33): column v: the value is larger than limits.max_field_bytes = 16777216 bytes (16 MiB); raise limits.max_field_bytes in the spec to accept it", fixHint}},
		},
		{
			// Every value is small (the one field repeated 12.5 million
			// times, the last counting), so the record limit stops it.
			name: "a 100 MB NDJSON line (12.5 million small values)",
			gen: func(t *testing.T, dataDir string) {
				writeInput(t, dataDir, "wide-line.ndjson", 0, func(w io.Writer) error {
					io.WriteString(w, "{\"id\":10,\"v\":\"ok\"}\n{\"id\":11")
					block := bytes.Repeat([]byte(`,"v":"x"`), 1<<17) // 1 MiB
					for range 100 {
						w.Write(block)
					}
					_, err := io.WriteString(w, "}\n")
					return err
				})
			},
			exit: 1,
			dead: map[string][]string{"in/wide-line.ndjson": {
				"record 2 (line 2, byte 20): the record is larger than limits.max_record_bytes = 16777216 bytes (16 MiB); raise limits.max_record_bytes in the spec to accept it", fixHint}},
		},
		{
			name: "a 100 MB CSV record",
			gen: func(t *testing.T, dataDir string) {
				writeObject(t, dataDir, "csv/line.csv", func(w io.Writer) error {
					io.WriteString(w, "id,v,n\n10,ok,1\n11,")
					repeat(w, 'x', 100e6)
					_, err := io.WriteString(w, ",2\n12,ok,3\n")
					return err
				})
			},
			exit: 1,
			dead: map[string][]string{"csv/line.csv": {
				"line 3: the record is larger than limits.max_record_bytes = 16777216 bytes (16 MiB); raise limits.max_record_bytes in the spec to accept it", fixHint}},
		},

		// Encodings and line ends.
		{
			name:  "invalid UTF-8 in NDJSON",
			files: map[string]string{"in/invalid-utf8.ndjson": "invalid-utf8.ndjson"},
			exit:  1,
			dead:  map[string][]string{"in/invalid-utf8.ndjson": {"record 2 (line 2, byte 37): not valid UTF-8; convert the input to UTF-8", fixHint}},
		},
		{
			name:  "invalid UTF-8 in CSV",
			files: map[string]string{"csv/invalid-utf8.csv": "invalid-utf8.csv"},
			exit:  1,
			dead:  map[string][]string{"csv/invalid-utf8.csv": {"record 1 (line 2): column v: not valid UTF-8; convert the file to UTF-8", fixHint}},
		},
		{
			name:    "UTF-8 byte order mark in JSON loads",
			files:   map[string]string{"in/bom.json": "bom.json"},
			loaded:  map[string]int{"in/bom.json": 2},
			rows:    2,
			queries: map[string]string{"select count(*) from rows where v = 'bom'": "2"},
		},
		{
			name:    "byte order mark and CRLF in CSV load",
			files:   map[string]string{"csv/bom-crlf.csv": "bom-crlf.csv"},
			loaded:  map[string]int{"csv/bom-crlf.csv": 2},
			csvRows: 2,
			// The line ends are not part of the values; a quoted CRLF
			// inside a value is kept as a line break
			// (encoding/csv's rule: a quoted CRLF becomes LF).
			queries: map[string]string{"select group_concat(hex(v), ' ') from csvrows where id >= 10": "61 620A63"},
		},
		{
			name:    "CRLF line ends in NDJSON load",
			files:   map[string]string{"in/crlf.ndjson": "crlf.ndjson"},
			loaded:  map[string]int{"in/crlf.ndjson": 2},
			rows:    2,
			queries: map[string]string{"select group_concat(v, ',') from rows where id >= 10": "a,b"},
		},

		// Numbers, dates and other casts.
		{
			name:  "NaN literal in JSON",
			files: map[string]string{"in/nan.json": "nan.json"},
			exit:  1,
			dead:  map[string][]string{"in/nan.json": {"record 2 (line 1, byte 49): invalid character 'N' looking for beginning of value", fixHint}},
		},
		{
			name:  "Infinity literal in JSON",
			files: map[string]string{"in/infinity.json": "infinity.json"},
			exit:  1,
			dead:  map[string][]string{"in/infinity.json": {"record 1 (line 1, byte 23): invalid character 'I' looking for beginning of value", fixHint}},
		},
		{
			name:  "1e400 for a double in JSON",
			files: map[string]string{"in/1e400.json": "1e400.json"},
			exit:  1,
			dead:  map[string][]string{"in/1e400.json": {"record 2 (line 1): column n: want double, got number 1e400 (out of range)", fixHint, quarantineHint}},
		},
		{
			name:  `"NaN" string for a double in JSON`,
			files: map[string]string{"in/nan-string.json": "nan-string.json"},
			exit:  1,
			dead:  map[string][]string{"in/nan-string.json": {`record 1 (line 1): column n: want double, got string "NaN" (not finite)`, fixHint, quarantineHint}},
		},
		{
			name:  "NaN for a double in CSV",
			files: map[string]string{"csv/nan.csv": "nan.csv"},
			exit:  1,
			dead:  map[string][]string{"csv/nan.csv": {`record 2 (line 3): column n: want double, got "NaN" (not finite)`, fixHint, "set on_bad_record: quarantine in load csvrows"}},
		},
		{
			name:  "Inf for a double in CSV",
			files: map[string]string{"csv/inf.csv": "inf.csv"},
			exit:  1,
			dead:  map[string][]string{"csv/inf.csv": {`record 1 (line 2): column n: want double, got "Inf" (not finite)`, fixHint}},
		},
		{
			name:  "1e400 for a double in CSV",
			files: map[string]string{"csv/1e400.csv": "1e400.csv"},
			exit:  1,
			dead:  map[string][]string{"csv/1e400.csv": {`record 1 (line 2): column n: want double, got "1e400" (out of range)`, fixHint}},
		},
		{
			name:  "a number too big for bigint",
			files: map[string]string{"in/bigint.json": "bigint-overflow.json"},
			exit:  1,
			dead:  map[string][]string{"in/bigint.json": {"record 2 (line 1): column id: want bigint, got number 9223372036854775808 (out of range)", fixHint, quarantineHint}},
		},
		{
			name:  "a date in a wrong format",
			files: map[string]string{"in/date.json": "date-wrong-format.json"},
			exit:  1,
			dead:  map[string][]string{"in/date.json": {`record 2 (line 1): column d: want date, got string "02/01/2020" (want YYYY-MM-DD)`, fixHint, quarantineHint}},
		},

		// Shapes.
		{
			name:  "10,000-deep nested arrays",
			files: map[string]string{"in/deep-arrays.json": "deep-arrays.json"},
			exit:  1,
			dead:  map[string][]string{"in/deep-arrays.json": {"record 1 (line 1, byte 2): got an array, want an object", fixHint}},
		},
		{
			name:  "10,000-deep nested objects in a record",
			files: map[string]string{"in/deep-objects.json": "deep-objects.json"},
			exit:  1,
			dead:  map[string][]string{"in/deep-objects.json": {"record 1 (line 1, byte 50018): invalid character '{' exceeded max depth", fixHint}},
		},
		{
			name:   "9,990-deep nesting in a record loads (encoding/json's limit is 10,000)",
			files:  map[string]string{"in/deep-within-limit.json": "deep-within-limit.json"},
			loaded: map[string]int{"in/deep-within-limit.json": 1},
			rows:   1,
			logs:   []string{"undeclared fields dropped: a (first in record 1, line 1)"},
		},
		{
			name:  "a CSV row with fewer fields than the header",
			files: map[string]string{"csv/ragged.csv": "ragged-fewer.csv"},
			exit:  1,
			dead:  map[string][]string{"csv/ragged.csv": {"record 2 (line 3): 2 fields, header has 3", fixHint}},
		},
		{
			name:  "a CSV row with more fields than the header",
			files: map[string]string{"csv/ragged.csv": "ragged-more.csv"},
			exit:  1,
			dead:  map[string][]string{"csv/ragged.csv": {"record 2 (line 3): 4 fields, header has 3", fixHint}},
		},
		{
			name:  "an empty JSON object",
			files: map[string]string{"in/empty.json": "empty.json"},
			exit:  1,
			dead:  map[string][]string{"in/empty.json": {"empty input: no JSON value", fixHint}},
		},
		{
			name:  "an empty CSV object",
			files: map[string]string{"csv/empty.csv": "empty.csv"},
			exit:  1,
			dead:  map[string][]string{"csv/empty.csv": {"empty file: no header row", fixHint}},
		},
		{
			name:   "a CSV header without records loads nothing, once",
			files:  map[string]string{"csv/header-only.csv": "header-only.csv"},
			loaded: map[string]int{"csv/header-only.csv": 0},
		},
		{
			name:  "an object that is only null",
			files: map[string]string{"in/null.json": "null.json"},
			exit:  1,
			dead:  map[string][]string{"in/null.json": {"line 1, byte 1: the top-level value is null; want an array of objects, an object, or NDJSON", fixHint}},
		},
		{
			name:  "a top-level number",
			files: map[string]string{"in/scalar.json": "scalar.json"},
			exit:  1,
			dead:  map[string][]string{"in/scalar.json": {"line 1, byte 1: the top-level value is a number; want an array of objects, an object, or NDJSON", fixHint}},
		},
		{
			name:  "a top-level string",
			files: map[string]string{"in/string.json": "string.json"},
			exit:  1,
			dead:  map[string][]string{"in/string.json": {"line 1, byte 1: the top-level value is a string; want an array of objects", fixHint}},
		},
		{
			name:  "an array of scalars",
			files: map[string]string{"in/scalars.json": "array-of-scalars.json"},
			exit:  1,
			dead:  map[string][]string{"in/scalars.json": {"record 1 (line 1, byte 2): got a number, want an object", fixHint}},
		},
		{
			// One object is one record (documented), so an envelope
			// around the array loads one row of NULLs — with a warning
			// naming every missing field and the undeclared envelope.
			name:    "an object wrapping the array, on_missing: warn (default)",
			files:   map[string]string{"in/wrapper.json": "wrapper-object.json"},
			loaded:  map[string]int{"in/wrapper.json": 1},
			rows:    1,
			logs:    []string{"declared fields absent from all 1 records (misspelt, or a path that does not match the data?): id, v, n, d; undeclared fields dropped: data (first in record 1, line 1)"},
			queries: map[string]string{"select count(*) from rows where id is null and v is null": "1"},
		},
		{
			name:  "an object wrapping the array, on_missing: error",
			spec:  specWith("on_missing: error"),
			files: map[string]string{"in/wrapper.json": "wrapper-object.json"},
			exit:  1,
			dead: map[string][]string{"in/wrapper.json": {"column id: the declared field occurs in none of the object's 1 records; check its spelling and path in the spec, or set on_missing to warn",
				fixHint}},
		},
		{
			name:    "a single object where an array is usual loads as one record",
			files:   map[string]string{"in/single.json": "single-object.json"},
			loaded:  map[string]int{"in/single.json": 1},
			rows:    1,
			queries: map[string]string{"select v from rows where id = 10": "single"},
		},
		{
			name:    "trailing data after the array",
			files:   map[string]string{"in/trailing.json": "trailing-garbage.json"},
			exit:    1,
			dead:    map[string][]string{"in/trailing.json": {"line 1, byte 21: unexpected data after the JSON array", fixHint}},
			queries: map[string]string{"select count(*) from rows where id = 10": "0"},
		},
		{
			name: "a 100,000-column JSON record loads its declared columns",
			gen: func(t *testing.T, dataDir string) {
				writeInput(t, dataDir, "wide.json", 0, func(w io.Writer) error {
					io.WriteString(w, `[{"id":10,"v":"wide"`)
					for i := range 100_000 {
						fmt.Fprintf(w, `,"c%d":%d`, i, i)
					}
					_, err := io.WriteString(w, "}]\n")
					return err
				})
			},
			loaded: map[string]int{"in/wide.json": 1},
			rows:   1,
			logs:   []string{"undeclared fields dropped: c0 (first in record 1, line 1), c1 (first in record 1, line 1), "},
		},
		{
			name: "a 100,000-column CSV record loads its declared columns",
			gen: func(t *testing.T, dataDir string) {
				writeObject(t, dataDir, "csv/wide.csv", func(w io.Writer) error {
					io.WriteString(w, "id,v,n")
					for i := range 100_000 {
						fmt.Fprintf(w, ",c%d", i)
					}
					io.WriteString(w, "\n10,wide,1")
					for i := range 100_000 {
						fmt.Fprintf(w, ",%d", i)
					}
					_, err := io.WriteString(w, "\n")
					return err
				})
			},
			loaded:  map[string]int{"csv/wide.csv": 1},
			csvRows: 1,
			logs:    []string{"undeclared fields dropped: c0 (first in record 1, line 2), c1 (first in record 1, line 2), "},
		},
		{
			name:    "escaped control characters in a string load as they are",
			files:   map[string]string{"in/ctrl.json": "control-chars-escaped.json"},
			loaded:  map[string]int{"in/ctrl.json": 1},
			rows:    1,
			queries: map[string]string{"select hex(v) from rows where id = 10": "6101620963" + "1F"},
		},
		{
			name:  "a raw control character in a string",
			files: map[string]string{"in/ctrl-raw.json": "control-char-raw.json"},
			exit:  1,
			dead:  map[string][]string{"in/ctrl-raw.json": {`record 1 (line 1, byte 17): invalid character '\x01' in string literal`, fixHint}},
		},
		{
			name:  "a NUL character in a text value",
			files: map[string]string{"in/nul.json": "nul-escaped.json"},
			exit:  1,
			dead:  map[string][]string{"in/nul.json": {`record 1 (line 1): column v: text contains a NUL character (\u0000), which PostgreSQL cannot store`, fixHint, quarantineHint}},
		},

		// Duplicates.
		{
			// mapping.go: "When a key occurs twice in an object, the last
			// occurrence counts, as when encoding/json decodes into a map."
			name:    "the same field name twice in one record: the last counts",
			files:   map[string]string{"in/dup-field.json": "duplicate-field.json"},
			loaded:  map[string]int{"in/dup-field.json": 1},
			rows:    1,
			queries: map[string]string{"select v from rows where id = 10": "second"},
		},
		{
			// warehouse.go: "Within one object the row with the greatest
			// OrderBy per key wins, ties (and no OrderBy) going to the
			// later row."
			name:    "the same primary key twice in one object, write: merge: the later row wins",
			spec:    specWith("write: merge", "primary_key: [id]"),
			files:   map[string]string{"in/dup-key.json": "duplicate-key-merge.json"},
			loaded:  map[string]int{"in/dup-key.json": 2},
			rows:    2,
			queries: map[string]string{"select v from rows where id = 10": "second", "select count(*) from rows where id = 10": "1"},
		},
		{
			// The warehouse refuses the second row, so the object is
			// dead-lettered whole. (Its reason names the constraint but
			// not the record: see the report.)
			name:    "the same primary key twice in one object, write: append",
			spec:    specWith("primary_key: [id]"),
			files:   map[string]string{"in/dup-key.ndjson": "duplicate-key-append.ndjson"},
			exit:    1,
			dead:    map[string][]string{"in/dup-key.ndjson": {"insert record 8 (line 8) into rows: ", "invalid data: constraint failed: UNIQUE constraint failed: rows.id", "write: merge updates rows by key, or remove the duplicate", fixHint}},
			queries: map[string]string{"select count(*) from rows where id >= 10": "0"},
		},

		// Per-record policies and limits.
		{
			// The documented exception: with quarantine the good records
			// of a bad object load, each bad one goes to rows__rejected
			// with its record, line, reason and raw text.
			name:     "on_bad_record: quarantine keeps the good records and rejects the bad ones",
			spec:     specWith("on_bad_record: quarantine"),
			files:    map[string]string{"in/quarantine.ndjson": "quarantine.ndjson"},
			loaded:   map[string]int{"in/quarantine.ndjson": 1},
			rows:     1,
			rejected: 3,
			logs:     []string{`msg="rows quarantined" load=rows key=in/quarantine.ndjson`, "rejected=3 table=rows__rejected"},
			queries: map[string]string{
				"select group_concat(record || ':' || line, ' ') from (select * from rows__rejected order by record)": "2:2 3:3 4:4",
				"select reason from rows__rejected where record = 2":                                                  `record 2 (line 2): column n: want double, got string "x"`,
				"select reason from rows__rejected where record = 3":                                                  `record 3 (line 3): column d: want date, got string "31/12/2020" (want YYYY-MM-DD)`,
				"select reason from rows__rejected where record = 4":                                                  `record 4 (line 4): column n: want double, got number 1e400 (out of range)`,
				"select raw from rows__rejected where record = 2":                                                     `{"id":11,"v":"bad","n":"x","d":"2020-01-01"}`,
				"select id from rows where id >= 10":                                                                  "10",
			},
		},
		{
			name:  "more records than limits.max_records",
			spec:  specWith("limits: {max_records: 5}"),
			files: map[string]string{"in/many.ndjson": "max-records.ndjson"},
			exit:  1,
			dead:  map[string][]string{"in/many.ndjson": {"record 6 (line 6, byte 91): the object has more than limits.max_records = 5 records; raise limits.max_records in the spec or split the object", fixHint}},
		},

		// CSV syntax.
		{
			name:  "a CSV header naming a column twice",
			files: map[string]string{"csv/dup-header.csv": "duplicate-header.csv"},
			exit:  1,
			dead:  map[string][]string{"csv/dup-header.csv": {"line 1: column v: duplicate header name (fields 2 and 3)", fixHint}},
		},
		{
			name:  "an unterminated CSV quote",
			files: map[string]string{"csv/quote.csv": "unterminated-quote.csv"},
			exit:  1,
			dead: map[string][]string{"csv/quote.csv": {`line 3: extraneous or missing " in a quoted field (character 8); the record starts on line 2; ` +
				`a quoted field must close with " right before a delimiter or line end`, fixHint}},
		},
		{
			name:  "a bare quote in an unquoted CSV field",
			files: map[string]string{"csv/bare-quote.csv": "bare-quote.csv"},
			exit:  1,
			dead:  map[string][]string{"csv/bare-quote.csv": {`line 2: bare " in an unquoted field (character 5); quote the whole field and double the quotes inside it`, fixHint}},
		},

		// Parquet.
		{
			name:  "a .parquet object that is not Parquet",
			files: map[string]string{"pq/garbage.parquet": "not-parquet.parquet"},
			exit:  1,
			dead:  map[string][]string{"pq/garbage.parquet": {"corrupt Parquet file: its footer claims 544499061 bytes of a 29-byte file", fixHint}},
		},
		{
			name:  "an empty Parquet object",
			files: map[string]string{"pq/empty.parquet": "empty.parquet"},
			exit:  1,
			dead:  map[string][]string{"pq/empty.parquet": {"not a Parquet file: 0 bytes, too short for one", fixHint}},
		},

		// Keys.
		{
			name: `a key with a ".." segment is refused by put`,
			puts: []corpusPut{{key: "in/a/../b.json", file: "one-row.json", err: []string{`invalid object key "in/a/../b.json": contains a ".." segment`}}},
		},
		{
			name:    "a key with percent-2F loads once, the percent-2F kept",
			puts:    []corpusPut{{key: "in/a%2Fb.json", file: "one-row.json"}},
			loaded:  map[string]int{"in/a%2Fb.json": 1},
			rows:    1,
			queries: map[string]string{"select count(*) from _sluice_ledger where object_key like 'in/a/b%'": "0"},
		},
		{
			name:   "a key with spaces loads once",
			puts:   []corpusPut{{key: "in/with  two spaces .json", file: "one-row.json"}},
			loaded: map[string]int{"in/with  two spaces .json": 1},
			rows:   1,
		},
		{
			name:   "a unicode key loads once",
			puts:   []corpusPut{{key: "in/ünïcødé/日本語 🚀.json", file: "one-row.json"}},
			loaded: map[string]int{"in/ünïcødé/日本語 🚀.json": 1},
			rows:   1,
		},
		{
			name:   "a 1,024-byte key loads once",
			puts:   []corpusPut{{key: longKey(1024), file: "one-row.json"}},
			loaded: map[string]int{longKey(1024): 1},
			rows:   1,
		},
		{
			name: "a 1,025-byte key is refused by put",
			puts: []corpusPut{{key: longKey(1025), file: "one-row.json", err: []string{`invalid object key "` + longKey(1025) + `": longer than 1024 bytes`}}},
		},
		{
			// ValidateKey admits it, the file system does not (NAME_MAX);
			// nothing is left behind. (The error does not say what the
			// limit is: see the report.)
			name: "a key with a 300-byte segment is refused by the file store",
			puts: []corpusPut{{key: "in/" + strings.Repeat("s", 300) + ".json", file: "one-row.json", err: []string{"in/" + strings.Repeat("s", 300) + ".json", "at most 255 bytes per folder or file name: shorten it"}}},
		},
		{
			name: "a key below an object's key is refused by the file store",
			puts: []corpusPut{
				{key: "in/x.json", file: "one-row.json"},
				{key: "in/x.json/y.json", file: "one-row.json", err: []string{`part of "in/x.json/y.json" is an object in this file:// store, so it cannot also be a prefix of other objects`}},
			},
			loaded: map[string]int{"in/x.json": 1},
			rows:   1,
		},
		{
			name: "a key that is a prefix of objects is refused by the file store",
			puts: []corpusPut{
				{key: "in/dir/a.json", file: "one-row.json"},
				{key: "in/dir", file: "one-row.json", err: []string{`"in/dir" is a prefix of other objects in this file:// store, so it cannot also be an object`}},
			},
			loaded: map[string]int{"in/dir/a.json": 1},
			rows:   1,
		},
		{name: "files whose names cannot be keys are ignored, listed and fail the run", custom: corpusIgnoredFiles},

		// Notifications from an S3 server (versitygw's store, raw
		// notification JSON published to the NATS inbox).
		{name: "a notification with 0 records", custom: corpusNotificationEmpty},
		{name: "a notification with 1,000 records loads each object once", custom: corpusNotification1000},
		{name: "a notification for an object that no longer exists", custom: corpusNotificationGone},
		{name: "a message that is not a notification", custom: corpusNotificationNotJSON},

		// The spec itself.
		{name: "a spec with every kind of mistake", custom: corpusValidate},
	}
}

// longKey returns a key of n bytes under in/ ending in .json, in segments
// of at most 201 bytes (a file:// store's file names are at most 255).
func longKey(n int) string {
	var b strings.Builder
	b.WriteString("in/")
	for b.Len()+len(".json")+201 < n {
		b.WriteString(strings.Repeat("k", 200) + "/")
	}
	b.WriteString(strings.Repeat("k", n-b.Len()-len(".json")))
	b.WriteString(".json")
	return b.String()
}

// run is the common flow of a case.
func (c corpusCase) run(t *testing.T) measured {
	dataDir := t.TempDir()
	spec := c.spec
	if spec == "" {
		spec = specWith()
	}
	specFile := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(specFile, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	copyToLake(t, dataDir, "in/good.json", "good.json")
	copyToLake(t, dataDir, "csv/good.csv", "good.csv")
	for key, file := range c.files {
		copyToLake(t, dataDir, key, file)
	}
	if c.gen != nil {
		c.gen(t, dataDir)
	}
	for _, p := range c.puts {
		r := sluice(t, nil, "put", "--data-dir="+dataDir, "-f", specFile, filepath.Join(corpusDir, p.file), p.key)
		if p.err == nil {
			if r.code != 0 {
				t.Fatalf("put %q: exit %d\n%s", p.key, r.code, r.stderr)
			}
			continue
		}
		if r.code == 0 {
			t.Fatalf("put %q succeeded, want it refused:\n%s", p.key, r.stdout)
		}
		for _, f := range p.err {
			if !strings.Contains(r.stderr, f) {
				t.Errorf("put %q: the error lacks %q:\n%s", p.key, f, r.stderr)
			}
		}
	}
	if len(c.puts) > 0 {
		// A refused put leaves nothing behind, not even a temporary file.
		want := []string{"csv/good.csv", "in/good.json"}
		for _, p := range c.puts {
			if p.err == nil {
				want = append(want, p.key)
			}
		}
		if got := lakeFiles(t, dataDir); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			t.Errorf("the lake holds %q, want %q", got, want)
		}
	}

	m := corpusRun(t, dataDir, specFile)
	checkRSS(t, m)
	if m.code != c.exit {
		t.Fatalf("run --once: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", m.code, c.exit, m.stdout, tail(m.stderr, 4000))
	}
	if want := fmt.Sprintf("0 retried, %d dead-lettered", len(c.dead)); !strings.Contains(m.stdout, want) {
		t.Errorf("run --once's summary lacks %q:\n%s", want, m.stdout)
	}
	if want := fmt.Sprintf("%d row(s) quarantined", c.rejected); !strings.Contains(m.stdout, want) {
		t.Errorf("run --once's summary lacks %q:\n%s", want, m.stdout)
	}
	for _, f := range c.logs {
		if !strings.Contains(m.stderr, f) {
			t.Errorf("the log lacks %q:\n%s", f, tail(m.stderr, 3000))
		}
	}
	final := finalError(m.stderr)
	if c.exit != 0 && final == "" {
		t.Errorf("run --once exited %d without a final error:\n%s", m.code, tail(m.stderr, 3000))
	}
	for key, frags := range c.dead {
		for _, f := range append([]string{"object " + key + " (ETag "}, frags...) {
			if !strings.Contains(final, f) {
				t.Errorf("run --once's final error lacks %q:\n%s", f, final)
			}
		}
	}
	dl := corpusDeadLetters(t, dataDir)
	checkDeadLetters(t, dl, c.dead)
	c.checkTables(t, dataDir)

	// A second run finds nothing to do: nothing is retried, loaded twice
	// or dead-lettered again.
	m2 := corpusRun(t, dataDir, specFile)
	checkRSS(t, m2)
	if m2.code != 0 || !strings.Contains(m2.stdout, "loaded 0 object(s), 0 row(s)") || !strings.Contains(m2.stdout, "0 retried, 0 dead-lettered") {
		t.Errorf("a second run --once did something: exit %d\n%s\n%s", m2.code, m2.stdout, tail(m2.stderr, 3000))
	}
	if dl2 := corpusDeadLetters(t, dataDir); !maps.Equal(dl, dl2) {
		t.Errorf("the dead letters changed in a second run:\nbefore %v\nafter  %v", dl, dl2)
	}
	c.checkTables(t, dataDir)
	return m
}

// checkTables checks the tables: both good objects complete, exactly the
// expected rows besides them, each loaded key once in the ledger, no
// dead-lettered key in it.
func (c corpusCase) checkTables(t *testing.T, dataDir string) {
	t.Helper()
	checks := []sqlCheck{
		{"rows of in/good.json", "select count(*) from rows where id in (1, 2, 3) and v in ('a', 'b', 'c')", strconv.Itoa(goodRows)},
		{"rows of csv/good.csv", "select count(*) from csvrows where id in (1, 2, 3) and v in ('a', 'b', 'c')", strconv.Itoa(goodRows)},
		{"rows", "select count(*) from rows", strconv.Itoa(goodRows + c.rows)},
		{"csvrows", "select count(*) from csvrows", strconv.Itoa(goodRows + c.csvRows)},
		{"ledger rows (the good objects and those loaded)", "select count(*) from _sluice_ledger", strconv.Itoa(2 + len(c.loaded))},
	}
	if c.rejected > 0 {
		checks = append(checks, sqlCheck{"rows__rejected", "select count(*) from rows__rejected", strconv.Itoa(c.rejected)})
	}
	for _, key := range slices.Sorted(maps.Keys(c.dead)) {
		checks = append(checks, sqlCheck{"ledger rows of the dead-lettered " + key, "select count(*) from _sluice_ledger where object_key = " + sqlString(key), "0"})
	}
	for _, key := range slices.Sorted(maps.Keys(c.loaded)) {
		checks = append(checks, sqlCheck{"ledger rows of " + key + " and the rows they record",
			"select count(*) || ' ' || sum(rows) from _sluice_ledger where object_key = " + sqlString(key), fmt.Sprintf("1 %d", c.loaded[key])})
	}
	for _, query := range slices.Sorted(maps.Keys(c.queries)) {
		checks = append(checks, sqlCheck{query, query, c.queries[query]})
	}
	checkSQL(t, dataDir, checks)
}

// sqlCheck is a one-value query and the value it must give ("NULL" for
// NULL).
type sqlCheck struct{ what, query, want string }

// checkSQL runs every check in one `sluice sql` (one row of scalar
// subqueries, read as JSON).
func checkSQL(t *testing.T, dataDir string, checks []sqlCheck, env ...string) {
	t.Helper()
	cols := make([]string, len(checks))
	for i, c := range checks {
		cols[i] = fmt.Sprintf("(%s) as c%d", c.query, i)
	}
	r := mustRun(t, env, "sql", "--data-dir="+dataDir, "--format=json", "select "+strings.Join(cols, ", "))
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.UseNumber()
	var rows []map[string]any
	if err := dec.Decode(&rows); err != nil || len(rows) != 1 {
		t.Fatalf("sluice sql --format=json: %v, %d rows:\n%s", err, len(rows), r.stdout)
	}
	for i, c := range checks {
		v := rows[0][fmt.Sprintf("c%d", i)]
		got := fmt.Sprint(v)
		if v == nil {
			got = "NULL"
		}
		if got != c.want {
			t.Errorf("%s = %q, want %q\n(%s)", c.what, got, c.want, c.query)
		}
	}
}

// corpusRun runs `sluice run --once` with specFile on dataDir and
// measures its peak RSS.
//
// measure's ru_maxrss of the process it starts is not sluice's own peak
// on Linux: os/exec starts a child with vfork (CLONE_VM), and exec stores
// the high-water mark of the memory the child left — the test process's —
// in the child's ru_maxrss, so measure reads max(test process, sluice);
// after a bomb generator has run, that is the test process's. Here the
// test binary, started afresh as a helper (corpusRSSHelper), starts sluice
// and reports sluice's ru_maxrss: what exec carries over is then only the
// fresh helper's few MiB.
func corpusRun(t *testing.T, dataDir, specFile string, env ...string) measured {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rssFile := filepath.Join(t.TempDir(), "maxrss")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, bin, "run", "--data-dir="+dataDir, "-f", specFile, "--once")
	// A helper built with -race sleeps 1 s before a zero exit
	// (atexit_sleep_ms) unless told not to.
	cmd.Env = append(append(cleanEnv(), env...), corpusRSSHelperEnv+"="+rssFile, "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err = cmd.Run()
	m := measured{took: time.Since(start)}
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok || ctx.Err() != nil {
			t.Fatalf("sluice run --once: %v (after %s)\nstderr:\n%s", err, m.took, tail(errb.String(), 3000))
		}
	}
	m.result = result{out.String(), errb.String(), cmd.ProcessState.ExitCode()}
	kib, err := os.ReadFile(rssFile)
	if err != nil {
		t.Fatalf("sluice run --once: no peak RSS (%v); exit %d\n%s", err, m.code, tail(m.stderr, 3000))
	}
	if m.maxRSS, err = strconv.ParseInt(string(kib), 10, 64); err != nil {
		t.Fatal(err)
	}
	m.maxRSS <<= 10
	t.Logf("sluice run --once: exit %d in %s, peak RSS %.1f MiB", m.code, m.took.Round(100*time.Millisecond), float64(m.maxRSS)/(1<<20))
	return m
}

// corpusRSSHelperEnv, set to a file name, makes the test binary
// corpusRSSHelper: it runs its arguments as a command (stdio passed
// through), writes the command's ru_maxrss in KiB to the file and exits
// with the command's exit code, before TestMain builds anything.
const corpusRSSHelperEnv = "E2E_CORPUS_MAXRSS_FILE"

func init() {
	if out := os.Getenv(corpusRSSHelperEnv); out != "" {
		os.Exit(corpusRSSHelper(out))
	}
}

func corpusRSSHelper(out string) int {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "corpus RSS helper: no command")
		return 2
	}
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, corpusRSSHelperEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// Killed with the helper (the test's timeout kills the helper).
	runtime.LockOSThread()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	if cmd.ProcessState == nil {
		fmt.Fprintln(os.Stderr, "corpus RSS helper:", err)
		return 2
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		fmt.Fprintf(os.Stderr, "corpus RSS helper: no rusage (%T)\n", cmd.ProcessState.SysUsage())
		return 2
	}
	if err := os.WriteFile(out, []byte(strconv.FormatInt(ru.Maxrss, 10)), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "corpus RSS helper:", err)
		return 2
	}
	return cmd.ProcessState.ExitCode()
}

// finalError returns the error `sluice run` ended with ("" if none).
func finalError(stderr string) string {
	i := strings.LastIndex(stderr, "sluice run: ")
	if i < 0 {
		return ""
	}
	return stderr[i:]
}

// corpusDL is what `sluice dlq show` says of one dead letter.
type corpusDL struct {
	target, reason, attempts string
}

// corpusDeadLetters returns the dead letters by object (key, or the
// notification's name for a notification).
func corpusDeadLetters(t *testing.T, dataDir string, env ...string) map[string]corpusDL {
	t.Helper()
	ls := mustRun(t, env, "dlq", "ls", "--data-dir="+dataDir)
	out := map[string]corpusDL{}
	for _, l := range strings.Split(ls.stdout, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || strings.Trim(f[0], "0123456789") != "" {
			continue
		}
		show := mustRun(t, env, "dlq", "show", "--data-dir="+dataDir, f[0])
		var d corpusDL
		var object string
		lines := strings.Split(show.stdout, "\n")
		for i, sl := range lines {
			k, v, _ := strings.Cut(sl, ":")
			v = strings.TrimSpace(v)
			switch k {
			case "target":
				d.target = v
			case "object":
				object = v
			case "attempts":
				d.attempts = v
			case "reason":
				if i+1 < len(lines) {
					d.reason = strings.TrimSpace(lines[i+1])
				}
			}
		}
		if object == "" || d.reason == "" {
			t.Fatalf("dlq show %s: no object or reason:\n%s", f[0], show.stdout)
		}
		out[object] = d
	}
	return out
}

// checkDeadLetters checks that dl holds exactly the keys of want, each
// once, with one attempt, a reason naming the object, every fragment, and
// what to do.
func checkDeadLetters(t *testing.T, dl map[string]corpusDL, want map[string][]string) {
	t.Helper()
	for key, frags := range want {
		d, ok := dl[key]
		if !ok {
			t.Errorf("%s is not dead-lettered; dead letters: %v", key, dl)
			continue
		}
		t.Logf("dead letter of %s: %s", key, d.reason)
		if d.attempts != "1" {
			t.Errorf("dead letter of %s: %s attempts, want 1 (bad data is not retried)", key, d.attempts)
		}
		for _, f := range append([]string{"object " + key + " (ETag ", "upload it again"}, frags...) {
			if !strings.Contains(d.reason, f) {
				t.Errorf("dead letter of %s: the reason lacks %q:\n%s", key, f, d.reason)
			}
		}
	}
	for key, d := range dl {
		if _, ok := want[key]; !ok {
			t.Errorf("unexpected dead letter of %s: %s", key, d.reason)
		}
	}
}

// lakeFiles lists the files of dataDir's lake as slash-separated paths,
// sorted.
func lakeFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	root := filepath.Join(dataDir, "lake")
	var files []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

// sqlString quotes s as an SQL string literal.
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// copyToLake copies testdata/bad/file to key in dataDir's lake, backdated
// so that the run takes it at once.
func copyToLake(t *testing.T, dataDir, key, file string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(corpusDir, file))
	if err != nil {
		t.Fatal(err)
	}
	writeObject(t, dataDir, key, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// writeObject writes key in dataDir's lake with what fill writes, and
// backdates it so that the owning sluice takes it as settled at once.
func writeObject(t *testing.T, dataDir, key string, fill func(w io.Writer) error) {
	t.Helper()
	p := filepath.Join(dataDir, "lake", filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := fill(bw); err != nil {
		t.Fatalf("writing %s: %v", key, err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
}

// gzipBomb writes a valid gzip stream (one member) whose content is
// prefix, mib MiB of fill, then suffix, without compressing the MiBs one
// by one: deflate blocks ending in a sync flush are byte-aligned, and
// after the first MiB of fill every further MiB compresses to the same
// block (its matches reach back into the same fill), so that block is
// written mib-1 times. The CRC-32 and size trailer is computed, so the
// whole stream decodes and checks as any gzip reader expects (10 GiB
// decompress in about 4 s here).
func gzipBomb(w io.Writer, prefix string, fill byte, mib int, suffix string) error {
	const chunk = 1 << 20
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		return err
	}
	take := func() []byte {
		b := bytes.Clone(buf.Bytes())
		buf.Reset()
		return b
	}
	data := bytes.Repeat([]byte{fill}, chunk)
	fw.Write([]byte(prefix))
	fw.Flush()
	head := take()
	fw.Write(data)
	fw.Flush()
	first := take()
	fw.Write(data)
	fw.Flush()
	again := take()
	fw.Write(data)
	fw.Flush()
	if third := take(); !bytes.Equal(again, third) {
		return fmt.Errorf("gzipBomb: the deflate blocks of the 2nd and 3rd MiB differ (%d and %d bytes)", len(again), len(third))
	}
	fw.Write([]byte(suffix))
	if err := fw.Close(); err != nil {
		return err
	}
	end := take()

	crc := crc32.ChecksumIEEE([]byte(prefix))
	parts := [][]byte{{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}, head, first}
	crc = crc32.Update(crc, crc32.IEEETable, data)
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	for range mib - 1 {
		if _, err := w.Write(again); err != nil {
			return err
		}
		crc = crc32.Update(crc, crc32.IEEETable, data)
	}
	if _, err := w.Write(end); err != nil {
		return err
	}
	crc = crc32.Update(crc, crc32.IEEETable, []byte(suffix))
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], crc)
	binary.LittleEndian.PutUint32(trailer[4:], uint32(int64(len(prefix))+int64(mib)*chunk+int64(len(suffix))))
	_, err = w.Write(trailer[:])
	return err
}

// zstdBomb writes mib MiB of fill as zstd frames of 64 MiB each, one after
// another (RFC 8878: a stream is a sequence of frames).
func zstdBomb(w io.Writer, fill byte, mib int) error {
	const frameMiB = 64
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return err
	}
	frame := enc.EncodeAll(bytes.Repeat([]byte{fill}, frameMiB<<20), nil)
	enc.Close()
	for range mib / frameMiB {
		if _, err := w.Write(frame); err != nil {
			return err
		}
	}
	return nil
}

// corpusIgnoredFiles: files another program drops into the lake whose
// names cannot be keys (a backslash, a control character, a name that is
// not UTF-8, a path over 1,024 bytes) are never loaded nor silently
// skipped: the run warns about each, exits non-zero listing them, `sluice
// ls --ignored` gives the reason, and the good object loads.
func corpusIgnoredFiles(t *testing.T) {
	dataDir := t.TempDir()
	specFile := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(specFile, []byte(specWith()), 0o600); err != nil {
		t.Fatal(err)
	}
	copyToLake(t, dataDir, "in/good.json", "good.json")
	copyToLake(t, dataDir, "csv/good.csv", "good.csv")
	long := strings.Repeat(strings.Repeat("d", 250)+"/", 5) + "long.json" // 1,262 bytes under in/
	bad := map[string]string{
		`in/back\slash.json`:   `contains a backslash (separate segments with "/") (rename the file)`,
		"in/ctrl\x01char.json": "contains a control character (rename the file)",
		"in/latin1-\xe9.json":  "not valid UTF-8 (rename the file)",
		"in/" + long:           "longer than 1024 bytes",
	}
	for name := range bad {
		copyToLake(t, dataDir, name, "one-row.json")
	}
	m := corpusRun(t, dataDir, specFile)
	checkRSS(t, m)
	if m.code != 1 {
		t.Fatalf("run --once: exit %d, want 1\n%s\n%s", m.code, m.stdout, tail(m.stderr, 3000))
	}
	final := finalError(m.stderr)
	if !strings.Contains(final, "4 file(s) in the store cannot be objects and were not loaded") {
		t.Errorf("the final error does not count the 4 files:\n%s", final)
	}
	ls := mustRun(t, nil, "ls", "--data-dir="+dataDir, "--ignored")
	// It names the first three and says how to see them all.
	if !strings.Contains(final, filepath.Join(dataDir, "lake", `in/back\slash.json`)+`: its name is not a valid key: contains a backslash`) ||
		!strings.Contains(final, "and 1 more); rename or remove them — `sluice ls --ignored` lists them") {
		t.Errorf("the final error does not name the files and what to do:\n%s", final)
	}
	if n := strings.Count(m.stderr, `msg="store: ignoring a file that cannot be an object"`); n != 4 {
		t.Errorf("the log warns %d times about a file that cannot be an object, want 4", n)
	}
	for name, why := range bad {
		// Listed as a terminal may show it: quoted when not printable.
		p := store.IgnoredFile{Path: filepath.Join(dataDir, "lake", name)}.PrintablePath()
		if strings.ContainsAny(p, "\x01\xe9") {
			t.Errorf("ls --ignored would print %q raw", p)
		}
		line := ""
		for _, l := range strings.Split(ls.stdout, "\n") {
			if strings.HasPrefix(l, p+"\t") {
				line = l
			}
		}
		if !strings.Contains(line, why) {
			t.Errorf("ls --ignored: %q is not listed with %q:\n%s", p, why, ls.stdout)
		}
	}
	corpusCase{}.checkTables(t, dataDir)
	if dl := corpusDeadLetters(t, dataDir); len(dl) != 0 {
		t.Errorf("dead letters: %v, want none (the files are refused, not loaded)", dl)
	}
	// They stay refused: the next run says so again.
	if m2 := corpusRun(t, dataDir, specFile); m2.code != 1 || !strings.Contains(finalError(m2.stderr), "4 file(s) in the store cannot be objects") {
		t.Errorf("a second run: exit %d, want 1 naming the 4 files again\n%s", m2.code, tail(m2.stderr, 2000))
	}
}

// corpusS3 is a pipeline on a versitygw bucket whose notifications sluice
// reads from a NATS subject the test publishes raw notification JSON to.
type corpusS3 struct {
	v                 *storetest.Versitygw
	js                jetstream.JetStream
	subject           string
	dataDir, specFile string
	seq               int
}

func newCorpusS3(t *testing.T) *corpusS3 {
	t.Helper()
	nc, err := nats.Connect(natsURL())
	if err != nil {
		t.Fatalf("NATS at %s is not reachable (run ./scripts/test.sh, which starts it): %v", natsURL(), err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	v := storetest.StartVersitygw(t)
	name := fmt.Sprintf("corpus%d", rand.IntN(1e9))
	s := &corpusS3{v: v, js: js, subject: "corpus." + name + ".notifications", dataDir: t.TempDir()}
	t.Cleanup(func() {
		ctx := context.Background()
		if stream, err := js.StreamNameBySubject(ctx, s.subject); err == nil {
			js.DeleteStream(ctx, stream)
		}
	})
	spec := fmt.Sprintf(`name: %s
store: %q
queue: "embedded?ack_wait=30s"
notifications: {url: %q, key_encoding: url}
loads:
  rows:
    on: {prefix: in/}
    table: rows
    columns: {id: bigint, v: text, n: double, d: date}
`, name, v.Bucket(t, "lake"), natsURL()+"?subject="+s.subject)
	s.specFile = filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(s.specFile, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	// The first run creates the inbox (a stream capturing the subject),
	// which keeps what is published from then on; it has nothing to do.
	if m := corpusRun(t, s.dataDir, s.specFile, v.Env()...); m.code != 0 {
		t.Fatalf("the first run --once: exit %d\n%s\n%s", m.code, m.stdout, tail(m.stderr, 3000))
	}
	return s
}

// upload puts body at key in the bucket and returns its ETag.
func (s *corpusS3) upload(t *testing.T, key string, body []byte) string {
	out, err := s.v.Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("lake"), Key: aws.String(key), Body: bytes.NewReader(body)})
	if err != nil {
		t.Errorf("upload %s: %v", key, err)
		return ""
	}
	return strings.Trim(aws.ToString(out.ETag), `"`)
}

// record is an S3 event record as AWS writes it (key URL-encoded, ETag
// quoted).
func (s *corpusS3) record(key string, size int, etag string) map[string]any {
	s.seq++
	return map[string]any{
		"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
		"eventTime": time.Now().UTC().Format(time.RFC3339Nano), "eventName": "ObjectCreated:Put",
		"s3": map[string]any{
			"s3SchemaVersion": "1.0", "configurationId": "corpus",
			"bucket": map[string]any{"name": "lake", "arn": "arn:aws:s3:::lake"},
			"object": map[string]any{"key": strings.ReplaceAll(url.QueryEscape(key), "%2F", "/"), "size": size, "eTag": `"` + etag + `"`, "sequencer": fmt.Sprintf("%018X", s.seq)},
		},
	}
}

// notification marshals records as one notification.
func notification(t *testing.T, recs ...map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"Records": recs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// publish publishes bodies on the inbox subject, each confirmed stored.
func (s *corpusS3) publish(t *testing.T, bodies ...[]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, b := range bodies {
		if _, err := s.js.Publish(ctx, s.subject, b); err != nil {
			t.Fatalf("publish on %s: %v", s.subject, err)
		}
	}
}

// runWithGood uploads in/good.json, publishes bodies and then the good
// object's notification (so a bad message comes first), and runs sluice
// once.
func (s *corpusS3) runWithGood(t *testing.T, bodies ...[]byte) measured {
	t.Helper()
	good, err := os.ReadFile(filepath.Join(corpusDir, "good.json"))
	if err != nil {
		t.Fatal(err)
	}
	etag := s.upload(t, "in/good.json", good)
	s.publish(t, append(bodies, notification(t, s.record("in/good.json", len(good), etag)))...)
	m := corpusRun(t, s.dataDir, s.specFile, s.v.Env()...)
	checkRSS(t, m)
	return m
}

// check checks the good object's rows, the total rows and the dead
// letters (by object; notifications are named notification-<hash>).
func (s *corpusS3) check(t *testing.T, rows int, dead map[string][]string, extra ...sqlCheck) {
	t.Helper()
	env := s.v.Env()
	checkSQL(t, s.dataDir, append([]sqlCheck{
		{"rows of in/good.json", "select count(*) from rows where id in (1, 2, 3) and v in ('a', 'b', 'c')", strconv.Itoa(goodRows)},
		{"rows", "select count(*) from rows", strconv.Itoa(goodRows + rows)},
		{"ledger rows of in/good.json", "select count(*) from _sluice_ledger where object_key = 'in/good.json'", "1"},
	}, extra...), env...)
	dl := corpusDeadLetters(t, s.dataDir, env...)
	if len(dl) != len(dead) {
		t.Errorf("dead letters: %v, want %d", dl, len(dead))
	}
	for key, frags := range dead {
		var d corpusDL
		var ok bool
		for obj, x := range dl {
			if obj == key || (key == "notification" && strings.HasPrefix(obj, "notification-")) {
				d, ok = x, true
			}
		}
		if !ok {
			t.Errorf("no dead letter for %s: %v", key, dl)
			continue
		}
		t.Logf("dead letter of %s: %s", key, d.reason)
		if d.attempts != "1" {
			t.Errorf("dead letter of %s: %s attempts, want 1", key, d.attempts)
		}
		for _, f := range frags {
			if !strings.Contains(d.reason, f) {
				t.Errorf("dead letter of %s: the reason lacks %q:\n%s", key, f, d.reason)
			}
		}
	}
}

// inboxPending returns how many inbox messages the pipeline's consumer
// has not acknowledged.
func (s *corpusS3) inboxPending(t *testing.T) uint64 {
	t.Helper()
	ctx := context.Background()
	stream, err := s.js.StreamNameBySubject(ctx, s.subject)
	if err != nil {
		t.Fatalf("the inbox of %s: %v", s.subject, err)
	}
	st, err := s.js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	var pending uint64
	for info := range st.ListConsumers(ctx).Info() {
		pending += info.NumPending + uint64(info.NumAckPending)
	}
	return pending
}

// corpusNotificationEmpty: {"Records":[]} carries nothing. It must be
// acknowledged (not delivered again), must not stop the good notification
// behind it, and nothing good may be dead-lettered.
func corpusNotificationEmpty(t *testing.T) {
	s := newCorpusS3(t)
	body, err := os.ReadFile(filepath.Join(corpusDir, "notification-0-records.json"))
	if err != nil {
		t.Fatal(err)
	}
	m := s.runWithGood(t, body)
	if n := s.inboxPending(t); n != 0 {
		t.Errorf("the inbox still holds %d unacknowledged message(s)", n)
	}
	if m.code != 0 {
		t.Errorf("run --once: exit %d, want 0 (a notification of nothing is acknowledged)\n%s\n%s", m.code, m.stdout, tail(m.stderr, 3000))
	}
	s.check(t, 0, map[string][]string{})
}

// corpusNotification1000: one notification of 1,000 records loads the
// 1,000 objects, each exactly once.
func corpusNotification1000(t *testing.T) {
	s := newCorpusS3(t)
	const n = 1000
	recs := make([]map[string]any, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				key := fmt.Sprintf("in/many/object %04d.json", i)
				body := fmt.Appendf(nil, `[{"id":%d,"v":"many"}]`, 1000+i)
				etag := s.upload(t, key, body)
				mu.Lock()
				recs[i] = s.record(key, len(body), etag)
				mu.Unlock()
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	body := notification(t, recs...)
	t.Logf("the notification is %d bytes", len(body))
	m := s.runWithGood(t, body)
	if m.code != 0 {
		t.Fatalf("run --once: exit %d\n%s\n%s", m.code, m.stdout, tail(m.stderr, 3000))
	}
	if !strings.Contains(m.stdout, fmt.Sprintf("loaded %d object(s), %d row(s)", n+1, n+goodRows)) {
		t.Errorf("the summary does not count %d objects:\n%s", n+1, m.stdout)
	}
	many := []sqlCheck{
		{"distinct ids, min, max of the 1,000 objects' rows", "select count(distinct id) || ' ' || min(id) || ' ' || max(id) from rows where v = 'many'", "1000 1000 1999"},
		{"ledger rows and keys of the 1,000 objects", "select count(*) || ' ' || count(distinct object_key) from _sluice_ledger where object_key like 'in/many/object %'", "1000 1000"},
	}
	s.check(t, n, nil, many...)
	env := s.v.Env()
	if n := s.inboxPending(t); n != 0 {
		t.Errorf("the inbox still holds %d unacknowledged message(s)", n)
	}
	// The same notification again loads nothing twice.
	s.publish(t, body)
	m2 := corpusRun(t, s.dataDir, s.specFile, env...)
	if m2.code != 0 {
		t.Fatalf("run --once after the notification came again: exit %d\n%s", m2.code, tail(m2.stderr, 3000))
	}
	if !strings.Contains(m2.stdout, "loaded 0 object(s)") || !strings.Contains(m2.stdout, fmt.Sprintf("%d duplicate(s) skipped", n)) {
		t.Errorf("the repeated notification: want 0 objects loaded and %d duplicates skipped:\n%s", n, m2.stdout)
	}
	s.check(t, n, nil, many...)
}

// corpusNotificationGone: a notification for an object deleted before
// sluice read it dead-letters that object version, saying so and what to
// do, and nothing else.
func corpusNotificationGone(t *testing.T) {
	s := newCorpusS3(t)
	gone, err := os.ReadFile(filepath.Join(corpusDir, "gone.json"))
	if err != nil {
		t.Fatal(err)
	}
	s.upload(t, "in/gone.json", gone)
	if _, err := s.v.Client.DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String("lake"), Key: aws.String("in/gone.json")}); err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(filepath.Join(corpusDir, "notification-gone-object.json"))
	if err != nil {
		t.Fatal(err)
	}
	m := s.runWithGood(t, body)
	if m.code != 1 {
		t.Errorf("run --once: exit %d, want 1\n%s\n%s", m.code, m.stdout, tail(m.stderr, 3000))
	}
	s.check(t, 0, map[string][]string{"in/gone.json": {"object in/gone.json (ETag ", "not found in store s3://lake", "it was deleted after its event — upload it again to load it"}})
	if final := finalError(m.stderr); !strings.Contains(final, "in/gone.json") || !strings.Contains(final, "not found in store") {
		t.Errorf("the final error does not name in/gone.json:\n%s", final)
	}
	if n := s.inboxPending(t); n != 0 {
		t.Errorf("the inbox still holds %d unacknowledged message(s)", n)
	}
}

// corpusNotificationNotJSON: a message that is not a notification is
// dead-lettered (sluice's own dead letters, with its bytes) and the good
// notification behind it loads.
func corpusNotificationNotJSON(t *testing.T) {
	s := newCorpusS3(t)
	body, err := os.ReadFile(filepath.Join(corpusDir, "notification-not-json.txt"))
	if err != nil {
		t.Fatal(err)
	}
	m := s.runWithGood(t, body)
	if m.code != 1 {
		t.Errorf("run --once: exit %d, want 1\n%s\n%s", m.code, m.stdout, tail(m.stderr, 3000))
	}
	s.check(t, 0, map[string][]string{"notification": {
		"not an S3 event notification: the message is not a JSON object",
		`received "this is not an S3 event notification\n"`,
		`expected S3 event records ({"Records":[...]}`,
	}})
	if n := s.inboxPending(t); n != 0 {
		t.Errorf("the inbox still holds %d unacknowledged message(s)", n)
	}
}

// corpusValidate: `sluice validate -f` reports every mistake of
// spec-every-mistake.yaml in one run, each as file:line:col: path: what
// is wrong: what to write, sorted by position.
func corpusValidate(t *testing.T) {
	file := filepath.Join(corpusDir, "spec-every-mistake.yaml")
	r := sluice(t, nil, "validate", "-f", file)
	if r.code != 1 {
		t.Fatalf("validate: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	want := []struct{ pos, path, frag string }{
		{"3:7", "name", `"Bad Name!" is not a valid pipeline name: use lower-case letters, digits, - and _`},
		{"4:8", "store", `store scheme "ftp" is not supported: write file://DIR`},
		{"5:12", "warehouse", `warehouse scheme "mysql" is not supported: write sqlite://PATH`},
		{"6:14", "retry.for", `"soon" is not a duration: write a number with a unit`},
		{"7:1", "colour", `unknown key "colour": allowed keys here are name, store`},
		{"11:12", "sources.api.http.url", `"not a url" has no scheme: write https://`},
		{"12:16", "sources.api.http.timeout", `"30" has no unit: write a duration like 30s`},
		{"13:26", "sources.api.http.headers.X-Token", `environment variable CORPUS_SURELY_UNSET_VARIABLE is not set: set it, or write ${CORPUS_SURELY_UNSET_VARIABLE:-default}`},
		{"14:16", "sources.api.http.retries", `"lots" is not a whole number: write a number between 0 and 100`},
		{"15:11", "sources.api.land", `land template does not parse (template: land:1: bad character U+007D '}'): write a Go text/template such as`},
		{"17:3", "loads.posts", "load posts has no table: add table: posts"},
		{"18:37", "loads.posts.on.key_encoding", `unknown key encoding "base64": write "url"`},
		{"19:13", "loads.posts.format", `unknown format "xml" (allowed: auto, json, ndjson, csv, parquet)`},
		{"20:12", "loads.posts.write", `unknown write mode "upsert": did you mean "merge"? (allowed: append, merge, replace)`},
		{"22:20", "loads.posts.on_bad_record", `unknown on_bad_record "ignore" (allowed: dead-letter, quarantine)`},
		{"23:32", "loads.posts.limits.max_object_bytes", `"huge" is not a size: write a whole number of bytes, or one with a unit like 512MiB`},
		{"26:14", "loads.posts.columns.title", `unknown column type "varchar": did you mean "text"? (allowed: integer, bigint`},
		{"27:30", "loads.posts.columns.body.as", `"bad name" is not a valid column name: use letters, digits and _`},
		{"28:3", "loads.nocols", "load nocols has no columns: add columns: {field: type, ...}"},
		{"30:5", "loads.nocols.table", `key "table" is already defined at line 29: keep only one of them`},
		{"34:13", "jobs.curate.settle", `"forever" is not a duration: write a number with a unit`},
		{"36:14", "jobs.curate.curate.input", `"raw/{{.Group}}" does not end with "/": the input is a folder; write "raw/{{.Group}}/"`},
		{"38:23", "jobs.curate.curate.columns.Year", `unknown column kind "int99" (allowed: integer, bigint`},
	}
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != len(want) {
		t.Errorf("validate reported %d errors, want %d:\n%s", len(lines), len(want), r.stdout)
	}
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(file) + `:(\d+):(\d+): ([^ :]+): (.+)$`)
	var last [2]int
	for i, l := range lines {
		g := re.FindStringSubmatch(l)
		if g == nil {
			t.Errorf("line %d is not file:line:col: path: message: %q", i+1, l)
			continue
		}
		ln, _ := strconv.Atoi(g[1])
		col, _ := strconv.Atoi(g[2])
		if ln < last[0] || ln == last[0] && col < last[1] {
			t.Errorf("line %d (%d:%d) comes after %d:%d: not sorted", i+1, ln, col, last[0], last[1])
		}
		last = [2]int{ln, col}
		if i >= len(want) {
			continue
		}
		w := want[i]
		if g[1]+":"+g[2] != w.pos || g[3] != w.path {
			t.Errorf("error %d is at %s:%s %s, want %s %s:\n%s", i+1, g[1], g[2], g[3], w.pos, w.path, l)
		}
		if !strings.Contains(g[4], w.frag) {
			t.Errorf("error %d lacks %q:\n%s", i+1, w.frag, l)
		}
	}
	if want := fmt.Sprintf("%s: %d error(s)", file, len(want)); !strings.Contains(r.stderr, want) {
		t.Errorf("validate's stderr lacks %q:\n%s", want, r.stderr)
	}
}
