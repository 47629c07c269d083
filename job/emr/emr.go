// Package emr is `runner: emr`: it runs each run of a Spark job on its own
// transient Amazon EMR cluster, which exists only while the run does.
//
// # Lifecycle
//
// Run starts one cluster per run (RunJobFlow) with a single step,
// spark-submit in cluster mode through command-runner.jar, and
// KeepJobFlowAliveWhenNoSteps false and ActionOnFailure TERMINATE_CLUSTER:
// the cluster terminates by itself once the step ends, whatever its
// result, and an idle timeout (AutoTerminationPolicy) is the safety net.
// Run then polls DescribeCluster and ListSteps every PollInterval and
// returns once the cluster is TERMINATED or TERMINATED_WITH_ERRORS: the
// run succeeded when its step COMPLETED, and failed otherwise, with EMR's
// reasons (the step's FailureDetails, the cluster's StateChangeReason) in
// Outcome.Err.
//
// # Idempotency
//
// Every cluster is named "<name>-<job>-<run id>" and tagged sluice:run-id,
// sluice:job and sluice:group. Before starting a cluster Run looks for one
// already started for the run: Task.Remote ("emr:<cluster id>") when the
// run record has it, else ListClusters (created since a minute before
// Task.Created, every state) for a name containing the run ID, confirmed by
// the sluice:run-id tag. A redelivered trigger, a retried call or an
// adopting process therefore follows the existing cluster instead of
// starting a second one. ListClusters is eventually consistent and EMR has
// no client token for RunJobFlow, so two processes that start the same run
// within seconds could still start two clusters; job.Manager's claim on
// the group prevents that.
//
// # Cancellation, timeouts, detaching
//
// When ctx ends with cause job.ErrCancelled, or Task.Deadline passes (by
// Runner.Clock), Run terminates the cluster (TerminateJobFlows), follows
// it until it is gone, and reports the run failed ("cancelled", "timed out
// after ..."). A cluster that never leaves STARTING is ended by the
// deadline like any other. When ctx ends for any other cause Run returns
// job.ErrDetached at once and leaves the cluster alone, for a live process
// to adopt.
//
// # Outcome
//
// Outcome.ComputeSeconds is the cluster's lifetime (Timeline
// CreationDateTime to EndDateTime, to the second) times its instance
// count from Config: the sum of the instance group counts, or for fleets
// the sum of the target capacities, an approximation (capacity units are
// not instances when types are weighted, and nodes start and stop at
// different times). Outcome.Log is a short transcript: the cluster and
// step ids, where EMR writes their logs (under LogURI), and every state
// change Run saw.
//
// # Permissions
//
// The caller needs elasticmapreduce:RunJobFlow, ListClusters,
// DescribeCluster, ListSteps and TerminateJobFlows, and iam:PassRole on
// the service role and on the role of the instance profile.
//
// # Errors
//
// Throttling, 5xx answers and network errors are retried by the SDK and
// then, while following, by Run itself with capped exponential backoff,
// up to MaxPollErrors failed polls in a row. Requests EMR rejects as
// invalid (ValidationException, InvalidRequestException) and missing
// permissions are fault.Permanent errors.
package emr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/emr"
	"github.com/aws/aws-sdk-go-v2/service/emr/types"
	"github.com/aws/smithy-go"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/job"
)

// Name is the runner's name in a spec, and the prefix of Run.Remote.
const Name = "emr"

// Defaults of Runner.
const (
	DefaultPollInterval  = 30 * time.Second
	DefaultMaxBackoff    = 5 * time.Minute
	DefaultMaxPollErrors = 30
)

// Runner runs Spark tasks on transient EMR clusters. Set Config (Check it
// first) and Job; the other fields have defaults. A Runner is safe for
// concurrent use; each Run follows its own cluster.
type Runner struct {
	Config
	// Client is the EMR client; nil builds one from Config (NewClient) on
	// first use.
	Client *emr.Client
	// Job is the sluice job's name, put in cluster names and tags.
	Job string
	// PollInterval is how often a cluster is looked at (default 30s).
	PollInterval time.Duration
	// MaxBackoff caps the wait after failed polls (default 5m, and never
	// less than PollInterval); MaxPollErrors is how many failed polls in a
	// row Run survives before giving up on a cluster (default 30).
	MaxBackoff    time.Duration
	MaxPollErrors int
	// Clock tells the time for deadlines and the transcript (default
	// time.Now).
	Clock func() time.Time
	// Logger gets a line per cluster start, state change and end (default
	// slog.Default()).
	Logger *slog.Logger

	mu     sync.Mutex
	client *emr.Client
}

var _ job.Remote = (*Runner)(nil)

// New returns a Runner for job name with cfg; it does not check cfg.
func New(cfg Config, name string) *Runner { return &Runner{Config: cfg, Job: name} }

// RemoteName returns "emr".
func (r *Runner) RemoteName() string { return Name }

// Run runs t (a Task of kind spark) on a transient EMR cluster and
// returns once the cluster has terminated; see the package doc for the
// whole contract. The error is for failures to start or follow the
// cluster, and job.ErrDetached when ctx ended for another cause than
// job.ErrCancelled.
func (r *Runner) Run(ctx context.Context, t job.Task) (job.Outcome, error) {
	if t.Kind != job.KindSpark {
		return job.Outcome{}, fault.Permanent(fmt.Errorf("emr runner: job %s run %s: the emr runner runs spark jobs; this task is of kind %q: use kind: spark, or another runner", r.Job, t.RunID, t.Kind))
	}
	if t.Spark == nil || t.Spark.EntryPoint == "" {
		return job.Outcome{}, fault.Permanent(fmt.Errorf("emr runner: job %s run %s: the emr runner runs spark jobs; this spark task has no entry point: set the job's spark entry_point", r.Job, t.RunID))
	}
	if t.RunID == "" {
		return job.Outcome{}, fault.Permanent(fmt.Errorf("emr runner: job %s: the task has no run id", r.Job))
	}
	if err := r.Config.Check(); err != nil {
		return job.Outcome{}, fault.Permanent(fmt.Errorf("emr runner: job %s run %s: %w", r.Job, t.RunID, err))
	}
	client, err := r.emrClient(ctx)
	if err != nil {
		return job.Outcome{}, fmt.Errorf("emr runner: job %s run %s: %w", r.Job, t.RunID, err)
	}
	f := &follower{r: r, cfg: r.Config.withDefaults(), c: client, t: t, now: r.Clock, log: r.Logger,
		poll: r.PollInterval, maxBackoff: r.MaxBackoff, maxFails: r.MaxPollErrors}
	if f.now == nil {
		f.now = time.Now
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	if f.poll <= 0 {
		f.poll = DefaultPollInterval
	}
	if f.maxBackoff <= 0 {
		f.maxBackoff = DefaultMaxBackoff
	}
	f.maxBackoff = max(f.maxBackoff, f.poll)
	if f.maxFails <= 0 {
		f.maxFails = DefaultMaxPollErrors
	}
	f.log = f.log.With("job", r.Job, "run", t.RunID)
	return f.run(ctx)
}

func (r *Runner) emrClient(ctx context.Context) (*emr.Client, error) {
	if r.Client != nil {
		return r.Client, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.client == nil {
		c, err := NewClient(ctx, r.Config)
		if err != nil {
			return nil, err
		}
		r.client = c
	}
	return r.client, nil
}

// follower follows one run's cluster.
type follower struct {
	r          *Runner
	cfg        Config // with defaults
	c          *emr.Client
	t          job.Task
	now        func() time.Time
	log        *slog.Logger
	poll       time.Duration
	maxBackoff time.Duration
	maxFails   int

	cluster    string // id, once known
	step       string // id, once seen
	state      types.ClusterState
	stepState  types.StepState
	started    bool     // NotifyStarted was called
	transcript []string // state changes, for Outcome.Log
}

func (f *follower) errorf(format string, args ...any) error {
	prefix := fmt.Sprintf("emr runner: job %s run %s", f.r.Job, f.t.RunID)
	if f.cluster != "" {
		prefix += " cluster " + f.cluster
	}
	return fmt.Errorf("%s: "+format, append([]any{prefix}, args...)...)
}

func (f *follower) note(format string, args ...any) {
	f.transcript = append(f.transcript, f.now().UTC().Format(time.RFC3339)+" "+fmt.Sprintf(format, args...))
}

func (f *follower) run(ctx context.Context) (job.Outcome, error) {
	if f.t.Remote != "" {
		id, ok := strings.CutPrefix(f.t.Remote, Name+":")
		if !ok || id == "" {
			return job.Outcome{}, fault.Permanent(f.errorf("its remote compute is %q, not an EMR cluster (emr:<cluster id>): it was started by another runner", f.t.Remote))
		}
		f.cluster = id
		f.note("following cluster %s, recorded for the run", id)
		f.log.Info("emr cluster followed", "cluster", id)
		job.NotifyRemote(ctx, Name+":"+id)
		return f.follow(ctx)
	}
	id, err := f.findWithin(ctx, startAttempts)
	if err != nil {
		if ctx.Err() != nil {
			return f.endedBeforeCluster(ctx)
		}
		return job.Outcome{}, err
	}
	if id != "" {
		f.cluster = id
		f.note("found cluster %s, started earlier for this run", id)
		f.log.Info("emr cluster of the run found", "cluster", id)
		job.NotifyRemote(ctx, Name+":"+id)
		return f.follow(ctx)
	}
	if ctx.Err() != nil {
		return f.endedBeforeCluster(ctx)
	}
	if f.pastDeadline() {
		return job.Outcome{ExitCode: 1, Err: fmt.Sprintf("timed out after %s before its EMR cluster was started", f.timeout())}, nil
	}
	if err := f.start(ctx); err != nil {
		if f.cluster == "" && ctx.Err() != nil {
			return f.endedBeforeCluster(ctx)
		}
		return job.Outcome{}, err
	}
	return f.follow(ctx)
}

// endedBeforeCluster is Run's result when ctx ended before a cluster was
// known.
func (f *follower) endedBeforeCluster(ctx context.Context) (job.Outcome, error) {
	if errors.Is(context.Cause(ctx), job.ErrCancelled) {
		// An earlier attempt of this run (before an adoption) may have
		// started its cluster: find it, to terminate it.
		if id, err := f.findWithin(context.WithoutCancel(ctx), startAttempts); err == nil && id != "" {
			f.cluster = id
			f.note("found cluster %s of this run, to terminate it", id)
			job.NotifyRemote(ctx, Name+":"+id)
			return f.follow(ctx)
		}
		return job.Outcome{ExitCode: 1, Err: "cancelled before an EMR cluster was started"}, nil
	}
	return job.Outcome{}, f.errorf("%w", job.ErrDetached)
}

func (f *follower) pastDeadline() bool {
	return !f.t.Deadline.IsZero() && !f.now().Before(f.t.Deadline)
}

func (f *follower) timeout() time.Duration {
	if f.t.Created.IsZero() {
		return f.t.Timeout
	}
	return f.t.Deadline.Sub(f.t.Created)
}

// startAttempts bounds the attempts of each call made before a cluster
// exists: failing to start is an error the caller retries with its own
// backoff, while nothing runs.
const startAttempts = 5

// findWithin is find with at most attempts attempts per call.
func (f *follower) findWithin(ctx context.Context, attempts int) (string, error) {
	saved := f.maxFails
	f.maxFails = min(saved, attempts)
	defer func() { f.maxFails = saved }()
	return f.find(ctx)
}

var allClusterStates = []types.ClusterState{
	types.ClusterStateStarting, types.ClusterStateBootstrapping, types.ClusterStateRunning, types.ClusterStateWaiting,
	types.ClusterStateTerminating, types.ClusterStateTerminated, types.ClusterStateTerminatedWithErrors,
}

// find returns the id of a cluster already started for the run ("" when
// there is none): one whose name contains the run ID and whose
// sluice:run-id tag is the run ID.
func (f *follower) find(ctx context.Context) (string, error) {
	in := &emr.ListClustersInput{ClusterStates: allClusterStates}
	if !f.t.Created.IsZero() {
		in.CreatedAfter = aws.Time(f.t.Created.Add(-time.Minute))
	}
	var candidates []string
	for {
		var out *emr.ListClustersOutput
		err := f.retry(ctx, "list clusters", func(ctx context.Context) (err error) {
			out, err = f.c.ListClusters(ctx, in)
			return err
		})
		if err != nil {
			return "", err
		}
		for _, s := range out.Clusters {
			if strings.Contains(aws.ToString(s.Name), f.t.RunID) && s.Id != nil {
				candidates = append(candidates, *s.Id)
			}
		}
		if aws.ToString(out.Marker) == "" {
			break
		}
		in.Marker = out.Marker
	}
	for _, id := range candidates {
		var out *emr.DescribeClusterOutput
		err := f.retry(ctx, "describe cluster "+id, func(ctx context.Context) (err error) {
			out, err = f.c.DescribeCluster(ctx, &emr.DescribeClusterInput{ClusterId: aws.String(id)})
			return err
		})
		if err != nil {
			return "", err
		}
		if out.Cluster != nil && tag(out.Cluster.Tags, TagRunID) == f.t.RunID {
			return id, nil
		}
	}
	return "", nil
}

func tag(tags []types.Tag, key string) string {
	for _, t := range tags {
		if aws.ToString(t.Key) == key {
			return aws.ToString(t.Value)
		}
	}
	return ""
}

// start creates the run's cluster and reports its id.
func (f *follower) start(ctx context.Context) error {
	in := f.request()
	out, err := f.c.RunJobFlow(ctx, in)
	if err != nil {
		if permanent(err) {
			return fault.Permanent(f.errorf("EMR rejected the cluster request: %w; check the emr runner settings (release_label, roles, instance types, subnets)", err))
		}
		// The request may have created the cluster before failing (a
		// timeout, a lost answer): look before giving up.
		look := ctx
		if errors.Is(context.Cause(ctx), job.ErrCancelled) {
			look = context.WithoutCancel(ctx) // a cluster found is terminated by follow
		}
		if id, ferr := f.findWithin(look, startAttempts); ferr == nil && id != "" {
			f.cluster = id
			f.note("found cluster %s, started by a request that failed (%v)", id, err)
			job.NotifyRemote(ctx, Name+":"+id)
			return nil
		}
		return f.errorf("start cluster: %w", err)
	}
	f.cluster = aws.ToString(out.JobFlowId)
	if f.cluster == "" {
		return f.errorf("RunJobFlow returned no cluster id")
	}
	f.note("started cluster %s (%s)", f.cluster, aws.ToString(in.Name))
	f.log.Info("emr cluster started", "cluster", f.cluster, "name", aws.ToString(in.Name))
	job.NotifyRemote(ctx, Name+":"+f.cluster)
	return nil
}

// request is the RunJobFlow request for the run.
func (f *follower) request() *emr.RunJobFlowInput {
	c, t := f.cfg, f.t
	args := []string{"spark-submit", "--deploy-mode", "cluster"}
	if t.Spark.Class != "" {
		args = append(args, "--class", t.Spark.Class)
	}
	for _, k := range slices.Sorted(maps.Keys(t.Spark.Conf)) {
		args = append(args, "--conf", k+"="+t.Spark.Conf[k])
	}
	args = append(append(args, t.Spark.EntryPoint), t.Spark.Args...)

	inst := &types.JobFlowInstancesConfig{KeepJobFlowAliveWhenNoSteps: aws.Bool(false), TerminationProtected: aws.Bool(false)}
	for _, g := range c.InstanceGroups {
		market := types.MarketTypeOnDemand
		if g.Market == "SPOT" {
			market = types.MarketTypeSpot
		}
		inst.InstanceGroups = append(inst.InstanceGroups, types.InstanceGroupConfig{Name: aws.String(g.Role),
			InstanceRole: types.InstanceRoleType(g.Role), InstanceType: aws.String(g.InstanceType), InstanceCount: aws.Int32(g.Count), Market: market})
	}
	for _, fl := range c.InstanceFleets {
		cfg := types.InstanceFleetConfig{Name: aws.String(fl.Role), InstanceFleetType: types.InstanceFleetType(fl.Role),
			TargetOnDemandCapacity: aws.Int32(fl.TargetOnDemand), TargetSpotCapacity: aws.Int32(fl.TargetSpot)}
		for _, it := range fl.InstanceTypes {
			cfg.InstanceTypeConfigs = append(cfg.InstanceTypeConfigs, types.InstanceTypeConfig{InstanceType: aws.String(it)})
		}
		inst.InstanceFleets = append(inst.InstanceFleets, cfg)
	}
	if len(c.SubnetIDs) > 0 {
		if len(c.InstanceFleets) > 0 {
			inst.Ec2SubnetIds = c.SubnetIDs
		} else {
			inst.Ec2SubnetId = aws.String(c.SubnetIDs[0])
		}
	}
	in := &emr.RunJobFlowInput{
		Name:         aws.String(clusterName(c.Name, f.r.Job, t.RunID)),
		ReleaseLabel: aws.String(c.ReleaseLabel),
		Instances:    inst,
		Steps: []types.StepConfig{{
			Name:            aws.String("sluice " + t.RunID),
			ActionOnFailure: types.ActionOnFailureTerminateCluster,
			HadoopJarStep:   &types.HadoopJarStepConfig{Jar: aws.String("command-runner.jar"), Args: args},
		}},
		ServiceRole:           aws.String(c.ServiceRole),
		JobFlowRole:           aws.String(c.InstanceProfile),
		AutoTerminationPolicy: &types.AutoTerminationPolicy{IdleTimeout: aws.Int64(int64(c.IdleTimeout / time.Second))},
		VisibleToAllUsers:     aws.Bool(true),
		Tags: []types.Tag{
			{Key: aws.String(TagRunID), Value: aws.String(t.RunID)},
			{Key: aws.String(TagJob), Value: aws.String(tagValue(f.r.Job))},
			{Key: aws.String(TagGroup), Value: aws.String(tagValue(t.Group))},
		},
	}
	for _, a := range c.Applications {
		in.Applications = append(in.Applications, types.Application{Name: aws.String(a)})
	}
	for _, b := range c.BootstrapActions {
		in.BootstrapActions = append(in.BootstrapActions, types.BootstrapActionConfig{Name: aws.String(b.Name),
			ScriptBootstrapAction: &types.ScriptBootstrapActionConfig{Path: aws.String(b.Path), Args: b.Args}})
	}
	if c.LogURI != "" {
		in.LogUri = aws.String(c.LogURI)
	}
	if c.SecurityConfiguration != "" {
		in.SecurityConfiguration = aws.String(c.SecurityConfiguration)
	}
	for _, k := range sortedKeys(c.Tags) {
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(c.Tags[k])})
	}
	return in
}

// maxNameLen is EMR's limit on cluster names.
const maxNameLen = 256

// clusterName is "<prefix>-<job>-<runID>", the job's name cut so that the
// whole fits in 256 bytes and the run ID stays whole.
func clusterName(prefix, jobName, runID string) string {
	if jobName == "" {
		return truncate(prefix+"-"+runID, maxNameLen)
	}
	room := maxNameLen - len(prefix) - len(runID) - 2
	return prefix + "-" + truncate(jobName, max(room, 0)) + "-" + runID
}

// tagValue makes s a valid EMR tag value: at most 256 bytes of letters,
// digits, spaces and + - = . _ : / @ (anything else becomes _).
func tagValue(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == ' ' || strings.ContainsRune("+-=._:/@", r) {
			return r
		}
		return '_'
	}, s)
	return truncate(s, 256)
}

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// permanent reports whether err is EMR rejecting the request itself:
// retrying the same request cannot help.
func permanent(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "ValidationException", "InvalidRequestException", "AccessDeniedException", "UnrecognizedClientException":
		return true
	}
	return false
}

// backoff is the wait after fails failed polls in a row.
func (f *follower) backoff(fails int) time.Duration {
	d := f.poll
	for i := 0; i < fails && d < f.maxBackoff; i++ {
		d *= 2
	}
	return min(d, f.maxBackoff)
}

// retry calls fn until it succeeds, fails permanently, fails maxFails
// times in a row, or ctx ends.
func (f *follower) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	for fails := 1; ; fails++ {
		err := fn(ctx)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return f.errorf("%s: %w", what, err)
		case permanent(err):
			return fault.Permanent(f.errorf("%s: %w", what, err))
		case fails >= f.maxFails:
			return f.errorf("%s: still failing after %d attempts: %w", what, fails, err)
		}
		f.log.Warn("emr call failed; retrying", "call", what, "attempt", fails, "err", err)
		sleep(ctx, f.backoff(fails))
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// follow polls the cluster until it has terminated, terminating it on
// cancellation or at the deadline.
func (f *follower) follow(ctx context.Context) (job.Outcome, error) {
	bg := context.WithoutCancel(ctx)
	var stop string // why sluice terminates the cluster; "" while following
	var timedOut bool
	fails := 0
	for {
		pctx := ctx
		if stop != "" {
			pctx = bg
		}
		delay := f.poll
		cl, step, err := f.describe(pctx)
		switch {
		case err == nil:
			fails = 0
			f.observe(ctx, cl, step)
			if isTerminated(cl.Status.State) {
				return f.outcome(cl, step, stop), nil
			}
		case stop == "" && ctx.Err() != nil:
			// ctx ended during the poll: handled below.
		case permanent(err):
			return job.Outcome{}, fault.Permanent(f.errorf("%w; check that the cluster exists and that sluice may describe it", err))
		default:
			fails++
			if fails >= f.maxFails {
				// Detached, not failed: the cluster may still be running, so
				// the run is left for a later follower (an adoption), never
				// retried on a second cluster.
				return job.Outcome{}, f.errorf("%w: lost track of the cluster after %d failed polls in a row: %w; it may still be running: check it in the EMR console (aws emr describe-cluster --cluster-id %s)", job.ErrDetached, fails, err, f.cluster)
			}
			delay = f.backoff(fails)
			f.log.Warn("emr cluster poll failed; retrying", "cluster", f.cluster, "attempt", fails, "in", delay, "err", err)
		}
		cancelled := ctx.Err() != nil && errors.Is(context.Cause(ctx), job.ErrCancelled)
		switch {
		case stop == "" && ctx.Err() != nil && !cancelled, timedOut && ctx.Err() != nil && !cancelled:
			f.log.Info("emr cluster left running for another process to follow", "cluster", f.cluster, "state", f.state, "cause", context.Cause(ctx))
			return job.Outcome{}, f.errorf("%w", job.ErrDetached)
		case stop == "" && cancelled:
			stop = fmt.Sprintf("cancelled (cluster %s was %s)", f.cluster, f.stateName())
		case stop == "" && f.pastDeadline():
			stop, timedOut = fmt.Sprintf("timed out after %s (cluster %s was %s)", f.timeout(), f.cluster, f.stateName()), true
		default:
			wait := ctx
			if ctx.Err() != nil {
				wait = bg
			}
			sleep(wait, delay)
			continue
		}
		// stop was just set: terminate the cluster, then follow it to its end.
		f.note("terminating cluster %s: %s", f.cluster, stop)
		f.log.Info("emr cluster terminating", "cluster", f.cluster, "why", stop)
		if f.state != types.ClusterStateTerminating {
			err := f.retry(bg, "terminate", func(ctx context.Context) error {
				_, err := f.c.TerminateJobFlows(ctx, &emr.TerminateJobFlowsInput{JobFlowIds: []string{f.cluster}})
				return err
			})
			if err != nil {
				return job.Outcome{}, fmt.Errorf("%w: %w; terminate it yourself: aws emr terminate-clusters --cluster-ids %s", job.ErrDetached, err, f.cluster)
			}
		}
	}
}

func (f *follower) stateName() string {
	if f.state == "" {
		return "in an unknown state"
	}
	return string(f.state)
}

func isTerminated(s types.ClusterState) bool {
	return s == types.ClusterStateTerminated || s == types.ClusterStateTerminatedWithErrors
}

func isStepEnded(s types.StepState) bool {
	switch s {
	case types.StepStateCompleted, types.StepStateFailed, types.StepStateCancelled, types.StepStateInterrupted:
		return true
	}
	return false
}

// describe returns the cluster and the run's step (nil before EMR lists
// it).
func (f *follower) describe(ctx context.Context) (*types.Cluster, *types.StepSummary, error) {
	out, err := f.c.DescribeCluster(ctx, &emr.DescribeClusterInput{ClusterId: aws.String(f.cluster)})
	if err != nil {
		return nil, nil, err
	}
	cl := out.Cluster
	if cl == nil || cl.Status == nil {
		return nil, nil, errors.New("DescribeCluster returned no cluster status")
	}
	steps, err := f.c.ListSteps(ctx, &emr.ListStepsInput{ClusterId: aws.String(f.cluster)})
	if err != nil {
		return nil, nil, err
	}
	name := "sluice " + f.t.RunID
	var step *types.StepSummary
	for i, s := range steps.Steps {
		if aws.ToString(s.Name) == name || (len(steps.Steps) == 1 && i == 0) {
			step = &steps.Steps[i]
			break
		}
	}
	return cl, step, nil
}

// observe records state changes and reports the start.
func (f *follower) observe(ctx context.Context, cl *types.Cluster, step *types.StepSummary) {
	if s := cl.Status.State; s != f.state {
		f.state = s
		line := fmt.Sprintf("cluster %s %s", f.cluster, s)
		if r := reason(cl.Status.StateChangeReason); r != "" {
			line += ": " + r
		}
		f.note("%s", line)
		f.log.Info("emr cluster "+strings.ToLower(string(s)), "cluster", f.cluster, "reason", reason(cl.Status.StateChangeReason))
	}
	var ss types.StepState
	if step != nil && step.Status != nil {
		ss = step.Status.State
		f.step = aws.ToString(step.Id)
	}
	if ss != "" && ss != f.stepState {
		f.stepState = ss
		line := fmt.Sprintf("step %s %s", f.step, ss)
		if d := failure(step.Status.FailureDetails); d != "" {
			line += ": " + d
		}
		f.note("%s", line)
		f.log.Info("emr step "+strings.ToLower(string(ss)), "cluster", f.cluster, "step", f.step)
	}
	running := cl.Status.State == types.ClusterStateRunning || cl.Status.State == types.ClusterStateWaiting ||
		ss == types.StepStateRunning || ss == types.StepStateCompleted || ss == types.StepStateFailed || ss == types.StepStateInterrupted
	if running && !f.started {
		f.started = true
		job.NotifyStarted(ctx, 0)
	}
}

func reason(r *types.ClusterStateChangeReason) string {
	if r == nil {
		return ""
	}
	return join(": ", string(r.Code), aws.ToString(r.Message))
}

func failure(d *types.FailureDetails) string {
	if d == nil {
		return ""
	}
	s := join(": ", aws.ToString(d.Reason), aws.ToString(d.Message))
	if l := aws.ToString(d.LogFile); l != "" {
		s = join(" ", s, "(log "+l+")")
	}
	return s
}

// join joins the non-empty parts with sep.
func join(sep string, parts ...string) string {
	return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "" }), sep)
}

// outcome is the run's result from its terminated cluster.
func (f *follower) outcome(cl *types.Cluster, step *types.StepSummary, stop string) job.Outcome {
	out := job.Outcome{ExitCode: 1, Instances: f.cfg.instanceCount()}
	if tl := cl.Status.Timeline; tl != nil && tl.CreationDateTime != nil {
		end := f.now()
		if tl.EndDateTime != nil {
			end = *tl.EndDateTime
		}
		// EMR bills by the second; its timestamps carry milliseconds.
		out.ComputeSeconds = max(end.Sub(*tl.CreationDateTime).Round(time.Second).Seconds(), 0) * float64(f.cfg.instanceCount())
	}
	clusterEnd := join(": ", fmt.Sprintf("cluster %s %s", f.cluster, cl.Status.State), reason(cl.Status.StateChangeReason))
	var ss types.StepState
	if step != nil && step.Status != nil {
		ss = step.Status.State
	}
	switch {
	case stop != "":
		out.Err = stop
		if ss == types.StepStateCompleted {
			out.Err += "; its step had COMPLETED"
		}
	case ss == types.StepStateCompleted:
		out.ExitCode = 0
	case ss == types.StepStateCancelled && (step.Status.Timeline == nil || step.Status.Timeline.StartDateTime == nil):
		// EMR cancels the steps of a cluster that fails before running them.
		out.Err = fmt.Sprintf("%s before the step ran (step %s CANCELLED)", clusterEnd, f.step)
	case isStepEnded(ss):
		out.Err = join("; ", join(": ", fmt.Sprintf("EMR step %s %s", f.step, ss), failure(step.Status.FailureDetails)), clusterEnd)
	default:
		out.Err = clusterEnd + " before the step ended"
	}
	f.log.Info("emr cluster gone", "cluster", f.cluster, "state", cl.Status.State, "compute_seconds", out.ComputeSeconds, "err", out.Err)
	out.Log = f.report(cl)
	return out
}

// report is Outcome.Log: what happened to the cluster and where its logs
// are.
func (f *follower) report(cl *types.Cluster) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "EMR cluster %s (%s) for job %s run %s\n", f.cluster, aws.ToString(cl.Name), f.r.Job, f.t.RunID)
	if f.step != "" {
		fmt.Fprintf(&b, "step %s\n", f.step)
	}
	if logs := f.cfg.LogURI; logs != "" {
		dir := strings.TrimSuffix(logs, "/") + "/" + f.cluster + "/"
		fmt.Fprintf(&b, "logs: %s", dir)
		if f.step != "" {
			fmt.Fprintf(&b, " (the step's under %ssteps/%s/)", dir, f.step)
		}
		b.WriteString("\n")
	} else {
		b.WriteString("logs: none in S3 (no log_uri set)\n")
	}
	for _, l := range f.transcript {
		b.WriteString(l + "\n")
	}
	return []byte(b.String())
}
