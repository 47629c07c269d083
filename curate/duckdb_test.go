package curate

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestDuckDBReadsCuratedHydropower curates the reference CSV into a local
// store and reads the result with DuckDB (tools/duckcheck, npm package
// @duckdb/node-api), an independent Parquet reader.
func TestDuckDBReadsCuratedHydropower(t *testing.T) {
	const hint = "run ./scripts/test.sh, which installs @duckdb/node-api"
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed: %v; %s", err, hint)
	}
	tool, err := filepath.Abs(filepath.Join("..", "tools", "duckcheck"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(tool, "node_modules", "@duckdb", "node-api", "package.json")); err != nil {
		t.Fatalf("%s/node_modules lacks @duckdb/node-api (%v); %s", tool, err, hint)
	}

	st := newLocalStore(t)
	data := hydroCSV(t)
	facts := hydroFacts(t, data)
	st.put(t, "data/2020-08-07_2PM/hydropower-consumption.csv", data)
	spec := hydroSpec("data/2020-08-07_2PM/", "curated/2020-08-07_2PM/")
	spec.MaxRowsPerFile = 1000 // several parts: DuckDB must read them all
	if _, err := Run(context.Background(), st, spec, nil); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(tool, "check.mjs"), filepath.Join(st.root, "curated", "2020-08-07_2PM"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("duckcheck failed: %v\n%s", err, stderr.String())
	}
	var got struct {
		Columns []struct{ Name, Type string }
		Rows    int
		Nulls   map[string]int
		Sums    map[string]float64
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("duckcheck printed %q: %v", out, err)
	}
	want := [][2]string{{"Entity", "VARCHAR"}, {"Code", "VARCHAR"}, {"Year", "INTEGER"}, {"consumption", "FLOAT"}}
	if len(got.Columns) != len(want) {
		t.Fatalf("DuckDB sees columns %+v, want %v", got.Columns, want)
	}
	for i, c := range got.Columns {
		if c.Name != want[i][0] || c.Type != want[i][1] {
			t.Errorf("column %d = %s %s, want %s %s", i, c.Name, c.Type, want[i][0], want[i][1])
		}
	}
	if got.Rows != 4176 || got.Nulls["Code"] != 780 || got.Nulls["Entity"] != 0 {
		t.Errorf("DuckDB sees %d rows, %d null Code, %d null Entity; want 4176, 780, 0", got.Rows, got.Nulls["Code"], got.Nulls["Entity"])
	}
	if rel := math.Abs(got.Sums["consumption"]-facts.sum) / math.Abs(facts.sum); rel > 1e-6 {
		t.Errorf("DuckDB sum(consumption) = %v, CSV float64 sum = %v, relative difference %g > 1e-6", got.Sums["consumption"], facts.sum, rel)
	}
}
