package lineage

import (
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/lineage/lineagetest"
)

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
	out.OutputFacets.OutputStatistics = &OutputStatisticsOutputDatasetFacet{RowCount: Rows(4176), Size: 81234, FileCount: 1}
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
			r := lineagetest.Check(b)
			for _, p := range r.Problems {
				t.Errorf("%s\n%s", p, b)
			}
			if !slices.Equal(r.Facets, want[typ]) {
				t.Errorf("facets checked: %v, want %v", r.Facets, want[typ])
			}
		})
	}
}

// The validator must be able to say no, or the test above proves nothing.
func TestTheSchemaCheckRejectsBrokenEvents(t *testing.T) {
	good, err := json.Marshal(testEvents(t)[Fail])
	if err != nil {
		t.Fatal(err)
	}
	if p := lineagetest.CheckEvent(good); p != nil {
		t.Fatalf("the unbroken event has problems: %v", p)
	}
	decode := func() map[string]any {
		var ev map[string]any
		if err := json.Unmarshal(good, &ev); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	errorFacet := func(ev map[string]any) map[string]any {
		return ev["run"].(map[string]any)["facets"].(map[string]any)["errorMessage"].(map[string]any)
	}
	// Each of these the spec schema itself refuses, and so the checker.
	breakages := map[string]func(ev map[string]any){
		"runId not a UUID":        func(ev map[string]any) { ev["run"].(map[string]any)["runId"] = "run-1" },
		"eventTime not a time":    func(ev map[string]any) { ev["eventTime"] = "yesterday" },
		"producer relative":       func(ev map[string]any) { ev["producer"] = "sluice" },
		"eventType unknown":       func(ev map[string]any) { ev["eventType"] = "DONE" },
		"job without name":        func(ev map[string]any) { delete(ev["job"].(map[string]any), "name") },
		"facet without _producer": func(ev map[string]any) { delete(errorFacet(ev), "_producer") },
	}
	for name, breakIt := range breakages {
		t.Run(name, func(t *testing.T) {
			ev := decode()
			breakIt(ev)
			if err := lineagetest.Validate(lineagetest.SpecURL, ev); err == nil {
				t.Errorf("the spec schema accepted an event with %s", name)
			}
			b, _ := json.Marshal(ev)
			if p := lineagetest.CheckEvent(b); len(p) == 0 {
				t.Errorf("the checker accepted an event with %s", name)
			}
		})
	}
	// Each of these the spec schema accepts; the checker's own checks refuse.
	for name, breakIt := range map[string]func(ev map[string]any){
		"facet under another key": func(ev map[string]any) {
			facets := ev["run"].(map[string]any)["facets"].(map[string]any)
			facets["error"] = facets["errorMessage"]
			delete(facets, "errorMessage")
		},
		"facet schema not vendored": func(ev map[string]any) {
			errorFacet(ev)["_schemaURL"] = "https://openlineage.io/spec/facets/9-9-9/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"
		},
		"facet invalid for its own schema": func(ev map[string]any) { delete(errorFacet(ev), "programmingLanguage") },
		"no eventType":                     func(ev map[string]any) { delete(ev, "eventType") },
	} {
		t.Run(name, func(t *testing.T) {
			ev := decode()
			breakIt(ev)
			b, _ := json.Marshal(ev)
			if p := lineagetest.CheckEvent(b); len(p) == 0 {
				t.Errorf("the checker accepted an event with %s", name)
			}
		})
	}
	// A facet missing a field its own schema requires.
	var f map[string]any
	b, _ := json.Marshal(ErrorMessageRunFacet{Message: "x"})
	_ = json.Unmarshal(b, &f)
	delete(f, "programmingLanguage")
	if err := lineagetest.Validate(errorMessageFacetURL, f); err == nil {
		t.Error("the errorMessage schema accepted a facet without programmingLanguage")
	}
}

// Every schema URL the package writes names a vendored schema.
func TestEverySchemaURLWrittenIsVendored(t *testing.T) {
	urls := lineagetest.SchemaURLs()
	for _, u := range []string{runEventSchemaURL, schemaFacetURL, outputStatisticsFacetURL, errorMessageFacetURL,
		nominalTimeFacetURL, parentRunFacetURL, jobTypeFacetURL} {
		if _, ok := slices.BinarySearch(urls, u); !ok {
			t.Errorf("%s is not vendored in lineagetest/schemas", u)
		}
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
		for _, p := range lineagetest.CheckEvent(b) {
			t.Error(p)
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
	f := OutputStatisticsOutputDatasetFacet{BaseFacet: BaseFacet{Producer: "https://example.com/p"}, RowCount: Rows(0)}
	b, _ = json.Marshal(f)
	if string(b) != `{"_producer":"https://example.com/p","_schemaURL":"https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet","rowCount":0}` {
		t.Errorf("outputStatistics: %s", b)
	}
	// Rows nobody counted are left out, not written as 0.
	b, _ = json.Marshal(OutputStatisticsOutputDatasetFacet{FileCount: 2})
	if strings.Contains(string(b), "rowCount") || !strings.Contains(string(b), `"fileCount":2`) {
		t.Errorf("outputStatistics without rows: %s", b)
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
