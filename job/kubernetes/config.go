package kubernetes

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	apicorev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	batchv1 "k8s.io/client-go/kubernetes/typed/batch/v1"
	corev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"
)

// Defaults for Config.
const (
	// DefaultNamespace is where Jobs are created when Config.Namespace is
	// empty.
	DefaultNamespace = "default"
	// DefaultTTLAfterFinished is how long a finished Job (and its pod,
	// with its status and logs) stays for inspection before Kubernetes
	// deletes it, when Config.TTLAfterFinished is zero.
	DefaultTTLAfterFinished = time.Hour
)

// DefaultCommand is the container command when Config.Command is empty:
// the sluice binary of the official image.
var DefaultCommand = []string{"/sluice"}

// Config is what a spec says about the Kubernetes runner. Its zero value
// is invalid only for lacking Image; Check names every problem.
type Config struct {
	// Namespace the Jobs are created in (DefaultNamespace when empty).
	Namespace string
	// Image is the sluice container image (required); it must contain the
	// same sluice version, since the pod runs `sluice job exec`.
	Image string
	// Command starts sluice in the image (DefaultCommand when empty); the
	// runner adds the arguments "job", "exec".
	Command []string
	// ServiceAccount the pod runs as ("" means the namespace's default);
	// give it what the job needs (the store, the state), not more.
	ServiceAccount string
	// Resources are the container's requests and limits.
	Resources Resources
	// NodeSelector restricts the pod to nodes with these labels.
	NodeSelector map[string]string
	// Tolerations let the pod run on tainted nodes (a dedicated pool).
	Tolerations []Toleration
	// EnvFromSecrets are Secrets whose keys all become environment
	// variables of the container (credentials for the store and state).
	EnvFromSecrets []string
	// Env are plain environment variables of the container. The names
	// the runner sets itself (EnvTask, EnvRunID, EnvResultFile) are not
	// allowed.
	Env map[string]string
	// TTLAfterFinished is how long Kubernetes keeps a finished Job
	// (DefaultTTLAfterFinished when zero).
	TTLAfterFinished time.Duration
	// ImagePullPolicy is Always, IfNotPresent or Never ("" leaves
	// Kubernetes' default: Always for :latest, else IfNotPresent).
	ImagePullPolicy string
	// Kubeconfig is the kubeconfig file to use. When empty, sluice finds
	// the cluster as kubectl does: the files in $KUBECONFIG, else
	// ~/.kube/config, else the in-cluster configuration of the pod it
	// runs in (its service account). Inside a cluster, leave both empty.
	Kubeconfig string
	// Context is the kubeconfig context to use ("" means the current
	// one).
	Context string
}

// Resources are a container's resource requests and limits, by resource
// name ("cpu", "memory", "ephemeral-storage") as Kubernetes quantities
// ("500m", "4Gi").
type Resources struct {
	Requests map[string]string
	Limits   map[string]string
}

// Toleration lets the pod run on nodes with a matching taint; the fields
// are those of a Kubernetes toleration.
type Toleration struct {
	// Key is the taint key ("" with operator Exists matches every taint).
	Key string
	// Operator is Equal (the default when empty) or Exists.
	Operator string
	// Value must equal the taint's value (operator Equal only).
	Value string
	// Effect is NoSchedule, PreferNoSchedule or NoExecute ("" matches
	// every effect).
	Effect string
	// Seconds is how long the pod stays on a node after a NoExecute taint
	// appears (nil: forever); only with effect NoExecute.
	Seconds *int64
}

// resourceNames are the resources Config.Resources may name.
var resourceNames = []string{string(apicorev1.ResourceCPU), string(apicorev1.ResourceMemory), string(apicorev1.ResourceEphemeralStorage)}

// FieldError is one problem with a Config field, named as a spec writes it
// (image, resources.limits.memory, tolerations[0].operator).
type FieldError struct {
	Field   string
	Problem string
}

// Error returns "field: problem".
func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// Check reports every missing or invalid field of c, each as a
// *FieldError joined with errors.Join; nil when c is usable.
func (c Config) Check() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	if c.Namespace != "" {
		for _, p := range validation.IsDNS1123Label(c.Namespace) {
			bad("namespace", "%q is not a namespace name: %s", c.Namespace, p)
		}
	}
	switch {
	case strings.TrimSpace(c.Image) == "":
		bad("image", "required: the sluice container image to run jobs in (like ghcr.io/sluicehq/sluice:v1.2.3)")
	case strings.ContainsAny(c.Image, " \t\n"):
		bad("image", "%q contains white space", c.Image)
	}
	for i, a := range c.Command {
		if a == "" {
			bad(fmt.Sprintf("command[%d]", i), "empty argument")
		}
	}
	if c.ServiceAccount != "" {
		for _, p := range validation.IsDNS1123Subdomain(c.ServiceAccount) {
			bad("service_account", "%q is not a service account name: %s", c.ServiceAccount, p)
		}
	}
	errs = append(errs, c.Resources.check()...)
	for _, k := range sortedKeys(c.NodeSelector) {
		for _, p := range validation.IsQualifiedName(k) {
			bad("node_selector."+k, "not a label key: %s", p)
		}
		for _, p := range validation.IsValidLabelValue(c.NodeSelector[k]) {
			bad("node_selector."+k, "%q is not a label value: %s", c.NodeSelector[k], p)
		}
	}
	for i, t := range c.Tolerations {
		errs = append(errs, t.check(fmt.Sprintf("tolerations[%d]", i))...)
	}
	for i, s := range c.EnvFromSecrets {
		for _, p := range validation.IsDNS1123Subdomain(s) {
			bad(fmt.Sprintf("env_from_secrets[%d]", i), "%q is not a secret name: %s", s, p)
		}
	}
	for _, k := range sortedKeys(c.Env) {
		for _, p := range validation.IsEnvVarName(k) {
			bad("env."+k, "not an environment variable name: %s", p)
		}
		if k == EnvTask || k == EnvRunID || k == EnvResultFile {
			bad("env."+k, "set by the runner itself; choose another name")
		}
	}
	if c.TTLAfterFinished < 0 || c.TTLAfterFinished.Seconds() > math.MaxInt32 {
		bad("ttl_after_finished", "%s is out of range (0 for the default of %s, else up to %d seconds)", c.TTLAfterFinished, DefaultTTLAfterFinished, math.MaxInt32)
	}
	switch apicorev1.PullPolicy(c.ImagePullPolicy) {
	case "", apicorev1.PullAlways, apicorev1.PullIfNotPresent, apicorev1.PullNever:
	default:
		bad("image_pull_policy", "%q is not Always, IfNotPresent or Never", c.ImagePullPolicy)
	}
	return errors.Join(errs...)
}

func (r Resources) check() []error {
	var errs []error
	parsed := map[string]map[string]resource.Quantity{}
	for _, kind := range []struct {
		name string
		m    map[string]string
	}{{"requests", r.Requests}, {"limits", r.Limits}} {
		parsed[kind.name] = map[string]resource.Quantity{}
		for _, res := range sortedKeys(kind.m) {
			field := "resources." + kind.name + "." + res
			if !slices.Contains(resourceNames, res) {
				errs = append(errs, &FieldError{field, fmt.Sprintf("unknown resource; use %s", strings.Join(resourceNames, ", "))})
				continue
			}
			q, err := resource.ParseQuantity(kind.m[res])
			switch {
			case err != nil:
				errs = append(errs, &FieldError{field, fmt.Sprintf("%q is not a quantity (like 500m, 2, 4Gi): %v", kind.m[res], err)})
			case q.Sign() <= 0:
				errs = append(errs, &FieldError{field, fmt.Sprintf("%q must be positive", kind.m[res])})
			default:
				parsed[kind.name][res] = q
			}
		}
	}
	for _, res := range resourceNames {
		req, ok1 := parsed["requests"][res]
		lim, ok2 := parsed["limits"][res]
		if ok1 && ok2 && req.Cmp(lim) > 0 {
			errs = append(errs, &FieldError{"resources.requests." + res, fmt.Sprintf("%s is more than the limit %s", r.Requests[res], r.Limits[res])})
		}
	}
	return errs
}

func (t Toleration) check(field string) []error {
	var errs []error
	bad := func(f, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field + "." + f, Problem: fmt.Sprintf(format, args...)})
	}
	if t.Key != "" {
		for _, p := range validation.IsQualifiedName(t.Key) {
			bad("key", "%q is not a taint key: %s", t.Key, p)
		}
	}
	switch apicorev1.TolerationOperator(t.Operator) {
	case "", apicorev1.TolerationOpEqual:
		if t.Key == "" {
			bad("operator", "must be Exists when the key is empty")
		}
		for _, p := range validation.IsValidLabelValue(t.Value) {
			bad("value", "%q is not a taint value: %s", t.Value, p)
		}
	case apicorev1.TolerationOpExists:
		if t.Value != "" {
			bad("value", "must be empty with operator Exists")
		}
	default:
		bad("operator", "%q is not Equal or Exists", t.Operator)
	}
	switch apicorev1.TaintEffect(t.Effect) {
	case "", apicorev1.TaintEffectNoSchedule, apicorev1.TaintEffectPreferNoSchedule, apicorev1.TaintEffectNoExecute:
	default:
		bad("effect", "%q is not NoSchedule, PreferNoSchedule or NoExecute", t.Effect)
	}
	if t.Seconds != nil && apicorev1.TaintEffect(t.Effect) != apicorev1.TaintEffectNoExecute {
		bad("seconds", "only allowed with effect NoExecute")
	}
	return errs
}

func (c Config) namespace() string {
	if c.Namespace == "" {
		return DefaultNamespace
	}
	return c.Namespace
}

// NewClient connects to the cluster that kubeconfig and kubeContext name,
// found as described at Config.Kubeconfig.
func NewClient(kubeconfig, kubeContext string) (Client, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: kubeContext})
	cfg, err := cc.ClientConfig()
	if err != nil {
		where := "kubeconfig " + kubeconfig
		if kubeconfig == "" {
			where = "$KUBECONFIG, ~/.kube/config or the in-cluster configuration"
		}
		return nil, fmt.Errorf("find the Kubernetes cluster (from %s; set kubeconfig, or run sluice in the cluster): %w", where, err)
	}
	cfg.UserAgent = "sluice"
	// Every run polls twice per PollInterval; client-go's default of 5
	// requests a second would throttle a few dozen concurrent runs.
	cfg.QPS, cfg.Burst = 20, 50
	batch, err := batchv1.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the Kubernetes API at %s: %w", cfg.Host, err)
	}
	core, err := corev1.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to the Kubernetes API at %s: %w", cfg.Host, err)
	}
	return typedClient{batch, core}, nil
}

// Client is the part of the Kubernetes API the runner uses: batch/v1 Jobs
// and core/v1 Pods. kubernetes.Interface (and client-go's fake clientset)
// satisfies it; NewClient builds only these two typed clients, which keeps
// the clients of every other API group out of the sluice binary (the full
// clientset added about 55 MB to it).
type Client interface {
	BatchV1() batchv1.BatchV1Interface
	CoreV1() corev1.CoreV1Interface
}

type typedClient struct {
	batch batchv1.BatchV1Interface
	core  corev1.CoreV1Interface
}

func (c typedClient) BatchV1() batchv1.BatchV1Interface { return c.batch }
func (c typedClient) CoreV1() corev1.CoreV1Interface    { return c.core }

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
