package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/internal/datadir"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/lineage"
	"github.com/sluicehq/sluice/metrics"
	"github.com/sluicehq/sluice/pipeline"
)

func init() {
	register(command{name: "run", args: "-f PIPELINE.yaml [--once [--max-wait D]] [--workers N] [--http ADDR] [--tls-cert FILE --tls-key FILE]",
		summary: "run a pipeline: sources, watcher, loads and jobs, with the web console and /metrics (--once: run each source once, drain, exit)", run: runRun})
}

func runRun(ctx context.Context, a *app, args []string) error {
	fs := a.flags("run")
	file := fs.String("f", "", "pipeline spec file (required)")
	once := fs.Bool("once", false, "run each source once, process every pending event, then exit (0 only if all succeeded)")
	workers := fs.Int("workers", 0, "objects each load loads at once (0: one per CPU, at least 2)")
	maxWait := fs.Duration("max-wait", engine.DefaultMaxWait, "with --once: how long to wait for an unavailable service (warehouse, store, queue) before exiting 75 with the work still queued")
	ho := a.httpFlags(fs, defaultRunHTTP)
	if _, err := a.parse(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return usagef("-f PIPELINE.yaml is required")
	}
	if *maxWait <= 0 {
		return usagef("--max-wait %s: want a positive duration such as 10m", *maxWait)
	}
	spec, err := pipeline.LoadFile(*file, a.getenv)
	if err != nil {
		return err
	}
	if *once && !explicit(fs, "http") {
		ho.addr = "" // a once-run ends before anyone could look
	}
	res, e, err := a.runEngineWith(ctx, spec, "run", engine.RunOptions{Once: *once, MaxWait: *maxWait}, *workers, a.logger(slog.LevelInfo), engineHooks{http: ho})
	if err != nil {
		return err
	}
	if *once {
		fmt.Fprintln(a.stdout, summary(e, res))
		return onceErr(res)
	}
	return nil
}

// onceErr is the exit error of a once-run: status 75 (EX_TEMPFAIL) when
// work is only waiting for a service, 1 when something failed.
func onceErr(res engine.Result) error {
	err := res.Err()
	if err == nil {
		return nil
	}
	if errors.Is(err, engine.ErrStillPending) && len(res.Failures) == 0 && len(res.SourceErrors) == 0 && len(res.Ignored) == 0 {
		return exitError{fault.ExitTempFail, err}
	}
	return err
}

// runEngine runs spec, owning the data dir unless opts.Worker (workers
// share it, or each has its own; they need no embedded queue of their own).
// before, if set, runs once everything is open and before the pipeline starts.
func (a *app) runEngine(ctx context.Context, spec *pipeline.Spec, cmd string, opts engine.RunOptions, workers int, log *slog.Logger, before func(context.Context, *engine.Engine) error) (engine.Result, *engine.Engine, error) {
	return a.runEngineWith(ctx, spec, cmd, opts, workers, log, engineHooks{before: before})
}

// engineHooks extend runEngine: before runs once everything is open and
// before the pipeline starts; after once it has stopped, before the engine
// closes; http, when enabled, serves the console while the engine is open.
type engineHooks struct {
	before func(context.Context, *engine.Engine) error
	after  func(context.Context, *engine.Engine, engine.Result) error
	http   *httpOpts
	// drainReplays: a replay from the console also processes what it
	// queued (the pipeline's once-run has ended: `demo --serve`).
	drainReplays bool
}

func (a *app) runEngineWith(ctx context.Context, spec *pipeline.Spec, cmd string, opts engine.RunOptions, workers int, log *slog.Logger, h engineHooks) (engine.Result, *engine.Engine, error) {
	dir, err := a.dir()
	if err != nil {
		return engine.Result{}, nil, err
	}
	var lock *datadir.Lock
	if !opts.Worker {
		if lock, err = dir.Acquire(cmd); err != nil {
			return engine.Result{}, nil, err
		}
		defer lock.Release()
	}
	var ttl time.Duration
	if v := a.getenv("SLUICE_LEASE_TTL"); v != "" {
		if ttl, err = time.ParseDuration(v); err != nil || ttl < time.Second {
			return engine.Result{}, nil, fmt.Errorf("SLUICE_LEASE_TTL=%q: want a duration of at least 1s, such as 15s", v)
		}
	}
	h.http.withSpec(spec)
	var m *metrics.Metrics
	if h.http.enabled() {
		m = metrics.New(spec.Name)
	}
	em, err := lineage.Open(ctx, a.lineageURL(spec), log)
	if err != nil {
		return engine.Result{}, nil, err
	}
	for _, w := range spec.Warnings {
		log.Warn("spec: " + w.Error())
	}
	e, err := openEngine(ctx, engine.Config{Spec: spec, DataDir: dir, Lock: lock, Logger: log, Workers: workers, LeaseTTL: ttl, Metrics: m, Lineage: em}, opts)
	if err != nil {
		em.Close()
		return engine.Result{}, nil, err
	}
	defer e.Close()
	if h.http.enabled() {
		cfg := engineConsole(e, spec, "sluice "+cmd, m, log)
		if h.drainReplays {
			var mu sync.Mutex
			cfg.Replay = func(ctx context.Context, id int64) error {
				mu.Lock()
				defer mu.Unlock()
				if _, err := e.ReplayDeadLetters(ctx, []int64{id}, nil); err != nil {
					return err
				}
				res, err := e.Run(ctx, engine.RunOptions{Once: true, DrainOnly: true, MaxWait: time.Minute})
				if err != nil {
					return err
				}
				return res.Err()
			}
		}
		stop, err := a.serveConsole(ctx, h.http, cfg)
		if err != nil {
			return engine.Result{}, e, err
		}
		defer stop()
	}
	if h.before != nil {
		if err := h.before(ctx, e); err != nil {
			return engine.Result{}, e, err
		}
	}
	log.Info("sluice running", "role", cmd, "pipeline", spec.Name, "data_dir", dir.Path, "store", e.Store.URL(), "queue", e.Topic.Name(), "warehouse", e.WH.URL(), "once", opts.Once)
	res, err := e.Run(ctx, opts)
	if !opts.Once {
		e.LogShutdown(res)
	}
	if err == nil && h.after != nil {
		err = h.after(ctx, e, res)
	}
	return res, e, err
}

// summary is a once-run's report: one line per part of the pipeline
// (sources, loads, jobs) and one for what it cost, each counting only its
// own events.
func summary(e *engine.Engine, r engine.Result) string {
	s := &e.Stats
	var b strings.Builder
	fmt.Fprintf(&b, "sources: landed %d object(s), %d page(s) unchanged, %d HTTP retry(ies)\n",
		s.Landed.Load(), s.Unchanged.Load(), s.HTTPRetries.Load())
	fmt.Fprintf(&b, "store:   found %d object(s) written by others; %d event(s) published in all (%d for job outputs)\n",
		s.Found.Load(), s.Events.Load(), s.OutputEvents.Load())
	fmt.Fprintf(&b, "loads:   loaded %d object(s), %d row(s), %d row(s) quarantined; %d duplicate(s) skipped; %d object(s) with field warnings\n",
		s.ObjectsLoaded.Load(), s.Rows.Load(), s.Rejected.Load(), s.Duplicates.Load(), s.Warnings.Load())
	fmt.Fprintf(&b, "jobs:    job runs: %d succeeded, %d failed (%d output event(s))\n", s.JobsSucceeded.Load(), s.JobsFailed.Load(), s.OutputEvents.Load())
	fmt.Fprintf(&b, "overall: %d retried, %d dead-lettered, %d limit(s) hit; took %s",
		s.Retried.Load(), s.DeadLettered.Load(), s.LimitsHit.Load(), r.Finished.Sub(r.Started).Round(1e6))
	return b.String()
}

// lineageURL is where OpenLineage events go: the spec's lineage: (which
// SLUICE_LINEAGE replaces), else none.
func (a *app) lineageURL(spec *pipeline.Spec) string { return spec.Lineage }

// openEngine opens the engine, waiting while a service it needs (the
// warehouse, a queue server) is unavailable: up to opts.MaxWait for a
// once-run, which then exits 75, and up to the retry budget otherwise.
// Permanent errors (a spec the services reject) return at once.
func openEngine(ctx context.Context, cfg engine.Config, opts engine.RunOptions) (*engine.Engine, error) {
	retry := cfg.Spec.Retry
	budget := retry.Budget()
	if opts.Once {
		budget = cmp.Or(opts.MaxWait, engine.DefaultMaxWait)
	}
	first := time.Now()
	for attempt := 1; ; attempt++ {
		e, err := engine.Open(ctx, cfg)
		if err == nil || fault.IsPermanent(err) || ctx.Err() != nil {
			return e, err
		}
		if time.Since(first) >= budget {
			return nil, exitError{fault.ExitTempFail, fmt.Errorf("%w: cannot start: %w (still unavailable after %s; nothing was dead-lettered — run again once it is back)", engine.ErrStillPending, err, time.Since(first).Round(time.Second))}
		}
		delay := min(retry.Delay(attempt), budget-time.Since(first))
		cfg.Logger.Warn("cannot start: a service is unavailable; retrying", "attempt", attempt, "in", delay.Round(time.Millisecond), "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
	}
}
