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
	register(command{name: "jobs", args: "[--job NAME] [-n N] [-f PIPELINE.yaml] [-v] [RUN_ID | cancel RUN_ID | --cost [--since T] [--until T]]",
		summary: "list job runs, show one run's detail and log, cancel a run, or compare their compute with an always-on cluster (--cost)", run: runJobs})
}

func runJobs(ctx context.Context, a *app, args []string) error {
	fs := a.flags("jobs")
	limit := fs.Int("n", 50, "show at most this many runs (--cost counts every run)")
	rule := fs.String("job", "", "only runs of this job")
	file := fs.String("f", "", "pipeline spec whose state to read (default: SLUICE_STATE, else the state the data dir's last run or demo recorded, else its state.db)")
	verbose := fs.Bool("v", false, "say on stderr which state is read and why")
	cost := fs.Bool("cost", false, "per job: runs, compute seconds, and the seconds of an always-on cluster of the same size over the same time, with the saving")
	since := fs.String("since", "", "with --cost: only runs created at or after T (RFC 3339, or a duration ago such as 168h); the always-on cluster starts at T")
	until := fs.String("until", "", "with --cost: only runs terminated at or before T (RFC 3339, or a duration ago); the always-on cluster stops at T")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	cancel := len(pos) == 2 && pos[0] == "cancel"
	if len(pos) > 1 && !cancel {
		return usagef("at most one RUN_ID (or cancel RUN_ID)")
	}
	if (*since != "" || *until != "") && !*cost {
		return usagef("--since and --until go with --cost")
	}
	if *cost && len(pos) > 0 {
		return usagef("--cost takes no RUN_ID")
	}
	var from, to time.Time
	if from, err = parseWhen(*since); err != nil {
		return usagef("--since: %v", err)
	}
	if to, err = parseWhen(*until); err != nil {
		return usagef("--until: %v", err)
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return usagef("--until %s is not after --since %s", to.UTC().Format(time.RFC3339), from.UTC().Format(time.RFC3339))
	}
	dir, err := a.dir()
	if err != nil {
		return err
	}
	_, stt, err := a.readTargets(dir, *file)
	if err != nil {
		return err
	}
	if *verbose {
		a.note("jobs", dir, stt)
	}
	if _, err := os.Stat(dir.State()); err != nil && stt.url == "" {
		return fmt.Errorf("no sluice state in %s: nothing has run there yet", dir.Path)
	}
	st, err := state.Open(ctx, stt.url, dir.Path)
	if err != nil {
		return stt.openErr(dir, err)
	}
	defer st.Close()
	_, alive := dir.Owned()
	if cancel {
		return a.cancelRun(ctx, st, pos[1])
	}
	if len(pos) == 1 {
		return a.showRun(ctx, st, dir, alive, pos[0])
	}
	if *cost {
		return a.jobsCost(ctx, st, *rule, from, to)
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

// jobsCost prints job.Usages of every run (of job rule, if set) between
// since and until: the compute transient runs used against an always-on
// cluster of the same size over the same window.
func (a *app) jobsCost(ctx context.Context, st state.Store, rule string, since, until time.Time) error {
	runs, err := st.ListRuns(ctx, job.RunFilter{Rule: rule})
	if err != nil {
		return err
	}
	usages, total := job.Usages(runs, since, until)
	if total.Runs == 0 {
		fmt.Fprintf(a.stdout, "no finished job runs%s to count", window(since, until))
		if total.InFlight > 0 {
			fmt.Fprintf(a.stdout, " (%d still running)", total.InFlight)
		}
		fmt.Fprintln(a.stdout)
		return nil
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	pct := func(u job.Usage) (string, string) {
		if u.AlwaysOnSeconds <= 0 {
			return "-", "-"
		}
		return fmt.Sprintf("%.1f%%", u.Percent()), fmt.Sprintf("%.1f%%", 100-u.Percent())
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tRUNS\tINSTANCES\tFROM\tTO\tCOMPUTE S\tALWAYS-ON S\tUSED\tSAVED")
	row := func(name string, u job.Usage) {
		used, saved := pct(u)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%.3f\t%.3f\t%s\t%s\n", name, u.Runs, u.Instances, ts(u.From), ts(u.To), u.ComputeSeconds, u.AlwaysOnSeconds, used, saved)
	}
	for _, u := range usages {
		if u.Runs > 0 {
			row(u.Job, u)
		}
	}
	if len(usages) > 1 {
		row("total", total)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "\nCOMPUTE S: the runs' compute seconds (instance-seconds, as `sluice jobs RUN_ID` shows each); ALWAYS-ON S: a cluster of INSTANCES machines (the largest run's) up from FROM to TO; USED: compute as a share of always-on; SAVED: the rest.\n")
	if total.InFlight > 0 {
		fmt.Fprintf(a.stdout, "%d run(s) still running, or ending after --until, are not counted.\n", total.InFlight)
	}
	return nil
}

// window describes --since and --until for a message.
func window(since, until time.Time) string {
	switch {
	case !since.IsZero() && !until.IsZero():
		return fmt.Sprintf(" between %s and %s", since.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))
	case !since.IsZero():
		return " since " + since.UTC().Format(time.RFC3339)
	case !until.IsZero():
		return " until " + until.UTC().Format(time.RFC3339)
	}
	return ""
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
