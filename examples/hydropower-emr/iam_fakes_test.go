package hydropoweremr_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsemr "github.com/aws/aws-sdk-go-v2/service/emr"
	"github.com/aws/aws-sdk-go-v2/service/emrserverless"

	"github.com/sluicehq/sluice/fault"
	_ "github.com/sluicehq/sluice/internal/engine" // the runners' own settings checks run when the specs are parsed
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/job/emr"
	"github.com/sluicehq/sluice/job/emr/emrfake"
	emrs "github.com/sluicehq/sluice/job/emrserverless"
	"github.com/sluicehq/sluice/job/emrserverless/emrsfake"
)

// impliedActions are the IAM actions AWS authorises as part of a call the
// fakes record, not as calls of their own: tagging at creation
// (RunJobFlow and StartJobRun send tags) and passing the roles
// (emrsfake already counts PassRole with StartJobRun).
var impliedActions = map[string][]string{
	"elasticmapreduce:RunJobFlow": {"elasticmapreduce:AddTags", "iam:PassRole"},
	"emr-serverless:StartJobRun":  {"emr-serverless:TagResource"},
}

// withImplied returns ops plus the actions they imply, sorted.
func withImplied(ops []string) []string {
	out := slices.Clone(ops)
	for _, op := range ops {
		out = append(out, impliedActions[op]...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// sparkTask is what the engine hands a spark runner.
func sparkTask(id string) job.Task {
	return job.Task{RunID: id, Rule: "hydropower", Group: "2020-08-07_2PM", Kind: job.KindSpark, Created: time.Now(),
		Spark: &job.Spark{EntryPoint: "s3://BUCKET/jobs/hydropower_curate.py", Args: []string{"--run-id", id, "--output", "s3://BUCKET/curated/2020-08-07_2PM/"}}}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// The shipped policies for the sluice process allow exactly the API
// operations the runners were seen to call on the fakes — a new run to
// its end, a run found again by its run ID (adoption), a run cancelled —
// plus the actions those calls imply.
func TestSluicePoliciesAllowExactlyWhatTheFakesRecorded(t *testing.T) {
	ctx := t.Context()
	t.Run("emr", func(t *testing.T) {
		fake := emrfake.Start(t)
		spec := onlyJob(t, loadSpec(t, "emr.yaml")).EMR
		cfg := emr.Config{Region: "eu-west-1", ReleaseLabel: spec.ReleaseLabel, ServiceRole: spec.ServiceRole, InstanceProfile: spec.InstanceProfile,
			LogURI: spec.LogURI, IdleTimeout: spec.IdleTimeout, Tags: spec.Tags}
		for _, g := range spec.InstanceGroups {
			cfg.InstanceGroups = append(cfg.InstanceGroups, emr.InstanceGroup{Role: g.Role, InstanceType: g.Type, Count: int32(g.Count), Market: g.Market})
		}
		r := emr.New(cfg, "hydropower")
		r.Client = awsemr.New(awsemr.Options{Region: "eu-west-1", BaseEndpoint: aws.String(fake.URL),
			Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")})
		r.PollInterval, r.Logger = time.Millisecond, quiet()
		// A new run to its end, then the same run ID again (found, not
		// started), then a run cancelled.
		for _, id := range []string{"0193c5e2-0000-7000-8000-000000000001", "0193c5e2-0000-7000-8000-000000000001"} {
			if out, err := r.Run(ctx, sparkTask(id)); err != nil || out.Err != "" {
				t.Fatalf("run %s: %+v, %v", id, out, err)
			}
		}
		fake.SetScript(emrfake.NeverStarts())
		cctx, cancel := context.WithCancelCause(ctx)
		done := make(chan error, 1)
		go func() { _, err := r.Run(cctx, sparkTask("0193c5e2-0000-7000-8000-000000000002")); done <- err }()
		if err := fake.WaitCalls(ctx, "DescribeCluster", fake.Calls("DescribeCluster")+1); err != nil {
			t.Fatal(err)
		}
		cancel(job.ErrCancelled)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if fake.Calls("RunJobFlow") != 2 || fake.Calls("TerminateJobFlows") != 1 {
			t.Fatalf("RunJobFlow %d, TerminateJobFlows %d; want 2 and 1", fake.Calls("RunJobFlow"), fake.Calls("TerminateJobFlows"))
		}
		got := slices.Sorted(maps.Keys(policyActions(t, "sluice-emr.json")))
		if want := withImplied(fake.Operations()); !slices.Equal(got, want) {
			t.Fatalf("iam/sluice-emr.json allows %v; the runner called %v (with what those imply: %v)", got, fake.Operations(), want)
		}
	})
	t.Run("emr-serverless", func(t *testing.T) {
		spec := onlyJob(t, loadSpec(t, "emr-serverless.yaml")).EMRServerless
		const app = "00fkl3q2oa6ht609" // the spec's placeholder, substituted as the README says
		fake := emrsfake.Start(t, &emrsfake.Options{Applications: []string{app}})
		r := &emrs.Runner{Config: emrs.Config{ApplicationID: app, ExecutionRole: spec.ExecutionRole, LogURI: spec.LogURI, Tags: spec.Tags},
			Client: emrserverless.New(emrserverless.Options{Region: emrsfake.Region, BaseEndpoint: aws.String(fake.URL),
				Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")}),
			PollInterval: time.Millisecond, Retry: fault.Retry{Backoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond}, Logger: quiet()}
		for _, id := range []string{"0193c5e2-0000-7000-8000-000000000001", "0193c5e2-0000-7000-8000-000000000001"} {
			if out, err := r.Run(ctx, sparkTask(id)); err != nil || out.Err != "" {
				t.Fatalf("run %s: %+v, %v", id, out, err)
			}
		}
		fake.ScriptNew(emrsfake.Step{State: emrsfake.Submitted}, emrsfake.Step{State: emrsfake.Running})
		gets := fake.Count("GetJobRun")
		cctx, cancel := context.WithCancelCause(ctx)
		done := make(chan error, 1)
		go func() { _, err := r.Run(cctx, sparkTask("0193c5e2-0000-7000-8000-000000000002")); done <- err }()
		if err := fake.WaitFor(ctx, func() bool { return fake.Count("GetJobRun") >= gets+2 }); err != nil {
			t.Fatal(err)
		}
		cancel(job.ErrCancelled)
		if err := <-done; err != nil && !errors.Is(err, job.ErrDetached) {
			t.Fatal(err)
		}
		if fake.Count("CancelJobRun") != 1 {
			t.Fatalf("CancelJobRun %d; want 1", fake.Count("CancelJobRun"))
		}
		got := slices.Sorted(maps.Keys(policyActions(t, "sluice-emr-serverless.json")))
		if want := withImplied(fake.Operations()); !slices.Equal(got, want) {
			t.Fatalf("iam/sluice-emr-serverless.json allows %v; the runner called %v (with what those imply: %v)", got, fake.Operations(), want)
		}
	})
}
