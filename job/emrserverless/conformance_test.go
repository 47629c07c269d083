package emrserverless_test

import (
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/job"
	emrs "github.com/sluicehq/sluice/job/emrserverless"
	"github.com/sluicehq/sluice/job/emrserverless/emrsfake"
	"github.com/sluicehq/sluice/job/runnertest"
)

func TestConformance(t *testing.T) {
	h := &harness{clock: &clock{now: t0}, fail: map[string]string{}}
	h.fake = emrsfake.Start(t, &emrsfake.Options{Applications: []string{app}, Script: []emrsfake.Step{{State: emrsfake.Submitted}}, Clock: h.clock.Now})
	runnertest.Run(t, h)
}

// harness runs the conformance suite against emrsfake. Job runs stay
// SUBMITTED until Start sets them RUNNING, and RUNNING until End sets them
// SUCCESS, or FAILED with the suite's reason as stateDetails; CancelJobRun
// takes them through CANCELLING to CANCELLED.
type harness struct {
	fake  *emrsfake.Server
	clock *clock
	mu    sync.Mutex
	fail  map[string]string // run ID → why its job run fails ("": it succeeds)
}

func (h *harness) Runner(t *testing.T) job.Remote {
	r := newRunner(h.fake)
	r.Clock = h.clock.Now
	return r
}

func (h *harness) Kinds() []string { return []string{job.KindSpark} }

func (h *harness) Task(t *testing.T, runID, fail string) job.Task {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fail[runID] = fail
	task := sparkTask(runID)
	task.Created = h.clock.Now()
	return task
}

// jobRuns returns the job runs tagged with runID.
func (h *harness) jobRuns(runID string) []emrsfake.JobRun {
	var out []emrsfake.JobRun
	for _, jr := range h.fake.JobRuns() {
		if jr.Tags[emrs.TagRunID] == runID {
			out = append(out, jr)
		}
	}
	return out
}

func (h *harness) Computes(runID string) int { return len(h.jobRuns(runID)) }

func (h *harness) Live(runID string) bool {
	for _, jr := range h.jobRuns(runID) {
		if !emrsfake.Terminal(jr.State) {
			return true
		}
	}
	return false
}

// jobRun waits until run runID has a job run and returns it.
func (h *harness) jobRun(t *testing.T, runID string) emrsfake.JobRun {
	t.Helper()
	waitFor(t, h.fake, "run "+runID+" has a job run", func() bool { return len(h.jobRuns(runID)) > 0 })
	return h.jobRuns(runID)[0]
}

func (h *harness) set(t *testing.T, runID string, st emrsfake.Step) {
	t.Helper()
	if err := h.fake.Set(app, h.jobRun(t, runID).ID, st); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) Start(t *testing.T, runID string) {
	h.set(t, runID, emrsfake.Step{State: emrsfake.Running})
}

func (h *harness) AwaitFollowing(t *testing.T, runID string) {
	// A GetJobRun is counted as it reads the state: the first counted
	// after this saw the present, the second was sent after the runner
	// acted on it.
	n := h.jobRun(t, runID).Gets
	waitFor(t, h.fake, "the runner looks at the job run of run "+runID, func() bool { return h.jobRuns(runID)[0].Gets >= n+2 })
}

func (h *harness) End(t *testing.T, runID string) {
	h.mu.Lock()
	reason := h.fail[runID]
	h.mu.Unlock()
	if reason == "" {
		h.set(t, runID, emrsfake.Step{State: emrsfake.Success})
	} else {
		h.set(t, runID, emrsfake.Step{State: emrsfake.Failed, Details: reason})
	}
}

func (h *harness) Advance(d time.Duration) { h.clock.Set(h.clock.Now().Add(d)) }
