package local

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/lease"
	"github.com/sluicehq/sluice/state"
)

// ErrClaimLost is returned (wrapped) by CheckFence when the run's claim is
// no longer current: another process may be running the group, so this
// run must commit nothing.
var ErrClaimLost = lease.ErrLost

// How long CheckFence waits for a process to hold the claim of a run that
// is still active but whose claim nobody holds (its claimer stopped or
// died, and no process has adopted the run yet), and how often it looks.
var (
	fenceWait = 2 * time.Minute
	fencePoll = time.Second
)

// CheckFence checks, in the state the task names, that the run may still
// commit; nil for a task without a fence. The job process calls it right
// before it commits. The run may commit while its record is STARTING or
// RUNNING and the lease t.Fence names is held, unexpired, by the claim the
// record was last written under — the process that started the run, or
// one that adopted it since (a remote run's compute outlives its claimer,
// so its claim may move while it works). A run recorded as ended (by the
// recovery of a process that found its claimer gone) may not commit: the
// error is permanent, since retrying cannot bring the claim back. While
// the run is active but its claim is held by nobody, CheckFence waits up
// to two minutes for an adoption; then it fails transiently (exit 75), so
// the run is retried rather than dead-lettered.
func CheckFence(ctx context.Context, t job.Task) error {
	f := t.Fence
	if f == nil {
		return nil
	}
	// Not OpenReadOnly: its fallback for a full disk reads a SQLite file
	// without its write-ahead log, which may miss the latest lease change.
	st, err := state.Open(ctx, f.StateURL, "")
	if err != nil {
		return fmt.Errorf("run %s: check its claim: %w", t.RunID, err)
	}
	defer st.Close()
	waited := time.Duration(0)
	for {
		r, err := st.GetRun(ctx, t.RunID)
		if errors.Is(err, job.ErrRunNotFound) {
			return fault.Permanent(fmt.Errorf("run %s: claim lost before commit, nothing committed (the run has no record): %w", t.RunID, lease.ErrLost))
		}
		if err != nil {
			return fmt.Errorf("run %s: check its claim: %w", t.RunID, err)
		}
		if r.State != job.Starting && r.State != job.Running {
			return fault.Permanent(fmt.Errorf("run %s: claim lost before commit, nothing committed (the run was recorded %s by %s at epoch %d: %s): %w",
				t.RunID, r.State, r.Claimer, r.Epoch, r.Error, lease.ErrLost))
		}
		err = st.Check(ctx, lease.Lease{Name: f.Lease, Holder: r.Claimer, Epoch: r.Epoch})
		if err == nil {
			return nil
		}
		if !lease.Lost(err) {
			return fmt.Errorf("run %s: check its claim: %w", t.RunID, err)
		}
		if waited >= fenceWait {
			return fmt.Errorf("run %s: nothing committed: no process has held its claim (%s, last %s at epoch %d) for %s; the run is retried: %w",
				t.RunID, f.Lease, r.Claimer, r.Epoch, fenceWait, err)
		}
		if err := fault.Sleep(ctx, fencePoll); err != nil {
			return err
		}
		waited += fencePoll
	}
}
