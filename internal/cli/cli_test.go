package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/datadir"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/state"
)

// run runs the command line with the SLUICE_* variables in env (the
// others unset) and returns its output and exit status.
func run(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	for _, k := range []string{"SLUICE_DATA", "SLUICE_STORE", "SLUICE_QUEUE", "SLUICE_WAREHOUSE", "SLUICE_STATE"} {
		t.Setenv(k, env[k])
	}
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestVersionIsOneLineFromTheBuildInfo(t *testing.T) {
	plat := " " + runtime.GOOS + "/" + runtime.GOARCH
	rev := "c178489e23d0a1b2c3d4e5f60718293a4b5c6d7e"
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "sluice devel " + runtime.Version() + plat},
		{"devel, clean", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "false"}}},
			"sluice devel (commit c178489e23d0) go1.26.8" + plat},
		{"release, dirty", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "true"}}},
			"sluice v1.4.0 (commit c178489e23d0+dirty) go1.26.8" + plat},
		{"pseudo-version holding the commit", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261202135504-c178489e23d0+dirty"},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: "true"}}},
			"sluice v0.0.0-20261202135504-c178489e23d0+dirty go1.26.8" + plat},
	} {
		if got := formatVersion(tc.bi); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	for _, args := range [][]string{{"--version"}, {"version"}, {"-version"}} {
		out, _, code := run(t, nil, args...)
		if code != 0 || out != versionLine()+"\n" || !strings.HasPrefix(out, "sluice ") {
			t.Errorf("sluice %s: exit %d, %q", args[0], code, out)
		}
	}
}

func TestLogFlagsAreCheckedAndTheHelpStatesTheirDefaults(t *testing.T) {
	dd := t.TempDir()
	_, errOut, code := run(t, nil, "--log-format=xml", "ls", "--data-dir", dd)
	if code != 2 || !strings.Contains(errOut, `--log-format "xml": want text or json`) {
		t.Errorf("--log-format xml: exit %d, %q", code, errOut)
	}
	_, errOut, code = run(t, nil, "ls", "--data-dir", dd, "--log-level", "loud")
	if code != 2 || !strings.Contains(errOut, `--log-level "loud": want debug, info, warn or error`) {
		t.Errorf("--log-level loud: exit %d, %q", code, errOut)
	}
	out, _, _ := run(t, nil, "--help")
	for _, want := range []string{"(default info for run, worker and serve, warn for the others)", "log format: text or json (default text)", "sluice --version"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = run(t, nil, "sql", "--help")
	if !strings.Contains(out, "-log-format") {
		t.Errorf("sql --help lacks --log-format:\n%s", out)
	}
}

func TestLogFormatJSONWritesOneObjectALine(t *testing.T) {
	var errb bytes.Buffer
	a := &app{stderr: &errb, logFormat: "json"}
	a.logger(0).Info("hello", "n", 1)
	a.logger(0).Debug("hidden")
	var m map[string]any
	if err := json.Unmarshal(errb.Bytes(), &m); err != nil || m["msg"] != "hello" || m["n"] != 1.0 || m["level"] != "INFO" {
		t.Fatalf("log = %q (%v)", errb.String(), err)
	}
	errb.Reset()
	(&app{stderr: &errb}).logger(0).Info("hello")
	if !strings.HasPrefix(errb.String(), "time=") {
		t.Fatalf("default format = %q, want slog's text", errb.String())
	}
}

func TestSQLJSONKeepsTheColumnOrderOfTheQuery(t *testing.T) {
	var b bytes.Buffer
	when := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	err := writeJSON(&b, []string{"zeta", "alpha", "mid", "when", "nothing", "raw", "nan"},
		[][]any{{int64(1), "a<b>&c", 2.5, when, nil, []byte("bytes"), math.NaN()}, {int64(2), "x", 0.0, when, nil, []byte{}, 1.0}})
	if err != nil {
		t.Fatal(err)
	}
	want := `[
  {"zeta": 1, "alpha": "a<b>&c", "mid": 2.5, "when": "2026-12-01T10:00:00Z", "nothing": null, "raw": "bytes", "nan": "NaN"},
  {"zeta": 2, "alpha": "x", "mid": 0, "when": "2026-12-01T10:00:00Z", "nothing": null, "raw": "", "nan": 1}
]
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	var rows []map[string]any
	if err := json.Unmarshal(b.Bytes(), &rows); err != nil || len(rows) != 2 {
		t.Fatalf("not a JSON array of objects: %v", err)
	}
	b.Reset()
	if err := writeJSON(&b, []string{"a"}, nil); err != nil || b.String() != "[]\n" {
		t.Fatalf("no rows: %q %v", b.String(), err)
	}
}

// makeWarehouse writes a SQLite file with table t(b, a) holding one row.
func makeWarehouse(t *testing.T, path string, a string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE t (b INTEGER, a TEXT); INSERT INTO t VALUES (2, ?)`, a); err != nil {
		t.Fatal(err)
	}
	return datadir.FileURL("sqlite", path)
}

// record writes what an owner of dd would record.
func record(t *testing.T, dd string, r datadir.Recorded) {
	t.Helper()
	l, err := datadir.Dir{Path: dd}.Acquire("run")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if err := l.Record(r); err != nil {
		t.Fatal(err)
	}
}

func TestSQLReadsTheFlagThenTheSpecThenTheEnvironmentThenTheRecordThenTheDataDir(t *testing.T) {
	dd := t.TempDir()
	other := t.TempDir()
	own := makeWarehouse(t, filepath.Join(dd, "warehouse.db"), "data dir")
	recorded := makeWarehouse(t, filepath.Join(other, "recorded.db"), "recorded")
	env := makeWarehouse(t, filepath.Join(other, "env.db"), "env")
	specWH := makeWarehouse(t, filepath.Join(other, "spec.db"), "spec")
	flagWH := makeWarehouse(t, filepath.Join(other, "flag.db"), "flag")
	spec := filepath.Join(other, "p.yaml")
	if err := os.WriteFile(spec, []byte("name: p\nwarehouse: "+specWH+"\nloads:\n  t:\n    on: {prefix: raw/}\n    table: t\n    columns: {a: text}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	q := func(env map[string]string, extra ...string) (string, string) {
		t.Helper()
		args := append([]string{"sql", "--data-dir", dd, "--format=csv", "--no-header", "-v"}, extra...)
		out, errOut, code := run(t, env, append(args, "select a from t")...)
		if code != 0 {
			t.Fatalf("sql %v: exit %d: %s", extra, code, errOut)
		}
		return strings.TrimSpace(out), errOut
	}
	if got, note := q(nil); got != "data dir" || !strings.Contains(note, "(the data dir's own)") {
		t.Errorf("no record: %q, note %q", got, note)
	}
	_ = own
	record(t, dd, datadir.Recorded{Warehouse: recorded})
	if got, note := q(nil); got != "recorded" || !strings.Contains(note, "sluice sql: reading warehouse "+recorded+" (recorded by the data dir's last owner in "+filepath.Join(dd, "pipeline.json")+")") {
		t.Errorf("recorded: %q, note %q", got, note)
	}
	e := map[string]string{"SLUICE_WAREHOUSE": env}
	if got, note := q(e); got != "env" || !strings.Contains(note, "(from SLUICE_WAREHOUSE)") {
		t.Errorf("env: %q, note %q", got, note)
	}
	if got, note := q(nil, "-f", spec); got != "spec" || !strings.Contains(note, "(from -f's spec)") {
		t.Errorf("-f: %q, note %q", got, note)
	}
	// -f's spec has the variables applied, as `run -f` applies them.
	if got, _ := q(e, "-f", spec); got != "env" {
		t.Errorf("-f with SLUICE_WAREHOUSE set: %q", got)
	}
	if got, note := q(e, "--warehouse", flagWH, "-f", spec); got != "flag" || !strings.Contains(note, "(from --warehouse)") {
		t.Errorf("--warehouse: %q, note %q", got, note)
	}
	// Without -v, stderr stays empty.
	out, errOut, code := run(t, nil, "sql", "--data-dir", dd, "--format=json", "select b, a from t")
	if code != 0 || errOut != "" || out != "[\n  {\"b\": 2, \"a\": \"recorded\"}\n]\n" {
		t.Errorf("sql --format=json: exit %d, %q, stderr %q", code, out, errOut)
	}
}

func TestARecordedPostgresWarehouseThatFailsSaysWhereItCameFromAndWhereItsPasswordComesFrom(t *testing.T) {
	dd := t.TempDir()
	record(t, dd, datadir.Recorded{Warehouse: "postgres://sluice@127.0.0.1:1/nothing?schema=s&connect_timeout=2"})
	_, errOut, code := run(t, nil, "sql", "--data-dir", dd, "select 1")
	if code != 1 || !strings.Contains(errOut, "recorded by the data dir's last owner") || !strings.Contains(errOut, "set PGPASSWORD or a ~/.pgpass line, or the whole URL in SLUICE_WAREHOUSE") {
		t.Fatalf("exit %d:\n%s", code, errOut)
	}
}

func TestASpecLoadedFromTheRecordRunsOnWhatItsOwnerRanOn(t *testing.T) {
	a := &app{getenv: func(string) string { return "" }}
	spec := &pipeline.Spec{Warehouse: "postgres://u:pw@db/test?schema=w", State: ""}
	a.applyRecorded(spec, datadir.Recorded{Warehouse: "postgres://u@db/test?schema=w", State: "postgres://u@db/test?schema=s"})
	if spec.Warehouse != "postgres://u:pw@db/test?schema=w" || spec.State != "postgres://u@db/test?schema=s" {
		t.Errorf("spec = %q, %q: want the file's warehouse (same but for its password) and the recorded state", spec.Warehouse, spec.State)
	}
	a.getenv = func(k string) string {
		if k == "SLUICE_STATE" {
			return "postgres://env/x"
		}
		return ""
	}
	spec = &pipeline.Spec{State: "postgres://env/x"}
	a.applyRecorded(spec, datadir.Recorded{State: "postgres://u@db/test?schema=s"})
	if spec.State != "postgres://env/x" || spec.Warehouse != "" {
		t.Errorf("with SLUICE_STATE set: %q, %q", spec.State, spec.Warehouse)
	}
}

func TestLsLongPrintsAHeaderLine(t *testing.T) {
	dd := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dd, "lake", "raw"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dd, "lake", "raw", "a.json"), []byte("[]"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run(t, nil, "ls", "-l", "--data-dir", dd)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !regexp.MustCompile(`^SIZE +MODIFIED +ETAG +KEY$`).MatchString(strings.TrimSpace(lines[0])) ||
		!regexp.MustCompile(`^2 +\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +d751713988987e9331980363e24189ce +raw/a\.json$`).MatchString(strings.TrimSpace(lines[1])) {
		t.Fatalf("ls -l: exit %d\n%s%s", code, out, errOut)
	}
	out, _, _ = run(t, nil, "ls", "--data-dir", dd)
	if out != "raw/a.json\n" {
		t.Fatalf("ls without -l has no header: %q", out)
	}
}

func TestJobsCostSumsWhatJobsShowsPerRunAgainstAnAlwaysOnCluster(t *testing.T) {
	dd := t.TempDir()
	ctx := context.Background()
	if err := (datadir.Dir{Path: dd}).Ensure(); err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(ctx, "", dd)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, r := range []job.Run{
		{ID: "e1", Rule: "emr", Group: "a", Created: t0, Terminated: t0.Add(10 * time.Minute), ComputeSeconds: 1800, Instances: 3},
		{ID: "e2", Rule: "emr", Group: "b", Created: t0.Add(2 * time.Hour), Terminated: t0.Add(2*time.Hour + 10*time.Minute), ComputeSeconds: 1800, Instances: 3},
		{ID: "l1", Rule: "local", Group: "a", Created: t0.Add(time.Hour), Terminated: t0.Add(time.Hour + 40*time.Second), ComputeSeconds: 40, Instances: 1},
		{ID: "l2", Rule: "local", Group: "b", Created: t0.Add(3 * time.Hour), State: job.Running},
	} {
		if r.State == "" {
			r.State = job.Succeeded
			r.Ended = r.Terminated
		}
		if err := st.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	out, errOut, code := run(t, nil, "jobs", "--data-dir", dd, "--cost")
	if code != 0 {
		t.Fatalf("jobs --cost: exit %d: %s", code, errOut)
	}
	fields := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 9 {
			fields[f[0]] = f
		}
	}
	// emr: 3600 s of 3 instances against 2h10m × 3 = 23400 s: 15.4% used.
	// local: 40 s against 40 s (one run: the window is that run), 100%.
	for name, want := range map[string][]string{
		"JOB":   {"JOB", "RUNS", "INSTANCES", "FROM", "TO", "COMPUTE", "S", "ALWAYS-ON", "S"},
		"emr":   {"emr", "2", "3", "2026-12-01T00:00:00Z", "2026-12-01T02:10:00Z", "3600.000", "23400.000", "15.4%", "84.6%"},
		"local": {"local", "1", "1", "2026-12-01T01:00:00Z", "2026-12-01T01:00:40Z", "40.000", "40.000", "100.0%", "0.0%"},
		"total": {"total", "3", "4", "2026-12-01T00:00:00Z", "2026-12-01T02:10:00Z", "3640.000", "23440.000", "15.5%", "84.5%"},
	} {
		if name == "JOB" {
			continue // the header has spaces in its names
		}
		if strings.Join(fields[name], " ") != strings.Join(want, " ") {
			t.Errorf("%s row = %v, want %v\n%s", name, fields[name], want, out)
		}
	}
	if !strings.Contains(out, "1 run(s) still running, or ending after --until, are not counted.") {
		t.Errorf("no in-flight note:\n%s", out)
	}
	// The compute seconds are what `sluice jobs RUN_ID` shows for each run.
	for id, want := range map[string]string{"e1": "compute s  1800.000", "l1": "compute s  40.000"} {
		if out, _, _ := run(t, nil, "jobs", "--data-dir", dd, id); !strings.Contains(out, want) {
			t.Errorf("jobs %s lacks %q:\n%s", id, want, out)
		}
	}
	// A window: only the second EMR run, against a cluster up for the window.
	out, _, _ = run(t, nil, "jobs", "--data-dir", dd, "--cost", "--job", "emr", "--since", "2026-12-01T01:30:00Z", "--until", "2026-12-01T03:30:00Z")
	if f := strings.Fields(strings.Split(out, "\n")[1]); strings.Join(f, " ") != "emr 1 3 2026-12-01T01:30:00Z 2026-12-01T03:30:00Z 1800.000 21600.000 8.3% 91.7%" {
		t.Errorf("window:\n%s", out)
	}
	if _, errOut, code := run(t, nil, "jobs", "--data-dir", dd, "--since", "1h"); code != 2 || !strings.Contains(errOut, "--since and --until go with --cost") {
		t.Errorf("--since without --cost: exit %d %s", code, errOut)
	}
}

func TestWithoutFReplayUsesTheRecordedSpecOnTheRecordedWarehouseAndState(t *testing.T) {
	dd := t.TempDir()
	spec := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(spec, []byte("name: p\nloads:\n  t:\n    on: {prefix: raw/}\n    table: t\n    columns: {a: text}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &app{getenv: func(string) string { return "" }}
	dir := datadir.Dir{Path: dd}
	record(t, dd, datadir.Recorded{Spec: spec, Warehouse: "postgres://u@db/test?schema=w", State: "postgres://u@db/test?schema=s"})
	got, err := a.specFor(context.Background(), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if got.File != spec || got.Warehouse != "postgres://u@db/test?schema=w" || got.State != "postgres://u@db/test?schema=s" {
		t.Errorf("spec %s on %q, %q", got.File, got.Warehouse, got.State)
	}
	// The demo has no spec file: replay then needs -f.
	record(t, dd, datadir.Recorded{})
	if _, err := a.specFor(context.Background(), dir, ""); err == nil || !strings.Contains(err.Error(), "ran no spec file") {
		t.Errorf("after a demo: %v", err)
	}
	// -f wins, as it is.
	if got, err := a.specFor(context.Background(), dir, spec); err != nil || got.Warehouse != "" {
		t.Errorf("-f: %v, %q", err, got.Warehouse)
	}
}
