package cli

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/sluicehq/sluice/internal/datadir"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/warehouse"
)

func init() {
	register(command{name: "demo", args: "[--serve [--http ADDR]]",
		summary: "run the reference pipelines end to end, offline, on embedded defaults or the SLUICE_* URLs", run: runDemo})
}

// demoPosts are JSONPlaceholder's 100 /posts records (MIT licence, typicode).
//
//go:embed demodata/posts.json
var demoPosts []byte

// demoHydropower is Our World in Data's hydropower consumption CSV, the
// hydropower reference pipeline's input.
//
//go:embed demodata/hydropower-consumption.csv
var demoHydropower []byte

// demoJobDate is the reference's JOB_DATE folder.
const demoJobDate = "2020-08-07_2PM"

// demoSpec holds both reference pipelines; the demo fills in its local
// API's URL. examples/posts and examples/hydropower are the same pipelines
// for `sluice run`.
const demoSpec = `name: demo
sources:
  posts:
    http:
      url: %s/posts
      timeout: 10s
    land: "raw/posts/dt={{.Date}}/posts_{{.Time}}_{{.Unique}}.json"
loads:
  posts:
    on: {prefix: raw/posts/, suffix: .json}
    format: json
    table: posts
    write: merge
    primary_key: [id]
    columns:
      id: bigint
      userId: {type: bigint, as: userid}
      title: text
      body: text
jobs:
  hydropower:
    on: {events: ["s3:ObjectCreated:*"], prefix: data/, suffix: .csv}
    group: "{{.Key.Parent}}"
    settle: 1s
    runner: local
    curate:
      input: "data/{{.Group}}/"
      format: csv
      rename: {"Hydropower (Terawatt-hours)": consumption}
      columns: {Entity: string, Code: string, Year: int32, consumption: float32}
      output: "curated/{{.Group}}/"
      mode: overwrite
`

// serveDemoAPI serves demoPosts at /posts on a free loopback port.
func serveDemoAPI() (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("demo: listen on loopback: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /posts", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Write(demoPosts)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

func runDemo(ctx context.Context, a *app, args []string) error {
	fs := a.flags("demo")
	serve := fs.Bool("serve", false, "after the demo, keep the web console and /metrics up until Ctrl-C")
	ho := a.httpFlags(fs, defaultRunHTTP)
	if _, err := a.parse(fs, args); err != nil {
		return err
	}
	if !*serve {
		if explicit(fs, "http") {
			return usagef("--http serves the console only with --serve")
		}
		ho = nil
	}
	start := time.Now()
	dir, err := a.dir()
	if err != nil {
		return err
	}
	if o, owned := dir.Owned(); owned {
		return fmt.Errorf("data dir %s is in use by pid %d (sluice %s): stop it, or pass another --data-dir", dir.Path, o.PID, o.Command)
	}
	api, stop, err := serveDemoAPI()
	if err != nil {
		return err
	}
	defer stop()
	spec, err := pipeline.Parse("demo.yaml", []byte(fmt.Sprintf(demoSpec, api)), a.getenv)
	if err != nil {
		return fmt.Errorf("demo spec: %w", err)
	}
	out := a.stdout
	overrides := a.demoHeader(spec, dir)
	fmt.Fprintf(out, "  API         %s/posts (a local copy of JSONPlaceholder's 100 posts)\n", api)
	csvKey := "data/" + demoJobDate + "/hydropower-consumption.csv"
	var stopProgress func()
	upload := func(ctx context.Context, e *engine.Engine) error {
		if _, err := e.Put(ctx, csvKey, demoHydropower, "text/csv"); err != nil {
			return err
		}
		stopProgress = a.demoProgress(e)
		return nil
	}
	defer func() {
		if stopProgress != nil {
			stopProgress()
		}
	}()
	report := func(ctx context.Context, e *engine.Engine, res engine.Result) error {
		stopProgress()
		stopProgress = nil
		if err := res.Err(); err != nil {
			return err
		}
		if err := a.demoReport(ctx, e, spec, dir, csvKey, res.Started, start, overrides); err != nil {
			return err
		}
		if ho != nil {
			if ho.url == "" {
				return fmt.Errorf("--serve: the console could not listen on %s (see the warning above); pass --http ADDR", ho.addr)
			}
			fmt.Fprintf(out, "\nConsole     %s  (also /metrics, /healthz, /readyz); Ctrl-C stops it\n", ho.url)
			<-ctx.Done()
		}
		return nil
	}
	_, _, err = a.runEngineWith(ctx, spec, "demo", engine.RunOptions{Once: true}, 1, a.logger(slog.LevelWarn),
		engineHooks{before: upload, after: report, http: ho, drainReplays: true})
	return err
}

// demoSteps are what the demo waits for: the posts page landed, its
// object loaded, the hydropower run ended.
const demoSteps = 3

// demoProgress reports the demo's steps on stderr (a line redrawn in place
// on a terminal) until the returned stop is called.
func (a *app) demoProgress(e *engine.Engine) (stop func()) {
	p := a.progress("demo")
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			s := &e.Stats
			n := min(s.Landed.Load(), 1) + min(s.ObjectsLoaded.Load()+s.Duplicates.Load(), 1) + min(s.JobsSucceeded.Load()+s.JobsFailed.Load(), 1)
			p.Update(int(n), demoSteps)
			if n == demoSteps {
				return
			}
			select {
			case <-done:
				p.End()
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// demoReport prints what the demo did, per pipeline, and how to look around.
func (a *app) demoReport(ctx context.Context, e *engine.Engine, spec *pipeline.Spec, dir datadir.Dir, csvKey string, jobsFrom, start time.Time, overrides []string) error {
	out := a.stdout
	st := &e.Stats
	_, _, whURL := engine.URLs(spec, dir)
	fmt.Fprintf(out, "\nimport → raw zone → queue → load\n")
	fmt.Fprintf(out, "  landed      %d raw object(s) under raw/posts/\n", st.Landed.Load())
	fmt.Fprintf(out, "  events      %d published for the raw object(s)\n", st.Landed.Load())
	fmt.Fprintf(out, "  loaded      %d object(s), %d row(s) into table posts (%s); %d duplicate delivery(ies) skipped\n",
		st.ObjectsLoaded.Load(), st.Rows.Load(), e.WH.URL(), st.Duplicates.Load())
	if n, err := a.count(ctx, whURL, "posts"); err == nil {
		fmt.Fprintf(out, "  posts now   %d row(s) (write mode merge on id: re-runs keep one row per post)\n", n)
	}
	if err := a.demoJobReport(ctx, dir, csvKey, jobsFrom); err != nil {
		return err
	}
	fmt.Fprintf(out, "  events      1 published for the upload, %d for the run's outputs\n", st.OutputEvents.Load())
	if n := st.Found.Load(); n > 0 {
		fmt.Fprintf(out, "\n  found       %d object(s) already in the lake, announced again (the ledger and run deduplication make that a no-op)\n", n)
	}
	fmt.Fprintf(out, "\n  took        %s\n", time.Since(start).Round(time.Millisecond))
	self := selfCommand()
	if a.dataDir != "" {
		self += " --data-dir " + a.dataDir
	}
	fmt.Fprintf(out, "\nLook around")
	// sql, jobs and dlq read the warehouse and state the demo recorded in
	// the data dir; ls reads the store the environment names, so it needs
	// the demo's.
	if slices.Contains(overrides, "SLUICE_STORE") {
		fmt.Fprintf(out, " (ls with the same SLUICE_STORE as this demo in the environment)")
	}
	fmt.Fprintf(out, ":\n  %s ls raw/posts/\n  %s sql \"select id, userid, title from posts order by id limit 5\"\n", self, self)
	fmt.Fprintf(out, "  %s jobs\n  %s ls curated/%s/\n  %s dlq ls\n", self, self, demoJobDate, self)
	return nil
}

// demoEnv are the variables that move the demo off its embedded defaults.
var demoEnv = []struct{ what, env string }{
	{"store", "SLUICE_STORE"},
	{"queue", "SLUICE_QUEUE"},
	{"warehouse", "SLUICE_WAREHOUSE"},
	{"state", "SLUICE_STATE"},
}

// demoHeader prints what the demo runs on: the store, queue, warehouse and
// state URLs (passwords redacted), each marked as an embedded default or as
// set by its environment variable. It returns the variables set.
func (a *app) demoHeader(spec *pipeline.Spec, dir datadir.Dir) (overrides []string) {
	storeURL, queueURL, whURL := engine.URLs(spec, dir)
	stateURL := spec.State
	if stateURL == "" {
		stateURL = dir.StateURL()
	}
	urls := map[string]string{"store": storeURL, "queue": queueURL, "warehouse": whURL, "state": stateURL}
	for _, v := range demoEnv {
		if a.getenv(v.env) != "" {
			overrides = append(overrides, v.env)
		}
	}
	out := a.stdout
	switch {
	case len(overrides) == 0:
		fmt.Fprintf(out, "sluice demo — both reference pipelines, on embedded defaults\n")
	case len(overrides) == len(demoEnv):
		fmt.Fprintf(out, "sluice demo — both reference pipelines, on the URLs the environment sets\n")
	default:
		fmt.Fprintf(out, "sluice demo — both reference pipelines, on the URLs the environment sets and embedded defaults\n")
	}
	fmt.Fprintf(out, "  data dir    %s\n", dir.Path)
	for _, v := range demoEnv {
		from := "embedded default"
		if a.getenv(v.env) != "" {
			from = "from " + v.env
		}
		fmt.Fprintf(out, "  %-11s %s (%s)\n", v.what, state.Redact(urls[v.what]), from)
	}
	return overrides
}

func (a *app) count(ctx context.Context, whURL, table string) (int64, error) {
	e, err := warehouse.Open(ctx, whURL)
	if err != nil {
		return 0, err
	}
	defer e.Close()
	_, rows, err := e.Query(ctx, "select count(*) from "+table)
	if err != nil || len(rows) != 1 {
		return 0, err
	}
	var n int64
	fmt.Sscan(cell(rows[0][0]), &n)
	return n, nil
}

// demoJobReport prints the hydropower run this demo caused (or the earlier
// run that already curated the same input).
func (a *app) demoJobReport(ctx context.Context, dir datadir.Dir, csvKey string, since time.Time) error {
	out := a.stdout
	st, err := state.Open(ctx, a.stateURL(), dir.Path)
	if err != nil {
		return err
	}
	defer st.Close()
	runs, err := st.ListRuns(ctx, job.RunFilter{Rule: "hydropower", Group: demoJobDate, Limit: 1})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nobject-created event → transient job → curated Parquet\n")
	fmt.Fprintf(out, "  uploaded    %s (%d bytes)\n", csvKey, len(demoHydropower))
	if len(runs) == 0 {
		return fmt.Errorf("the hydropower job did not run; see `sluice jobs`")
	}
	r := runs[0]
	if r.State != job.Succeeded || r.Terminated.IsZero() {
		return fmt.Errorf("hydropower run %s is %s (terminated: %v): %s; see `sluice jobs %s`", r.ID, r.State, !r.Terminated.IsZero(), r.Error, r.ID)
	}
	if r.Created.Before(since) {
		fmt.Fprintf(out, "  run         none: the input is unchanged since run %s (%s at %s);\n", r.ID, r.State, r.Ended.UTC().Format(time.RFC3339))
		fmt.Fprintf(out, "              runs are deduplicated on their inputs' keys and ETags\n")
		return nil
	}
	fmt.Fprintf(out, "  run         %s %s, then TERMINATED (no job process remains)\n", r.ID, r.State)
	fmt.Fprintf(out, "  timings     created %s, RUNNING after %s, done after %s; %.2f compute-seconds\n",
		r.Created.UTC().Format("15:04:05.000"), r.Started.Sub(r.Created).Round(time.Millisecond), r.Ended.Sub(r.Created).Round(time.Millisecond), r.ComputeSeconds)
	s, err := a.openStore(ctx, "", false)
	if err != nil {
		return err
	}
	defer s.Close()
	var rows int64
	for _, k := range r.Outputs {
		fmt.Fprintf(out, "  output      %s\n", k)
		if strings.HasSuffix(k, ".parquet") {
			b, _, err := s.ReadAll(ctx, k)
			if err != nil {
				return err
			}
			f, err := parquet.OpenFile(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				return fmt.Errorf("read back %s: %w", k, err)
			}
			rows += f.NumRows()
		}
	}
	fmt.Fprintf(out, "  rows        %d in snappy Parquet (Entity string, Code string, Year int32, consumption float32)\n", rows)
	return nil
}

// selfCommand is how the user ran sluice: "go run ./cmd/sluice" when the
// binary is go run's temporary build, else "sluice".
func selfCommand() string {
	if exe, err := os.Executable(); err == nil && strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/sluice"
	}
	return "sluice"
}
