package local

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/job"
)

// Exec is the child side of a run (`sluice job exec TASK_FILE`): it reads
// the task, executes it, writes result.json next to the task file
// atomically, and returns the process exit code: 0 on success,
// fault.ExitTempFail (75) when the failure is transient (fault.KindOf: a
// service was unavailable, or a command job itself exited 75) and 1 on
// any other failure. Tasks of kind "command" are run by RunCommand with the child's
// stdout and stderr, and their outputs are reported only if the run's
// claim (Task.Fence, see CheckFence) still holds when the command ends;
// every other kind is handed to do (the engine's
// executor, for "curate"); a nil do fails them. Errors are also printed to
// stderr, which is the run's log.
//
// When this process leads its own process group (the runner starts it with
// Setpgid), SIGTERM or SIGINT, including the parent-death signal the
// runner sets on Linux, makes Exec kill the whole group with SIGKILL: the
// child and everything it started die at once, with no result written.
//
// With taskFile "" the task comes from the environment instead (how a
// Kubernetes pod gets it): job.EnvTask holds its JSON, and the result is
// written to the file job.EnvResultFile names (the container's termination
// log), if any.
func Exec(ctx context.Context, taskFile string, do func(ctx context.Context, t job.Task) (outputs []string, err error)) int {
	stop := killGroupOnSignal()
	defer stop()
	write := writeAtomic
	resultFile := filepath.Join(filepath.Dir(taskFile), ResultFile)
	if taskFile == "" {
		resultFile = os.Getenv(job.EnvResultFile)
		write = func(path string, data []byte) error {
			if path == "" {
				return nil
			}
			return os.WriteFile(path, data, 0o644)
		}
	}
	outputs, err := execTask(ctx, taskFile, do)
	res := Result{Outputs: outputs}
	if res.Outputs == nil {
		res.Outputs = []string{}
	}
	code := 0
	if err != nil {
		res.Error, code = err.Error(), 1
		if fault.IsTransient(err) {
			code = fault.ExitTempFail
		}
		fmt.Fprintln(os.Stderr, "sluice job:", err)
	}
	data, merr := json.Marshal(res)
	if merr == nil {
		merr = write(resultFile, data)
	}
	if merr != nil {
		// Not the job's fault (a full disk, say): the run is retried.
		fmt.Fprintln(os.Stderr, "sluice job: record the result:", merr)
		return fault.ExitTempFail
	}
	return code
}

func execTask(ctx context.Context, taskFile string, do func(context.Context, job.Task) ([]string, error)) ([]string, error) {
	var data []byte
	from := "task file " + taskFile
	if taskFile == "" {
		from = "$" + job.EnvTask
		v, ok := os.LookupEnv(job.EnvTask)
		if !ok {
			return nil, fault.Permanent(fmt.Errorf("no task: give a task file, or the task's JSON in $%s", job.EnvTask))
		}
		data = []byte(v)
	} else {
		var err error
		if data, err = os.ReadFile(taskFile); err != nil {
			return nil, fmt.Errorf("read task: %w", err)
		}
	}
	var t job.Task
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fault.Permanent(fmt.Errorf("%s is not a job task: %w", from, err))
	}
	switch {
	case t.Kind == job.KindCommand:
		outputs, err := RunCommand(ctx, t, os.Stdout, os.Stderr)
		if err == nil {
			// The command's end is its commit: its outputs count only
			// while the run's claim holds.
			err = CheckFence(ctx, t)
		}
		return outputs, err
	case do == nil:
		return nil, fault.Permanent(fmt.Errorf("run %s: no executor for job kind %q", t.RunID, t.Kind))
	}
	outputs, err := do(ctx, t)
	if err != nil {
		return outputs, fmt.Errorf("job %s, group %s: %w", t.Rule, t.Group, err)
	}
	return outputs, nil
}

// RunCommand runs a "command" task: t.Command, then "--" and the group as
// its last two arguments, stdout and stderr as given. The group comes from
// an object's key, which whoever writes to the store chooses: after "--" a
// group like "--version" or "-rf" is an operand, never an option (a program
// that does not take "--" reads the group from $SLUICE_GROUP instead).
//
// The command gets CommandEnv's environment, not sluice's — sluice's holds
// the importers' tokens and the stores' credentials — and these:
//
//	SLUICE_RUN_ID   the run id
//	SLUICE_RULE     the job (rule) name
//	SLUICE_GROUP    the group, e.g. 2020-08-07_2PM (also the last argument)
//	SLUICE_INPUTS   the input objects as JSON: [{"key": "...", "etag": "..."}]
//	SLUICE_STORE    the store URL
//	SLUICE_OUTPUTS  a file the command may write the keys it created to,
//	                one per line; they become the run's outputs
//
// A non-zero exit fails the run: exit status 75 (EX_TEMPFAIL) and death by
// a signal sluice did not send (the OOM killer, kill -9) as a transient
// failure that is retried with backoff, any other as a permanent one that
// is dead-lettered. On Linux the command dies with its parent.
func RunCommand(ctx context.Context, t job.Task, stdout, stderr io.Writer) (outputs []string, err error) {
	if len(t.Command) == 0 || t.Command[0] == "" {
		return nil, fmt.Errorf("run %s: job %s has an empty command", t.RunID, t.Rule)
	}
	inputs := t.Inputs
	if inputs == nil {
		inputs = []job.Input{}
	}
	in, err := json.Marshal(inputs)
	if err != nil {
		return nil, fmt.Errorf("run %s: encode inputs: %w", t.RunID, err)
	}
	outFile, err := os.CreateTemp("", "sluice-outputs-*")
	if err != nil {
		return nil, fmt.Errorf("run %s: create outputs file: %w", t.RunID, err)
	}
	outFile.Close()
	defer os.Remove(outFile.Name())

	cmd := exec.CommandContext(ctx, t.Command[0], append(slices.Clip(t.Command[1:]), "--", t.Group)...)
	cmd.Env = append(CommandEnv(os.Environ(), t.PassEnv),
		"SLUICE_RUN_ID="+t.RunID, "SLUICE_RULE="+t.Rule, "SLUICE_GROUP="+t.Group,
		"SLUICE_INPUTS="+string(in), "SLUICE_STORE="+t.StoreURL, "SLUICE_OUTPUTS="+outFile.Name())
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = childAttr()
	runtime.LockOSThread() // see Runner.Run: the parent-death signal follows the thread
	defer runtime.UnlockOSThread()
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err := fmt.Errorf("command %s %s", t.Command[0], ee.ProcessState)
			if ee.ExitCode() == fault.ExitTempFail {
				return nil, fault.Transient(fmt.Errorf("%w (EX_TEMPFAIL: it will be retried)", err))
			}
			if !ee.Exited() && ctx.Err() == nil {
				return nil, fault.Transient(fmt.Errorf("%w by a signal sluice did not send, as the OOM killer or an operator would (it will be retried)", err))
			}
			return nil, fault.Permanent(err)
		}
		return nil, fault.Permanent(fmt.Errorf("command %s: %w", t.Command[0], err))
	}
	f, err := os.Open(outFile.Name())
	if err != nil {
		return nil, fmt.Errorf("run %s: read outputs file: %w", t.RunID, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			outputs = append(outputs, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("run %s: read outputs file: %w", t.RunID, err)
	}
	return outputs, nil
}

// baseEnv is the environment every program may expect: where to find
// programs, whose home and which language, time zone and temporary folder.
var baseEnv = []string{"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM"}

// CommandEnv is the environment a command job starts with, out of environ
// (sluice's, as "NAME=value"): the variables of baseEnv, LC_*, and those
// named in pass (a job's pass_env). Nothing else gets through: no token,
// password or key is passed unless a spec names it — not even sluice's own
// SLUICE_* settings, which hold the warehouse's and state's URLs (with
// their passwords) and the console's admin token. The run's SLUICE_*
// variables (SLUICE_RUN_ID, SLUICE_GROUP, …) are added by the caller.
func CommandEnv(environ, pass []string) []string {
	var out []string
	for _, kv := range environ {
		name, _, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if slices.Contains(baseEnv, name) || strings.HasPrefix(name, "LC_") || slices.Contains(pass, name) {
			out = append(out, kv)
		}
	}
	return out
}
