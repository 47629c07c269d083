package job

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluicehq/sluice/lease"
)

// Holder is this Manager's identity in leases.
func (m *Manager) Holder() string { return m.holder }

// hold records a claim this Manager now holds and makes sure the heartbeat
// renews it.
func (m *Manager) hold(k groupKey, l lease.Lease) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leases[k] = &held{l: l}
	if !m.beating {
		m.beating = true
		go m.heartbeat()
	}
}

// unhold forgets the claim of k and releases its lease (unless it was
// lost). Call it after the run's final write.
func (m *Manager) unhold(ctx context.Context, k groupKey) {
	m.mu.Lock()
	h := m.leases[k]
	delete(m.leases, k)
	m.mu.Unlock()
	if h == nil || h.lost {
		return
	}
	if err := m.st.Release(context.WithoutCancel(ctx), h.l); err != nil {
		m.log.Warn("job claim not released; it expires by itself", "lease", h.l.Name, "err", err)
	}
}

// claimOf returns the current lease of k and whether it was lost.
func (m *Manager) claimOf(k groupKey) (lease.Lease, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.leases[k]
	if h == nil {
		return lease.Lease{}, true
	}
	return h.l, h.lost
}

// running attaches the run's id and cancel function to k's claim; it
// reports false (and cancels) when the claim is already lost.
func (m *Manager) running(k groupKey, runID string, cancel context.CancelCauseFunc) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.leases[k]
	if h == nil || h.lost {
		cancel(errClaimLost)
		return false
	}
	h.runID, h.cancel = runID, cancel
	return true
}

// loseClaim marks k's claim lost and cancels its run's compute; nothing
// more is written for the run.
func (m *Manager) loseClaim(k groupKey, why error) {
	m.mu.Lock()
	h := m.leases[k]
	if h == nil || h.lost {
		m.mu.Unlock()
		return
	}
	h.lost = true
	cancel, runID, l := h.cancel, h.runID, h.l
	m.mu.Unlock()
	if cancel != nil {
		cancel(errClaimLost)
	}
	m.log.Error("claim lost: the run is stopped and nothing more is recorded for it", "job", k.rule, "group", k.group,
		"run", runID, "lease", l.Name, "epoch", l.Epoch, "err", why)
}

// heartbeat renews every held lease every TTL/3 until none is held.
func (m *Manager) heartbeat() {
	t := time.NewTicker(m.ttl / 3)
	defer t.Stop()
	for range t.C {
		m.mu.Lock()
		if len(m.leases) == 0 {
			m.beating = false
			m.mu.Unlock()
			return
		}
		todo := map[groupKey]lease.Lease{}
		for k, h := range m.leases {
			if !h.lost {
				todo[k] = h.l
			}
		}
		m.mu.Unlock()
		for k, l := range todo {
			ctx, cancel := context.WithTimeout(context.Background(), m.ttl/3)
			nl, err := m.st.Renew(ctx, l, m.ttl)
			if err == nil {
				m.checkCancel(ctx, k)
			}
			cancel()
			switch {
			case errors.Is(err, lease.ErrLost):
				m.loseClaim(k, err)
			case err != nil:
				m.log.Warn("job claim not renewed; trying again", "lease", l.Name, "err", err)
			default:
				m.mu.Lock()
				if h := m.leases[k]; h != nil && h.l.Epoch == nl.Epoch {
					h.l = nl
				}
				m.mu.Unlock()
			}
		}
	}
}

// CancelKey is the state setting that asks whichever process follows run
// runID to cancel it (`sluice jobs cancel`): the holder's heartbeat sees it
// within LeaseTTL/3 and cancels the run with cause ErrCancelled, which stops
// its compute (the process group, cluster, job run or Job).
func CancelKey(runID string) string { return "job-cancel/" + runID }

// settings is the part of the state that holds cancel requests.
type settings interface {
	Setting(ctx context.Context, k string) (string, error)
}

// checkCancel cancels the run of claim k if a cancel was requested for it.
func (m *Manager) checkCancel(ctx context.Context, k groupKey) {
	st, ok := m.st.(settings)
	if !ok {
		return
	}
	m.mu.Lock()
	h := m.leases[k]
	var runID string
	if h != nil && !h.lost && !h.cancelled && h.cancel != nil {
		runID = h.runID
	}
	m.mu.Unlock()
	if runID == "" {
		return
	}
	v, err := st.Setting(ctx, CancelKey(runID))
	if err != nil || v == "" {
		return
	}
	m.mu.Lock()
	if h := m.leases[k]; h != nil && h.runID == runID && !h.cancelled {
		h.cancelled = true
		h.cancel(ErrCancelled)
		m.log.Warn("job run cancelled on request", "job", k.rule, "group", k.group, "run", runID, "requested", v)
	}
	m.mu.Unlock()
}

// fenced handles the error of a fenced write of run: a lost claim is
// recorded (and cancels the run). It reports whether the claim was lost.
func (m *Manager) fenced(run Run, err error) bool {
	if errors.Is(err, lease.ErrLost) {
		m.loseClaim(groupKey{run.Rule, run.Group}, err)
		return true
	}
	return false
}

// recoverRun fails run r if its claim is gone: its lease expired (the
// worker stopped heartbeating) or its holder is a dead process on this
// host. It takes the lease itself (a new epoch) for the write and releases
// it after. A run whose holder is alive and current is left alone. A run of
// a job whose runner is Remote is adopted instead (adopt), and adopted
// reports that the run's goroutine now owns the claim and the group's
// in-flight slot.
func (m *Manager) recoverRun(ctx context.Context, r Run) (adopted bool, err error) {
	name := LeaseName(r.Rule, r.Group)
	l, _, err := lease.AcquireOrBreakDead(ctx, m.st, name, m.holder, m.ttl)
	if errors.Is(err, lease.ErrHeld) {
		return false, nil // a live holder's run
	}
	if err != nil {
		return false, err
	}
	defer func() {
		if adopted {
			return
		}
		if err := m.st.Release(context.WithoutCancel(ctx), l); err != nil {
			m.log.Warn("job claim not released; it expires by itself", "lease", name, "err", err)
		}
	}()
	cur, err := m.st.GetRun(ctx, r.ID)
	if err != nil {
		return false, err
	}
	if cur.State != Starting && cur.State != Running {
		return false, nil // it ended meanwhile
	}
	return m.takeOver(ctx, cur, l)
}

// adoptable reports whether run r can be adopted by this Manager: its job
// is known and runs on a Remote runner — the one that started r, when r
// records its compute.
func (m *Manager) adoptable(r Run) (*Definition, bool) {
	d := m.byName[r.Rule]
	if d == nil {
		return nil, false
	}
	rm, remote := d.Runner.(Remote)
	if !remote {
		return d, false
	}
	if r.Remote != "" && !strings.HasPrefix(r.Remote, rm.RemoteName()+":") {
		return d, false // started by another runner, before the spec changed
	}
	return d, true
}

// takeOver handles run r, active but left by its claimer, under claim l
// (held by this Manager): a remote run is adopted (adopted is true and the
// run's goroutine owns l and the group's in-flight slot); any other run is
// recorded FAILED "worker lost" and its group requested again (the caller
// still owns l).
func (m *Manager) takeOver(ctx context.Context, r Run, l lease.Lease) (adopted bool, err error) {
	d, ok := m.adoptable(r)
	if ok {
		return m.adopt(ctx, d, r, l)
	}
	was, worker := r.State, r.Claimer
	if worker == "" {
		worker = "an earlier sluice process"
	}
	now := m.now()
	r.State, r.ExitCode = Failed, -1
	r.Error = fmt.Sprintf("worker lost: %s stopped heartbeating while the run was %s; failed by %s at %s, group requested again",
		worker, was, m.holder, now.UTC().Format(time.RFC3339))
	if r.Ended.IsZero() {
		r.Ended = now
	}
	r.Terminated = now
	if r.Remote != "" {
		// Not Terminated: nobody saw the compute end.
		r.Terminated = time.Time{}
		r.Error += fmt.Sprintf(" (its remote compute %s was not stopped and may still be running: this process does not run job %s on the runner that started it)", r.Remote, r.Rule)
		m.log.Error("a remote run's job changed runner: the run is failed, but its compute was not stopped", "job", r.Rule, "group", r.Group, "run", r.ID, "remote", r.Remote)
	}
	r.Claimer, r.Epoch = l.Holder, l.Epoch
	var reapErr error
	if d != nil && r.Remote == "" {
		if rp, ok := d.Runner.(Reaper); ok {
			if err := rp.Reap(ctx, r); err != nil {
				r.Terminated = time.Time{}
				r.Error += fmt.Sprintf("; its leftover processes could not be killed: %v", err)
				reapErr = fmt.Errorf("job %s: reap run %s: %w", r.Rule, r.ID, err)
			}
		}
	}
	if err := m.st.RequestRun(ctx, r.Rule, r.Group, now); err != nil {
		return false, errors.Join(reapErr, fmt.Errorf("job %s: recover run %s: request group %s again (the run stays %s for the next recovery): %w", r.Rule, r.ID, r.Group, was, err))
	}
	if err := m.st.UpdateRun(ctx, r); err != nil {
		return false, errors.Join(reapErr, fmt.Errorf("job: recover run %s: %w", r.ID, err))
	}
	m.log.Warn("job run failed: worker lost; group requested again", "job", r.Rule, "group", r.Group, "run", r.ID, "was", was, "worker", worker)
	return false, reapErr
}

// adopt takes over run r of a remote job whose claimer vanished: it records
// the run under claim l (a new epoch) and follows its remote compute from
// a goroutine, as if this Manager had started it. The runner finds the
// compute from r.Remote, or from the run ID it tagged it with, so adoption
// never starts a second cluster or job.
func (m *Manager) adopt(ctx context.Context, d *Definition, r Run, l lease.Lease) (bool, error) {
	was := r.Claimer
	if was == "" {
		was = "an earlier sluice process"
	}
	task, err := d.Task(r.Group, r.Inputs)
	if err != nil {
		return false, fmt.Errorf("job %s: adopt run %s: prepare task: %w", r.Rule, r.ID, err)
	}
	r.Claimer, r.Epoch = l.Holder, l.Epoch
	if err := m.st.UpdateRun(ctx, r); err != nil {
		return false, fmt.Errorf("job %s: adopt run %s: %w", r.Rule, r.ID, err)
	}
	k := groupKey{r.Rule, r.Group}
	m.hold(k, l)
	m.log.Warn("job run adopted: its claimer stopped heartbeating; following its remote compute", "job", r.Rule, "group", r.Group,
		"run", r.ID, "state", r.State, "remote", r.Remote, "was", was, "epoch", l.Epoch)
	m.wg.Add(1)
	go m.execute(ctx, d, r, m.prepare(task, r, l), RunRequest{Rule: r.Rule, Group: r.Group, LastAt: r.Created})
	return true, nil
}

// recoverLost fails (or, for remote jobs, adopts) the STARTING or RUNNING
// runs whose claims are gone (recoverRun), skipping groups this Manager
// runs itself.
func (m *Manager) recoverLost(ctx context.Context) error {
	runs, err := m.st.ListRuns(ctx, RunFilter{States: []State{Starting, Running}})
	if err != nil {
		return fmt.Errorf("job: recover: %w", err)
	}
	var errs []error
	for _, r := range runs {
		k := groupKey{r.Rule, r.Group}
		if !m.claim(k) {
			continue // ours, in flight
		}
		adopted, err := m.recoverRun(ctx, r)
		errs = append(errs, err)
		if !adopted {
			m.release(k)
		}
	}
	return errors.Join(errs...)
}
