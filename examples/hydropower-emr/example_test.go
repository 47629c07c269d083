// Package hydropoweremr_test checks the files of examples/hydropower-emr:
// both specs parse with the settings the README describes, the IAM
// documents are well-formed and name the roles, bucket and application the
// specs use, and the PySpark script compiles and casts as curate does (its
// pure helpers, run with python3; the Spark part is not run here).
package hydropoweremr_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/schema"

	"github.com/sluicehq/sluice/format"
	"github.com/sluicehq/sluice/pipeline"
)

// noEnv is the environment the specs are parsed in: their placeholders are
// literal text, never ${VAR} references, so nothing is looked up.
func noEnv(string) string { return "" }

func loadSpec(t *testing.T, file string) *pipeline.Spec {
	t.Helper()
	s, err := pipeline.LoadFile(file, noEnv)
	if err != nil {
		t.Fatalf("%s does not parse:\n%v", file, err)
	}
	return s
}

// onlyJob returns the spec's one job, which must be hydropower.
func onlyJob(t *testing.T, s *pipeline.Spec) pipeline.Job {
	t.Helper()
	if len(s.Jobs) != 1 || s.Jobs[0].Name != "hydropower" {
		t.Fatalf("%s: want the one job hydropower, got %+v", s.File, s.Jobs)
	}
	return s.Jobs[0]
}

// checkShared asserts what both specs have in common: the AWS wiring and
// the hydropower trigger and Spark application.
func checkShared(t *testing.T, s *pipeline.Spec, j pipeline.Job) {
	t.Helper()
	if s.Store != "s3://BUCKET?region=eu-west-1" {
		t.Errorf("%s: store %q", s.File, s.Store)
	}
	if !strings.HasPrefix(s.Queue, "sqs://") || !strings.HasPrefix(s.State, "postgres://") {
		t.Errorf("%s: queue %q state %q: want SQS and PostgreSQL as for AWS", s.File, s.Queue, s.State)
	}
	if s.Notifications == nil || s.Notifications.URL != "sqs://sluice-hydropower-s3-events?region=eu-west-1" {
		t.Errorf("%s: notifications %+v: want the bucket's SQS inbox", s.File, s.Notifications)
	}
	if j.On.Prefix != "data/" || j.On.Suffix != ".csv" || j.Group != "{{.Key.Parent}}" {
		t.Errorf("%s: on %+v group %q", s.File, j.On, j.Group)
	}
	if j.Settle <= 0 || j.Timeout <= 0 {
		t.Errorf("%s: settle %s timeout %s: both are set", s.File, j.Settle, j.Timeout)
	}
	if j.Curate != nil || j.Command != nil || j.Kubernetes != nil {
		t.Errorf("%s: the job is a spark job only", s.File)
	}
	sp := j.Spark
	if sp == nil {
		t.Fatalf("%s: no spark block", s.File)
	}
	if sp.EntryPoint != "jobs/hydropower_curate.py" || sp.Input != "data/{{.Group}}/" || sp.Output != "curated/{{.Group}}/" || j.Output != sp.Output {
		t.Errorf("%s: spark %+v, job output %q", s.File, sp, j.Output)
	}
	if sp.Conf["spark.sql.parquet.compression.codec"] != "snappy" {
		t.Errorf("%s: spark conf %v: want snappy Parquet", s.File, sp.Conf)
	}
	if !slices.Equal(sp.Args, []string{"--max-rows-per-file", "1000000"}) {
		t.Errorf("%s: spark args %q", s.File, sp.Args)
	}
}

func TestEMRSpecParsesWithATransientClusterPerRun(t *testing.T) {
	s := loadSpec(t, "emr.yaml")
	j := onlyJob(t, s)
	checkShared(t, s, j)
	if j.Runner != pipeline.RunnerEMR || j.EMR == nil || j.EMRServerless != nil {
		t.Fatalf("runner %q emr %+v emr_serverless %+v", j.Runner, j.EMR, j.EMRServerless)
	}
	e := j.EMR
	if e.Region != "eu-west-1" || e.ReleaseLabel != "emr-7.2.0" || !slices.Equal(e.Applications, []string{"Spark"}) {
		t.Errorf("region %q release %q applications %v", e.Region, e.ReleaseLabel, e.Applications)
	}
	if e.ServiceRole != "sluice-emr-service" || e.InstanceProfile != "sluice-emr-instance" || e.LogURI != "s3://BUCKET/emr-logs/" {
		t.Errorf("service role %q instance profile %q log uri %q", e.ServiceRole, e.InstanceProfile, e.LogURI)
	}
	want := []pipeline.EMRInstanceGroup{{Role: "MASTER", Type: "m5.xlarge", Count: 1}, {Role: "CORE", Type: "m5.xlarge", Count: 2}}
	if !reflect.DeepEqual(e.InstanceGroups, want) || len(e.InstanceFleets) != 0 {
		t.Errorf("instance groups %+v fleets %+v, want %+v", e.InstanceGroups, e.InstanceFleets, want)
	}
	if e.IdleTimeout != 10*time.Minute {
		t.Errorf("idle timeout %s, want 10m", e.IdleTimeout)
	}
	if e.Tags["for-use-with-amazon-emr-managed-policies"] != "true" {
		t.Errorf("tags %v: AmazonEMRServicePolicy_v2 needs for-use-with-amazon-emr-managed-policies=true", e.Tags)
	}
	for k := range e.Tags {
		if strings.HasPrefix(k, "sluice:") {
			t.Errorf("tag %q: sluice sets its own sluice: tags", k)
		}
	}
}

func TestEMRServerlessSpecParsesWithAJobRunPerRun(t *testing.T) {
	s := loadSpec(t, "emr-serverless.yaml")
	j := onlyJob(t, s)
	checkShared(t, s, j)
	if j.Runner != pipeline.RunnerEMRServerless || j.EMRServerless == nil || j.EMR != nil {
		t.Fatalf("runner %q emr %+v emr_serverless %+v", j.Runner, j.EMR, j.EMRServerless)
	}
	e := j.EMRServerless
	if e.Region != "eu-west-1" || e.ApplicationID != "00fapplicationid" || e.LogURI != "s3://BUCKET/emr-serverless-logs/" {
		t.Errorf("region %q application %q log uri %q", e.Region, e.ApplicationID, e.LogURI)
	}
	if e.ExecutionRole != "arn:aws:iam::123456789012:role/sluice-emr-serverless-job" {
		t.Errorf("execution role %q", e.ExecutionRole)
	}
}

func TestBothSpecsRunTheSameSparkJob(t *testing.T) {
	a, b := onlyJob(t, loadSpec(t, "emr.yaml")), onlyJob(t, loadSpec(t, "emr-serverless.yaml"))
	if !reflect.DeepEqual(a.Spark, b.Spark) || !reflect.DeepEqual(a.On, b.On) || a.Group != b.Group {
		t.Errorf("the specs drifted apart:\nemr:            %+v %+v %q\nemr-serverless: %+v %+v %q", a.Spark, a.On, a.Group, b.Spark, b.On, b.Group)
	}
}

// policy is an IAM policy document, as much of it as the tests read.
type policy struct {
	Version   string
	Statement []statement
}

type statement struct {
	Sid       string
	Effect    string
	Principal map[string]any
	Action    stringOrList
	Resource  stringOrList
	Condition map[string]map[string]any
}

// stringOrList is an IAM element written as a string or a list of them.
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*s = many
	return nil
}

func readPolicy(t *testing.T, file string) policy {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("iam", file))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p policy
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("iam/%s: %v", file, err)
	}
	return p
}

// policyActions returns the set of actions iam/<file> allows, like
// "elasticmapreduce:RunJobFlow" and "iam:PassRole".
//
// FOR OTHER TESTS: this is the helper a test comparing the policies with
// the operations the EMR and EMR Serverless fakes record is meant to use,
// e.g. policyActions(t, "sluice-emr.json")["elasticmapreduce:"+op]. The
// policies allow only; none has a Deny statement or a wildcard action.
func policyActions(t *testing.T, file string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, st := range readPolicy(t, file).Statement {
		if st.Effect != "Allow" {
			t.Fatalf("iam/%s: statement %s is not Allow: policyActions counts allowed actions only", file, st.Sid)
		}
		for _, a := range st.Action {
			out[a] = true
		}
	}
	return out
}

var (
	iamAction = regexp.MustCompile(`^[a-z0-9-]+:[A-Za-z0-9]+$`)
	arnRE     = regexp.MustCompile(`^arn:aws:([a-z0-9-]+):([a-z0-9-]*):([0-9]*):(.+)$`)
)

func TestIAMDocumentsAreWellFormedLeastPrivilegePolicies(t *testing.T) {
	files, err := filepath.Glob("iam/*.json")
	if err != nil || len(files) < 9 {
		t.Fatalf("iam documents %v %v: want the 9 of the README", files, err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		p := readPolicy(t, name)
		trust := strings.HasSuffix(name, "-trust.json")
		if p.Version != "2012-10-17" || len(p.Statement) == 0 {
			t.Errorf("%s: version %q, %d statements", name, p.Version, len(p.Statement))
		}
		sids := map[string]bool{}
		for i, st := range p.Statement {
			at := name + ": statement " + st.Sid
			if st.Sid == "" || sids[st.Sid] {
				t.Errorf("%s: statement %d: a unique Sid is required, got %q", name, i, st.Sid)
			}
			sids[st.Sid] = true
			if st.Effect != "Allow" {
				t.Errorf("%s: effect %q", at, st.Effect)
			}
			if len(st.Action) == 0 {
				t.Errorf("%s: no action", at)
			}
			for _, a := range st.Action {
				if !iamAction.MatchString(a) {
					t.Errorf("%s: action %q is not one service:Action (no wildcards)", at, a)
				}
			}
			if trust {
				// A trust policy names who may assume the role, not resources.
				if len(st.Principal) == 0 || len(st.Resource) != 0 || !slices.Equal(st.Action, []string{"sts:AssumeRole"}) {
					t.Errorf("%s: a trust statement has a Principal, sts:AssumeRole and no Resource: %+v", at, st)
				}
				continue
			}
			if len(st.Resource) == 0 || st.Principal != nil {
				t.Errorf("%s: a permission statement has a Resource and no Principal: %+v", at, st)
			}
			for _, r := range st.Resource {
				checkARN(t, at, r)
			}
		}
	}
}

// checkARN asserts that r uses the placeholders: account 123456789012,
// region eu-west-1, bucket BUCKET.
func checkARN(t *testing.T, at, r string) {
	t.Helper()
	if r == "*" {
		return
	}
	m := arnRE.FindStringSubmatch(r)
	if m == nil {
		t.Errorf("%s: resource %q is not an ARN", at, r)
		return
	}
	service, region, account, rest := m[1], m[2], m[3], m[4]
	switch service {
	case "s3":
		if region != "" || account != "" || (rest != "BUCKET" && !strings.HasPrefix(rest, "BUCKET/")) {
			t.Errorf("%s: %q: S3 ARNs name the bucket BUCKET", at, r)
		}
	case "iam":
		if region != "" || account != "123456789012" {
			t.Errorf("%s: %q: IAM ARNs have no region and account 123456789012", at, r)
		}
	default:
		if region != "eu-west-1" || account != "123456789012" {
			t.Errorf("%s: %q: want region eu-west-1 and account 123456789012", at, r)
		}
	}
}

func TestTheSluiceS3PolicyAllowsWhatTheStoreCalls(t *testing.T) {
	keys := func(m map[string]bool) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	// The EMR and EMR Serverless policies are compared with what the fakes
	// recorded (iam_fakes_test.go).
	for file, want := range map[string][]string{
		"sluice-s3.json": {"s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject"},
	} {
		if got := keys(policyActions(t, file)); !slices.Equal(got, want) {
			t.Errorf("iam/%s allows %v, want %v", file, got, want)
		}
	}
}

// statementWith returns the statements of iam/<file> allowing action.
func statementsWith(t *testing.T, file, action string) []statement {
	t.Helper()
	var out []statement
	for _, st := range readPolicy(t, file).Statement {
		if slices.Contains(st.Action, action) {
			out = append(out, st)
		}
	}
	if len(out) == 0 {
		t.Fatalf("iam/%s has no statement allowing %s", file, action)
	}
	return out
}

func TestPoliciesNameTheRolesAndResourcesOfTheSpecs(t *testing.T) {
	emr := onlyJob(t, loadSpec(t, "emr.yaml")).EMR
	srv := onlyJob(t, loadSpec(t, "emr-serverless.yaml")).EMRServerless
	role := func(name string) string { return "arn:aws:iam::123456789012:role/" + name }

	// iam:PassRole of exactly the spec's roles, each to its service.
	passed := map[string]string{}
	for _, st := range statementsWith(t, "sluice-emr.json", "iam:PassRole") {
		passed[strings.Join(st.Resource, ",")], _ = st.Condition["StringEquals"]["iam:PassedToService"].(string)
	}
	want := map[string]string{role(emr.ServiceRole): "elasticmapreduce.amazonaws.com", role(emr.InstanceProfile): "ec2.amazonaws.com"}
	if !reflect.DeepEqual(passed, want) {
		t.Errorf("sluice-emr.json passes %v, want %v", passed, want)
	}
	passed = map[string]string{}
	for _, st := range statementsWith(t, "sluice-emr-serverless.json", "iam:PassRole") {
		passed[strings.Join(st.Resource, ",")], _ = st.Condition["StringEquals"]["iam:PassedToService"].(string)
	}
	if want := map[string]string{srv.ExecutionRole: "emr-serverless.amazonaws.com"}; !reflect.DeepEqual(passed, want) {
		t.Errorf("sluice-emr-serverless.json passes %v, want %v", passed, want)
	}
	// AmazonEMRServicePolicy_v2 passes only EMR_EC2_DefaultRole: the service
	// role's extra policy passes the spec's instance role.
	st := statementsWith(t, "emr-service-role-passrole.json", "iam:PassRole")
	if len(st) != 1 || !slices.Equal(st[0].Resource, []string{role(emr.InstanceProfile)}) {
		t.Errorf("emr-service-role-passrole.json: %+v", st)
	}

	// The cluster actions are limited to clusters tagged by sluice.
	for _, a := range []string{"elasticmapreduce:DescribeCluster", "elasticmapreduce:ListSteps", "elasticmapreduce:TerminateJobFlows"} {
		for _, st := range statementsWith(t, "sluice-emr.json", a) {
			if st.Condition["Null"]["elasticmapreduce:ResourceTag/sluice:run-id"] != "false" {
				t.Errorf("%s (statement %s) is not limited to clusters tagged sluice:run-id: %v", a, st.Sid, st.Condition)
			}
		}
	}
	for _, a := range []string{"elasticmapreduce:RunJobFlow", "elasticmapreduce:AddTags"} {
		for _, st := range statementsWith(t, "sluice-emr.json", a) {
			if st.Condition["Null"]["aws:RequestTag/sluice:run-id"] != "false" {
				t.Errorf("%s (statement %s) does not require the sluice:run-id tag: %v", a, st.Sid, st.Condition)
			}
		}
	}

	// EMR Serverless: the spec's application and its job runs only.
	app := "arn:aws:emr-serverless:eu-west-1:123456789012:/applications/" + srv.ApplicationID
	for a, res := range map[string]string{
		"emr-serverless:StartJobRun": app, "emr-serverless:TagResource": app + "/jobruns/*",
		"emr-serverless:GetJobRun": app + "/jobruns/*", "emr-serverless:CancelJobRun": app + "/jobruns/*",
	} {
		for _, st := range statementsWith(t, "sluice-emr-serverless.json", a) {
			if !slices.Equal(st.Resource, []string{res}) {
				t.Errorf("%s on %v, want %s", a, st.Resource, res)
			}
		}
	}

	// The compute reads the inputs, the script and the manifest, and writes
	// the output and the logs where the specs say.
	for file, logURI := range map[string]string{"emr-instance-profile.json": emr.LogURI, "emr-serverless-execution-role.json": srv.LogURI} {
		logs := "arn:aws:s3:::BUCKET/" + strings.TrimPrefix(logURI, "s3://BUCKET/") + "*"
		for action, keys := range map[string][]string{
			"s3:GetObject":    {"data/x.csv", "jobs/hydropower_curate.py", "_sluice/jobs/r1.inputs.jsonl", "curated/2020-08-07_2PM/_SUCCESS"},
			"s3:PutObject":    {"curated/2020-08-07_2PM/part-00000-u-c000.snappy.parquet", "curated/2020-08-07_2PM/_SUCCESS", strings.TrimPrefix(logs, "arn:aws:s3:::BUCKET/")},
			"s3:DeleteObject": {"curated/2020-08-07_2PM/part-00000-u-c000.snappy.parquet"},
		} {
			for _, key := range keys {
				if !allows(statementsWith(t, file, action), "arn:aws:s3:::BUCKET/"+key) {
					t.Errorf("%s: %s is not allowed on %s", file, action, key)
				}
			}
		}
		for action, key := range map[string]string{"s3:PutObject": "data/x.csv", "s3:DeleteObject": "data/x.csv", "s3:GetObject": "_sluice/jobs/r1.json"} {
			if allows(statementsWith(t, file, action), "arn:aws:s3:::BUCKET/"+key) {
				t.Errorf("%s: %s is allowed on %s: the compute only reads inputs and manifests", file, action, key)
			}
		}
	}
}

// allows reports whether one of the statements names resource r (IAM's
// "*" wildcard; conditions aside).
func allows(sts []statement, r string) bool {
	for _, st := range sts {
		for _, pat := range st.Resource {
			re := "^" + strings.ReplaceAll(regexp.QuoteMeta(pat), `\*`, ".*") + "$"
			if regexp.MustCompile(re).MatchString(r) {
				return true
			}
		}
	}
	return false
}

// python3 returns the python3 to run. The tests fail, not skip, without
// one: the script is part of the example.
func python3(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("python3"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/python3"); err == nil {
		return "/usr/bin/python3"
	}
	t.Fatal("python3 is not installed: it is needed to check hydropower_curate.py (apt-get install python3)")
	return ""
}

// scriptDir copies the script (and the helper checker) to a temporary
// directory, so Python's bytecode never lands in the source tree.
func scriptDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"hydropower_curate.py", "testdata/check_helpers.py"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runPython(t *testing.T, dir string, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(python3(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONPATH="+dir, "PYTHONDONTWRITEBYTECODE=1")
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3 %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

func TestScriptCompiles(t *testing.T) {
	dir := scriptDir(t)
	runPython(t, dir, nil, "-m", "py_compile", "hydropower_curate.py")
	if _, err := os.Stat(filepath.Join(dir, "__pycache__")); err != nil {
		t.Errorf("py_compile wrote no bytecode: %v", err)
	}
}

func TestScriptHandlesManifestHeaderAndArguments(t *testing.T) {
	out := runPython(t, scriptDir(t), nil, "-B", "check_helpers.py", "selftest")
	if !regexp.MustCompile(`^ok [0-9]+\n$`).Match(out) {
		t.Errorf("selftest printed %q", out)
	}
}

// TestScriptAcceptsTheValuesCurateAccepts compares the script's value
// checks with curate's casts (format.CastString) on every Year and
// consumption of the shipped hydropower CSV and on edge cases. The only
// differences are the documented ones: Go-syntax forms the script refuses.
func TestScriptAcceptsTheValuesCurateAccepts(t *testing.T) {
	ints := []string{"", "0", "2020", "+5", "-0", "007", "-2147483648", "2147483647", "2147483648", "-2147483649",
		"5.0", " 5", "5 ", "1e3", "0x10", "1_000", "٣", "abc", "--1", "+"}
	floats := []string{"", "0", "14.278805574733003", "3.", ".5", "-.5e-3", "+1E+2", "1e-50", "3.4028234e38", "3.5e38", "1e39",
		"NaN", "nan", "Inf", "-Infinity", "1.5f", " 1", "1 ", ".", "e5", "1e", "abc", "0x1p-2", "1_000.5"}
	// What curate accepts only through Go's literal syntax (see the script's
	// docstring): hexadecimal floats and digit separators.
	known := map[string]bool{"0x1p-2": true, "1_000.5": true}

	f, err := os.Open("../hydropower/data/2020-08-07_2PM/hydropower-consumption.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) != 4177 || !slices.Equal(recs[0], []string{"Entity", "Code", "Year", "Hydropower (Terawatt-hours)"}) {
		t.Fatalf("the shipped CSV: %d records, header %v, %v", len(recs), recs[0], err)
	}
	for _, r := range recs[1:] {
		ints = append(ints, r[2])
		floats = append(floats, r[3])
	}

	in, err := json.Marshal(map[string][]string{"int32": ints, "float32": floats})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string][]bool
	if err := json.Unmarshal(runPython(t, scriptDir(t), in, "-B", "check_helpers.py", "cast"), &got); err != nil {
		t.Fatal(err)
	}
	differ := map[string]bool{}
	for _, c := range []struct {
		kind   schema.Type
		values []string
		script []bool
	}{{schema.Integer, ints, got["int32"]}, {schema.Real, floats, got["float32"]}} {
		if len(c.script) != len(c.values) {
			t.Fatalf("%s: %d answers for %d values", c.kind, len(c.script), len(c.values))
		}
		for i, v := range c.values {
			_, err := format.CastString(c.kind, v)
			if curate := err == nil; curate != c.script[i] {
				differ[v] = true
				if !known[v] {
					t.Errorf("%s %q: curate accepts %v, the script %v", c.kind, v, curate, c.script[i])
				}
			}
		}
	}
	for v := range known {
		if !differ[v] {
			t.Errorf("%q: the documented difference is gone: update the script's docstring and README", v)
		}
	}
}
