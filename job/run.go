package job

import (
	"context"
	"errors"
	"time"

	"github.com/sluicehq/sluice/deadletter"
	"github.com/sluicehq/sluice/lease"
)

// State is a run's lifecycle state, as stored. TERMINATED is not a state:
// it is Run.Terminated, set once the run's compute is gone.
type State string

// Run states.
const (
	Starting  State = "STARTING"
	Running   State = "RUNNING"
	Succeeded State = "SUCCEEDED"
	Failed    State = "FAILED"
)

// ErrRunNotFound is returned for a run id that has no record.
var ErrRunNotFound = errors.New("no such job run")

// ErrBadTransition is returned by UpdateRun for a state change the run
// lifecycle does not allow (for example SUCCEEDED back to RUNNING).
var ErrBadTransition = errors.New("job run state change not allowed")

// Input is one input object version of a run: key and ETag.
type Input struct {
	Key  string `json:"key"`
	ETag string `json:"etag"`
}

// Run is one job run's record.
type Run struct {
	ID, Rule, Group string
	State           State
	Inputs          []Input
	Outputs         []string
	ExitCode        int
	Error           string
	Created         time.Time
	Started         time.Time
	Ended           time.Time
	Terminated      time.Time
	// ComputeSeconds is the instance-seconds the run's compute used, as
	// its runner measured them once the compute was gone (Outcome): the
	// job process's wall time (local), the pod's (Kubernetes), the
	// cluster's lifetime to the second times Instances (EMR), the billed
	// execution time (EMR Serverless). 0 for a run whose compute was lost
	// (failed "worker lost"). `sluice jobs RUN` shows it and `sluice jobs
	// --cost` sums it (Usages).
	ComputeSeconds float64
	// Instances is how many machines the run's compute had (EMR: the
	// instance groups' counts or the fleets' target capacities); 1 for a
	// process, a pod or a job run; 0 in runs recorded before sluice kept it
	// (read as 1).
	Instances int
	LogKey    string
	PID       int
	// Claimer and Epoch are the claim the run was written under: the
	// holder and epoch of lease LeaseName(Rule, Group). A run with a
	// non-zero Epoch is only written while that claim is current.
	Claimer string
	Epoch   int64
	// Remote is the id of the run's remote compute ("emr:j-…",
	// "emr-serverless:<application>/<job run>", "kubernetes:<ns>/<job>");
	// "" for local runs.
	Remote string
}

// LeaseName is the lease that claims runs of (rule, group):
// "job/<rule>/<group>".
func LeaseName(rule, group string) string { return "job/" + rule + "/" + group }

// RunFilter selects runs for ListRuns; zero fields select everything.
type RunFilter struct {
	Rule, Group string
	States      []State
	Limit       int // 0 means no limit
}

// RunRequest is a pending request for a run of (Rule, Group): events
// arrived between FirstAt and LastAt and no run has taken them yet.
type RunRequest struct {
	Rule, Group     string
	FirstAt, LastAt time.Time
	// NotBefore delays a retry after a transient failure (zero: none).
	NotBefore time.Time
	// Attempts counts the runs of this request that failed transiently,
	// the first of them at FirstFailure.
	Attempts     int
	FirstFailure time.Time
}

// transitions lists the allowed state changes; a state may always be
// rewritten to itself (to add Terminated, a log key, ...).
var transitions = map[State][]State{
	Starting:  {Running, Succeeded, Failed},
	Running:   {Succeeded, Failed},
	Succeeded: nil,
	Failed:    nil,
}

// ValidState reports whether s is a run state.
func ValidState(s State) bool { _, ok := transitions[s]; return ok }

// CanTransition reports whether a run may go from state from to state to:
// STARTING → RUNNING → SUCCEEDED | FAILED (STARTING may also end
// directly), and any state to itself.
func CanTransition(from, to State) bool {
	if from == to {
		return ValidState(to)
	}
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Store keeps job runs and run requests (implemented by the state
// backends; state/statetest is the conformance suite).
type Store interface {
	// CreateRun inserts a new run; its ID must be new. With r.Epoch != 0
	// it writes only while r's claim is current (else lease.ErrLost).
	CreateRun(ctx context.Context, r Run) error
	// UpdateRun rewrites a run's mutable fields (state, outputs, exit code,
	// error, times, compute seconds, log key, pid, claim) in one
	// transaction that checks the state change (CanTransition) and, with
	// r.Epoch != 0, that lease LeaseName(r.Rule, r.Group) is still held by
	// (r.Claimer, r.Epoch) and unexpired. It returns an error wrapping
	// ErrRunNotFound, ErrBadTransition or lease.ErrLost when it writes
	// nothing.
	UpdateRun(ctx context.Context, r Run) error
	// GetRun returns one run, or an error wrapping ErrRunNotFound.
	GetRun(ctx context.Context, id string) (Run, error)
	// ListRuns returns the runs f selects, newest first.
	ListRuns(ctx context.Context, f RunFilter) ([]Run, error)
	// CountRuns counts rule's runs by state ("" = every job's), in one
	// query.
	CountRuns(ctx context.Context, rule string) (map[State]int, error)
	// RequestRun records durably that an event asks for a run of (rule,
	// grp) at time at: it inserts the request or moves its LastAt forward
	// (never back).
	RequestRun(ctx context.Context, rule, grp string, at time.Time) error
	// PendingRequests returns every pending request, oldest LastAt first.
	PendingRequests(ctx context.Context) ([]RunRequest, error)
	// RetryRequest keeps (or puts back) the request of (rule, grp) with its
	// attempts, first failure and the time before which it must not run.
	RetryRequest(ctx context.Context, rule, grp string, lastAt, notBefore, firstFailure time.Time, attempts int) error
	// ResetRetry forgets the retries of (rule, grp)'s pending request.
	ResetRetry(ctx context.Context, rule, grp string) error
	// ClearRequest deletes the request for (rule, grp) if its LastAt is not
	// after upTo, and reports whether it did.
	ClearRequest(ctx context.Context, rule, grp string, upTo time.Time) (bool, error)
}

// StateStore is everything a Manager keeps in the shared state: runs and
// requests, dead letters and leases.
type StateStore interface {
	Store
	deadletter.Store
	lease.Store
}
