package e2e

import (
	"crypto/md5"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/job"
)

// smallCSV makes a valid hydropower-shaped CSV with n rows, distinct per seed.
func smallCSV(seed, n int) string {
	var b strings.Builder
	b.WriteString("Entity,Code,Year,Hydropower (Terawatt-hours)\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "Country%d,C%d,%d,%d.5\n", seed, seed, 1965+i, seed*100+i)
	}
	return b.String()
}

func inputsOf(r job.Run) []string {
	var s []string
	for _, in := range r.Inputs {
		s = append(s, in.Key+"@"+in.ETag)
	}
	slices.Sort(s)
	return s
}

func TestFiveUploadsInTheSettleWindowStartOneRunAndASixthExactlyOneMore(t *testing.T) {
	dataDir := t.TempDir()
	d := startRun(t, dataDir, fmt.Sprintf(hydroSpec, "4s", 3))
	group := "2021-01-01_9AM"
	var want []string
	for i := 1; i <= 5; i++ {
		key := fmt.Sprintf("data/%s/part-%d.csv", group, i)
		f := writeFile(t, smallCSV(i, 4))
		put(t, dataDir, f, key)
		want = append(want, key+"@"+md5hex(t, f))
	}
	slices.Sort(want)
	rs := waitRuns(t, d, 1)
	time.Sleep(2 * time.Second)
	if rs = runs(t, dataDir); len(rs) != 1 {
		t.Fatalf("five uploads started %d runs, want 1: %+v", len(rs), rs)
	}
	if rs[0].State != job.Succeeded {
		t.Fatalf("run: %+v\n%s", rs[0], d.logTail())
	}
	if got := inputsOf(rs[0]); !slices.Equal(got, want) {
		t.Fatalf("recorded inputs\n%v\nwant exactly\n%v", got, want)
	}
	first := curated(t, dataDir, group)
	// 20 rows at 3 per file: 7 parts and _SUCCESS.
	if len(first) != 8 {
		t.Fatalf("first output = %v", first)
	}

	sixth := fmt.Sprintf("data/%s/part-6.csv", group)
	f := writeFile(t, smallCSV(6, 4))
	put(t, dataDir, f, sixth)
	rs = waitRuns(t, d, 2)
	time.Sleep(6 * time.Second) // a third run would have settled by now
	if rs = runs(t, dataDir); len(rs) != 2 {
		t.Fatalf("the sixth upload gave %d runs in all, want 2", len(rs))
	}
	if rs[1].State != job.Succeeded || len(rs[1].Inputs) != 6 {
		t.Fatalf("second run: %+v", rs[1])
	}
	second := curated(t, dataDir, group)
	if len(second) != 9 { // 24 rows: 8 parts and _SUCCESS
		t.Fatalf("second output = %v", second)
	}
	for _, k := range first {
		if strings.HasSuffix(k, ".parquet") && slices.Contains(second, k) {
			t.Errorf("part %s of the first run survived the second run's overwrite", k)
		}
	}
}

func md5hex(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", md5.Sum(b))
}

func TestAJobKilledAfterItsFirstPartLeavesThePreviousOutputAndRunsAgain(t *testing.T) {
	dataDir := t.TempDir()
	group := "2022-02-02_3PM"
	spec := fmt.Sprintf(hydroSpec, "1s", 1000)
	// A first good run.
	d := startRun(t, dataDir, spec)
	put(t, dataDir, "testdata/hydropower-consumption.csv", "data/"+group+"/a.csv")
	rs := waitRuns(t, d, 1)
	if rs[0].State != job.Succeeded {
		t.Fatalf("first run: %+v\n%s", rs[0], d.logTail())
	}
	good := curated(t, dataDir, group)
	goodBytes := readAll(t, dataDir, good)
	d.stop()

	// Now the job process dies (SIGKILL) right after writing its first part.
	d = startRun(t, dataDir, spec, "SLUICE_FAILPOINT=curate-after-part=0")
	put(t, dataDir, writeFile(t, smallCSV(7, 2000)), "data/"+group+"/b.csv")
	rs = waitRuns(t, d, 2)
	if rs[1].State != job.Failed || rs[1].Terminated.IsZero() {
		t.Fatalf("killed run: %+v\n%s", rs[1], d.logTail())
	}
	if got := curated(t, dataDir, group); !slices.Equal(got, good) {
		t.Fatalf("output after the killed run = %v, want exactly the previous %v", got, good)
	}
	if got := readAll(t, dataDir, good); !slices.Equal(got, goodBytes) {
		t.Fatal("output bytes changed after the killed run")
	}
	if entries, _ := os.ReadDir(filepath.Join(dataDir, "lake", "curated")); len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Logf("curated/ holds %v (staging left by the kill is cleaned at the next run)", names)
	}
	d.stop()

	// The next event for the group runs it again, to SUCCEEDED.
	d = startRun(t, dataDir, spec)
	put(t, dataDir, writeFile(t, smallCSV(8, 10)), "data/"+group+"/c.csv")
	rs = waitRuns(t, d, 3)
	if rs[2].State != job.Succeeded || len(rs[2].Inputs) != 3 {
		t.Fatalf("rerun: %+v\n%s", rs[2], d.logTail())
	}
	after := curated(t, dataDir, group)
	if slices.Equal(after, good) || len(after) < 2 || after[0] != "curated/"+group+"/_SUCCESS" {
		t.Fatalf("output after the rerun = %v", after)
	}
	if entries, _ := os.ReadDir(filepath.Join(dataDir, "lake", "curated")); len(entries) != 1 {
		t.Fatalf("curated/ holds %d entries after the rerun, want only %s (no staging left)", len(entries), group)
	}
}

func readAll(t *testing.T, dataDir string, keys []string) []string {
	t.Helper()
	var out []string
	for _, k := range keys {
		b, err := os.ReadFile(filepath.Join(dataDir, "lake", filepath.FromSlash(k)))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

func TestEachBadInputFailsTheRunClearlyAndChangesNoOutput(t *testing.T) {
	dataDir := t.TempDir()
	spec := fmt.Sprintf(hydroSpec, "1s", 1000000) + `  elsewhere:
    on: {prefix: other/, suffix: .csv}
    curate:
      input: "missing/{{.Group}}/"
      columns: {a: string}
      output: "curated-elsewhere/{{.Group}}/"
`
	d := startRun(t, dataDir, spec)
	cases := []struct {
		name, data, want string
	}{
		{"ragged row", "Entity,Code,Year,Hydropower (Terawatt-hours)\nA,B,2000,1.5\nA,B,2001\n", "line 3"},
		{"year abc", "Entity,Code,Year,Hydropower (Terawatt-hours)\nA,B,2000,1.5\nA,B,abc,2.5\n", `column Year`},
		{"empty file", "", "empty"},
		{"not utf-8", "Entity,Code,Year,Hydropower (Terawatt-hours)\nA\xff\xfe,B,2000,1.5\n", "UTF-8"},
	}
	n := 0
	for i, c := range cases {
		group := fmt.Sprintf("bad-%d", i)
		put(t, dataDir, writeFile(t, smallCSV(i, 3)), "data/"+group+"/good.csv")
		n++
		rs := waitRuns(t, d, n)
		if rs[n-1].State != job.Succeeded {
			t.Fatalf("%s: good run: %+v", c.name, rs[n-1])
		}
		good := curated(t, dataDir, group)
		goodBytes := readAll(t, dataDir, good)
		key := "data/" + group + "/bad.csv"
		put(t, dataDir, writeFile(t, c.data), key)
		n++
		rs = waitRuns(t, d, n)
		r := rs[n-1]
		if r.State != job.Failed {
			t.Fatalf("%s: run %s, want FAILED", c.name, r.State)
		}
		if !strings.Contains(r.Error, key) || !strings.Contains(r.Error, c.want) {
			t.Errorf("%s: error %q does not name %s and %q", c.name, r.Error, key, c.want)
		}
		if got := curated(t, dataDir, group); !slices.Equal(got, good) || !slices.Equal(readAll(t, dataDir, got), goodBytes) {
			t.Errorf("%s: output changed: %v, want %v", c.name, got, good)
		}
	}
	// A missing input folder.
	put(t, dataDir, writeFile(t, "a\nx\n"), "other/g1/x.csv")
	n++
	rs := waitRuns(t, d, n)
	r := rs[n-1]
	if r.State != job.Failed || !strings.Contains(r.Error, "missing/g1/") {
		t.Errorf("missing input: run %s, error %q; want FAILED naming missing/g1/", r.State, r.Error)
	}
	if got := strings.TrimSpace(mustRun(t, nil, "ls", "--data-dir="+dataDir, "curated-elsewhere/").stdout); got != "" {
		t.Errorf("missing input wrote output: %s", got)
	}
	// `run --once` reports failed runs in its exit status.
	d.stop()
}
