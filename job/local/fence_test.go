package local

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/lease"
	"github.com/sluicehq/sluice/state"
)

func TestCheckFenceRefusesACommitAfterTheClaimIsLost(t *testing.T) {
	ctx := t.Context()
	defer SetFenceWait(300*time.Millisecond, 10*time.Millisecond)()
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
	run := job.Run{ID: "r", Rule: "j", Group: "g", State: job.Running, Created: time.Now(), Claimer: l.Holder, Epoch: l.Epoch}
	if err := st.CreateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	task := job.Task{RunID: "r", Rule: "j", Group: "g", Fence: &job.Fence{StateURL: url, Lease: l.Name, Holder: l.Holder, Epoch: l.Epoch}}
	if err := CheckFence(ctx, task); err != nil {
		t.Fatalf("CheckFence with a current claim = %v", err)
	}
	if err := CheckFence(ctx, job.Task{RunID: "u"}); err != nil {
		t.Fatalf("CheckFence without a fence = %v", err)
	}

	// The claimer stops and nobody holds the claim: the run waits, then
	// fails transiently.
	if err := st.Release(ctx, l); err != nil {
		t.Fatal(err)
	}
	err = CheckFence(ctx, task)
	if !errors.Is(err, lease.ErrLost) || !fault.IsTransient(err) || !strings.Contains(err.Error(), "no process has held its claim") {
		t.Fatalf("CheckFence while nobody holds the claim = %v; want a transient error", err)
	}

	// Another process adopts the run (a new holder and epoch on the run's
	// record) while the job waits: the job of the run commits.
	adopted := make(chan error, 1)
	go func() {
		time.Sleep(50 * time.Millisecond) // the job is waiting by then; if not, it finds the adoption at once
		nl, err := st.Acquire(ctx, job.LeaseName("j", "g"), "h/2/y", time.Minute)
		if err == nil {
			run.Claimer, run.Epoch = nl.Holder, nl.Epoch
			err = st.UpdateRun(ctx, run)
		}
		adopted <- err
	}()
	if err := CheckFence(ctx, task); err != nil {
		t.Fatalf("CheckFence after an adoption = %v", err)
	}
	if err := <-adopted; err != nil {
		t.Fatal(err)
	}

	// A process that found the claimer gone recorded the run FAILED: the
	// job may not commit, whoever holds the lease.
	run.State, run.Error = job.Failed, "worker lost"
	run.Ended, run.Terminated = time.Now(), time.Now()
	if err := st.UpdateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	err = CheckFence(ctx, task)
	if !errors.Is(err, lease.ErrLost) || fault.IsTransient(err) || !strings.Contains(err.Error(), "recorded FAILED by h/2/y") {
		t.Fatalf("CheckFence after the run was failed = %v; want a permanent ErrLost", err)
	}
}
