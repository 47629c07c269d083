package kubernetes_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/job/kubernetes"
)

const runID = "0190d7e4-7c5a-7b3e-9f1a-2b3c4d5e6f70"

func TestTheJobOfACurateTaskCarriesTheWholeSpec(t *testing.T) {
	c := newCluster(t)
	r := c.runner()
	secs := int64(300)
	r.Config = kubernetes.Config{
		Namespace:      ns,
		Image:          "ghcr.io/sluicehq/sluice:v1.2.3",
		Command:        []string{"/usr/local/bin/sluice"},
		ServiceAccount: "sluice-jobs",
		Resources: kubernetes.Resources{
			Requests: map[string]string{"cpu": "2", "memory": "8Gi"},
			Limits:   map[string]string{"memory": "12Gi", "ephemeral-storage": "20Gi"},
		},
		NodeSelector:     map[string]string{"pool": "batch"},
		Tolerations:      []kubernetes.Toleration{{Key: "dedicated", Operator: "Equal", Value: "batch", Effect: "NoExecute", Seconds: &secs}},
		EnvFromSecrets:   []string{"lake-credentials", "state-credentials"},
		Env:              map[string]string{"TZ": "UTC", "AWS_REGION": "eu-west-1"},
		TTLAfterFinished: 30 * time.Minute,
		ImagePullPolicy:  "IfNotPresent",
	}
	tk := task(runID)
	tk.Created = c.clock.Now()
	tk.Timeout = 90 * time.Minute
	tk.Deadline = tk.Created.Add(tk.Timeout)
	ctx, cancel := context.WithCancelCause(t.Context())
	done := start(ctx, r, tk)
	j := c.job(runID)

	wantLabels := map[string]string{"sluice.dev/run-id": runID, "sluice.dev/job": "hydropower", "app.kubernetes.io/managed-by": "sluice"}
	if j.Name != "sluice-"+runID || j.Namespace != ns || !reflect.DeepEqual(j.Labels, wantLabels) || !reflect.DeepEqual(j.Spec.Template.Labels, wantLabels) {
		t.Errorf("Job %s/%s labels %v, template labels %v; want sluice-%s in %s labelled %v", j.Namespace, j.Name, j.Labels, j.Spec.Template.Labels, runID, ns, wantLabels)
	}
	if j.Annotations["sluice.dev/group"] != "2020-08-07_2PM" {
		t.Errorf("annotations = %v, want the group", j.Annotations)
	}
	if j.Spec.BackoffLimit == nil || *j.Spec.BackoffLimit != 0 {
		t.Errorf("backoffLimit = %v, want 0", j.Spec.BackoffLimit)
	}
	if d := j.Spec.ActiveDeadlineSeconds; d == nil || *d != 5400 {
		t.Errorf("activeDeadlineSeconds = %v, want 5400 (the deadline, 90m away)", d)
	}
	if ttl := j.Spec.TTLSecondsAfterFinished; ttl == nil || *ttl != 1800 {
		t.Errorf("ttlSecondsAfterFinished = %v, want 1800", ttl)
	}
	ps := j.Spec.Template.Spec
	if ps.RestartPolicy != corev1.RestartPolicyNever || ps.ServiceAccountName != "sluice-jobs" || !reflect.DeepEqual(ps.NodeSelector, map[string]string{"pool": "batch"}) {
		t.Errorf("pod spec restartPolicy %q, serviceAccount %q, nodeSelector %v", ps.RestartPolicy, ps.ServiceAccountName, ps.NodeSelector)
	}
	wantTol := []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "batch", Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &secs}}
	if !reflect.DeepEqual(ps.Tolerations, wantTol) {
		t.Errorf("tolerations = %+v, want %+v", ps.Tolerations, wantTol)
	}
	if len(ps.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(ps.Containers))
	}
	ct := ps.Containers[0]
	if ct.Name != "job" || ct.Image != "ghcr.io/sluicehq/sluice:v1.2.3" || ct.ImagePullPolicy != corev1.PullIfNotPresent ||
		!slices.Equal(ct.Command, []string{"/usr/local/bin/sluice"}) || !slices.Equal(ct.Args, []string{"job", "exec"}) {
		t.Errorf("container %s: image %s (%s), command %v, args %v", ct.Name, ct.Image, ct.ImagePullPolicy, ct.Command, ct.Args)
	}
	if ct.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError || ct.TerminationMessagePath != "/dev/termination-log" {
		t.Errorf("termination message %s (%s)", ct.TerminationMessagePath, ct.TerminationMessagePolicy)
	}
	var names []string
	env := map[string]string{}
	for _, e := range ct.Env {
		names = append(names, e.Name)
		env[e.Name] = e.Value
	}
	if want := []string{"SLUICE_TASK", "SLUICE_RUN_ID", "SLUICE_RESULT_FILE", "AWS_REGION", "TZ"}; !slices.Equal(names, want) {
		t.Errorf("env names = %v, want %v", names, want)
	}
	if env["SLUICE_RUN_ID"] != runID || env["SLUICE_RESULT_FILE"] != "/dev/termination-log" || env["TZ"] != "UTC" || env["AWS_REGION"] != "eu-west-1" {
		t.Errorf("env = %v", env)
	}
	var got job.Task
	if err := json.Unmarshal([]byte(env["SLUICE_TASK"]), &got); err != nil {
		t.Fatalf("SLUICE_TASK: %v", err)
	}
	if !reflect.DeepEqual(got, tk) {
		t.Errorf("SLUICE_TASK decodes to %+v, want the task %+v", got, tk)
	}
	var secrets []string
	for _, e := range ct.EnvFrom {
		if e.SecretRef != nil {
			secrets = append(secrets, e.SecretRef.Name)
		}
	}
	if !slices.Equal(secrets, []string{"lake-credentials", "state-credentials"}) {
		t.Errorf("envFrom secrets = %v", secrets)
	}
	wantRes := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("8Gi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("12Gi"), corev1.ResourceEphemeralStorage: resource.MustParse("20Gi")},
	}
	for _, kind := range []struct {
		got, want corev1.ResourceList
	}{{ct.Resources.Requests, wantRes.Requests}, {ct.Resources.Limits, wantRes.Limits}} {
		if len(kind.got) != len(kind.want) {
			t.Errorf("resources = %v, want %v", ct.Resources, wantRes)
		}
		for k, q := range kind.want {
			if g := kind.got[k]; g.Cmp(q) != 0 {
				t.Errorf("resource %s = %s, want %s", k, g.String(), q.String())
			}
		}
	}

	cancel(errors.New("shutting down"))
	if res := wait(t, done); !errors.Is(res.err, job.ErrDetached) {
		t.Fatalf("Run after shutdown = %+v; want ErrDetached", res)
	}
}

func TestAFailedPodNamesItsOOMKillAndExitCode(t *testing.T) {
	c := newCluster(t)
	done := start(t.Context(), c.runner(), task(runID))
	j := c.job(runID)
	t0 := c.clock.Now()
	c.pod(j, corev1.PodRunning, running(t0))
	c.polled()
	// The Job fails first; Run still waits for the pod to end.
	c.condition(runID, batchv1.JobFailed, "BackoffLimitExceeded", "Job has reached the specified backoff limit", t0, t0.Add(43*time.Second))
	c.polled()
	select {
	case res := <-done:
		t.Fatalf("Run returned %+v while the pod was running", res)
	default:
	}
	c.pod(j, corev1.PodFailed, terminated("OOMKilled", 137, "", t0, t0.Add(42*time.Second)))
	res := wait(t, done)
	if res.err != nil || res.out.ExitCode != 137 || res.out.Transient || res.out.ComputeSeconds != 42 ||
		!strings.Contains(res.out.Err, "OOMKilled") || !strings.Contains(res.out.Err, "exit code 137") || !strings.Contains(res.out.Err, "BackoffLimitExceeded") {
		t.Fatalf("Run = %+v, %v; want exit 137, 42s, an error naming OOMKilled and the Job's failure", res.out, res.err)
	}
	if c.count("delete", "jobs") != 0 {
		t.Error("the runner deleted a Job that ended by itself")
	}
}

func TestExitCode75IsTransientAndTheResultErrorIsTheCause(t *testing.T) {
	c := newCluster(t)
	done := start(t.Context(), c.runner(), task(runID))
	j := c.job(runID)
	t0 := c.clock.Now()
	c.pod(j, corev1.PodFailed, terminated("Error", 75, `{"outputs":[],"error":"warehouse unavailable: connection refused"}`, t0, t0.Add(time.Second)))
	res := wait(t, done)
	if res.err != nil || !res.out.Transient || res.out.ExitCode != 75 || !strings.Contains(res.out.Err, "warehouse unavailable: connection refused") {
		t.Fatalf("Run = %+v, %v; want a transient failure with exit 75 and the job's error", res.out, res.err)
	}
	if !strings.Contains(string(res.out.Log), "warehouse unavailable") {
		t.Errorf("log %q lacks the termination message", res.out.Log)
	}
}

func TestATerminationMessageThatIsNotAResultIsQuotedUpTo1KiB(t *testing.T) {
	c := newCluster(t)
	done := start(t.Context(), c.runner(), task(runID))
	j := c.job(runID)
	t0 := c.clock.Now()
	msg := "panic: boom\n" + strings.Repeat("x", 3000)
	c.pod(j, corev1.PodFailed, terminated("Error", 2, msg, t0, t0.Add(time.Second)))
	res := wait(t, done)
	if res.out.ExitCode != 2 || res.out.Transient || !strings.Contains(res.out.Err, "panic: boom") || len(res.out.Err) > 1400 || !strings.HasSuffix(res.out.Err, "[…]") {
		t.Fatalf("Run = %+v, %v; want exit 2 and the first KiB of the message", res.out, res.err)
	}
}

func TestAnImagePullErrorPastTheGraceDeletesTheJob(t *testing.T) {
	c := newCluster(t)
	r := c.runner()
	done := start(t.Context(), r, task(runID))
	j := c.job(runID)
	// The kubelet alternates between the two reasons; the grace runs from
	// the first.
	c.pod(j, corev1.PodPending, waiting("ErrImagePull", `pull access denied for ghcr.io/sluicehq/sluice:test`))
	c.polled()
	c.clock.Advance(time.Minute)
	c.pod(j, corev1.PodPending, waiting("ImagePullBackOff", `Back-off pulling image "ghcr.io/sluicehq/sluice:test"`))
	c.polled()
	c.clock.Advance(kubernetes.DefaultImagePullGrace - time.Minute - time.Second)
	c.polled()
	if c.count("delete", "jobs") != 0 {
		t.Fatal("the Job was deleted before the grace had passed")
	}
	c.clock.Advance(time.Second)
	res := wait(t, done)
	if res.err != nil || !strings.Contains(res.out.Err, "ImagePullBackOff") || !strings.Contains(res.out.Err, "Back-off pulling image") || res.out.ExitCode != 1 || !res.out.Transient {
		t.Fatalf("Run = %+v, %v; want a transient failure naming ImagePullBackOff", res.out, res.err)
	}
	if c.count("delete", "jobs") == 0 {
		t.Fatal("the Job was not deleted")
	}
	if _, err := c.cs.Tracker().Get(jobsGVR, ns, j.Name); !apierrors.IsNotFound(err) {
		t.Errorf("the Job is still there: %v", err)
	}
}

func TestAMissingSecretPastTheGraceIsAPermanentFailure(t *testing.T) {
	c := newCluster(t)
	done := start(t.Context(), c.runner(), task(runID))
	j := c.job(runID)
	c.pod(j, corev1.PodPending, waiting("CreateContainerConfigError", `secret "lake-credentials" not found`))
	c.polled()
	c.clock.Advance(kubernetes.DefaultImagePullGrace)
	res := wait(t, done)
	if res.err != nil || res.out.Transient || !strings.Contains(res.out.Err, `CreateContainerConfigError: secret "lake-credentials" not found`) || c.count("delete", "jobs") == 0 {
		t.Fatalf("Run = %+v, %v; want the Job deleted and a permanent failure naming the secret", res.out, res.err)
	}
}

func TestAWaitingReasonThatClearsRestartsTheGrace(t *testing.T) {
	c := newCluster(t)
	done := start(t.Context(), c.runner(), task(runID))
	j := c.job(runID)
	c.pod(j, corev1.PodPending, waiting("ErrImagePull", "timeout"))
	c.polled()
	c.pod(j, corev1.PodPending, waiting("ContainerCreating", ""))
	c.polled()
	c.clock.Advance(time.Hour)
	c.pod(j, corev1.PodPending, waiting("ErrImagePull", "timeout"))
	c.polled()
	c.polled()
	if c.count("delete", "jobs") != 0 {
		t.Fatal("the Job was deleted although the pull error had just come back")
	}
	t0 := c.clock.Now()
	c.pod(j, corev1.PodSucceeded, terminated("Completed", 0, `{"outputs":["curated/x/_SUCCESS"]}`, t0, t0.Add(time.Minute)))
	c.condition(runID, batchv1.JobComplete, "", "", t0, t0.Add(time.Minute))
	if res := wait(t, done); res.err != nil || res.out.Err != "" || res.out.ExitCode != 0 || !slices.Equal(res.out.Outputs, []string{"curated/x/_SUCCESS"}) {
		t.Fatalf("Run = %+v, %v; want success", res.out, res.err)
	}
}

func TestCancellingDeletesTheJobWithItsPodsAndWaitsForThePods(t *testing.T) {
	c := newCluster(t, func(cs *fake.Clientset) {
		// The Job goes at once, its pod only when the test deletes it.
		cs.PrependReactor("delete", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, cs.Tracker().Delete(jobsGVR, ns, a.(k8stesting.DeleteAction).GetName())
		})
	})
	ctx, cancel := context.WithCancelCause(t.Context())
	done := start(ctx, c.runner(), task(runID))
	j := c.job(runID)
	c.pod(j, corev1.PodRunning, running(c.clock.Now()))
	c.polled()
	cancel(job.ErrCancelled)
	waitFor(t, "the Job to go", func() bool {
		_, err := c.cs.Tracker().Get(jobsGVR, ns, j.Name)
		return apierrors.IsNotFound(err)
	})
	c.polled()
	select {
	case res := <-done:
		t.Fatalf("Run returned %+v while the pod was still running", res)
	default:
	}
	for _, a := range c.cs.Actions() {
		if d, ok := a.(k8stesting.DeleteAction); ok && d.GetResource().Resource == "jobs" {
			if p := d.GetDeleteOptions().PropagationPolicy; d.GetName() != j.Name || p == nil || *p == metav1.DeletePropagationOrphan {
				t.Errorf("deleted Job %s with propagation policy %v; want %s, with its pods", d.GetName(), p, j.Name)
			}
		}
	}
	_ = c.cs.Tracker().Delete(podsGVR, ns, j.Name+"-x7k2p")
	if res := wait(t, done); res.err != nil || !strings.Contains(res.out.Err, "cancelled") || res.out.ExitCode == 0 {
		t.Fatalf("Run = %+v, %v; want a failure saying cancelled", res.out, res.err)
	}
}

func TestATaskWithRemoteIsFollowedWithoutListingOrCreating(t *testing.T) {
	c := newCluster(t)
	other := "elsewhere"
	existing := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "sluice-adopted", Namespace: other}}
	if err := c.cs.Tracker().Add(existing); err != nil {
		t.Fatal(err)
	}
	tk := task(runID)
	tk.Remote = "kubernetes:" + other + "/sluice-adopted"
	done := start(t.Context(), c.runner(), tk)
	c.polled()
	existing.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "DeadlineExceeded", Message: "Job was active longer than specified deadline"}}
	if err := c.cs.Tracker().Update(jobsGVR, existing, other); err != nil {
		t.Fatal(err)
	}
	res := wait(t, done)
	if res.err != nil || !strings.Contains(res.out.Err, "DeadlineExceeded") || !strings.Contains(res.out.Err, other+"/sluice-adopted") {
		t.Fatalf("Run = %+v, %v; want the adopted Job's failure", res.out, res.err)
	}
	if c.count("create", "jobs")+c.count("list", "jobs") != 0 {
		t.Fatalf("the runner listed or created Jobs for a run with a Remote: %v", c.cs.Actions())
	}
}

func TestARemoteJobThatIsGoneIsATransientFailure(t *testing.T) {
	c := newCluster(t)
	tk := task(runID)
	tk.Remote = "kubernetes:" + ns + "/" + kubernetes.JobName(runID)
	res := wait(t, start(t.Context(), c.runner(), tk))
	if res.err != nil || !res.out.Transient || !strings.Contains(res.out.Err, "no longer exists") {
		t.Fatalf("Run = %+v, %v; want a transient failure saying the Job is gone", res.out, res.err)
	}
	if c.count("create", "jobs") != 0 {
		t.Error("the runner started a second Job for the run")
	}
}

func TestACreateThatRacesAnotherFollowsTheExistingJob(t *testing.T) {
	c := newCluster(t, func(cs *fake.Clientset) {
		cs.PrependReactor("create", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
			j := a.(k8stesting.CreateAction).GetObject().(*batchv1.Job).DeepCopy()
			j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}
			_ = cs.Tracker().Add(j) // another process was faster
			return true, nil, apierrors.NewAlreadyExists(schema.GroupResource{Group: "batch", Resource: "jobs"}, j.Name)
		})
	})
	res := wait(t, start(t.Context(), c.runner(), task(runID)))
	if res.err != nil || res.out.Err != "" {
		t.Fatalf("Run = %+v, %v; want the other Job's success", res.out, res.err)
	}
	if n := c.count("create", "jobs"); n != 1 {
		t.Errorf("%d Creates, want 1", n)
	}
}

func TestAForbiddenCreateIsPermanentAndSaysWhatToCheck(t *testing.T) {
	c := newCluster(t, func(cs *fake.Clientset) {
		cs.PrependReactor("create", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: "batch", Resource: "jobs"}, "", errors.New(`User "system:serviceaccount:sluice:sluice" cannot create resource "jobs"`))
		})
	})
	res := wait(t, start(t.Context(), c.runner(), task(runID)))
	if res.err == nil || fault.IsTransient(res.err) || !strings.Contains(res.err.Error(), "RBAC") || !strings.Contains(res.err.Error(), runID) {
		t.Fatalf("Run = %+v, %v; want a permanent error naming the run and RBAC", res.out, res.err)
	}
	if n := c.count("create", "jobs"); n != 1 {
		t.Errorf("%d Creates; a forbidden Create is not retried", n)
	}
}

func TestAPIErrorsWhileFollowingAreRetried(t *testing.T) {
	failures := 3
	c := newCluster(t, func(cs *fake.Clientset) {
		cs.PrependReactor("get", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
			if failures > 0 { // the fake serialises reactions
				failures--
				return true, nil, apierrors.NewServiceUnavailable("etcd leader changed")
			}
			return false, nil, nil
		})
	})
	done := start(t.Context(), c.runner(), task(runID))
	j := c.job(runID)
	t0 := c.clock.Now()
	c.pod(j, corev1.PodSucceeded, terminated("Completed", 0, "", t0, t0.Add(time.Second)))
	c.condition(runID, batchv1.JobComplete, "", "", t0, t0.Add(time.Second))
	if res := wait(t, done); res.err != nil || res.out.Err != "" {
		t.Fatalf("Run = %+v, %v; want success despite the API errors", res.out, res.err)
	}
}

func TestAnAPIThatKeepsFailingEndsTheRunWithAnError(t *testing.T) {
	var c *cluster
	c = newCluster(t, func(cs *fake.Clientset) {
		cs.PrependReactor("get", "jobs", func(a k8stesting.Action) (bool, runtime.Object, error) {
			c.clock.Advance(time.Minute) // every failure costs a minute of the budget
			return true, nil, apierrors.NewInternalError(errors.New("boom"))
		})
	})
	res := wait(t, start(t.Context(), c.runner(), task(runID)))
	if res.err == nil || !strings.Contains(res.err.Error(), "lost track") || !strings.Contains(res.err.Error(), "it was deleted") {
		t.Fatalf("Run = %+v, %v; want an error saying the Job was lost and deleted", res.out, res.err)
	}
	if c.count("delete", "jobs") != 1 {
		t.Error("the lost Job was not deleted")
	}
}

func TestATaskTooLargeForTheEnvironmentIsRefused(t *testing.T) {
	c := newCluster(t)
	tk := task(runID)
	for i := range 5000 {
		tk.Inputs = append(tk.Inputs, job.Input{Key: fmt.Sprintf("data/2020-08-07_2PM/part-%05d.csv", i), ETag: "0123456789abcdef0123456789abcdef"})
	}
	_, err := c.runner().Run(t.Context(), tk)
	if err == nil || fault.IsTransient(err) || !strings.Contains(err.Error(), runID) || !strings.Contains(err.Error(), "fewer inputs per group") {
		t.Fatalf("Run = %v; want a permanent error naming the run and saying to use fewer inputs", err)
	}
	if c.count("create", "jobs") != 0 {
		t.Error("a Job was created")
	}
}

func TestJobNamesAreDNSLabels(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{runID, "sluice-" + runID},
		{"0190D7E4-7C5A", "sluice-0190d7e4-7c5a"},
	} {
		if got := kubernetes.JobName(tc.id); got != tc.want {
			t.Errorf("JobName(%q) = %q, want %q", tc.id, got, tc.want)
		}
	}
	long := strings.Repeat("a", 100)
	odd := []string{long, long + "b", "run/1", "run_1", "--x--", "ünïcode"}
	seen := map[string]string{}
	for _, id := range odd {
		n := kubernetes.JobName(id)
		if len(n) > 63 || !dnsLabel(n) {
			t.Errorf("JobName(%q) = %q, not a DNS-1123 label", id, n)
		}
		if prev, dup := seen[n]; dup {
			t.Errorf("JobName(%q) = JobName(%q) = %q", id, prev, n)
		}
		seen[n] = id
	}
	for _, id := range append(odd, "hydro power!", "_x_", strings.Repeat("Z", 63)) {
		tk := task(id)
		tk.Rule = id
		for k, v := range kubernetes.Labels(tk) {
			if errs := validation.IsValidLabelValue(v); len(errs) > 0 {
				t.Errorf("label %s=%q made from %q: %v", k, v, id, errs)
			}
		}
	}
}

func dnsLabel(s string) bool {
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' && i > 0 && i < len(s)-1
		if !ok {
			return false
		}
	}
	return s != ""
}

func TestAJSONLogLineInTheTerminationMessageIsQuotedNotTakenForTheResult(t *testing.T) {
	c := newCluster(t)
	done := start(t.Context(), c.runner(), task(runID))
	j := c.job(runID)
	t0 := c.clock.Now()
	c.pod(j, corev1.PodFailed, terminated("Error", 1, `{"time":"2020-08-07T14:00:01Z","level":"ERROR","msg":"store unreachable"}`, t0, t0.Add(time.Second)))
	res := wait(t, done)
	if res.out.ExitCode != 1 || !strings.Contains(res.out.Err, "store unreachable") {
		t.Fatalf("Run = %+v, %v; want the log line quoted in the error", res.out, res.err)
	}
}
