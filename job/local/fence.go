package local

import (
	"context"
	"fmt"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/lease"
	"github.com/sluicehq/sluice/state"
)

// ErrClaimLost is returned (wrapped) by CheckFence when the run's claim is
// no longer current: another process may be running the group, so this
// run must commit nothing.
var ErrClaimLost = lease.ErrLost

// CheckFence checks, in the state the task names, that the run's claim
// (t.Fence) is still current; nil for a task without a fence. The job
// process calls it right before it commits. The error for a lost claim is
// permanent: retrying cannot bring the claim back.
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
	if err := st.Check(ctx, lease.Lease{Name: f.Lease, Holder: f.Holder, Epoch: f.Epoch}); err != nil {
		if lease.Lost(err) {
			return fault.Permanent(fmt.Errorf("run %s: claim lost before commit, nothing committed (%s at epoch %d no longer holds %s): %w",
				t.RunID, f.Holder, f.Epoch, f.Lease, err))
		}
		return fmt.Errorf("run %s: check its claim: %w", t.RunID, err)
	}
	return nil
}
