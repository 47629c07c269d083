package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// curateSetup is a data dir where the hydropower pipeline has run once
// (`sluice run --once`, timed end to end), and the task its job ran, so
// the job's own process can be run again and timed alone.
type curateSetup struct {
	dataDir string
	input   string // the CSV object's file in the local store
	output  string // the curated folder in the local store
	task    string // the task file, unfenced
	rows    int64
	bytes   int64
	e2e     time.Duration
}

// The hydropower pipeline (examples/hydropower/pipeline.yaml) with the
// settle window cut to 100 ms, since the input is complete at start.
const hydroSpec = `name: hydropower
store: %s
jobs:
  hydropower:
    on: {events: ["s3:ObjectCreated:*"], prefix: data/, suffix: .csv}
    group: "{{.Key.Parent}}"
    settle: 100ms
    runner: local
    timeout: 30m
    curate:
      input: "data/{{.Group}}/"
      format: csv
      rename: {"Hydropower (Terawatt-hours)": consumption}
      columns: {Entity: string, Code: string, Year: int32, consumption: float32}
      output: "curated/{{.Group}}/"
      mode: overwrite
`

// setupCurate runs the pipeline once on the hydropower CSV ×copies and
// keeps the task of its job run. The local runner writes each run's task
// to <data dir>/jobs/<run>/task.json (package job/local); run again by
// hand, it must not carry the run's claim (its "fence"), which ended with
// the run, so that key is dropped and everything else kept as it is.
func (b *bench) setupCurate(ctx context.Context, copies int) (*curateSetup, error) {
	dd, err := b.dataDir("curate")
	if err != nil {
		return nil, err
	}
	lake := filepath.Join(dd, "lake")
	s := &curateSetup{dataDir: dd, input: filepath.Join(lake, "data", "hydro", "hydropower-consumption.csv"), output: filepath.Join(lake, "curated", "hydro")}
	if err := os.MkdirAll(filepath.Dir(s.input), 0o755); err != nil {
		return nil, err
	}
	if s.rows, err = writeHydropower(s.input, copies, mainMtime); err != nil {
		return nil, err
	}
	if st, err := os.Stat(s.input); err == nil {
		s.bytes = st.Size()
	}
	spec := filepath.Join(dd, "pipeline.yaml")
	if err := os.WriteFile(spec, []byte(fmt.Sprintf(hydroSpec, "file://"+lake)), 0o644); err != nil {
		return nil, err
	}
	p, err := b.runSluice(ctx, dd, nil, "run", "--once", "-f", spec)
	if err != nil {
		return nil, err
	}
	s.e2e = p.wall
	sum, err := b.duckcheck(ctx, s.output)
	if err != nil {
		return nil, fmt.Errorf("read the pipeline's output: %w", err)
	}
	if int64(sum.Rows) != s.rows {
		return nil, fmt.Errorf("the pipeline wrote %.0f rows to %s, want %d", sum.Rows, s.output, s.rows)
	}
	tasks, err := filepath.Glob(filepath.Join(dd, "jobs", "*", "task.json"))
	if err != nil || len(tasks) != 1 {
		return nil, fmt.Errorf("want the one job run's task file under %s, found %q (%v): has the local runner's layout changed?", filepath.Join(dd, "jobs"), tasks, err)
	}
	data, err := os.ReadFile(tasks[0])
	if err != nil {
		return nil, err
	}
	var task map[string]json.RawMessage
	if err := json.Unmarshal(data, &task); err != nil {
		return nil, fmt.Errorf("%s: %w", tasks[0], err)
	}
	delete(task, "fence")
	if data, err = json.Marshal(task); err != nil {
		return nil, err
	}
	taskDir := filepath.Join(dd, "bench-task")
	if err := os.MkdirAll(taskDir, 0o755); err != nil {
		return nil, err
	}
	s.task = filepath.Join(taskDir, "task.json")
	return s, os.WriteFile(s.task, data, 0o644)
}

// execCurate runs the curate job's process, `sluice job exec TASK`, as the
// local runner does, and checks that it wrote want rows.
func (b *bench) execCurate(ctx context.Context, s *curateSetup, want int64) (proc, *parquetSummary, error) {
	p, err := b.runSluice(ctx, s.dataDir, nil, "job", "exec", s.task)
	if err != nil {
		return p, nil, err
	}
	sum, err := b.duckcheck(ctx, s.output)
	if err != nil {
		return p, nil, fmt.Errorf("read sluice's output: %w", err)
	}
	if int64(sum.Rows) != want {
		return p, nil, fmt.Errorf("sluice job exec wrote %.0f rows to %s, want %d", sum.Rows, s.output, want)
	}
	return p, sum, nil
}

func (b *bench) curate(ctx context.Context) ([]result, error) {
	copies := b.cfg.sizes.hydroCopies
	t0 := time.Now()
	s, err := b.setupCurate(ctx, copies)
	if err != nil {
		return nil, err
	}
	b.curated = s
	b.logf("   curate: pipeline end to end %s (%s rows, %.0f MB; set-up took %s)", secs(s.e2e), count(s.rows), float64(s.bytes)/1e6, time.Since(t0).Round(100*time.Millisecond))
	var sluiceSum, refSum *parquetSummary
	refs, sls, err := b.pair("curate",
		func(rep int) (time.Duration, error) {
			d, sum, err := b.duckCurate(ctx, s, rep)
			refSum = sum
			return d, err
		},
		func(rep int) (time.Duration, error) {
			p, sum, err := b.execCurate(ctx, s, s.rows)
			sluiceSum = sum
			return p.wall, err
		})
	if err != nil {
		return nil, err
	}
	if err := sluiceSum.same(refSum); err != nil {
		return nil, fmt.Errorf("sluice's Parquet and DuckDB's differ: %w", err)
	}
	r, sl := median(refs), median(sls)
	return []result{
		{id: "curate-job", figure: fmt.Sprintf("curate job: hydropower CSV ×%d (%s rows, %.0f MB) → snappy Parquet, the `sluice job exec` process", copies, count(s.rows), float64(s.bytes)/1e6),
			sluice: spread(sls), reference: "node + DuckDB, 2 threads: " + spread(refs), ratio: r.Seconds() / sl.Seconds(), value: r.Seconds() / sl.Seconds(),
			crit: ratioAtLeast(1.0, 0.7), rows: int64(sluiceSum.Rows)},
		{id: "curate-pipeline", figure: "curate pipeline end to end: `run --once` from start to exit (job settle 100 ms)",
			sluice: secs(s.e2e), rows: s.rows},
	}, nil
}

// duckCurate is the reference: node + DuckDB with 2 threads reading the
// same CSV with the same renames and casts into one snappy Parquet file.
func (b *bench) duckCurate(ctx context.Context, s *curateSetup, rep int) (time.Duration, *parquetSummary, error) {
	out := filepath.Join(b.tmp, "duckdb-out")
	if err := os.RemoveAll(out); err != nil {
		return 0, nil, err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return 0, nil, err
	}
	q := fmt.Sprintf(`SET threads = 2;
COPY (SELECT Entity, Code, CAST(Year AS INTEGER) AS Year, CAST("Hydropower (Terawatt-hours)" AS FLOAT) AS consumption
      FROM read_csv(%s, header = true, all_varchar = true))
TO %s (FORMAT parquet, COMPRESSION snappy)`, sqlString(s.input), sqlString(filepath.Join(out, "part-0.parquet")))
	p, err := run(ctx, nil, "", "node", filepath.Join(b.root, "tools", "duckcheck", "sql.mjs"), q)
	if err != nil {
		return 0, nil, err
	}
	sum, err := b.duckcheck(ctx, out)
	if err != nil {
		return 0, nil, fmt.Errorf("read DuckDB's output: %w", err)
	}
	if int64(sum.Rows) != s.rows {
		return 0, nil, fmt.Errorf("DuckDB wrote %.0f rows, want %d", sum.Rows, s.rows)
	}
	return p.wall, sum, nil
}

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// parquetSummary is what tools/duckcheck/check.mjs prints for a folder of
// Parquet files, read by DuckDB.
type parquetSummary struct {
	Columns []struct{ Name, Type string } `json:"columns"`
	Rows    float64                       `json:"rows"`
	Nulls   map[string]float64            `json:"nulls"`
	Sums    map[string]*float64           `json:"sums"`
}

func (b *bench) duckcheck(ctx context.Context, dir string) (*parquetSummary, error) {
	p, err := run(ctx, nil, "", "node", filepath.Join(b.root, "tools", "duckcheck", "check.mjs"), dir)
	if err != nil {
		return nil, err
	}
	var s parquetSummary
	if err := json.Unmarshal([]byte(p.stdout), &s); err != nil {
		return nil, fmt.Errorf("duckcheck printed %q: %w", p.stdout, err)
	}
	return &s, nil
}

// same fails unless both outputs have the same columns and types, rows,
// null counts and sums. Sums of float columns are compared to 1e-9
// relative: DuckDB adds them in parallel, in no fixed order.
func (s *parquetSummary) same(o *parquetSummary) error {
	a, _ := json.Marshal(s.Columns)
	c, _ := json.Marshal(o.Columns)
	if string(a) != string(c) {
		return fmt.Errorf("columns %s and %s", a, c)
	}
	if s.Rows != o.Rows {
		return fmt.Errorf("%.0f and %.0f rows", s.Rows, o.Rows)
	}
	for k, v := range s.Nulls {
		if o.Nulls[k] != v {
			return fmt.Errorf("column %s: %.0f and %.0f nulls", k, v, o.Nulls[k])
		}
	}
	for k, v := range s.Sums {
		w := o.Sums[k]
		if (v == nil) != (w == nil) || v != nil && math.Abs(*v-*w) > 1e-9*math.Max(math.Abs(*v), math.Abs(*w)) {
			return fmt.Errorf("column %s: sums %v and %v", k, deref(v), deref(w))
		}
	}
	return nil
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
