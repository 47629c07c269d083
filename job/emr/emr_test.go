package emr_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsemr "github.com/aws/aws-sdk-go-v2/service/emr"

	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/job/emr"
	"github.com/sluicehq/sluice/job/emr/emrfake"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/trigger"
)

const runID = "0190c0de-7a3b-7c1e-9f00-5e3d2a1b4c6d"

// client is an EMR client for the fake at url: static credentials, region
// us-east-1, the SDK's standard retryer (3 attempts) without its waits.
func client(url string) *awsemr.Client {
	return awsemr.New(awsemr.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			o.RateLimiter = ratelimit.None
		}),
	})
}

// fullConfig sets every field of Config.
func fullConfig() emr.Config {
	return emr.Config{
		Region:          "us-east-1",
		Name:            "acme",
		ReleaseLabel:    "emr-7.2.0",
		Applications:    []string{"Spark", "Hadoop"},
		ServiceRole:     "EMR_DefaultRole_V2",
		InstanceProfile: "EMR_EC2_DefaultRole",
		LogURI:          "s3://acme-logs/emr/",
		InstanceGroups: []emr.InstanceGroup{
			{Role: "MASTER", InstanceType: "m5.xlarge", Count: 1},
			{Role: "CORE", InstanceType: "r5.2xlarge", Count: 4},
			{Role: "TASK", InstanceType: "r5.2xlarge", Count: 2, Market: "SPOT"},
		},
		SubnetIDs:             []string{"subnet-0aaa", "subnet-0bbb"},
		BootstrapActions:      []emr.BootstrapAction{{Name: "deps", Path: "s3://acme-code/bootstrap.sh", Args: []string{"--pip", "pyarrow"}}},
		IdleTimeout:           90 * time.Minute,
		Tags:                  map[string]string{"team": "data", "cost-center": "42"},
		SecurityConfiguration: "acme-encryption",
	}
}

// minimalConfig sets only the required fields.
func minimalConfig() emr.Config {
	return emr.Config{ReleaseLabel: "emr-7.2.0", ServiceRole: "EMR_DefaultRole_V2", InstanceProfile: "EMR_EC2_DefaultRole"}
}

func sparkTask() job.Task {
	return job.Task{RunID: runID, Rule: "hydropower", Group: "2020-08-07_2PM", Kind: job.KindSpark, Spark: &job.Spark{
		EntryPoint: "s3://acme-code/hydro.jar",
		Class:      "com.acme.Hydro",
		Args:       []string{"--threshold", "3", "--run-id", runID, "--group", "2020-08-07_2PM", "--output", "s3://acme-lake/curated/"},
		Conf:       map[string]string{"spark.executor.memory": "4g", "spark.dynamicAllocation.enabled": "false"},
	}}
}

func newRunner(fake *emrfake.Server, cfg emr.Config) *emr.Runner {
	r := emr.New(cfg, "hydropower")
	r.Client = client(fake.URL)
	r.PollInterval = 5 * time.Millisecond
	r.Logger = quiet()
	return r
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// deadline is a context for waiting on the fake.
func deadline(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// clock is a manually advanced time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

func TestRunJobFlowCarriesEveryConfigFieldAndIsSignedWithTheEMRTarget(t *testing.T) {
	fake := emrfake.Start(t)
	r := newRunner(fake, fullConfig())
	out, err := r.Run(t.Context(), sparkTask())
	if err != nil || out.ExitCode != 0 || out.Err != "" {
		t.Fatalf("Run = %+v, %v; want success", out, err)
	}
	reqs := fake.RunJobFlows()
	if len(reqs) != 1 {
		t.Fatalf("%d RunJobFlow calls, want 1", len(reqs))
	}
	f := false
	want := emrfake.RunJobFlowInput{
		Name:         "acme-hydropower-" + runID,
		LogUri:       "s3://acme-logs/emr/",
		ReleaseLabel: "emr-7.2.0",
		Applications: []emrfake.Application{{Name: "Spark"}, {Name: "Hadoop"}},
		Instances: &emrfake.JobFlowInstancesConfig{
			InstanceGroups: []emrfake.InstanceGroupConfig{
				{Name: "MASTER", InstanceRole: "MASTER", InstanceType: "m5.xlarge", InstanceCount: 1, Market: "ON_DEMAND"},
				{Name: "CORE", InstanceRole: "CORE", InstanceType: "r5.2xlarge", InstanceCount: 4, Market: "ON_DEMAND"},
				{Name: "TASK", InstanceRole: "TASK", InstanceType: "r5.2xlarge", InstanceCount: 2, Market: "SPOT"},
			},
			KeepJobFlowAliveWhenNoSteps: &f,
			TerminationProtected:        &f,
			Ec2SubnetId:                 "subnet-0aaa",
		},
		Steps: []emrfake.StepConfig{{
			Name:            "sluice " + runID,
			ActionOnFailure: "TERMINATE_CLUSTER",
			HadoopJarStep: emrfake.HadoopJarStepConfig{Jar: "command-runner.jar", Args: []string{
				"spark-submit", "--deploy-mode", "cluster", "--class", "com.acme.Hydro",
				"--conf", "spark.dynamicAllocation.enabled=false", "--conf", "spark.executor.memory=4g",
				"s3://acme-code/hydro.jar",
				"--threshold", "3", "--run-id", runID, "--group", "2020-08-07_2PM", "--output", "s3://acme-lake/curated/",
			}},
		}},
		BootstrapActions: []emrfake.BootstrapActionConfig{{Name: "deps",
			ScriptBootstrapAction: emrfake.ScriptBootstrapActionConfig{Path: "s3://acme-code/bootstrap.sh", Args: []string{"--pip", "pyarrow"}}}},
		ServiceRole:           "EMR_DefaultRole_V2",
		JobFlowRole:           "EMR_EC2_DefaultRole",
		AutoTerminationPolicy: &emrfake.AutoTerminationPolicy{IdleTimeout: 5400},
		Tags: []emrfake.Tag{
			{Key: "sluice:run-id", Value: runID}, {Key: "sluice:job", Value: "hydropower"}, {Key: "sluice:group", Value: "2020-08-07_2PM"},
			{Key: "cost-center", Value: "42"}, {Key: "team", Value: "data"},
		},
		VisibleToAllUsers:     aws.Bool(true),
		SecurityConfiguration: "acme-encryption",
	}
	if !reflect.DeepEqual(reqs[0], want) {
		g, _ := json.MarshalIndent(reqs[0], "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("RunJobFlow request:\n%s\nwant:\n%s", g, w)
	}
	// Nothing beyond the modelled members was sent.
	var raw map[string]json.RawMessage
	for _, rq := range fake.Requests() {
		if rq.Op == "RunJobFlow" {
			if err := json.Unmarshal(rq.Body, &raw); err != nil {
				t.Fatal(err)
			}
		}
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range raw {
			if !yield(k) {
				return
			}
		}
	})
	wantKeys := []string{"Applications", "AutoTerminationPolicy", "BootstrapActions", "Instances", "JobFlowRole", "LogUri", "Name",
		"ReleaseLabel", "SecurityConfiguration", "ServiceRole", "Steps", "Tags", "VisibleToAllUsers"}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("RunJobFlow members = %v, want %v", keys, wantKeys)
	}
	for _, rq := range fake.Requests() {
		if !rq.Signed || !strings.Contains(rq.Header.Get("Authorization"), "Credential=AKIDTEST/") ||
			!strings.Contains(rq.Header.Get("Authorization"), "/us-east-1/elasticmapreduce/aws4_request") {
			t.Errorf("%s request not signed for elasticmapreduce in us-east-1: Authorization %q", rq.Op, rq.Header.Get("Authorization"))
		}
		if rq.Target != "ElasticMapReduce."+rq.Op || rq.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
			t.Errorf("request target %q, content type %q", rq.Target, rq.Header.Get("Content-Type"))
		}
	}
	wantOps := []string{"elasticmapreduce:DescribeCluster", "elasticmapreduce:ListClusters", "elasticmapreduce:ListSteps", "elasticmapreduce:RunJobFlow"}
	if ops := fake.Operations(); !slices.Equal(ops, wantOps) {
		t.Errorf("Operations() = %v, want %v", ops, wantOps)
	}
}

func TestDefaultsMakeAThreeNodeOnDemandSparkCluster(t *testing.T) {
	fake := emrfake.Start(t)
	if _, err := newRunner(fake, minimalConfig()).Run(t.Context(), sparkTask()); err != nil {
		t.Fatal(err)
	}
	in := fake.RunJobFlows()[0]
	wantGroups := []emrfake.InstanceGroupConfig{
		{Name: "MASTER", InstanceRole: "MASTER", InstanceType: "m5.xlarge", InstanceCount: 1, Market: "ON_DEMAND"},
		{Name: "CORE", InstanceRole: "CORE", InstanceType: "m5.xlarge", InstanceCount: 2, Market: "ON_DEMAND"},
	}
	if in.Name != "sluice-hydropower-"+runID || !reflect.DeepEqual(in.Applications, []emrfake.Application{{Name: "Spark"}}) ||
		!reflect.DeepEqual(in.Instances.InstanceGroups, wantGroups) || in.Instances.Ec2SubnetId != "" || in.AutoTerminationPolicy.IdleTimeout != 3600 ||
		in.LogUri != "" || in.SecurityConfiguration != "" || len(in.Tags) != 3 || len(in.BootstrapActions) != 0 {
		t.Fatalf("RunJobFlow with defaults = %+v", in)
	}
}

func TestInstanceFleetsGetEveryTargetAndAllSubnets(t *testing.T) {
	fake := emrfake.Start(t)
	cfg := minimalConfig()
	cfg.InstanceFleets = []emr.InstanceFleet{
		{Role: "MASTER", InstanceTypes: []string{"m5.xlarge"}, TargetOnDemand: 1},
		{Role: "CORE", InstanceTypes: []string{"r5.2xlarge", "r6i.2xlarge"}, TargetOnDemand: 2, TargetSpot: 6},
	}
	cfg.SubnetIDs = []string{"subnet-0aaa", "subnet-0bbb"}
	task := sparkTask()
	task.Spark.Class, task.Spark.Conf, task.Spark.EntryPoint, task.Spark.Args = "", nil, "s3://acme-code/hydro.py", []string{"--output", "s3://o/"}
	if _, err := newRunner(fake, cfg).Run(t.Context(), task); err != nil {
		t.Fatal(err)
	}
	in := fake.RunJobFlows()[0]
	one, two, zero, six := int32(1), int32(2), int32(0), int32(6)
	want := []emrfake.InstanceFleetConfig{
		{Name: "MASTER", InstanceFleetType: "MASTER", InstanceTypeConfigs: []emrfake.InstanceTypeConfig{{InstanceType: "m5.xlarge"}},
			TargetOnDemandCapacity: &one, TargetSpotCapacity: &zero},
		{Name: "CORE", InstanceFleetType: "CORE", InstanceTypeConfigs: []emrfake.InstanceTypeConfig{{InstanceType: "r5.2xlarge"}, {InstanceType: "r6i.2xlarge"}},
			TargetOnDemandCapacity: &two, TargetSpotCapacity: &six},
	}
	if !reflect.DeepEqual(in.Instances.InstanceFleets, want) || len(in.Instances.InstanceGroups) != 0 ||
		!slices.Equal(in.Instances.Ec2SubnetIds, []string{"subnet-0aaa", "subnet-0bbb"}) || in.Instances.Ec2SubnetId != "" {
		t.Fatalf("Instances = %+v", in.Instances)
	}
	// A PySpark job: no --class, no --conf.
	wantArgs := []string{"spark-submit", "--deploy-mode", "cluster", "s3://acme-code/hydro.py", "--output", "s3://o/"}
	if got := in.Steps[0].HadoopJarStep.Args; !slices.Equal(got, wantArgs) {
		t.Fatalf("step args = %q, want %q", got, wantArgs)
	}
}

func TestLongJobNamesAndGroupsAreCutToEMRLimitsKeepingTheRunID(t *testing.T) {
	fake := emrfake.Start(t)
	r := newRunner(fake, minimalConfig())
	r.Job = strings.Repeat("j", 300)
	task := sparkTask()
	task.Group = strings.Repeat("g", 250) + "(ü)" + strings.Repeat("x", 50)
	if _, err := r.Run(t.Context(), task); err != nil {
		t.Fatal(err)
	}
	in := fake.RunJobFlows()[0]
	if len(in.Name) != 256 || !strings.HasSuffix(in.Name, "-"+runID) || !strings.HasPrefix(in.Name, "sluice-jjj") {
		t.Errorf("cluster name %q (%d bytes): want 256 bytes ending in the run ID", in.Name, len(in.Name))
	}
	for _, tg := range in.Tags {
		if len(tg.Value) > 256 {
			t.Errorf("tag %s is %d bytes long", tg.Key, len(tg.Value))
		}
		if tg.Key == "sluice:group" && !strings.HasPrefix(tg.Value, strings.Repeat("g", 250)+"_ü_") {
			t.Errorf("group tag %q: want disallowed characters replaced by _", tg.Value)
		}
	}
}

func TestARunGoesStartingRunningSucceededOnATransientCluster(t *testing.T) {
	ctx := t.Context()
	st, err := state.Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fake := emrfake.Start(t)
	sc := emrfake.Succeeds()
	sc.Manual, sc.Runtime = true, 10*time.Minute
	fake.SetScript(sc)
	var mu sync.Mutex
	var completed []emrfake.StepInfo
	var stateAtCompletion job.State
	fake.OnStepCompleted = func(info emrfake.StepInfo) {
		mu.Lock()
		defer mu.Unlock()
		completed = append(completed, info)
		r, err := st.GetRun(ctx, info.Tags[emr.TagRunID])
		if err != nil {
			t.Errorf("run of the completed step: %v", err)
		}
		stateAtCompletion = r.State
	}
	runner := newRunner(fake, minimalConfig())
	rule, err := trigger.Compile(trigger.Rule{Name: "hydropower", Filter: event.Filter{Events: []string{"s3:ObjectCreated:*"}, Prefix: "data/", Suffix: ".csv"}})
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock()
	logs := map[string]string{}
	var logMu sync.Mutex
	m, err := job.NewManager([]job.Definition{{
		Name: "hydropower", Rule: rule, Settle: time.Second,
		Inputs: func(ctx context.Context, group string) ([]job.Input, error) {
			return []job.Input{{Key: "data/" + group + "/a.csv", ETag: "e1"}}, nil
		},
		Task: func(group string, inputs []job.Input) (job.Task, error) {
			return job.Task{Kind: job.KindSpark, Spark: &job.Spark{EntryPoint: "s3://acme-code/hydro.py", Args: []string{"--group", group}}}, nil
		},
	}}, job.Options{State: st, Runner: runner, Clock: clk.Now, Logger: quiet(),
		LogStore: func(ctx context.Context, id string, log []byte) (string, error) {
			logMu.Lock()
			defer logMu.Unlock()
			logs[id] = string(log)
			return "logs/" + id, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := m.Offer(ctx, event.New("lake", "data/2020-08-07_2PM/a.csv", 10, "e1", clk.Now())); !ok || err != nil {
		t.Fatalf("Offer = %v, %v", ok, err)
	}
	clk.Advance(2 * time.Second)
	if n, err := m.Step(ctx); n != 1 || err != nil {
		t.Fatalf("Step = %d, %v; want 1 run started", n, err)
	}
	wctx := deadline(t)
	if err := fake.WaitCalls(wctx, "DescribeCluster", 1); err != nil {
		t.Fatal(err)
	}
	id := fake.Clusters()[0]
	runs, err := st.ListRuns(ctx, job.RunFilter{})
	if err != nil || len(runs) != 1 || runs[0].State != job.Starting {
		t.Fatalf("runs while the cluster is STARTING = %+v, %v; want one STARTING run", runs, err)
	}
	run := runs[0]
	fake.Advance(id) // BOOTSTRAPPING
	fake.Advance(id) // RUNNING, step RUNNING
	err = fake.WaitUntil(wctx, func() bool {
		r, err := st.GetRun(ctx, run.ID)
		return err == nil && r.State == job.Running
	})
	if err != nil {
		t.Fatalf("the run did not become RUNNING once its step ran: %v", err)
	}
	for fake.Advance(id) {
	}
	m.Wait()
	got, err := st.GetRun(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != job.Succeeded || got.ExitCode != 0 || got.Error != "" || got.Started.IsZero() || got.Terminated.IsZero() ||
		got.ComputeSeconds != 600*3 || got.Instances != 3 || got.LogKey != "logs/"+run.ID || got.Remote != "emr:"+id {
		t.Fatalf("run = %+v; want SUCCEEDED, terminated, 1800 compute seconds (10 min × 3 instances) and 3 instances recorded, its log stored", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(completed) != 1 || stateAtCompletion != job.Running || completed[0].ClusterID != id ||
		!slices.Equal(completed[0].Args, []string{"spark-submit", "--deploy-mode", "cluster", "s3://acme-code/hydro.py", "--group", "2020-08-07_2PM"}) {
		t.Fatalf("step completions = %+v (run state then %s); want one, while the run was RUNNING", completed, stateAtCompletion)
	}
	if s, _ := fake.State(id); s != emrfake.Terminated {
		t.Fatalf("cluster %s is %s, want TERMINATED", id, s)
	}
	logMu.Lock()
	log := logs[run.ID]
	logMu.Unlock()
	// Which phases a poll sees depends on when the test advanced the
	// cluster; these ones every run sees.
	for _, want := range []string{"EMR cluster " + id, "cluster " + id + " STARTING", "step s-", " RUNNING\n", " COMPLETED\n",
		"cluster " + id + " TERMINATED: ALL_STEPS_COMPLETED: Steps completed", "logs: none in S3"} {
		if !strings.Contains(log, want) {
			t.Errorf("run log lacks %q:\n%s", want, log)
		}
	}
	if n := fake.Calls("RunJobFlow"); n != 1 {
		t.Fatalf("%d RunJobFlow calls, want 1", n)
	}
}

func TestAFailedStepsOutcomeQuotesItsLogFileAndCountsEveryInstance(t *testing.T) {
	fake := emrfake.Start(t)
	sc := emrfake.StepFails(emrfake.FailureDetails{Reason: "Unknown Error.", Message: "java.lang.OutOfMemoryError: Java heap space",
		LogFile: "s3://acme-logs/emr/j-1/steps/s-1/stderr.gz"})
	sc.Runtime = 4 * time.Minute
	fake.SetScript(sc)
	out, err := newRunner(fake, fullConfig()).Run(t.Context(), sparkTask())
	if err != nil {
		t.Fatal(err)
	}
	id := fake.Clusters()[0]
	if out.ExitCode != 1 || !strings.Contains(out.Err, "Java heap space (log s3://acme-logs/emr/j-1/steps/s-1/stderr.gz)") ||
		!strings.Contains(out.Err, "cluster "+id+" TERMINATED_WITH_ERRORS: STEP_FAILURE: Shut down as step failed") || out.ComputeSeconds != 4*60*7 {
		t.Errorf("Outcome = %+v; want exit 1, the step's log file and the cluster's reason in Err, 1680 compute seconds (4 min × 7 instances)", out)
	}
	if !strings.Contains(string(out.Log), "logs: s3://acme-logs/emr/"+id+"/") {
		t.Errorf("Outcome.Log lacks the cluster's log folder:\n%s", out.Log)
	}
}

func TestABootstrapFailureFailsTheRunWithTheClustersReason(t *testing.T) {
	fake := emrfake.Start(t)
	fake.SetScript(emrfake.BootstrapFails("bootstrap action 1 returned a non-zero return code"))
	out, err := newRunner(fake, minimalConfig()).Run(t.Context(), sparkTask())
	if err != nil {
		t.Fatal(err)
	}
	id := fake.Clusters()[0]
	want := "cluster " + id + " TERMINATED_WITH_ERRORS: BOOTSTRAP_FAILURE: bootstrap action 1 returned a non-zero return code before the step ran (step s-"
	if out.ExitCode != 1 || !strings.HasPrefix(out.Err, want) || !strings.HasSuffix(out.Err, " CANCELLED)") {
		t.Fatalf("Outcome = exit %d, %q; want 1, %q...", out.ExitCode, out.Err, want)
	}
}

func TestThrottledCallsAreRetriedAndTheRunStillSucceeds(t *testing.T) {
	fake := emrfake.Start(t)
	fake.Throttle("ListClusters", 2)    // absorbed by the SDK's retries
	fake.Throttle("DescribeCluster", 7) // 2 failed polls (3 attempts each), then one more throttled attempt
	fake.Throttle("ListSteps", 4)
	out, err := newRunner(fake, minimalConfig()).Run(t.Context(), sparkTask())
	if err != nil || out.ExitCode != 0 {
		t.Fatalf("Run = %+v, %v; want success despite throttling", out, err)
	}
	throttled := 0
	for _, rq := range fake.Requests() {
		if rq.ErrorType == "ThrottlingException" {
			throttled++
			if rq.Status != http.StatusBadRequest {
				t.Errorf("throttled %s answered %d", rq.Op, rq.Status)
			}
		}
	}
	if throttled != 13 {
		t.Fatalf("%d throttled calls, want 13", throttled)
	}
}

func TestFollowingGivesUpAfterMaxPollErrorsNamingTheCluster(t *testing.T) {
	fake := emrfake.Start(t)
	fake.SetScript(emrfake.Script{Phases: []emrfake.Phase{{State: emrfake.Running, Step: emrfake.StepRunning}}})
	fake.Throttle("DescribeCluster", 1000)
	r := newRunner(fake, minimalConfig())
	r.MaxPollErrors = 3
	_, err := r.Run(t.Context(), sparkTask())
	id := fake.Clusters()[0]
	if err == nil || !strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), "3 failed polls") || !errors.Is(err, job.ErrDetached) || fault.IsPermanent(err) {
		t.Fatalf("Run error = %v; want a detached (never retried on a second cluster) error naming cluster %s after 3 failed polls", err, id)
	}
	if n := fake.Calls("DescribeCluster"); n != 9 {
		t.Fatalf("%d DescribeCluster calls, want 9 (3 polls × 3 SDK attempts)", n)
	}
}

func TestRejectedClusterRequestsArePermanentAndOutagesAreNot(t *testing.T) {
	for _, typ := range []string{"ValidationException", "InvalidRequestException"} {
		fake := emrfake.Start(t)
		fake.FailNext("RunJobFlow", 1, emrfake.APIError{Status: 400, Type: typ, Message: "Instance type m5.huge is not supported."})
		_, err := newRunner(fake, minimalConfig()).Run(t.Context(), sparkTask())
		if !fault.IsPermanent(err) || !strings.Contains(err.Error(), "Instance type m5.huge is not supported.") || !strings.Contains(err.Error(), "check the emr runner settings") {
			t.Errorf("%s: Run error = %v; want a permanent error with EMR's message", typ, err)
		}
		if n := fake.Calls("RunJobFlow"); n != 1 {
			t.Errorf("%s: %d RunJobFlow calls, want 1 (not retried)", typ, n)
		}
	}
	fake := emrfake.Start(t)
	fake.FailNext("RunJobFlow", 3, emrfake.APIError{Status: 500, Type: "InternalServerException", Message: "try again"})
	_, err := newRunner(fake, minimalConfig()).Run(t.Context(), sparkTask())
	if err == nil || fault.IsPermanent(err) || !strings.Contains(err.Error(), "try again") {
		t.Errorf("Run error = %v; want a transient error", err)
	}
	if n, l := fake.Calls("RunJobFlow"), fake.Calls("ListClusters"); n != 3 || l != 2 {
		t.Errorf("%d RunJobFlow, %d ListClusters calls; want 3 (the SDK's attempts) and 2 (before, and to look for a cluster the failed call made)", n, l)
	}
}

func TestTheRunsClusterIsFoundPastOtherPagesByItsTagAndARemoteNeedsNoSearch(t *testing.T) {
	fake := emrfake.Start(t)
	fake.PageSize = 2
	r := newRunner(fake, minimalConfig())
	if out, err := r.Run(t.Context(), sparkTask()); err != nil || out.ExitCode != 0 {
		t.Fatalf("Run = %+v, %v; want success", out, err)
	}
	id := fake.Clusters()[0]
	// Newer clusters: a page of others, and one whose name has the run ID
	// but whose tag says another run.
	for range 3 {
		fake.AddCluster(emrfake.RunJobFlowInput{Name: "sluice-other-0190c0de-0000", Tags: []emrfake.Tag{{Key: emr.TagRunID, Value: "0190c0de-0000"}}}, emrfake.Succeeds())
	}
	fake.AddCluster(emrfake.RunJobFlowInput{Name: "copy-of-" + runID, Tags: []emrfake.Tag{{Key: emr.TagRunID, Value: "someone-else"}}}, emrfake.Succeeds())
	out, err := r.Run(t.Context(), sparkTask())
	if err != nil || out.ExitCode != 0 || !strings.Contains(string(out.Log), "found cluster "+id+", started earlier for this run") {
		t.Fatalf("Run after the end = %+v, %v; want success on cluster %s", out, err, id)
	}
	// With the run record's Remote: no search at all.
	lists := fake.Calls("ListClusters")
	task := sparkTask()
	task.Remote = "emr:" + id
	out, err = r.Run(t.Context(), task)
	if err != nil || out.ExitCode != 0 || !strings.Contains(string(out.Log), "following cluster "+id) || fake.Calls("ListClusters") != lists {
		t.Fatalf("Run with Remote = %+v, %v (%d more ListClusters); want success on cluster %s without a search", out, err, fake.Calls("ListClusters")-lists, id)
	}
	if n := fake.Calls("RunJobFlow"); n != 1 {
		t.Fatalf("%d RunJobFlow calls for one run ID, want 1", n)
	}
}

func TestARemoteClusterThatDoesNotExistIsPermanent(t *testing.T) {
	fake := emrfake.Start(t)
	task := sparkTask()
	task.Remote = "emr:j-NOSUCH"
	_, err := newRunner(fake, minimalConfig()).Run(t.Context(), task)
	if !fault.IsPermanent(err) || !strings.Contains(err.Error(), "Cluster id 'j-NOSUCH' is not valid.") {
		t.Errorf("Run with Remote %s: %v; want a permanent error with EMR's message", task.Remote, err)
	}
	if n := fake.Calls("RunJobFlow"); n != 0 {
		t.Fatalf("%d RunJobFlow calls, want none", n)
	}
}

func TestASparkTaskWithoutAnEntryPointOrAnEmptyConfigIsPermanent(t *testing.T) {
	fake := emrfake.Start(t)
	r := newRunner(fake, minimalConfig())
	if r.RemoteName() != "emr" {
		t.Errorf("RemoteName() = %q", r.RemoteName())
	}
	if _, err := r.Run(t.Context(), job.Task{RunID: runID, Kind: job.KindSpark}); !fault.IsPermanent(err) || !strings.Contains(err.Error(), "no entry point") {
		t.Errorf("Run of a spark task without an entry point = %v; want a permanent error", err)
	}
	bad := newRunner(fake, emr.Config{})
	if _, err := bad.Run(t.Context(), sparkTask()); !fault.IsPermanent(err) || !strings.Contains(err.Error(), "release_label") {
		t.Errorf("Run with an empty config = %v; want a permanent error naming release_label", err)
	}
	if len(fake.Requests()) != 0 {
		t.Fatalf("%d requests to EMR, want none", len(fake.Requests()))
	}
}

func TestACancelBeforeTheClusterIsKnownStillTerminatesTheRunsCluster(t *testing.T) {
	fake := emrfake.Start(t)
	fake.SetScript(emrfake.Script{Phases: emrfake.Succeeds().Phases[:3]})
	r := newRunner(fake, minimalConfig())
	type result struct {
		out job.Outcome
		err error
	}
	run := func(ctx context.Context) <-chan result {
		ch := make(chan result, 1)
		go func() { out, err := r.Run(ctx, sparkTask()); ch <- result{out, err} }()
		return ch
	}
	// An earlier follower started the cluster and detached before its id
	// was recorded anywhere (no Task.Remote).
	first, stop := context.WithCancel(t.Context())
	done := run(first)
	if err := fake.WaitCalls(t.Context(), "DescribeCluster", 1); err != nil {
		t.Fatal(err)
	}
	stop()
	if res := <-done; !errors.Is(res.err, job.ErrDetached) {
		t.Fatalf("first Run = %+v; want detached", res)
	}
	// The run is cancelled while another follower has not found it yet.
	ctx, cancel := context.WithCancelCause(t.Context())
	cancel(job.ErrCancelled)
	id := fake.Clusters()[0]
	res := <-run(ctx)
	if res.err != nil || res.out.ExitCode == 0 || !strings.Contains(res.out.Err, "cancel") || fake.Calls("TerminateJobFlows") != 1 || fake.Calls("RunJobFlow") != 1 {
		t.Fatalf("cancelled Run = %+v, %d terminate calls; want the run's cluster %s terminated", res, fake.Calls("TerminateJobFlows"), id)
	}
	if c, _ := fake.State(id); c != emrfake.Terminated {
		t.Fatalf("cluster %s is %s", id, c)
	}
}
