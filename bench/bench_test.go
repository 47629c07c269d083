package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestQuickRunMeasuresEveryFigure runs the whole harness on small inputs
// against the real PostgreSQL, sqlite3, node and DuckDB, and the sluice
// binary it builds: every figure must be there, with what sluice wrote
// counted and its timings positive.
func TestQuickRunMeasuresEveryFigure(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cfg, err := parseFlags([]string{"-quick", "-runs", "1"}, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := runBench(ctx, cfg, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]result{}
	for _, r := range rep.results {
		got[r.id] = r
	}
	withRatio := []string{"pg-merge-0", "pg-merge-30", "pg-merge-100", "pg-append", "pg-seed", "sqlite-merge-0", "curate-job"}
	others := []string{"curate-pipeline", "latency-commit", "latency-job", "memory-load", "memory-curate"}
	for _, id := range append(withRatio, others...) {
		r, ok := got[id]
		if !ok {
			t.Errorf("no figure %s in the results", id)
			continue
		}
		if r.rows <= 0 {
			t.Errorf("%s: %d rows counted, want some", id, r.rows)
		}
		if r.sluice == "" || strings.HasPrefix(r.sluice, "0 ") || strings.HasPrefix(r.sluice, "0.00 ") {
			t.Errorf("%s: sluice figure %q, want a positive measurement", id, r.sluice)
		}
	}
	for _, id := range withRatio {
		if r := got[id]; r.ratio <= 0 || r.reference == "" {
			t.Errorf("%s: ratio %v against %q, want a positive ratio to a measured reference", id, r.ratio, r.reference)
		}
	}
	if len(rep.results) != len(withRatio)+len(others) {
		t.Errorf("%d figures, want %d", len(rep.results), len(withRatio)+len(others))
	}
	table := rep.block(cfg)
	for _, r := range rep.results {
		if !strings.Contains(table, "| "+r.figure+" | "+r.sluice+" |") {
			t.Errorf("the table lacks the row of %s:\n%s", r.id, table)
		}
	}
	t.Logf("\n%s", table)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestBothSidesGetTheSameRows reads the NDJSON objects as sluice does and
// the CSV as psql and sqlite3 do, and finds the same rows; a subset of ids
// gives the same bytes for each id as the full set.
func TestBothSidesGetTheSameRows(t *testing.T) {
	dir := t.TempDir()
	all, err := writePosts(filepath.Join(dir, "all"), 500, nil, 0, 3, true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		UserID int64  `json:"userId"`
		ID     int64  `json:"id"`
		Title  string `json:"title"`
		Body   string `json:"body"`
	}
	var fromJSON []row
	lines := map[int64]string{}
	for _, obj := range all.objects {
		f, err := os.Open(obj)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var r row
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: %v", obj, err)
			}
			fromJSON = append(fromJSON, r)
			lines[r.ID] = sc.Text()
		}
		f.Close()
	}
	f, err := os.Open(all.csv)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(fromJSON) != 500 || len(recs) != 500 || all.rows != 500 {
		t.Fatalf("%d NDJSON rows and %d CSV records (set says %d), want 500 each", len(fromJSON), len(recs), all.rows)
	}
	var chars int64
	for i, r := range fromJSON {
		c := recs[i]
		if c[0] != strconv.FormatInt(r.UserID, 10) || c[1] != strconv.FormatInt(r.ID, 10) || c[2] != r.Title || c[3] != r.Body {
			t.Fatalf("row %d: NDJSON %+v, CSV %q", i, r, c)
		}
		if !strings.Contains(r.Body, "\n") {
			t.Errorf("row %d: body without a newline, want bodies of several lines like the real posts", i)
		}
		chars += int64(len(r.Title) + len(r.Body))
	}
	if chars != all.chars {
		t.Errorf("the set counts %d characters, the rows hold %d", all.chars, chars)
	}
	some, err := writePosts(filepath.Join(dir, "some"), 500, func(id int64) bool { return id%10 < 3 }, 0, 2, false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range some.objects {
		data, err := os.ReadFile(obj)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
			var r row
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatal(err)
			}
			if r.ID%10 >= 3 || lines[r.ID] != l {
				t.Fatalf("subset row %d is %q, the full set's is %q", r.ID, l, lines[r.ID])
			}
		}
	}
	older := makePost(7, 1)
	if older.title == makePost(7, 0).title {
		t.Errorf("variants 0 and 1 of a row have the same title %q: a merge that kept the older row would go unnoticed", older.title)
	}
}

func TestSummariesDifferWhenTheOutputsDo(t *testing.T) {
	parse := func(s string) *parquetSummary {
		var p parquetSummary
		if err := json.Unmarshal([]byte(s), &p); err != nil {
			t.Fatal(err)
		}
		return &p
	}
	base := `{"columns":[{"name":"Year","type":"INTEGER"},{"name":"consumption","type":"FLOAT"}],"rows":4176,"nulls":{"Year":0,"consumption":0},"sums":{"Year":8314568,"consumption":493135.39023254474}}`
	if err := parse(base).same(parse(base)); err != nil {
		t.Fatalf("identical summaries differ: %v", err)
	}
	for _, other := range []string{
		strings.Replace(base, `"rows":4176`, `"rows":4175`, 1),
		strings.Replace(base, `"consumption":0}`, `"consumption":1}`, 1),
		strings.Replace(base, `493135.39023254474`, `493135.3912`, 1),
		strings.Replace(base, `"FLOAT"`, `"DOUBLE"`, 1),
	} {
		if err := parse(base).same(parse(other)); err == nil {
			t.Errorf("summaries %s and %s compare equal", base, other)
		}
	}
}

func TestWriteDocReplacesOnlyBetweenTheMarkers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "doc.md")
	doc := "# title\n\n" + beginMarker + "\nold table\n" + endMarker + "\n\nafter\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeDoc(path, "new table\n"); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	if want := "# title\n\n" + beginMarker + "\nnew table\n" + endMarker + "\n\nafter\n"; string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if err := os.WriteFile(path, []byte("no markers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeDoc(path, "x"); err == nil {
		t.Error("a doc without markers was written")
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(101-i)*time.Millisecond)
	}
	if p := percentile(ds, 50); p != 50*time.Millisecond {
		t.Errorf("p50 = %s, want 50ms", p)
	}
	if p := percentile(ds, 99); p != 99*time.Millisecond {
		t.Errorf("p99 = %s, want 99ms", p)
	}
	if m := median([]time.Duration{3, 1, 2}); m != 2 {
		t.Errorf("median = %d, want 2", m)
	}
}
