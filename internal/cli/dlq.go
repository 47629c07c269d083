package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/internal/datadir"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/internal/state"
	"github.com/sluicehq/sluice/pipeline"
)

func init() {
	register(command{name: "dlq", args: "ls [-f PIPELINE.yaml]",
		summary: "list dead letters (messages given up on) with their reasons", run: runDLQ})
}

func runDLQ(ctx context.Context, a *app, args []string) error {
	fs := a.flags("dlq")
	file := fs.String("f", "", "pipeline spec (default: the pipeline last run in the data dir)")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "ls" {
		return usagef("want the subcommand ls")
	}
	dir, err := a.existingDir()
	if err != nil {
		return err
	}
	name, queueURL := "", ""
	if *file != "" {
		spec, err := pipeline.LoadFile(*file, a.getenv)
		if err != nil {
			return err
		}
		_, queueURL, _ = engine.URLs(spec, dir)
		name = spec.Name
	} else {
		st, err := state.Open(ctx, dir.State())
		if err != nil {
			return err
		}
		name, _ = st.Get(ctx, "pipeline")
		queueURL, _ = st.Get(ctx, "queue") // recorded without its password
		if u := a.getenv("SLUICE_QUEUE"); u != "" {
			queueURL = u
		}
		st.Close()
		if name == "" {
			return fmt.Errorf("no pipeline has run in %s yet; pass -f PIPELINE.yaml", dir.Path)
		}
	}
	var lock *datadir.Lock
	if _, owned := dir.Owned(); !owned && engine.IsEmbedded(queueURL) {
		// Nobody runs the embedded queue: start it here, briefly.
		if lock, err = dir.Acquire("dlq"); err != nil {
			return err
		}
		defer lock.Release()
	}
	topic, _, err := engine.OpenQueue(ctx, queueURL, name, dir, lock)
	if err != nil {
		return err
	}
	defer topic.Close()
	dls, err := topic.DeadLetters(ctx)
	if err != nil {
		return err
	}
	if len(dls) == 0 {
		fmt.Fprintf(a.stdout, "no dead letters in pipeline %q\n", name)
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSUBSCRIPTION\tDELIVERIES\tOBJECT\tREASON")
	for _, d := range dls {
		obj := "-"
		if recs, err := event.Parse(d.Body, event.KeyURL); err == nil && len(recs) > 0 {
			obj = recs[0].S3.Object.Key
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", d.At.UTC().Format(time.RFC3339), d.Subscription, d.Deliveries, obj, d.Reason)
	}
	return tw.Flush()
}
