// Package job runs transient jobs for trigger rules: it turns matching
// events into durable run requests, debounces them per group, deduplicates
// runs, drives each run's lifecycle on a Runner, and records it in the
// state database.
//
// # Lifecycle
//
// A run is STARTING when it is recorded, RUNNING once the runner reports
// that its compute exists (NotifyStarted), and SUCCEEDED or FAILED when it
// ends; Run.Terminated is set once its compute is gone (Runner.Run has
// returned, which every Runner promises happens only then). A run that a
// worker that stopped heartbeating left STARTING or RUNNING is marked FAILED
// ("worker lost", exit code -1) by Recover in any live process, after any
// leftover compute on this host is reaped, and its group is requested again
// so the scheduler reruns it once settled: the event that caused it was
// acknowledged long ago.
//
// # Claims
//
// Several processes (each with its own Manager and holder identity) may
// share one state. A run of (rule, group) is started only by the holder of
// lease LeaseName(rule, group), which it acquires first (Options.LeaseTTL)
// and renews from one heartbeat goroutine every TTL/3. Every write of the
// run is fenced by that lease's epoch; a lost lease cancels the run's
// compute and nothing more is written for it ("claim lost"). The job
// process checks the claim (Task.Fence) right before it commits.
//
// # Remote runs
//
// A job whose runner is Remote (EMR, EMR Serverless, Kubernetes; see
// remote.go) has compute that outlives this process. Its run is not failed
// when its claimer vanishes: a live process adopts it (Recover, and Loop's
// periodic recovery) by taking the claim at a new epoch and calling the
// runner again with the same run ID, which finds the compute by its
// recorded id or its tags and follows it; no second cluster or job is
// started. A graceful shutdown detaches from remote runs (their compute
// keeps running) and releases their claims, so another process adopts them
// at once. Local runs are still failed "worker lost" and run again.
//
// # Cancelling
//
// `sluice jobs cancel RUN` sets CancelKey(RUN) in the state; the process
// holding the run's claim sees it at its next heartbeat and cancels the run
// with cause ErrCancelled: every runner stops the compute, the run is
// recorded FAILED and its group dead-lettered (replay runs it again).
//
// # Grouping, settling and deduplication
//
// Manager.Offer records a request for (rule, group) and returns once it is
// committed; the caller acknowledges the event then. Requests are durable,
// so an event acknowledged before a crash is never lost. The scheduler
// (Loop) starts a run for a request once no event has refreshed it for the
// definition's settle window (DefaultSettle, 5s): five files uploaded into
// one folder within the window start one run with all five as inputs. Loop
// does not poll for that: Offer wakes it, it then waits exactly until the
// earliest settle deadline (a Sleep on the injected clock), and the end of
// a run wakes it for the request that waited for the run; it still looks at
// the state every Tick for requests other processes recorded. One
// run at a time per (rule, group); different groups run concurrently. An
// event that arrives while a run is in flight keeps the request alive, so
// it causes exactly one follow-up run once the current one ends.
//
// Before starting, the scheduler lists the group's inputs (key + ETag). If
// the latest run of (rule, group) that did not fail has exactly the same
// input set, the request is dropped: a redelivered event, or a new event for
// an unchanged folder, never starts a duplicate. FAILED runs do not count,
// so the next event for a failed group runs it again. Comparing with the
// latest non-failed run (rather than any earlier success) matters when a
// file goes back to an earlier version: the output reflects the latest
// success, so the older set must run again. A failed run leaves the earlier
// output in place, which is why it is skipped in that comparison.
//
// # Concurrency and cancellation
//
// A Manager is safe for concurrent use: Offer may be called from many
// consumers while Loop runs. Cancelling Loop's ctx cancels runs in flight
// (the runner kills their compute); they are recorded FAILED with the
// cancellation as their error, their request is put back so the next start
// runs them again, and Loop returns after every run is recorded.
package job

import (
	"context"
	"encoding/json"
	"time"

	"github.com/sluicehq/sluice/trigger"
)

// DefaultSettle is how long a group must go without new events before its
// run starts, when a Definition does not say. Five seconds covers a batch
// of uploads by one client without delaying a single file noticeably.
const DefaultSettle = 5 * time.Second

// DefaultTick is how often Loop looks at the state for requests it was not
// told about (recorded by other processes sharing it), by default.
const DefaultTick = 500 * time.Millisecond

// Task is what a run executes. It is JSON-serialisable: the local runner
// hands it to the child process as a file.
type Task struct {
	RunID    string `json:"run_id"`
	Rule     string `json:"rule"`
	Group    string `json:"group"`
	StoreURL string `json:"store_url"`
	// Kind is "curate", "command" or "spark".
	Kind string `json:"kind"`
	// Curate is the curate spec for kind "curate"; opaque to this package.
	Curate json.RawMessage `json:"curate,omitempty"`
	// Command is the argv for kind "command"; see job/local.RunCommand for
	// the environment and arguments it receives.
	Command []string `json:"command,omitempty"`
	// PassEnv names the variables of sluice's environment a command job
	// gets besides job/local.CommandEnv's; see pipeline's pass_env.
	PassEnv []string `json:"pass_env,omitempty"`
	Inputs  []Input  `json:"inputs"`
	// Timeout bounds the run; 0 means none.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Fence is the run's claim, for the job process to check right before
	// it commits (nil: unfenced).
	Fence *Fence `json:"fence,omitempty"`
	// Spark is the application of kind "spark".
	Spark *Spark `json:"spark,omitempty"`
	// Created is when the run was recorded; Deadline when it must be over
	// (Created + Timeout; zero: never). Remote runners use Deadline, so an
	// adopted run keeps its original limit.
	Created  time.Time `json:"created,omitzero"`
	Deadline time.Time `json:"deadline,omitzero"`
	// Remote is the id of the compute already started for this run (from
	// the run record, when a process adopts it); "" for a new run.
	Remote string `json:"remote,omitempty"`
}

// Fence is a run's claim as its job process sees it: the state to check
// it in and the lease (name, holder, epoch) that must still be current.
type Fence struct {
	StateURL string `json:"state_url"`
	Lease    string `json:"lease"`
	Holder   string `json:"holder"`
	Epoch    int64  `json:"epoch"`
}

// Task kinds.
const (
	KindCurate  = "curate"
	KindCommand = "command"
	KindSpark   = "spark"
)

// Outcome is what a Runner reports once the run's compute is gone.
type Outcome struct {
	ExitCode int
	Outputs  []string
	Err      string // why the run failed; "" with ExitCode 0 means success
	// Transient says the failure was caused by an unavailable service
	// (the job exited with fault.ExitTempFail, 75): the run is retried with
	// backoff instead of being dead-lettered.
	Transient bool
	// ComputeSeconds is the instance-seconds the compute used (see
	// Run.ComputeSeconds), Instances the machines it had (0 means 1).
	ComputeSeconds float64
	Instances      int
	Log            []byte
}

// Runner executes tasks on some compute.
type Runner interface {
	// Run executes t and blocks until its compute is gone (terminated),
	// including when ctx is cancelled or t.Timeout passes: then the runner
	// kills the compute and says so in Outcome.Err. A job that fails is an
	// Outcome with a non-zero ExitCode or an Err, not an error; the error is
	// only for failures to start or track the compute. Runners call
	// NotifyStarted(ctx, pid) once the compute exists.
	Run(ctx context.Context, t Task) (Outcome, error)
}

// Reaper is an optional Runner capability: Recover calls Reap for each run
// a dead parent left behind, so compute that outlived its parent is killed
// before the run is marked terminated.
type Reaper interface {
	Reap(ctx context.Context, r Run) error
}

// RunnerFunc adapts a function to Runner.
type RunnerFunc func(ctx context.Context, t Task) (Outcome, error)

// Run calls f.
func (f RunnerFunc) Run(ctx context.Context, t Task) (Outcome, error) { return f(ctx, t) }

type startedKey struct{}

// NotifyStarted tells the Manager that the compute for the run ctx belongs
// to exists; pid is its process id (0 if it has none). Runners call it once,
// from inside Run; it is a no-op for a ctx not from a Manager.
func NotifyStarted(ctx context.Context, pid int) {
	if f, ok := ctx.Value(startedKey{}).(func(int)); ok {
		f(pid)
	}
}

func withStarted(ctx context.Context, f func(int)) context.Context {
	return context.WithValue(ctx, startedKey{}, f)
}

// Definition is one job: its rule and how to build its tasks.
type Definition struct {
	Name string
	Rule *trigger.Compiled
	// Settle is the quiet period before a group's run starts; 0 means
	// DefaultSettle.
	Settle time.Duration
	// Inputs lists the group's input objects with their ETags. An error
	// records a FAILED run naming it (and the next event tries again).
	Inputs func(ctx context.Context, group string) ([]Input, error)
	// Task builds the task for a run; the Manager fills in RunID, Rule,
	// Group, Inputs, Created, Deadline (from Task.Timeout) and Fence.
	Task func(group string, inputs []Input) (Task, error)
	// Runner runs this job's tasks; nil means Options.Runner.
	Runner Runner
}
