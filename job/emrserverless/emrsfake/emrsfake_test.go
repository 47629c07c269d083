package emrsfake_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/emrserverless"
	"github.com/aws/aws-sdk-go-v2/service/emrserverless/types"

	"github.com/sluicehq/sluice/job/emrserverless/emrsfake"
)

const role = "arn:aws:iam::123456789012:role/sluice"

func client(url string) *emrserverless.Client {
	return emrserverless.New(emrserverless.Options{
		Region:           emrsfake.Region,
		BaseEndpoint:     aws.String(url),
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		RetryMaxAttempts: 1,
	})
}

func start(token string) *emrserverless.StartJobRunInput {
	return &emrserverless.StartJobRunInput{ApplicationId: aws.String("app"), ClientToken: aws.String(token), ExecutionRoleArn: aws.String(role),
		JobDriver: &types.JobDriverMemberSparkSubmit{Value: types.SparkSubmit{EntryPoint: aws.String("s3://code/job.py")}}}
}

func TestJobRunsMoveThroughTheirScriptOneStepPerGetJobRunWithTimesTheSDKReads(t *testing.T) {
	now := time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC)
	fake := emrsfake.Start(t, &emrsfake.Options{Applications: []string{"app"}, Clock: func() time.Time { return now },
		Script: []emrsfake.Step{{State: emrsfake.Queued}, {State: emrsfake.Running}, {State: emrsfake.Failed, Details: "boom", ExecutionSeconds: 7}}})
	ctx := t.Context()
	cl := client(fake.URL)
	out, err := cl.StartJobRun(ctx, start("tok-1"))
	if err != nil {
		t.Fatal(err)
	}
	var got []types.JobRunState
	var last *types.JobRun
	for range 4 {
		g, err := cl.GetJobRun(ctx, &emrserverless.GetJobRunInput{ApplicationId: aws.String("app"), JobRunId: out.JobRunId})
		if err != nil {
			t.Fatal(err)
		}
		got, last = append(got, g.JobRun.State), g.JobRun
	}
	if want := []types.JobRunState{"QUEUED", "RUNNING", "FAILED", "FAILED"}; !slices.Equal(got, want) {
		t.Errorf("states = %v, want %v", got, want)
	}
	if !aws.ToTime(last.CreatedAt).Equal(now) || !aws.ToTime(last.EndedAt).Equal(now) || aws.ToString(last.StateDetails) != "boom" ||
		aws.ToInt32(last.TotalExecutionDurationSeconds) != 7 || aws.ToString(last.ExecutionRole) != role {
		t.Errorf("job run = %+v; want times at the fake's clock, details, 7 execution seconds and the role", last)
	}
	if sp, ok := last.JobDriver.(*types.JobDriverMemberSparkSubmit); !ok || aws.ToString(sp.Value.EntryPoint) != "s3://code/job.py" {
		t.Errorf("job driver = %#v, want the spark entry point echoed", last.JobDriver)
	}
}

func TestTheSameClientTokenAnswersTheSameJobRunAndCreatesNothing(t *testing.T) {
	fake := emrsfake.Start(t, &emrsfake.Options{Applications: []string{"app"}})
	cl := client(fake.URL)
	a, err := cl.StartJobRun(t.Context(), start("tok"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := cl.StartJobRun(t.Context(), start("tok"))
	if err != nil {
		t.Fatal(err)
	}
	fake.ScriptNew(emrsfake.Step{State: emrsfake.Pending})
	c, err := cl.StartJobRun(t.Context(), start("other"))
	if err != nil {
		t.Fatal(err)
	}
	if jr, ok := fake.JobRun("app", aws.ToString(c.JobRunId)); !ok || jr.State != emrsfake.Pending {
		t.Errorf("job run started after ScriptNew = %+v, %v; want PENDING", jr, ok)
	}
	if jr, _ := fake.JobRun("app", aws.ToString(a.JobRunId)); jr.State != emrsfake.Submitted {
		t.Errorf("job run started before ScriptNew is %s, want SUBMITTED", jr.State)
	}
	if aws.ToString(a.JobRunId) != aws.ToString(b.JobRunId) || aws.ToString(a.JobRunId) == aws.ToString(c.JobRunId) {
		t.Errorf("job runs %s, %s, %s; want the first two equal and the third new", aws.ToString(a.JobRunId), aws.ToString(b.JobRunId), aws.ToString(c.JobRunId))
	}
	reqs := fake.Requests()
	if len(fake.JobRuns()) != 2 || reqs[0].Repeat || !reqs[1].Repeat || reqs[2].Repeat {
		t.Errorf("job runs %d, requests %+v; want 2 job runs and only the second request a repeat", len(fake.JobRuns()), reqs)
	}
}

func TestErrorsReachTheSDKAsTheirModeledTypes(t *testing.T) {
	fake := emrsfake.Start(t, &emrsfake.Options{Applications: []string{"app"}, Script: []emrsfake.Step{{State: emrsfake.Success}}})
	ctx := t.Context()
	cl := client(fake.URL)

	in := start("tok")
	in.ApplicationId = aws.String("nope")
	_, err := cl.StartJobRun(ctx, in)
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) || !strings.Contains(aws.ToString(nf.Message), "nope") {
		t.Errorf("StartJobRun on an unknown application: %v; want ResourceNotFoundException naming it", err)
	}
	in = start("tok")
	in.ExecutionRoleArn = aws.String("sluice")
	_, err = cl.StartJobRun(ctx, in)
	var ve *types.ValidationException
	if !errors.As(err, &ve) {
		t.Errorf("StartJobRun with a role name: %v; want ValidationException", err)
	}
	out, err := cl.StartJobRun(ctx, start("tok"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.CancelJobRun(ctx, &emrserverless.CancelJobRunInput{ApplicationId: aws.String("app"), JobRunId: out.JobRunId})
	if !errors.As(err, &ve) {
		t.Errorf("CancelJobRun of an ended job run: %v; want ValidationException", err)
	}
	fake.Throttle("GetJobRun", 1)
	_, err = cl.GetJobRun(ctx, &emrserverless.GetJobRunInput{ApplicationId: aws.String("app"), JobRunId: out.JobRunId})
	if err == nil || !strings.Contains(err.Error(), "ThrottlingException") || !strings.Contains(err.Error(), "429") {
		t.Errorf("throttled GetJobRun: %v; want a 429 ThrottlingException", err)
	}
	if _, err := cl.GetJobRun(ctx, &emrserverless.GetJobRunInput{ApplicationId: aws.String("app"), JobRunId: out.JobRunId}); err != nil {
		t.Errorf("GetJobRun after the throttled one: %v", err)
	}
	_, err = cl.GetJobRun(ctx, &emrserverless.GetJobRunInput{ApplicationId: aws.String("app"), JobRunId: aws.String("00fjrmissing")})
	if !errors.As(err, &nf) {
		t.Errorf("GetJobRun of an unknown job run: %v; want ResourceNotFoundException", err)
	}
}

func TestCancelJobRunGoesThroughCancellingToCancelled(t *testing.T) {
	fake := emrsfake.Start(t, &emrsfake.Options{Applications: []string{"app"}, Script: []emrsfake.Step{{State: emrsfake.Running}}})
	ctx := t.Context()
	cl := client(fake.URL)
	out, err := cl.StartJobRun(ctx, start("tok"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CancelJobRun(ctx, &emrserverless.CancelJobRunInput{ApplicationId: aws.String("app"), JobRunId: out.JobRunId}); err != nil {
		t.Fatal(err)
	}
	var got []types.JobRunState
	for range 3 {
		g, err := cl.GetJobRun(ctx, &emrserverless.GetJobRunInput{ApplicationId: aws.String("app"), JobRunId: out.JobRunId})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, g.JobRun.State)
	}
	if want := []types.JobRunState{"CANCELLING", "CANCELLED", "CANCELLED"}; !slices.Equal(got, want) {
		t.Errorf("states after CancelJobRun = %v, want %v", got, want)
	}
	if got, want := fake.Operations(), []string{"emr-serverless:CancelJobRun", "emr-serverless:GetJobRun", "emr-serverless:StartJobRun", "iam:PassRole"}; !slices.Equal(got, want) {
		t.Errorf("Operations = %q, want %q", got, want)
	}
}

func TestGetApplicationAnswersKnownApplications(t *testing.T) {
	fake := emrsfake.Start(t, nil)
	fake.AddApplication("app")
	cl := client(fake.URL)
	out, err := cl.GetApplication(t.Context(), &emrserverless.GetApplicationInput{ApplicationId: aws.String("app")})
	if err != nil || aws.ToString(out.Application.ApplicationId) != "app" || out.Application.State != types.ApplicationStateStarted {
		t.Errorf("GetApplication = %+v, %v; want app, STARTED", out, err)
	}
	_, err = cl.GetApplication(t.Context(), &emrserverless.GetApplicationInput{ApplicationId: aws.String("other")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("GetApplication of an unknown application: %v; want ResourceNotFoundException", err)
	}
}

func TestProtocolViolationsAreReportedAndRefused(t *testing.T) {
	var mu sync.Mutex
	var violations []string
	fake := emrsfake.New(&emrsfake.Options{Applications: []string{"app"}, Fail: func(msg string) {
		mu.Lock()
		defer mu.Unlock()
		violations = append(violations, msg)
	}})
	hs := httptest.NewServer(fake)
	defer hs.Close()
	for _, req := range []struct{ method, path, body string }{
		{http.MethodGet, "/applications/app/jobruns/jr", ""},                            // unsigned
		{http.MethodPut, "/applications/app/jobruns", `{}`},                             // no such operation
		{http.MethodPost, "/applications/app/jobruns", `{"clientToken":"x","bogus":1}`}, // unknown member
	} {
		r, err := http.NewRequest(req.method, hs.URL+req.path, strings.NewReader(req.body))
		if err != nil {
			t.Fatal(err)
		}
		if req.method != http.MethodGet {
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDTEST/20200807/us-east-1/emr-serverless/aws4_request, SignedHeaders=host, Signature=0")
			r.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.Header.Get("X-Amzn-ErrorType") == "" {
			t.Errorf("%s %s answered %d (%q), want an error with its type", req.method, req.path, resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(violations) != 3 {
		t.Errorf("violations = %q, want 3", violations)
	}
	for _, r := range fake.Requests() {
		if r.Violation == "" {
			t.Errorf("request %s %s not marked as a violation", r.Method, r.Path)
		}
	}
	if len(fake.JobRuns()) != 0 {
		t.Errorf("job runs = %+v, want none", fake.JobRuns())
	}
}

func TestWaitForReturnsWhenTheConditionHoldsOrTheContextEnds(t *testing.T) {
	fake := emrsfake.Start(t, &emrsfake.Options{Applications: []string{"app"}})
	done := make(chan error, 1)
	go func() {
		done <- fake.WaitFor(t.Context(), func() bool { return len(fake.JobRuns()) == 1 })
	}()
	if _, err := client(fake.URL).StartJobRun(t.Context(), start("tok")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("WaitFor: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitFor did not see the new job run within 10s")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := fake.WaitFor(ctx, func() bool { return false }); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitFor with an ended context: %v, want context.Canceled", err)
	}
	if err := fake.Set("app", "nope", emrsfake.Step{State: emrsfake.Running}); err == nil {
		t.Error("Set of an unknown job run succeeded")
	}
	if err := fake.Set("app", fake.JobRuns()[0].ID, emrsfake.Step{State: "DONE"}); err == nil {
		t.Error("Set with an unknown state succeeded")
	}
}
