package job_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/deadletter"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/lease"
)

// remoteRunner is a fake job.Remote: its compute is an entry in submitted,
// keyed by run ID, that outlives any one Run call. Run starts compute only
// when none exists for the run (as the real runners look up their tags),
// then hands the call to the test like fakeRunner. A ctx cancelled with
// job.ErrCancelled stops the compute; any other cause detaches.
type remoteRunner struct {
	fakeRunner
	mu        sync.Mutex
	submitted map[string]int // run ID → compute started for it
	stopped   map[string]bool
}

func newRemoteRunner() *remoteRunner {
	return &remoteRunner{fakeRunner: fakeRunner{calls: make(chan *call, 10)}, submitted: map[string]int{}, stopped: map[string]bool{}}
}

func (r *remoteRunner) fake() *fakeRunner  { return &r.fakeRunner }
func (r *remoteRunner) RemoteName() string { return "fake" }

func (r *remoteRunner) Run(ctx context.Context, t job.Task) (job.Outcome, error) {
	r.mu.Lock()
	if t.Remote == "" && r.submitted[t.RunID] == 0 {
		r.submitted[t.RunID]++
	}
	r.mu.Unlock()
	job.NotifyRemote(ctx, "fake:"+t.RunID)
	job.NotifyStarted(ctx, 0)
	c := &call{task: t, ctx: ctx, done: make(chan job.Outcome, 1)}
	r.calls <- c
	select {
	case o := <-c.done:
		return o, nil
	case <-ctx.Done():
		if errors.Is(context.Cause(ctx), job.ErrCancelled) {
			r.mu.Lock()
			r.stopped[t.RunID] = true
			r.mu.Unlock()
			return job.Outcome{ExitCode: 1, Err: "cancelled: compute stopped"}, nil
		}
		return job.Outcome{}, job.ErrDetached
	}
}

func (r *remoteRunner) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.submitted[id]
}

var _ job.Remote = (*remoteRunner)(nil)

func TestARemoteRunWhoseClaimerVanishedIsAdoptedNotFailed(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		objs, clk := &objects{objs: map[string]string{}}, &clock{now: time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC)}
		rr := newRemoteRunner()
		b := sharedEnvWith(t, url, objs, clk, time.Minute, rr)
		objs.put("data/d/x.csv", "1")
		ghost, err := b.st.Acquire(b.ctx, job.LeaseName("hydropower", "d"), "elsewhere/1/ghost", 200*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		t0 := clk.Now().Add(-time.Minute)
		lost := job.Run{ID: "lost", Rule: "hydropower", Group: "d", State: job.Running, Created: t0, Started: t0,
			Inputs: inputs("data/d/x.csv", "1"), Claimer: ghost.Holder, Epoch: ghost.Epoch, Remote: "fake:lost"}
		if err := b.st.CreateRun(b.ctx, lost); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the ghost's claim expires", func() bool { return lease.Lost(b.st.Check(b.ctx, ghost)) })
		if err := b.m.Recover(b.ctx); err != nil {
			t.Fatal(err)
		}
		c := b.next()
		if c.task.RunID != "lost" || c.task.Remote != "fake:lost" || !c.task.Created.Equal(t0) || !c.task.Deadline.Equal(t0.Add(time.Hour)) ||
			len(c.task.Inputs) != 1 || c.task.Fence == nil || c.task.Fence.Holder != b.m.Holder() || c.task.Fence.Epoch <= ghost.Epoch {
			t.Fatalf("adopted task = %+v", c.task)
		}
		r, _ := b.st.GetRun(b.ctx, "lost")
		if r.State != job.Running || r.Claimer != b.m.Holder() || r.Epoch <= ghost.Epoch || !r.Started.Equal(t0) {
			t.Fatalf("adopted run record = %+v", r)
		}
		if reqs, _ := b.st.PendingRequests(b.ctx); len(reqs) != 0 {
			t.Fatalf("adoption requested the group again: %+v", reqs)
		}
		got := b.finish(c, job.Outcome{ComputeSeconds: 7})
		if got.ID != "lost" || got.State != job.Succeeded || got.Terminated.IsZero() || got.ComputeSeconds != 7 || got.Remote != "fake:lost" {
			t.Fatalf("adopted run ended as %+v", got)
		}
		if n := rr.count("lost"); n != 0 {
			t.Fatalf("adoption started %d new computes; want 0", n)
		}
		if len(b.runs()) != 1 {
			t.Fatalf("runs = %+v; want only the adopted one", b.runs())
		}
	})
}

func TestShutdownLeavesARemoteRunRunningAndAnotherManagerAdoptsIt(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		objs, clk := &objects{objs: map[string]string{}}, &clock{now: time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC)}
		ra, rb := newRemoteRunner(), newRemoteRunner()
		a := sharedEnvWith(t, url, objs, clk, time.Minute, ra)
		b := sharedEnvWith(t, url, objs, clk, time.Minute, rb)
		actx, stop := context.WithCancel(a.ctx)
		a.ctx = actx
		a.upload("data/d/x.csv", "1")
		clk.Advance(settle)
		a.step(1)
		c := a.next()
		id := c.task.RunID
		if ra.count(id) != 1 || !c.task.Deadline.Equal(c.task.Created.Add(time.Hour)) {
			t.Fatalf("first run: submitted %d, task %+v", ra.count(id), c.task)
		}
		stop() // a graceful shutdown of a's process
		a.m.Wait()
		r, _ := b.st.GetRun(b.ctx, id)
		if r.State != job.Running || r.Remote != "fake:"+id || !r.Terminated.IsZero() {
			t.Fatalf("after a's shutdown the run is %+v; want it RUNNING on its remote compute", r)
		}
		if err := b.m.Recover(b.ctx); err != nil { // the claim was released: no wait for expiry
			t.Fatal(err)
		}
		c = b.next()
		if c.task.RunID != id || c.task.Remote != "fake:"+id {
			t.Fatalf("adopted task = %+v", c.task)
		}
		if got := b.finish(c, job.Outcome{}); got.ID != id || got.State != job.Succeeded {
			t.Fatalf("adopted run ended as %+v", got)
		}
		if rb.count(id) != 0 || len(b.runs()) != 1 {
			t.Fatalf("adoption submitted %d computes; runs %+v", rb.count(id), b.runs())
		}
	})
}

func TestACancelRequestStopsTheRunsComputeAndDeadLettersTheGroup(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		objs, clk := &objects{objs: map[string]string{}}, &clock{now: time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC)}
		rr := newRemoteRunner()
		a := sharedEnvWith(t, url, objs, clk, 3*time.Second, rr) // heartbeat every second
		a.upload("data/d/x.csv", "1")
		clk.Advance(settle)
		a.step(1)
		c := a.next()
		id := c.task.RunID
		st := a.st
		if err := st.SetSetting(a.ctx, job.CancelKey(id), "by test"); err != nil {
			t.Fatal(err)
		}
		var r job.Run
		select {
		case r = <-a.done:
		case <-time.After(30 * time.Second):
			t.Fatal("the cancelled run was not recorded within 30s")
		}
		a.m.Wait()
		if r.State != job.Failed || r.Error != "cancelled: compute stopped" || !rr.stopped[id] {
			t.Fatalf("cancelled run = %+v (compute stopped %v)", r, rr.stopped[id])
		}
		dl, dead, err := st.DeadLetterFor(a.ctx, job.Target("hydropower"), "d", "")
		if err != nil || !dead || dl.Kind != deadletter.Job {
			t.Fatalf("dead letter = %+v, %v, %v; want the cancelled group dead-lettered", dl, dead, err)
		}
		if reqs, _ := st.PendingRequests(a.ctx); len(reqs) != 0 {
			t.Fatalf("a cancelled run was requested again: %+v", reqs)
		}
		if v, err := st.Setting(a.ctx, job.CancelKey(id)); v != "" || err != nil {
			t.Fatalf("the cancel request is left in the state: %q, %v", v, err)
		}
	})
}

func TestASettledRequestForAGroupWhoseRemoteRunWasLeftAdoptsItBeforeStartingAnother(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		objs, clk := &objects{objs: map[string]string{}}, &clock{now: time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC)}
		ra, rb := newRemoteRunner(), newRemoteRunner()
		a := sharedEnvWith(t, url, objs, clk, time.Minute, ra)
		b := sharedEnvWith(t, url, objs, clk, time.Minute, rb)
		actx, stop := context.WithCancel(a.ctx)
		a.ctx = actx
		a.upload("data/d/x.csv", "1")
		clk.Advance(settle)
		a.step(1)
		first := a.next().task.RunID
		a.upload("data/d/y.csv", "1") // a second file while the run works
		stop()                        // a stops; its run's compute keeps running
		a.m.Wait()
		clk.Advance(settle)
		// b's scheduler reaches the settled request before any recovery:
		// it adopts the running run instead of starting a second compute.
		b.step(1)
		c := b.next()
		if c.task.RunID != first || c.task.Remote != "fake:"+first || rb.count(first) != 0 {
			t.Fatalf("b's first run = %+v (submitted %d); want the adopted run %s", c.task, rb.count(first), first)
		}
		if reqs, _ := b.st.PendingRequests(b.ctx); len(reqs) != 1 {
			t.Fatalf("pending requests %+v; want the follow-up kept", reqs)
		}
		b.finish(c, job.Outcome{})
		// Then the follow-up runs, with both files.
		b.step(1)
		c = b.next()
		if c.task.RunID == first || len(c.task.Inputs) != 2 {
			t.Fatalf("follow-up run = %+v; want a new run with both inputs", c.task)
		}
		if got := b.finish(c, job.Outcome{}); got.State != job.Succeeded {
			t.Fatalf("follow-up ended as %+v", got)
		}
	})
}
