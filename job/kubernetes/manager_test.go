package kubernetes_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/job/kubernetes"
	"github.com/sluicehq/sluice/state/sqlitestate"
	"github.com/sluicehq/sluice/trigger"
)

// managed is a job.Manager over a SQLite state whose one job runs on a
// Kubernetes runner against the fake cluster.
type managed struct {
	t     *testing.T
	c     *cluster
	st    *sqlitestate.DB
	m     *job.Manager
	clock *clock
	done  chan job.Run
	ctx   context.Context // the Manager's runs live in it
}

func newManaged(t *testing.T) *managed {
	t.Helper()
	return newManagedOn(t, filepath.Join(t.TempDir(), "state.db"), newCluster(t))
}

// newManagedOn is a managed whose Manager (a process of its own) shares
// the state file and the cluster with others.
func newManagedOn(t *testing.T, statePath string, c *cluster) *managed {
	t.Helper()
	ctx := t.Context()
	st, err := sqlitestate.Open(ctx, statePath, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rule, err := trigger.Compile(trigger.Rule{Name: "hydropower", Filter: event.Filter{Events: []string{"s3:ObjectCreated:*"}, Prefix: "data/", Suffix: ".csv"}})
	if err != nil {
		t.Fatal(err)
	}
	e := &managed{t: t, c: c, st: st, clock: newClock(), done: make(chan job.Run, 10), ctx: ctx}
	e.m, err = job.NewManager([]job.Definition{{
		Name: "hydropower", Rule: rule, Settle: time.Second,
		Inputs: func(ctx context.Context, group string) ([]job.Input, error) {
			return []job.Input{{Key: "data/" + group + "/hydropower-consumption.csv", ETag: "e1"}}, nil
		},
		Task: func(group string, inputs []job.Input) (job.Task, error) {
			return job.Task{Kind: job.KindCurate, StoreURL: "s3://lake", Curate: []byte(`{}`)}, nil
		},
	}}, job.Options{State: st, Runner: e.c.runner(), Clock: e.clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnDone: func(ctx context.Context, r job.Run) { e.done <- r }})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// start offers an upload of group's file and starts its run; it returns
// the run's Job once created.
func (e *managed) start(group string) *batchv1.Job {
	e.t.Helper()
	ctx := e.ctx
	if ok, err := e.m.Offer(ctx, event.New("lake", "data/"+group+"/hydropower-consumption.csv", 10, "e1", e.clock.Now())); !ok || err != nil {
		e.t.Fatalf("Offer = %v, %v", ok, err)
	}
	e.clock.Advance(2 * time.Second)
	if n, err := e.m.Step(ctx); n != 1 || err != nil {
		e.t.Fatalf("Step = %d, %v; want one run started", n, err)
	}
	var j *batchv1.Job
	waitFor(e.t, "the run's Job", func() bool {
		list, err := e.c.cs.Tracker().List(jobsGVR, batchv1.SchemeGroupVersion.WithKind("Job"), ns)
		if err != nil || len(list.(*batchv1.JobList).Items) == 0 {
			return false
		}
		j = &list.(*batchv1.JobList).Items[0]
		return true
	})
	return j
}

func (e *managed) run(id string) job.Run {
	e.t.Helper()
	r, err := e.st.GetRun(e.t.Context(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// ended waits until the Manager has recorded the run's end.
func (e *managed) ended() job.Run {
	e.t.Helper()
	select {
	case r := <-e.done:
		e.m.Wait()
		return r
	case <-time.After(10 * time.Second):
		e.t.Fatal("the run did not end within 10s")
		return job.Run{}
	}
}

func TestARunThroughTheManagerGoesStartingRunningSucceeded(t *testing.T) {
	e := newManaged(t)
	j := e.start("2020-08-07_2PM")
	id := j.Annotations[kubernetes.AnnotationRunID]
	if id == "" || j.Name != kubernetes.JobName(id) || j.Labels[kubernetes.LabelRunID] != id || j.Annotations[kubernetes.AnnotationGroup] != "2020-08-07_2PM" {
		t.Fatalf("Job %s labels %v annotations %v; want the run's name, label and group", j.Name, j.Labels, j.Annotations)
	}
	e.c.pod(j, corev1.PodPending, waiting("ContainerCreating", ""))
	e.c.polled()
	if r := e.run(id); r.State != job.Starting {
		t.Fatalf("run with a pending pod is %s, want STARTING", r.State)
	}
	t0 := e.c.clock.Now()
	e.c.pod(j, corev1.PodRunning, running(t0))
	waitFor(t, "the run to be RUNNING", func() bool { return e.run(id).State == job.Running })
	e.c.pod(j, corev1.PodSucceeded, terminated("Completed", 0, `{"outputs":["curated/2020-08-07_2PM/part-00000.snappy.parquet","curated/2020-08-07_2PM/_SUCCESS"]}`, t0, t0.Add(95*time.Second)))
	e.c.condition(id, batchv1.JobComplete, "", "", t0, t0.Add(96*time.Second))
	r := e.ended()
	got := e.run(id)
	if r.State != job.Succeeded || got.State != job.Succeeded || got.Terminated.IsZero() || got.Started.IsZero() || got.ComputeSeconds != 95 || got.Error != "" ||
		!slices.Equal(got.Outputs, []string{"curated/2020-08-07_2PM/part-00000.snappy.parquet", "curated/2020-08-07_2PM/_SUCCESS"}) {
		t.Fatalf("recorded run = %+v; want SUCCEEDED, terminated, 95 compute seconds and the outputs", got)
	}
	// The Manager records the Job as the run's remote compute.
	if want := "kubernetes:" + ns + "/" + j.Name; got.Remote != want {
		t.Errorf("run.Remote = %q, want %q", got.Remote, want)
	}
}

func TestAnOOMKilledPodFailsTheRunNamingIt(t *testing.T) {
	e := newManaged(t)
	j := e.start("2020-08-08_2PM")
	id := j.Annotations[kubernetes.AnnotationRunID]
	t0 := e.c.clock.Now()
	e.c.pod(j, corev1.PodRunning, running(t0))
	waitFor(t, "the run to be RUNNING", func() bool { return e.run(id).State == job.Running })
	e.c.condition(id, batchv1.JobFailed, "BackoffLimitExceeded", "Job has reached the specified backoff limit", t0, t0.Add(10*time.Second))
	e.c.pod(j, corev1.PodFailed, terminated("OOMKilled", 137, "", t0, t0.Add(9*time.Second)))
	e.ended()
	got := e.run(id)
	if got.State != job.Failed || got.ExitCode != 137 || !strings.Contains(got.Error, "OOMKilled") || got.Terminated.IsZero() {
		t.Fatalf("recorded run = %+v; want FAILED with exit 137 and OOMKilled in its error", got)
	}
}

func TestAJobLeftRunningByAStoppedProcessIsAdoptedWithoutASecondJob(t *testing.T) {
	c := newCluster(t)
	statePath := filepath.Join(t.TempDir(), "state.db")
	a := newManagedOn(t, statePath, c)
	actx, stop := context.WithCancel(a.ctx)
	a.ctx = actx
	j := a.start("2020-08-07_2PM")
	id := j.Annotations[kubernetes.AnnotationRunID]
	t0 := c.clock.Now()
	c.pod(j, corev1.PodRunning, running(t0))
	waitFor(t, "the run to be RUNNING", func() bool { return a.run(id).State == job.Running })
	stop() // a's process stops: it detaches, leaving the Job running
	a.m.Wait()
	if r := a.run(id); r.State != job.Running || !r.Terminated.IsZero() || r.Remote != "kubernetes:"+ns+"/"+j.Name {
		t.Fatalf("after a stopped, the run is %+v; want it RUNNING on its Job", r)
	}
	if n := c.count("delete", "jobs"); n != 0 {
		t.Fatalf("stopping a deleted the Job (%d deletes)", n)
	}
	b := newManagedOn(t, statePath, c)
	if err := b.m.Recover(b.ctx); err != nil {
		t.Fatal(err)
	}
	c.polled() // b follows the Job
	c.pod(j, corev1.PodSucceeded, terminated("Completed", 0, `{"outputs":["curated/2020-08-07_2PM/_SUCCESS"]}`, t0, t0.Add(30*time.Second)))
	c.condition(id, batchv1.JobComplete, "", "", t0, t0.Add(31*time.Second))
	r := b.ended()
	if r.ID != id || r.State != job.Succeeded || r.Remote != "kubernetes:"+ns+"/"+j.Name || r.Epoch < 2 {
		t.Fatalf("adopted run ended as %+v", r)
	}
	if n := c.count("create", "jobs"); n != 1 {
		t.Fatalf("%d Jobs created; want 1", n)
	}
}
