package pipeline

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/schema"

	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/trigger"
)

// jobHead starts a spec with one job j whose body starts on line 4;
// curOK is a valid curate body (lines 4-7) to which a test may add curate
// keys from line 8, indented six spaces.
const (
	jobHead = "name: t\njobs:\n  j:\n"
	curOK   = "    curate:\n      input: \"in/{{.Group}}/\"\n      columns: {a: string, b: int32}\n      output: \"out/{{.Group}}/\"\n"
	cmdOK   = "    command: [x]\n"
	// emrOK and emrsOK are valid settings blocks (lines 4-8 and 4-5).
	emrOK   = "    emr:\n      release_label: emr-7.2.0\n      service_role: EMR_DefaultRole_V2\n      instance_profile: EMR_EC2_DefaultRole\n      region: us-east-1\n"
	emrsOK  = "    emr_serverless: {application_id: 00f, execution_role: \"arn:aws:iam::123456789012:role/sluice\"}\n"
	sparkOK = "    spark: {entry_point: jobs/curate.py, input: \"in/{{.Group}}/\", output: \"out/{{.Group}}/\"}\n"
)

// badJobSpecs are jobs Parse must reject. They also seed FuzzParse.
var badJobSpecs = []badSpec{
	{"job names are checked", "name: t\njobs:\n  -bad:\n" + cmdOK, 3, 3, "jobs.-bad", "not a valid job name"},
	{"a job must be a mapping", jobHead + "    - x\n", 4, 5, "jobs.j", "expected a mapping"},
	{"a job needs curate, command or spark", jobHead + "    on: {prefix: data/}\n", 3, 3, "jobs.j", "job j has neither curate, command nor spark: add curate:"},
	{"a job runs curate or command, not both", jobHead + curOK + cmdOK, 3, 3, "jobs.j", "job j has more than one of curate, command and spark"},
	{"cmd suggests command", jobHead + "    cmd: [x]\n", 4, 5, "jobs.j.cmd", `unknown key "cmd": did you mean "command"?`},
	{"a misspelt job key gets a suggestion", jobHead + "    comand: [x]\n", 4, 5, "jobs.j.comand", `did you mean "command"?`},
	{"prefix at job level belongs under on", jobHead + "    prefix: data/\n" + cmdOK, 4, 5, "jobs.j.prefix", "prefix belongs under on: write on: {prefix: ...}"},
	{"curate keys at job level belong under curate", jobHead + "    columns: {a: string}\n" + cmdOK, 4, 5, "jobs.j.columns", "columns belongs under curate"},
	{"job event patterns are checked", jobHead + "    on: {events: [\"s3:ObjectRemoved:*\"]}\n" + cmdOK, 4, 19, "jobs.j.on.events[0]", "unknown event pattern"},
	{"job key encodings are checked", jobHead + "    on: {key_encoding: base64}\n" + cmdOK, 4, 24, "jobs.j.on.key_encoding", "unknown key encoding"},
	{"the group template must parse", jobHead + "    group: \"{{.Key.Parent\"\n" + cmdOK, 4, 12, "jobs.j.group", "the group template does not work"},
	{"the group template uses key fields", jobHead + "    group: \"{{.Key.Folder}}\"\n" + cmdOK, 4, 12, "jobs.j.group", "can't evaluate field Folder"},
	{"the group template may not loop", jobHead + "    group: \"{{range .Key.Path}}x{{end}}\"\n" + cmdOK, 4, 12, "jobs.j.group", "is not allowed in a group template"},
	{"the group template is bounded", jobHead + "    group: \"" + strings.Repeat("x", 5000) + "\"\n" + cmdOK, 4, 12, "jobs.j.group", "longer than 4096 bytes"},
	{"the group cannot be empty", jobHead + "    group: \"\"\n" + cmdOK, 4, 12, "jobs.j.group", "group is empty: remove it for the default"},
	{"settle is not negative", jobHead + "    settle: -1s\n" + cmdOK, 4, 13, "jobs.j.settle", "-1s is too short"},
	{"settle is at most an hour", jobHead + "    settle: 2h\n" + cmdOK, 4, 13, "jobs.j.settle", "2h0m0s is too long: write at most 1h"},
	{"settle needs a unit", jobHead + "    settle: 5\n" + cmdOK, 4, 13, "jobs.j.settle", `"5" has no unit`},
	{"a curate job on emr is refused", jobHead + "    runner: emr\n" + emrOK + curOK, 4, 13, "jobs.j.runner", "a curate job runs on local or kubernetes, not emr: to run on emr, write the job as a Spark application"},
	{"a command job on emr-serverless is refused", jobHead + "    runner: emr-serverless\n" + emrsOK + cmdOK, 4, 13, "jobs.j.runner", "a command job runs on local or kubernetes, not emr-serverless"},
	{"a spark job on local is refused", jobHead + sparkOK, 3, 3, "jobs.j.runner", "a spark job runs on emr or emr-serverless, not local"},
	{"a spark job on kubernetes is refused", jobHead + "    runner: kubernetes\n    kubernetes: {image: x}\n" + sparkOK, 4, 13, "jobs.j.runner", "a spark job runs on emr or emr-serverless, not kubernetes"},
	{"the kubernetes runner needs its settings", jobHead + "    runner: kubernetes\n" + cmdOK, 4, 13, "jobs.j.runner", "runner kubernetes needs its settings: add kubernetes: {...}"},
	{"another runner's settings are refused", jobHead + emrOK + cmdOK, 4, 5, "jobs.j.emr", "emr: settings are given but the job's runner is local: write runner: emr, or remove emr:"},
	{"emr needs a release label", jobHead + "    runner: emr\n    emr: {service_role: s, instance_profile: p}\n" + sparkOK, 5, 5, "jobs.j.emr", "release_label is required: the EMR release, like release_label: emr-7.2.0"},
	{"emr needs a service role", jobHead + "    runner: emr\n    emr:\n      release_label: emr-7.2.0\n      instance_profile: p\n" + sparkOK, 5, 5, "jobs.j.emr", "service_role is required"},
	{"emr needs an instance profile", jobHead + "    runner: emr\n    emr: {release_label: emr-7.2.0, service_role: s}\n" + sparkOK, 5, 5, "jobs.j.emr", "instance_profile is required"},
	{"emr settings are checked by key", jobHead + "    runner: emr\n" + emrOK + "      relase_label: x\n" + sparkOK, 10, 7, "jobs.j.emr.relase_label", `unknown key "relase_label": did you mean "release_label"?`},
	{"emr instance groups need one master", jobHead + "    runner: emr\n" + emrOK + "      instance_groups: [{role: CORE, type: m5.xlarge, count: 2}]\n" + sparkOK, 5, 5, "jobs.j.emr", "exactly one MASTER instance group or fleet, found 0"},
	{"emr instance group roles are checked", jobHead + "    runner: emr\n" + emrOK + "      instance_groups: [{role: master, type: m5.xlarge, count: 1}]\n" + sparkOK, 10, 32, "jobs.j.emr.instance_groups[0].role", `role "master": write MASTER, CORE or TASK`},
	{"emr counts are numbers", jobHead + "    runner: emr\n" + emrOK + "      instance_groups: [{role: MASTER, type: m5.xlarge, count: two}]\n" + sparkOK, 10, 64, "jobs.j.emr.instance_groups[0].count", `"two" is not a whole number`},
	{"emr idle timeout is bounded", jobHead + "    runner: emr\n" + emrOK + "      idle_timeout: 10s\n" + sparkOK, 10, 21, "jobs.j.emr.idle_timeout", "10s is out of range: EMR accepts 1m to 168h"},
	{"emr log uri is s3", jobHead + "    runner: emr\n" + emrOK + "      log_uri: /tmp/logs\n" + sparkOK, 10, 16, "jobs.j.emr.log_uri", `"/tmp/logs" is not an s3:// URI`},
	{"emr-serverless needs an application", jobHead + "    runner: emr-serverless\n    emr_serverless: {execution_role: \"arn:aws:iam::123456789012:role/r\"}\n" + sparkOK, 5, 5, "jobs.j.emr_serverless", "application_id is required"},
	{"emr-serverless needs a role ARN", jobHead + "    runner: emr-serverless\n    emr_serverless: {application_id: a, execution_role: myrole}\n" + sparkOK, 5, 57, "jobs.j.emr_serverless.execution_role", `"myrole" is not an IAM role ARN`},
	{"kubernetes needs an image", jobHead + "    runner: kubernetes\n    kubernetes: {namespace: data}\n" + curOK, 5, 5, "jobs.j.kubernetes", "image is required: the sluice container image"},
	{"kubernetes quantities are checked", jobHead + "    runner: kubernetes\n    kubernetes:\n      image: x\n      resources: {limits: {memory: 4GB}}\n" + curOK, 7, 18, "jobs.j.kubernetes.resources.limits.memory", `"4GB" is not a Kubernetes quantity`},
	{"kubernetes tolerations are checked", jobHead + "    runner: kubernetes\n    kubernetes:\n      image: x\n      tolerations: [{key: k, operator: Equals}]\n" + curOK, 7, 40, "jobs.j.kubernetes.tolerations[0].operator", `operator "Equals": write Exists or Equal`},
	{"spark needs an entry point", jobHead + "    runner: emr\n" + emrOK + "    spark: {input: \"in/{{.Group}}/\", output: \"out/{{.Group}}/\"}\n", 10, 5, "jobs.j.spark", "entry_point is required"},
	{"a spark JAR needs its class", jobHead + "    runner: emr\n" + emrOK + "    spark: {entry_point: app.jar, input: \"in/{{.Group}}/\", output: \"out/{{.Group}}/\"}\n", 10, 13, "jobs.j.spark.class", "a JAR needs its main class"},
	{"a spark output may not overlap its input", jobHead + "    runner: emr\n" + emrOK + "    spark: {entry_point: a.py, input: \"in/{{.Group}}/\", output: \"in/{{.Group}}/o/\"}\n", 10, 65, "jobs.j.spark.output", "overlaps the input"},
	{"a misspelt runner gets a suggestion", jobHead + "    runner: lcoal\n" + cmdOK, 4, 13, "jobs.j.runner", `unknown runner "lcoal": did you mean "local"? (allowed: local, emr, emr-serverless, kubernetes)`},
	{"timeout is at least a second", jobHead + "    timeout: 0s\n" + cmdOK, 4, 14, "jobs.j.timeout", "0s is too short: write at least 1s"},
	{"command cannot be empty", jobHead + "    command: []\n", 4, 14, "jobs.j.command", "command is empty"},
	{"command is a list", jobHead + "    command: python3 x.py\n", 4, 14, "jobs.j.command", `expected a list, found the value "python3 x.py": command is the program and its arguments, one per item, like command: [python3, x.py]`},
	{"command names a program first", jobHead + "    command: [\"\", x]\n", 4, 15, "jobs.j.command[0]", "the program name is empty"},
	{"command arguments are values", jobHead + "    command: [x, {a: b}]\n", 4, 18, "jobs.j.command[1]", "expected a single value"},
	{"pass_env names variables", jobHead + cmdOK + "    pass_env: [AWS_PROFILE, \"A=B\"]\n", 5, 29, "jobs.j.pass_env[1]", `"A=B" is not an environment variable name`},
	{"pass_env is a list", jobHead + cmdOK + "    pass_env: AWS_PROFILE\n", 5, 15, "jobs.j.pass_env", "expected a list"},
	{"pass_env is for command jobs", jobHead + curOK + "    pass_env: [X]\n", 8, 5, "jobs.j.pass_env", "job j runs no command: remove pass_env"},
	{"a command job's output must parse", jobHead + cmdOK + "    output: \"r/{{.Group\"\n", 5, 13, "jobs.j.output", "the template does not work"},
	{"a command job's output is relative", jobHead + cmdOK + "    output: \"/r/{{.Group}}/\"\n", 5, 13, "jobs.j.output", `for group "2020-08-07_2PM" the template gives "/r/2020-08-07_2PM/", which starts with /`},
	{"a curate job has no job-level output", jobHead + curOK + "    output: x/\n", 8, 5, "jobs.j.output", "a curate job writes where curate.output says: remove output here"},
	{"curate must be a mapping", jobHead + "    curate: data/\n", 4, 13, "jobs.j.curate", "expected a mapping"},
	{"curate needs input", jobHead + "    curate: {columns: {a: string}, output: out/}\n", 4, 5, "jobs.j.curate", "curate has no input: add input:"},
	{"curate needs output", jobHead + "    curate: {columns: {a: string}, input: in/}\n", 4, 5, "jobs.j.curate", "curate has no output: add output:"},
	{"curate needs columns", jobHead + "    curate: {input: in/, output: out/}\n", 4, 5, "jobs.j.curate", "curate has no columns"},
	{"a misspelt curate key gets a suggestion", jobHead + curOK + "      colums: {}\n", 8, 7, "jobs.j.curate.colums", `did you mean "columns"?`},
	{"the input is a folder", jobHead + "    curate:\n      input: \"in/{{.Group}}\"\n", 5, 14, "jobs.j.curate.input", `"in/{{.Group}}" does not end with "/": the input is a folder; write "in/{{.Group}}/"`},
	{"the input template must parse", jobHead + "    curate:\n      input: \"in/{{.Group/\"\n", 5, 14, "jobs.j.curate.input", "the template does not work"},
	{"the input template has only .Group", jobHead + "    curate:\n      input: \"in/{{.Date}}/\"\n", 5, 14, "jobs.j.curate.input", "can't evaluate field Date"},
	{"the input cannot be empty", jobHead + "    curate:\n      input: \"\"\n", 5, 14, "jobs.j.curate.input", "input is empty"},
	{"the output is relative", jobHead + "    curate:\n      output: \"/out/{{.Group}}/\"\n", 5, 15, "jobs.j.curate.output", "starts with /"},
	{"the output has no hidden folder", jobHead + "    curate:\n      output: \"out/_tmp/{{.Group}}/\"\n", 5, 15, "jobs.j.curate.output", `has a folder "_tmp" starting with . or _`},
	{"the output has no .. segment", jobHead + "    curate:\n      output: \"out/../{{.Group}}/\"\n", 5, 15, "jobs.j.curate.output", "has an empty, . or .. path segment"},
	{"the output is checked after expansion", jobHead + "    curate:\n      output: \"out/{{if .Group}}..{{end}}/\"\n", 5, 15, "jobs.j.curate.output", `for group "2020-08-07_2PM" the template gives "out/../", which has an empty, . or .. path segment`},
	{"the output is bounded", jobHead + "    curate:\n      output: \"{{printf \\\"%2000s\\\" .Group}}/\"\n", 5, 15, "jobs.j.curate.output", "longer than 1024 bytes"},
	{"the output may not overlap the input", jobHead + "    curate:\n      input: \"in/{{.Group}}/\"\n      output: \"in/{{.Group}}/out/\"\n", 6, 15, "jobs.j.curate.output", `the output "in/{{.Group}}/out/" overlaps the input "in/{{.Group}}/" (for group "2020-08-07_2PM": "in/2020-08-07_2PM/out/" and "in/2020-08-07_2PM/")`},
	{"the input may not lie inside the output", jobHead + "    curate:\n      input: \"all/{{.Group}}/in/\"\n      output: \"all/\"\n", 6, 15, "jobs.j.curate.output", "overlaps the input"},
	{"the format is csv", jobHead + curOK + "      format: json\n", 8, 15, "jobs.j.curate.format", `unknown curate format "json" (allowed: csv)`},
	{"the delimiter is one character", jobHead + curOK + "      delimiter: \";;\"\n", 8, 18, "jobs.j.curate.delimiter", `";;" is not one character`},
	{"the delimiter cannot be a quote", jobHead + curOK + "      delimiter: '\"'\n", 8, 18, "jobs.j.curate.delimiter", "cannot separate CSV fields"},
	{"a misspelt mode gets a suggestion", jobHead + curOK + "      mode: overwrit\n", 8, 13, "jobs.j.curate.mode", `unknown mode "overwrit": did you mean "overwrite"? (allowed: overwrite, error-if-exists)`},
	{"error_if_exists suggests error-if-exists", jobHead + curOK + "      mode: error_if_exists\n", 8, 13, "jobs.j.curate.mode", `did you mean "error-if-exists"?`},
	{"max_rows_per_file is positive", jobHead + curOK + "      max_rows_per_file: 0\n", 8, 26, "jobs.j.curate.max_rows_per_file", "0 is out of range"},
	{"curate columns cannot be empty", jobHead + "    curate:\n      columns: {}\n", 5, 16, "jobs.j.curate.columns", "columns is empty"},
	{"a column kind must be known", jobHead + "    curate:\n      columns: {a: varchar}\n", 5, 20, "jobs.j.curate.columns.a", `unknown column kind "varchar": did you mean "text"? (allowed: integer, bigint, real, double, text, boolean, date, timestamp)`},
	{"float8 suggests double", jobHead + "    curate:\n      columns: {a: float8}\n", 5, 20, "jobs.j.curate.columns.a", `did you mean "double"?`},
	{"json is not a curated kind", jobHead + "    curate:\n      columns: {a: json}\n", 5, 20, "jobs.j.curate.columns.a", `unknown column kind "json"`},
	{"a column is a kind, not a mapping", jobHead + "    curate:\n      columns: {a: {type: string}}\n", 5, 20, "jobs.j.curate.columns.a", "expected a kind, found a mapping"},
	{"rename targets are declared columns", jobHead + curOK + "      rename: {X: zzz}\n", 8, 19, "jobs.j.curate.rename.X", `"zzz" is not a declared column: rename targets are column names; add it to columns (declared: a, b)`},
	{"a misspelt rename target gets a suggestion", jobHead + "    curate:\n      columns: {consumption: float32}\n      rename: {\"Hydropower (TWh)\": consumptoin}\n", 6, 36, "jobs.j.curate.rename.Hydropower (TWh)", `did you mean "consumption"?`},
	{"a column is renamed to at most once", jobHead + curOK + "      rename: {A: a, B: a}\n", 8, 25, "jobs.j.curate.rename.B", `column "a" is already the new name of "A" (line 8)`},
	{"a renamed header is not a column", jobHead + curOK + "      rename: {a: b}\n", 6, 17, "jobs.j.curate.columns.a", `header "a" is renamed to "b", so the column is called "b": declare b instead`},
	{"a rename target cannot be empty", jobHead + curOK + "      rename: {A: \"\"}\n", 8, 19, "jobs.j.curate.rename.A", "the new name is empty"},
	{"filter columns must exist", jobHead + curOK + "      filter: \"c > 1\"\n", 8, 15, "jobs.j.curate.filter", `unknown column "c"`},
	{"filter syntax is checked", jobHead + curOK + "      filter: \"b >\"\n", 8, 15, "jobs.j.curate.filter", "at offset"},
	{"filter literals fit their column", jobHead + curOK + "      filter: \"a > 1\"\n", 8, 15, "jobs.j.curate.filter", "cannot be compared"},
	{"filter uses the renamed column", jobHead + "    curate:\n      columns: {c: int32}\n      rename: {C: c}\n      filter: \"C > 1\"\n", 7, 15, "jobs.j.curate.filter", `unknown column "C"`},
}

func TestParseRejectsBadJobsAtTheirPosition(t *testing.T) {
	for _, c := range badJobSpecs {
		t.Run(c.name, func(t *testing.T) { checkBadSpec(t, c) })
	}
}

// hydropower is the reference job.
const hydropower = `name: hydro
jobs:
  hydropower:
    on: {events: ["s3:ObjectCreated:*"], prefix: data/, suffix: .csv}
    group: "{{.Key.Parent}}"
    settle: 5s
    runner: local
    timeout: 30m
    curate:
      input: "data/{{.Group}}/"
      format: csv
      rename: {"Hydropower (Terawatt-hours)": consumption}
      columns: {Entity: string, Code: string, Year: int32, consumption: float32}
      output: "curated/{{.Group}}/"
      mode: overwrite
`

// hydropowerJob is the reference job as Parse must return it.
func hydropowerJob(pos Pos) Job {
	return Job{
		Name:    "hydropower",
		On:      On{Events: []string{"ObjectCreated:*"}, Prefix: "data/", Suffix: ".csv", KeyEncoding: event.KeyURL},
		Group:   "{{.Key.Parent}}",
		Settle:  5 * time.Second,
		Runner:  RunnerLocal,
		Timeout: 30 * time.Minute,
		Curate: &Curate{
			Input: "data/{{.Group}}/", Output: "curated/{{.Group}}/", Format: "csv", Delimiter: ",",
			Rename: map[string]string{"Hydropower (Terawatt-hours)": "consumption"},
			Columns: []schema.Column{
				{Name: "Entity", Type: schema.Text}, {Name: "Code", Type: schema.Text}, {Name: "Year", Type: schema.Integer}, {Name: "consumption", Type: schema.Real},
			},
			Mode: "overwrite", MaxRowsPerFile: 1000000,
		},
		Output: "curated/{{.Group}}/",
		Pos:    pos,
	}
}

func TestTheHydropowerJobParses(t *testing.T) {
	s := mustParse(t, hydropower, noEnv)
	want := []Job{hydropowerJob(Pos{Line: 3, Col: 3})}
	if !reflect.DeepEqual(s.Jobs, want) {
		t.Errorf("jobs\n got %+v %+v\nwant %+v %+v", s.Jobs, s.Jobs[0].Curate, want, want[0].Curate)
	}
}

// TestTheHydropowerExampleIsTheReferenceJob keeps examples/hydropower in
// step with the reference: its spec and the CSV it ships.
func TestTheHydropowerExampleIsTheReferenceJob(t *testing.T) {
	s, err := LoadFile("../examples/hydropower/pipeline.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Jobs) != 1 || len(s.Sources)+len(s.Loads) != 0 {
		t.Fatalf("spec = %+v", s)
	}
	if want := hydropowerJob(s.Jobs[0].Pos); !reflect.DeepEqual(s.Jobs[0], want) {
		t.Errorf("job\n got %+v %+v\nwant %+v %+v", s.Jobs[0], s.Jobs[0].Curate, want, want.Curate)
	}
	data, err := os.ReadFile("../examples/hydropower/data/2020-08-07_2PM/hydropower-consumption.csv")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if lines[0] != "Entity,Code,Year,Hydropower (Terawatt-hours)" || len(lines)-1 != 4176 {
		t.Errorf("the shipped CSV has header %q and %d rows, want the reference's 4176", lines[0], len(lines)-1)
	}
	key := "data/2020-08-07_2PM/hydropower-consumption.csv"
	j := s.Jobs[0]
	rule, err := trigger.Compile(trigger.Rule{Name: j.Name, Filter: j.On.Filter(), Group: j.Group})
	if err != nil {
		t.Fatal(err)
	}
	group, ok, err := rule.Match(event.New("lake", key, int64(len(data)), "e", time.Now()))
	if err != nil || !ok || group != "2020-08-07_2PM" {
		t.Fatalf("the upload %s gives group %q, %v, %v", key, group, ok, err)
	}
	in, err1 := trigger.Expand(j.Curate.Input, group)
	out, err2 := trigger.Expand(j.Output, group)
	if in != "data/2020-08-07_2PM/" || out != "curated/2020-08-07_2PM/" || err1 != nil || err2 != nil {
		t.Errorf("input %q (%v), output %q (%v)", in, err1, out, err2)
	}
}

func TestJobDefaultsApplyWhenKeysAreAbsent(t *testing.T) {
	s := mustParse(t, "name: t\njobs:\n  c: {command: [run.sh], pass_env: [AWS_PROFILE, TOKEN_2]}\n  k:\n    on: {prefix: in/}\n    curate: {input: \"in/{{.Group}}/\", output: out/, columns: {a: string}}\n", noEnv)
	c, k := s.Jobs[0], s.Jobs[1]
	wantC := Job{
		Name: "c", On: On{Events: []string{DefaultEvent}, KeyEncoding: event.KeyURL}, Group: "{{.Key.Parent}}",
		Runner: "local", Timeout: time.Hour, Command: []string{"run.sh"}, PassEnv: []string{"AWS_PROFILE", "TOKEN_2"}, Pos: Pos{3, 3},
	}
	if !reflect.DeepEqual(c, wantC) {
		t.Errorf("command job\n got %+v\nwant %+v", c, wantC)
	}
	wantK := &Curate{Input: "in/{{.Group}}/", Output: "out/", Format: "csv", Delimiter: ",", Columns: []schema.Column{{Name: "a", Type: schema.Text}}, Mode: "overwrite", MaxRowsPerFile: 1000000}
	if !reflect.DeepEqual(k.Curate, wantK) || k.Output != "out/" || k.Settle != 0 || k.Command != nil {
		t.Errorf("curate job = %+v, curate %+v", k, k.Curate)
	}
}

func TestJobValuesAreEnvExpandedAndAliasesWork(t *testing.T) {
	s := mustParse(t, `name: t
x-on: &on {prefix: "${IN:-data}/", suffix: .csv}
x-cols: &cols {Year: int32, v: float64}
jobs:
  a:
    on: *on
    settle: 0s
    curate: {input: "${IN:-data}/{{.Group}}/", output: "${OUT}/{{.Group}}/", columns: *cols, delimiter: "\t", filter: "Year >= ${MIN_YEAR}", mode: error-if-exists, max_rows_per_file: 10}
  b:
    on: *on
    command: [sh, -c, "echo $$JOB_GROUP ${USER}"]
`, env(map[string]string{"OUT": "cur", "MIN_YEAR": "2000", "USER": "ada"}))
	a, b := s.Jobs[0], s.Jobs[1]
	if a.On.Prefix != "data/" || a.Curate.Input != "data/{{.Group}}/" || a.Curate.Output != "cur/{{.Group}}/" || a.Output != "cur/{{.Group}}/" {
		t.Errorf("a = %+v %+v", a, a.Curate)
	}
	if a.Curate.Delimiter != "\t" || a.Curate.Filter != "Year >= 2000" || a.Curate.Mode != "error-if-exists" || a.Curate.MaxRowsPerFile != 10 || a.Settle != 0 {
		t.Errorf("a.curate = %+v", a.Curate)
	}
	if !reflect.DeepEqual(b.Command, []string{"sh", "-c", "echo $JOB_GROUP ada"}) || b.On.Suffix != ".csv" {
		t.Errorf("b = %+v", b)
	}
}

func TestRenameMaySwapColumns(t *testing.T) {
	s := mustParse(t, jobHead+"    on: {prefix: in/}\n    curate:\n      input: in/\n      output: out/\n      columns: {a: string, b: string}\n      rename: {a: b, b: a}\n", noEnv)
	if !reflect.DeepEqual(s.Jobs[0].Curate.Rename, map[string]string{"a": "b", "b": "a"}) {
		t.Errorf("rename = %v", s.Jobs[0].Curate.Rename)
	}
}

// retriggerCases check the re-trigger rule: want is the complete error
// text, or "" when the spec must be accepted.
var retriggerCases = []struct {
	name, yaml, want string
}{
	{
		"an output inside the job's own trigger prefix is refused",
		`name: t
jobs:
  a:
    on: {prefix: data/}
    curate:
      input: "in/{{.Group}}/"
      columns: {x: string}
      output: "data/{{.Group}}/out/"
`,
		`p.yaml:8:15: jobs.a.curate.output: the output "data/{{.Group}}/out/" matches this job's own trigger (prefix "data/"): each run would start another; write the output outside "data/"`,
	},
	{
		"an output template that extends the trigger prefix is refused",
		`name: t
jobs:
  a:
    on: {prefix: data/}
    curate: {input: "in/{{.Group}}/", columns: {x: string}, output: "data/{{.Group}}-curated/"}
`,
		`p.yaml:5:69: jobs.a.curate.output: the output "data/{{.Group}}-curated/" matches this job's own trigger (prefix "data/"): each run would start another; write the output outside "data/"`,
	},
	{
		"the same template is accepted when the suffix cannot match Parquet or _SUCCESS",
		`name: t
jobs:
  a:
    on: {prefix: data/, suffix: .csv}
    curate: {input: "data/{{.Group}}/", columns: {x: string}, output: "data/{{.Group}}-curated/"}
`,
		"",
	},
	{
		"a template whose first action starts the prefix is refused",
		`name: t
jobs:
  a:
    on: {prefix: data/2020}
    curate: {input: "in/{{.Group}}/", columns: {x: string}, output: "data/{{.Group}}/"}
`,
		`p.yaml:5:69: jobs.a.curate.output: the output "data/{{.Group}}/" matches this job's own trigger (prefix "data/2020"): each run would start another; write the output outside "data/2020"`,
	},
	{
		"a fixed output folder inside the prefix is refused",
		`name: t
jobs:
  a:
    on: {prefix: data/}
    curate: {input: "in/{{.Group}}/", columns: {x: string}, output: data/curated/}
`,
		`p.yaml:5:69: jobs.a.curate.output: the output "data/curated/" matches this job's own trigger (prefix "data/"): each run would start another; write the output outside "data/"`,
	},
	{
		"a fixed output folder is matched exactly against a longer prefix",
		`name: t
jobs:
  a:
    on: {prefix: out/x}
    curate: {input: "in/{{.Group}}/", columns: {x: string}, output: out/}
  b:
    on: {prefix: out/part-0}
    curate: {input: "in/{{.Group}}/", columns: {x: string}, output: out2/}
  c:
    on: {prefix: out2/_SUCC}
    curate: {input: "in/{{.Group}}/", columns: {x: string}, output: out3/}
`,
		// out/ never holds out/x…, but out/part-0… and out2/_SUCCESS exist:
		// a → b → c, and nothing triggers a.
		"",
	},
	{
		"a suffix-only trigger matching Parquet parts is refused",
		`name: t
jobs:
  a:
    on: {suffix: .parquet}
    curate: {input: "in/{{.Group}}/", columns: {x: string}, output: "out/{{.Group}}/"}
`,
		`p.yaml:5:69: jobs.a.curate.output: the output "out/{{.Group}}/" matches this job's own trigger (suffix ".parquet"): each run would start another; set on.prefix to the folder the inputs arrive in, and write the output outside it`,
	},
	{
		"a trigger on _SUCCESS under the output is refused",
		`name: t
jobs:
  a:
    on: {prefix: out/, suffix: /_SUCCESS}
    curate: {input: "in/{{.Group}}/", columns: {x: string}, output: "out/{{.Group}}/"}
`,
		`p.yaml:5:69: jobs.a.curate.output: the output "out/{{.Group}}/" matches this job's own trigger (prefix "out/", suffix "/_SUCCESS"): each run would start another; write the output outside "out/"`,
	},
	{
		"a trigger without a filter is refused for any curate output",
		`name: t
jobs:
  a:
    curate: {input: "in/{{.Group}}/", columns: {x: string}, output: "out/{{.Group}}/"}
`,
		`p.yaml:4:69: jobs.a.curate.output: the output "out/{{.Group}}/" matches this job's own trigger (every key): each run would start another; set on.prefix to the folder the inputs arrive in, and write the output outside it`,
	},
	{
		"a trigger that only takes copies is not re-triggered by outputs",
		`name: t
jobs:
  a:
    on: {events: ["s3:ObjectCreated:Copy"]}
    curate: {input: "in/{{.Group}}/", columns: {x: string}, output: "out/{{.Group}}/"}
`,
		"",
	},
	{
		"a command job writing under its own trigger is refused",
		`name: t
jobs:
  a:
    on: {prefix: reports/, suffix: .json}
    command: [report.sh]
    output: "reports/{{.Group}}/"
`,
		`p.yaml:6:13: jobs.a.output: the output "reports/{{.Group}}/" matches this job's own trigger (prefix "reports/", suffix ".json"): each run would start another; write the output outside "reports/"`,
	},
	{
		"a command job without an output is not checked",
		`name: t
jobs:
  a:
    command: [report.sh]
`,
		"",
	},
	{
		"two jobs that trigger each other form a cycle",
		`name: t
jobs:
  a:
    on: {prefix: y/}
    curate: {input: "in/{{.Group}}/", columns: {x: string}, output: "x/{{.Group}}/"}
  b:
    on: {prefix: x/}
    curate: {input: "in/{{.Group}}/", columns: {x: string}, output: y/}
`,
		`p.yaml:5:69: jobs.a.curate.output: jobs a → b → a form a cycle: a's output "x/{{.Group}}/" triggers b (prefix "x/"), and b's output "y/" triggers a (prefix "y/"); break it by moving one output`,
	},
	{
		"three jobs in a ring form a cycle, reported once at the first job",
		`name: t
jobs:
  c:
    on: {prefix: c/}
    command: [c.sh]
    output: "a/{{.Group}}/"
  a:
    on: {prefix: a/}
    curate: {input: "in/{{.Group}}/", columns: {x: string}, output: "b/{{.Group}}/"}
  b:
    on: {prefix: b/, suffix: _SUCCESS}
    curate: {input: "in/{{.Group}}/", columns: {x: string}, output: "c/{{.Group}}/"}
`,
		`p.yaml:6:13: jobs.c.output: jobs c → a → b → c form a cycle: c's output "a/{{.Group}}/" triggers a (prefix "a/"), a's output "b/{{.Group}}/" triggers b (prefix "b/", suffix "_SUCCESS"), and b's output "c/{{.Group}}/" triggers c (prefix "c/"); break it by moving one output`,
	},
	{
		"a job in a cycle that also triggers itself gets both errors",
		`name: t
jobs:
  a:
    on: {prefix: s/}
    command: [a.sh]
    output: "s/{{.Group}}/"
  b:
    on: {prefix: s/a}
    command: [b.sh]
    output: "s/x/"
`,
		`p.yaml:6:13: jobs.a.output: the output "s/{{.Group}}/" matches this job's own trigger (prefix "s/"): each run would start another; write the output outside "s/"
p.yaml:6:13: jobs.a.output: jobs a → b → a form a cycle: a's output "s/{{.Group}}/" triggers b (prefix "s/a"), and b's output "s/x/" triggers a (prefix "s/"); break it by moving one output`,
	},
	{
		"a job with other errors is left out of the check",
		`name: t
jobs:
  a:
    on: {prefix: data/}
    runner: emr
    command: [x]
    output: "data/{{.Group}}/"
`,
		`p.yaml:5:13: jobs.a.runner: a command job runs on local or kubernetes, not emr: to run on emr, write the job as a Spark application (spark: {entry_point: ..., input: ..., output: ...}; examples/hydropower-emr has a PySpark script equivalent to curate)
p.yaml:5:13: jobs.a.runner: runner emr needs its settings: add emr: {...} to job a (see the README's "Transient jobs on EMR, EMR Serverless and Kubernetes")`,
	},
	{
		"a chain without a cycle is accepted",
		`name: t
loads:
  curated: {on: {prefix: curated/}, table: t, columns: {id: bigint}}
jobs:
  curate:
    on: {prefix: data/, suffix: .csv}
    curate: {input: "data/{{.Group}}/", columns: {x: string}, output: "curated/{{.Group}}/"}
  report:
    on: {prefix: curated/, suffix: _SUCCESS}
    command: [report.sh]
    output: "reports/{{.Group}}/"
  publish:
    on: {prefix: reports/}
    command: [publish.sh]
`,
		"",
	},
}

func TestParseRefusesJobsThatRetriggerThemselves(t *testing.T) {
	for _, c := range retriggerCases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(c.yaml), noEnv)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != c.want {
				t.Errorf("got\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

func TestTheHydropowerReferenceIsNotACycle(t *testing.T) {
	// The reference writes curated/ from data/*.csv; a second job that
	// curates curated/ back into data/ would close a ring.
	if _, err := Parse("p.yaml", []byte(hydropower), noEnv); err != nil {
		t.Fatal(err)
	}
	ring := hydropower + `  back:
    on: {prefix: curated/, suffix: _SUCCESS}
    command: [copy-back.sh]
    output: "data/{{.Group}}/"
`
	_, err := Parse("p.yaml", []byte(ring), noEnv)
	if err == nil || !strings.Contains(err.Error(), "p.yaml:14:15: jobs.hydropower.curate.output: jobs hydropower → back → hydropower form a cycle") {
		t.Errorf("err = %v", err)
	}
	// A command may write any key under its output, so a template that
	// names one file still closes the ring.
	_, err = Parse("p.yaml", []byte(strings.Replace(ring, `output: "data/{{.Group}}/"`, `output: "data/{{.Group}}/notes.txt"`, 1)), noEnv)
	if err == nil || !strings.Contains(err.Error(), "form a cycle") {
		t.Errorf("err = %v", err)
	}
}

func TestOutputModelMatchesPrefixAndSuffixExactly(t *testing.T) {
	cur := func(out string) Job { return Job{Output: out, Curate: &Curate{Output: out}} }
	cmd := func(out string) Job { return Job{Output: out} }
	cases := []struct {
		job            Job
		prefix, suffix string
		want           bool
	}{
		{cur("out/"), "out/", "", true},
		{cur("out/"), "", "", true},
		{cur("out/"), "ou", "", true},
		{cur("out/"), "out/part-00000-", "", true},
		{cur("out/"), "out/part-0000a", "", false},
		{cur("out/"), "out/part-00000-0123abcd-", "", true},
		{cur("out/"), "out/part-00000-0123ABCD-", "", false},
		{cur("out/"), "out/_SUCCESS", "", true},
		{cur("out/"), "out/_SUCCESSx", "", false},
		{cur("out/"), "out/x", "", false},
		{cur("out/"), "other/", "", false},
		{cur("out/"), "", ".parquet", true},
		{cur("out/"), "", ".snappy.parquet", true},
		{cur("out/"), "", "0-c000.snappy.parquet", true},
		{cur("out/"), "", "g-c000.snappy.parquet", false},
		{cur("out/"), "", ".PARQUET", false},
		{cur("out/"), "", ".csv", false},
		{cur("out/"), "", "/_SUCCESS", true},
		{cur("out/"), "", "out/_SUCCESS", true},
		{cur("out/"), "", "x/_SUCCESS", false},
		{cur("out/"), "out/_", "SS", true},
		{cur("out/"), "out/_", ".parquet", false},
		{cur("out/"), "out/_SUCCESS", "/_SUCCESS", true},
		{cur("out/{{.Group}}/"), "out/anything/deep/", "", true},
		{cur("out/{{.Group}}/"), "ou", "", true},
		{cur("out/{{.Group}}/"), "outside/", "", false},
		{cur("out/{{.Group}}/"), "other/", "", false},
		{cur("out/{{.Group}}/"), "", "/_SUCCESS", true},
		{cur("out/{{.Group}}-x/"), "", "-x/_SUCCESS", true},
		{cur("out/{{.Group}}-x/"), "", "-y/_SUCCESS", false},
		{cur("out/{{.Group}}-x/"), "", ".csv", false},
		{cur("out/{{- .Group}}/"), "out/", "", true},
		{cmd("rep/"), "rep/sub/", ".csv", true},
		{cmd("rep/"), "re", "", true},
		{cmd("rep/"), "x/", "", false},
		{cmd("rep/{{.Group}}"), "rep/a", ".json", true},
	}
	for _, c := range cases {
		m, ok := modelOf(c.job)
		if !ok {
			t.Fatalf("no model for %+v", c.job)
		}
		if got := m.canMatch(c.prefix, c.suffix); got != c.want {
			t.Errorf("output %q (curate %v): prefix %q suffix %q = %v, want %v", c.job.Output, c.job.Curate != nil, c.prefix, c.suffix, got, c.want)
		}
	}
	if _, ok := modelOf(Job{Command: []string{"x"}}); ok {
		t.Errorf("a job without an output has a model")
	}
}
