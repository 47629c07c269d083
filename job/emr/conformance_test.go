package emr_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/job/emr/emrfake"
	"github.com/sluicehq/sluice/job/runnertest"
)

func TestConformance(t *testing.T) {
	runnertest.Run(t, &harness{fake: emrfake.Start(t), clock: newClock()})
}

// harness runs the conformance suite against emrfake. Task sets the script
// of the next clusters (the suite runs its subtests one at a time):
// emrfake.Succeeds or StepFails with the suite's reason, manual, so that a
// cluster stays STARTING until Start, RUNNING with its step running until
// End, and then goes through the script's end.
type harness struct {
	fake  *emrfake.Server
	clock *clock
}

func (h *harness) Runner(t *testing.T) job.Remote {
	r := newRunner(h.fake, minimalConfig())
	r.PollInterval, r.Clock = time.Millisecond, h.clock.Now
	return r
}

func (h *harness) Kinds() []string { return []string{job.KindSpark} }

func (h *harness) Task(t *testing.T, runID, fail string) job.Task {
	sc := emrfake.Succeeds()
	if fail != "" {
		sc = emrfake.StepFails(emrfake.FailureDetails{Reason: "Unknown Error.", Message: fail})
	}
	sc.Manual = true
	h.fake.SetScript(sc)
	task := sparkTask()
	task.RunID, task.Created = runID, h.clock.Now()
	return task
}

// clusters returns the ids of the clusters of run runID: every RunJobFlow
// of the suite succeeds, creating the clusters in the order of the calls.
func (h *harness) clusters(runID string) []string {
	var ids []string
	all := h.fake.Clusters()
	for i, in := range h.fake.RunJobFlows() {
		if i < len(all) && strings.HasSuffix(in.Name, "-"+runID) {
			ids = append(ids, all[i])
		}
	}
	return ids
}

func (h *harness) Computes(runID string) int { return len(h.clusters(runID)) }

func (h *harness) Live(runID string) bool {
	for _, id := range h.clusters(runID) {
		if s, _ := h.fake.State(id); s != emrfake.Terminated && s != emrfake.TerminatedWithErrors {
			return true
		}
	}
	return false
}

// cluster waits until run runID has a cluster and returns its id.
func (h *harness) cluster(t *testing.T, runID string) string {
	t.Helper()
	if err := h.fake.WaitUntil(deadline(t), func() bool { return len(h.clusters(runID)) > 0 }); err != nil {
		t.Fatalf("no cluster for run %s: %v", runID, err)
	}
	return h.clusters(runID)[0]
}

func (h *harness) Start(t *testing.T, runID string) {
	t.Helper()
	id := h.cluster(t, runID)
	for s, _ := h.fake.State(id); s != emrfake.Running; s, _ = h.fake.State(id) {
		if !h.fake.Advance(id) {
			t.Fatalf("cluster %s of run %s is %s and cannot get to RUNNING", id, runID, s)
		}
	}
}

func (h *harness) AwaitFollowing(t *testing.T, runID string) {
	t.Helper()
	h.cluster(t, runID)
	// A DescribeCluster is counted once answered: the first counted after
	// this may have been answered before, the second was not, and the
	// third was sent after the runner acted on the second.
	if err := h.fake.WaitCalls(deadline(t), "DescribeCluster", h.fake.Calls("DescribeCluster")+3); err != nil {
		t.Fatalf("the runner does not look at the cluster of run %s: %v", runID, err)
	}
}

func (h *harness) End(t *testing.T, runID string) {
	t.Helper()
	for id := h.cluster(t, runID); h.fake.Advance(id); {
	}
}

func (h *harness) Advance(d time.Duration) { h.clock.Advance(d) }
