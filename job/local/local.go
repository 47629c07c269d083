// Package local runs jobs as fresh local processes: one `sluice job exec`
// child per run, in its own process group, which exists only while the job
// works.
//
// # Files
//
// For run ID the runner uses Dir/ID/: task.json (the job.Task, written by
// the parent), log.txt (the child's stdout and stderr) and result.json
// (written atomically by the child through Exec: {"outputs": [...],
// "error": "..."}).
//
// # Transience
//
// The child is started with Setpgid, so it and everything it starts share
// a process group whose id is the child's pid. On timeout or cancellation
// the whole group is killed with SIGKILL; when the child exits by itself,
// whatever it left behind in its group is killed too. Run returns only
// once no live process remains in the group (on Linux it checks /proc;
// zombies waiting for a reaper count as gone, they use no compute). On
// Linux the child also gets SIGTERM as its parent-death signal; Exec, the
// child side, answers SIGTERM or SIGINT by killing its whole process group
// with SIGKILL, so a parent that dies takes the job and everything the job
// started with it. Reap (called by job.Manager.Recover) kills any process
// still carrying the dead run's SLUICE_RUN_ID, for whatever escaped.
//
// Processes that leave the group themselves (setsid, setpgid) escape the
// group kill; sluice's own children never do.
//
// The local runner needs a Unix system; elsewhere Run fails with an error.
package local

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluicehq/sluice/fault"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/sluicehq/sluice/job"
)

// LogCap is how much of a run's log (its tail) Outcome.Log carries.
const LogCap = 1 << 20

// File names inside a run's directory.
const (
	TaskFile   = "task.json"
	LogFile    = "log.txt"
	ResultFile = "result.json"
)

// Runner starts one child process per run. The zero value runs
// `<this executable> job exec <task file>` with files under the current
// directory's "jobs" folder; set Dir to the data dir's jobs folder.
type Runner struct {
	// Binary is the sluice binary to start; "" means os.Executable().
	Binary string
	// Args returns the child's arguments for a task file; nil means
	// []string{"job", "exec", taskFile}.
	Args func(taskFile string) []string
	// Env is added to the child's environment (after os.Environ() and
	// before SLUICE_RUN_ID, which the runner always sets).
	Env []string
	// Dir holds one directory per run (task, log, result); "" means "jobs".
	Dir string
	// Logger gets one line per start and end; nil means slog.Default().
	Logger *slog.Logger
	// GoneTimeout bounds the wait for the process group to disappear after
	// SIGKILL (default 10s); past it Run returns an error.
	GoneTimeout time.Duration
	// Nice is the niceness the job's processes run at: 0 means DefaultNice,
	// a negative value leaves them at this process's.
	Nice int
}

// DefaultNice is the niceness of job processes (on Unix): they get every
// CPU cycle the machine has spare, but yield to the process that runs the
// pipeline, whose loads and event handling would otherwise queue behind
// them on a busy machine. Measured with bench's latency figure (1,000
// objects at 100/s and a run of a job ten times a second, on two cores):
// write → rows committed p99 fell from 280-380 ms at the same priority
// to under 100 ms, because the job processes' start-up alone takes about
// 70 ms of CPU each. Job processes cannot lower it back without
// privileges.
const DefaultNice = 10

var (
	_ job.Runner = (*Runner)(nil)
	_ job.Reaper = (*Runner)(nil)
)

// Result is what the child writes to result.json.
type Result = job.Result

// Run writes the task, starts the child in its own process group, waits
// for it (killing the group on ctx cancellation or t.Timeout) and returns
// once no process of the group is left. The Outcome carries the exit code,
// the outputs and error from result.json, the child's wall time as
// ComputeSeconds, and the tail of its log. The error is only for failures
// to prepare, start or clean up the child.
func (r *Runner) Run(ctx context.Context, t job.Task) (job.Outcome, error) {
	if err := checkRunID(t.RunID); err != nil {
		return job.Outcome{}, err
	}
	if err := supported(); err != nil {
		return job.Outcome{}, fmt.Errorf("local runner: run %s: %w", t.RunID, err)
	}
	logger := r.Logger
	if logger == nil {
		logger = slog.Default()
	}
	base := r.Dir
	if base == "" {
		base = "jobs"
	}
	dir := filepath.Join(base, t.RunID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return job.Outcome{}, fmt.Errorf("local runner: run %s: create run directory: %w", t.RunID, err)
	}
	taskFile := filepath.Join(dir, TaskFile)
	data, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return job.Outcome{}, fmt.Errorf("local runner: run %s: encode task: %w", t.RunID, err)
	}
	if err := writeAtomic(taskFile, data); err != nil {
		return job.Outcome{}, fmt.Errorf("local runner: run %s: %w", t.RunID, err)
	}
	resultFile := filepath.Join(dir, ResultFile)
	if err := os.Remove(resultFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		return job.Outcome{}, fmt.Errorf("local runner: run %s: remove stale %s: %w", t.RunID, resultFile, err)
	}
	logPath := filepath.Join(dir, LogFile)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return job.Outcome{}, fmt.Errorf("local runner: run %s: open log: %w", t.RunID, err)
	}
	defer logf.Close()

	bin := r.Binary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return job.Outcome{}, fmt.Errorf("local runner: run %s: find the sluice binary (set Runner.Binary): %w", t.RunID, err)
		}
	}
	args := []string{"job", "exec", taskFile}
	if r.Args != nil {
		args = r.Args(taskFile)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), r.Env...), "SLUICE_RUN_ID="+t.RunID)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = groupAttr()

	// A parent-death signal fires when the starting OS thread exits; keep
	// this goroutine on its thread until the child is gone.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return job.Outcome{}, fmt.Errorf("local runner: run %s: start %s: %w", t.RunID, bin, err)
	}
	pgid := cmd.Process.Pid
	if n := r.Nice; n >= 0 {
		if n == 0 {
			n = DefaultNice
		}
		if err := setNice(pgid, n); err != nil {
			logger.Debug("job process keeps its priority", "run", t.RunID, "pid", pgid, "nice", n, "err", err)
		}
	}
	logger.Info("job process started", "run", t.RunID, "pid", pgid, "dir", dir)
	job.NotifyStarted(ctx, pgid)

	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var timeout <-chan time.Time
	if t.Timeout > 0 {
		tm := time.NewTimer(t.Timeout)
		defer tm.Stop()
		timeout = tm.C
	}
	var killed string
	select {
	case <-waited:
	case <-ctx.Done():
		killed = fmt.Sprintf("killed: the run was cancelled (%v)", context.Cause(ctx))
		killGroup(pgid)
		<-waited
	case <-timeout:
		killed = fmt.Sprintf("killed: the run exceeded its timeout of %s", t.Timeout)
		killGroup(pgid)
		<-waited
	}
	compute := time.Since(start).Seconds()
	// The leader is gone; nothing it started may outlive it.
	goneErr := waitGroupGone(pgid, r.goneTimeout())

	out := job.Outcome{ExitCode: cmd.ProcessState.ExitCode(), ComputeSeconds: compute}
	out.Log, _ = readTail(logPath, LogCap)
	res, resErr := readResult(resultFile)
	out.Outputs = res.Outputs
	switch {
	case killed != "":
		out.Err = killed
	case res.Error != "":
		out.Err = res.Error
	case resErr != nil && out.ExitCode == 0:
		out.Err = fmt.Sprintf("job process exited 0 but left no usable %s: %v", ResultFile, resErr)
	case !cmd.ProcessState.Exited():
		out.Err = fmt.Sprintf("job process %s by a signal sluice did not send, as the OOM killer or an operator would (it will be retried; see its log %s)", cmd.ProcessState, logPath)
	case out.ExitCode != 0:
		out.Err = fmt.Sprintf("job process %s (see its log %s)", cmd.ProcessState, logPath)
	}
	if out.Err != "" && out.ExitCode == 0 {
		out.ExitCode = 1
	}
	// A process that died of a signal sluice did not send may well succeed
	// next time: retried with backoff, like EX_TEMPFAIL, within the budget.
	out.Transient = killed == "" && (out.ExitCode == fault.ExitTempFail || !cmd.ProcessState.Exited())
	logger.Info("job process ended", "run", t.RunID, "pid", pgid, "exit", out.ExitCode, "seconds", compute, "err", out.Err)
	if goneErr != nil {
		return out, fmt.Errorf("local runner: run %s: %w", t.RunID, goneErr)
	}
	return out, nil
}

func (r *Runner) goneTimeout() time.Duration {
	if r.GoneTimeout > 0 {
		return r.GoneTimeout
	}
	return 10 * time.Second
}

// Reap kills every process that still carries run's SLUICE_RUN_ID (left by
// a parent that died) and waits until they are gone. On systems without
// /proc it does nothing.
func (r *Runner) Reap(ctx context.Context, run job.Run) error {
	if err := checkRunID(run.ID); err != nil {
		return err
	}
	return reapRun(ctx, run.ID, r.goneTimeout())
}

func checkRunID(id string) error {
	if id == "" || id == "." || id == ".." || strings.ContainsAny(id, `/\`+"\x00") {
		return fmt.Errorf("local runner: run id %q cannot name a directory", id)
	}
	return nil
}

func readResult(path string) (Result, error) {
	var res Result
	data, err := os.ReadFile(path)
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return Result{}, fmt.Errorf("%s: %w", path, err)
	}
	return res, nil
}

// readTail returns the last max bytes of path, marked when cut.
func readTail(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	var head []byte
	if st.Size() > max {
		head = fmt.Appendf(nil, "[... %d earlier bytes omitted ...]\n", st.Size()-max)
		if _, err := f.Seek(st.Size()-max, io.SeekStart); err != nil {
			return nil, err
		}
	}
	body, err := io.ReadAll(io.LimitReader(f, max))
	return append(head, body...), err
}

// writeAtomic writes data to a temporary file next to path and renames it
// into place, so readers see the old file or the whole new one. It does not
// fsync: the only reader is the job process started right after, through
// the page cache, and after a crash of the machine the run is recovered as
// "worker lost" and run again with a new file — an fsync would only delay
// every run's start.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
