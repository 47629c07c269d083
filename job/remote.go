package job

import (
	"context"
	"errors"
	"time"
)

// Remote runners (EMR, EMR Serverless, Kubernetes) start compute that
// outlives the process that started it. Their contract, on top of Runner's:
//
//   - Run is idempotent per Task.RunID. Before starting anything it looks
//     for compute it already started for that run (Task.Remote when the
//     run record has it; otherwise the tag, label or client token carrying
//     the run ID) and follows that instead of starting a second one. A
//     redelivered trigger, a retried call and an adoption by another
//     process therefore never start a second cluster or job.
//   - Run calls NotifyRemote as soon as it knows the compute's id, and
//     NotifyStarted(ctx, 0) once the compute is running the job.
//   - When ctx ends with cause ErrCancelled, or Task.Deadline passes, Run
//     stops the compute (TerminateJobFlows, CancelJobRun, deleting the Job),
//     waits until it is gone and reports the run failed. When ctx ends for
//     any other cause (shutdown, a lost claim) Run returns ErrDetached at
//     once and leaves the compute running: a live process adopts the run
//     (Manager.Recover) and follows it to its end.
//   - Run returns an Outcome only once the compute is gone (terminated).
//     Outputs are not the runner's business: the caller lists what the job
//     committed.
//
// Every Remote runner's tests run job/runnertest, which checks this
// contract against the runner's fake service.
type Remote interface {
	Runner
	// RemoteName is the runner's name as written in a spec ("emr",
	// "emr-serverless", "kubernetes").
	RemoteName() string
}

// ErrCancelled is the cancellation cause (context.WithCancelCause) of a run
// a user cancelled: every runner stops the run's compute.
var ErrCancelled = errors.New("job run cancelled")

// ErrDetached is what a Remote runner's Run returns when its ctx ended for
// another cause than ErrCancelled: sluice stopped following the run, whose
// compute keeps running until a live process adopts it.
var ErrDetached = errors.New("stopped following the remote run; its compute keeps running and a live sluice process adopts it")

// Spark is the application of a run of kind "spark", ready to submit:
// every location is a full URI (s3://bucket/key).
type Spark struct {
	// EntryPoint is the PySpark script or application JAR.
	EntryPoint string `json:"entry_point"`
	// Class is the main class of a JAR application; "" for PySpark.
	Class string `json:"class,omitempty"`
	// Args are the application's arguments, in order: the job's own
	// arguments followed by --run-id, --group, --inputs (a manifest of
	// the input keys and ETags) and --output.
	Args []string `json:"args,omitempty"`
	// Conf is Spark configuration, passed as --conf key=value.
	Conf map[string]string `json:"conf,omitempty"`
}

// The environment of `sluice job exec` without a task file (a Kubernetes
// pod): EnvTask holds the task's JSON; the result JSON ({"outputs": [...],
// "error": "..."}) is written to the file EnvResultFile names.
const (
	EnvTask       = "SLUICE_TASK"
	EnvResultFile = "SLUICE_RESULT_FILE"
)

// Result is what `sluice job exec` reports: the keys the job committed
// and why it failed ("" on success). The error comes first in its JSON, so
// a result cut short (a pod's termination message keeps 4 KiB) keeps it.
type Result struct {
	Error   string   `json:"error,omitempty"`
	Outputs []string `json:"outputs"`
}

type remoteKey struct{}

// NotifyRemote tells the Manager the id of the remote compute of the run
// ctx belongs to (like "emr:j-2AXXXXXXGAPLF"), recorded as Run.Remote so
// that `sluice jobs` shows it and an adopting process finds it. Remote
// runners call it from inside Run as soon as they know the id; it is a
// no-op for a ctx not from a Manager.
func NotifyRemote(ctx context.Context, id string) {
	if f, ok := ctx.Value(remoteKey{}).(func(string)); ok {
		f(id)
	}
}

func withRemote(ctx context.Context, f func(string)) context.Context {
	return context.WithValue(ctx, remoteKey{}, f)
}

// WithNotify returns ctx carrying started and remote as the callbacks
// NotifyStarted and NotifyRemote call, the way a Manager's run ctx carries
// its own; a nil callback leaves that one as ctx has it. It is for runner
// tests (job/runnertest) and custom drivers that run a Runner without a
// Manager and want to see what it reports.
func WithNotify(ctx context.Context, started func(pid int), remote func(id string)) context.Context {
	if started != nil {
		ctx = withStarted(ctx, started)
	}
	if remote != nil {
		ctx = withRemote(ctx, remote)
	}
	return ctx
}

// deadline returns when a run created at created with timeout must end
// (zero: never).
func deadline(created time.Time, timeout time.Duration) time.Time {
	if timeout <= 0 {
		return time.Time{}
	}
	return created.Add(timeout)
}
