package pipeline

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseAcceptsEveryRunnerWithItsSettings(t *testing.T) {
	src := `name: t
jobs:
  big:
    on: {prefix: data/}
    runner: kubernetes
    timeout: 2h
    kubernetes:
      namespace: data
      image: registry.example/sluice:1.4
      service_account: sluice-jobs
      resources:
        requests: {cpu: "2", memory: 8Gi}
        limits: {cpu: 4, memory: 16Gi, ephemeral-storage: 20Gi}
      node_selector: {pool: batch}
      tolerations: [{key: dedicated, operator: Equal, value: batch, effect: NoSchedule}]
      env_from_secrets: [sluice-aws, sluice-pg]
      env: {LOG_LEVEL: debug}
      ttl_after_finished: 30m
      image_pull_policy: IfNotPresent
    curate:
      input: "data/{{.Group}}/"
      columns: {a: string}
      output: "curated/{{.Group}}/"
  spark:
    on: {prefix: raw/}
    runner: emr
    emr:
      release_label: emr-7.2.0
      service_role: EMR_DefaultRole_V2
      instance_profile: EMR_EC2_DefaultRole
      instance_fleets:
        - {role: MASTER, types: [m5.xlarge], on_demand: 1}
        - {role: CORE, types: [m5.xlarge, m5a.xlarge], spot: 4}
      subnets: [subnet-0a, subnet-0b]
      bootstrap_actions: [{name: deps, path: s3://code/bootstrap.sh, args: [--pip, pyarrow]}]
      idle_timeout: 15m
    spark: {entry_point: s3://code/app.jar, class: com.acme.App, input: "raw/{{.Group}}/", output: "out/{{.Group}}/", conf: {spark.executor.memory: 4g}}
  serverless:
    on: {prefix: land/}
    runner: serverless
    emr_serverless: {application_id: 00fabc, execution_role: "arn:aws:iam::123456789012:role/sluice", spark_submit_parameters: "--conf spark.executor.cores=2"}
    spark: {entry_point: jobs/x.py, input: "land/{{.Group}}/", output: "cooked/{{.Group}}/"}
`
	// A misspelt runner is one error, without a cascade about its settings.
	_, err := Parse("p.yaml", []byte(src), noEnv)
	want := `p.yaml:40:13: jobs.serverless.runner: unknown runner "serverless": did you mean "emr-serverless"? (allowed: local, emr, emr-serverless, kubernetes)`
	if err == nil || err.Error() != want {
		t.Fatalf("Parse = %v; want only %q", err, want)
	}
	spec, err := Parse("p.yaml", []byte(strings.Replace(src, "runner: serverless", "runner: emr-serverless", 1)), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	k := spec.Jobs[0]
	if k.Runner != RunnerKubernetes || k.Kubernetes == nil || k.Timeout != 2*time.Hour || !reflect.DeepEqual(*k.Kubernetes, Kubernetes{
		Namespace: "data", Image: "registry.example/sluice:1.4", ServiceAccount: "sluice-jobs",
		Resources:    K8sResources{Requests: map[string]string{"cpu": "2", "memory": "8Gi"}, Limits: map[string]string{"cpu": "4", "memory": "16Gi", "ephemeral-storage": "20Gi"}},
		NodeSelector: map[string]string{"pool": "batch"}, Tolerations: []K8sToleration{{Key: "dedicated", Operator: "Equal", Value: "batch", Effect: "NoSchedule"}},
		EnvFromSecrets: []string{"sluice-aws", "sluice-pg"}, Env: map[string]string{"LOG_LEVEL": "debug"}, TTLAfterFinished: 30 * time.Minute, ImagePullPolicy: "IfNotPresent",
	}) {
		t.Errorf("kubernetes job = %+v %+v", k, k.Kubernetes)
	}
	e := spec.Jobs[1]
	if e.Runner != RunnerEMR || e.Spark == nil || e.Spark.Class != "com.acme.App" || e.Output != "out/{{.Group}}/" || !reflect.DeepEqual(e.EMR.InstanceFleets, []EMRInstanceFleet{
		{Role: "MASTER", Types: []string{"m5.xlarge"}, OnDemand: 1}, {Role: "CORE", Types: []string{"m5.xlarge", "m5a.xlarge"}, Spot: 4}}) ||
		!reflect.DeepEqual(e.EMR.BootstrapActions, []EMRBootstrap{{Name: "deps", Path: "s3://code/bootstrap.sh", Args: []string{"--pip", "pyarrow"}}}) ||
		e.EMR.IdleTimeout != 15*time.Minute || e.Spark.Conf["spark.executor.memory"] != "4g" {
		t.Errorf("emr job = %+v %+v %+v", e, e.EMR, e.Spark)
	}
	s := spec.Jobs[2]
	if s.Runner != RunnerEMRServerless || s.EMRServerless.ApplicationID != "00fabc" || s.EMRServerless.SparkSubmitParameters != "--conf spark.executor.cores=2" || s.Spark.Input != "land/{{.Group}}/" {
		t.Errorf("emr-serverless job = %+v %+v", s, s.EMRServerless)
	}
}
