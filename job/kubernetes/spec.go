package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/job"
)

// The container's environment, as `sluice job exec` reads it.
const (
	// EnvTask holds the job.Task as JSON; `sluice job exec` without a task
	// file reads it from here.
	EnvTask = job.EnvTask
	// EnvRunID holds the run ID.
	EnvRunID = "SLUICE_RUN_ID"
	// EnvResultFile names the file `sluice job exec` writes its result to
	// ({"outputs": [...], "error": "..."}); the runner points it at the
	// container's termination message (ResultFile), which Kubernetes keeps
	// in the pod's status after the container ends. That file is a bind
	// mount: write it in place (no temporary file and rename), and keep
	// it under 4 KiB (Kubernetes cuts it there), the error first.
	EnvResultFile = job.EnvResultFile
)

// ResultFile is the container's termination message path.
const ResultFile = "/dev/termination-log"

// ContainerName is the name of the one container of a job's pod.
const ContainerName = "job"

// Labels and annotations the runner puts on Jobs and their pods.
const (
	// LabelRunID carries the run ID (label-safe): how a run's Job is found
	// again.
	LabelRunID = "sluice.dev/run-id"
	// LabelJob carries the sluice job's name (label-safe).
	LabelJob = "sluice.dev/job"
	// LabelManagedBy is "sluice".
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// AnnotationGroup carries the run's group.
	AnnotationGroup = "sluice.dev/group"
	// AnnotationRunID carries the run ID as it is.
	AnnotationRunID = "sluice.dev/run-id"
)

// MaxTaskBytes bounds the task JSON passed in EnvTask. Linux refuses to
// start a process with one environment string over 128 KiB
// (MAX_ARG_STRLEN), so a larger task could never run.
const MaxTaskBytes = 128<<10 - len(EnvTask) - 64

// JobName returns the Job name of run ID runID: "sluice-" and the run ID
// lowercased; an ID that is not a DNS-1123 label or is too long is
// shortened and made unique with a hash of it.
func JobName(runID string) string {
	const prefix = "sluice-"
	const max = 63 - len(prefix)
	s := strings.ToLower(runID)
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, s)
	safe = strings.Trim(safe, "-")
	if safe == s && len(safe) <= max && safe != "" {
		return prefix + safe
	}
	sum := hashOf(runID)
	safe = strings.TrimRight(safe[:min(len(safe), max-len(sum)-1)], "-")
	if safe == "" {
		return prefix + sum
	}
	return prefix + safe + "-" + sum
}

// labelValue returns s if it is a valid label value, else a valid label
// value made from it and a hash of it.
func labelValue(s string) string {
	valid := len(s) <= 63
	for i, r := range s {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || i == len(s)-1 || r != '-' && r != '_' && r != '.') {
			valid = false
			break
		}
	}
	if valid {
		return s
	}
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '-'
	}, s)
	sum := hashOf(s)
	safe = strings.Trim(safe[:min(len(safe), 63-len(sum)-1)], "-_.")
	if safe == "" {
		return sum
	}
	return safe + "-" + sum
}

func hashOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:4])
}

// Labels returns the labels of run t's Job and pod.
func Labels(t job.Task) map[string]string {
	return map[string]string{
		LabelRunID:     labelValue(t.RunID),
		LabelJob:       labelValue(t.Rule),
		LabelManagedBy: "sluice",
	}
}

// runSelector selects the Jobs and pods of run runID.
func runSelector(runID string) string { return LabelRunID + "=" + labelValue(runID) }

// newJob returns the Job that runs t in namespace ns at time now.
func (c Config) newJob(t job.Task, ns string, now time.Time) (*batchv1.Job, error) {
	task, err := json.Marshal(t)
	if err != nil {
		return nil, fault.Permanent(fmt.Errorf("kubernetes runner: run %s: encode task: %w", t.RunID, err))
	}
	if len(task) > MaxTaskBytes {
		return nil, fault.Permanent(fmt.Errorf("kubernetes runner: run %s: its task is %d bytes of JSON (%d inputs), over the %d a pod's environment can pass: use fewer inputs per group",
			t.RunID, len(task), len(t.Inputs), MaxTaskBytes))
	}
	labels := Labels(t)
	annotations := map[string]string{AnnotationGroup: t.Group, AnnotationRunID: t.RunID}
	env := []corev1.EnvVar{
		{Name: EnvTask, Value: string(task)},
		{Name: EnvRunID, Value: t.RunID},
		{Name: EnvResultFile, Value: ResultFile},
	}
	for _, k := range sortedKeys(c.Env) {
		env = append(env, corev1.EnvVar{Name: k, Value: c.Env[k]})
	}
	var envFrom []corev1.EnvFromSource
	for _, s := range c.EnvFromSecrets {
		envFrom = append(envFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: s}}})
	}
	var tolerations []corev1.Toleration
	for _, tl := range c.Tolerations {
		tolerations = append(tolerations, corev1.Toleration{Key: tl.Key, Operator: corev1.TolerationOperator(tl.Operator),
			Value: tl.Value, Effect: corev1.TaintEffect(tl.Effect), TolerationSeconds: tl.Seconds})
	}
	command := c.Command
	if len(command) == 0 {
		command = DefaultCommand
	}
	ttl := c.TTLAfterFinished
	if ttl == 0 {
		ttl = DefaultTTLAfterFinished
	}
	var deadline *int64
	if !t.Deadline.IsZero() {
		secs := int64(math.Ceil(t.Deadline.Sub(now).Seconds()))
		deadline = ptr(max(secs, 1))
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: JobName(t.RunID), Namespace: ns, Labels: labels, Annotations: annotations},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr(int32(0)),
			ActiveDeadlineSeconds:   deadline,
			TTLSecondsAfterFinished: ptr(int32(ttl / time.Second)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
				Spec: corev1.PodSpec{
					RestartPolicy:      corev1.RestartPolicyNever,
					ServiceAccountName: c.ServiceAccount,
					NodeSelector:       c.NodeSelector,
					Tolerations:        tolerations,
					Containers: []corev1.Container{{
						Name:                     ContainerName,
						Image:                    c.Image,
						ImagePullPolicy:          corev1.PullPolicy(c.ImagePullPolicy),
						Command:                  command,
						Args:                     []string{"job", "exec"},
						Env:                      env,
						EnvFrom:                  envFrom,
						Resources:                corev1.ResourceRequirements{Requests: quantities(c.Resources.Requests), Limits: quantities(c.Resources.Limits)},
						TerminationMessagePath:   ResultFile,
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
					}},
				},
			},
		},
	}, nil
}

// quantities converts checked quantities (Config.Check).
func quantities(m map[string]string) corev1.ResourceList {
	if len(m) == 0 {
		return nil
	}
	l := corev1.ResourceList{}
	for k, v := range m {
		l[corev1.ResourceName(k)] = resource.MustParse(v)
	}
	return l
}

func ptr[T any](v T) *T { return &v }
