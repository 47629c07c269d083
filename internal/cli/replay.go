package cli

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluicehq/sluice/internal/datadir"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/progress"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/state"
)

func init() {
	register(command{name: "replay", args: "--prefix PREFIX [--since T] [--until T] [--load NAME | --job NAME] [-f PIPELINE.yaml]",
		summary: "re-drive objects already in the store through the loads and jobs (the ledger keeps loads exactly once)", run: runReplay})
}

func runReplay(ctx context.Context, a *app, args []string) error {
	fs := a.flags("replay")
	file := fs.String("f", "", "pipeline spec (default: the spec the data dir last ran)")
	prefix := fs.String("prefix", "", "replay the objects whose keys start with PREFIX (required; \"\" is not allowed, pass --prefix / for everything)")
	since := fs.String("since", "", "only objects modified at or after T (RFC 3339, or a duration ago such as 24h)")
	until := fs.String("until", "", "only objects modified before T (RFC 3339, or a duration ago)")
	load := fs.String("load", "", "replay into this load only")
	jobName := fs.String("job", "", "replay for this job only")
	maxWait := fs.Duration("max-wait", engine.DefaultMaxWait, "when no sluice is running: how long to wait for an unavailable service")
	if _, err := a.parse(fs, args); err != nil {
		return err
	}
	if *prefix == "" {
		return usagef("--prefix is required (use --prefix / to replay the whole store)")
	}
	if *load != "" && *jobName != "" {
		return usagef("give --load or --job, not both")
	}
	f := engine.ReplayFilter{Prefix: *prefix, Load: *load, Job: *jobName}
	if f.Prefix == "/" {
		f.Prefix = ""
	}
	var err error
	if f.Since, err = parseWhen(*since); err != nil {
		return usagef("--since: %v", err)
	}
	if f.Until, err = parseWhen(*until); err != nil {
		return usagef("--until: %v", err)
	}
	return a.replay(ctx, "replay", *file, *maxWait, func(ctx context.Context, e *engine.Engine, progress func(int, int)) (string, error) {
		events, groups, err := e.ReplayObjects(ctx, f, progress)
		return fmt.Sprintf("replayed %d object event(s) into loads and requested %d job group(s)", events, groups), err
	})
}

// parseWhen reads an RFC 3339 time or a duration before now ("" is zero).
func parseWhen(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-01-02T15:04:05Z) nor a duration (24h)", s)
}

// replay runs do against the pipeline. When a sluice process owns the data
// dir, do publishes into its queue and requests runs in the shared state,
// and that process does the work; otherwise this command takes the data
// dir, does the work itself (no sources, no store scan) and exits as
// `run --once` does.
func (a *app) replay(ctx context.Context, progressName, file string, maxWait time.Duration, do func(context.Context, *engine.Engine, func(int, int)) (string, error)) error {
	dir, err := a.existingDir()
	if err != nil {
		return err
	}
	spec, err := a.specFor(ctx, dir, file)
	if err != nil {
		return err
	}
	p := a.progress(progressName)
	defer p.End()
	progress := p.Update
	if o, owned := dir.Owned(); owned {
		e, err := engine.Open(ctx, engine.Config{Spec: spec, DataDir: dir, Logger: a.logger(slog.LevelWarn)})
		if err != nil {
			return err
		}
		defer e.Close()
		msg, err := do(ctx, e, progress)
		if err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "%s; the running sluice (pid %d, %s) processes them — see `sluice dlq ls` for what fails again\n", msg, o.PID, o.Command)
		return nil
	}
	var msg string
	res, e, err := a.runEngine(ctx, spec, "replay", engine.RunOptions{Once: true, DrainOnly: true, MaxWait: maxWait}, 1, a.logger(slog.LevelWarn),
		func(ctx context.Context, e *engine.Engine) error {
			var err error
			msg, err = do(ctx, e, progress)
			return err
		})
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, msg)
	fmt.Fprintln(a.stdout, summary(e, res))
	return onceErr(res)
}

// specFor loads the spec file given with -f; else the spec the data
// dir's last owner ran, on the warehouse and state it ran on (its record
// in the data dir, see readTargets and applyRecorded), or for a data dir
// from before sluice kept that record, the spec file named in its state.
func (a *app) specFor(ctx context.Context, dir datadir.Dir, file string) (*pipeline.Spec, error) {
	if file != "" {
		return pipeline.LoadFile(file, a.getenv)
	}
	rec, ok, err := dir.Recorded()
	if err != nil {
		return nil, err
	}
	if ok {
		if rec.Spec == "" {
			return nil, usagef("the data dir's last owner (%s) ran no spec file (`sluice demo` has none): pass -f PIPELINE.yaml", dir.Path)
		}
		spec, err := pipeline.LoadFile(rec.Spec, a.getenv)
		if err != nil {
			return nil, err
		}
		a.applyRecorded(spec, rec)
		return spec, nil
	}
	st, err := state.OpenReadOnly(ctx, a.stateURL(), dir.Path)
	if err != nil {
		return nil, err
	}
	file, _ = st.Setting(ctx, "spec_file")
	st.Close()
	if file == "" {
		return nil, usagef("no pipeline spec is recorded for %s: pass -f PIPELINE.yaml", dir.Path)
	}
	return pipeline.LoadFile(file, a.getenv)
}

// progress returns a progress reporter for long work on stderr (see
// package progress: a line redrawn in place on a terminal, a line every
// 10% or 5 s elsewhere). End it when the work stops.
func (a *app) progress(what string) *progress.Reporter {
	return progress.New(a.stderr, what, nil)
}
