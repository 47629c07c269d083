package curate

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	pformat "github.com/parquet-go/parquet-go/format"

	"github.com/sluicehq/sluice/format"
)

const (
	uuidA = "aaaaaaaa-0000-4000-8000-000000000001"
	uuidB = "bbbbbbbb-0000-4000-8000-000000000002"
)

func optsWithUUID(id string) *Options {
	return &Options{UUID: func() string { return id }, Logf: func(string, ...any) {}}
}

func hydroCSV(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "hydropower-consumption.csv"))
	if err != nil {
		t.Fatalf("read the reference CSV: %v", err)
	}
	return data
}

func hydroSpec(input, output string) Spec {
	return Spec{
		Input:  input,
		Output: output,
		Rename: map[string]string{"Hydropower (Terawatt-hours)": "consumption"},
		Columns: []Column{
			{Name: "Entity", Type: "string"},
			{Name: "Code", Type: "string"},
			{Name: "Year", Type: "int32"},
			{Name: "consumption", Type: "float32"},
		},
	}
}

// csvFacts computes the reference figures from the CSV itself with float64.
type csvFacts struct {
	rows, nullCodes int
	sum             float64
	records         [][]string
}

func hydroFacts(t *testing.T, data []byte) csvFacts {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	f := csvFacts{records: recs[1:]}
	for _, r := range recs[1:] {
		f.rows++
		if r[1] == "" {
			f.nullCodes++
		}
		v, err := strconv.ParseFloat(r[3], 64)
		if err != nil {
			t.Fatal(err)
		}
		f.sum += v
	}
	return f
}

type parquetFile struct {
	schema string
	rows   []parquet.Row
	codecs []pformat.CompressionCodec
}

func readParquet(t *testing.T, data []byte) parquetFile {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("parquet-go cannot open the part: %v", err)
	}
	pf := parquetFile{schema: f.Schema().String()}
	for _, rg := range f.Metadata().RowGroups {
		for _, c := range rg.Columns {
			pf.codecs = append(pf.codecs, c.MetaData.Codec)
		}
	}
	for _, rg := range f.RowGroups() {
		rows := rg.Rows()
		buf := make([]parquet.Row, 256)
		for {
			n, err := rows.ReadRows(buf)
			for _, r := range buf[:n] {
				pf.rows = append(pf.rows, r.Clone())
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("read rows: %v", err)
			}
		}
		rows.Close()
	}
	if int64(len(pf.rows)) != f.NumRows() {
		t.Fatalf("read %d rows, footer says %d", len(pf.rows), f.NumRows())
	}
	return pf
}

func readObject(t *testing.T, st Store, key string) []byte {
	t.Helper()
	rc, err := st.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// readOutput reads every part of a result, in order.
func readOutput(t *testing.T, st Store, res Result) []parquetFile {
	t.Helper()
	var out []parquetFile
	for _, ob := range res.Outputs {
		if strings.HasSuffix(ob.Key, "/_SUCCESS") {
			continue
		}
		out = append(out, readParquet(t, readObject(t, st, ob.Key)))
	}
	return out
}

const hydroSchema = `message spark_schema {
	optional binary Entity (STRING);
	optional binary Code (STRING);
	optional int32 Year (INT(32,true));
	optional float consumption;
}`

func TestRunCuratesHydropowerIntoSnappyParquetMatchingTheCSV(t *testing.T) {
	bothStores(t, func(t *testing.T, st testStore) {
		data := hydroCSV(t)
		facts := hydroFacts(t, data)
		st.put(t, "data/2020-08-07_2PM/hydropower-consumption.csv", data)

		res, err := Run(context.Background(), st, hydroSpec("data/2020-08-07_2PM/", "curated/2020-08-07_2PM/"), optsWithUUID(uuidA))
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if facts.rows != 4176 || facts.nullCodes != 780 {
			t.Fatalf("reference CSV changed: %d rows, %d empty codes", facts.rows, facts.nullCodes)
		}
		if res.Rows != 4176 || res.Files != 1 || len(res.Inputs) != 1 {
			t.Fatalf("result = %d rows, %d files, %d inputs; want 4176, 1, 1", res.Rows, res.Files, len(res.Inputs))
		}
		wantKeys := []string{
			"curated/2020-08-07_2PM/part-00000-" + uuidA + "-c000.snappy.parquet",
			"curated/2020-08-07_2PM/_SUCCESS",
		}
		if len(res.Outputs) != 2 || res.Outputs[0].Key != wantKeys[0] || res.Outputs[1].Key != wantKeys[1] {
			t.Fatalf("outputs = %+v, want %v", res.Outputs, wantKeys)
		}
		if res.Outputs[1].Size != 0 || res.Outputs[0].Size == 0 || res.Outputs[0].ETag == "" {
			t.Fatalf("outputs = %+v: want a non-empty part with an ETag and an empty _SUCCESS", res.Outputs)
		}
		listed, _ := st.List(context.Background(), "curated/")
		if len(listed) != 2 {
			t.Fatalf("store lists %+v under curated/, want exactly the part and _SUCCESS", listed)
		}

		pf := readOutput(t, st, res)[0]
		if pf.schema != hydroSchema {
			t.Errorf("schema =\n%s\nwant\n%s", pf.schema, hydroSchema)
		}
		for _, c := range pf.codecs {
			if c != pformat.Snappy {
				t.Errorf("column chunk codec = %v, want SNAPPY", c)
			}
		}
		var nullCodes int
		var sum float64
		for i, r := range pf.rows {
			if r[1].IsNull() {
				nullCodes++
			}
			sum += float64(r[3].Float())
			want := facts.records[i]
			if got := string(r[0].ByteArray()); got != want[0] {
				t.Fatalf("row %d Entity = %q, want %q (input order must be kept)", i, got, want[0])
			}
			if got := strconv.Itoa(int(r[2].Int32())); got != want[2] {
				t.Fatalf("row %d Year = %s, want %s", i, got, want[2])
			}
		}
		if nullCodes != 780 {
			t.Errorf("null Code = %d, want 780", nullCodes)
		}
		if rel := math.Abs(sum-facts.sum) / math.Abs(facts.sum); rel > 1e-6 {
			t.Errorf("sum(consumption) = %v, CSV float64 sum = %v, relative difference %g > 1e-6", sum, facts.sum, rel)
		}
	})
}

var partRE = regexp.MustCompile(`^curated/x/part-(\d{5})-([0-9a-f-]{36})-c000\.snappy\.parquet$`)

func TestRunSplitsRowsIntoContiguousBoundedParts(t *testing.T) {
	bothStores(t, func(t *testing.T, st testStore) {
		st.put(t, "data/x/h.csv", hydroCSV(t))
		spec := hydroSpec("data/x/", "curated/x/")
		spec.MaxRowsPerFile = 1000
		res, err := Run(context.Background(), st, spec, nil) // default uuid
		if err != nil {
			t.Fatal(err)
		}
		if res.Files != 5 || len(res.Outputs) != 6 {
			t.Fatalf("files = %d, outputs = %d; want 5 parts + _SUCCESS", res.Files, len(res.Outputs))
		}
		var id string
		wantRows := []int{1000, 1000, 1000, 1000, 176}
		for i, pf := range readOutput(t, st, res) {
			m := partRE.FindStringSubmatch(res.Outputs[i].Key)
			if m == nil || m[1] != fmt.Sprintf("%05d", i) {
				t.Fatalf("part %d key %q does not match part-%05d-<uuid>-c000.snappy.parquet", i, res.Outputs[i].Key, i)
			}
			if id == "" {
				id = m[2]
			} else if m[2] != id {
				t.Fatalf("part %d has uuid %s, part 0 has %s: one uuid per run", i, m[2], id)
			}
			if len(pf.rows) != wantRows[i] {
				t.Errorf("part %d has %d rows, want %d", i, len(pf.rows), wantRows[i])
			}
		}
		if res.Outputs[5].Key != "curated/x/_SUCCESS" {
			t.Fatalf("last output = %q, want _SUCCESS", res.Outputs[5].Key)
		}
	})
}

func TestRunReadsEveryCSVUnderInputRecursivelyInKeyOrder(t *testing.T) {
	bothStores(t, func(t *testing.T, st testStore) {
		header := "Entity,Code,Year,Hydropower (Terawatt-hours)\n"
		st.put(t, "data/d/b.csv", []byte(header+"B,BBB,2001,2.5\n"))
		st.put(t, "data/d/a.csv", []byte(header+"A,AAA,2000,1.5\nA2,,2000,1\n"))
		st.put(t, "data/d/sub/c.CSV", []byte(header+"C,CCC,2002,3\n"))
		st.put(t, "data/d/notes.txt", []byte("not csv"))
		st.put(t, "data/d/_hidden.csv", []byte("ignored,as,by,spark\n1,2,3,4\n"))
		st.put(t, "data/other/z.csv", []byte("not,under,the,prefix\n"))
		res, err := Run(context.Background(), st, hydroSpec("data/d/", "curated/d/"), nil)
		if err != nil {
			t.Fatal(err)
		}
		var inputs []string
		for _, in := range res.Inputs {
			inputs = append(inputs, in.Key)
		}
		if got, want := strings.Join(inputs, " "), "data/d/a.csv data/d/b.csv data/d/sub/c.CSV"; got != want {
			t.Fatalf("inputs = %s, want %s", got, want)
		}
		var entities []string
		for _, r := range readOutput(t, st, res)[0].rows {
			entities = append(entities, string(r[0].ByteArray()))
		}
		if got := strings.Join(entities, ","); got != "A,A2,B,C" {
			t.Fatalf("rows in order %s, want A,A2,B,C", got)
		}
	})
}

func TestOverwriteReplacesEveryPreviousPart(t *testing.T) {
	bothStores(t, func(t *testing.T, st testStore) {
		st.put(t, "data/x/h.csv", hydroCSV(t))
		spec := hydroSpec("data/x/", "curated/x/")
		spec.MaxRowsPerFile = 1000
		if _, err := Run(context.Background(), st, spec, optsWithUUID(uuidA)); err != nil {
			t.Fatal(err)
		}
		spec.MaxRowsPerFile = 0
		res, err := Run(context.Background(), st, spec, optsWithUUID(uuidB))
		if err != nil {
			t.Fatal(err)
		}
		listed, err := st.List(context.Background(), "curated/")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, ob := range listed {
			keys = append(keys, ob.Key)
			if strings.Contains(ob.Key, uuidA) {
				t.Errorf("part %s of the previous run remains", ob.Key)
			}
		}
		want := "curated/x/_SUCCESS curated/x/part-00000-" + uuidB + "-c000.snappy.parquet"
		if got := strings.Join(keys, " "); got != want {
			t.Fatalf("after overwrite the store lists %s, want %s", got, want)
		}
		if res.Rows != 4176 {
			t.Fatalf("rows = %d", res.Rows)
		}
		if snap := st.snapshot(t, "curated/"); len(snap) > 0 {
			for _, k := range sortedKeys(snap) {
				if strings.Contains(k, "/.") {
					t.Errorf("leftover %s after a successful overwrite", k)
				}
			}
		}
	})
}

func TestErrorIfExistsRefusesAnOutputWithObjectsAndWritesNothing(t *testing.T) {
	bothStores(t, func(t *testing.T, st testStore) {
		st.put(t, "data/x/h.csv", hydroCSV(t))
		spec := hydroSpec("data/x/", "curated/x/")
		spec.Mode = ModeErrorIfExists
		if _, err := Run(context.Background(), st, spec, optsWithUUID(uuidA)); err != nil {
			t.Fatalf("first run into an empty output: %v", err)
		}
		before := st.snapshot(t, "curated/")
		_, err := Run(context.Background(), st, spec, optsWithUUID(uuidB))
		if !errors.Is(err, ErrOutputExists) || !strings.Contains(err.Error(), "curated/x/") {
			t.Fatalf("second run error = %v, want ErrOutputExists naming curated/x/", err)
		}
		assertSameSnapshot(t, before, st.snapshot(t, "curated/"))
	})
}

func assertSameSnapshot(t *testing.T, before, after map[string]string) {
	t.Helper()
	if len(before) == 0 {
		t.Fatal("empty snapshot: the test did not set up a previous output")
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed (or vanished)", k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("%s appeared", k)
		}
	}
}

func TestBadInputFailsNamingObjectLineAndColumnAndKeepsPreviousOutput(t *testing.T) {
	header := "Entity,Code,Year,Hydropower (Terawatt-hours)\n"
	cases := []struct {
		name  string
		files map[string]string // key under data/bad/ → content
		want  []string          // substrings of the error
	}{
		{"missing input folder", nil, []string{`no input: no .csv objects under "data/bad/" in the store — upload the files first`}},
		{"ragged row", map[string]string{"r.csv": header + "A,AAA,2000,1\nB,BBB,2001\n"}, []string{`"data/bad/r.csv"`, "line 3"}},
		{"uncastable Year", map[string]string{"y.csv": header + "A,AAA,2000,1\nB,BBB,abc,2\n"}, []string{`"data/bad/y.csv"`, "line 3", "column Year"}},
		{"uncastable consumption", map[string]string{"c.csv": header + "A,AAA,2000,lots\n"}, []string{`"data/bad/c.csv"`, "line 2", "column Hydropower (Terawatt-hours)"}},
		{"empty file", map[string]string{"e.csv": ""}, []string{`"data/bad/e.csv"`}},
		{"non-UTF-8", map[string]string{"n.csv": header + "A,AAA,2000,1\nS\xe3o Tom\xe9,STP,2001,2\n"}, []string{`"data/bad/n.csv"`, "line 3", "column Entity"}},
		{"undeclared header", map[string]string{"u.csv": "Entity,Code,Year,Hydropower (Terawatt-hours),Extra\nA,AAA,2000,1,x\n"}, []string{`"data/bad/u.csv"`, "line 1", `"Extra"`}},
		{"undeclared header without rows", map[string]string{"h.csv": "Entity,Code,Year,Hydropower (Terawatt-hours),Extra\n"}, []string{`"data/bad/h.csv"`, "line 1", `"Extra"`}},
		{"undeclared header in a gzipped file without rows", map[string]string{"g.csv": gzipString("\xef\xbb\xbfEntity,Code,Year,Hydropower (Terawatt-hours),Extra\n")}, []string{`"data/bad/g.csv"`, "line 1", `"Extra"`}},
		{"declared column missing", map[string]string{"m.csv": "Entity,Code,Hydropower (Terawatt-hours)\nA,AAA,1\n"}, []string{`"data/bad/m.csv"`, "line 1", `declared column "Year" is missing`}},
		{"bad second file after a good one", map[string]string{"a.csv": header + "A,AAA,2000,1\n", "b.csv": header + "B,BBB,20x1,2\n"}, []string{`object "data/bad/b.csv": line 2: column Year: `}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bothStores(t, func(t *testing.T, st testStore) {
				st.put(t, "data/good/h.csv", hydroCSV(t))
				spec := hydroSpec("data/good/", "curated/x/")
				spec.MaxRowsPerFile = 2000
				if _, err := Run(context.Background(), st, spec, optsWithUUID(uuidA)); err != nil {
					t.Fatal(err)
				}
				before := st.snapshot(t, "curated/")
				for name, content := range tc.files {
					st.put(t, "data/bad/"+name, []byte(content))
				}
				spec.Input = "data/bad/"
				spec.MaxRowsPerFile = 1 // parts get staged before the bad row
				_, err := Run(context.Background(), st, spec, optsWithUUID(uuidB))
				if err == nil {
					t.Fatal("Run succeeded on bad input")
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %s", err, w)
					}
				}
				assertSameSnapshot(t, before, st.snapshot(t, "curated/"))
			})
		})
	}
}

func TestCrashAfterAPartKeepsPreviousOutputAndRecoverRemovesStaging(t *testing.T) {
	st := newLocalStore(t)
	st.put(t, "data/x/h.csv", hydroCSV(t))
	spec := hydroSpec("data/x/", "curated/x/")
	if _, err := Run(context.Background(), st, spec, optsWithUUID(uuidA)); err != nil {
		t.Fatal(err)
	}
	before := st.snapshot(t, "curated/")

	type crash struct{}
	spec.MaxRowsPerFile = 1000
	opts := optsWithUUID(uuidB)
	opts.AfterPart = func(n int) {
		if n == 2 {
			panic(crash{}) // the process "dies" with parts 0..2 staged
		}
	}
	func() {
		defer func() {
			if r := recover(); r != (crash{}) {
				t.Fatalf("recovered %v, want the emulated crash", r)
			}
		}()
		Run(context.Background(), st, spec, opts)
		t.Fatal("Run returned after the emulated crash")
	}()

	staging := filepath.Join(st.root, "curated", stagingName("x", uuidB))
	entries, err := os.ReadDir(staging)
	if err != nil || len(entries) != 3 {
		t.Fatalf("after the crash the staging dir holds %d entries (err %v), want the 3 staged parts", len(entries), err)
	}
	listed, _ := st.List(context.Background(), "curated/")
	if len(listed) != 2 {
		t.Fatalf("readers see %d objects during the crash window, want the previous part and _SUCCESS", len(listed))
	}
	afterCrash := st.snapshot(t, "curated/")
	for k, v := range before {
		if afterCrash[k] != v {
			t.Fatalf("previous output %s changed by the crashed run", k)
		}
	}

	if err := Recover(context.Background(), st, "curated/x/"); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	assertSameSnapshot(t, before, st.snapshot(t, "curated/"))

	if _, err := Run(context.Background(), st, spec, optsWithUUID(uuidB)); err != nil {
		t.Fatalf("a run after Recover: %v", err)
	}
}

func TestCancellingDuringStagingFailsTheRunAndKeepsPreviousOutput(t *testing.T) {
	bothStores(t, func(t *testing.T, st testStore) {
		st.put(t, "data/x/h.csv", hydroCSV(t))
		spec := hydroSpec("data/x/", "curated/x/")
		if _, err := Run(context.Background(), st, spec, optsWithUUID(uuidA)); err != nil {
			t.Fatal(err)
		}
		before := st.snapshot(t, "curated/")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		spec.MaxRowsPerFile = 1000
		tmp := t.TempDir()
		opts := optsWithUUID(uuidB)
		opts.TempDir = tmp
		opts.AfterPart = func(n int) {
			if n == 1 {
				cancel()
			}
		}
		_, err := Run(ctx, st, spec, opts)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run error = %v, want context.Canceled", err)
		}
		assertSameSnapshot(t, before, st.snapshot(t, "curated/"))
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Errorf("local staging leftovers in TempDir: %v", left)
		}
	})
}

// crashInCommit runs spec and panics in the given hook, returning after the
// emulated crash.
func crashInCommit(t *testing.T, st Store, spec Spec, hook *func()) {
	t.Helper()
	type crash struct{}
	*hook = func() { panic(crash{}) }
	defer func() { *hook = nil }()
	defer func() {
		if r := recover(); r != (crash{}) {
			t.Fatalf("recovered %v, want the emulated crash", r)
		}
	}()
	Run(context.Background(), st, spec, optsWithUUID(uuidB))
	t.Fatal("Run returned after the emulated crash")
}

func TestCrashBetweenTheTwoFallbackRenamesIsRolledBackByRecover(t *testing.T) {
	renameExchange = func(a, b string) error { return errExchangeUnsupported }
	defer func() { renameExchange = exchange }()

	st := newLocalStore(t)
	st.put(t, "data/x/h.csv", hydroCSV(t))
	spec := hydroSpec("data/x/", "curated/x/")
	if _, err := Run(context.Background(), st, spec, optsWithUUID(uuidA)); err != nil {
		t.Fatal(err)
	}
	before := st.snapshot(t, "curated/")
	crashInCommit(t, st, spec, &testHookAfterOldMoved)

	if _, err := os.Stat(filepath.Join(st.root, "curated", "x")); !os.IsNotExist(err) {
		t.Fatalf("in the window the output dir should be moved aside, stat err = %v", err)
	}
	if err := Recover(context.Background(), st, "curated/x/"); err != nil {
		t.Fatal(err)
	}
	assertSameSnapshot(t, before, st.snapshot(t, "curated/"))
}

func TestCrashAfterTheSwapKeepsTheNewOutputAndRecoverRemovesTheOldCopy(t *testing.T) {
	for _, fallback := range []bool{false, true} {
		t.Run(fmt.Sprintf("fallback=%v", fallback), func(t *testing.T) {
			if fallback {
				renameExchange = func(a, b string) error { return errExchangeUnsupported }
				defer func() { renameExchange = exchange }()
			}
			st := newLocalStore(t)
			st.put(t, "data/x/h.csv", hydroCSV(t))
			spec := hydroSpec("data/x/", "curated/x/")
			if _, err := Run(context.Background(), st, spec, optsWithUUID(uuidA)); err != nil {
				t.Fatal(err)
			}
			crashInCommit(t, st, spec, &testHookAfterSwap)
			if err := Recover(context.Background(), st, "curated/x/"); err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, k := range sortedKeys(st.snapshot(t, "curated/")) {
				keys = append(keys, k)
			}
			want := "curated/ curated/x/ curated/x/_SUCCESS curated/x/part-00000-" + uuidB + "-c000.snappy.parquet"
			if got := strings.Join(keys, " "); got != want {
				t.Fatalf("after Recover: %s\nwant %s", got, want)
			}
		})
	}
}

func TestRenameExchangeSwapsTwoDirectoriesOnThisSystem(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "name"), []byte(filepath.Base(d)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err := exchange(a, b)
	if errors.Is(err, errExchangeUnsupported) {
		t.Logf("this file system has no atomic exchange; commits use the two-rename fallback: %v", err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(a, "name"))
	if string(got) != "b" {
		t.Fatalf("after exchange a/name = %q, want b", got)
	}
}

func TestRemoteCommitDeletesThePreviousPartsBeforeWritingSuccessLast(t *testing.T) {
	st := newMemStore()
	st.put(t, "data/x/h.csv", hydroCSV(t))
	spec := hydroSpec("data/x/", "curated/x/")
	if _, err := Run(context.Background(), st, spec, optsWithUUID(uuidA)); err != nil {
		t.Fatal(err)
	}
	st.ops = nil
	spec.MaxRowsPerFile = 3000
	if _, err := Run(context.Background(), st, spec, optsWithUUID(uuidB)); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"delete curated/x/_SUCCESS",
		"write curated/x/part-00000-" + uuidB + "-c000.snappy.parquet",
		"write curated/x/part-00001-" + uuidB + "-c000.snappy.parquet",
		"delete curated/x/part-00000-" + uuidA + "-c000.snappy.parquet",
		"write curated/x/_SUCCESS",
	}
	if got := strings.Join(st.ops, "\n"); got != strings.Join(want, "\n") {
		t.Fatalf("operations:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

// A writer whose claim is lost while it uploads (BeforeCommit fails on a
// later call) stops before deleting the previous parts, or before writing
// _SUCCESS: it never removes another run's output or marks a mix complete.
func TestARemoteCommitStopsAtTheStepWhereItsClaimIsLost(t *testing.T) {
	for _, tc := range []struct {
		failAt int
		step   string
		want   []string
	}{
		{2, "deleting the previous parts", []string{"delete curated/x/_SUCCESS", "write curated/x/part-00000-" + uuidB + "-c000.snappy.parquet"}},
		{3, "writing _SUCCESS", []string{"delete curated/x/_SUCCESS", "write curated/x/part-00000-" + uuidB + "-c000.snappy.parquet",
			"delete curated/x/part-00000-" + uuidA + "-c000.snappy.parquet"}},
	} {
		st := newMemStore()
		st.put(t, "data/x/h.csv", hydroCSV(t))
		spec := hydroSpec("data/x/", "curated/x/")
		if _, err := Run(context.Background(), st, spec, optsWithUUID(uuidA)); err != nil {
			t.Fatal(err)
		}
		st.ops = nil
		calls := 0
		opts := optsWithUUID(uuidB)
		opts.BeforeCommit = func(context.Context) error {
			calls++
			if calls == tc.failAt {
				return errors.New("claim lost")
			}
			return nil
		}
		_, err := Run(context.Background(), st, spec, opts)
		if err == nil || !strings.Contains(err.Error(), "stopped before "+tc.step) || !strings.Contains(err.Error(), "claim lost") {
			t.Errorf("check failing at call %d: err = %v, want it to stop before %s", tc.failAt, err, tc.step)
		}
		if got := strings.Join(st.ops, "\n"); got != strings.Join(tc.want, "\n") {
			t.Errorf("check failing at call %d: operations:\n%s\nwant:\n%s", tc.failAt, got, strings.Join(tc.want, "\n"))
		}
	}
}

func TestWheneverARemoteOutputHasSuccessItHoldsExactlyOneRunsParts(t *testing.T) {
	st := newMemStore()
	st.put(t, "data/x/h.csv", hydroCSV(t))
	spec := hydroSpec("data/x/", "curated/x/")
	spec.MaxRowsPerFile = 3000
	if _, err := Run(context.Background(), st, spec, optsWithUUID(uuidA)); err != nil {
		t.Fatal(err)
	}
	// A crash after any store operation leaves the state seen here; a
	// reader waiting for _SUCCESS must then see one run's parts only.
	var states int
	st.afterOp = func(op string, objects map[string][]byte) {
		states++
		if _, ok := objects["curated/x/_SUCCESS"]; !ok {
			return
		}
		runs := map[string]bool{}
		for k := range objects {
			if strings.HasPrefix(k, "curated/x/part-") {
				runs[strings.TrimSuffix(strings.SplitN(strings.TrimPrefix(k, "curated/x/part-"), "-", 2)[1], "-c000.snappy.parquet")] = true
			}
		}
		if len(runs) != 1 {
			t.Errorf("after %q the output has _SUCCESS and the parts of runs %v, want exactly one run's", op, slices.Sorted(maps.Keys(runs)))
		}
	}
	spec.MaxRowsPerFile = 0
	if _, err := Run(context.Background(), st, spec, optsWithUUID(uuidB)); err != nil {
		t.Fatal(err)
	}
	if states < 4 {
		t.Fatalf("saw %d store operations, want at least 4 (delete _SUCCESS, write part, delete old parts, write _SUCCESS)", states)
	}
	want := "curated/x/_SUCCESS curated/x/part-00000-" + uuidB + "-c000.snappy.parquet"
	if got := strings.Join(sortedKeys(st.snapshot(t, "curated/x/")), " "); got != want {
		t.Fatalf("final output %s, want %s", got, want)
	}
}

func TestRunWritesEveryKindWithSparksParquetTypes(t *testing.T) {
	st := newLocalStore(t)
	st.put(t, "in/k/all.csv", []byte("s,i,l,f,d,b,day,ts\n"+
		"x,-7,9000000000,1.5,2.25,true,2020-08-07,2020-08-07T14:00:00.000001Z\n"+
		",,,,,,,\n"))
	spec := Spec{Input: "in/k/", Output: "out/k", Columns: []Column{
		{Name: "s", Type: "string"}, {Name: "i", Type: "int32"}, {Name: "l", Type: "int64"}, {Name: "f", Type: "float32"},
		{Name: "d", Type: "float64"}, {Name: "b", Type: "bool"}, {Name: "day", Type: "date"}, {Name: "ts", Type: "timestamp"},
	}}
	res, err := Run(context.Background(), st, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	pf := readOutput(t, st, res)[0]
	wantSchema := `message spark_schema {
	optional binary s (STRING);
	optional int32 i (INT(32,true));
	optional int64 l (INT(64,true));
	optional float f;
	optional double d;
	optional boolean b;
	optional int32 day (DATE);
	optional int64 ts (TIMESTAMP(isAdjustedToUTC=true,unit=MICROS));
}`
	if pf.schema != wantSchema {
		t.Errorf("schema =\n%s\nwant\n%s", pf.schema, wantSchema)
	}
	r := pf.rows[0]
	ts := time.Date(2020, 8, 7, 14, 0, 0, 1000, time.UTC)
	if string(r[0].ByteArray()) != "x" || r[1].Int32() != -7 || r[2].Int64() != 9000000000 ||
		r[3].Float() != 1.5 || r[4].Double() != 2.25 || !r[5].Boolean() ||
		r[6].Int32() != 18481 || r[7].Int64() != ts.UnixMicro() {
		t.Errorf("row 0 = %v", r)
	}
	for i, v := range pf.rows[1] {
		if !v.IsNull() {
			t.Errorf("row 1 column %d = %v, want null (empty CSV field)", i, v)
		}
	}
}

func TestRunAppliesTheFilterToCastValues(t *testing.T) {
	st := newMemStore()
	data := hydroCSV(t)
	st.put(t, "data/x/h.csv", data)
	spec := hydroSpec("data/x/", "curated/x/")
	spec.Filter = `Year >= 2000 and Code != null and consumption > 1`
	res, err := Run(context.Background(), st, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := 0
	for _, r := range hydroFacts(t, data).records {
		year, _ := strconv.Atoi(r[2])
		v, _ := strconv.ParseFloat(r[3], 32)
		if year >= 2000 && r[1] != "" && float32(v) > 1 {
			want++
		}
	}
	if want == 0 || res.Rows != int64(want) {
		t.Fatalf("rows = %d, want %d", res.Rows, want)
	}
}

func TestRunWithAFilterThatDropsEveryRowStillWritesTheSchema(t *testing.T) {
	st := newMemStore()
	st.put(t, "data/x/h.csv", hydroCSV(t))
	spec := hydroSpec("data/x/", "curated/x/")
	spec.Filter = `Year < 0`
	res, err := Run(context.Background(), st, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	parts := readOutput(t, st, res)
	if res.Rows != 0 || len(parts) != 1 || len(parts[0].rows) != 0 || parts[0].schema != hydroSchema {
		t.Fatalf("rows %d, %d parts (%+v); want one empty part with the schema", res.Rows, len(parts), parts)
	}
}

func TestRunRejectsInvalidSpecs(t *testing.T) {
	base := hydroSpec("data/x/", "curated/x/")
	cases := []struct {
		name string
		edit func(*Spec)
		want string
	}{
		{"empty output", func(s *Spec) { s.Output = "" }, "output prefix is empty"},
		{"dot-dot output", func(s *Spec) { s.Output = "curated/../x/" }, `".."`},
		{"hidden output", func(s *Spec) { s.Output = "curated/_tmp/" }, "hidden segment"},
		{"overlap", func(s *Spec) { s.Output = "data/x/out/" }, "overlap"},
		{"mode", func(s *Spec) { s.Mode = "append" }, `unknown mode "append"`},
		{"kind", func(s *Spec) { s.Columns[2].Type = "int" }, `column "Year"`},
		{"duplicate column", func(s *Spec) { s.Columns[1].Name = "Entity" }, `"Entity" declared twice`},
		{"filter", func(s *Spec) { s.Filter = "Year >= abc" }, "filter"},
		{"negative max rows", func(s *Spec) { s.MaxRowsPerFile = -1 }, "negative"},
		{"negative limit", func(s *Spec) { s.Limits.MaxFieldBytes = -1 }, "limits.max_field_bytes is -1"},
		{"record limit over 1 GiB", func(s *Spec) { s.Limits.MaxRecordBytes = 2 << 30 }, "limits.max_record_bytes is 2147483648; curate reads records of at most 1073741824 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := base
			spec.Columns = append([]Column(nil), base.Columns...)
			tc.edit(&spec)
			st := newMemStore()
			st.put(t, "data/x/h.csv", []byte("Entity,Code,Year,Hydropower (Terawatt-hours)\nA,B,1,2\n"))
			_, err := Run(context.Background(), st, spec, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
			if len(st.ops) != 1 {
				t.Fatalf("store operations %v: an invalid spec must write nothing", st.ops)
			}
		})
	}
}

func gzipString(s string) string {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.String()
}

// gzipMembers builds a gzip stream that decompresses to head, then n MiB of
// fill, then tail, cheaply: one gzip member per part, the 1 MiB member
// written n times (Go's gzip.Reader reads concatenated members as one
// stream), so a 1 GiB field costs about 1 MB.
func gzipMembers(t *testing.T, head string, fill byte, n int, tail string) []byte {
	t.Helper()
	member := func(b []byte) []byte {
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := zw.Write(b); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	block := member(bytes.Repeat([]byte{fill}, 1<<20))
	out := member([]byte(head))
	for range n {
		out = append(out, block...)
	}
	return append(out, member([]byte(tail))...)
}

func TestAOneGiBFieldIsRefusedNamingTheObjectBeforeAnyParquetIsWritten(t *testing.T) {
	header := "Entity,Code,Year,Hydropower (Terawatt-hours)\n"
	// Three good rows, so parts are staged (one row a part), then a row
	// whose Entity is 1 GiB: before limits, it reached the Parquet writer
	// and failed with "short write", naming no input.
	data := gzipMembers(t, header+"A,AAA,2000,1\nB,BBB,2001,2\nC,CCC,2002,3\n\"", 'x', 1024, "\",DDD,2003,4\n")
	bothStores(t, func(t *testing.T, st testStore) {
		st.put(t, "data/good/h.csv", hydroCSV(t))
		spec := hydroSpec("data/good/", "curated/big/")
		if _, err := Run(context.Background(), st, spec, optsWithUUID(uuidA)); err != nil {
			t.Fatal(err)
		}
		output := st.snapshot(t, "curated/")
		st.put(t, "data/big/a.csv", data)
		spec.Input = "data/big/"
		spec.MaxRowsPerFile = 1
		var before runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := Run(context.Background(), st, spec, optsWithUUID(uuidB))
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		var le *format.LimitError
		if !errors.As(err, &le) || le.Key != format.KeyMaxRecordBytes {
			t.Fatalf("err = %v, want a *format.LimitError for limits.max_record_bytes", err)
		}
		want := `curate: object "data/big/a.csv": line 5: the record is larger than limits.max_record_bytes = 16777216 bytes (16 MiB); raise limits.max_record_bytes`
		if !strings.HasPrefix(err.Error(), want) {
			t.Errorf("err = %q, want it to start %q", err, want)
		}
		if grown := after.Sys - before.Sys; grown > 256<<20 {
			t.Errorf("memory from the OS grew by %d MiB reading the 1 GiB field, want < 256 MiB", grown>>20)
		}
		assertSameSnapshot(t, output, st.snapshot(t, "curated/"))
	})
}

func TestCurateUsesTheSpecsFieldAndRowLimits(t *testing.T) {
	header := "Entity,Code,Year,Hydropower (Terawatt-hours)\n"
	cases := []struct {
		name   string
		limits format.Limits
		want   string
	}{
		{"field", format.Limits{MaxFieldBytes: 30}, `curate: object "data/l/a.csv": line 3: column Entity: the value is larger than limits.max_field_bytes = 30 bytes`},
		{"rows", format.Limits{MaxRecords: 1}, `curate: object "data/l/a.csv": line 3: the object has more than limits.max_records = 1 records`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := newMemStore()
			st.put(t, "data/l/a.csv", []byte(header+"Norway,NOR,2000,1\nThe Republic of South Africa (by name),ZAF,2000,2\n"))
			spec := hydroSpec("data/l/", "curated/l/")
			spec.Limits = tc.limits
			_, err := Run(context.Background(), st, spec, optsWithUUID(uuidA))
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to start %q", err, tc.want)
			}
		})
	}
}

func TestQuotedMultilineFieldsAcrossChunksKeepTheirValuesAndLines(t *testing.T) {
	// 40,000 records of two lines each (a quoted Entity holding a newline,
	// a delimiter and doubled quotes): about 1.9 MB, so the object is cut
	// into several chunks, most of them inside some record's lines.
	const n = 40_000
	build := func(bad ...int) []byte {
		var b strings.Builder
		b.WriteString("Entity,Code,Year,Hydropower (Terawatt-hours)\n")
		for i := range n {
			year := strconv.Itoa(1965 + i%50)
			if slices.Contains(bad, i) {
				year = "19x5"
			}
			fmt.Fprintf(&b, "\"Place, \"\"%d\"\"\r\nsecond line\",C%d,%s,%d.25\n", i, i%7, year, i)
		}
		return []byte(b.String())
	}
	st := newMemStore()
	st.put(t, "data/q/a.csv", build())
	spec := hydroSpec("data/q/", "curated/q/")
	spec.MaxRowsPerFile = 15_000
	res, err := Run(context.Background(), st, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for _, pf := range readOutput(t, st, res) {
		for _, r := range pf.rows {
			want := fmt.Sprintf("%q | \"C%d\" | %d | %g/%#x", fmt.Sprintf("Place, \"%d\"\nsecond line", i), i%7, 1965+i%50,
				float32(float64(i)+0.25), math.Float32bits(float32(float64(i)+0.25)))
			if got := formatRow(r); got != want {
				t.Fatalf("row %d reads back as %s, want %s", i, got, want)
			}
			i++
		}
	}
	if i != n || res.Files != 3 {
		t.Fatalf("read back %d rows in %d parts, want %d in 3", i, res.Files, n)
	}

	// A bad value in the last chunk is reported at its line: record k
	// starts on line 2+2k.
	const bad = n - 3
	st.put(t, "data/r/a.csv", build(bad))
	spec.Input, spec.Output = "data/r/", "curated/r/"
	_, err = Run(context.Background(), st, spec, nil)
	want := fmt.Sprintf(`curate: object "data/r/a.csv": line %d: column Year: want integer, got "19x5"`, 2+2*bad)
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}

	// With bad values in several chunks (parsed in parallel), the first in
	// the input is the one reported.
	st.put(t, "data/s/a.csv", build(30_000, 5_000, bad))
	spec.Input, spec.Output = "data/s/", "curated/s/"
	_, err = Run(context.Background(), st, spec, nil)
	if want := `line 10002: column Year`; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want the first bad value: %s", err, want)
	}
}

// A rerun over the same input versions — a retry after a crash between the
// commit and its record — must write the same keys with the same bytes, so
// that a load of the output prefix meets only versions its ledger already
// holds. A changed input must give new names.
func TestRerunOverUnchangedInputsWritesTheSameObjectVersions(t *testing.T) {
	bothStores(t, func(t *testing.T, st testStore) {
		st.put(t, "data/x/a.csv", hydroCSV(t))
		st.put(t, "data/x/b.csv", hydroCSV(t))
		spec := hydroSpec("data/x/", "curated/x/")
		spec.MaxRowsPerFile = 1500 // several parts, encoded concurrently
		versions := func() []string {
			t.Helper()
			res, err := Run(context.Background(), st, spec, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Files < 3 {
				t.Fatalf("%d parts, want several", res.Files)
			}
			var v []string
			for _, ob := range res.Outputs {
				v = append(v, ob.Key+" "+ob.ETag)
			}
			return v
		}
		first := versions()
		for range 3 {
			if again := versions(); !slices.Equal(again, first) {
				t.Fatalf("rerun over unchanged inputs wrote\n%s\nthe first run wrote\n%s", strings.Join(again, "\n"), strings.Join(first, "\n"))
			}
		}
		st.put(t, "data/x/b.csv", hydroCSV(t)[:5000])
		changed := versions()
		for _, v := range changed {
			if strings.HasSuffix(strings.Fields(v)[0], "_SUCCESS") {
				continue
			}
			if slices.ContainsFunc(first, func(f string) bool { return strings.Fields(f)[0] == strings.Fields(v)[0] }) {
				t.Fatalf("after an input changed, part %s kept its name", v)
			}
		}
	})
}
