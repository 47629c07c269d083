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
// (0-based) of a curate run is written. Tests use it to prove that a job
// dying mid-write leaves the previous output intact.
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
	afterPart := failpoint(a.getenv(failpointEnv))
	code := local.Exec(ctx, taskFile, func(ctx context.Context, t job.Task) ([]string, error) {
		return engine.ExecTask(ctx, t, afterPart)
	})
	if code != 0 {
		return exitError{code, fmt.Errorf("run failed (see its log)")}
	}
	return nil
}

func failpoint(v string) func(int) {
	n, ok := strings.CutPrefix(v, "curate-after-part=")
	if !ok {
		return nil
	}
	at, err := strconv.Atoi(n)
	if err != nil {
		return nil
	}
	return func(part int) {
		if part == at {
			fmt.Fprintf(os.Stderr, "failpoint %s: killing the job process\n", v)
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}
