package emrfake_test

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
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/emr"
	"github.com/aws/aws-sdk-go-v2/service/emr/types"
	"github.com/aws/smithy-go"

	"github.com/sluicehq/sluice/job/emr/emrfake"
)

func client(url string) *emr.Client {
	return emr.New(emr.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		Retryer:     retry.AddWithMaxAttempts(retry.NewStandard(), 1)})
}

func input(name string) *emr.RunJobFlowInput {
	return &emr.RunJobFlowInput{Name: aws.String(name), ReleaseLabel: aws.String("emr-7.2.0"),
		ServiceRole: aws.String("EMR_DefaultRole_V2"), JobFlowRole: aws.String("EMR_EC2_DefaultRole"),
		Instances: &types.JobFlowInstancesConfig{InstanceGroups: []types.InstanceGroupConfig{
			{InstanceRole: types.InstanceRoleTypeMaster, InstanceType: aws.String("m5.xlarge"), InstanceCount: aws.Int32(1)}}},
		Steps: []types.StepConfig{{Name: aws.String("s"), HadoopJarStep: &types.HadoopJarStepConfig{Jar: aws.String("command-runner.jar"), Args: []string{"spark-submit", "x.py"}}}},
		Tags:  []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}}
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestAClusterFollowsItsScriptOnePhasePerDescribeAndReportsTimesAsTheSDKReadsThem(t *testing.T) {
	fake := emrfake.Start(t)
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 123_000_000, time.UTC)
	var mu sync.Mutex
	now := t0
	fake.Clock = func() time.Time { mu.Lock(); defer mu.Unlock(); now = now.Add(time.Minute); return now }
	var completedAt []string // the step state the fake had shown when OnStepCompleted ran
	c := client(fake.URL)
	ctx := t.Context()
	out, err := c.RunJobFlow(ctx, input("one"))
	if err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.JobFlowId)
	fake.OnStepCompleted = func(info emrfake.StepInfo) {
		_, step := fake.State(id)
		completedAt = append(completedAt, step)
		if info.ClusterID != id || info.Tags["k"] != "v" || !slices.Equal(info.Args, []string{"spark-submit", "x.py"}) {
			t.Errorf("OnStepCompleted(%+v)", info)
		}
	}
	var states, steps []string
	for range 8 {
		d, err := c.DescribeCluster(ctx, &emr.DescribeClusterInput{ClusterId: out.JobFlowId})
		if err != nil {
			t.Fatal(err)
		}
		ls, err := c.ListSteps(ctx, &emr.ListStepsInput{ClusterId: out.JobFlowId})
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, string(d.Cluster.Status.State))
		steps = append(steps, string(ls.Steps[0].Status.State))
		if got := aws.ToTime(d.Cluster.Status.Timeline.CreationDateTime); !got.Equal(t0.Add(time.Minute)) {
			t.Fatalf("CreationDateTime = %v, want %v", got, t0.Add(time.Minute))
		}
	}
	wantStates := []string{"STARTING", "BOOTSTRAPPING", "RUNNING", "RUNNING", "TERMINATING", "TERMINATED", "TERMINATED", "TERMINATED"}
	wantSteps := []string{"PENDING", "PENDING", "RUNNING", "COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED"}
	if !slices.Equal(states, wantStates) || !slices.Equal(steps, wantSteps) {
		t.Fatalf("states %v, steps %v; want %v, %v", states, steps, wantStates, wantSteps)
	}
	if !slices.Equal(completedAt, []string{"COMPLETED"}) {
		t.Fatalf("OnStepCompleted calls: %v; want one", completedAt)
	}
	d, err := c.DescribeCluster(ctx, &emr.DescribeClusterInput{ClusterId: out.JobFlowId})
	if err != nil {
		t.Fatal(err)
	}
	tl := d.Cluster.Status.Timeline
	if tl.ReadyDateTime == nil || tl.EndDateTime == nil || !tl.EndDateTime.After(*tl.ReadyDateTime) ||
		aws.ToString(d.Cluster.Status.StateChangeReason.Message) != "Steps completed" || d.Cluster.Status.StateChangeReason.Code != "ALL_STEPS_COMPLETED" {
		t.Fatalf("final status = %+v", d.Cluster.Status)
	}
}

func TestListClustersFiltersAndPaginatesNewestFirst(t *testing.T) {
	fake := emrfake.Start(t)
	fake.PageSize = 2
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := t0
	fake.Clock = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := client(fake.URL)
	var ids []string
	for i, n := range []string{"a", "b", "c", "d", "e"} {
		mu.Lock()
		now = t0.Add(time.Duration(i) * time.Minute) // a at t0, b at t0+1m, ...
		mu.Unlock()
		out, err := c.RunJobFlow(t.Context(), input(n))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, aws.ToString(out.JobFlowId))
	}
	if _, err := c.TerminateJobFlows(t.Context(), &emr.TerminateJobFlowsInput{JobFlowIds: []string{ids[3]}}); err != nil {
		t.Fatal(err)
	}
	list := func(in *emr.ListClustersInput) (names []string, pages int) {
		p := emr.NewListClustersPaginator(c, in)
		for p.HasMorePages() {
			page, err := p.NextPage(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, s := range page.Clusters {
				names = append(names, aws.ToString(s.Name))
			}
		}
		return names, pages
	}
	if names, pages := list(&emr.ListClustersInput{}); !slices.Equal(names, []string{"e", "d", "c", "b", "a"}) || pages != 3 {
		t.Errorf("all clusters: %v in %d pages; want e..a in 3", names, pages)
	}
	if names, _ := list(&emr.ListClustersInput{CreatedAfter: aws.Time(t0.Add(90 * time.Second))}); !slices.Equal(names, []string{"e", "d", "c"}) {
		t.Errorf("created after the second: %v", names)
	}
	if names, _ := list(&emr.ListClustersInput{ClusterStates: []types.ClusterState{types.ClusterStateTerminating}}); !slices.Equal(names, []string{"d"}) {
		t.Errorf("TERMINATING clusters: %v, want [d]", names)
	}
}

func TestTerminatingCancelsTheStepAndEndsTheCluster(t *testing.T) {
	fake := emrfake.Start(t)
	fake.SetScript(emrfake.NeverStarts())
	c := client(fake.URL)
	out, err := c.RunJobFlow(t.Context(), input("x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.TerminateJobFlows(t.Context(), &emr.TerminateJobFlowsInput{JobFlowIds: []string{*out.JobFlowId}}); err != nil {
		t.Fatal(err)
	}
	var states []string
	for range 3 {
		d, err := c.DescribeCluster(t.Context(), &emr.DescribeClusterInput{ClusterId: out.JobFlowId})
		if err != nil {
			t.Fatal(err)
		}
		states = append(states, string(d.Cluster.Status.State)+"/"+string(d.Cluster.Status.StateChangeReason.Code))
	}
	if want := []string{"TERMINATING/USER_REQUEST", "TERMINATED/USER_REQUEST", "TERMINATED/USER_REQUEST"}; !slices.Equal(states, want) {
		t.Fatalf("states after TerminateJobFlows: %v, want %v", states, want)
	}
	if _, step := fake.State(*out.JobFlowId); step != emrfake.StepCancelled {
		t.Fatalf("step %s, want CANCELLED", step)
	}
	_, err = c.TerminateJobFlows(t.Context(), &emr.TerminateJobFlowsInput{JobFlowIds: []string{"j-NOSUCH"}})
	if code(err) != "ValidationException" {
		t.Fatalf("terminating an unknown cluster: %v", err)
	}
}

func TestErrorsAreAWSJSONErrorsTheSDKDecodes(t *testing.T) {
	fake := emrfake.Start(t)
	c := client(fake.URL)
	ctx := t.Context()
	fake.Throttle("DescribeCluster", 2)
	for range 2 {
		_, err := c.DescribeCluster(ctx, &emr.DescribeClusterInput{ClusterId: aws.String("j-1")})
		if code(err) != "ThrottlingException" {
			t.Fatalf("throttled DescribeCluster: %v", err)
		}
	}
	_, err := c.DescribeCluster(ctx, &emr.DescribeClusterInput{ClusterId: aws.String("j-NOSUCH")})
	var ire *types.InvalidRequestException
	if !errors.As(err, &ire) || ire.ErrorMessage() != "Cluster id 'j-NOSUCH' is not valid." {
		t.Fatalf("DescribeCluster of an unknown cluster: %v", err)
	}
	if _, err := c.ListInstances(ctx, &emr.ListInstancesInput{ClusterId: aws.String("j-1")}); code(err) != "UnknownOperationException" {
		t.Fatalf("an operation the fake lacks: %v", err)
	}
	bad := input("both")
	bad.Instances.InstanceFleets = []types.InstanceFleetConfig{{InstanceFleetType: types.InstanceFleetTypeMaster}}
	if _, err := c.RunJobFlow(ctx, bad); code(err) != "ValidationException" || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("RunJobFlow with groups and fleets: %v", err)
	}
	var statuses []int
	for _, r := range fake.Requests() {
		if !r.Signed || r.Target != "ElasticMapReduce."+r.Op {
			t.Errorf("request %+v: want signed, with its target", r)
		}
		statuses = append(statuses, r.Status)
	}
	if want := []int{400, 400, 400, 400, 400}; !slices.Equal(statuses, want) {
		t.Errorf("statuses %v, want %v", statuses, want)
	}
	want := []string{"elasticmapreduce:DescribeCluster", "elasticmapreduce:ListInstances", "elasticmapreduce:RunJobFlow"}
	if ops := fake.Operations(); !slices.Equal(ops, want) {
		t.Fatalf("Operations() = %v, want %v", ops, want)
	}
}

func TestUnsignedOrMistargetedRequestsAreReportedAndRefused(t *testing.T) {
	fake := emrfake.New()
	var violations []string
	var mu sync.Mutex
	fake.Fail = func(msg string) { mu.Lock(); defer mu.Unlock(); violations = append(violations, msg) }
	hs := httptest.NewServer(fake)
	defer hs.Close()
	for _, h := range []map[string]string{
		{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "ElasticMapReduce.ListClusters"},
		{"Content-Type": "application/json", "X-Amz-Target": "ElasticMapReduce.ListClusters", "Authorization": "AWS4-HMAC-SHA256 Credential=A/20240501/us-east-1/elasticmapreduce/aws4_request", "X-Amz-Date": "20240501T000000Z"},
	} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, hs.URL+"/", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			req.Header.Set(k, v)
		}
		resp, err := hs.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(violations) != 2 || !strings.Contains(violations[0], "not signed") || !strings.Contains(violations[1], "Content-Type") {
		t.Fatalf("violations = %q", violations)
	}
}

func TestWaitCallsWaitsForRequestsAndGivesUpWithTheContext(t *testing.T) {
	fake := emrfake.Start(t)
	c := client(fake.URL)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer cancel()
		done <- fake.WaitCalls(ctx, "ListClusters", 2)
	}()
	for range 2 {
		if _, err := c.ListClusters(t.Context(), &emr.ListClustersInput{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := fake.WaitCalls(ctx, "RunJobFlow", 1); err == nil {
		t.Fatal("WaitCalls with an ended context and no call = nil, want an error")
	}
}
