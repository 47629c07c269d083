package kubernetes_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/fault"
	k8s "github.com/sluicehq/sluice/job/kubernetes"
)

func TestConfigCheckNamesEveryBadFieldAsTheSpecWritesIt(t *testing.T) {
	secs := int64(60)
	valid := func() k8s.Config { return k8s.Config{Image: "ghcr.io/sluicehq/sluice:v1"} }
	for _, tc := range []struct {
		name   string
		change func(c *k8s.Config)
		fields []string // nil: valid
	}{
		{"minimal", func(c *k8s.Config) {}, nil},
		{"everything", func(c *k8s.Config) {
			*c = k8s.Config{Namespace: "etl", Image: "sluice:v1", Command: []string{"/sluice"}, ServiceAccount: "sluice-jobs",
				Resources:      k8s.Resources{Requests: map[string]string{"cpu": "500m", "memory": "1Gi"}, Limits: map[string]string{"cpu": "2", "memory": "1Gi", "ephemeral-storage": "10Gi"}},
				NodeSelector:   map[string]string{"kubernetes.io/arch": "arm64"},
				Tolerations:    []k8s.Toleration{{Key: "batch", Operator: "Exists", Effect: "NoExecute", Seconds: &secs}, {Operator: "Exists"}, {Key: "pool", Value: "big"}},
				EnvFromSecrets: []string{"lake-credentials"}, Env: map[string]string{"TZ": "UTC"}, TTLAfterFinished: time.Hour,
				ImagePullPolicy: "Always", Kubeconfig: "/etc/kube/config", Context: "prod"}
		}, nil},
		{"no image", func(c *k8s.Config) { c.Image = " " }, []string{"image"}},
		{"bad namespace", func(c *k8s.Config) { c.Namespace = "ETL_jobs" }, []string{"namespace"}},
		{"empty command argument", func(c *k8s.Config) { c.Command = []string{"/sluice", ""} }, []string{"command[1]"}},
		{"bad service account", func(c *k8s.Config) { c.ServiceAccount = "Sluice Jobs" }, []string{"service_account"}},
		{"bad quantity", func(c *k8s.Config) { c.Resources.Limits = map[string]string{"memory": "12 gigs"} }, []string{"resources.limits.memory"}},
		{"unknown resource", func(c *k8s.Config) { c.Resources.Requests = map[string]string{"gpu": "1"} }, []string{"resources.requests.gpu"}},
		{"zero quantity", func(c *k8s.Config) { c.Resources.Requests = map[string]string{"cpu": "0"} }, []string{"resources.requests.cpu"}},
		{"request over limit", func(c *k8s.Config) {
			c.Resources = k8s.Resources{Requests: map[string]string{"memory": "8Gi"}, Limits: map[string]string{"memory": "4Gi"}}
		}, []string{"resources.requests.memory"}},
		{"bad node selector", func(c *k8s.Config) { c.NodeSelector = map[string]string{"pool": "big pool"} }, []string{"node_selector.pool"}},
		{"bad toleration operator", func(c *k8s.Config) { c.Tolerations = []k8s.Toleration{{Key: "a", Operator: "In"}} }, []string{"tolerations[0].operator"}},
		{"toleration without key must be Exists", func(c *k8s.Config) { c.Tolerations = []k8s.Toleration{{Operator: "Equal", Value: "x"}} }, []string{"tolerations[0].operator"}},
		{"toleration Exists with a value", func(c *k8s.Config) { c.Tolerations = []k8s.Toleration{{Key: "a", Operator: "Exists", Value: "x"}} }, []string{"tolerations[0].value"}},
		{"bad toleration effect and seconds", func(c *k8s.Config) {
			c.Tolerations = []k8s.Toleration{{Key: "a", Operator: "Exists"}, {Key: "b", Operator: "Exists", Effect: "NoRun", Seconds: &secs}}
		}, []string{"tolerations[1].effect", "tolerations[1].seconds"}},
		{"bad secret", func(c *k8s.Config) { c.EnvFromSecrets = []string{"ok", "Not_OK"} }, []string{"env_from_secrets[1]"}},
		{"bad env name", func(c *k8s.Config) { c.Env = map[string]string{"1X": "y"} }, []string{"env.1X"}},
		{"reserved env name", func(c *k8s.Config) { c.Env = map[string]string{"SLUICE_TASK": "{}"} }, []string{"env.SLUICE_TASK"}},
		{"negative ttl", func(c *k8s.Config) { c.TTLAfterFinished = -time.Second }, []string{"ttl_after_finished"}},
		{"bad pull policy", func(c *k8s.Config) { c.ImagePullPolicy = "Sometimes" }, []string{"image_pull_policy"}},
		{"several", func(c *k8s.Config) { c.Image = ""; c.ImagePullPolicy = "x" }, []string{"image", "image_pull_policy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.change(&c)
			err := c.Check()
			if tc.fields == nil {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check = nil, want errors for %v", tc.fields)
			}
			var got []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var fe *k8s.FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("%v is not a *FieldError", e)
				}
				got = append(got, fe.Field)
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Fatalf("Check named %v, want %v (%v)", got, tc.fields, err)
			}
		})
	}
}

func TestARunnerWithABadConfigFailsPermanentlyNamingTheField(t *testing.T) {
	c := newCluster(t)
	r := c.runner()
	r.Resources.Limits = map[string]string{"memory": "lots"}
	_, err := r.Run(t.Context(), task(runID))
	if err == nil || fault.IsTransient(err) || !strings.Contains(err.Error(), "resources.limits.memory") {
		t.Fatalf("Run = %v; want a permanent error naming resources.limits.memory", err)
	}
	if len(c.cs.Actions()) != 0 {
		t.Error("the runner called the API with a bad configuration")
	}
}

func TestNewClientUsesTheKubeconfigAndContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config")
	kubeconfig := `apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://a.example:6443"}
- name: b
  cluster: {server: "https://b.example:6443"}
users:
- name: u
  user: {token: "t"}
contexts:
- name: ctx-a
  context: {cluster: a, user: u}
- name: ctx-b
  context: {cluster: b, user: u}
current-context: ctx-a
`
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	for ctx, want := range map[string]string{"": "https://a.example:6443", "ctx-b": "https://b.example:6443"} {
		c, err := k8s.NewClient(path, ctx)
		if err != nil {
			t.Fatalf("NewClient(%q): %v", ctx, err)
		}
		if got := c.BatchV1().RESTClient().Get().URL().Host; "https://"+got != want {
			t.Errorf("context %q talks to %s, want %s", ctx, got, want)
		}
	}
	if _, err := k8s.NewClient(filepath.Join(t.TempDir(), "missing"), ""); err == nil || !strings.Contains(err.Error(), "kubeconfig") {
		t.Errorf("NewClient(missing file) = %v; want an error naming the kubeconfig", err)
	}
}
