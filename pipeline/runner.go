package pipeline

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sluicehq/sluice/trigger"
)

// Runner settings. Each remote runner has its own block under the job,
// named after it (emr:, emr_serverless:, kubernetes:); a spark job has a
// spark: block. Parse checks what can be checked without the service:
// required settings, formats, and which job kinds a runner runs.

// EMR configures runner emr: one transient EMR cluster per run, which runs
// the job's Spark application as its only step and terminates.
type EMR struct {
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"`
	// Name prefixes the cluster name (default "sluice").
	Name                  string             `yaml:"name"`
	ReleaseLabel          string             `yaml:"release_label"`
	Applications          []string           `yaml:"applications"`
	ServiceRole           string             `yaml:"service_role"`
	InstanceProfile       string             `yaml:"instance_profile"`
	LogURI                string             `yaml:"log_uri"`
	InstanceGroups        []EMRInstanceGroup `yaml:"instance_groups"`
	InstanceFleets        []EMRInstanceFleet `yaml:"instance_fleets"`
	Subnets               []string           `yaml:"subnets"`
	BootstrapActions      []EMRBootstrap     `yaml:"bootstrap_actions"`
	IdleTimeout           time.Duration      `yaml:"idle_timeout"`
	SecurityConfiguration string             `yaml:"security_configuration"`
	Tags                  map[string]string  `yaml:"tags"`
	// Poll is how often the cluster is described (default 30s).
	Poll time.Duration `yaml:"poll"`
}

// EMRInstanceGroup is one instance group of an EMR cluster.
type EMRInstanceGroup struct {
	Role   string `yaml:"role"`
	Type   string `yaml:"type"`
	Count  int    `yaml:"count"`
	Market string `yaml:"market"`
}

// EMRInstanceFleet is one instance fleet of an EMR cluster.
type EMRInstanceFleet struct {
	Role     string   `yaml:"role"`
	Types    []string `yaml:"types"`
	OnDemand int      `yaml:"on_demand"`
	Spot     int      `yaml:"spot"`
}

// EMRBootstrap is a bootstrap action: a script in S3 and its arguments.
type EMRBootstrap struct {
	Name string   `yaml:"name"`
	Path string   `yaml:"path"`
	Args []string `yaml:"args"`
}

// EMRServerless configures runner emr-serverless: one job run per run on
// an existing EMR Serverless application.
type EMRServerless struct {
	Region                string            `yaml:"region"`
	Endpoint              string            `yaml:"endpoint"`
	ApplicationID         string            `yaml:"application_id"`
	ExecutionRole         string            `yaml:"execution_role"`
	Name                  string            `yaml:"name"`
	LogURI                string            `yaml:"log_uri"`
	SparkSubmitParameters string            `yaml:"spark_submit_parameters"`
	Tags                  map[string]string `yaml:"tags"`
	// Poll is how often the job run is read (default 15s).
	Poll time.Duration `yaml:"poll"`
}

// Kubernetes configures runner kubernetes: one batch/v1 Job per run,
// running the sluice image (`sluice job exec`).
type Kubernetes struct {
	Namespace        string            `yaml:"namespace"`
	Image            string            `yaml:"image"`
	Command          []string          `yaml:"command"`
	ServiceAccount   string            `yaml:"service_account"`
	Resources        K8sResources      `yaml:"resources"`
	NodeSelector     map[string]string `yaml:"node_selector"`
	Tolerations      []K8sToleration   `yaml:"tolerations"`
	EnvFromSecrets   []string          `yaml:"env_from_secrets"`
	Env              map[string]string `yaml:"env"`
	TTLAfterFinished time.Duration     `yaml:"ttl_after_finished"`
	ImagePullPolicy  string            `yaml:"image_pull_policy"`
	ImagePullGrace   time.Duration     `yaml:"image_pull_grace"`
	Kubeconfig       string            `yaml:"kubeconfig"`
	Context          string            `yaml:"context"`
	// Poll is how often the Job and its pods are read (default 5s).
	Poll time.Duration `yaml:"poll"`
}

// K8sResources are a pod's resource requests and limits ("cpu", "memory",
// "ephemeral-storage": Kubernetes quantities such as 500m, 4Gi).
type K8sResources struct {
	Requests map[string]string `yaml:"requests"`
	Limits   map[string]string `yaml:"limits"`
}

// K8sToleration is a pod toleration.
type K8sToleration struct {
	Key      string `yaml:"key"`
	Operator string `yaml:"operator"`
	Value    string `yaml:"value"`
	Effect   string `yaml:"effect"`
	Seconds  int    `yaml:"seconds"`
}

// Spark is a spark job: the user's PySpark script or JVM application,
// run on emr or emr-serverless. It receives, after Args: --run-id ID
// --group GROUP --inputs MANIFEST --output OUTPUT, where MANIFEST is an
// s3:// URI of a JSON Lines file listing the run's inputs ({"key": ...,
// "etag": ..., "uri": "s3://..."}) and OUTPUT the s3:// URI of the output
// folder. The application must write its output there the Spark way,
// with _SUCCESS last: the run's outputs are what is under OUTPUT when it
// succeeds, and a run that leaves no _SUCCESS fails.
type Spark struct {
	// EntryPoint is the script or JAR: a key in the store, or an s3:// URI.
	EntryPoint string `yaml:"entry_point"`
	// Class is the main class of a JAR.
	Class string `yaml:"class"`
	// Input and Output are folder templates over .Group, like curate's.
	Input  string            `yaml:"input"`
	Output string            `yaml:"output"`
	Args   []string          `yaml:"args"`
	Conf   map[string]string `yaml:"conf"`
}

// runnerChecks are the runners' own checks of their settings (the runner
// packages' Config.Check, registered by whoever links them in: the engine).
// They hold the service's rules (name formats, limits) that this package,
// which stays free of service SDKs, does not repeat; Parse reports their
// findings at the setting's line.
var runnerChecks = map[string]func(Job) error{}

// RegisterRunnerCheck registers check as runner's settings check: Parse
// calls it for each job on runner whose settings block has no other error.
// Its error lists one problem per line, each "field: problem" (a prefix
// like "emr runner: " or "emr runner settings: " is dropped), with fields named as the spec writes
// them (instance_groups[1].count).
func RegisterRunnerCheck(runner string, check func(Job) error) { runnerChecks[runner] = check }

// runnerCheck reports what runner's registered check finds in j's settings
// block m (at path), each at its setting's line.
func (p *parser) runnerCheck(j *Job, m *mapping, path string) {
	check := runnerChecks[j.Runner]
	if check == nil || m == nil {
		return
	}
	err := check(*j)
	if err == nil {
		return
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		line = runnerPrefix.ReplaceAllString(line, "")
		field, problem, ok := strings.Cut(line, ": ")
		if !ok || strings.ContainsAny(field, " ") {
			p.errorf(m.node, path, "%s", line)
			continue
		}
		p.errorf(p.settingNode(m, field), path+"."+field, "%s", problem)
	}
}

var runnerPrefix = regexp.MustCompile(`^[a-z-]+ runner(?: settings)?: `)

var fieldStep = regexp.MustCompile(`^([^.\[]+)(?:\[(\d+)\])?`)

// settingNode finds the node of field (like instance_groups[1].count) in
// the settings block m; the closest enclosing node when it is not written.
func (p *parser) settingNode(m *mapping, field string) *yaml.Node {
	node := m.node
	cur := m.node
	for field != "" {
		sm := fieldStep.FindStringSubmatch(field)
		if sm == nil {
			break
		}
		field = strings.TrimPrefix(field[len(sm[0]):], ".")
		cur = p.resolve(cur)
		if cur == nil || cur.Kind != yaml.MappingNode {
			break
		}
		var next *yaml.Node
		for i := 0; i+1 < len(cur.Content); i += 2 {
			if cur.Content[i].Value == sm[1] {
				node, next = cur.Content[i], cur.Content[i+1]
			}
		}
		if next == nil {
			break
		}
		node, cur = next, next
		if sm[2] != "" {
			seq := p.resolve(next)
			idx := 0
			fmt.Sscan(sm[2], &idx)
			if seq == nil || seq.Kind != yaml.SequenceNode || idx >= len(seq.Content) {
				break
			}
			node, cur = seq.Content[idx], seq.Content[idx]
		}
	}
	return node
}

// runnerKinds says which job kinds each runner runs.
var runnerKinds = map[string][]string{
	RunnerLocal:         {"curate", "command"},
	RunnerKubernetes:    {"curate", "command"},
	RunnerEMR:           {"spark"},
	RunnerEMRServerless: {"spark"},
}

// runnerBlocks is the settings key of each remote runner.
var runnerBlocks = map[string]string{RunnerEMR: "emr", RunnerEMRServerless: "emr_serverless", RunnerKubernetes: "kubernetes"}

// decodeInto reads mapping n into the struct v points to, by yaml tags:
// unknown keys, wrong shapes and bad values are reported at their line.
// Strings are env-expanded like every other value.
func (p *parser) decodeInto(n *yaml.Node, path, want string, v any) *mapping {
	rv := reflect.ValueOf(v).Elem()
	rt := rv.Type()
	var keys []string
	fields := map[string]int{}
	for i := range rt.NumField() {
		tag := rt.Field(i).Tag.Get("yaml")
		keys = append(keys, tag)
		fields[tag] = i
	}
	m := p.mapping(n, path, want, keys, nil)
	if m == nil {
		return nil
	}
	for _, e := range m.entries {
		i, ok := fields[e.name]
		if !ok {
			continue
		}
		p.decodeValue(e.val, path+"."+e.name, rv.Field(i))
	}
	return m
}

var durationType = reflect.TypeFor[time.Duration]()

func (p *parser) decodeValue(n *yaml.Node, path string, dst reflect.Value) {
	switch {
	case dst.Type() == durationType:
		if d, ok := p.duration(n, path, 0); ok {
			dst.SetInt(int64(d))
		}
	case dst.Kind() == reflect.String:
		if s, ok := p.scalar(n, path, true); ok {
			dst.SetString(s)
		}
	case dst.Kind() == reflect.Int:
		if i, ok := p.integer(n, path, 0, 1<<31-1); ok {
			dst.SetInt(int64(i))
		}
	case dst.Kind() == reflect.Slice && dst.Type().Elem().Kind() == reflect.String:
		items, _ := p.strList(n, path, "[a, b]")
		out := reflect.MakeSlice(dst.Type(), 0, len(items))
		for _, it := range items {
			out = reflect.Append(out, reflect.ValueOf(it.val))
		}
		dst.Set(out)
	case dst.Kind() == reflect.Slice && dst.Type().Elem().Kind() == reflect.Struct:
		r := p.resolve(n)
		if r == nil {
			return
		}
		if r.Kind != yaml.SequenceNode {
			p.errorf(n, path, "expected a list of mappings, found %s", kindName(r))
			return
		}
		out := reflect.MakeSlice(dst.Type(), len(r.Content), len(r.Content))
		for i, c := range r.Content {
			p.decodeInto(c, fmt.Sprintf("%s[%d]", path, i), "write one mapping per item", out.Index(i).Addr().Interface())
		}
		dst.Set(out)
	case dst.Kind() == reflect.Map:
		m := p.mapping(n, path, "write name: value pairs", nil, nil)
		if m == nil {
			return
		}
		out := reflect.MakeMap(dst.Type())
		for _, e := range m.entries {
			if s, ok := p.scalar(e.val, path+"."+e.name, true); ok {
				out.SetMapIndex(reflect.ValueOf(e.name), reflect.ValueOf(s))
			}
		}
		dst.Set(out)
	case dst.Kind() == reflect.Struct:
		p.decodeInto(n, path, "write a mapping", dst.Addr().Interface())
	default:
		panic("pipeline: decodeValue: unsupported field type " + dst.Type().String())
	}
}

// required reports each named field of block (path) that is empty.
func (p *parser) required(m *mapping, node *yaml.Node, path string, fields map[string]string) {
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if e := m.get(k); e == nil {
			p.errorf(node, path, "%s is required: %s", k, fields[k])
		}
	}
}

var (
	roleARN     = regexp.MustCompile(`^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$`)
	k8sQuantity = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$`)
	emrRoles    = []string{"MASTER", "CORE", "TASK"}
)

func (p *parser) checkS3(n *yaml.Node, path, v string) {
	if v != "" && !strings.HasPrefix(v, "s3://") {
		p.errorf(n, path, "%q is not an s3:// URI: write one, like s3://my-bucket/emr-logs/", v)
	}
}

// fieldNode returns the node of field in item i of list key of m (the
// item, or the list, when the field is not written), for messages.
func (p *parser) fieldNode(m *mapping, key string, i int, field string) *yaml.Node {
	f := m.get(key)
	if f == nil {
		return m.node
	}
	seq := p.resolve(f.val)
	if seq == nil || seq.Kind != yaml.SequenceNode || i >= len(seq.Content) {
		return f.val
	}
	it := p.resolve(seq.Content[i])
	if it == nil || it.Kind != yaml.MappingNode {
		return seq.Content[i]
	}
	for j := 0; j+1 < len(it.Content); j += 2 {
		if it.Content[j].Value == field {
			return it.Content[j+1]
		}
	}
	return it
}

func (p *parser) emr(e *entry, path string) *EMR {
	c := &EMR{}
	before := len(p.errs)
	m := p.decodeInto(e.val, path, "write emr: {release_label: emr-7.2.0, service_role: ..., instance_profile: ...}", c)
	if m == nil || len(p.errs) > before {
		return c // the checks below would repeat what is wrong
	}
	p.required(m, e.key, path, map[string]string{
		"release_label":    "the EMR release, like release_label: emr-7.2.0",
		"service_role":     "the EMR service role, like service_role: EMR_DefaultRole_V2 (see examples/hydropower-emr/iam)",
		"instance_profile": "the EC2 instance profile of the cluster's nodes, like instance_profile: EMR_EC2_DefaultRole",
	})
	if f := m.get("log_uri"); f != nil {
		p.checkS3(f.val, path+".log_uri", c.LogURI)
	}
	if len(c.InstanceGroups) > 0 && len(c.InstanceFleets) > 0 {
		p.errorf(m.get("instance_fleets").key, path+".instance_fleets", "a cluster has instance groups or instance fleets, not both: remove one")
	}
	masters, badRole := 0, false
	for i, g := range c.InstanceGroups {
		gp := fmt.Sprintf("%s.instance_groups[%d]", path, i)
		node := func(f string) *yaml.Node { return p.fieldNode(m, "instance_groups", i, f) }
		switch {
		case !contains(emrRoles, g.Role):
			p.errorf(node("role"), gp+".role", "role %q: write MASTER, CORE or TASK", g.Role)
			badRole = true
		case g.Type == "":
			p.errorf(node("type"), gp+".type", "type is required: the EC2 instance type, like type: m5.xlarge")
		case g.Count < 1:
			p.errorf(node("count"), gp+".count", "count is required and at least 1")
		case g.Market != "" && g.Market != "ON_DEMAND" && g.Market != "SPOT":
			p.errorf(node("market"), gp+".market", "market %q: write ON_DEMAND or SPOT", g.Market)
		}
		if g.Role == "MASTER" {
			masters++
		}
	}
	for i, f := range c.InstanceFleets {
		fp := fmt.Sprintf("%s.instance_fleets[%d]", path, i)
		node := func(f string) *yaml.Node { return p.fieldNode(m, "instance_fleets", i, f) }
		switch {
		case !contains(emrRoles, f.Role):
			p.errorf(node("role"), fp+".role", "role %q: write MASTER, CORE or TASK", f.Role)
			badRole = true
		case len(f.Types) == 0:
			p.errorf(node("types"), fp+".types", "types is required: the EC2 instance types, like types: [m5.xlarge, m5a.xlarge]")
		case f.OnDemand+f.Spot < 1:
			p.errorf(node(""), fp, "the fleet has no capacity: write on_demand: N and/or spot: N")
		}
		if f.Role == "MASTER" {
			masters++
		}
	}
	if (len(c.InstanceGroups) > 0 || len(c.InstanceFleets) > 0) && masters != 1 && !badRole {
		p.errorf(e.key, path, "the cluster needs exactly one MASTER instance group or fleet, found %d", masters)
	}
	for i, b := range c.BootstrapActions {
		bp := fmt.Sprintf("%s.bootstrap_actions[%d]", path, i)
		n := p.fieldNode(m, "bootstrap_actions", i, "path")
		if b.Path == "" {
			p.errorf(n, bp+".path", "path is required: the script's s3:// URI")
		} else if !strings.HasPrefix(b.Path, "file:/") {
			p.checkS3(n, bp+".path", b.Path) // file:/ is a script already on the nodes
		}
	}
	if f := m.get("idle_timeout"); f != nil && (c.IdleTimeout < time.Minute || c.IdleTimeout > 7*24*time.Hour) {
		p.errorf(f.val, path+".idle_timeout", "%s is out of range: EMR accepts 1m to 168h", c.IdleTimeout)
	}
	if len(p.errs) == before {
		p.runnerCheck(&Job{Runner: RunnerEMR, EMR: c}, m, path)
	}
	return c
}

func (p *parser) emrServerless(e *entry, path string) *EMRServerless {
	c := &EMRServerless{}
	before := len(p.errs)
	defer func() {
		if len(p.errs) == before {
			p.runnerCheck(&Job{Runner: RunnerEMRServerless, EMRServerless: c}, p.mapping(e.val, path, "", nil, nil), path)
		}
	}()
	m := p.decodeInto(e.val, path, "write emr_serverless: {application_id: ..., execution_role: arn:aws:iam::123456789012:role/...}", c)
	if m == nil {
		return c
	}
	p.required(m, e.key, path, map[string]string{
		"application_id": "the id of an existing EMR Serverless Spark application, like application_id: 00fkl3q2oa6ht609",
		"execution_role": "the job runs' IAM role ARN, like execution_role: arn:aws:iam::123456789012:role/sluice-emr-serverless",
	})
	if f := m.get("execution_role"); f != nil && c.ExecutionRole != "" && !roleARN.MatchString(c.ExecutionRole) {
		p.errorf(f.val, path+".execution_role", "%q is not an IAM role ARN: write arn:aws:iam::<account>:role/<name>", c.ExecutionRole)
	}
	if f := m.get("log_uri"); f != nil {
		p.checkS3(f.val, path+".log_uri", c.LogURI)
	}
	return c
}

func (p *parser) kubernetes(e *entry, path string) *Kubernetes {
	c := &Kubernetes{}
	before := len(p.errs)
	defer func() {
		if len(p.errs) == before {
			p.runnerCheck(&Job{Runner: RunnerKubernetes, Kubernetes: c}, p.mapping(e.val, path, "", nil, nil), path)
		}
	}()
	m := p.decodeInto(e.val, path, "write kubernetes: {image: registry.example/sluice:1.0, namespace: data}", c)
	if m == nil {
		return c
	}
	p.required(m, e.key, path, map[string]string{
		"image": "the sluice container image the pod runs (deploy/Dockerfile builds it), like image: registry.example/sluice:1.0",
	})
	for what, q := range map[string]map[string]string{"requests": c.Resources.Requests, "limits": c.Resources.Limits} {
		for name, v := range q {
			if !k8sQuantity.MatchString(v) {
				p.errorf(m.get("resources").val, path+".resources."+what+"."+name, "%q is not a Kubernetes quantity: write one like 500m, 2, 4Gi", v)
			}
			if name != "cpu" && name != "memory" && name != "ephemeral-storage" {
				p.errorf(m.get("resources").val, path+".resources."+what+"."+name, "unknown resource %q: write cpu, memory or ephemeral-storage", name)
			}
		}
	}
	for i, t := range c.Tolerations {
		tp := fmt.Sprintf("%s.tolerations[%d]", path, i)
		if t.Operator != "" && t.Operator != "Exists" && t.Operator != "Equal" {
			p.errorf(p.fieldNode(m, "tolerations", i, "operator"), tp+".operator", "operator %q: write Exists or Equal", t.Operator)
		}
		if t.Effect != "" && t.Effect != "NoSchedule" && t.Effect != "PreferNoSchedule" && t.Effect != "NoExecute" {
			p.errorf(p.fieldNode(m, "tolerations", i, "effect"), tp+".effect", "effect %q: write NoSchedule, PreferNoSchedule or NoExecute", t.Effect)
		}
	}
	if f := m.get("image_pull_policy"); f != nil && c.ImagePullPolicy != "Always" && c.ImagePullPolicy != "IfNotPresent" && c.ImagePullPolicy != "Never" {
		p.errorf(f.val, path+".image_pull_policy", "%q: write Always, IfNotPresent or Never", c.ImagePullPolicy)
	}
	return c
}

// spark reads a spark job; it returns the node of its output template when
// that is valid.
func (p *parser) spark(e *entry, path string) (*Spark, *yaml.Node) {
	c := &Spark{}
	m := p.decodeInto(e.val, path, `write spark: {entry_point: jobs/curate.py, input: "data/{{.Group}}/", output: "curated/{{.Group}}/"}`, c)
	if m == nil {
		return c, nil
	}
	p.required(m, e.key, path, map[string]string{
		"entry_point": "the PySpark script or JAR, a key in the store or an s3:// URI, like entry_point: jobs/hydropower.py",
		"input":       "the folder template the application reads, like input: \"data/{{.Group}}/\"",
		"output":      "the folder template the application writes, like output: \"curated/{{.Group}}/\"",
	})
	if f := m.get("entry_point"); f != nil && c.EntryPoint != "" {
		low := strings.ToLower(c.EntryPoint)
		if !strings.HasSuffix(low, ".py") && !strings.HasSuffix(low, ".jar") {
			p.errorf(f.val, path+".entry_point", "%q is neither a .py script nor a .jar: name the application file", c.EntryPoint)
		}
		if strings.HasSuffix(low, ".jar") && c.Class == "" {
			p.errorf(f.key, path+".class", "a JAR needs its main class: add class: com.example.Main")
		}
	}
	var inSample string
	if f := m.get("input"); f != nil {
		if v, ok := p.keyTemplate(f.val, path+".input", "input", true); ok {
			c.Input = v
			inSample, _ = trigger.Expand(v, sampleGroup)
		} else {
			c.Input = ""
		}
	}
	var outNode *yaml.Node
	if f := m.get("output"); f != nil {
		if v, ok := p.keyTemplate(f.val, path+".output", "output", true); ok {
			c.Output = v
			outSample, _ := trigger.Expand(v, sampleGroup)
			if inSample != "" && (strings.HasPrefix(outSample, inSample) || strings.HasPrefix(inSample, outSample)) {
				p.errorf(f.val, path+".output", "the output %q overlaps the input %q: write it outside the input, like %q", v, c.Input, "curated/{{.Group}}/")
			} else {
				outNode = f.val
			}
		} else {
			c.Output = ""
		}
	}
	return c, outNode
}
