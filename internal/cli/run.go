package cli

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/pipeline"
)

func init() {
	register(command{name: "run", args: "-f PIPELINE.yaml [--once] [--workers N]",
		summary: "run a pipeline: sources, watcher and loads (--once: run each source once, drain, exit)", run: runRun})
}

func runRun(ctx context.Context, a *app, args []string) error {
	fs := a.flags("run")
	file := fs.String("f", "", "pipeline spec file (required)")
	once := fs.Bool("once", false, "run each source once, process every pending event, then exit (0 only if all succeeded)")
	workers := fs.Int("workers", 1, "concurrent consumers per load")
	if _, err := a.parse(fs, args); err != nil {
		return err
	}
	if *file == "" {
		return usagef("-f PIPELINE.yaml is required")
	}
	spec, err := pipeline.LoadFile(*file, a.getenv)
	if err != nil {
		return err
	}
	res, e, err := a.runEngine(ctx, spec, "run", *once, *workers, a.logger(slog.LevelInfo), nil)
	if err != nil {
		return err
	}
	if *once {
		fmt.Fprintln(a.stdout, summary(e, res))
		return res.Err()
	}
	return nil
}

// runEngine owns the data dir and runs spec.
// before, if set, runs once everything is open and before the pipeline starts.
func (a *app) runEngine(ctx context.Context, spec *pipeline.Spec, cmd string, once bool, workers int, log *slog.Logger, before func(context.Context, *engine.Engine) error) (engine.Result, *engine.Engine, error) {
	dir, err := a.dir()
	if err != nil {
		return engine.Result{}, nil, err
	}
	lock, err := dir.Acquire(cmd)
	if err != nil {
		return engine.Result{}, nil, err
	}
	defer lock.Release()
	e, err := engine.Open(ctx, engine.Config{Spec: spec, DataDir: dir, Lock: lock, Logger: log, Workers: workers})
	if err != nil {
		return engine.Result{}, nil, err
	}
	defer e.Close()
	if before != nil {
		if err := before(ctx, e); err != nil {
			return engine.Result{}, e, err
		}
	}
	log.Info("sluice running", "pipeline", spec.Name, "data_dir", dir.Path, "store", e.Store.URL(), "queue", e.Topic.Name(), "warehouse", e.WH.URL(), "once", once)
	res, err := e.Run(ctx, once)
	return res, e, err
}

func summary(e *engine.Engine, r engine.Result) string {
	s := &e.Stats
	var b strings.Builder
	fmt.Fprintf(&b, "landed %d object(s), found %d, published %d event(s); loaded %d object(s), %d row(s); %d duplicate(s) skipped, %d retried, %d dead-lettered; job runs: %d succeeded, %d failed; took %s",
		s.Landed.Load(), s.Found.Load(), s.Events.Load(), s.ObjectsLoaded.Load(), s.Rows.Load(), s.Duplicates.Load(), s.Retried.Load(), s.DeadLettered.Load(),
		s.JobsSucceeded.Load(), s.JobsFailed.Load(), r.Finished.Sub(r.Started).Round(1e6))
	return b.String()
}
