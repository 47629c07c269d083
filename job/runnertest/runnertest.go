// Package runnertest is the conformance suite every job.Remote runner
// runs. It checks the contract written on job.Remote against the runner's
// fake service: one compute per run ID however often Run is called, with
// or without Task.Remote; NotifyRemote as soon as the compute is known and
// NotifyStarted once it runs the job, each once and never after Run
// returned; cancellation with cause job.ErrCancelled, or a passed
// deadline, stops the compute and Run returns once it is gone; any other
// end of ctx detaches and leaves the compute running; a run that cannot
// start starts nothing. A runner's test supplies a Harness over its fake
// and calls Run; passing it is what lets job.Manager treat every remote
// runner alike.
//
// The harness plays the service, and its computes never move by
// themselves: a compute waits (not yet running the job) until the suite
// calls Start, runs the job until End, and otherwise ends only when the
// runner stops it. So nothing depends on timing: every wait is for
// something that must happen, bounded by a patience (30s) that only a
// broken runner exhausts, and nothing sleeps.
//
// Subtests run one at a time against one harness and one runner, each
// with run IDs of its own, and call Task right before running a new run
// ID. Advance moves the runner's clock for all of them; tasks take Created
// from it. Subtest names are stable: `go test -run 'Conformance/Cancel'`.
package runnertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/job"
)

// Harness drives one remote runner and its fake service for the suite.
// Its methods that take a *testing.T fail it (t.Fatal) when the service
// does not get where they wait for within the suite's patience.
type Harness interface {
	// Runner returns the runner under test, aimed at the fake service,
	// polling every few milliseconds, telling the time by the harness's
	// clock. The suite uses it for every subtest.
	Runner(t *testing.T) job.Remote
	// Kinds are the task kinds the runner runs (job.KindSpark, ...).
	Kinds() []string
	// Task returns a task of one of Kinds for runID, ready to run, with
	// Created from the harness's clock and no Timeout, Deadline or Remote.
	// fail is how its compute ends at End: the job succeeds when fail is
	// "", and otherwise fails with fail as the reason the service gives
	// (said here because some fakes, like EMR's scripts, fix a compute's
	// course when it is created).
	Task(t *testing.T, runID, fail string) job.Task
	// Computes is how many computes (clusters, job runs, Jobs) the
	// service has started for runID, ended and deleted ones included.
	Computes(runID string) int
	// Live reports whether a compute of runID exists and has not ended;
	// one being stopped (TERMINATING, CANCELLING, a Job whose pods are
	// still there) is live.
	Live(runID string) bool
	// Start waits until the compute of runID exists and makes the service
	// run the job on it: the cluster RUNNING with its step running, the
	// job run RUNNING, the pod's container running. Until then a compute
	// waits (STARTING, SUBMITTED, a Job without pods).
	Start(t *testing.T, runID string)
	// AwaitFollowing waits until the compute of runID exists and a runner
	// has looked at it, and acted on what it saw, in a look that began
	// after the call.
	AwaitFollowing(t *testing.T, runID string)
	// End makes the service end the job that Start made run on the
	// compute of runID, as Task said: success or failure.
	End(t *testing.T, runID string)
	// Advance moves the runner's clock forward by d.
	Advance(d time.Duration)
}

// patience bounds every wait for something that must happen.
const patience = 30 * time.Second

var seq atomic.Int64

// newRunID returns a run ID shaped like sluice's (UUIDv7) that no other
// subtest in this process uses.
func newRunID() string { return fmt.Sprintf("0190c0de-7a3b-7c1e-9f00-%012d", seq.Add(1)) }

// Run runs the suite against h.
func Run(t *testing.T, h Harness) {
	t.Helper()
	f := &fixture{h: h, r: h.Runner(t)}
	t.Run("ARunSucceedsAndNotifiesItsComputeOnce", f.success)
	t.Run("AFailedJobIsAFailedOutcomeWithTheServicesReason", f.failure)
	t.Run("EveryRunOfARunIDFollowsItsOneCompute", f.oneCompute)
	f.ends(t)
	f.nothingStarts(t)
}

// fixture is the harness and the runner under test.
type fixture struct {
	h Harness
	r job.Remote
}

// call is one Run in a goroutine and what it notified.
type call struct {
	name    string // the runner's RemoteName
	done    chan struct{}
	remoted chan struct{} // closed at the first NotifyRemote

	mu           sync.Mutex
	remotes      []string
	pids         []int
	startedFirst bool     // NotifyStarted came before NotifyRemote
	late         []string // notifications after Run returned
	returned     bool
	out          job.Outcome
	err          error
}

// start calls Run(ctx, task) in a goroutine, with ctx carrying callbacks
// that record NotifyRemote and NotifyStarted.
func (f *fixture) start(t *testing.T, ctx context.Context, task job.Task) *call {
	c := &call{name: f.r.RemoteName(), done: make(chan struct{}), remoted: make(chan struct{})}
	note := func(what string) {
		if c.returned {
			c.late = append(c.late, what)
		}
	}
	ctx = job.WithNotify(ctx, func(pid int) {
		c.mu.Lock()
		defer c.mu.Unlock()
		note(fmt.Sprintf("NotifyStarted(%d)", pid))
		c.startedFirst = c.startedFirst || len(c.remotes) == 0
		c.pids = append(c.pids, pid)
	}, func(id string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		note(fmt.Sprintf("NotifyRemote(%q)", id))
		if c.remotes = append(c.remotes, id); len(c.remotes) == 1 {
			close(c.remoted)
		}
	})
	go func() {
		out, err := f.r.Run(ctx, task)
		c.mu.Lock()
		c.returned, c.out, c.err = true, out, err
		c.mu.Unlock()
		close(c.done)
	}()
	t.Cleanup(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.late) > 0 {
			t.Errorf("run %s: %s after Run returned; runners notify only from inside Run", task.RunID, strings.Join(c.late, ", "))
		}
	})
	return c
}

// wait returns what Run returned, failing the test if it does not return
// within the patience, and checks what it notified: NotifyRemote at most
// once, with "<RemoteName>:<id>"; NotifyStarted at most once, with pid 0,
// after NotifyRemote.
func (c *call) wait(t *testing.T) (job.Outcome, error) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(patience):
		t.Fatalf("Run did not return within %s", patience)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.remotes) > 1 || len(c.pids) > 1 {
		t.Errorf("NotifyRemote called with %q, NotifyStarted with %v; want each at most once", c.remotes, c.pids)
	}
	for _, id := range c.remotes {
		if rest, ok := strings.CutPrefix(id, c.name+":"); !ok || rest == "" {
			t.Errorf("NotifyRemote(%q); want %q followed by the compute's id", id, c.name+":")
		}
	}
	if slices.ContainsFunc(c.pids, func(pid int) bool { return pid != 0 }) || c.startedFirst {
		t.Errorf("NotifyStarted(%v) before NotifyRemote: %v; want pid 0 (no local process), after the compute's id", c.pids, c.startedFirst)
	}
	return c.out, c.err
}

// remote is the first id NotifyRemote gave ("" before it was called).
func (c *call) remote() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.remotes) == 0 {
		return ""
	}
	return c.remotes[0]
}

// notified returns how often NotifyRemote and NotifyStarted were called.
func (c *call) notified() (remotes, starts int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.remotes), len(c.pids)
}

// awaitRemote waits for the first NotifyRemote and returns its id.
func (c *call) awaitRemote(t *testing.T) string {
	t.Helper()
	select {
	case <-c.remoted:
	case <-c.done:
		if c.remote() == "" {
			t.Fatal("Run returned without calling NotifyRemote")
		}
	case <-time.After(patience):
		t.Fatalf("no NotifyRemote within %s", patience)
	}
	return c.remote()
}

// compute is the compute's own id ("j-1ABC" of "emr:j-1ABC"), which
// errors and outcomes about it name.
func (c *call) compute() string { return strings.TrimPrefix(c.remote(), c.name+":") }

func succeeded(t *testing.T, what string, out job.Outcome, err error) {
	t.Helper()
	if err != nil || out.ExitCode != 0 || out.Err != "" || out.Transient {
		t.Fatalf("%s = %+v, %v; want success", what, out, err)
	}
}

// failedWith checks that Run returned a failed, not transient Outcome
// whose Err contains want and names the compute.
func failedWith(t *testing.T, what string, out job.Outcome, err error, want, compute string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v; want a failed Outcome, not an error", what, err)
	}
	if out.ExitCode == 0 || out.Transient || !strings.Contains(out.Err, want) || !strings.Contains(out.Err, compute) {
		t.Errorf("%s = exit %d, transient %v, Err %q; want a non-zero exit, not transient, an Err containing %q and naming the compute %q",
			what, out.ExitCode, out.Transient, out.Err, want, compute)
	}
}

func (f *fixture) computes(t *testing.T, runID string, want int) {
	t.Helper()
	if n := f.h.Computes(runID); n != want {
		t.Errorf("the service has %d computes for run %s; want %d", n, runID, want)
	}
}

func (f *fixture) success(t *testing.T) {
	id := newRunID()
	c := f.start(t, t.Context(), f.h.Task(t, id, ""))
	f.h.AwaitFollowing(t, id)
	if remotes, starts := c.notified(); remotes != 1 || starts != 0 {
		t.Errorf("following a compute that does not run the job yet, the runner called NotifyRemote %d times and NotifyStarted %d; want once and never", remotes, starts)
	}
	f.h.Start(t, id)
	f.h.AwaitFollowing(t, id)
	if _, starts := c.notified(); starts != 1 {
		t.Errorf("NotifyStarted called %d times once the runner saw the compute run the job; want once", starts)
	}
	f.h.End(t, id)
	out, err := c.wait(t)
	succeeded(t, "Run", out, err)
	if f.h.Live(id) {
		t.Error("Run returned while its compute was live; it returns only once the compute is gone")
	}
	f.computes(t, id, 1)
}

func (f *fixture) failure(t *testing.T) {
	id := newRunID()
	reason := "runnertest: partition 7 of the input is corrupt (run " + id + ")"
	c := f.start(t, t.Context(), f.h.Task(t, id, reason))
	f.h.Start(t, id)
	f.h.AwaitFollowing(t, id)
	f.h.End(t, id)
	out, err := c.wait(t)
	failedWith(t, "Run of a failing job", out, err, reason, c.compute())
	if f.h.Live(id) {
		t.Error("Run returned while its compute was live")
	}
	f.computes(t, id, 1)
}

// oneCompute runs a task, then the same task again while it runs (a
// redelivered trigger), then again with Remote set (an adoption), then
// again after it ended: all follow the one compute to its success.
func (f *fixture) oneCompute(t *testing.T) {
	id := newRunID()
	task := f.h.Task(t, id, "")
	first := f.start(t, t.Context(), task)
	f.h.Start(t, id)
	adopted := task
	adopted.Remote = first.awaitRemote(t)
	calls := []*call{first, f.start(t, t.Context(), task), f.start(t, t.Context(), adopted)}
	for i, c := range calls[1:] {
		if r := c.awaitRemote(t); r != adopted.Remote {
			t.Errorf("Run %d follows %q, the first %q; want the same compute", i+2, r, adopted.Remote)
		}
	}
	f.h.AwaitFollowing(t, id)
	f.h.End(t, id)
	for i, c := range calls {
		out, err := c.wait(t)
		succeeded(t, fmt.Sprintf("Run %d", i+1), out, err)
	}
	again := f.start(t, t.Context(), task)
	out, err := again.wait(t)
	succeeded(t, "a Run after the end", out, err)
	if r := again.remote(); r != adopted.Remote {
		t.Errorf("a Run after the end reports compute %q, the first %q; want the same", r, adopted.Remote)
	}
	f.computes(t, id, 1)
}

// ends ends runs while their compute waits or runs the job: by ctx, whose
// cause job.ErrCancelled stops it and any other detaches, or by the
// deadline, which stops it.
func (f *fixture) ends(t *testing.T) {
	for _, tc := range []struct {
		name  string
		runs  bool  // the compute runs the job when the run ends
		cause error // nil: the deadline passes
		want  string
	}{
		{"CancellingStopsTheCompute", true, job.ErrCancelled, "cancel"},
		{"CancellingStopsAComputeThatDidNotRunTheJobYet", false, job.ErrCancelled, "cancel"},
		{"APassedDeadlineStopsTheCompute", true, nil, "timed out"},
		{"APassedDeadlineStopsAComputeThatDidNotRunTheJobYet", false, nil, "timed out"},
		{"context.CanceledDetachesAndLeavesTheComputeRunning", true, context.Canceled, ""},
		{"AnotherCauseDetachesAndLeavesTheComputeRunning", true, errors.New("runnertest: shutting down"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := newRunID()
			task := f.h.Task(t, id, "")
			task.Timeout = time.Hour
			task.Deadline = task.Created.Add(task.Timeout)
			ctx, cancel := context.WithCancelCause(t.Context())
			defer cancel(nil)
			c := f.start(t, ctx, task)
			if tc.runs {
				f.h.Start(t, id)
			}
			f.h.AwaitFollowing(t, id)
			if tc.cause != nil {
				cancel(tc.cause)
			} else {
				f.h.Advance(task.Timeout)
			}
			// The compute never ends by itself: Run returning at all shows
			// that it stopped the compute or did not wait for it.
			out, err := c.wait(t)
			live := f.h.Live(id)
			switch {
			case tc.want == "" && !errors.Is(err, job.ErrDetached):
				t.Errorf("Run after ctx ended with %v = %+v, %v; want an error wrapping job.ErrDetached", tc.cause, out, err)
			case tc.want == "" && (!live || !strings.Contains(err.Error(), c.compute())):
				t.Errorf("detached: compute live %v, error %q; want the compute left running for a live process to adopt, and named", live, err)
			case tc.want != "":
				if live {
					t.Error("Run returned while its compute was live; it stops the compute and returns once it is gone")
				}
				failedWith(t, "Run", out, err, tc.want, c.compute())
			}
			if _, starts := c.notified(); tc.runs != (starts == 1) {
				t.Errorf("NotifyStarted called %d times; the compute ran the job: %v", starts, tc.runs)
			}
			f.computes(t, id, 1)
		})
	}
}

// nothingStarts runs tasks that must start no compute: past their
// deadline, with ctx already ended, of another runner or kind.
func (f *fixture) nothingStarts(t *testing.T) {
	type testCase struct {
		name  string
		edit  func(*job.Task)
		cause error  // ends ctx before Run
		want  string // in the failed Outcome's Err; "": an error, ErrDetached with cause, else permanent
	}
	cases := []testCase{
		{"ADeadlinePassedBeforeRunStartsNothing", func(task *job.Task) {
			task.Timeout = time.Hour
			task.Deadline = task.Created.Add(task.Timeout)
			f.h.Advance(task.Timeout)
		}, nil, "timed out"},
		{"ACancelledContextStartsNothing", nil, job.ErrCancelled, "cancel"},
		{"AContextEndedForAnotherCauseStartsNothing", nil, errors.New("runnertest: claim lost"), ""},
		{"ARemoteOfAnotherRunnerIsAPermanentError", func(task *job.Task) { task.Remote = "elsewhere:compute-1" }, nil, ""},
	}
	if len(f.h.Kinds()) == 0 {
		t.Error("the harness's runner runs no kind of task")
	}
	for _, kind := range []string{job.KindCurate, job.KindCommand, job.KindSpark} {
		if !slices.Contains(f.h.Kinds(), kind) {
			name := "A" + strings.ToUpper(kind[:1]) + kind[1:] + "TaskIsAPermanentError"
			cases = append(cases, testCase{name, func(task *job.Task) { task.Kind = kind }, nil, ""})
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := newRunID()
			task := f.h.Task(t, id, "")
			if tc.edit != nil {
				tc.edit(&task)
			}
			ctx, cancel := context.WithCancelCause(t.Context())
			defer cancel(nil)
			if tc.cause != nil {
				cancel(tc.cause)
			}
			c := f.start(t, ctx, task)
			out, err := c.wait(t)
			switch {
			case tc.want != "":
				failedWith(t, "Run", out, err, tc.want, "")
			case tc.cause != nil && !errors.Is(err, job.ErrDetached):
				t.Errorf("Run = %+v, %v; want an error wrapping job.ErrDetached", out, err)
			case tc.cause == nil && (!fault.IsPermanent(err) || !strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), task.Remote)):
				t.Errorf("Run = %v; want a permanent error naming run %s (and its Remote %q)", err, id, task.Remote)
			}
			if remotes, starts := c.notified(); remotes+starts != 0 {
				t.Errorf("%d NotifyRemote and %d NotifyStarted calls for a run that started nothing", remotes, starts)
			}
			f.computes(t, id, 0)
		})
	}
}
