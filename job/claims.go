package job

import (
	"context"
	"errors"
	"fmt"
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
// it after. A run whose holder is alive and current is left alone.
func (m *Manager) recoverRun(ctx context.Context, r Run) error {
	name := LeaseName(r.Rule, r.Group)
	l, _, err := lease.AcquireOrBreakDead(ctx, m.st, name, m.holder, m.ttl)
	if errors.Is(err, lease.ErrHeld) {
		return nil // a live holder's run
	}
	if err != nil {
		return err
	}
	defer func() {
		if err := m.st.Release(context.WithoutCancel(ctx), l); err != nil {
			m.log.Warn("job claim not released; it expires by itself", "lease", name, "err", err)
		}
	}()
	cur, err := m.st.GetRun(ctx, r.ID)
	if err != nil {
		return err
	}
	if cur.State != Starting && cur.State != Running {
		return nil // it ended meanwhile
	}
	r = cur
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
	r.Claimer, r.Epoch = l.Holder, l.Epoch
	var reapErr error
	if rp, ok := m.runner.(Reaper); ok {
		if err := rp.Reap(ctx, r); err != nil {
			r.Terminated = time.Time{}
			r.Error += fmt.Sprintf("; its leftover processes could not be killed: %v", err)
			reapErr = fmt.Errorf("job %s: reap run %s: %w", r.Rule, r.ID, err)
		}
	}
	if err := m.st.RequestRun(ctx, r.Rule, r.Group, now); err != nil {
		return errors.Join(reapErr, fmt.Errorf("job %s: recover run %s: request group %s again (the run stays %s for the next recovery): %w", r.Rule, r.ID, r.Group, was, err))
	}
	if err := m.st.UpdateRun(ctx, r); err != nil {
		return errors.Join(reapErr, fmt.Errorf("job: recover run %s: %w", r.ID, err))
	}
	m.log.Warn("job run failed: worker lost; group requested again", "job", r.Rule, "group", r.Group, "run", r.ID, "was", was, "worker", worker)
	return reapErr
}

// recoverLost fails the STARTING or RUNNING runs whose claims are gone
// (recoverRun), skipping groups this Manager runs itself.
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
		errs = append(errs, m.recoverRun(ctx, r))
		m.release(k)
	}
	return errors.Join(errs...)
}
