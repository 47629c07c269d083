package deploy

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"

	"github.com/sluicehq/sluice/pipeline"
)

const (
	manifestDir = "kubernetes"
	specKey     = "pipeline.yaml"
)

// object is one decoded manifest document.
type object struct {
	file string
	obj  runtime.Object
}

// strictDecoder is the Kubernetes scheme's YAML serializer with strict
// decoding: unknown fields, fields in the wrong case and duplicate fields
// are errors, as the API server's strict field validation reports them.
func strictDecoder() runtime.Decoder {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, autoscalingv2.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme, kjson.SerializerOptions{Yaml: true, Strict: true})
}

// splitDocs splits a YAML stream at "---" lines.
func splitDocs(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(data), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// loadManifests decodes every document of every .yaml file under
// kubernetes/ into its typed object, failing on anything not strictly valid.
func loadManifests(t *testing.T) []object {
	t.Helper()
	dec := strictDecoder()
	var objs []object
	err := filepath.WalkDir(manifestDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml") {
			t.Errorf("%s: only .yaml manifests belong in %s", path, manifestDir)
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		docs := splitDocs(data)
		if len(docs) == 0 {
			t.Errorf("%s: no YAML document", path)
		}
		for i, doc := range docs {
			obj, gvk, err := dec.Decode(doc, nil, nil)
			if err != nil {
				t.Errorf("%s: document %d does not decode strictly: %v", path, i+1, err)
				continue
			}
			meta, ok := obj.(interface{ GetNamespace() string })
			if !ok {
				t.Errorf("%s: document %d: %s has no object metadata", path, i+1, gvk)
				continue
			}
			if ns := meta.GetNamespace(); ns != "" {
				t.Errorf("%s: %s sets namespace %q: the manifests are namespace-less (kubectl apply -n NS)", path, gvk.Kind, ns)
			}
			objs = append(objs, object{path, obj})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// set is the decoded manifests by kind and name.
type set struct {
	sa      map[string]*corev1.ServiceAccount
	cm      map[string]*corev1.ConfigMap
	secret  map[string]*corev1.Secret
	deploy  map[string]*appsv1.Deployment
	hpa     map[string]*autoscalingv2.HorizontalPodAutoscaler
	fileOf  map[runtime.Object]string
	ordered []object
}

func manifests(t *testing.T) *set {
	t.Helper()
	s := &set{sa: map[string]*corev1.ServiceAccount{}, cm: map[string]*corev1.ConfigMap{}, secret: map[string]*corev1.Secret{},
		deploy: map[string]*appsv1.Deployment{}, hpa: map[string]*autoscalingv2.HorizontalPodAutoscaler{}, fileOf: map[runtime.Object]string{}}
	for _, o := range loadManifests(t) {
		s.fileOf[o.obj] = o.file
		s.ordered = append(s.ordered, o)
		switch v := o.obj.(type) {
		case *corev1.ServiceAccount:
			s.sa[v.Name] = v
		case *corev1.ConfigMap:
			s.cm[v.Name] = v
		case *corev1.Secret:
			s.secret[v.Name] = v
		case *appsv1.Deployment:
			s.deploy[v.Name] = v
		case *autoscalingv2.HorizontalPodAutoscaler:
			s.hpa[v.Name] = v
		default:
			t.Errorf("%s: unexpected kind %T", o.file, o.obj)
		}
	}
	return s
}

func TestManifestsDecodeStrictly(t *testing.T) {
	s := manifests(t)
	var got []string
	for _, o := range s.ordered {
		kind := reflect.TypeOf(o.obj).Elem().Name()
		got = append(got, kind+"/"+o.obj.(interface{ GetName() string }).GetName())
	}
	sort.Strings(got)
	want := []string{"ConfigMap/sluice-pipeline", "Deployment/sluice-run", "Deployment/sluice-worker",
		"HorizontalPodAutoscaler/sluice-worker", "Secret/sluice-env", "ServiceAccount/sluice"}
	if !slices.Equal(got, want) {
		t.Errorf("manifests hold %v, want %v", got, want)
	}
	// The Secret template and the optional HPA stay out of the top folder,
	// which `kubectl apply -f deploy/kubernetes/` applies as it is.
	for name, sec := range s.secret {
		if f := s.fileOf[sec]; filepath.Dir(f) == manifestDir {
			t.Errorf("%s: Secret %s must not sit in %s/, where kubectl apply would overwrite a real one with placeholders", f, name, manifestDir)
		}
		for k, v := range sec.StringData {
			if !strings.Contains(v, "CHANGE_ME") {
				t.Errorf("Secret %s: %s holds no CHANGE_ME placeholder: templates carry no real password", name, k)
			}
		}
	}
	for name, h := range s.hpa {
		if f := s.fileOf[h]; filepath.Dir(f) == manifestDir {
			t.Errorf("%s: HorizontalPodAutoscaler %s is optional and belongs in %s/optional/", f, name, manifestDir)
		}
	}
}

// TestStrictDecodingRejectsTypos makes sure the decoder above is strict: a
// misspelt field and a field in the wrong case are errors.
func TestStrictDecodingRejectsTypos(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(manifestDir, "deployment-worker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := strictDecoder()
	if _, _, err := dec.Decode(data, nil, nil); err != nil {
		t.Fatalf("the original does not decode: %v", err)
	}
	for _, c := range [][2]string{
		{"terminationGracePeriodSeconds:", "terminationGracePeriodSecond:"},
		{"readOnlyRootFilesystem:", "readonlyRootFilesystem:"},
		{"  replicas: 3", "  replicas: 3\n  replicas: 4"},
	} {
		bad := strings.Replace(string(data), c[0], c[1], 1)
		if bad == string(data) {
			t.Fatalf("%q is not in deployment-worker.yaml", c[0])
		}
		if _, _, err := dec.Decode([]byte(bad), nil, nil); err == nil {
			t.Errorf("replacing %q with %q decodes without error: the decoder is not strict", c[0], c[1])
		}
	}
}

func TestDeployments(t *testing.T) {
	s := manifests(t)
	dockerUID := dockerfileUser(t)
	wantReplicas := map[string]int32{"sluice-run": 2, "sluice-worker": 3}
	wantCommand := map[string]string{"sluice-run": "run", "sluice-worker": "worker"}
	var images []string
	for name, want := range wantReplicas {
		d, ok := s.deploy[name]
		if !ok {
			t.Errorf("no Deployment %s", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			if d.Spec.Replicas == nil || *d.Spec.Replicas != want {
				t.Errorf("replicas %v, want %d", d.Spec.Replicas, want)
			}
			sel := d.Spec.Selector.MatchLabels
			if len(sel) == 0 {
				t.Error("no selector labels")
			}
			for k, v := range sel {
				if d.Spec.Template.Labels[k] != v {
					t.Errorf("selector %s=%s does not match the pod template's labels %v", k, v, d.Spec.Template.Labels)
				}
			}
			pod := d.Spec.Template.Spec
			if _, ok := s.sa[pod.ServiceAccountName]; !ok {
				t.Errorf("serviceAccountName %q: no such ServiceAccount in the manifests", pod.ServiceAccountName)
			}
			if g := pod.TerminationGracePeriodSeconds; g == nil || *g < 60 {
				t.Errorf("terminationGracePeriodSeconds %v: want at least 60 so a load can wind down", g)
			}
			psc := pod.SecurityContext
			if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
				t.Error("pod securityContext.runAsNonRoot is not true")
			}
			if psc == nil || psc.RunAsUser == nil || *psc.RunAsUser == 0 || *psc.RunAsUser != dockerUID {
				t.Errorf("pod securityContext.runAsUser %v: want the Dockerfile's USER %d", psc.RunAsUser, dockerUID)
			}
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(pod.Containers))
			}
			c := pod.Containers[0]
			images = append(images, c.Image)
			if len(c.Command) != 0 {
				t.Errorf("command %q overrides the image's ENTRYPOINT /sluice: set args only", c.Command)
			}
			if len(c.Args) == 0 || c.Args[0] != wantCommand[name] {
				t.Errorf("args %q: want %s -f ...", c.Args, wantCommand[name])
			}
			csc := c.SecurityContext
			switch {
			case csc == nil:
				t.Error("no container securityContext")
			default:
				if csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
					t.Error("readOnlyRootFilesystem is not true")
				}
				if csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
					t.Error("allowPrivilegeEscalation is not false")
				}
				if csc.Capabilities == nil || !slices.Contains(csc.Capabilities.Drop, "ALL") {
					t.Error("capabilities do not drop ALL")
				}
			}
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if q, ok := c.Resources.Requests[r]; !ok || q.IsZero() {
					t.Errorf("resources.requests.%s is not set", r)
				}
			}
			if q, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok || q.IsZero() {
				t.Error("resources.limits.memory is not set")
			}

			vols := map[string]corev1.Volume{}
			for _, v := range pod.Volumes {
				vols[v.Name] = v
			}
			mounts := map[string]corev1.VolumeMount{} // by path
			for _, m := range c.VolumeMounts {
				if _, ok := vols[m.Name]; !ok {
					t.Errorf("volumeMount %s: no such volume", m.Name)
				}
				mounts[m.MountPath] = m
			}
			env := map[string]string{}
			for _, e := range c.Env {
				env[e.Name] = e.Value
			}
			// The data dir and /tmp are writable emptyDirs (the root
			// filesystem is read-only).
			for _, p := range []string{env["SLUICE_DATA"], "/tmp"} {
				m, ok := mounts[p]
				if p == "" || !ok || vols[m.Name].EmptyDir == nil || m.ReadOnly {
					t.Errorf("%q (SLUICE_DATA, /tmp) is not a writable emptyDir mount", p)
				}
			}
			// -f names the ConfigMap's spec where it is mounted.
			f := flagValue(c.Args, "f")
			m, ok := mounts[filepath.Dir(f)]
			if !ok || vols[m.Name].ConfigMap == nil || filepath.Base(f) != specKey {
				t.Errorf("-f %q is not %s in a mounted ConfigMap", f, specKey)
			} else if cm, ok := s.cm[vols[m.Name].ConfigMap.Name]; !ok || cm.Data[specKey] == "" {
				t.Errorf("volume %s: ConfigMap %q with key %s is not in the manifests", m.Name, vols[m.Name].ConfigMap.Name, specKey)
			}
			for _, ef := range c.EnvFrom {
				if ef.SecretRef != nil {
					if _, ok := s.secret[ef.SecretRef.Name]; !ok {
						t.Errorf("envFrom secret %q is not in the manifests (templates/)", ef.SecretRef.Name)
					}
				}
			}
		})
	}
	if len(images) == 2 && images[0] != images[1] {
		t.Errorf("the Deployments run different images: %q", images)
	}
	for name, h := range s.hpa {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.Name != "sluice-worker" || ref.APIVersion != "apps/v1" {
			t.Errorf("HorizontalPodAutoscaler %s scales %s %s/%s, want apps/v1 Deployment sluice-worker", name, ref.APIVersion, ref.Kind, ref.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 || h.Spec.MaxReplicas < *h.Spec.MinReplicas {
			t.Errorf("HorizontalPodAutoscaler %s: replicas %v..%d", name, h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
	}
}

// flagValue returns the value of flag -name or --name in args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		for _, p := range []string{"-" + name, "--" + name} {
			if a == p && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v
			}
		}
	}
	return ""
}

// TestDeploymentArgsAreAcceptedByTheCLI runs the real binary, built by the
// Dockerfile's command, with each Deployment's arguments. The spec file is
// pointed at a path that does not exist, so a command that accepts its
// flags gets as far as reading the spec and fails there (exit 1, "read
// spec"), while bad flags exit 2 with the usage.
func TestDeploymentArgsAreAcceptedByTheCLI(t *testing.T) {
	bin := sluiceBinary(t)
	s := manifests(t)
	for _, name := range []string{"sluice-run", "sluice-worker"} {
		d, ok := s.deploy[name]
		if !ok || len(d.Spec.Template.Spec.Containers) == 0 {
			t.Errorf("no Deployment %s", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			args := slices.Clone(d.Spec.Template.Spec.Containers[0].Args)
			missing := filepath.Join(t.TempDir(), "no-such-dir", specKey)
			replaced := false
			for i := range args {
				if (args[i] == "-f" || args[i] == "--f") && i+1 < len(args) {
					args[i+1], replaced = missing, true
				}
			}
			if !replaced {
				t.Fatalf("args %q have no -f FILE", args)
			}
			code, stderr := runSluice(t, bin, args...)
			if code != 1 || !strings.Contains(stderr, "read spec") || !strings.Contains(stderr, missing) {
				t.Errorf("sluice %s: exit %d, stderr:\n%s\nwant exit 1 reading the missing spec: the CLI does not accept these arguments", strings.Join(args, " "), code, stderr)
			}
		})
	}
}

func runSluice(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "SLUICE_DATA=" + t.TempDir()}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stderr.String()
	}
	t.Fatalf("run %s: %v", bin, err)
	return 0, ""
}

// TestConfigMapSpecParses parses the spec in the ConfigMap as the pods see
// it: the file alone, then with each SLUICE_* override the pods set.
func TestConfigMapSpecParses(t *testing.T) {
	s := manifests(t)
	cm, ok := s.cm["sluice-pipeline"]
	if !ok {
		t.Fatal("no ConfigMap sluice-pipeline")
	}
	spec := []byte(cm.Data[specKey])
	noEnv := func(string) string { return "" }
	if _, err := pipeline.Parse("configmap.yaml:"+specKey, spec, noEnv); err != nil {
		t.Fatalf("the ConfigMap's spec does not parse:\n%v", err)
	}

	// Every variable the pods set, from both Deployments and the Secret.
	env := map[string]string{}
	for _, d := range s.deploy {
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if old, ok := env[e.Name]; ok && old != e.Value {
					t.Errorf("%s is %q in one Deployment and %q in another", e.Name, old, e.Value)
				}
				env[e.Name] = e.Value
			}
		}
	}
	for _, sec := range s.secret {
		for k, v := range sec.StringData {
			env[k] = v
		}
	}
	fields := map[string]string{"SLUICE_STORE": "Store", "SLUICE_QUEUE": "Queue", "SLUICE_WAREHOUSE": "Warehouse", "SLUICE_STATE": "State"}
	for _, name := range []string{"SLUICE_WAREHOUSE", "SLUICE_QUEUE", "SLUICE_STATE"} {
		if env[name] == "" {
			t.Errorf("the pods do not set %s", name)
		}
	}
	for name, val := range env {
		field, ok := fields[name]
		if !ok {
			continue
		}
		t.Run(name, func(t *testing.T) {
			got, err := pipeline.Parse("configmap.yaml:"+specKey, spec, func(k string) string {
				if k == name {
					return val
				}
				return ""
			})
			works := err == nil
			if works {
				f := reflect.ValueOf(got).Elem().FieldByName(field)
				works = f.IsValid() && f.Kind() == reflect.String && f.String() == val
			}
			if err != nil {
				t.Fatalf("with %s=%q the spec does not parse:\n%v", name, val, err)
			}
			if !works {
				t.Errorf("with %s=%q, Spec.%s is not that value", name, val, field)
			}
		})
	}
}

// TestAWSExample keeps examples/aws/pipeline.yaml, the README's copy of it
// and the ConfigMap's spec in step, and checks that the example parses.
func TestAWSExample(t *testing.T) {
	example, err := os.ReadFile("../examples/aws/pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	body := strings.TrimSpace(stripComments(string(example)))

	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stripComments(string(readme)), body) {
		t.Error("README.md does not contain examples/aws/pipeline.yaml (comments aside): copy it into the section \"Running distributed on AWS\"")
	}

	_, err = pipeline.Parse("examples/aws/pipeline.yaml", example, func(string) string { return "" })
	var list pipeline.ErrorList
	if err != nil && !errors.As(err, &list) {
		t.Fatalf("parse: %v", err)
	}
	for _, e := range list {
		t.Errorf("examples/aws/pipeline.yaml: %v", e)
	}

	// The ConfigMap's spec is the example less the keys the pods set
	// through the environment.
	var ex, cmSpec map[string]any
	if err := yaml.Unmarshal(example, &ex); err != nil {
		t.Fatal(err)
	}
	cm := manifests(t).cm["sluice-pipeline"]
	if cm == nil {
		t.Fatal("no ConfigMap sluice-pipeline")
	}
	if err := yaml.Unmarshal([]byte(cm.Data[specKey]), &cmSpec); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"queue", "warehouse", "state"} {
		delete(ex, k)
		if _, ok := cmSpec[k]; ok {
			t.Errorf("the ConfigMap's spec sets %s: the pods set it through the environment", k)
		}
	}
	if !reflect.DeepEqual(ex, cmSpec) {
		t.Errorf("the ConfigMap's spec differs from examples/aws/pipeline.yaml beyond queue, warehouse and state:\nexample:   %v\nconfigmap: %v", ex, cmSpec)
	}
}

// dockerfile returns deploy/Dockerfile's instructions, continuation lines
// joined, comments dropped.
func dockerfile(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	var cur strings.Builder
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if s, ok := strings.CutSuffix(l, `\`); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(l)
		out = append(out, cur.String())
		cur.Reset()
	}
	return out
}

// dockerfileUser returns the uid of the final stage's USER, which must not
// be root.
func dockerfileUser(t *testing.T) int64 {
	t.Helper()
	user := ""
	for _, in := range dockerfile(t) {
		if strings.HasPrefix(in, "FROM ") {
			user = ""
		}
		if u, ok := strings.CutPrefix(in, "USER "); ok {
			user = u
		}
	}
	uid, err := strconv.ParseInt(strings.Split(user, ":")[0], 10, 64)
	if err != nil || uid == 0 {
		t.Fatalf("the Dockerfile's final stage USER is %q: want a numeric non-root uid (runAsNonRoot needs a number)", user)
	}
	return uid
}

func TestDockerfile(t *testing.T) {
	ins := dockerfile(t)
	var froms []string
	var final []string
	for _, in := range ins {
		if strings.HasPrefix(in, "FROM ") {
			froms = append(froms, in)
			final = nil
		}
		final = append(final, in)
	}
	if len(froms) < 2 || !strings.HasPrefix(froms[0], "FROM golang:1.26 ") {
		t.Errorf("stages %q: want a golang:1.26 build stage and a final stage", froms)
	}
	if last := froms[len(froms)-1]; last != "FROM scratch" {
		t.Errorf("final stage %q: want FROM scratch", last)
	}
	want := []string{`ENTRYPOINT ["/sluice"]`, `VOLUME ["/var/lib/sluice"]`, "COPY --from=build /out/sluice /sluice",
		"COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt"}
	for _, w := range want {
		if !slices.Contains(final, w) {
			t.Errorf("the final stage lacks %s", w)
		}
	}
	if !slices.ContainsFunc(final, func(s string) bool { return strings.Contains(s, "SLUICE_DATA=/var/lib/sluice") }) {
		t.Error("the final stage does not set SLUICE_DATA=/var/lib/sluice, the volume")
	}
	dockerfileUser(t)
	bin := sluiceBinary(t) // the Dockerfile's own go build line
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("the built sluice is not an ELF file: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary has a %v program header: it is not statically linked", p.Type)
		}
	}
	if s := f.Section(".dynamic"); s != nil {
		t.Error("the binary has a .dynamic section: it is not statically linked")
	}
	if s := f.Section(".interp"); s != nil {
		t.Error("the binary has an .interp section: it is not statically linked")
	}
	if s := f.Section(".symtab"); s != nil {
		t.Error("the binary has a symbol table: -ldflags='-s -w' did not apply")
	}
	if code, stderr := runSluice(t, bin, "--help"); code != 0 {
		t.Errorf("sluice --help: exit %d: %s", code, stderr)
	}
}

var build struct {
	once sync.Once
	bin  string
	err  error
}

// sluiceBinary builds cmd/sluice with the Dockerfile's own `go build` line
// (its -o redirected into a temporary directory) and returns the binary.
func sluiceBinary(t *testing.T) string {
	t.Helper()
	ins := dockerfile(t)
	build.once.Do(func() {
		var line string
		for _, in := range ins {
			if r, ok := strings.CutPrefix(in, "RUN "); ok && strings.Contains(r, "go build") {
				line = r
			}
		}
		for _, w := range []string{"CGO_ENABLED=0 go build ", " -trimpath ", ` -ldflags='-s -w' `, " -o /out/sluice ", " ./cmd/sluice"} {
			if !strings.Contains(" "+line+" ", w) {
				build.err = errors.New("the Dockerfile's go build line " + strconv.Quote(line) + " lacks " + strconv.Quote(strings.TrimSpace(w)))
				return
			}
		}
		dir, err := os.MkdirTemp("", "sluice-deploy-")
		if err != nil {
			build.err = err
			return
		}
		build.bin = filepath.Join(dir, "sluice")
		// A cold -trimpath build compiles every dependency again (client-go's
		// API types are most of it), beside the race-detector builds of the
		// other packages: about 7 minutes on 2 cores. The bound is for a
		// hung toolchain, not a slow one.
		ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "sh", "-c", strings.Replace(line, "/out/sluice", build.bin, 1))
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = errors.New("the Dockerfile's go build line failed: " + err.Error() + "\n" + string(out))
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.bin != "" {
		os.RemoveAll(filepath.Dir(build.bin))
	}
	os.Exit(code)
}
