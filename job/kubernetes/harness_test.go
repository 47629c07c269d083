package kubernetes_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/job/kubernetes"
)

const ns = "jobs"

var (
	jobsGVR = batchv1.SchemeGroupVersion.WithResource("jobs")
	podsGVR = corev1.SchemeGroupVersion.WithResource("pods")
	podsGVK = corev1.SchemeGroupVersion.WithKind("Pod")
)

// clock is a manually advanced time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

// cluster is a fake Kubernetes API in which the test plays the Job
// controller and the kubelet: it creates the run's pod and moves it and
// the Job through their states, writing the objects straight to the
// tracker (so that the clientset's actions are the runner's alone).
type cluster struct {
	t     *testing.T
	cs    *fake.Clientset
	clock *clock
}

// newCluster returns a fake cluster. Deleting a Job deletes the pods of
// its run too, as the garbage collector would; reactors run before that.
func newCluster(t *testing.T, reactors ...func(cs *fake.Clientset)) *cluster {
	t.Helper()
	c := &cluster{t: t, cs: fake.NewClientset(), clock: newClock()}
	c.cs.PrependReactor("delete", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
		name := a.(k8stesting.DeleteAction).GetName()
		if obj, err := c.cs.Tracker().Get(jobsGVR, ns, name); err == nil {
			sel := obj.(*batchv1.Job).Spec.Template.Labels[kubernetes.LabelRunID]
			list, _ := c.cs.Tracker().List(podsGVR, podsGVK, ns)
			for _, p := range list.(*corev1.PodList).Items {
				if p.Labels[kubernetes.LabelRunID] == sel {
					_ = c.cs.Tracker().Delete(podsGVR, ns, p.Name)
				}
			}
		}
		return false, nil, nil // the default reactor deletes the Job
	})
	for _, r := range reactors {
		r(c.cs)
	}
	return c
}

func (c *cluster) runner() *kubernetes.Runner {
	return &kubernetes.Runner{
		Config:       kubernetes.Config{Namespace: ns, Image: "ghcr.io/sluicehq/sluice:test"},
		Client:       c.cs,
		PollInterval: time.Millisecond,
		Clock:        c.clock.Now,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// waitFor polls cond until it holds, failing the test after 10s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// job waits until the Job of run runID exists and returns it.
func (c *cluster) job(runID string) *batchv1.Job {
	c.t.Helper()
	var j *batchv1.Job
	waitFor(c.t, "the Job of run "+runID, func() bool {
		obj, err := c.cs.Tracker().Get(jobsGVR, ns, kubernetes.JobName(runID))
		if err != nil {
			return false
		}
		j = obj.(*batchv1.Job)
		return true
	})
	return j
}

// count returns how many times the runner called verb on resource.
func (c *cluster) count(verb, resource string) int {
	n := 0
	for _, a := range c.cs.Actions() {
		if a.GetVerb() == verb && a.GetResource().Resource == resource {
			n++
		}
	}
	return n
}

// polled waits until the runner has made one whole observation (Get the
// Job, List the pods, judge) that began after this call.
func (c *cluster) polled() {
	c.t.Helper()
	n := c.count("get", "jobs")
	waitFor(c.t, "a poll of the runner", func() bool { return c.count("get", "jobs") >= n+2 })
}

// pod creates or updates the pod of Job j with the job container in
// state st.
func (c *cluster) pod(j *batchv1.Job, phase corev1.PodPhase, st corev1.ContainerState) *corev1.Pod {
	c.t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: j.Name + "-x7k2p", Namespace: ns, Labels: j.Spec.Template.Labels},
		Status: corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{
			{Name: kubernetes.ContainerName, Image: j.Spec.Template.Spec.Containers[0].Image, State: st},
		}},
	}
	err := c.cs.Tracker().Update(podsGVR, p, ns)
	if err != nil && strings.Contains(err.Error(), "not found") {
		err = c.cs.Tracker().Create(podsGVR, p, ns)
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return p
}

// condition sets condition typ of the Job of run runID, started at
// start and ended at end.
func (c *cluster) condition(runID string, typ batchv1.JobConditionType, reason, msg string, start, end time.Time) {
	c.t.Helper()
	obj, err := c.cs.Tracker().Get(jobsGVR, ns, kubernetes.JobName(runID))
	if err != nil {
		c.t.Fatal(err)
	}
	j := obj.(*batchv1.Job)
	j.Status.StartTime = &metav1.Time{Time: start}
	if typ == batchv1.JobComplete {
		j.Status.CompletionTime = &metav1.Time{Time: end}
	}
	j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: typ, Status: corev1.ConditionTrue,
		Reason: reason, Message: msg, LastTransitionTime: metav1.Time{Time: end}})
	if err := c.cs.Tracker().Update(jobsGVR, j, ns); err != nil {
		c.t.Fatal(err)
	}
}

func running(at time.Time) corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Time{Time: at}}}
}

func terminated(reason string, code int32, msg string, start, end time.Time) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code, Message: msg,
		StartedAt: metav1.Time{Time: start}, FinishedAt: metav1.Time{Time: end}}}
}

func waiting(reason, msg string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}
}

// result is what one Run returned.
type result struct {
	out job.Outcome
	err error
}

// start runs t on r in a goroutine under ctx.
func start(ctx context.Context, r *kubernetes.Runner, t job.Task) <-chan result {
	ch := make(chan result, 1)
	go func() {
		out, err := r.Run(ctx, t)
		ch <- result{out, err}
	}()
	return ch
}

// wait returns what Run returned, failing the test after 10s.
func wait(t *testing.T, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s")
		return result{}
	}
}

// task returns a curate task for run id.
func task(id string) job.Task {
	return job.Task{RunID: id, Rule: "hydropower", Group: "2020-08-07_2PM", StoreURL: "s3://lake", Kind: job.KindCurate,
		Curate: []byte(`{"format":"csv"}`), Inputs: []job.Input{{Key: "data/2020-08-07_2PM/hydropower-consumption.csv", ETag: "e1"}}}
}
