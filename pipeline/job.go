package pipeline

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sluicehq/sluice/schema"

	"gopkg.in/yaml.v3"

	"github.com/sluicehq/sluice/curate"
	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/trigger"
)

var (
	jobKeys    = []string{"on", "group", "settle", "runner", "timeout", "curate", "command", "pass_env", "spark", "output", "emr", "emr_serverless", "kubernetes"}
	curateKeys = []string{"input", "output", "format", "delimiter", "rename", "columns", "filter", "mode", "max_rows_per_file", "limits"}

	runners       = []string{RunnerLocal, RunnerEMR, RunnerEMRServerless, RunnerKubernetes}
	runnerAliases = map[string]string{"k8s": RunnerKubernetes, "kube": RunnerKubernetes, "process": RunnerLocal, "subprocess": RunnerLocal,
		"emr_serverless": RunnerEMRServerless, "emrserverless": RunnerEMRServerless, "serverless": RunnerEMRServerless, "emr-on-ec2": RunnerEMR}
	curateFormats = []string{CurateCSV}
	curateModes   = []string{curate.ModeOverwrite, curate.ModeErrorIfExists}
	modeAliases   = map[string]string{
		"error_if_exists": curate.ModeErrorIfExists, "errorifexists": curate.ModeErrorIfExists, "error": curate.ModeErrorIfExists, "fail": curate.ModeErrorIfExists,
		"replace": curate.ModeOverwrite, "overwrite_all": curate.ModeOverwrite,
	}
	// kindNames are the column types a curated (Parquet) column may take:
	// schema's types but json (schema.Parse also takes the older curate
	// spellings string, int32, ...).
	kindNames   = []string{"integer", "bigint", "real", "double", "text", "boolean", "date", "timestamp"}
	kindAliases = map[string]string{
		"str": "text", "varchar": "text", "char": "text",
		"int": "integer", "int4": "integer", "smallint": "integer",
		"long": "bigint", "int8": "bigint",
		"float": "real", "float4": "real",
		"float8": "double", "number": "double", "numeric": "double", "decimal": "double",
		"datetime": "timestamp", "timestamptz": "timestamp", "time": "timestamp",
	}
)

// sampleGroup is the group job templates are tried with.
const sampleGroup = "2020-08-07_2PM"

// maxTemplateLen bounds group, input and output templates (keys are at
// most maxKeyLen bytes; a longer template is a mistake or an attack).
const maxTemplateLen = 4096

// jobInfo is what the re-trigger check needs beyond the Job.
type jobInfo struct {
	// outNode and outPath locate the output template (nil without one).
	outNode *yaml.Node
	outPath string
	// ok is false when the job had errors; such jobs are left out of the
	// re-trigger check.
	ok bool
}

func (p *parser) jobs(n *yaml.Node) ([]Job, []jobInfo) {
	m := p.mapping(n, "jobs", "write one job per name, like jobs: {hydropower: {on: {prefix: data/}, curate: {...}}}", nil, nil)
	if m == nil {
		return nil, nil
	}
	var out []Job
	var infos []jobInfo
	for _, e := range m.entries {
		before := len(p.errs)
		j, info := p.job(e)
		info.ok = len(p.errs) == before
		out = append(out, j)
		infos = append(infos, info)
	}
	return out, infos
}

func (p *parser) job(e entry) (Job, jobInfo) {
	path := "jobs." + e.name
	p.checkPartName(e, path, "job")
	j := Job{
		Name: e.name, On: On{Events: []string{DefaultEvent}, KeyEncoding: event.KeyURL},
		Group: trigger.DefaultGroup, Runner: RunnerLocal, Timeout: DefaultJobTimeout, Pos: posOf(e.key),
	}
	var info jobInfo
	hints := map[string]string{}
	for _, k := range onKeys {
		hints[k] = fmt.Sprintf("%s belongs under on: write on: {%s: ...}", k, k)
	}
	for _, k := range []string{"input", "columns", "rename", "filter", "mode", "format", "delimiter"} {
		hints[k] = fmt.Sprintf("%s belongs under curate: write curate: {%s: ...}", k, k)
	}
	for _, k := range []string{"cmd", "run", "exec", "args", "argv", "program"} {
		hints[k] = "did you mean \"command\"? (the program and its arguments as a list, like command: [python3, clean.py])"
	}
	for _, k := range []string{"type", "kind"} {
		hints[k] = "a job's kind is the key it has: write curate: {...}, command: [...] or spark: {...}"
	}
	hints["emr-serverless"] = "write emr_serverless: {...} (with an underscore) for the settings of runner emr-serverless"
	hints["k8s"] = "write kubernetes: {...} for the settings of runner kubernetes"
	for _, k := range []string{"every", "schedule", "cron"} {
		hints[k] = "jobs start on events, not on a schedule: select the events with on: {prefix: ..., suffix: ...}"
	}
	for _, k := range []string{"debounce", "window", "settle_time", "quiet"} {
		hints[k] = "did you mean \"settle\"? (how long a group must be quiet before its run starts, like settle: 5s)"
	}
	hints["event"] = "event filters belong under on: write on: {events: [\"s3:ObjectCreated:*\"]}"
	hints["group_by"] = "did you mean \"group\"? (a template over the key, like group: \"{{.Key.Parent}}\")"
	m := p.mapping(e.val, path, "write on:, group: and curate: {...} or command: [...] under the job name", jobKeys, hints)
	if m == nil {
		return j, info
	}
	if f := m.get("on"); f != nil {
		j.On = p.on(f.val, path+".on")
	}
	if f := m.get("group"); f != nil {
		if v, ok := p.scalar(f.val, path+".group", true); ok {
			j.Group = v
			p.checkGroup(f.val, path+".group", e.name, v)
		}
	}
	if f := m.get("settle"); f != nil {
		if d, ok := p.duration(f.val, path+".settle", 0); ok {
			if d > MaxSettle {
				p.errorf(f.val, path+".settle", "%s is too long: write at most 1h (settle is how long a group must be quiet before its run starts; 0 or no settle means the default, 5s)", d)
			}
			j.Settle = d
		}
	}
	runnerNode := e.key
	if f := m.get("runner"); f != nil {
		j.Runner = p.runner(f.val, path+".runner")
		runnerNode = f.val
	}
	if f := m.get("timeout"); f != nil {
		j.Timeout, _ = p.duration(f.val, path+".timeout", time.Second)
	}
	cur, cmd, spk, out := m.get("curate"), m.get("command"), m.get("spark"), m.get("output")
	kinds := 0
	for _, k := range []*entry{cur, cmd, spk} {
		if k != nil {
			kinds++
		}
	}
	switch {
	case kinds == 0:
		p.errorf(e.key, path, "job %s has neither curate, command nor spark: add curate: {input: \"data/{{.Group}}/\", columns: {...}, output: \"curated/{{.Group}}/\"}, command: [program, args...] or spark: {entry_point: ..., input: ..., output: ...}", e.name)
	case kinds > 1:
		p.errorf(e.key, path, "job %s has more than one of curate, command and spark, but a job runs one of them: keep one, or split it into several jobs", e.name)
	}
	p.runnerSettings(m, &j, path, runnerNode, cur != nil, cmd != nil, spk != nil)
	if spk != nil {
		var outNode *yaml.Node
		j.Spark, outNode = p.spark(spk, path+".spark")
		j.Output = j.Spark.Output
		if outNode != nil {
			info.outNode, info.outPath = outNode, path+".spark.output"
		}
		if out != nil {
			p.errorf(out.key, path+".output", "a spark job writes where spark.output says: remove output here")
			out = nil
		}
	}
	if cur != nil {
		var outNode *yaml.Node
		j.Curate, outNode = p.curate(cur, path+".curate")
		j.Output = j.Curate.Output
		if outNode != nil {
			info.outNode, info.outPath = outNode, path+".curate.output"
		}
	}
	if cmd != nil {
		j.Command = p.command(cmd.val, path+".command")
	}
	if f := m.get("pass_env"); f != nil {
		if cmd == nil {
			p.errorf(f.key, path+".pass_env", "pass_env gives variables to a command job's program; job %s runs no command: remove pass_env", e.name)
		} else {
			j.PassEnv = p.passEnv(f.val, path+".pass_env")
		}
	}
	if out != nil {
		if cur != nil {
			p.errorf(out.key, path+".output", "a curate job writes where curate.output says: remove output here")
		} else if v, ok := p.keyTemplate(out.val, path+".output", "output", false); ok {
			j.Output = v
			info.outNode, info.outPath = out.val, path+".output"
		}
	}
	return j, info
}

func (p *parser) runner(n *yaml.Node, path string) string {
	v, ok := p.enum(n, path, "runner", runners, runnerAliases)
	if !ok {
		return "" // reported; runnerSettings checks nothing more
	}
	return v
}

// runnerSettings reads the settings block of j's runner and checks that the
// runner runs the job's kind and that no other runner's block is given.
func (p *parser) runnerSettings(m *mapping, j *Job, path string, runnerNode *yaml.Node, isCurate, isCommand, isSpark bool) {
	if j.Runner == "" {
		return
	}
	kind := ""
	switch {
	case isCurate:
		kind = "curate"
	case isCommand:
		kind = "command"
	case isSpark:
		kind = "spark"
	}
	if kind != "" && !contains(runnerKinds[j.Runner], kind) {
		switch kind {
		case "spark":
			p.errorf(runnerNode, path+".runner", "a spark job runs on emr or emr-serverless, not %s: write runner: emr (or emr-serverless) with its settings", j.Runner)
		default:
			p.errorf(runnerNode, path+".runner", "a %s job runs on local or kubernetes, not %s: to run on %s, write the job as a Spark application (spark: {entry_point: ..., input: ..., output: ...}; examples/hydropower-emr has a PySpark script equivalent to curate)", kind, j.Runner, j.Runner)
		}
	}
	for r, key := range runnerBlocks {
		f := m.get(key)
		switch {
		case f == nil && r == j.Runner:
			p.errorf(runnerNode, path+".runner", "runner %s needs its settings: add %s: {...} to job %s (see the README's \"Transient jobs on EMR, EMR Serverless and Kubernetes\")", r, key, j.Name)
		case f == nil:
		case r != j.Runner:
			p.errorf(f.key, path+"."+key, "%s: settings are given but the job's runner is %s: write runner: %s, or remove %s:", key, j.Runner, r, key)
		case r == RunnerEMR:
			j.EMR = p.emr(f, path+"."+key)
		case r == RunnerEMRServerless:
			j.EMRServerless = p.emrServerless(f, path+"."+key)
		case r == RunnerKubernetes:
			j.Kubernetes = p.kubernetes(f, path+"."+key)
		}
	}
}

// checkGroup checks a group template: it must be a bounded template over
// .Key that trigger.Compile accepts.
func (p *parser) checkGroup(n *yaml.Node, path, name, v string) {
	const fields = "fields: .Key.Path, .Key.Dir, .Key.Parent, .Key.Base, .Key.Ext"
	if v == "" {
		p.errorf(n, path, "group is empty: remove it for the default %q (the key's parent folder), or write a template over the key", trigger.DefaultGroup)
		return
	}
	// The dry run is bounded; trigger.Compile executes the template on
	// the same sample key without a bound, so it runs only after.
	if _, err := dryRun(v, "group", "{{.Key.Parent}}", struct{ Key trigger.Key }{trigger.SplitKey("a/b/c.csv")}); err != nil {
		p.errorf(n, path, "the group template does not work (%v): write a template over the key, like %q (%s)", err, trigger.DefaultGroup, fields)
		return
	}
	if strings.TrimSpace(name) == "" {
		name = "job"
	}
	if _, err := trigger.Compile(trigger.Rule{Name: name, Group: v}); err != nil {
		msg := strings.TrimPrefix(err.Error(), "trigger: rule "+name+": ")
		p.errorf(n, path, "%s: write a template over the key, like %q", msg, trigger.DefaultGroup)
	}
}

// dryRun parses tmpl as trigger does, refuses actions that could run
// without bound, and executes it on data with its output bounded to
// maxKeyLen bytes.
func dryRun(tmpl, what, field string, data any) (string, error) {
	if len(tmpl) > maxTemplateLen {
		return "", fmt.Errorf("the template is longer than %d bytes", maxTemplateLen)
	}
	t, err := template.New(what).Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", err
	}
	if len(t.Templates()) > 1 {
		return "", fmt.Errorf("define and block are not allowed in a %s template", what)
	}
	if t.Tree != nil {
		if err := checkTemplateNodes(t.Tree.Root, what, field); err != nil {
			return "", err
		}
	}
	var b limitBuffer
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// maxKeyLen is the longest object key S3 accepts, in bytes.
const maxKeyLen = 1024

// checkTemplateNodes rejects the actions that could make a key without
// bound (range, with, template, break, continue) in a template of kind what;
// field is an example field for the message. (Land templates have the same
// rule in httpsource.CheckLand.)
func checkTemplateNodes(n parse.Node, what, field string) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkTemplateNodes(c, what, field); err != nil {
				return err
			}
		}
	case *parse.IfNode:
		if err := checkTemplateNodes(n.List, what, field); err != nil {
			return err
		}
		return checkTemplateNodes(n.ElseList, what, field)
	case *parse.RangeNode, *parse.WithNode, *parse.TemplateNode, *parse.BreakNode, *parse.ContinueNode:
		return fmt.Errorf("%s is not allowed in a %s template: use fields such as %s, functions such as printf, and if", n, what, field)
	}
	return nil
}

// limitBuffer fails writes past maxKeyLen bytes.
type limitBuffer struct{ bytes.Buffer }

func (b *limitBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxKeyLen {
		return 0, fmt.Errorf("the key is longer than %d bytes", maxKeyLen)
	}
	return b.Buffer.Write(p)
}

// keyTemplate reads an input or output template over .Group, checks that
// it works for a sample group and gives a usable key prefix (a folder,
// ending in "/", when folder is set), and returns it.
func (p *parser) keyTemplate(n *yaml.Node, path, what string, folder bool) (string, bool) {
	v, ok := p.scalar(n, path, true)
	if !ok {
		return "", false
	}
	example := "curated/{{.Group}}/"
	if what == "input" {
		example = "data/{{.Group}}/"
	}
	if v == "" {
		p.errorf(n, path, "%s is empty: write a folder template, like %q", what, example)
		return "", false
	}
	if folder && !strings.HasSuffix(v, "/") {
		p.errorf(n, path, "%q does not end with \"/\": the %s is a folder; write %q", v, what, v+"/")
		return "", false
	}
	key, err := dryRun(v, what, "{{.Group}}", struct{ Group string }{sampleGroup})
	if err != nil {
		p.errorf(n, path, "the template does not work (%v): use {{.Group}}, its only field, like %q", err, example)
		return "", false
	}
	if _, err := trigger.Expand(v, sampleGroup); err != nil {
		p.errorf(n, path, "%s: write a template like %q", strings.TrimPrefix(err.Error(), "trigger: "), example)
		return "", false
	}
	if msg := checkPrefixKey(key, folder && what == "output"); msg != "" {
		if key == v {
			p.errorf(n, path, "%q %s", v, msg)
		} else {
			p.errorf(n, path, "for group %q the template gives %q, which %s", sampleGroup, key, msg)
		}
		return "", false
	}
	return v, true
}

// checkPrefixKey returns why prefix is not a usable key prefix, or "".
// Output folders may not have hidden segments, which readers skip.
func checkPrefixKey(prefix string, output bool) string {
	switch {
	case prefix == "":
		return "is empty: name a folder, like \"curated/2020-08-07_2PM/\""
	case strings.HasPrefix(prefix, "/"):
		return "starts with /: keys are relative to the store; leave out the leading /"
	case strings.Contains(prefix, `\`):
		return `contains \: separate folders with /`
	case strings.IndexFunc(prefix, unicode.IsControl) >= 0 || !utf8.ValidString(prefix):
		return "contains a control character or invalid UTF-8"
	}
	for _, seg := range strings.Split(strings.TrimSuffix(prefix, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "has an empty, . or .. path segment: write folder names separated by single /"
		}
		if output && (strings.HasPrefix(seg, ".") || strings.HasPrefix(seg, "_")) {
			return fmt.Sprintf("has a folder %q starting with . or _, which Spark, DuckDB and sluice treat as hidden: rename it", seg)
		}
	}
	return ""
}

func (p *parser) command(n *yaml.Node, path string) []string {
	if r := p.resolve(n); r != nil && r.Kind == yaml.ScalarNode && !isNull(r) {
		p.errorf(n, path, "expected a list, found %s: command is the program and its arguments, one per item, like command: [%s] (no shell splits it)", kindName(r), strings.Join(strings.Fields(r.Value), ", "))
		return nil
	}
	items, ok := p.strList(n, path, "command: [python3, clean.py]")
	if !ok {
		return nil
	}
	if len(items) == 0 {
		p.errorf(n, path, "command is empty: write the program and its arguments, like command: [python3, clean.py]")
		return nil
	}
	if items[0].val == "" {
		p.errorf(items[0].node, path+"[0]", "the program name is empty: write the program to run first, like command: [python3, clean.py]")
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.val
	}
	return out
}

// envName is a variable name a shell can set.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// passEnv reads a command job's pass_env: names of sluice's environment
// variables its program gets (it gets no other but job/local.CommandEnv's).
func (p *parser) passEnv(n *yaml.Node, path string) []string {
	items, ok := p.strList(n, path, "pass_env: [AWS_PROFILE, AWS_REGION]")
	if !ok {
		return nil
	}
	var out []string
	for i, it := range items {
		if !envName.MatchString(it.val) {
			p.errorf(it.node, fmt.Sprintf("%s[%d]", path, i), "%q is not an environment variable name: write names only, like pass_env: [AWS_PROFILE] (the value is taken from sluice's environment when the job runs)", it.val)
			continue
		}
		out = append(out, it.val)
	}
	return out
}

// curate reads a curate job. It returns a non-nil Curate and the node of
// its output template when that is valid.
func (p *parser) curate(e *entry, path string) (*Curate, *yaml.Node) {
	c := &Curate{Format: CurateCSV, Delimiter: DefaultDelimiter, Mode: curate.ModeOverwrite, MaxRowsPerFile: curate.DefaultMaxRowsPerFile}
	hints := map[string]string{
		"schema": "did you mean \"columns\"? (name: kind, like columns: {Year: int32})",
		"types":  "did you mean \"columns\"? (name: kind, like columns: {Year: int32})",
		"where":  "did you mean \"filter\"? (like filter: \"Year >= 2000\")",
		"write":  "did you mean \"mode\"? (overwrite or error-if-exists)",
		"prefix": "did you mean \"input\"? (the folder to read, like input: \"data/{{.Group}}/\")",
		"source": "did you mean \"input\"? (the folder to read, like input: \"data/{{.Group}}/\")",
		"dest":   "did you mean \"output\"? (the folder to write, like output: \"curated/{{.Group}}/\")",
		"sep":    "did you mean \"delimiter\"?",
	}
	for _, k := range []string{"max_rows", "rows_per_file", "max_records_per_file"} {
		hints[k] = "did you mean \"max_rows_per_file\"?"
	}
	m := p.mapping(e.val, path, `write curate: {input: "data/{{.Group}}/", columns: {...}, output: "curated/{{.Group}}/"}`, curateKeys, hints)
	if m == nil {
		return c, nil
	}
	var inSample string
	if f := m.get("input"); f == nil {
		p.errorf(e.key, path, "curate has no input: add input: \"data/{{.Group}}/\", the folder whose CSV files it reads")
	} else if v, ok := p.keyTemplate(f.val, path+".input", "input", true); ok {
		c.Input = v
		inSample, _ = trigger.Expand(v, sampleGroup)
	}
	var outNode *yaml.Node
	if f := m.get("output"); f == nil {
		p.errorf(e.key, path, "curate has no output: add output: \"curated/{{.Group}}/\", the folder it writes Parquet to")
	} else if v, ok := p.keyTemplate(f.val, path+".output", "output", true); ok {
		c.Output = v
		outSample, _ := trigger.Expand(v, sampleGroup)
		if inSample != "" && (strings.HasPrefix(outSample, inSample) || strings.HasPrefix(inSample, outSample)) {
			p.errorf(f.val, path+".output", "the output %q overlaps the input %q (for group %q: %q and %q): curate replaces everything under its output, so write it outside the input, like %q", v, c.Input, sampleGroup, outSample, inSample, "curated/{{.Group}}/")
		} else {
			outNode = f.val
		}
	}
	if f := m.get("format"); f != nil {
		if v, ok := p.enum(f.val, path+".format", "curate format", curateFormats, map[string]string{"tsv": "csv", "text/csv": "csv"}); ok {
			c.Format = v
		}
	}
	if f := m.get("delimiter"); f != nil {
		if r := p.delimiter(f.val, path+".delimiter"); r != 0 {
			c.Delimiter = string(r)
		}
	}
	if f := m.get("mode"); f != nil {
		if v, ok := p.enum(f.val, path+".mode", "mode", curateModes, modeAliases); ok {
			c.Mode = v
		}
	}
	if f := m.get("max_rows_per_file"); f != nil {
		if v, ok := p.integer(f.val, path+".max_rows_per_file", 1, 1<<31-1); ok {
			c.MaxRowsPerFile = v
		}
	}
	if f := m.get("limits"); f != nil {
		c.Limits = p.limits(f.val, path+".limits")
	}
	var colNodes map[string]*yaml.Node
	colsOK := false
	if f := m.get("columns"); f == nil {
		p.errorf(e.key, path, "curate has no columns: add columns: {name: kind, ...} declaring every CSV column (after rename), with kinds %s", strings.Join(kindNames, ", "))
	} else {
		before := len(p.errs)
		c.Columns, colNodes = p.curateColumns(f.val, path+".columns")
		colsOK = len(p.errs) == before && len(c.Columns) > 0
	}
	if f := m.get("rename"); f != nil {
		c.Rename = p.rename(f.val, path+".rename", c.Columns, colNodes, colsOK)
	}
	if f := m.get("filter"); f != nil {
		if v, ok := p.scalar(f.val, path+".filter", true); ok {
			c.Filter = v
			if colsOK && strings.TrimSpace(v) != "" {
				cols := make([]curate.Column, len(c.Columns))
				for i, col := range c.Columns {
					cols[i] = curate.Column{Name: col.Name, Type: col.Type}
				}
				if _, err := curate.ParseFilter(v, cols); err != nil {
					p.errorf(f.val, path+".filter", "%s: a filter compares declared columns (after rename) with literals, like \"Year >= 2000 and Code != null\"", strings.TrimPrefix(err.Error(), "filter: "))
				}
			}
		}
	}
	return c, outNode
}

// curateColumns reads name: kind pairs in order; it also returns the key
// node of each name.
func (p *parser) curateColumns(n *yaml.Node, path string) ([]schema.Column, map[string]*yaml.Node) {
	nodes := map[string]*yaml.Node{}
	m := p.mapping(n, path, "write columns: {Entity: string, Year: int32} (name: kind, in file order)", nil, nil)
	if m == nil {
		return nil, nodes
	}
	if len(m.entries) == 0 {
		p.errorf(m.node, path, "columns is empty: declare every CSV column (after rename), like columns: {Entity: string, Year: int32}")
		return nil, nodes
	}
	var out []schema.Column
	for _, e := range m.entries {
		cp := path + "." + e.name
		if strings.TrimSpace(e.name) == "" {
			p.errorf(e.key, cp, "a column name is empty: write the CSV header's name (or its new name from rename)")
			continue
		}
		nodes[e.name] = e.key
		if r := p.resolve(e.val); r != nil && r.Kind == yaml.MappingNode {
			p.errorf(e.val, cp, "expected a kind, found a mapping: write %s: KIND with KIND one of %s (rename columns with curate.rename)", e.name, strings.Join(kindNames, ", "))
			continue
		}
		k, ok := p.columnType(e.val, cp, "column kind", kindNames, kindAliases)
		if !ok {
			continue
		}
		out = append(out, schema.Column{Name: e.name, Type: k})
	}
	return out, nodes
}

// rename reads header: column pairs. Targets must be declared columns
// (checked when colsOK), and no column may be the target of two headers;
// a declared column that is renamed away is an error.
func (p *parser) rename(n *yaml.Node, path string, cols []schema.Column, colNodes map[string]*yaml.Node, colsOK bool) map[string]string {
	m := p.mapping(n, path, `write rename: {"Hydropower (Terawatt-hours)": consumption} (CSV header: column name)`, nil, nil)
	if m == nil || len(m.entries) == 0 {
		return nil
	}
	declared := map[string]bool{}
	names := make([]string, len(cols))
	for i, c := range cols {
		declared[c.Name], names[i] = true, c.Name
	}
	out := map[string]string{}
	from := map[string]entry{} // target → the header renamed to it
	for _, e := range m.entries {
		rp := path + "." + e.name
		v, ok := p.scalar(e.val, rp, true)
		if !ok {
			continue
		}
		switch {
		case v == "":
			p.errorf(e.val, rp, "the new name is empty: write the column name, like %q: %s", e.name, sanitizeIdent(e.name))
			continue
		case colsOK && !declared[v]:
			hint := "add it to columns"
			if s := suggest(v, names); s != "" {
				hint = fmt.Sprintf("did you mean %q? Otherwise add it to columns", s)
			}
			p.errorf(e.val, rp, "%q is not a declared column: rename targets are column names; %s (declared: %s)", v, hint, strings.Join(names, ", "))
		}
		if prev, dup := from[v]; dup {
			p.errorf(e.val, rp, "column %q is already the new name of %q (line %d): rename one header to each column", v, prev.name, prev.key.Line)
		} else {
			from[v] = e
		}
		out[e.name] = v
	}
	if colsOK {
		for _, c := range cols {
			if to, renamed := out[c.Name]; renamed && to != c.Name {
				if _, isTarget := from[c.Name]; !isTarget {
					p.errorf(colNodes[c.Name], path[:strings.LastIndex(path, ".")]+".columns."+c.Name, "header %q is renamed to %q, so the column is called %q: declare %s instead", c.Name, to, to, to)
				}
			}
		}
	}
	return out
}

// delimiter reads a CSV delimiter: one character that can separate fields.
// It returns 0 after reporting anything else.
func (p *parser) delimiter(n *yaml.Node, path string) rune {
	v, ok := p.scalar(n, path, true)
	if !ok {
		return 0
	}
	r, size := utf8.DecodeRuneInString(v)
	switch {
	case size != len(v) || v == "" || r == utf8.RuneError:
		p.errorf(n, path, "%q is not one character: write one, like delimiter: \";\" (or \"\\t\" in double quotes for a tab)", v)
	case r == '"' || r == '\r' || r == '\n':
		p.errorf(n, path, "%q cannot separate CSV fields (it quotes or ends records): write another character, like \";\"", v)
	default:
		return r
	}
	return 0
}
