package cli

import (
	"context"
	"log/slog"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/pipeline"
)

func init() {
	register(command{name: "worker", args: "-f PIPELINE.yaml [--workers N]",
		summary: "run a pipeline's consumers only (loads, job triggers, job runs); any number, beside `sluice run`", run: runWorker})
}

// runWorker runs the consumers of a spec and none of its single-instance
// duties (sources, the store watcher, reconcile), until interrupted. It does
// not own the data dir: workers scale out on shared services (a nats://,
// amqp:// or sqs:// queue, a shared state and warehouse), or on one machine
// beside the `sluice run` that owns the data dir and its embedded queue.
func runWorker(ctx context.Context, a *app, args []string) error {
	fs := a.flags("worker")
	file := fs.String("f", "", "pipeline spec file (required)")
	workers := fs.Int("workers", 0, "objects each load loads at once (0: one per CPU, at least 2)")
	ho := a.httpFlags(fs, defaultWorkerHTTP)
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
	_, _, err = a.runEngineWith(ctx, spec, "worker", engine.RunOptions{Worker: true}, *workers, a.logger(slog.LevelInfo), engineHooks{http: ho})
	return err
}
