package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/sluicehq/sluice/internal/engine"
)

func init() {
	register(command{name: "reconcile", args: "[-f PIPELINE.yaml] [--dry-run] [-v]",
		summary: "re-drive the object versions that never produced work (lost notifications, uploads from before the queue): loads and job groups", run: runReconcile})
}

func runReconcile(ctx context.Context, a *app, args []string) error {
	fs := a.flags("reconcile")
	file := fs.String("f", "", "pipeline spec (default: the spec the data dir last ran)")
	dry := fs.Bool("dry-run", false, "only report what would be emitted and requested")
	verbose := fs.Bool("v", false, "list every key emitted and group requested")
	maxWait := fs.Duration("max-wait", engine.DefaultMaxWait, "when no sluice is running: how long to wait for an unavailable service")
	if _, err := a.parse(fs, args); err != nil {
		return err
	}
	opts := engine.ReconcileOptions{DryRun: *dry, Keys: *verbose}
	if *dry {
		return a.reconcileDry(ctx, *file, opts)
	}
	// Publishing and requesting is a replay: the running sluice does the
	// work, or this command does it itself when none runs.
	return a.replay(ctx, "reconcile", *file, *maxWait, func(ctx context.Context, e *engine.Engine, _ func(int, int)) (string, error) {
		res, err := e.Reconcile(ctx, opts)
		return reconcileReport(res, false), err
	})
}

// reconcileDry reports what a reconcile would do and changes nothing: it
// publishes no event and runs nothing. Without a running sluice it holds
// the data dir while it looks (the embedded queue lives with the owner).
func (a *app) reconcileDry(ctx context.Context, file string, opts engine.ReconcileOptions) error {
	dir, err := a.existingDir()
	if err != nil {
		return err
	}
	spec, err := a.specFor(ctx, dir, file)
	if err != nil {
		return err
	}
	cfg := engine.Config{Spec: spec, DataDir: dir, Logger: a.logger(slog.LevelWarn)}
	if _, owned := dir.Owned(); !owned {
		lock, err := dir.Acquire("reconcile")
		if err != nil {
			return err
		}
		defer lock.Release()
		cfg.Lock = lock
	}
	e, err := engine.Open(ctx, cfg)
	if err != nil {
		return err
	}
	defer e.Close()
	res, err := e.Reconcile(ctx, opts)
	fmt.Fprintln(a.stdout, reconcileReport(res, true))
	return err
}

// reconcileReport says what a reconcile emitted and requested, per load
// and job, with the keys and groups when they were kept.
func reconcileReport(res engine.ReconcileResult, dry bool) string {
	var b strings.Builder
	verb, req := "emitted", "requested"
	if dry {
		verb, req = "would emit", "would request"
	}
	fmt.Fprintf(&b, "reconcile: %s %d event(s) into loads and %s %d job group(s)", verb, res.Emitted(), req, res.Requested())
	for _, l := range res.Loads {
		fmt.Fprintf(&b, "\n  load %s: %d object version(s) checked, %d loaded, %d dead-lettered (see `sluice dlq ls`), %d not yet announced by the store watcher; %s %d",
			l.Name, l.Checked, l.Loaded, l.DeadLettered, l.Unannounced, verb, l.Emitted)
		listKeys(&b, l.Keys)
	}
	for _, j := range res.Jobs {
		fmt.Fprintf(&b, "\n  job %s: %d group(s), %d up to date, %d pending or running, %d dead-lettered, %d with files not yet announced by the store watcher; %s %d",
			j.Name, j.Groups, j.Current, j.Busy, j.DeadLettered, j.Unannounced, req, j.Requested)
		listKeys(&b, j.Requests)
	}
	return b.String()
}

func listKeys(w io.Writer, keys []string) {
	for _, k := range keys {
		fmt.Fprintf(w, "\n    %s", k)
	}
}
