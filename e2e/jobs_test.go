package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/state"
)

const hydroSpec = `name: hydro
queue: "embedded?ack_wait=5s"
jobs:
  hydropower:
    on: {events: ["s3:ObjectCreated:*"], prefix: data/, suffix: .csv}
    group: "{{.Key.Parent}}"
    settle: %s
    curate:
      input: "data/{{.Group}}/"
      rename: {"Hydropower (Terawatt-hours)": consumption}
      columns: {Entity: string, Code: string, Year: int32, consumption: float32}
      output: "curated/{{.Group}}/"
      max_rows_per_file: %d
`

// daemon is a `sluice run` left running in the background.
type daemon struct {
	cmd     *exec.Cmd
	dataDir string
	log     string
}

func startRun(t *testing.T, dataDir, spec string, env ...string) *daemon {
	t.Helper()
	f := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(f, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "run.log")
	logf, _ := os.Create(logPath)
	cmd := exec.Command(bin, "run", "--data-dir="+dataDir, "-f", f)
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, dataDir: dataDir, log: logPath}
	t.Cleanup(func() { d.stop(); logf.Close() })
	return d
}

func (d *daemon) stop() {
	if d.cmd.ProcessState == nil {
		d.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { d.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			d.cmd.Process.Kill()
			<-done
		}
	}
}

func (d *daemon) logTail() string {
	b, _ := os.ReadFile(d.log)
	return tail(string(b), 3000)
}

// runs reads the job runs recorded in the data dir, oldest first.
func runs(t *testing.T, dataDir string) []job.Run {
	t.Helper()
	st, err := state.Open(context.Background(), "", dataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rs, err := st.ListRuns(context.Background(), job.RunFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(rs)
	return rs
}

// waitRuns waits until n runs are finished and terminated.
func waitRuns(t *testing.T, d *daemon, n int) []job.Run {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		rs := runs(t, d.dataDir)
		done := 0
		for _, r := range rs {
			if !r.Terminated.IsZero() {
				done++
			}
		}
		if done >= n {
			return rs
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 90s for %d finished runs, have %d: %+v\n%s", n, done, rs, d.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jobProcesses lists live `sluice job exec` processes of a data dir.
func jobProcesses(t *testing.T, dataDir string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			continue // a zombie is no process: its compute is gone
		}
		args := strings.Split(string(cmd), "\x00")
		if len(args) >= 3 && args[1] == "job" && args[2] == "exec" && strings.Contains(string(cmd), dataDir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func put(t *testing.T, dataDir, local, key string) {
	t.Helper()
	mustRun(t, nil, "put", "--data-dir="+dataDir, local, key)
}

func writeFile(t *testing.T, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f.csv")
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// curated lists the objects under curated/GROUP/.
func curated(t *testing.T, dataDir, group string) []string {
	t.Helper()
	r := mustRun(t, nil, "ls", "--data-dir="+dataDir, "curated/"+group+"/")
	return strings.Fields(r.stdout)
}

func TestAnUploadStartsOneTransientJobThatLeavesNoProcessBehind(t *testing.T) {
	dataDir := t.TempDir()
	d := startRun(t, dataDir, fmt.Sprintf(hydroSpec, "1s", 1000000))
	time.Sleep(1500 * time.Millisecond) // the owner is up and idle
	if p := jobProcesses(t, dataDir); len(p) != 0 {
		t.Fatalf("job processes before any upload: %v", p)
	}
	if rs := runs(t, dataDir); len(rs) != 0 {
		t.Fatalf("runs before any upload: %+v", rs)
	}
	put(t, dataDir, "testdata/hydropower-consumption.csv", "data/2020-08-07_2PM/hydropower-consumption.csv")
	rs := waitRuns(t, d, 1)
	r := rs[0]
	if r.State != job.Succeeded || r.Group != "2020-08-07_2PM" {
		t.Fatalf("run = %+v\n%s", r, d.logTail())
	}
	if r.PID == 0 || r.Started.Before(r.Created) || r.Ended.Before(r.Started) || r.Terminated.Before(r.Ended) || r.ComputeSeconds <= 0 {
		t.Fatalf("lifecycle timings not in order: %+v", r)
	}
	if p := jobProcesses(t, dataDir); len(p) != 0 {
		t.Fatalf("job processes after the run: %v", p)
	}
	if err := syscall.Kill(r.PID, 0); err == nil {
		if stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.PID)); !bytes.Contains(stat, []byte(") Z")) {
			t.Fatalf("the run's process %d still exists", r.PID)
		}
	}
	out := curated(t, dataDir, "2020-08-07_2PM")
	// ls sorts by key: "_SUCCESS" before "part-".
	if len(out) != 2 || out[0] != "curated/2020-08-07_2PM/_SUCCESS" || !strings.HasPrefix(out[1], "curated/2020-08-07_2PM/part-00000-") || !strings.HasSuffix(out[1], "-c000.snappy.parquet") {
		t.Fatalf("curated output = %v", out)
	}
	jobs := mustRun(t, nil, "jobs", "--data-dir="+dataDir)
	if !strings.Contains(jobs.stdout, "SUCCEEDED") || !strings.Contains(jobs.stdout, "TERMINATED") {
		t.Fatalf("sluice jobs:\n%s", jobs.stdout)
	}
	detail := mustRun(t, nil, "jobs", "--data-dir="+dataDir, r.ID)
	for _, want := range []string{"state      SUCCEEDED", "terminated 20", "data/2020-08-07_2PM/hydropower-consumption.csv", "curated 4176 row(s)"} {
		if !strings.Contains(detail.stdout, want) {
			t.Errorf("sluice jobs %s lacks %q:\n%s", r.ID, want, detail.stdout)
		}
	}
	// The same event again (same bytes, same ETag) starts nothing new.
	put(t, dataDir, "testdata/hydropower-consumption.csv", "data/2020-08-07_2PM/hydropower-consumption.csv")
	time.Sleep(5 * time.Second)
	if rs := runs(t, dataDir); len(rs) != 1 {
		t.Fatalf("re-uploading identical bytes started %d runs, want still 1", len(rs))
	}
}

// duck reads a curated folder with DuckDB (tools/duckcheck).
type duckResult struct {
	Columns []struct{ Name, Type string }
	Rows    int64
	Nulls   map[string]int64
	Sums    map[string]float64
}

func duckdb(t *testing.T, dir string) duckResult {
	t.Helper()
	script, _ := filepath.Abs("../tools/duckcheck/check.mjs")
	if _, err := os.Stat(filepath.Join(filepath.Dir(script), "node_modules", "@duckdb", "node-api")); err != nil {
		t.Fatalf("DuckDB's npm package is not installed: run ./scripts/test.sh, which installs @duckdb/node-api (%v)", err)
	}
	out, err := exec.Command("node", script, dir).Output()
	if err != nil {
		t.Fatalf("node duckcheck %s: %v\n%s", dir, err, out)
	}
	var r duckResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("duckcheck output %q: %v", out, err)
	}
	return r
}

func TestDuckDBReadsTheDemosCuratedHydropowerOutput(t *testing.T) {
	dataDir := t.TempDir()
	mustRun(t, nil, "demo", "--data-dir="+dataDir)
	r := duckdb(t, filepath.Join(dataDir, "lake", "curated", "2020-08-07_2PM"))
	var types []string
	for _, c := range r.Columns {
		types = append(types, c.Name+" "+c.Type)
	}
	if got := strings.Join(types, ", "); got != "Entity VARCHAR, Code VARCHAR, Year INTEGER, consumption FLOAT" {
		t.Errorf("DuckDB schema = %s", got)
	}
	if r.Rows != 4176 {
		t.Errorf("DuckDB rows = %d, want 4176", r.Rows)
	}
	if r.Nulls["Code"] != 780 {
		t.Errorf("DuckDB null Codes = %d, want 780", r.Nulls["Code"])
	}
	want := csvSum(t, "testdata/hydropower-consumption.csv")
	if got := r.Sums["consumption"]; math.Abs(got-want) > 1e-6*want {
		t.Errorf("DuckDB sum(consumption) = %v, CSV sum = %v: off by more than 1e-6 relative", got, want)
	}
	jobs := mustRun(t, nil, "jobs", "--data-dir="+dataDir)
	if !strings.Contains(jobs.stdout, "SUCCEEDED") || !strings.Contains(jobs.stdout, "TERMINATED") {
		t.Errorf("sluice jobs after the demo:\n%s", jobs.stdout)
	}
}

func csvSum(t *testing.T, path string) float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if i == 0 {
			continue
		}
		f := strings.Split(line, ",")
		v, err := strconv.ParseFloat(strings.TrimSpace(f[len(f)-1]), 64)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		sum += v
	}
	return sum
}

func TestRunOnceWaitsForJobsAndFailsWhenARunFails(t *testing.T) {
	dataDir := t.TempDir()
	spec := filepath.Join(t.TempDir(), "p.yaml")
	os.WriteFile(spec, []byte(fmt.Sprintf(hydroSpec, "1s", 1000000)), 0o644)
	dd := "--data-dir=" + dataDir
	put(t, dataDir, "testdata/hydropower-consumption.csv", "data/good/h.csv")
	r := mustRun(t, nil, "run", dd, "-f", spec, "--once")
	if !strings.Contains(r.stdout, "job runs: 1 succeeded, 0 failed") {
		t.Fatalf("run --once summary: %s", r.stdout)
	}
	if got := curated(t, dataDir, "good"); len(got) != 2 {
		t.Fatalf("run --once returned before the job committed: %v", got)
	}
	put(t, dataDir, writeFile(t, "Entity,Code,Year,Hydropower (Terawatt-hours)\nA,B,abc,1\n"), "data/bad/h.csv")
	r = sluice(t, nil, "run", dd, "-f", spec, "--once")
	if r.code == 0 {
		t.Fatalf("run --once exited 0 although the job failed:\n%s", r.stdout)
	}
	final := r.stderr[strings.LastIndex(r.stderr, "sluice run: "):]
	if !strings.Contains(final, "hydropower") || !strings.Contains(final, "data/bad/h.csv") || !strings.Contains(final, "FAILED") {
		t.Fatalf("run --once's error does not name the failed run and object:\n%s", final)
	}
}
