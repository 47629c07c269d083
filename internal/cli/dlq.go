package cli

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/state"
)

func init() {
	register(command{name: "dlq", args: "ls | show ID | replay ID... | replay --all  [-f PIPELINE.yaml] [-v]",
		summary: "list, show and replay dead letters (work sluice gave up on) with their reasons", run: runDLQ})
}

func runDLQ(ctx context.Context, a *app, args []string) error {
	fs := a.flags("dlq")
	file := fs.String("f", "", "pipeline spec (default: the spec the data dir last ran; for ls and show, the state it ran on)")
	verbose := fs.Bool("v", false, "ls and show: say on stderr which state is read and why")
	all := fs.Bool("all", false, "replay: every dead letter")
	maxWait := fs.Duration("max-wait", engine.DefaultMaxWait, "replay when no sluice is running: how long to wait for an unavailable service")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("want ls, show ID or replay ID... | --all")
	}
	switch pos[0] {
	case "ls":
		if len(pos) != 1 {
			return usagef("ls takes no arguments")
		}
		return a.dlqList(ctx, *file, *verbose)
	case "show":
		if len(pos) != 2 {
			return usagef("want show ID")
		}
		return a.dlqShow(ctx, pos[1], *file, *verbose)
	case "replay":
		ids, err := parseIDs(pos[1:])
		if err != nil {
			return err
		}
		if (len(ids) == 0) == !*all {
			return usagef("want replay ID... or replay --all")
		}
		return a.replay(ctx, "dlq replay", *file, *maxWait, func(ctx context.Context, e *engine.Engine, progress func(int, int)) (string, error) {
			n, err := e.ReplayDeadLetters(ctx, ids, progress)
			return fmt.Sprintf("replayed %d dead letter(s)", n), err
		})
	}
	return usagef("unknown dlq subcommand %q: want ls, show or replay", pos[0])
}

func parseIDs(args []string) ([]int64, error) {
	var ids []int64
	for _, s := range args {
		id, err := strconv.ParseInt(strings.TrimPrefix(s, "#"), 10, 64)
		if err != nil || id < 1 {
			return nil, usagef("%q is not a dead-letter ID (see `sluice dlq ls`)", s)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// readState opens the state read-only (see readTargets: -f's spec,
// SLUICE_STATE, the state the data dir's last owner recorded, the data
// dir's state.db): listing dead letters must work while another process
// owns the data dir, and on a full disk.
func (a *app) readState(ctx context.Context, file string, verbose bool) (state.Store, error) {
	dir, err := a.existingDir()
	if err != nil {
		return nil, err
	}
	_, st, err := a.readTargets(dir, file)
	if err != nil {
		return nil, err
	}
	if verbose {
		a.note("dlq", dir, st)
	}
	s, err := state.OpenReadOnly(ctx, st.url, dir.Path)
	if err != nil {
		return nil, st.openErr(dir, err)
	}
	return s, nil
}

func (a *app) dlqList(ctx context.Context, file string, verbose bool) error {
	st, err := a.readState(ctx, file, verbose)
	if err != nil {
		return err
	}
	defer st.Close()
	dls, err := st.DeadLetters(ctx)
	if err != nil {
		return err
	}
	if len(dls) == 0 {
		fmt.Fprintln(a.stdout, "no dead letters")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTARGET\tOBJECT\tATTEMPTS\tLAST FAILURE\tREPLAYED\tREASON")
	for _, d := range dls {
		replayed := "-"
		if !d.Replayed.IsZero() {
			replayed = d.Replayed.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%s\t%s\n", d.ID, d.Target, d.Key, d.Attempts, d.LastFailure.UTC().Format(time.RFC3339), replayed, oneLine(d.Reason, 200))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "\n%d dead letter(s); `sluice dlq show ID` for details, `sluice dlq replay ID...` once the cause is fixed\n", len(dls))
	return nil
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func (a *app) dlqShow(ctx context.Context, arg, file string, verbose bool) error {
	ids, err := parseIDs([]string{arg})
	if err != nil {
		return err
	}
	st, err := a.readState(ctx, file, verbose)
	if err != nil {
		return err
	}
	defer st.Close()
	dls, err := st.DeadLetters(ctx, ids...)
	if err != nil {
		return err
	}
	d := dls[0]
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	for _, kv := range [][2]string{
		{"id", strconv.FormatInt(d.ID, 10)},
		{"target", d.Target},
		{d.Kind, d.Name},
		{"object", d.Key},
		{"etag", d.ETag},
		{"attempts", strconv.Itoa(d.Attempts)},
		{"first failure", d.FirstFailure.UTC().Format(time.RFC3339)},
		{"last failure", d.LastFailure.UTC().Format(time.RFC3339)},
		{"replayed", fmtTimeOr(d.Replayed, "never")},
	} {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "reason:\n  %s\n", d.Reason)
	if len(d.Event) > 0 {
		fmt.Fprintf(a.stdout, "event:\n  %s\n", d.Event)
	}
	return nil
}

func fmtTimeOr(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.UTC().Format(time.RFC3339)
}
