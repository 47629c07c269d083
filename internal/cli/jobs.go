package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicehq/sluice/internal/datadir"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/job/local"
	"github.com/sluicehq/sluice/state"
)

func init() {
	register(command{name: "jobs", args: "[--job NAME] [-n N] [RUN_ID | cancel RUN_ID]",
		summary: "list job runs, show one run's detail and log, or cancel a run", run: runJobs})
}

func runJobs(ctx context.Context, a *app, args []string) error {
	fs := a.flags("jobs")
	limit := fs.Int("n", 50, "show at most this many runs")
	rule := fs.String("job", "", "only runs of this job")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	cancel := len(pos) == 2 && pos[0] == "cancel"
	if len(pos) > 1 && !cancel {
		return usagef("at most one RUN_ID (or cancel RUN_ID)")
	}
	dir, err := a.dir()
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir.State()); err != nil && a.stateURL() == "" {
		return fmt.Errorf("no sluice state in %s: nothing has run there yet", dir.Path)
	}
	st, err := state.Open(ctx, a.stateURL(), dir.Path)
	if err != nil {
		return err
	}
	defer st.Close()
	_, alive := dir.Owned()
	if cancel {
		return a.cancelRun(ctx, st, pos[1])
	}
	if len(pos) == 1 {
		return a.showRun(ctx, st, dir, alive, pos[0])
	}
	runs, err := st.ListRuns(ctx, job.RunFilter{Rule: *rule, Limit: *limit})
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		fmt.Fprintln(a.stdout, "no job runs yet")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tJOB\tGROUP\tSTATE\tCOMPUTE\tCREATED\tTOOK\tINPUTS\tOUTPUTS")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", r.ID, r.Rule, r.Group, r.State, compute(r, alive),
			r.Created.UTC().Format(time.RFC3339), took(r), len(r.Inputs), len(r.Outputs))
	}
	return tw.Flush()
}

// cancelRun asks the process following run id to cancel it.
func (a *app) cancelRun(ctx context.Context, st state.Store, id string) error {
	r, err := st.GetRun(ctx, id)
	if errors.Is(err, job.ErrRunNotFound) {
		return fmt.Errorf("no run %q: `sluice jobs` lists the runs", id)
	}
	if err != nil {
		return err
	}
	if r.State != job.Starting && r.State != job.Running {
		return fmt.Errorf("run %s already ended (%s): nothing to cancel", id, r.State)
	}
	if err := st.SetSetting(ctx, job.CancelKey(id), time.Now().UTC().Format(time.RFC3339)); err != nil {
		return err
	}
	where := "its process group"
	if r.Remote != "" {
		where = r.Remote
	}
	fmt.Fprintf(a.stdout, "cancel requested for run %s (job %s, group %s, %s): the process following it (%s) stops %s at its next heartbeat, records the run FAILED and dead-letters the group (`sluice dlq replay` runs it again)\n",
		id, r.Rule, r.Group, r.State, r.Claimer, where)
	return nil
}

// compute says whether the run's compute is gone. ownerAlive is false when
// no sluice process owns the data dir: a run it left unfinished is marked
// FAILED at the next start (a remote run is adopted instead).
func compute(r job.Run, ownerAlive bool) string {
	switch {
	case !r.Terminated.IsZero():
		return "TERMINATED"
	case r.Remote != "":
		return r.Remote
	case !ownerAlive:
		return "owner gone (FAILED at next start)"
	case r.PID > 0:
		return fmt.Sprintf("pid %d", r.PID)
	}
	return "-"
}

func took(r job.Run) string {
	if r.Ended.IsZero() {
		return "-"
	}
	return r.Ended.Sub(r.Created).Round(time.Millisecond).String()
}

func (a *app) showRun(ctx context.Context, st state.Store, dataDir datadir.Dir, alive bool, id string) error {
	s, err := st.GetRun(ctx, id)
	if errors.Is(err, job.ErrRunNotFound) {
		return fmt.Errorf("no run %q: `sluice jobs` lists the runs", id)
	}
	if err != nil {
		return err
	}
	r := s
	w := a.stdout
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	fmt.Fprintf(w, "run        %s\njob        %s\ngroup      %s\nstate      %s\ncompute    %s\n", r.ID, r.Rule, r.Group, r.State, compute(r, alive))
	if r.Remote != "" {
		fmt.Fprintf(w, "remote     %s\n", r.Remote)
	}
	if r.Claimer != "" {
		fmt.Fprintf(w, "claimer    %s (epoch %d)\n", r.Claimer, r.Epoch)
	}
	fmt.Fprintf(w, "created    %s\nstarted    %s  (RUNNING)\nended      %s  (%s)\nterminated %s\n", ts(r.Created), ts(r.Started), ts(r.Ended), r.State, ts(r.Terminated))
	exit := fmt.Sprint(r.ExitCode)
	if r.ExitCode < 0 {
		exit = "unknown (the parent died)"
	}
	fmt.Fprintf(w, "took       %s\ncompute s  %.3f\nexit code  %s\n", took(r), r.ComputeSeconds, exit)
	if r.Error != "" {
		fmt.Fprintf(w, "error      %s\n", r.Error)
	}
	fmt.Fprintf(w, "inputs     %d\n", len(r.Inputs))
	for _, in := range r.Inputs {
		fmt.Fprintf(w, "  %s  (ETag %s)\n", in.Key, in.ETag)
	}
	fmt.Fprintf(w, "outputs    %d\n", len(r.Outputs))
	for _, o := range r.Outputs {
		fmt.Fprintf(w, "  %s\n", o)
	}
	log := []byte(nil)
	src := ""
	if r.LogKey != "" {
		if stObj, err := a.openStore(ctx, "", false); err == nil {
			if b, _, err := stObj.ReadAll(ctx, r.LogKey); err == nil {
				log, src = b, r.LogKey
			}
			stObj.Close()
		}
	}
	if log == nil {
		p := filepath.Join(dataDir.Jobs(), r.ID, local.LogFile)
		if b, err := os.ReadFile(p); err == nil {
			log, src = b, p
		}
	}
	if log != nil {
		fmt.Fprintf(w, "log        %s\n%s", src, indent(string(log)))
	}
	return nil
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return "  | " + strings.Join(lines, "\n  | ") + "\n"
}
