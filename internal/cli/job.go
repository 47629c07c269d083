package cli

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/job/local"
)

func init() {
	register(command{name: "job", args: "exec [TASK_FILE]", hidden: true,
		summary: "execute one job run (started by the local or kubernetes job runner, not by hand; without TASK_FILE the task is $SLUICE_TASK)", run: runJob})
}

// failpointEnv names the failpoint variable the job child honours:
// "curate-after-part=N" makes the process SIGKILL itself once part N
// (0-based) of a curate run is written; "curate-after-commit" makes it
// SIGKILL its parent (the `sluice run` that started it) and then itself
// once the output is committed, before the run is recorded. Tests use them
// to prove that a job dying mid-write leaves the previous output intact
// and that a rerun of a committed but unrecorded run duplicates nothing.
const failpointEnv = "SLUICE_FAILPOINT"

func runJob(ctx context.Context, a *app, args []string) error {
	fs := a.flags("job")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 || len(pos) > 2 || pos[0] != "exec" {
		return usagef("want exec [TASK_FILE]")
	}
	taskFile := ""
	if len(pos) == 2 {
		taskFile = pos[1]
	}
	fp := failpoints(a.getenv(failpointEnv))
	code := local.Exec(ctx, taskFile, func(ctx context.Context, t job.Task) ([]string, error) {
		return engine.ExecTask(ctx, t, fp)
	})
	if code != 0 {
		return exitError{code, fmt.Errorf("run failed (see its log)")}
	}
	return nil
}

func failpoints(v string) engine.Failpoints {
	kill := func(pid int) {
		fmt.Fprintf(os.Stderr, "failpoint %s: killing process %d\n", v, pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if v == "curate-after-commit" {
		return engine.Failpoints{AfterCommit: func() {
			kill(os.Getppid())
			kill(os.Getpid())
		}}
	}
	n, ok := strings.CutPrefix(v, "curate-after-part=")
	if !ok {
		return engine.Failpoints{}
	}
	at, err := strconv.Atoi(n)
	if err != nil {
		return engine.Failpoints{}
	}
	return engine.Failpoints{AfterPart: func(part int) {
		if part == at {
			kill(os.Getpid())
		}
	}}
}
