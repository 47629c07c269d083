package lineage

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

const specURL = "https://openlineage.io/spec/2-0-2/OpenLineage.json"

// specs holds the vendored OpenLineage schemas: a compiler that knows each
// by its $id (and nothing else: no network) and the raw documents.
type specs struct {
	c    *jsonschema.Compiler
	docs map[string]map[string]any // by $id
}

type offlineLoader struct{}

func (offlineLoader) Load(u string) (any, error) {
	return nil, fmt.Errorf("schema %s is not vendored in testdata/openlineage", u)
}

func loadSpecs(t *testing.T) *specs {
	t.Helper()
	files, err := filepath.Glob("testdata/openlineage/*.json")
	if err != nil {
		t.Fatal(err)
	}
	facets, _ := filepath.Glob("testdata/openlineage/facets/*.json")
	files = append(files, facets...)
	if len(files) < 2 {
		t.Fatalf("vendored schemas missing: %v", files)
	}
	s := &specs{c: jsonschema.NewCompiler(), docs: map[string]map[string]any{}}
	s.c.AssertFormat()
	s.c.UseLoader(offlineLoader{})
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		m, _ := doc.(map[string]any)
		id, _ := m["$id"].(string)
		if id == "" {
			t.Fatalf("%s has no $id", f)
		}
		if err := s.c.AddResource(id, doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		s.docs[id] = m
	}
	return s
}

func (s *specs) validate(t *testing.T, schemaURL string, v any) error {
	t.Helper()
	sch, err := s.c.Compile(schemaURL)
	if err != nil {
		t.Fatalf("compile %s: %v", schemaURL, err)
	}
	return sch.Validate(v)
}

// checkEvent validates an encoded event against the spec, against the
// schema its schemaURL names, and every facet in it against the schema its
// _schemaURL names, checking that the facet's key is the one that schema
// gives it. It returns the facets it checked, as "where.key".
func (s *specs) checkEvent(t *testing.T, b []byte) []string {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("event is not JSON: %v\n%s", err, b)
	}
	if err := s.validate(t, specURL, inst); err != nil {
		t.Errorf("event does not validate against %s: %v\n%s", specURL, err, b)
	}
	ev := inst.(map[string]any)
	if err := s.validate(t, ev["schemaURL"].(string), inst); err != nil {
		t.Errorf("event does not validate against its schemaURL: %v", err)
	}
	var checked []string
	check := func(where string, facets any) {
		m, ok := facets.(map[string]any)
		if !ok {
			return
		}
		for key, f := range m {
			facet, _ := f.(map[string]any)
			su, _ := facet["_schemaURL"].(string)
			if p, _ := facet["_producer"].(string); p == "" || su == "" {
				t.Errorf("%s.%s: _producer %q, _schemaURL %q: both required", where, key, p, su)
				continue
			}
			if err := s.validate(t, su, f); err != nil {
				t.Errorf("%s.%s does not validate against %s: %v", where, key, su, err)
			}
			id, frag, _ := strings.Cut(su, "#")
			props, _ := s.docs[id]["properties"].(map[string]any)
			prop, _ := props[key].(map[string]any)
			if ref, _ := prop["$ref"].(string); ref != "#"+frag {
				t.Errorf("%s.%s: its schema %s names this facet %q (got $ref %q for the key)", where, key, id, frag, ref)
			}
			checked = append(checked, where+"."+key)
		}
	}
	check("run", ev["run"].(map[string]any)["facets"])
	check("job", ev["job"].(map[string]any)["facets"])
	for _, side := range []string{"inputs", "outputs"} {
		ds, _ := ev[side].([]any)
		for _, d := range ds {
			d := d.(map[string]any)
			check(side, d["facets"])
			check(side+".inputFacets", d["inputFacets"])
			check(side+".outputFacets", d["outputFacets"])
		}
	}
	return checked
}

var (
	testTime  = time.Date(2026, 8, 7, 14, 0, 1, 123456789, time.UTC)
	testRunID = uuid.MustParse("01923f3e-7c4a-7b1e-9f00-0123456789ab")
	testJob   = Job{Namespace: "sluice", Name: "hydropower.curate",
		Facets: JobFacets{JobType: &JobTypeJobFacet{Integration: "SLUICE", JobType: "JOB"}}}
)

func must(d Dataset, err error) Dataset {
	if err != nil {
		panic(err)
	}
	return d
}

// testEvents are a START, a COMPLETE with inputs, outputs, schema and
// statistics, and a FAIL with an error message.
func testEvents(t *testing.T) map[EventType]RunEvent {
	in := must(ObjectDataset("s3://lake?region=eu-west-1", "raw/2020-08-07_2PM/hydropower-consumption.csv"))
	in.Facets.Schema = &SchemaDatasetFacet{Fields: []SchemaField{{Name: "Entity", Type: "string"}, {Name: "Year", Type: "string"}}}
	out := must(TableDataset("postgres://loader:pw@db.example:5433/lake?schema=curated", "hydropower"))
	out.Facets.Schema = &SchemaDatasetFacet{Fields: []SchemaField{{Name: "year", Type: "INTEGER"}, {Name: "consumption", Type: "REAL"}}}
	out.OutputFacets.OutputStatistics = &OutputStatisticsOutputDatasetFacet{RowCount: 4176, Size: 81234, FileCount: 1}
	parent := &ParentRunFacet{Run: ParentRun{RunID: uuid.MustParse("01923f3e-0000-7000-8000-000000000001")}, Job: ParentJob{Namespace: "sluice", Name: "hydropower.watch"}}
	return map[EventType]RunEvent{
		Start: {EventType: Start, EventTime: testTime, Job: testJob,
			Run:    Run{RunID: testRunID, Facets: RunFacets{Parent: parent, NominalTime: &NominalTimeRunFacet{NominalStartTime: testTime.Truncate(time.Hour)}}},
			Inputs: []Dataset{in}},
		Complete: {EventType: Complete, EventTime: testTime.Add(time.Minute), Job: testJob, Run: Run{RunID: testRunID},
			Inputs: []Dataset{in}, Outputs: []Dataset{out}},
		Fail: {EventType: Fail, EventTime: testTime.Add(time.Minute), Job: testJob,
			Run: Run{RunID: testRunID, Facets: RunFacets{ErrorMessage: ErrorMessage(errors.New("load hydropower: column Year: not an int"))}}},
	}
}

func TestProducedEventsValidateAgainstTheOpenLineageSchemas(t *testing.T) {
	s := loadSpecs(t)
	want := map[EventType][]string{
		Start:    {"inputs.schema", "job.jobType", "run.nominalTime", "run.parent"},
		Complete: {"inputs.schema", "job.jobType", "outputs.outputFacets.outputStatistics", "outputs.schema"},
		Fail:     {"job.jobType", "run.errorMessage"},
	}
	for typ, ev := range testEvents(t) {
		t.Run(string(typ), func(t *testing.T) {
			if err := ev.validate(); err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			got := s.checkEvent(t, b)
			slices.Sort(got)
			if !slices.Equal(got, want[typ]) {
				t.Errorf("facets checked: %v, want %v", got, want[typ])
			}
		})
	}
}

// The validator must be able to say no, or the test above proves nothing.
func TestTheSchemaCheckRejectsBrokenEvents(t *testing.T) {
	s := loadSpecs(t)
	good, err := json.Marshal(testEvents(t)[Fail])
	if err != nil {
		t.Fatal(err)
	}
	breakages := map[string]func(ev map[string]any){
		"runId not a UUID":     func(ev map[string]any) { ev["run"].(map[string]any)["runId"] = "run-1" },
		"eventTime not a time": func(ev map[string]any) { ev["eventTime"] = "yesterday" },
		"producer relative":    func(ev map[string]any) { ev["producer"] = "sluice" },
		"eventType unknown":    func(ev map[string]any) { ev["eventType"] = "DONE" },
		"job without name":     func(ev map[string]any) { delete(ev["job"].(map[string]any), "name") },
		"facet without _producer": func(ev map[string]any) {
			delete(ev["run"].(map[string]any)["facets"].(map[string]any)["errorMessage"].(map[string]any), "_producer")
		},
	}
	for name, breakIt := range breakages {
		t.Run(name, func(t *testing.T) {
			inst, _ := jsonschema.UnmarshalJSON(bytes.NewReader(good))
			breakIt(inst.(map[string]any))
			if err := s.validate(t, specURL, inst); err == nil {
				t.Errorf("the spec schema accepted an event with %s", name)
			}
		})
	}
	// A facet missing a field its own schema requires.
	var f map[string]any
	b, _ := json.Marshal(ErrorMessageRunFacet{Message: "x"})
	_ = json.Unmarshal(b, &f)
	delete(f, "programmingLanguage")
	if err := s.validate(t, errorMessageFacetURL, f); err == nil {
		t.Error("the errorMessage schema accepted a facet without programmingLanguage")
	}
}

var eventTimeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$`)

func TestEventsCarryTheRequiredFieldsWithTheRightTypes(t *testing.T) {
	cest := time.FixedZone("CEST", 2*60*60)
	for _, tc := range []struct {
		at       time.Time
		wantTime string
	}{
		{testTime, "2026-08-07T14:00:01.123Z"},
		{testTime.In(cest), "2026-08-07T16:00:01.123+02:00"},
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "2026-01-02T03:04:05.000Z"},
	} {
		ev := RunEvent{EventType: Start, EventTime: tc.at, Run: Run{RunID: NewRunID()}, Job: testJob}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			EventType, EventTime, Producer, SchemaURL string
			Run                                       struct{ RunID string }
			Job                                       struct{ Namespace, Name string }
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if got.EventTime != tc.wantTime || !eventTimeRE.MatchString(got.EventTime) {
			t.Errorf("eventTime %q, want %q (RFC 3339, milliseconds, zone)", got.EventTime, tc.wantTime)
		}
		if at, err := time.Parse(time.RFC3339, got.EventTime); err != nil || !at.Equal(tc.at.Truncate(time.Millisecond)) {
			t.Errorf("eventTime %q parses as %v, %v; want %v", got.EventTime, at, err, tc.at.Truncate(time.Millisecond))
		}
		if id, err := uuid.Parse(got.Run.RunID); err != nil || id != ev.Run.RunID || id.Version() != 7 {
			t.Errorf("runId %q: %v (want the v7 UUID %s)", got.Run.RunID, err, ev.Run.RunID)
		}
		for name, v := range map[string]string{"producer": got.Producer, "schemaURL": got.SchemaURL} {
			if u, err := url.Parse(v); err != nil || !u.IsAbs() || u.Host == "" {
				t.Errorf("%s %q is not an absolute URI", name, v)
			}
		}
		if got.EventType != "START" || got.Job.Namespace != "sluice" || got.Job.Name != "hydropower.curate" {
			t.Errorf("eventType %q, job %q/%q", got.EventType, got.Job.Namespace, got.Job.Name)
		}
	}
}

func TestFacetFieldsAreWrittenAsTheSpecNamesThem(t *testing.T) {
	ev := testEvents(t)[Fail]
	b, _ := json.Marshal(ev)
	for _, want := range []string{
		`"errorMessage":{"_producer":"https://github.com/sluicehq/sluice","_schemaURL":"https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet","message":"load hydropower: column Year: not an int","programmingLanguage":"go"}`,
		`"jobType":{"_producer":"https://github.com/sluicehq/sluice","_schemaURL":"https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet","processingType":"BATCH","integration":"SLUICE","jobType":"JOB"}`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("event lacks %s\n%s", want, b)
		}
	}
	if strings.Contains(string(b), `"inputs"`) || strings.Contains(string(b), `"outputs"`) || strings.Contains(string(b), `"nominalTime"`) {
		t.Errorf("empty inputs, outputs or facets were written: %s", b)
	}
	// A producer set by the caller is kept.
	f := OutputStatisticsOutputDatasetFacet{BaseFacet: BaseFacet{Producer: "https://example.com/p"}, RowCount: 0}
	b, _ = json.Marshal(f)
	if string(b) != `{"_producer":"https://example.com/p","_schemaURL":"https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet","rowCount":0}` {
		t.Errorf("outputStatistics: %s", b)
	}
}

func TestEventsMissingWhatTheSpecRequiresAreRefused(t *testing.T) {
	ok := testEvents(t)[Complete]
	for name, mutate := range map[string]func(*RunEvent){
		"no event type":       func(e *RunEvent) { e.EventType = "" },
		"unknown event type":  func(e *RunEvent) { e.EventType = "DONE" },
		"no time":             func(e *RunEvent) { e.EventTime = time.Time{} },
		"no run id":           func(e *RunEvent) { e.Run.RunID = uuid.Nil },
		"no job name":         func(e *RunEvent) { e.Job.Name = "" },
		"dataset without ns":  func(e *RunEvent) { e.Outputs = []Dataset{{Name: "t"}} },
		"empty error message": func(e *RunEvent) { e.Run.Facets.ErrorMessage = &ErrorMessageRunFacet{} },
		"parent without run":  func(e *RunEvent) { e.Run.Facets.Parent = &ParentRunFacet{Job: ParentJob{"a", "b"}} },
	} {
		ev := ok
		mutate(&ev)
		if err := ev.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := ok.validate(); err != nil {
		t.Errorf("valid event refused: %v", err)
	}
}
