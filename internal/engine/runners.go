package engine

import (
	"fmt"

	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/job/emr"
	"github.com/sluicehq/sluice/job/emrserverless"
	"github.com/sluicehq/sluice/job/kubernetes"
	"github.com/sluicehq/sluice/pipeline"
)

// The runners' own checks of their settings run when a spec is parsed
// (`sluice validate` included), so a spec that validates also starts.
func init() {
	pipeline.RegisterRunnerCheck(pipeline.RunnerEMR, func(j pipeline.Job) error { return emrConfig(j).Check() })
	pipeline.RegisterRunnerCheck(pipeline.RunnerEMRServerless, func(j pipeline.Job) error { return emrServerlessConfig(j).Check() })
	pipeline.RegisterRunnerCheck(pipeline.RunnerKubernetes, func(j pipeline.Job) error { return kubernetesConfig(j).Check() })
}

// remoteRunner builds job j's remote runner from its spec settings; each
// runner's Config.Check backs up what the spec parser checked.
func (e *Engine) remoteRunner(j pipeline.Job) (job.Remote, error) {
	switch j.Runner {
	case pipeline.RunnerEMR:
		cfg := emrConfig(j)
		if err := cfg.Check(); err != nil {
			return nil, err
		}
		r := emr.New(cfg, j.Name)
		r.PollInterval, r.Clock, r.Logger = j.EMR.Poll, e.now, e.log
		return r, nil
	case pipeline.RunnerEMRServerless:
		cfg := emrServerlessConfig(j)
		if err := cfg.Check(); err != nil {
			return nil, err
		}
		return &emrserverless.Runner{Config: cfg, PollInterval: j.EMRServerless.Poll, Retry: e.cfg.Retry, Clock: e.now, Logger: e.log}, nil
	case pipeline.RunnerKubernetes:
		cfg := kubernetesConfig(j)
		if err := cfg.Check(); err != nil {
			return nil, err
		}
		return &kubernetes.Runner{Config: cfg, PollInterval: j.Kubernetes.Poll, ImagePullGrace: j.Kubernetes.ImagePullGrace, Clock: e.now, Logger: e.log}, nil
	}
	return nil, fmt.Errorf("unknown runner %q", j.Runner)
}

func emrConfig(j pipeline.Job) emr.Config {
	s := j.EMR
	cfg := emr.Config{Region: s.Region, Endpoint: s.Endpoint, Name: s.Name, ReleaseLabel: s.ReleaseLabel, Applications: s.Applications,
		ServiceRole: s.ServiceRole, InstanceProfile: s.InstanceProfile, LogURI: s.LogURI, SubnetIDs: s.Subnets, IdleTimeout: s.IdleTimeout,
		Tags: s.Tags, SecurityConfiguration: s.SecurityConfiguration}
	for _, g := range s.InstanceGroups {
		cfg.InstanceGroups = append(cfg.InstanceGroups, emr.InstanceGroup{Role: g.Role, InstanceType: g.Type, Count: int32(g.Count), Market: g.Market})
	}
	for _, f := range s.InstanceFleets {
		cfg.InstanceFleets = append(cfg.InstanceFleets, emr.InstanceFleet{Role: f.Role, InstanceTypes: f.Types, TargetOnDemand: int32(f.OnDemand), TargetSpot: int32(f.Spot)})
	}
	for _, b := range s.BootstrapActions {
		cfg.BootstrapActions = append(cfg.BootstrapActions, emr.BootstrapAction{Name: b.Name, Path: b.Path, Args: b.Args})
	}
	return cfg
}

func emrServerlessConfig(j pipeline.Job) emrserverless.Config {
	s := j.EMRServerless
	return emrserverless.Config{Region: s.Region, Endpoint: s.Endpoint, ApplicationID: s.ApplicationID, ExecutionRole: s.ExecutionRole,
		Name: s.Name, LogURI: s.LogURI, SparkSubmitParameters: s.SparkSubmitParameters, Tags: s.Tags}
}

func kubernetesConfig(j pipeline.Job) kubernetes.Config {
	s := j.Kubernetes
	cfg := kubernetes.Config{Namespace: s.Namespace, Image: s.Image, Command: s.Command, ServiceAccount: s.ServiceAccount,
		Resources:    kubernetes.Resources{Requests: s.Resources.Requests, Limits: s.Resources.Limits},
		NodeSelector: s.NodeSelector, EnvFromSecrets: s.EnvFromSecrets, Env: s.Env, TTLAfterFinished: s.TTLAfterFinished,
		ImagePullPolicy: s.ImagePullPolicy, Kubeconfig: s.Kubeconfig, Context: s.Context}
	for _, t := range s.Tolerations {
		tol := kubernetes.Toleration{Key: t.Key, Operator: t.Operator, Value: t.Value, Effect: t.Effect}
		if t.Seconds > 0 {
			sec := int64(t.Seconds)
			tol.Seconds = &sec
		}
		cfg.Tolerations = append(cfg.Tolerations, tol)
	}
	return cfg
}
