// Package kubernetes runs sluice jobs as Kubernetes Jobs: one batch/v1 Job
// per run, whose one pod runs the sluice container image's built-in job
// (`sluice job exec`), so that curate and command jobs get a bigger machine
// than the sluice process's own. It implements job.Remote.
//
// # The Job
//
// A run's Job is named JobName(run ID) and labelled LabelRunID (the run
// ID), LabelJob (the sluice job) and LabelManagedBy=sluice, on the Job and
// its pod. The task travels as JSON in the container's environment
// (EnvTask; at most MaxTaskBytes); `sluice job exec` writes its result to
// EnvResultFile, the container's termination message, which Kubernetes
// keeps in the pod status after the container ends (its first 4 KiB). The
// Job never retries (backoffLimit 0: sluice decides about retries), is
// stopped by Kubernetes at the run's deadline (activeDeadlineSeconds), and
// is deleted by Kubernetes TTLAfterFinished after it ends.
//
// # Following a run
//
// Run is idempotent per run ID: it follows Task.Remote when set, else the
// Job labelled with the run ID, and creates one only when there is none (a
// Create that races another process's gets AlreadyExists and follows the
// existing Job). It polls the Job and its pods every PollInterval: the run
// is RUNNING (job.NotifyStarted) once its container has started; it ends
// when the Job is Complete or Failed, or its pod Failed, and no pod of the
// run is still running. A container that cannot start (ErrImagePull,
// ImagePullBackOff, InvalidImageName, CreateContainerConfigError,
// CreateContainerError) for ImagePullGrace has its Job deleted.
//
// A failure's Outcome.Err names the cause: the Job's failure reason, the
// container's termination reason (OOMKilled), exit code and message (or
// the error from the result). Transient (Outcome.Transient: the run is
// retried) are exit code 75 (fault.ExitTempFail); ErrImagePull,
// ImagePullBackOff and CreateContainerError, which a registry or node
// outage causes as often as a typo; and a Job deleted by someone else,
// whose outcome is unknown. InvalidImageName and
// CreateContainerConfigError (a missing secret) are configuration errors,
// and permanent. The pod's logs are not fetched (`kubectl logs` shows them
// until the Job's TTL passes): Outcome.Log holds the states seen and the
// termination message.
//
// # Cancellation
//
// When ctx ends with cause job.ErrCancelled, or Task.Deadline passes, Run
// deletes the Job with foreground propagation, waits (up to GoneTimeout)
// until the Job and its pods are gone, and reports the run failed. When ctx
// ends for any other cause Run returns job.ErrDetached at once and leaves
// the Job running for a live process to adopt.
//
// # Permissions
//
// sluice's own identity needs, in the namespace: jobs (batch) create, get,
// list, delete; pods get, list. The pod's ServiceAccount needs what the job
// needs (the store and the state). API failures while following (timeouts,
// throttling, server errors) are retried with capped backoff for
// APIRetryBudget; a Create that is forbidden or invalid fails permanently.
package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/job"
)

// Name is the runner's name in a spec and the prefix of its remote ids
// ("kubernetes:<namespace>/<job>").
const Name = "kubernetes"

// Defaults for Runner.
const (
	// DefaultPollInterval is how often a run's Job is looked at.
	DefaultPollInterval = 5 * time.Second
	// DefaultImagePullGrace is how long a container may fail to start.
	DefaultImagePullGrace = 2 * time.Minute
	// DefaultAPIRetryBudget is how long failing API calls are retried.
	DefaultAPIRetryBudget = 5 * time.Minute
	// DefaultGoneTimeout bounds the wait for a deleted Job to go.
	DefaultGoneTimeout = 10 * time.Minute
)

// messageCap bounds how much of a termination message Outcome.Err quotes.
const messageCap = 1 << 10

// callTimeout bounds one API call, so that a hung connection is retried
// instead of stopping the run's follower.
const callTimeout = time.Minute

// Runner runs each job run as a Kubernetes Job (see the package doc). Set
// Config and leave the rest zero for the defaults. A Runner is safe for
// concurrent runs; do not copy it after first use.
type Runner struct {
	Config
	// Client is the Kubernetes API; nil connects with NewClient(
	// Config.Kubeconfig, Config.Context) on the first run.
	Client Client
	// PollInterval is how often a run's Job and pods are looked at
	// (DefaultPollInterval).
	PollInterval time.Duration
	// ImagePullGrace is how long a container may fail to start (image
	// pull, missing secret) before its Job is deleted
	// (DefaultImagePullGrace).
	ImagePullGrace time.Duration
	// APIRetryBudget is how long failing API calls are retried before a
	// run gives up (DefaultAPIRetryBudget).
	APIRetryBudget time.Duration
	// GoneTimeout bounds the wait for a deleted Job and its pods to
	// disappear (DefaultGoneTimeout).
	GoneTimeout time.Duration
	// Clock is the time source for deadlines, grace periods and retry
	// budgets (default time.Now).
	Clock func() time.Time
	// Logger gets a line per Job created, started and ended (default
	// slog.Default()).
	Logger *slog.Logger

	mu     sync.Mutex
	client Client
}

var _ job.Remote = (*Runner)(nil)

// RemoteName returns "kubernetes".
func (r *Runner) RemoteName() string { return Name }

// Result is what `sluice job exec` writes to EnvResultFile.
type Result = job.Result

// Run runs t as a Kubernetes Job, or follows the one already started for
// t.RunID, until the Job has ended and its pods are gone or terminated
// (see the package doc for cancellation). A failed job is an Outcome; the
// error is for a task or configuration this runner cannot run (permanent),
// an API that keeps failing, or a Job that could not be deleted.
func (r *Runner) Run(ctx context.Context, t job.Task) (job.Outcome, error) {
	if t.Kind != job.KindCurate && t.Kind != job.KindCommand {
		return job.Outcome{}, fault.Permanent(fmt.Errorf("kubernetes runner: run %s is a %q job: the kubernetes runner runs curate and command jobs; spark jobs run on emr or emr-serverless", t.RunID, t.Kind))
	}
	if t.RunID == "" {
		return job.Outcome{}, fault.Permanent(errors.New("kubernetes runner: the task has no run ID"))
	}
	if err := r.Config.Check(); err != nil {
		return job.Outcome{}, fault.Permanent(fmt.Errorf("kubernetes runner: run %s: invalid configuration: %w", t.RunID, err))
	}
	c, err := r.clientset()
	if err != nil {
		return job.Outcome{}, fault.Permanent(fmt.Errorf("kubernetes runner: run %s: %w", t.RunID, err))
	}
	x := r.newRun(c, t)
	found, err := x.locate(ctx)
	if err == nil && !found {
		if reason, detach := x.stop(ctx); reason == "" && !detach {
			err = x.create(ctx)
			found = err == nil
		}
	}
	if err != nil && ctx.Err() == nil {
		return job.Outcome{}, err
	}
	if !found {
		return x.abandon(ctx)
	}
	job.NotifyRemote(ctx, x.remote())
	return x.follow(ctx)
}

func (r *Runner) clientset() (Client, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Client != nil {
		return r.Client, nil
	}
	if r.client == nil {
		c, err := NewClient(r.Kubeconfig, r.Context)
		if err != nil {
			return nil, err
		}
		r.client = c
	}
	return r.client, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// run is one Run call's state.
type run struct {
	r        *Runner
	c        Client
	t        job.Task
	ns, name string
	log      *slog.Logger
	now      func() time.Time
	poll     time.Duration

	notes     bytes.Buffer      // Outcome.Log
	noted     map[string]string // subject → last state noted
	started   bool
	startedAt time.Time
	stuck     map[string]time.Time // pod → since when its container cannot start
	pods      map[string]corev1.Pod
	job       *batchv1.Job // last seen
}

func (r *Runner) newRun(c Client, t job.Task) *run {
	x := &run{r: r, c: c, t: t, ns: r.namespace(), name: JobName(t.RunID), log: r.Logger, now: r.Clock,
		poll: orDefault(r.PollInterval, DefaultPollInterval), noted: map[string]string{}, stuck: map[string]time.Time{}, pods: map[string]corev1.Pod{}}
	if x.log == nil {
		x.log = slog.Default()
	}
	if x.now == nil {
		x.now = time.Now
	}
	return x
}

func (x *run) remote() string { return Name + ":" + x.ns + "/" + x.name }

func (x *run) jobRef() string { return "Job " + x.ns + "/" + x.name }

// note adds a line to the run's log when subject's state changed.
func (x *run) note(subject, state string) {
	if x.noted[subject] == state {
		return
	}
	x.noted[subject] = state
	fmt.Fprintf(&x.notes, "%s %s: %s\n", x.now().UTC().Format(time.RFC3339), subject, state)
}

// stop says whether the run must end now: reason is why its Job must be
// deleted (cancelled, timed out); detach that sluice stops following it.
func (x *run) stop(ctx context.Context) (reason string, detach bool) {
	if ctx.Err() != nil {
		if cause := context.Cause(ctx); errors.Is(cause, job.ErrCancelled) {
			return fmt.Sprintf("cancelled: %v", cause), false
		}
		return "", true
	}
	if !x.t.Deadline.IsZero() && !x.now().Before(x.t.Deadline) {
		return fmt.Sprintf("timed out: the run passed its deadline %s", x.t.Deadline.UTC().Format(time.RFC3339)), false
	}
	return "", false
}

func (x *run) detached(ctx context.Context) error {
	x.log.Info("kubernetes job left running for adoption", "run", x.t.RunID, "job", x.remote(), "cause", context.Cause(ctx))
	return fmt.Errorf("kubernetes runner: run %s (%s): %w", x.t.RunID, x.jobRef(), job.ErrDetached)
}

// parseRemote splits "kubernetes:<ns>/<name>".
func parseRemote(id string) (ns, name string, ok bool) {
	rest, ok := strings.CutPrefix(id, Name+":")
	if !ok {
		return "", "", false
	}
	ns, name, ok = strings.Cut(rest, "/")
	return ns, name, ok && ns != "" && name != ""
}

// locate finds the Job already started for the run: Task.Remote, else the
// Job labelled with its run ID.
func (x *run) locate(ctx context.Context) (bool, error) {
	if x.t.Remote != "" {
		ns, name, ok := parseRemote(x.t.Remote)
		if !ok {
			return false, fault.Permanent(fmt.Errorf("kubernetes runner: run %s was started as %s, not by the kubernetes runner: follow it with the runner that started it", x.t.RunID, x.t.Remote))
		}
		x.ns, x.name = ns, name
		return true, nil
	}
	var list *batchv1.JobList
	err := x.retry(ctx, "list the run's Jobs", func(ctx context.Context) (err error) {
		list, err = x.c.BatchV1().Jobs(x.ns).List(ctx, metav1.ListOptions{LabelSelector: runSelector(x.t.RunID)})
		return err
	})
	if err != nil {
		return false, x.apiError("list Jobs labelled "+runSelector(x.t.RunID)+" in namespace "+x.ns, err)
	}
	var names []string
	for _, j := range list.Items {
		if id, ok := j.Annotations[AnnotationRunID]; !ok || id == x.t.RunID {
			names = append(names, j.Name)
		}
	}
	if len(names) == 0 {
		return false, nil
	}
	if !slices.Contains(names, x.name) {
		slices.Sort(names)
		x.name = names[0]
	}
	x.note(x.jobRef(), "found")
	x.log.Info("kubernetes job found for run", "run", x.t.RunID, "job", x.remote())
	return true, nil
}

func (x *run) create(ctx context.Context) error {
	obj, err := x.r.newJob(x.t, x.ns, x.now())
	if err != nil {
		return err
	}
	created := true
	err = x.retry(ctx, "create "+x.jobRef(), func(ctx context.Context) error {
		_, err := x.c.BatchV1().Jobs(x.ns).Create(ctx, obj, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			created = false // an earlier attempt or another process: follow it
			return nil
		}
		return err
	})
	if err != nil {
		return x.apiError("create "+x.jobRef(), err)
	}
	if created {
		x.note(x.jobRef(), "created")
		x.log.Info("kubernetes job created", "run", x.t.RunID, "job", x.remote(), "image", x.r.Image)
	} else {
		x.note(x.jobRef(), "found (already created)")
		x.log.Info("kubernetes job already existed", "run", x.t.RunID, "job", x.remote())
	}
	return nil
}

// apiError words an error of a call that failed (what) so that it says
// what to check; requests the API refuses are permanent.
func (x *run) apiError(what string, err error) error {
	err = fmt.Errorf("kubernetes runner: run %s: %s: %w", x.t.RunID, what, err)
	switch {
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		return fault.Permanent(fmt.Errorf("%w (check that sluice's identity may create, get, list and delete jobs and get and list pods in namespace %s: RBAC)", err, x.ns))
	case apierrors.IsNotFound(err):
		return fault.Permanent(fmt.Errorf("%w (check that namespace %s exists)", err, x.ns))
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err), apierrors.IsRequestEntityTooLargeError(err), apierrors.IsMethodNotSupported(err):
		return fault.Permanent(fmt.Errorf("%w (check the runner's configuration: image, service_account %q, resources, tolerations)", err, x.r.ServiceAccount))
	}
	return err
}

// retriable reports whether an API call that failed with err may succeed
// later: everything but the refusals apiError calls permanent.
func retriable(err error) bool {
	return !(apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsNotFound(err) || apierrors.IsInvalid(err) ||
		apierrors.IsBadRequest(err) || apierrors.IsRequestEntityTooLargeError(err) || apierrors.IsMethodNotSupported(err))
}

// retry calls fn until it succeeds, fails with an error that is not
// retriable, ctx ends, or calls have failed for APIRetryBudget.
func (x *run) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	var since time.Time
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		err := fn(cctx)
		cancel()
		if err == nil || ctx.Err() != nil || !retriable(err) {
			return err
		}
		now := x.now()
		if since.IsZero() {
			since = now
		}
		if budget := orDefault(x.r.APIRetryBudget, DefaultAPIRetryBudget); now.Sub(since) >= budget {
			return fmt.Errorf("still failing after %s: %w", budget, err)
		}
		x.log.Warn("kubernetes API call failed; retrying", "run", x.t.RunID, "call", what, "attempt", attempt+1, "err", err)
		if !sleep(ctx, x.backoff(attempt)) {
			return err
		}
	}
}

// backoff is the wait before retry attempt+1: PollInterval doubling up to
// 30s (or 64 PollIntervals, whichever is less).
func (x *run) backoff(attempt int) time.Duration {
	ceiling := min(30*time.Second, 64*x.poll)
	d := x.poll
	for range attempt {
		if d >= ceiling {
			break
		}
		d *= 2
	}
	return min(d, ceiling)
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// abandon ends a run whose ctx ended or deadline passed before its Job was
// found or created.
func (x *run) abandon(ctx context.Context) (job.Outcome, error) {
	reason, detach := x.stop(ctx)
	if detach {
		return job.Outcome{}, x.detached(ctx)
	}
	// A Create whose answer the cancellation cut off may have succeeded.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), orDefault(x.r.GoneTimeout, DefaultGoneTimeout))
	defer cancel()
	found, err := x.locate(bctx)
	if err != nil {
		return job.Outcome{ExitCode: 1, Err: reason}, fmt.Errorf("kubernetes runner: run %s: %s, but whether its Job was created is unknown: %w", x.t.RunID, reason, err)
	}
	if found {
		job.NotifyRemote(ctx, x.remote())
		return x.terminate(ctx, reason, false)
	}
	x.note("run", reason+" before its Job was created")
	return job.Outcome{ExitCode: 1, Err: reason + " before its Job was created", Log: x.notes.Bytes()}, nil
}

// observation is one look at the run's Job and pods.
type observation struct {
	job  *batchv1.Job // nil: the Job does not exist
	pods []corev1.Pod
}

func (x *run) observe(ctx context.Context) (observation, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var o observation
	j, err := x.c.BatchV1().Jobs(x.ns).Get(ctx, x.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return o, fmt.Errorf("get %s: %w", x.jobRef(), err)
	default:
		o.job = j
	}
	pods, err := x.c.CoreV1().Pods(x.ns).List(ctx, metav1.ListOptions{LabelSelector: runSelector(x.t.RunID)})
	if err != nil {
		return o, fmt.Errorf("list the pods of %s: %w", x.jobRef(), err)
	}
	o.pods = pods.Items
	slices.SortFunc(o.pods, func(a, b corev1.Pod) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	// Remember what was seen, for the outcome once pods are deleted.
	if o.job != nil {
		x.job = o.job
	}
	for _, p := range o.pods {
		x.pods[p.Name] = p
	}
	return o, nil
}

// follow polls the run's Job until it ends, ctx ends or its deadline
// passes.
func (x *run) follow(ctx context.Context) (job.Outcome, error) {
	var failingSince time.Time
	attempt := 0
	for {
		if reason, detach := x.stop(ctx); detach {
			return job.Outcome{}, x.detached(ctx)
		} else if reason != "" {
			return x.terminate(ctx, reason, false)
		}
		delay := x.poll
		o, err := x.observe(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			continue // stop decides
		case err != nil:
			now := x.now()
			if failingSince.IsZero() {
				failingSince = now
			}
			if now.Sub(failingSince) >= orDefault(x.r.APIRetryBudget, DefaultAPIRetryBudget) {
				return x.lost(ctx, err, now.Sub(failingSince))
			}
			x.log.Warn("kubernetes API call failed; retrying", "run", x.t.RunID, "job", x.remote(), "attempt", attempt+1, "err", err)
			delay = x.backoff(attempt)
			attempt++
		default:
			failingSince, attempt = time.Time{}, 0
			v, err := x.judge(ctx, o)
			switch {
			case err != nil:
				return job.Outcome{}, err
			case v.kill != "":
				return x.terminate(ctx, v.kill, v.transient)
			case v.done:
				x.log.Info("kubernetes job ended", "run", x.t.RunID, "job", x.remote(), "exit", v.out.ExitCode,
					"compute_seconds", v.out.ComputeSeconds, "err", v.out.Err)
				return v.out, nil
			}
		}
		sleep(ctx, delay)
	}
}

// verdict is what one observation means for the run.
type verdict struct {
	done bool
	out  job.Outcome
	kill string // why the Job must be deleted
	// transient says whether a run whose Job was deleted for kill is
	// worth retrying.
	transient bool
}

// badWaiting are the reasons a container waits that it may never get
// over; transient says which are worth a later retry of the run.
var badWaiting = map[string]bool{
	"ErrImagePull":               true,
	"ImagePullBackOff":           true,
	"InvalidImageName":           false,
	"CreateContainerConfigError": false,
	"CreateContainerError":       true,
}

func (x *run) judge(ctx context.Context, o observation) (verdict, error) {
	if o.job != nil {
		if id, ok := o.job.Annotations[AnnotationRunID]; ok && id != x.t.RunID {
			return verdict{}, fault.Permanent(fmt.Errorf("kubernetes runner: run %s: %s belongs to run %s: delete it if it is stale", x.t.RunID, x.jobRef(), id))
		}
		x.note(x.jobRef(), jobState(o.job))
	} else {
		x.note(x.jobRef(), "gone")
	}
	for _, p := range o.pods {
		x.note("pod "+p.Name, podState(p))
	}
	if !x.started {
		if at, ok := startedAt(o); ok {
			x.started, x.startedAt = true, orDefault(at, x.now())
			x.log.Info("kubernetes job running", "run", x.t.RunID, "job", x.remote())
			job.NotifyStarted(ctx, 0)
		}
	}
	if kill, transient := x.stuckFor(o); kill != "" {
		return verdict{kill: kill, transient: transient}, nil
	}
	if !computeGone(o.pods) {
		return verdict{}, nil
	}
	switch {
	case o.job == nil:
		x.note("run", "its Job disappeared before it was seen to end")
		out := x.outcome(nil)
		out.Err = fmt.Sprintf("%s no longer exists (deleted by someone, or by its TTL after it ended): the outcome of run %s is unknown, so it runs again", x.jobRef(), x.t.RunID)
		out.ExitCode, out.Outputs, out.Transient = max(out.ExitCode, 1), nil, true
		return verdict{done: true, out: out}, nil
	case condition(o.job, batchv1.JobComplete) != nil, condition(o.job, batchv1.JobFailed) != nil, podFailed(o.pods):
		return verdict{done: true, out: x.outcome(o.job)}, nil
	}
	return verdict{}, nil
}

// stuckFor returns why the run's Job must be deleted when its container has
// been unable to start for ImagePullGrace, and whether that is transient.
func (x *run) stuckFor(o observation) (kill string, transient bool) {
	grace := orDefault(x.r.ImagePullGrace, DefaultImagePullGrace)
	now := x.now()
	seen := map[string]bool{}
	for _, p := range o.pods {
		cs := containerStatus(p)
		if cs == nil || cs.State.Waiting == nil || isTerminal(p) {
			continue
		}
		w := cs.State.Waiting
		transient, bad := badWaiting[w.Reason]
		if !bad {
			continue
		}
		// The kubelet alternates between ErrImagePull and
		// ImagePullBackOff: the grace runs from the first of either.
		seen[p.Name] = true
		first, ok := x.stuck[p.Name]
		if !ok {
			x.stuck[p.Name] = now
			x.log.Warn("kubernetes job cannot start its container", "run", x.t.RunID, "job", x.remote(), "pod", p.Name,
				"reason", w.Reason, "message", w.Message, "grace", grace)
			continue
		}
		if now.Sub(first) >= grace {
			return fmt.Sprintf("container %s of pod %s could not start for %s: %s: %s", ContainerName, p.Name, grace, w.Reason, capText(w.Message)), transient
		}
	}
	for k := range x.stuck {
		if !seen[k] {
			delete(x.stuck, k)
		}
	}
	return "", false
}

// outcome describes the ended run from the last Job (j) and pods seen.
func (x *run) outcome(j *batchv1.Job) job.Outcome {
	out := job.Outcome{ExitCode: 1}
	pod, term := x.lastContainer()
	complete := j != nil && condition(j, batchv1.JobComplete) != nil
	var res Result
	parsed := false
	if term != nil {
		out.ExitCode = int(term.ExitCode)
		if term.Message != "" {
			fmt.Fprintf(&x.notes, "termination message of pod %s:\n%s\n", pod.Name, strings.TrimRight(term.Message, "\n"))
			parsed = decodeResult(term.Message, &res)
		}
	} else if complete {
		out.ExitCode = 0
	}
	if parsed {
		out.Outputs = res.Outputs
	}
	switch {
	case complete && out.ExitCode == 0:
		out.Err = res.Error
	default:
		out.Err = x.failure(j, pod, term, res.Error, parsed)
	}
	if out.Err != "" && out.ExitCode == 0 {
		out.ExitCode = 1
	}
	out.Transient = term != nil && term.ExitCode == fault.ExitTempFail
	out.ComputeSeconds = x.computeSeconds(j, term)
	out.Log = x.notes.Bytes()
	return out
}

// failure words why the run failed.
func (x *run) failure(j *batchv1.Job, pod *corev1.Pod, term *corev1.ContainerStateTerminated, resErr string, parsed bool) string {
	var parts []string
	if c := condition(j, batchv1.JobFailed); c != nil {
		parts = append(parts, fmt.Sprintf("%s failed: %s: %s", x.jobRef(), c.Reason, c.Message))
	} else {
		parts = append(parts, x.jobRef()+" failed")
	}
	switch {
	case term != nil:
		s := fmt.Sprintf("container %s of pod %s ended: %s, exit code %d", ContainerName, pod.Name, orDefault(term.Reason, "Error"), term.ExitCode)
		if term.Reason == "OOMKilled" {
			s += " (out of memory: raise resources.limits.memory)"
		}
		switch {
		case resErr != "":
			s += ": " + resErr
		case !parsed && strings.TrimSpace(term.Message) != "":
			s += ": " + capText(term.Message)
		}
		parts = append(parts, s)
	case pod != nil && pod.Status.Phase == corev1.PodFailed:
		parts = append(parts, fmt.Sprintf("pod %s failed: %s: %s", pod.Name, pod.Status.Reason, capText(pod.Status.Message)))
	}
	return strings.Join(parts, "; ")
}

// lastContainer returns the pod that tells the run's outcome (a failed
// pod, else a succeeded one, else the newest) and its job container's
// termination, from everything seen.
func (x *run) lastContainer() (*corev1.Pod, *corev1.ContainerStateTerminated) {
	var pods []corev1.Pod
	for _, p := range x.pods {
		pods = append(pods, p)
	}
	rank := func(p corev1.Pod) int {
		switch p.Status.Phase {
		case corev1.PodFailed:
			return 2
		case corev1.PodSucceeded:
			return 1
		}
		return 0
	}
	slices.SortFunc(pods, func(a, b corev1.Pod) int {
		if c := rank(a) - rank(b); c != 0 {
			return c
		}
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	if len(pods) == 0 {
		return nil, nil
	}
	p := pods[len(pods)-1]
	cs := containerStatus(p)
	if cs == nil {
		return &p, nil
	}
	if cs.State.Terminated != nil {
		return &p, cs.State.Terminated
	}
	return &p, cs.LastTerminationState.Terminated
}

// computeSeconds is how long the container ran, else the Job, else the
// time since it was seen to start.
func (x *run) computeSeconds(j *batchv1.Job, term *corev1.ContainerStateTerminated) float64 {
	if term != nil && !term.StartedAt.IsZero() && !term.FinishedAt.IsZero() {
		return term.FinishedAt.Sub(term.StartedAt.Time).Seconds()
	}
	if j != nil && j.Status.StartTime != nil {
		end := j.Status.CompletionTime
		if c := condition(j, batchv1.JobFailed); end == nil && c != nil {
			end = &c.LastTransitionTime
		}
		if end != nil && !end.IsZero() {
			return end.Sub(j.Status.StartTime.Time).Seconds()
		}
	}
	if x.started {
		return x.now().Sub(x.startedAt).Seconds()
	}
	return 0
}

// terminate deletes the run's Job, waits until it and its pods are gone,
// and reports the run failed for reason (transient: worth retrying).
func (x *run) terminate(ctx context.Context, reason string, transient bool) (job.Outcome, error) {
	gone := orDefault(x.r.GoneTimeout, DefaultGoneTimeout)
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), gone)
	defer cancel()
	x.note("run", reason+": deleting "+x.jobRef())
	x.log.Info("kubernetes job deleting", "run", x.t.RunID, "job", x.remote(), "reason", reason)
	out := job.Outcome{ExitCode: 1, Err: reason + " (deleted " + x.jobRef() + ")", Transient: transient}
	err := x.retry(bctx, "delete "+x.jobRef(), func(ctx context.Context) error {
		err := x.c.BatchV1().Jobs(x.ns).Delete(ctx, x.name, metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationForeground)})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	if err != nil {
		out.Log = x.notes.Bytes()
		return out, fmt.Errorf("kubernetes runner: run %s: %s, but %s could not be deleted (delete it: kubectl -n %s delete job %s): %w",
			x.t.RunID, reason, x.jobRef(), x.ns, x.name, err)
	}
	for {
		o, err := x.observe(bctx)
		if err == nil {
			for _, p := range o.pods {
				x.note("pod "+p.Name, podState(p))
			}
			if o.job == nil && computeGone(o.pods) {
				break
			}
		}
		if !sleep(bctx, x.poll) {
			out.Log = x.notes.Bytes()
			return out, fmt.Errorf("kubernetes runner: run %s: %s, but %s or its pods were still there %s after it was deleted (check: kubectl -n %s get job,pods -l %s)",
				x.t.RunID, reason, x.jobRef(), gone, x.ns, runSelector(x.t.RunID))
		}
	}
	x.note(x.jobRef(), "gone")
	_, term := x.lastContainer()
	if term != nil && term.ExitCode != 0 {
		out.ExitCode = int(term.ExitCode)
	}
	out.ComputeSeconds = x.computeSeconds(x.job, term)
	out.Log = x.notes.Bytes()
	x.log.Info("kubernetes job gone", "run", x.t.RunID, "job", x.remote(), "err", out.Err)
	return out, nil
}

// lost ends following a run whose Job the API would not show for the
// retry budget: it tries to delete the Job, so that a run recorded failed
// leaves no compute, and says what became of it.
func (x *run) lost(ctx context.Context, apiErr error, failing time.Duration) (job.Outcome, error) {
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	err := x.c.BatchV1().Jobs(x.ns).Delete(bctx, x.name, metav1.DeleteOptions{PropagationPolicy: ptr(metav1.DeletePropagationForeground)})
	what := "it was deleted"
	if err != nil && !apierrors.IsNotFound(err) {
		what = fmt.Sprintf("it could not be deleted either (%v): check it with kubectl -n %s get job %s and delete it", err, x.ns, x.name)
	}
	x.note("run", "lost track of the Job; "+what)
	x.log.Error("kubernetes job lost", "run", x.t.RunID, "job", x.remote(), "err", apiErr)
	return job.Outcome{ExitCode: 1, Log: x.notes.Bytes()}, fmt.Errorf("kubernetes runner: run %s: lost track of %s: the Kubernetes API failed for %s (%v); %s",
		x.t.RunID, x.jobRef(), failing.Round(time.Second), apiErr, what)
}

// condition returns j's condition of type c when it is true.
func condition(j *batchv1.Job, c batchv1.JobConditionType) *batchv1.JobCondition {
	if j == nil {
		return nil
	}
	for i := range j.Status.Conditions {
		if j.Status.Conditions[i].Type == c && j.Status.Conditions[i].Status == corev1.ConditionTrue {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

func containerStatus(p corev1.Pod) *corev1.ContainerStatus {
	for i := range p.Status.ContainerStatuses {
		if p.Status.ContainerStatuses[i].Name == ContainerName {
			return &p.Status.ContainerStatuses[i]
		}
	}
	return nil
}

func isTerminal(p corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// computeGone reports whether no pod of pods may still be running.
func computeGone(pods []corev1.Pod) bool {
	for _, p := range pods {
		if !isTerminal(p) {
			return false
		}
	}
	return true
}

func podFailed(pods []corev1.Pod) bool {
	return slices.ContainsFunc(pods, func(p corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
}

// startedAt reports whether the run's container has started, and when
// (zero: unknown).
func startedAt(o observation) (time.Time, bool) {
	for _, p := range o.pods {
		if cs := containerStatus(p); cs != nil {
			switch {
			case cs.State.Running != nil:
				return cs.State.Running.StartedAt.Time, true
			case cs.State.Terminated != nil && !cs.State.Terminated.StartedAt.IsZero():
				return cs.State.Terminated.StartedAt.Time, true
			}
		}
		if p.Status.Phase == corev1.PodRunning {
			return time.Time{}, true
		}
	}
	if o.job != nil && o.job.Status.Ready != nil && *o.job.Status.Ready > 0 {
		return time.Time{}, true
	}
	return time.Time{}, false
}

// jobState words a Job's state for the run's log.
func jobState(j *batchv1.Job) string {
	for _, c := range []batchv1.JobConditionType{batchv1.JobComplete, batchv1.JobFailed} {
		if cond := condition(j, c); cond != nil {
			return strings.TrimSuffix(fmt.Sprintf("%s %s: %s", c, cond.Reason, cond.Message), ": ")
		}
	}
	if j.DeletionTimestamp != nil {
		return "deleting"
	}
	if j.Status.Active > 0 {
		return "active"
	}
	return "waiting for its pod"
}

// podState words a pod's state for the run's log.
func podState(p corev1.Pod) string {
	s := string(p.Status.Phase)
	if s == "" {
		s = "Pending"
	}
	var detail string
	if cs := containerStatus(p); cs != nil {
		switch {
		case cs.State.Waiting != nil:
			detail = cs.State.Waiting.Reason
			if cs.State.Waiting.Message != "" {
				detail += ": " + capText(cs.State.Waiting.Message)
			}
		case cs.State.Terminated != nil:
			detail = fmt.Sprintf("%s, exit code %d", orDefault(cs.State.Terminated.Reason, "Terminated"), cs.State.Terminated.ExitCode)
		}
	}
	if detail == "" && p.Status.Reason != "" {
		detail = p.Status.Reason + ": " + capText(p.Status.Message)
	}
	if detail == "" {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
				detail = c.Reason + ": " + capText(c.Message)
			}
		}
	}
	if p.DeletionTimestamp != nil {
		s += ", deleting"
	}
	if detail != "" {
		s += " (" + detail + ")"
	}
	return s
}

// capText returns s trimmed to messageCap bytes, marked when cut.
func capText(s string) string {
	s = strings.TrimSpace(s)
	if len(s) <= messageCap {
		return s
	}
	cut := messageCap
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + " […]"
}

// decodeResult decodes a termination message that is a Result. A message
// that is not (the log tail Kubernetes substitutes when the job wrote
// none, even a JSON log line) is quoted instead.
func decodeResult(msg string, res *Result) bool {
	dec := json.NewDecoder(strings.NewReader(msg))
	dec.DisallowUnknownFields()
	if dec.Decode(res) != nil || dec.More() {
		*res = Result{}
		return false
	}
	return true
}
