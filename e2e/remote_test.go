package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/job/emr/emrfake"
	"github.com/sluicehq/sluice/job/emrserverless/emrsfake"
	"github.com/sluicehq/sluice/store/storetest"
)

// These tests prove issue 8's exactly-once promise for remote runners with
// real processes: a `sluice run` following a remote Spark run is killed -9,
// a new one adopts the run (same run ID, no second submission) and records
// its end and outputs once. The remote services are local fakes speaking
// their wire protocols (no AWS here); the store is a real S3 server
// (versitygw).

// remoteEnv is the set-up the remote-runner tests share.
type remoteEnv struct {
	v       *storetest.Versitygw
	store   string
	dataDir string
	env     []string
}

func newRemoteEnv(t *testing.T) *remoteEnv {
	v := storetest.StartVersitygw(t)
	e := &remoteEnv{v: v, store: v.Bucket(t, "lake"), dataDir: t.TempDir()}
	e.env = append(v.Env(), "SLUICE_STORE="+e.store)
	return e
}

// upload puts the hydropower CSV into data/GROUP/ with `sluice put`. An
// S3 store without notifications announces nothing by itself: the tests
// upload before sluice starts, and its reconcile at start finds the object.
func (e *remoteEnv) upload(t *testing.T, group string) string {
	key := "data/" + group + "/hydropower-consumption.csv"
	mustRun(t, e.env, "put", "--data-dir="+e.dataDir, "testdata/hydropower-consumption.csv", key)
	return key
}

// writeSparkOutput writes what a Spark application would commit under
// curated/GROUP/: one part and _SUCCESS last.
func (e *remoteEnv) writeSparkOutput(t *testing.T, group string) []string {
	var keys []string
	for _, k := range []string{"part-00000-0d2b-c000.snappy.parquet", "_SUCCESS"} {
		key := "curated/" + group + "/" + k
		if _, err := e.v.Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("lake"), Key: aws.String(key), Body: bytes.NewReader([]byte("x"))}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	return keys
}

// manifest reads the input manifest of run id from the bucket.
func (e *remoteEnv) manifest(t *testing.T, id string) []map[string]string {
	out, err := e.v.Client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String("lake"), Key: aws.String("_sluice/jobs/" + id + ".inputs.jsonl")})
	if err != nil {
		t.Fatalf("the input manifest of run %s: %v", id, err)
	}
	defer out.Body.Close()
	var lines []map[string]string
	sc := bufio.NewScanner(out.Body)
	for sc.Scan() {
		var m map[string]string
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("manifest line %q: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	return lines
}

// waitRun waits until the data dir's only run satisfies cond.
func waitRun(t *testing.T, d *daemon, what string, cond func(job.Run) bool) job.Run {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		rs := runs(t, d.dataDir)
		if len(rs) > 1 {
			t.Fatalf("%d runs, want one: %+v\n%s", len(rs), rs, d.logTail())
		}
		if len(rs) == 1 && cond(rs[0]) {
			return rs[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 60s for the run to be %s: %+v\n%s", what, rs, d.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkAdoptedRun checks the end of a run that a second process adopted
// after the first was killed -9: one run, SUCCEEDED, written under a newer
// claim, with the Spark output as its outputs and the manifest listing the
// uploaded object.
func (e *remoteEnv) checkAdoptedRun(t *testing.T, d *daemon, first job.Run, key string, outputs []string) {
	t.Helper()
	r := waitRun(t, d, "SUCCEEDED", func(r job.Run) bool { return !r.Terminated.IsZero() })
	outputs = slices.Sorted(slices.Values(outputs)) // as the store lists them
	if r.ID != first.ID || r.State != job.Succeeded || r.Remote != first.Remote || r.Epoch <= first.Epoch || r.Claimer == first.Claimer ||
		!r.Started.Equal(first.Started) || !slices.Equal(r.Outputs, outputs) {
		t.Fatalf("adopted run ended as %+v; want run %s SUCCEEDED by a new claimer with outputs %v (first: %+v)\n%s", r, first.ID, outputs, first, d.logTail())
	}
	if !strings.Contains(d.logTail(), "job run adopted") {
		t.Errorf("the second process's log does not say it adopted the run:\n%s", d.logTail())
	}
	m := e.manifest(t, r.ID)
	if len(m) != 1 || m[0]["key"] != key || m[0]["uri"] != "s3://lake/"+key || m[0]["etag"] != r.Inputs[0].ETag {
		t.Fatalf("manifest = %v; want the one input %s", m, key)
	}
}

func TestAnEMRServerlessRunSurvivesAKilledProcessAndIsAdoptedWithoutASecondJobRun(t *testing.T) {
	e := newRemoteEnv(t)
	fake := emrsfake.Start(t, &emrsfake.Options{Applications: []string{"00fapp"},
		Script: []emrsfake.Step{{State: emrsfake.Submitted}, {State: emrsfake.Running}}}) // stays RUNNING until the test ends it
	spec := fmt.Sprintf(`name: e2eemrs
jobs:
  hydropower:
    on: {prefix: data/, suffix: .csv}
    settle: 1s
    timeout: 30m
    runner: emr-serverless
    emr_serverless:
      region: us-east-1
      endpoint: %s
      application_id: 00fapp
      execution_role: "arn:aws:iam::123456789012:role/sluice-hydropower"
      log_uri: s3://lake/emr-logs/
      poll: 100ms
    spark:
      entry_point: jobs/hydropower_curate.py
      input: "data/{{.Group}}/"
      output: "curated/{{.Group}}/"
      args: [--mode, overwrite]
      conf: {spark.executor.memory: 2g}
`, fake.URL)
	key := e.upload(t, "2020-08-07_2PM")
	d1 := startRun(t, e.dataDir, spec, e.env...)
	first := waitRun(t, d1, "RUNNING on its job run", func(r job.Run) bool { return r.State == job.Running && r.Remote != "" })
	jrs := fake.JobRuns()
	if len(jrs) != 1 || first.Remote != "emr-serverless:00fapp/"+jrs[0].ID {
		t.Fatalf("job runs %+v, run %+v", jrs, first)
	}
	jr := jrs[0]
	wantArgs := []string{"--mode", "overwrite", "--run-id", first.ID, "--group", "2020-08-07_2PM",
		"--inputs", "s3://lake/_sluice/jobs/" + first.ID + ".inputs.jsonl", "--output", "s3://lake/curated/2020-08-07_2PM/"}
	if jr.ClientToken != first.ID || jr.EntryPoint != "s3://lake/jobs/hydropower_curate.py" || !slices.Equal(jr.Args, wantArgs) ||
		jr.SparkSubmitParameters != "--conf spark.executor.memory=2g" || jr.TimeoutMinutes != 30 || jr.Tags["sluice:run-id"] != first.ID {
		t.Fatalf("StartJobRun = %+v; want token = run ID, args %v", jr, wantArgs)
	}

	if err := d1.cmd.Process.Kill(); err != nil { // kill -9 mid-run
		t.Fatal(err)
	}
	d1.cmd.Wait()
	if jr, _ := fake.JobRun("00fapp", jr.ID); jr.State != emrsfake.Running || jr.Cancels != 0 {
		t.Fatalf("after the kill the job run is %s with %d cancels; want it RUNNING, untouched", jr.State, jr.Cancels)
	}
	d2 := startRun(t, e.dataDir, spec, e.env...)
	// The new process adopts the run and follows the same job run.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	gets := jr.Gets
	if err := fake.WaitFor(ctx, func() bool { j, _ := fake.JobRun("00fapp", jr.ID); return j.Gets > gets+1 }); err != nil {
		t.Fatalf("the second process does not follow the job run: %v\n%s", err, d2.logTail())
	}
	outputs := e.writeSparkOutput(t, "2020-08-07_2PM") // as Spark commits
	if err := fake.Set("00fapp", jr.ID, emrsfake.Step{State: emrsfake.Success, ExecutionSeconds: 95}); err != nil {
		t.Fatal(err)
	}
	e.checkAdoptedRun(t, d2, first, key, outputs)
	if n := len(fake.JobRuns()); n != 1 || fake.Count("StartJobRun") != 1 {
		t.Fatalf("%d job runs, %d StartJobRun calls; want exactly one of each", n, fake.Count("StartJobRun"))
	}
	if r := runs(t, e.dataDir)[0]; r.ComputeSeconds != 95 {
		t.Errorf("compute seconds %v, want the job run's 95", r.ComputeSeconds)
	}

	// A new input for the group runs the application again; one that
	// exits 0 without committing (no _SUCCESS of its own: the earlier
	// run's is removed before it is submitted) fails the run.
	d2.stop()
	mustRun(t, e.env, "put", "--data-dir="+e.dataDir, "testdata/hydropower-consumption.csv", "data/2020-08-07_2PM/more.csv")
	fake.ScriptNew(emrsfake.Step{State: emrsfake.Submitted}, emrsfake.Step{State: emrsfake.Running}, emrsfake.Step{State: emrsfake.Success})
	d3 := startRun(t, e.dataDir, spec, e.env...)
	deadline := time.Now().Add(60 * time.Second)
	for {
		rs := runs(t, e.dataDir)
		if len(rs) == 2 && !rs[1].Terminated.IsZero() {
			if r := rs[1]; r.State != job.Failed || !strings.Contains(r.Error, "left no _SUCCESS under s3://lake/curated/2020-08-07_2PM/") || len(r.Inputs) != 2 {
				t.Fatalf("a run whose application committed nothing = %+v", r)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second run did not end: %+v\n%s", rs, d3.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(fake.JobRuns()); n != 2 {
		t.Fatalf("%d job runs; want 2 (one per run)", n)
	}
}

func TestAnEMRRunSurvivesAKilledProcessAndIsAdoptedWithoutASecondCluster(t *testing.T) {
	e := newRemoteEnv(t)
	fake := emrfake.Start(t)
	fake.SetScript(emrfake.Script{Phases: emrfake.Succeeds().Phases, Manual: true, Runtime: 10 * time.Minute}) // advanced by the test
	spec := fmt.Sprintf(`name: e2eemr
jobs:
  hydropower:
    on: {prefix: data/, suffix: .csv}
    settle: 1s
    timeout: 30m
    runner: emr
    emr:
      region: us-east-1
      endpoint: %s
      release_label: emr-7.2.0
      service_role: EMR_DefaultRole_V2
      instance_profile: EMR_EC2_DefaultRole
      log_uri: s3://lake/emr-logs/
      instance_groups:
        - {role: MASTER, type: m5.xlarge, count: 1}
        - {role: CORE, type: m5.xlarge, count: 2}
      idle_timeout: 10m
      poll: 100ms
    spark:
      entry_point: jobs/hydropower_curate.py
      input: "data/{{.Group}}/"
      output: "curated/{{.Group}}/"
      args: [--mode, overwrite]
      conf: {spark.executor.memory: 2g}
`, fake.URL)
	key := e.upload(t, "2020-08-07_2PM")
	d1 := startRun(t, e.dataDir, spec, e.env...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := fake.WaitCalls(ctx, "RunJobFlow", 1); err != nil {
		t.Fatalf("%v (requests %+v)\n%s", err, fake.Requests(), d1.logTail())
	}
	id := fake.Clusters()[0]
	fake.Advance(id) // BOOTSTRAPPING
	fake.Advance(id) // RUNNING, the step RUNNING
	first := waitRun(t, d1, "RUNNING on its cluster", func(r job.Run) bool { return r.State == job.Running && r.Remote != "" })
	if first.Remote != "emr:"+id {
		t.Fatalf("run %+v, cluster %s", first, id)
	}
	in := fake.RunJobFlows()[0]
	wantArgs := []string{"spark-submit", "--deploy-mode", "cluster", "--conf", "spark.executor.memory=2g", "s3://lake/jobs/hydropower_curate.py",
		"--mode", "overwrite", "--run-id", first.ID, "--group", "2020-08-07_2PM",
		"--inputs", "s3://lake/_sluice/jobs/" + first.ID + ".inputs.jsonl", "--output", "s3://lake/curated/2020-08-07_2PM/"}
	if len(in.Steps) != 1 || !slices.Equal(in.Steps[0].HadoopJarStep.Args, wantArgs) || !strings.Contains(in.Name, first.ID) {
		t.Fatalf("RunJobFlow = %+v; want one step with args %v", in, wantArgs)
	}

	// `sluice jobs` shows the run's cluster while it runs.
	if out := mustRun(t, e.env, "jobs", "--data-dir="+e.dataDir).stdout; !strings.Contains(out, first.ID) || !strings.Contains(out, "RUNNING") || !strings.Contains(out, "emr:"+id) {
		t.Fatalf("sluice jobs while the run is on its cluster:\n%s", out)
	}
	t.Logf("sluice jobs:\n%s", mustRun(t, e.env, "jobs", "--data-dir="+e.dataDir).stdout)

	if err := d1.cmd.Process.Kill(); err != nil { // kill -9 mid-run
		t.Fatal(err)
	}
	d1.cmd.Wait()
	if c, s := fake.State(id); c != emrfake.Running || s != emrfake.StepRunning || fake.Calls("TerminateJobFlows") != 0 {
		t.Fatalf("after the kill cluster %s is %s (step %s), %d terminate calls; want it running, untouched", id, c, s, fake.Calls("TerminateJobFlows"))
	}
	var outputs []string
	fake.OnStepCompleted = func(emrfake.StepInfo) { outputs = e.writeSparkOutput(t, "2020-08-07_2PM") } // as Spark commits
	describes := fake.Calls("DescribeCluster")
	d2 := startRun(t, e.dataDir, spec, e.env...)
	if err := fake.WaitCalls(ctx, "DescribeCluster", describes+2); err != nil {
		t.Fatalf("the second process does not follow the cluster: %v\n%s", err, d2.logTail())
	}
	for fake.Advance(id) { // the step completes, the cluster terminates
	}
	e.checkAdoptedRun(t, d2, first, key, outputs)
	if n := len(fake.Clusters()); n != 1 || fake.Calls("RunJobFlow") != 1 {
		t.Fatalf("%d clusters, %d RunJobFlow calls; want exactly one of each", n, fake.Calls("RunJobFlow"))
	}
	if r := runs(t, e.dataDir)[0]; r.ComputeSeconds != 600*3 {
		t.Errorf("compute seconds %v, want 10 min × 3 instances", r.ComputeSeconds)
	}
	out := mustRun(t, e.env, "jobs", "--data-dir="+e.dataDir, first.ID).stdout
	for _, want := range []string{"state      SUCCEEDED", "compute    TERMINATED", "remote     emr:" + id, "compute s  1800.000", "outputs    2", "cluster " + id} {
		if !strings.Contains(out, want) {
			t.Errorf("sluice jobs %s does not show %q:\n%s", first.ID, want, out)
		}
	}
	t.Logf("sluice jobs %s:\n%s", first.ID, out)
}

func TestSluiceJobsCancelTerminatesTheRunsEMRClusterAndDeadLettersItsGroup(t *testing.T) {
	e := newRemoteEnv(t)
	fake := emrfake.Start(t)
	fake.SetScript(emrfake.Script{Phases: emrfake.Succeeds().Phases[:3], Manual: true}) // reaches the running step, and stays
	spec := fmt.Sprintf(`name: e2eemrcancel
jobs:
  hydropower:
    on: {prefix: data/, suffix: .csv}
    settle: 1s
    runner: emr
    emr: {region: us-east-1, endpoint: %s, release_label: emr-7.2.0, service_role: r, instance_profile: p, poll: 100ms}
    spark: {entry_point: jobs/hydropower_curate.py, input: "data/{{.Group}}/", output: "curated/{{.Group}}/"}
`, fake.URL)
	e.upload(t, "2020-08-07_2PM")
	env := append(e.env, "SLUICE_LEASE_TTL=3s") // heartbeats (which see cancel requests) every second
	d := startRun(t, e.dataDir, spec, env...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := fake.WaitCalls(ctx, "RunJobFlow", 1); err != nil {
		t.Fatalf("%v\n%s", err, d.logTail())
	}
	id := fake.Clusters()[0]
	fake.Advance(id)
	fake.Advance(id)
	r := waitRun(t, d, "RUNNING", func(r job.Run) bool { return r.State == job.Running })
	out := mustRun(t, env, "jobs", "--data-dir="+e.dataDir, "cancel", r.ID).stdout
	if !strings.Contains(out, "cancel requested for run "+r.ID) || !strings.Contains(out, "emr:"+id) {
		t.Fatalf("sluice jobs cancel said:\n%s", out)
	}
	if err := fake.WaitCalls(ctx, "TerminateJobFlows", 1); err != nil {
		t.Fatalf("the cancel did not terminate the cluster: %v\n%s", err, d.logTail())
	}
	for fake.Advance(id) {
	}
	r = waitRun(t, d, "FAILED", func(r job.Run) bool { return !r.Terminated.IsZero() })
	if r.State != job.Failed || !strings.Contains(r.Error, "cancel") {
		t.Fatalf("cancelled run = %+v", r)
	}
	if c, _ := fake.State(id); c != emrfake.Terminated && c != emrfake.TerminatedWithErrors {
		t.Fatalf("cluster %s is %s after the cancel", id, c)
	}
	if out := mustRun(t, env, "dlq", "ls", "--data-dir="+e.dataDir).stdout; !strings.Contains(out, "2020-08-07_2PM") || !strings.Contains(out, "cancelled by `sluice jobs cancel`") {
		t.Fatalf("dlq ls after the cancel:\n%s", out)
	}
	if res := sluice(t, env, "jobs", "--data-dir="+e.dataDir, "cancel", r.ID); res.code == 0 || !strings.Contains(res.stderr, "already ended (FAILED): nothing to cancel") {
		t.Fatalf("cancelling an ended run: exit %d, %s", res.code, res.stderr)
	}
}

// TestValidateRunsTheRunnersOwnChecks: what a runner would refuse at start
// (the service's own rules) `sluice validate` reports at its line.
func TestValidateRunsTheRunnersOwnChecks(t *testing.T) {
	spec := `name: t
jobs:
  a:
    on: {prefix: data/}
    runner: emr
    emr:
      release_label: "7.2.0"
      service_role: r
      instance_profile: p
      subnets: [sn-123]
      instance_groups:
        - {role: MASTER, type: m5.xlarge, count: 2}
    spark: {entry_point: a.py, input: "data/{{.Group}}/", output: "out/{{.Group}}/"}
  b:
    on: {prefix: other/}
    runner: kubernetes
    kubernetes:
      image: x
      namespace: Bad_NS
      resources: {requests: {cpu: "4"}, limits: {cpu: "2"}}
    command: [x]
  c:
    on: {prefix: third/}
    runner: emr-serverless
    emr_serverless: {application_id: APP, execution_role: "arn:aws:iam::123456789012:role/r"}
    spark: {entry_point: a.py, input: "third/{{.Group}}/", output: "o3/{{.Group}}/"}
`
	f := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(f, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	res := sluice(t, nil, "validate", "-f", f)
	for _, want := range []string{
		f + `:7:22: jobs.a.emr.release_label: "7.2.0" is not an EMR release label`,
		f + `:10:17: jobs.a.emr.subnets[0]: "sn-123" is not a subnet id`,
		f + `:12:50: jobs.a.emr.instance_groups[0].count: a MASTER group has 1 instance (3 for high availability), not 2`,
		f + `:19:18: jobs.b.kubernetes.namespace: "Bad_NS" is not a namespace name`,
		f + `:20:35: jobs.b.kubernetes.resources.requests.cpu: 4 is more than the limit 2`,
		f + `:25:38: jobs.c.emr_serverless.application_id: "APP" is not an EMR Serverless application id`,
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("sluice validate does not report %q:\n%s", want, res.stdout)
		}
	}
	if res.code != 1 {
		t.Errorf("exit %d, want 1", res.code)
	}
}
