// Package emrserverless is the `runner: emr-serverless` job runner: it runs
// each run of a spark job (job.KindSpark) as an Amazon EMR Serverless job
// run on an existing application, and follows it to its end. It
// implements job.Remote.
//
// # Idempotency and adoption
//
// A run's job run is started with StartJobRun and clientToken = the run ID,
// so a second Run for the same run (a redelivered trigger, a retried call,
// a process that crashed before recording the job run's id) gets the same
// job run back instead of starting another. Run calls job.NotifyRemote with
// "emr-serverless:<application>/<job run>" as soon as StartJobRun answers;
// a Run whose Task.Remote carries that id follows the job run (GetJobRun)
// without calling StartJobRun at all.
//
// # What is submitted
//
// The job run is named "<Config.Name>-<job>-<run id>" (at most 256
// characters; the job part is shortened) and gets jobDriver.sparkSubmit
// {entryPoint: Spark.EntryPoint, entryPointArguments: Spark.Args,
// sparkSubmitParameters: "--class C" when Spark.Class is set, "--conf k=v"
// per Spark.Conf entry in key order, then Config.SparkSubmitParameters},
// the log URI (Config.LogURI) as its S3 monitoring configuration, the tags
// sluice:run-id, sluice:job and sluice:group (characters the service
// refuses replaced by "_", cut to 256) plus Config.Tags, and, when the run
// has a deadline, executionTimeoutMinutes = the run's whole time budget
// (Deadline − Created, rounded up to minutes, at least 1). It is computed
// from Created rather than from the current time so that a repeated
// StartJobRun for the same client token sends exactly the same
// parameters; sluice itself cancels the job run at the deadline, the
// service's limit is the backstop for when no sluice process follows it.
//
// # Following, cancellation and deadlines
//
// Run polls GetJobRun every PollInterval. SUBMITTED, PENDING, SCHEDULED and
// QUEUED leave the run STARTING; the first RUNNING (or any later state of
// a job run that has a start time) calls job.NotifyStarted(ctx, 0).
// SUCCESS is success; FAILED and CANCELLED are failures whose Outcome.Err
// carries the state and the job run's stateDetails. Outcome.ComputeSeconds
// is the job run's totalExecutionDurationSeconds (its wall time, not
// vCPU-seconds: the vCPU, memory and storage hours are in Outcome.Log).
//
// When ctx ends with cause job.ErrCancelled, or the run's deadline passes
// (by Clock, checked at every poll), Run calls CancelJobRun and keeps
// polling, no longer bound to ctx, until the job run has ended, and reports
// the run failed ("cancelled …", "timed out …"). When ctx ends for any
// other cause, Run returns an error wrapping job.ErrDetached at once and
// leaves the job run running for another process to adopt. If ctx is
// cancelled while StartJobRun is in flight, Run asks again with the same
// client token (which starts nothing new) to learn the job run's id and
// cancel it: a job run started and cancelled at once costs less than one
// nobody follows.
//
// # Errors
//
// Throttling, 5xx answers and network failures are retried with capped
// exponential backoff (Runner.Retry; fault's defaults: 1s doubling to 1m,
// for 6h). A job run that cannot be followed past that budget yields an
// error wrapping job.ErrDetached (it may still be running). Other 4xx
// answers are permanent (fault.Permanent): an unknown application, a
// request EMR Serverless rejects, a job run that does not exist. So are a
// task of another kind than spark and an invalid Config.
package emrserverless

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/emrserverless"
	"github.com/aws/aws-sdk-go-v2/service/emrserverless/types"
	"github.com/aws/smithy-go"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/internal/awsconf"
	"github.com/sluicehq/sluice/job"
)

// RunnerName is the runner's name in a spec and the prefix of its remote
// ids.
const RunnerName = "emr-serverless"

// DefaultPollInterval is how often Run asks for the job run's state when
// Runner.PollInterval is 0.
const DefaultPollInterval = 15 * time.Second

// Tag keys the runner sets on every job run.
const (
	TagRunID = "sluice:run-id"
	TagJob   = "sluice:job"
	TagGroup = "sluice:group"
)

// RemoteID is the job.Run.Remote of job run id on application app:
// "emr-serverless:<app>/<id>".
func RemoteID(app, id string) string { return RunnerName + ":" + app + "/" + id }

// ParseRemote splits a RemoteID; ok is false for anything else.
func ParseRemote(remote string) (app, id string, ok bool) {
	rest, ok := strings.CutPrefix(remote, RunnerName+":")
	if !ok {
		return "", "", false
	}
	app, id, ok = strings.Cut(rest, "/")
	if !ok || app == "" || id == "" || strings.Contains(id, "/") {
		return "", "", false
	}
	return app, id, true
}

// Runner runs spark tasks as EMR Serverless job runs on Config's
// application. Set Config and leave the rest zero for production; a Runner
// is safe for concurrent use by many runs.
type Runner struct {
	Config
	// Client is the EMR Serverless client; nil builds one on first use
	// with config.LoadDefaultConfig, Config.Region and Config.Endpoint.
	Client *emrserverless.Client
	// PollInterval is the wait between GetJobRun calls (default
	// DefaultPollInterval).
	PollInterval time.Duration
	// Retry is the backoff and budget for throttled and failed API calls
	// (zero: fault's defaults).
	Retry fault.Retry
	// Clock is the time for deadlines and retry budgets (default
	// time.Now).
	Clock func() time.Time
	// Logger gets a line per start, state change, retry and end (default
	// slog.Default()).
	Logger *slog.Logger

	mu    sync.Mutex
	built *emrserverless.Client
}

var _ job.Remote = (*Runner)(nil)

// RemoteName returns "emr-serverless".
func (r *Runner) RemoteName() string { return RunnerName }

func (r *Runner) now() time.Time {
	if r.Clock != nil {
		return r.Clock()
	}
	return time.Now()
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

func (r *Runner) pollInterval() time.Duration {
	if r.PollInterval > 0 {
		return r.PollInterval
	}
	return DefaultPollInterval
}

func (r *Runner) client(ctx context.Context) (*emrserverless.Client, error) {
	if r.Client != nil {
		return r.Client, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.built != nil {
		return r.built, nil
	}
	cfg, err := awsconf.Load(ctx, r.Region, "emr-serverless runner", "set region in the runner spec")
	if err != nil {
		return nil, err
	}
	r.built = emrserverless.NewFromConfig(cfg, func(o *emrserverless.Options) { o.BaseEndpoint = awsconf.Endpoint(r.Endpoint) })
	return r.built, nil
}

// Run starts (or finds, or follows) the EMR Serverless job run of t and
// returns once it has ended; see the package doc for the whole contract.
// The error is for runs that cannot be started or followed; a job run that
// fails is an Outcome with ExitCode 1 and Err.
func (r *Runner) Run(ctx context.Context, t job.Task) (job.Outcome, error) {
	if t.Kind != job.KindSpark {
		return job.Outcome{}, fault.Permanent(fmt.Errorf("emr-serverless runner: run %s of job %s: a %q job cannot run on EMR Serverless, which runs %q jobs only: give the job another runner",
			t.RunID, t.Rule, t.Kind, job.KindSpark))
	}
	if t.RunID == "" || len(t.RunID) > 64 {
		return job.Outcome{}, fault.Permanent(fmt.Errorf("emr-serverless runner: job %s: run id %q cannot be a client token (1 to 64 characters)", t.Rule, t.RunID))
	}
	if err := r.Config.Check(); err != nil {
		return job.Outcome{}, fault.Permanent(fmt.Errorf("run %s of job %s: %w", t.RunID, t.Rule, err))
	}
	cl, err := r.client(ctx)
	if err != nil {
		return job.Outcome{}, fmt.Errorf("run %s of job %s: %w", t.RunID, t.Rule, err)
	}
	f := &follower{r: r, t: t, cl: cl, log: r.logger().With("run", t.RunID, "job", t.Rule), deadline: r.deadline(t)}
	if t.Remote != "" {
		app, id, ok := ParseRemote(t.Remote)
		if !ok {
			return job.Outcome{}, fault.Permanent(fmt.Errorf("emr-serverless runner: run %s of job %s runs on %q, which this runner cannot follow: stop it where it runs",
				t.RunID, t.Rule, t.Remote))
		}
		f.app, f.id, f.adopted = app, id, true
		f.log = f.log.With("application", app, "job_run", id)
		f.log.Info("following the EMR Serverless job run started earlier")
	} else {
		in, err := r.startInput(t)
		if err != nil {
			return job.Outcome{}, err
		}
		if !f.deadline.IsZero() && !r.now().Before(f.deadline) {
			return failed(fmt.Sprintf("timed out: the run's deadline %s passed before its EMR Serverless job run was started", f.deadline.Format(time.RFC3339))), nil
		}
		if out, err := f.start(ctx, in); err != nil || out != nil {
			return deref(out), err
		}
	}
	job.NotifyRemote(ctx, RemoteID(f.app, f.id))
	return f.follow(ctx)
}

// deadline is when t must be over: t.Deadline, or when that is zero and
// t.Timeout is set, Created + Timeout (the current time when Created is
// zero too).
func (r *Runner) deadline(t job.Task) time.Time {
	if !t.Deadline.IsZero() || t.Timeout <= 0 {
		return t.Deadline
	}
	if t.Created.IsZero() {
		return r.now().Add(t.Timeout)
	}
	return t.Created.Add(t.Timeout)
}

func failed(msg string) job.Outcome { return job.Outcome{ExitCode: 1, Err: msg} }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// startInput builds StartJobRun's input for t; its errors are permanent.
func (r *Runner) startInput(t job.Task) (*emrserverless.StartJobRunInput, error) {
	bad := func(format string, args ...any) error {
		return fault.Permanent(fmt.Errorf("emr-serverless runner: run %s of job %s: %s", t.RunID, t.Rule, fmt.Sprintf(format, args...)))
	}
	sp := t.Spark
	if sp == nil || sp.EntryPoint == "" {
		return nil, bad("no spark entry point: set the job's spark entry point (an s3:// script or JAR)")
	}
	if len(sp.EntryPoint) > 256 {
		return nil, bad("spark entry point %q is longer than the 256 characters EMR Serverless accepts", sp.EntryPoint)
	}
	for i, a := range sp.Args {
		if a == "" || len(a) > 10280 {
			return nil, bad("spark argument %d has %d characters; EMR Serverless accepts 1 to 10280", i+1, len(a))
		}
	}
	params, err := submitParameters(sp, r.SparkSubmitParameters)
	if err != nil {
		return nil, bad("%v", err)
	}
	prefix := r.Name
	if prefix == "" {
		prefix = DefaultName
	}
	jobName := t.Rule
	if over := len(prefix) + len(jobName) + len(t.RunID) + 2 - maxName; over > 0 {
		jobName = truncate(jobName, len(jobName)-over)
	}
	tags := make(map[string]string, len(r.Tags)+3)
	for k, v := range r.Tags {
		tags[k] = v
	}
	tags[TagRunID], tags[TagJob], tags[TagGroup] = tagValue(t.RunID), tagValue(t.Rule), tagValue(t.Group)
	driver := types.SparkSubmit{EntryPoint: aws.String(sp.EntryPoint), EntryPointArguments: sp.Args}
	if params != "" {
		driver.SparkSubmitParameters = aws.String(params)
	}
	in := &emrserverless.StartJobRunInput{
		ApplicationId:    aws.String(r.ApplicationID),
		ClientToken:      aws.String(t.RunID),
		ExecutionRoleArn: aws.String(r.ExecutionRole),
		Name:             aws.String(prefix + "-" + jobName + "-" + t.RunID),
		JobDriver:        &types.JobDriverMemberSparkSubmit{Value: driver},
		Tags:             tags,
	}
	if r.LogURI != "" {
		in.ConfigurationOverrides = &types.ConfigurationOverrides{MonitoringConfiguration: &types.MonitoringConfiguration{
			S3MonitoringConfiguration: &types.S3MonitoringConfiguration{LogUri: aws.String(r.LogURI)}}}
	}
	if m := timeoutMinutes(t, r.deadline(t)); m > 0 {
		in.ExecutionTimeoutMinutes = aws.Int64(m)
	}
	return in, nil
}

// timeoutMinutes is the run's whole time budget in minutes, rounded up
// (at least 1; 0 without a deadline).
func timeoutMinutes(t job.Task, deadline time.Time) int64 {
	if deadline.IsZero() {
		return 0
	}
	from := t.Created
	if from.IsZero() {
		from = deadline.Add(-t.Timeout)
	}
	d := deadline.Sub(from)
	m := int64((d + time.Minute - 1) / time.Minute)
	return min(max(m, 1), 1000000)
}

// submitParameters is "--class C --conf k=v … <extra>". The service splits
// the string on spaces, so a class, key or value with whitespace is an
// error rather than a silently broken submission.
func submitParameters(sp *job.Spark, extra string) (string, error) {
	var parts []string
	if sp.Class != "" {
		if strings.ContainsFunc(sp.Class, isSpace) {
			return "", fmt.Errorf("spark class %q contains whitespace", sp.Class)
		}
		parts = append(parts, "--class", sp.Class)
	}
	keys := make([]string, 0, len(sp.Conf))
	for k := range sp.Conf {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		kv := k + "=" + sp.Conf[k]
		if k == "" || strings.ContainsFunc(kv, isSpace) {
			return "", fmt.Errorf("spark conf %q: EMR Serverless splits sparkSubmitParameters on whitespace, so keys and values cannot contain any (put such settings in the application's configuration)", kv)
		}
		parts = append(parts, "--conf", kv)
	}
	if extra = strings.TrimSpace(extra); extra != "" {
		parts = append(parts, extra)
	}
	s := strings.Join(parts, " ")
	if len(s) > maxSubmitParams {
		return "", fmt.Errorf("sparkSubmitParameters have %d characters; EMR Serverless accepts %d", len(s), maxSubmitParams)
	}
	return s, nil
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\v' || r == '\f'
}

// tagValue makes s a valid tag value: characters the service refuses
// become "_", and it is cut to 256 bytes.
func tagValue(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < utf8.RuneSelf && tagChars.MatchString(string(r)) {
			return r
		}
		return '_'
	}, s)
	return truncate(s, maxTagValue)
}

// truncate cuts s to at most n bytes, at a rune boundary.
func truncate(s string, n int) string {
	if n <= 0 {
		return ""
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// follower follows one run's job run.
type follower struct {
	r        *Runner
	t        job.Task
	cl       *emrserverless.Client
	log      *slog.Logger
	deadline time.Time

	app, id    string
	adopted    bool   // the job run came from Task.Remote
	stop       string // why sluice is stopping the job run ("": it is not)
	cancelSent bool
	started    bool     // NotifyStarted was called
	seen       []string // the states seen, each change once
}

func (f *follower) ref() string { return fmt.Sprintf("EMR Serverless job run %s/%s", f.app, f.id) }

// ctxEnded handles the end of ctx: cancellation makes the follower stop
// the job run (nil); any other cause detaches from it (the error).
func (f *follower) ctxEnded(ctx context.Context) error {
	cause := context.Cause(ctx)
	if errors.Is(cause, job.ErrCancelled) {
		if f.stop == "" {
			f.stop = "cancelled: " + cause.Error()
			f.log.Info("cancelling the EMR Serverless job run: the run was cancelled")
		}
		return nil
	}
	what := "starting"
	if f.id != "" {
		what = f.ref() + " keeps running"
	}
	f.log.Info("stopped following the EMR Serverless job run; it keeps running", "cause", cause)
	return fmt.Errorf("emr-serverless runner: run %s of job %s (%s; %v): %w", f.t.RunID, f.t.Rule, what, cause, job.ErrDetached)
}

// start calls StartJobRun. It returns an Outcome when the run ends before
// any job run exists, and sets f.app and f.id otherwise.
func (f *follower) start(ctx context.Context, in *emrserverless.StartJobRunInput) (*job.Outcome, error) {
	f.app = *in.ApplicationId
	if ctx.Err() != nil {
		if err := f.ctxEnded(ctx); err != nil {
			return nil, err
		}
		out := failed("cancelled before its EMR Serverless job run was started")
		return &out, nil
	}
	var out *emrserverless.StartJobRunOutput
	call := func(c context.Context) (err error) {
		out, err = f.cl.StartJobRun(c, in)
		return err
	}
	err := f.r.retry(ctx, f.log, "StartJobRun", call)
	if err != nil && ctx.Err() != nil {
		if derr := f.ctxEnded(ctx); derr != nil {
			return nil, derr
		}
		// The job run may exist: the same client token answers it (or
		// starts it, to be cancelled at once) and its id lets us cancel it.
		err = f.r.retry(context.WithoutCancel(ctx), f.log, "StartJobRun", call)
	}
	if err != nil {
		return nil, f.startError(err)
	}
	if out.JobRunId == nil || *out.JobRunId == "" {
		return nil, fmt.Errorf("emr-serverless runner: run %s of job %s: StartJobRun on application %s answered no job run id", f.t.RunID, f.t.Rule, f.app)
	}
	f.id = *out.JobRunId
	f.log = f.log.With("application", f.app, "job_run", f.id)
	f.log.Info("EMR Serverless job run started", "name", deref(in.Name))
	return nil, nil
}

func (f *follower) startError(err error) error {
	where := fmt.Sprintf("emr-serverless runner: run %s of job %s: start a job run on application %s", f.t.RunID, f.t.Rule, f.app)
	if !fault.IsPermanent(err) {
		return fmt.Errorf("%s: %w", where, err)
	}
	var nf *types.ResourceNotFoundException
	var ve *types.ValidationException
	switch {
	case errors.As(err, &nf):
		return fault.Permanent(fmt.Errorf("%s: application %s not found (%s): check application_id and region: %w", where, f.app, deref(nf.Message), err))
	case errors.As(err, &ve):
		return fault.Permanent(fmt.Errorf("%s: EMR Serverless rejected the job run for application %s (%s): check execution_role, the spark entry point and parameters: %w",
			where, f.app, deref(ve.Message), err))
	}
	return fault.Permanent(fmt.Errorf("%s: %w", where, err))
}

// follow polls the job run until it has ended.
func (f *follower) follow(ctx context.Context) (job.Outcome, error) {
	cctx := ctx // the API calls' ctx: no longer cancelled once stopping
	if f.stop != "" {
		cctx = context.WithoutCancel(ctx)
	}
	first := true
	for {
		jr, err := f.get(cctx)
		if err != nil {
			if cctx.Err() != nil {
				if derr := f.ctxEnded(ctx); derr != nil {
					return job.Outcome{}, derr
				}
				cctx = context.WithoutCancel(ctx)
				continue
			}
			return job.Outcome{}, err
		}
		if first && f.adopted {
			if tag, ok := jr.Tags[TagRunID]; ok && tag != tagValue(f.t.RunID) {
				return job.Outcome{}, fault.Permanent(fmt.Errorf("emr-serverless runner: run %s of job %s: %s belongs to run %s, not this one: its record is wrong",
					f.t.RunID, f.t.Rule, f.ref(), tag))
			}
		}
		first = false
		f.observe(ctx, jr)
		if isTerminal(jr.State) {
			return f.outcome(jr), nil
		}
		if f.stop == "" && !f.deadline.IsZero() && !f.r.now().Before(f.deadline) {
			f.stop = fmt.Sprintf("timed out: the run's deadline %s passed", f.deadline.Format(time.RFC3339))
			f.log.Info("cancelling the EMR Serverless job run: the run's deadline passed", "deadline", f.deadline)
			cctx = context.WithoutCancel(ctx)
		}
		if f.stop != "" && !f.cancelSent {
			if jr.State == types.JobRunStateCancelling {
				f.cancelSent = true
			} else if err := f.cancel(cctx); err != nil {
				return job.Outcome{}, err
			}
		}
		timer := time.NewTimer(f.r.pollInterval())
		select {
		case <-timer.C:
		case <-cctx.Done():
			timer.Stop()
			if derr := f.ctxEnded(ctx); derr != nil {
				return job.Outcome{}, derr
			}
			cctx = context.WithoutCancel(ctx)
		}
	}
}

func (f *follower) get(ctx context.Context) (*types.JobRun, error) {
	var jr *types.JobRun
	err := f.r.retry(ctx, f.log, "GetJobRun", func(c context.Context) error {
		out, err := f.cl.GetJobRun(c, &emrserverless.GetJobRunInput{ApplicationId: aws.String(f.app), JobRunId: aws.String(f.id)})
		if err == nil {
			if out.JobRun == nil {
				return fmt.Errorf("GetJobRun answered no job run")
			}
			jr = out.JobRun
		}
		return err
	})
	switch {
	case err == nil:
		return jr, nil
	case ctx.Err() != nil:
		return nil, err
	case fault.IsPermanent(err):
		return nil, fault.Permanent(fmt.Errorf("emr-serverless runner: run %s of job %s: read %s: %w", f.t.RunID, f.t.Rule, f.ref(), err))
	}
	return nil, fmt.Errorf("emr-serverless runner: run %s of job %s: lost track of %s, which may still be running (%w): %w", f.t.RunID, f.t.Rule, f.ref(), err, job.ErrDetached)
}

// cancel asks the service to cancel the job run. A refusal (the job run
// ended meanwhile, most likely) is logged; the next poll tells.
func (f *follower) cancel(ctx context.Context) error {
	err := f.r.retry(ctx, f.log, "CancelJobRun", func(c context.Context) error {
		_, err := f.cl.CancelJobRun(c, &emrserverless.CancelJobRunInput{ApplicationId: aws.String(f.app), JobRunId: aws.String(f.id)})
		return err
	})
	switch {
	case err == nil:
		f.cancelSent = true
		f.log.Info("EMR Serverless job run cancellation requested")
		return nil
	case fault.IsPermanent(err):
		f.cancelSent = true
		f.log.Warn("EMR Serverless refused to cancel the job run; following it until it ends", "err", err)
		return nil
	}
	// Detached, not failed: the job run may still be running, so the run
	// is left for a later follower, never retried as a second job run.
	return fmt.Errorf("emr-serverless runner: run %s of job %s: could not cancel %s, which may still be running: cancel it with `aws emr-serverless cancel-job-run --application-id %s --job-run-id %s`: %w: %w",
		f.t.RunID, f.t.Rule, f.ref(), f.app, f.id, job.ErrDetached, err)
}

func isTerminal(s types.JobRunState) bool {
	return s == types.JobRunStateSuccess || s == types.JobRunStateFailed || s == types.JobRunStateCancelled
}

func isWaiting(s types.JobRunState) bool {
	return s == types.JobRunStateSubmitted || s == types.JobRunStatePending || s == types.JobRunStateScheduled || s == types.JobRunStateQueued
}

// observe records the job run's state and reports its start once.
func (f *follower) observe(ctx context.Context, jr *types.JobRun) {
	s := string(jr.State)
	if len(f.seen) == 0 || f.seen[len(f.seen)-1] != s {
		f.seen = append(f.seen, s)
		f.log.Info("EMR Serverless job run state", "state", s, "details", deref(jr.StateDetails))
	}
	if !f.started && (jr.State == types.JobRunStateRunning || (jr.StartedAt != nil && !isWaiting(jr.State))) {
		f.started = true
		job.NotifyStarted(ctx, 0)
	}
}

// outcome reports the ended job run jr.
func (f *follower) outcome(jr *types.JobRun) job.Outcome {
	out := job.Outcome{ComputeSeconds: float64(deref(jr.TotalExecutionDurationSeconds))}
	details := deref(jr.StateDetails)
	if details == "" {
		details = "no details given"
	}
	switch jr.State {
	case types.JobRunStateFailed:
		out.Err = fmt.Sprintf("%s FAILED: %s", f.ref(), details)
		if f.stop != "" {
			out.Err = f.stop + "; " + out.Err
		}
	case types.JobRunStateCancelled:
		if f.stop != "" {
			out.Err = fmt.Sprintf("%s; %s was cancelled", f.stop, f.ref())
		} else {
			out.Err = fmt.Sprintf("%s was CANCELLED outside sluice: %s", f.ref(), details)
		}
	}
	logs := logLocation(jr)
	if out.Err != "" {
		out.ExitCode = 1
		if logs != "" {
			out.Err += " (logs: " + logs + ")"
		}
	}
	out.Log = f.logText(jr, logs)
	f.log.Info("EMR Serverless job run ended", "state", string(jr.State), "execution_seconds", out.ComputeSeconds, "err", out.Err)
	return out
}

// logLocation is where the job run's logs are in S3 ("" when it has no
// S3 log URI).
func logLocation(jr *types.JobRun) string {
	co := jr.ConfigurationOverrides
	if co == nil || co.MonitoringConfiguration == nil || co.MonitoringConfiguration.S3MonitoringConfiguration == nil {
		return ""
	}
	uri := deref(co.MonitoringConfiguration.S3MonitoringConfiguration.LogUri)
	if uri == "" {
		return ""
	}
	return strings.TrimSuffix(uri, "/") + "/applications/" + deref(jr.ApplicationId) + "/jobs/" + deref(jr.JobRunId) + "/"
}

func (f *follower) logText(jr *types.JobRun, logs string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (name %q) for run %s of job %s\n", f.ref(), deref(jr.Name), f.t.RunID, f.t.Rule)
	fmt.Fprintf(&b, "states seen: %s\n", strings.Join(f.seen, " → "))
	if d := deref(jr.StateDetails); d != "" {
		fmt.Fprintf(&b, "state details: %s\n", d)
	}
	if f.stop != "" {
		fmt.Fprintf(&b, "sluice stopped it: %s\n", f.stop)
	}
	fmt.Fprintf(&b, "total execution: %ds", deref(jr.TotalExecutionDurationSeconds))
	if u := jr.TotalResourceUtilization; u != nil {
		fmt.Fprintf(&b, "; vCPU-hours %.4g, memory GB-hours %.4g, storage GB-hours %.4g", deref(u.VCPUHour), deref(u.MemoryGBHour), deref(u.StorageGBHour))
	}
	b.WriteString("\n")
	if logs != "" {
		fmt.Fprintf(&b, "logs: %s\n", logs)
	}
	return []byte(b.String())
}

// retry calls f until it succeeds, fails permanently (the error is then
// marked fault.Permanent), ctx ends (ctx's error from the call is
// returned) or transient failures outlast r.Retry's budget.
func (r *Runner) retry(ctx context.Context, log *slog.Logger, op string, f func(context.Context) error) error {
	var first time.Time
	for attempt := 1; ; attempt++ {
		err := f(ctx)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if !transient(err) {
			return fault.Permanent(err)
		}
		now := r.now()
		if first.IsZero() {
			first = now
		}
		if r.Retry.GiveUp(first, now) {
			return fmt.Errorf("%s still failing after %d attempts over %s (retry budget %s): %w", op, attempt, now.Sub(first).Round(time.Second), r.Retry.Budget(), err)
		}
		d := r.Retry.Delay(attempt)
		log.Warn("EMR Serverless call failed; retrying", "op", op, "attempt", attempt, "in", d, "err", err)
		if fault.Sleep(ctx, d) != nil {
			return err
		}
	}
}

// throttles are the error codes that mean "slow down", whatever their
// HTTP status.
var throttles = []string{"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded", "SlowDown", "ProvisionedThroughputExceededException"}

// transient reports whether an API call's error is worth retrying:
// throttling, a 5xx or 408 answer, or no answer at all (network). Any other
// answered error (4xx) means the request itself is wrong.
func transient(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && slices.Contains(throttles, ae.ErrorCode()) {
		return true
	}
	var se *smithy.SerializationError
	if errors.As(err, &se) {
		return false
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		s := re.HTTPStatusCode()
		return s == 408 || s == 429 || s >= 500
	}
	return true
}
