package kubernetes_test

import (
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stesting "k8s.io/client-go/testing"

	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/job/kubernetes"
	"github.com/sluicehq/sluice/job/runnertest"
)

func TestConformance(t *testing.T) {
	runnertest.Run(t, &harness{c: newCluster(t), fail: map[string]string{}})
}

// harness runs the conformance suite against the fake cluster, playing the
// Job controller and the kubelet: a run's Job has no pod until Start
// creates it running; End ends the pod, with exit code 0, or 1 and the
// suite's reason as the error of the result in its termination message
// (where `sluice job exec` reports it), then sets the Job Complete or
// Failed. Deleting a Job deletes its pods (newCluster).
type harness struct {
	c    *cluster
	mu   sync.Mutex
	fail map[string]string // run ID → why its job fails ("": it succeeds)
}

// on is the harness's cluster failing t (a subtest) when a wait times out.
func (h *harness) on(t *testing.T) *cluster { c := *h.c; c.t = t; return &c }

func (h *harness) Runner(t *testing.T) job.Remote { return h.c.runner() }

func (h *harness) Kinds() []string { return []string{job.KindCurate, job.KindCommand} }

func (h *harness) Task(t *testing.T, runID, fail string) job.Task {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fail[runID] = fail
	tk := task(runID)
	tk.Created = h.c.clock.Now()
	return tk
}

// Computes counts the Creates of Jobs labelled with the run (one refused
// as AlreadyExists too): pods are made by the harness, not through the
// clientset.
func (h *harness) Computes(runID string) int {
	n := 0
	for _, a := range h.c.cs.Actions() {
		if cr, ok := a.(k8stesting.CreateAction); ok && cr.GetObject().(metav1.Object).GetLabels()[kubernetes.LabelRunID] == runID {
			n++
		}
	}
	return n
}

func (h *harness) Live(runID string) bool {
	if obj, err := h.c.cs.Tracker().Get(jobsGVR, ns, kubernetes.JobName(runID)); err == nil {
		if j := obj.(*batchv1.Job); !slices.ContainsFunc(j.Status.Conditions, func(c batchv1.JobCondition) bool {
			return (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue
		}) {
			return true
		}
	}
	list, err := h.c.cs.Tracker().List(podsGVR, podsGVK, ns)
	return err != nil || slices.ContainsFunc(list.(*corev1.PodList).Items, func(p corev1.Pod) bool {
		return p.Labels[kubernetes.LabelRunID] == runID && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
	})
}

func (h *harness) Start(t *testing.T, runID string) {
	c := h.on(t)
	c.pod(c.job(runID), corev1.PodRunning, running(c.clock.Now()))
}

func (h *harness) AwaitFollowing(t *testing.T, runID string) {
	c := h.on(t)
	c.job(runID)
	c.polled()
}

func (h *harness) End(t *testing.T, runID string) {
	c := h.on(t)
	j, t0 := c.job(runID), c.clock.Now()
	h.mu.Lock()
	reason := h.fail[runID]
	h.mu.Unlock()
	if reason == "" {
		c.pod(j, corev1.PodSucceeded, terminated("Completed", 0, "", t0, t0.Add(time.Minute)))
		c.condition(runID, batchv1.JobComplete, "", "", t0, t0.Add(time.Minute))
		return
	}
	msg, _ := json.Marshal(job.Result{Error: reason})
	c.pod(j, corev1.PodFailed, terminated("Error", 1, string(msg), t0, t0.Add(time.Minute)))
	c.condition(runID, batchv1.JobFailed, "BackoffLimitExceeded", "Job has reached the specified backoff limit", t0, t0.Add(time.Minute))
}

func (h *harness) Advance(d time.Duration) { h.c.clock.Advance(d) }
