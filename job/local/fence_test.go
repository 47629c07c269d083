package local

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/lease"
	"github.com/sluicehq/sluice/state"
)

func TestCheckFenceRefusesACommitAfterTheClaimIsLost(t *testing.T) {
	ctx := t.Context()
	url := "sqlite://" + filepath.Join(t.TempDir(), "state.db")
	st, err := state.Open(ctx, url, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l, err := st.Acquire(ctx, job.LeaseName("j", "g"), "h/1/x", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	task := job.Task{RunID: "r", Rule: "j", Group: "g", Fence: &job.Fence{StateURL: url, Lease: l.Name, Holder: l.Holder, Epoch: l.Epoch}}
	if err := CheckFence(ctx, task); err != nil {
		t.Fatalf("CheckFence with a current claim = %v", err)
	}
	if err := CheckFence(ctx, job.Task{RunID: "u"}); err != nil {
		t.Fatalf("CheckFence without a fence = %v", err)
	}
	if _, err := st.Break(ctx, l); err != nil {
		t.Fatal(err)
	}
	err = CheckFence(ctx, task)
	if !errors.Is(err, lease.ErrLost) || fault.IsTransient(err) {
		t.Fatalf("CheckFence after the claim was broken = %v; want a permanent ErrLost", err)
	}
}
