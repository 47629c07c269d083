package emrserverless_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/emrserverless"

	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/job"
	emrs "github.com/sluicehq/sluice/job/emrserverless"
	"github.com/sluicehq/sluice/job/emrserverless/emrsfake"
	"github.com/sluicehq/sluice/state/sqlitestate"
	"github.com/sluicehq/sluice/trigger"
)

const (
	app  = "app"
	role = "arn:aws:iam::123456789012:role/sluice-emr-serverless"
)

// clock is a manually advanced time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

var t0 = time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC)

// client is the real SDK client aimed at the fake. The SDK's own retries
// are off, so the runner's retries are what the tests see.
func client(url string) *emrserverless.Client {
	return emrserverless.New(emrserverless.Options{
		Region:           emrsfake.Region,
		BaseEndpoint:     aws.String(url),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		RetryMaxAttempts: 1,
	})
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newRunner(fake *emrsfake.Server) *emrs.Runner {
	return &emrs.Runner{
		Config:       emrs.Config{ApplicationID: app, ExecutionRole: role, LogURI: "s3://logs/emr"},
		Client:       client(fake.URL),
		PollInterval: time.Millisecond,
		Retry:        fault.Retry{Backoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond},
		Logger:       quiet(),
	}
}

func sparkTask(runID string) job.Task {
	return job.Task{RunID: runID, Rule: "hydropower", Group: "2020-08-07_2PM", Kind: job.KindSpark,
		Spark: &job.Spark{EntryPoint: "s3://code/curate.py", Args: []string{"--run-id", runID, "--output", "s3://lake/curated/"}}}
}

// waitFor waits (30s at most) until cond holds on the fake.
func waitFor(t *testing.T, fake *emrsfake.Server, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := fake.WaitFor(ctx, cond); err != nil {
		t.Fatalf("waiting until %s: %v", what, err)
	}
}

// answeredAfter reports whether a GetJobRun answered state and the runner
// asked again afterwards: by then it has acted on that state.
func answeredAfter(fake *emrsfake.Server, state string) func() bool {
	return func() bool {
		seen := false
		for _, r := range fake.Requests() {
			if r.Operation != "GetJobRun" {
				continue
			}
			if seen {
				return true
			}
			seen = r.State == state
		}
		return false
	}
}

func onlyJobRun(t *testing.T, fake *emrsfake.Server) emrsfake.JobRun {
	t.Helper()
	jrs := fake.JobRuns()
	if len(jrs) != 1 {
		t.Fatalf("the fake holds %d job runs, want exactly 1: %+v", len(jrs), jrs)
	}
	return jrs[0]
}

func TestStartJobRunSendsTheRunsApplicationRoleDriverLogsTimeoutTagsAndName(t *testing.T) {
	fake := emrsfake.Start(t, &emrsfake.Options{Applications: []string{app}})
	r := newRunner(fake)
	r.Name = "nightly"
	r.SparkSubmitParameters = " --conf spark.dynamicAllocation.enabled=false "
	r.Tags = map[string]string{"team": "data"}
	r.Clock = func() time.Time { return t0 }
	task := sparkTask("0190a7e1-run-1")
	task.Spark.Class = "com.example.Curate"
	task.Spark.Conf = map[string]string{"spark.executor.memory": "4g", "spark.driver.cores": "2"}
	task.Created, task.Deadline = t0, t0.Add(90*time.Minute+time.Second)

	out, err := r.Run(t.Context(), task)
	if err != nil || out.Err != "" || out.ExitCode != 0 {
		t.Fatalf("Run = %+v, %v; want success", out, err)
	}
	reqs := fake.Requests()
	if len(reqs) == 0 || reqs[0].Operation != "StartJobRun" {
		t.Fatalf("first request = %+v, want StartJobRun", reqs)
	}
	start := reqs[0]
	if start.Method != http.MethodPost || start.Path != "/applications/app/jobruns" || !start.Signed {
		t.Errorf("StartJobRun went to %s %s (signed %v), want a signed POST /applications/app/jobruns", start.Method, start.Path, start.Signed)
	}
	b := start.Body
	if got := b["clientToken"]; got != task.RunID {
		t.Errorf("clientToken = %v, want the run ID %s", got, task.RunID)
	}
	if got := b["executionRoleArn"]; got != role {
		t.Errorf("executionRoleArn = %v, want %s", got, role)
	}
	if got, want := b["name"], "nightly-hydropower-"+task.RunID; got != want {
		t.Errorf("name = %v, want %s", got, want)
	}
	spark := dig(t, b, "jobDriver", "sparkSubmit")
	if got := spark["entryPoint"]; got != "s3://code/curate.py" {
		t.Errorf("entryPoint = %v", got)
	}
	var args []string
	for _, a := range spark["entryPointArguments"].([]any) {
		args = append(args, a.(string))
	}
	if !slices.Equal(args, task.Spark.Args) {
		t.Errorf("entryPointArguments = %q, want %q in order", args, task.Spark.Args)
	}
	if got, want := spark["sparkSubmitParameters"], "--class com.example.Curate --conf spark.driver.cores=2 --conf spark.executor.memory=4g --conf spark.dynamicAllocation.enabled=false"; got != want {
		t.Errorf("sparkSubmitParameters = %q\nwant                    %q", got, want)
	}
	if got := dig(t, b, "configurationOverrides", "monitoringConfiguration", "s3MonitoringConfiguration")["logUri"]; got != "s3://logs/emr" {
		t.Errorf("logUri = %v, want s3://logs/emr", got)
	}
	if got := b["executionTimeoutMinutes"]; got != float64(91) {
		t.Errorf("executionTimeoutMinutes = %v, want 91 (90m1s rounded up)", got)
	}
	wantTags := map[string]any{"sluice:run-id": task.RunID, "sluice:job": "hydropower", "sluice:group": "2020-08-07_2PM", "team": "data"}
	tags, _ := b["tags"].(map[string]any)
	if len(tags) != len(wantTags) {
		t.Errorf("tags = %v, want %v", tags, wantTags)
	}
	for k, v := range wantTags {
		if tags[k] != v {
			t.Errorf("tag %s = %v, want %v", k, tags[k], v)
		}
	}
	jr := onlyJobRun(t, fake)
	if jr.ApplicationID != app || jr.State != emrsfake.Success {
		t.Errorf("job run = %+v, want one on %s that succeeded", jr, app)
	}
	log := string(out.Log)
	for _, want := range []string{jr.ID, "SUBMITTED → RUNNING → SUCCESS", "s3://logs/emr/applications/app/jobs/" + jr.ID + "/"} {
		if !strings.Contains(log, want) {
			t.Errorf("Outcome.Log lacks %q:\n%s", want, log)
		}
	}
	if got, want := fake.Operations(), []string{"emr-serverless:GetJobRun", "emr-serverless:StartJobRun", "iam:PassRole"}; !slices.Equal(got, want) {
		t.Errorf("Operations = %q, want %q", got, want)
	}
	// Following the job run by its Remote asks for it without StartJobRun.
	task.Remote = emrs.RemoteID(app, jr.ID)
	if out, err := r.Run(t.Context(), task); err != nil || out.Err != "" || fake.Count("StartJobRun") != 1 {
		t.Errorf("Run with Remote = %+v, %v after %d StartJobRun calls; want success without another", out, err, fake.Count("StartJobRun"))
	}
}

func dig(t *testing.T, m map[string]any, path ...string) map[string]any {
	t.Helper()
	for _, p := range path {
		next, ok := m[p].(map[string]any)
		if !ok {
			t.Fatalf("request body has no object %s in %v", p, m)
		}
		m = next
	}
	return m
}

func TestARunThroughTheManagerIsRecordedStartingThenRunningThenSucceeded(t *testing.T) {
	ctx := t.Context()
	fake := emrsfake.Start(t, &emrsfake.Options{Applications: []string{app}, Script: []emrsfake.Step{{State: emrsfake.Submitted}}})
	st, err := sqlitestate.Open(ctx, filepath.Join(t.TempDir(), "state.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rule, err := trigger.Compile(trigger.Rule{Name: "hydropower", Filter: event.Filter{Events: []string{"s3:ObjectCreated:*"}, Prefix: "data/", Suffix: ".csv"}})
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: t0}
	inputs := []job.Input{{Key: "data/2020-08-07_2PM/a.csv", ETag: "e1"}}
	m, err := job.NewManager([]job.Definition{{
		Name: "hydropower", Rule: rule, Settle: time.Second,
		Inputs: func(context.Context, string) ([]job.Input, error) { return inputs, nil },
		Task: func(group string, _ []job.Input) (job.Task, error) {
			return job.Task{Kind: job.KindSpark, Spark: &job.Spark{EntryPoint: "s3://code/curate.py", Args: []string{"--group", group}}}, nil
		},
	}}, job.Options{State: st, Runner: newRunner(fake), Clock: clk.Now, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := m.Offer(ctx, event.New("lake", inputs[0].Key, 10, "e1", t0)); err != nil || !ok {
		t.Fatalf("Offer = %v, %v; want a match", ok, err)
	}
	clk.Set(t0.Add(2 * time.Second))
	if n, err := m.Step(ctx); err != nil || n != 1 {
		t.Fatalf("Step = %d, %v; want 1 run started", n, err)
	}
	runs, err := st.ListRuns(ctx, job.RunFilter{})
	if err != nil || len(runs) != 1 || runs[0].State != job.Starting {
		t.Fatalf("runs after Step = %+v, %v; want one STARTING", runs, err)
	}
	id := runs[0].ID

	// The job run stays SUBMITTED until the test moves it on.
	waitFor(t, fake, "the job run is asked about while SUBMITTED", answeredAfter(fake, emrsfake.Submitted))
	jr := onlyJobRun(t, fake)
	if jr.ClientToken != id || jr.Tags["sluice:run-id"] != id || jr.Tags["sluice:group"] != "2020-08-07_2PM" {
		t.Fatalf("job run = %+v, want client token and tags of run %s", jr, id)
	}
	if r, err := st.GetRun(ctx, id); err != nil || r.State != job.Starting {
		t.Fatalf("run while the job run is SUBMITTED = %+v, %v; want STARTING", r, err)
	}
	if err := fake.Set(app, jr.ID, emrsfake.Step{State: emrsfake.Running}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, fake, "the runner has seen RUNNING", answeredAfter(fake, emrsfake.Running))
	if r, err := st.GetRun(ctx, id); err != nil || r.State != job.Running || r.Started.IsZero() {
		t.Fatalf("run while the job run is RUNNING = %+v, %v; want RUNNING with a start time", r, err)
	}
	if err := fake.Set(app, jr.ID, emrsfake.Step{State: emrsfake.Success, ExecutionSeconds: 42}); err != nil {
		t.Fatal(err)
	}
	m.Wait()
	r, err := st.GetRun(ctx, id)
	if err != nil || r.State != job.Succeeded || r.Terminated.IsZero() || r.Error != "" || r.ComputeSeconds != 42 {
		t.Fatalf("finished run = %+v, %v; want SUCCEEDED and terminated, with 42 compute seconds", r, err)
	}
	// The Manager records Run.Remote from NotifyRemote.
	if want := emrs.RemoteID(app, jr.ID); r.Remote != want {
		t.Errorf("Run.Remote = %q, want %q", r.Remote, want)
	}
	if n := fake.Count("StartJobRun"); n != 1 {
		t.Errorf("%d StartJobRun calls, want 1", n)
	}
}

func TestThrottlingAndServerErrorsAreRetriedWithoutASecondJobRun(t *testing.T) {
	fake := emrsfake.Start(t, &emrsfake.Options{Applications: []string{app}})
	fake.FailNext("StartJobRun", 1, http.StatusInternalServerError, "InternalServerException", "try again")
	fake.Throttle("GetJobRun", 3)
	out, err := newRunner(fake).Run(t.Context(), sparkTask("run-throttled"))
	if err != nil || out.Err != "" {
		t.Fatalf("Run = %+v, %v; want success despite throttling", out, err)
	}
	onlyJobRun(t, fake)
	var throttled, failed int
	for _, q := range fake.Requests() {
		switch {
		case q.Operation == "GetJobRun" && q.Status == http.StatusTooManyRequests && q.ErrorCode == "ThrottlingException":
			throttled++
		case q.Operation == "StartJobRun" && q.Status == http.StatusInternalServerError:
			failed++
		}
	}
	if throttled != 3 || failed != 1 || fake.Count("StartJobRun") != 2 {
		t.Errorf("saw %d throttled GetJobRun, %d failed and %d StartJobRun calls; want 3, 1 and 2", throttled, failed, fake.Count("StartJobRun"))
	}
}

func TestFollowingPastTheRetryBudgetDetachesFromTheJobRun(t *testing.T) {
	fake := emrsfake.Start(t, &emrsfake.Options{Applications: []string{app}})
	fake.Throttle("GetJobRun", 1000)
	r := newRunner(fake)
	r.Retry.For = time.Nanosecond
	_, err := r.Run(t.Context(), sparkTask("run-unreachable"))
	if !errors.Is(err, job.ErrDetached) || fault.IsPermanent(err) || !strings.Contains(err.Error(), onlyJobRun(t, fake).ID) {
		t.Fatalf("Run: %v; want a transient error wrapping job.ErrDetached that names the job run", err)
	}
}

func TestAnUnknownApplicationOrARejectedJobRunIsAPermanentErrorNamingTheApplication(t *testing.T) {
	fake := emrsfake.Start(t, &emrsfake.Options{Applications: []string{app}})
	r := newRunner(fake)
	r.ApplicationID = "00nosuchapp"
	_, err := r.Run(t.Context(), sparkTask("run-nowhere"))
	if !fault.IsPermanent(err) || !strings.Contains(err.Error(), "application 00nosuchapp not found") {
		t.Errorf("Run on an unknown application: %v; want a permanent error naming it", err)
	}
	if n := fake.Count("StartJobRun"); n != 1 {
		t.Errorf("%d StartJobRun calls, want 1 (no retry of a permanent error)", n)
	}

	fake.FailNext("StartJobRun", 1, http.StatusBadRequest, "ValidationException", "Entry point s3://code/curate.py is not accessible")
	_, err = newRunner(fake).Run(t.Context(), sparkTask("run-rejected"))
	if !fault.IsPermanent(err) || !strings.Contains(err.Error(), "application "+app) || !strings.Contains(err.Error(), "not accessible") {
		t.Errorf("Run rejected by the service: %v; want a permanent error naming application %s and the reason", err, app)
	}
	if len(fake.JobRuns()) != 0 {
		t.Errorf("job runs = %+v, want none", fake.JobRuns())
	}
}

func TestTasksTheRunnerCannotRunArePermanentErrorsAndStartNothing(t *testing.T) {
	fake := emrsfake.Start(t, &emrsfake.Options{Applications: []string{app}})
	r := newRunner(fake)
	noEntry := sparkTask("run-noentry")
	noEntry.Spark.EntryPoint = ""
	spaced := sparkTask("run-spaced")
	spaced.Spark.Conf = map[string]string{"spark.driver.extraJavaOptions": "-Xss4m -XX:+UseG1GC"}
	badConfig := newRunner(fake)
	badConfig.ExecutionRole = "sluice-role"
	for _, tc := range []struct {
		name string
		r    *emrs.Runner
		task job.Task
		want string
	}{
		{"no entry point", r, noEntry, "entry point"},
		{"a conf value with spaces", r, spaced, "spark.driver.extraJavaOptions"},
		{"an invalid config", badConfig, sparkTask("run-badconfig"), "execution_role"},
	} {
		_, err := tc.r.Run(t.Context(), tc.task)
		if !fault.IsPermanent(err) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.task.RunID) {
			t.Errorf("%s: Run: %v; want a permanent error naming run %s and %q", tc.name, err, tc.task.RunID, tc.want)
		}
	}
	if reqs := fake.Requests(); len(reqs) != 0 {
		t.Errorf("requests = %+v, want none", reqs)
	}
}

func TestAdoptingAJobRunOfAnotherRunIsAPermanentError(t *testing.T) {
	fake := emrsfake.Start(t, &emrsfake.Options{Applications: []string{app}})
	r := newRunner(fake)
	if _, err := r.Run(t.Context(), sparkTask("run-a")); err != nil {
		t.Fatal(err)
	}
	b := sparkTask("run-b")
	b.Remote = emrs.RemoteID(app, onlyJobRun(t, fake).ID)
	_, err := r.Run(t.Context(), b)
	if !fault.IsPermanent(err) || !strings.Contains(err.Error(), "belongs to run run-a") {
		t.Errorf("Run adopting run-a's job run as run-b: %v; want a permanent error", err)
	}
}

func TestLongJobNamesAndOddGroupsAreMadeAcceptableToTheService(t *testing.T) {
	fake := emrsfake.Start(t, &emrsfake.Options{Applications: []string{app}})
	task := sparkTask("run-long")
	task.Rule = strings.Repeat("j", 300)
	task.Group = "région,2020/" + strings.Repeat("g", 300)
	if out, err := newRunner(fake).Run(t.Context(), task); err != nil || out.Err != "" {
		t.Fatalf("Run = %+v, %v; want success", out, err)
	}
	jr := onlyJobRun(t, fake)
	if len(jr.Name) > 256 || !strings.HasPrefix(jr.Name, "sluice-jjj") || !strings.HasSuffix(jr.Name, "-run-long") {
		t.Errorf("name = %q (%d bytes); want sluice-<job cut short>-run-long within 256", jr.Name, len(jr.Name))
	}
	if g := jr.Tags["sluice:group"]; len(g) != 256 || !strings.HasPrefix(g, "r_gion_2020/ggg") {
		t.Errorf("sluice:group = %q (%d bytes); want refused characters as _ and 256 bytes", g, len(g))
	}
	if j := jr.Tags["sluice:job"]; len(j) != 256 {
		t.Errorf("sluice:job has %d bytes, want 256", len(j))
	}
}

func TestARunnerWithoutAClientBuildsOneFromRegionAndEndpoint(t *testing.T) {
	fake := emrsfake.Start(t, &emrsfake.Options{Applications: []string{app}})
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	r := &emrs.Runner{Config: emrs.Config{Region: "eu-west-1", Endpoint: fake.URL, ApplicationID: app, ExecutionRole: role},
		PollInterval: time.Millisecond, Logger: quiet()}
	if r.RemoteName() != "emr-serverless" {
		t.Errorf("RemoteName = %q", r.RemoteName())
	}
	if out, err := r.Run(t.Context(), sparkTask("run-default-client")); err != nil || out.Err != "" {
		t.Fatalf("Run = %+v, %v; want success", out, err)
	}
	reqs := fake.Requests()
	if len(reqs) == 0 || !reqs[0].Signed {
		t.Fatalf("requests = %+v; want signed ones", reqs)
	}
	onlyJobRun(t, fake)
}

func TestRemoteIDsRoundTrip(t *testing.T) {
	id := emrs.RemoteID("00fabc", "00fjr1")
	if id != "emr-serverless:00fabc/00fjr1" {
		t.Errorf("RemoteID = %q", id)
	}
	if a, j, ok := emrs.ParseRemote(id); !ok || a != "00fabc" || j != "00fjr1" {
		t.Errorf("ParseRemote(%q) = %q, %q, %v", id, a, j, ok)
	}
	for _, bad := range []string{"", "emr:j-1", "emr-serverless:", "emr-serverless:app", "emr-serverless:/jr", "emr-serverless:app/", "emr-serverless:app/jr/x"} {
		if _, _, ok := emrs.ParseRemote(bad); ok {
			t.Errorf("ParseRemote(%q) accepted it", bad)
		}
	}
}

func TestConfigCheckNamesEveryBadSettingBySpecName(t *testing.T) {
	good := emrs.Config{ApplicationID: "00fabcdef1234567", ExecutionRole: role}
	if err := good.Check(); err != nil {
		t.Fatalf("Check of a good config: %v", err)
	}
	gov := good
	gov.ExecutionRole = "arn:aws-us-gov:iam::123456789012:role/path/to/sluice"
	gov.LogURI, gov.Endpoint, gov.Name = "s3://logs/emr/", "http://127.0.0.1:9000", "nightly"
	gov.Tags = map[string]string{"team": "data", "cost center": "42"}
	if err := gov.Check(); err != nil {
		t.Errorf("Check of a full good config: %v", err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*emrs.Config)
		want   []string
	}{
		{"nothing set", func(c *emrs.Config) { *c = emrs.Config{} }, []string{"application_id: required", "execution_role: required"}},
		{"an application name instead of its id", func(c *emrs.Config) { c.ApplicationID = "My App" }, []string{"application_id", `"My App"`}},
		{"a role name instead of its ARN", func(c *emrs.Config) { c.ExecutionRole = "sluice-role" }, []string{"execution_role", "sluice-role"}},
		{"a user ARN", func(c *emrs.Config) { c.ExecutionRole = "arn:aws:iam::123456789012:user/bob" }, []string{"execution_role"}},
		{"a short account", func(c *emrs.Config) { c.ExecutionRole = "arn:aws:iam::1234:role/x" }, []string{"execution_role"}},
		{"a log URI that is no s3 URI", func(c *emrs.Config) { c.LogURI = "/var/log" }, []string{"log_uri"}},
		{"an endpoint that is no URL", func(c *emrs.Config) { c.Endpoint = "localhost:9000" }, []string{"endpoint"}},
		{"a name with spaces", func(c *emrs.Config) { c.Name = "my jobs" }, []string{"name"}},
		{"a reserved tag", func(c *emrs.Config) { c.Tags = map[string]string{"sluice:run-id": "x"} }, []string{"tags", "sluice:run-id"}},
		{"a tag with a comma", func(c *emrs.Config) { c.Tags = map[string]string{"a,b": "x"} }, []string{"tags", "a,b"}},
	} {
		c := good
		tc.mutate(&c)
		err := c.Check()
		if err == nil {
			t.Errorf("%s: Check passed", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: Check: %v; want it to mention %q", tc.name, err, w)
			}
		}
	}
}
