package lineagetest_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/lineage/lineagetest"
)

// complete is a COMPLETE event as package lineage writes it.
const complete = `{"eventType":"COMPLETE","producer":"https://github.com/sluicehq/sluice","schemaURL":"https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",` +
	`"run":{"runId":"01923f3e-7c4a-7b1e-9f00-0123456789ab"},` +
	`"job":{"namespace":"sluice","name":"hydropower.curate","facets":{"jobType":{"_producer":"https://github.com/sluicehq/sluice","_schemaURL":"https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet","processingType":"BATCH","integration":"SLUICE","jobType":"JOB"}}},` +
	`"inputs":[{"namespace":"s3://lake","name":"raw/hydropower-consumption.csv","facets":{"schema":{"_producer":"https://github.com/sluicehq/sluice","_schemaURL":"https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet","fields":[{"name":"Entity","type":"string"}]}}}],` +
	`"outputs":[{"namespace":"postgres://db.example:5433","name":"lake.curated.hydropower","outputFacets":{"outputStatistics":{"_producer":"https://github.com/sluicehq/sluice","_schemaURL":"https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet","rowCount":4176,"size":81234,"fileCount":1}}}],` +
	`"eventTime":"2026-08-07T14:01:01.123Z"}`

func TestAValidEventHasNoProblemsAndItsFacetsAreListed(t *testing.T) {
	r := lineagetest.Check([]byte(complete))
	if r.Problems != nil {
		t.Errorf("problems: %v", r.Problems)
	}
	want := []string{"inputs.schema", "job.jobType", "outputs.outputFacets.outputStatistics"}
	if !slices.Equal(r.Facets, want) {
		t.Errorf("facets %v, want %v", r.Facets, want)
	}
	if p := lineagetest.CheckEvent([]byte(complete)); p != nil {
		t.Errorf("CheckEvent: %v", p)
	}
}

func TestEachBrokenEventIsAProblemSayingWhere(t *testing.T) {
	for _, tc := range []struct {
		name, old, new string
		want           string // in some problem
	}{
		{"not JSON", complete, `{"eventType":`, "not JSON"},
		{"trailing data", complete, complete + ` {}`, "not JSON"},
		{"an array", complete, `[1,2]`, "not an object"},
		{"null", complete, `null`, "not an object"},
		{"empty object", complete, `{}`, "run.runId missing"},
		{"runId as a URN", `"runId":"`, `"runId":"urn:uuid:`, "run.runId"},
		{"runId a number", `"runId":"01923f3e-7c4a-7b1e-9f00-0123456789ab"`, `"runId":7`, "run.runId 7"},
		{"eventTime without zone", `"2026-08-07T14:01:01.123Z"`, `"2026-08-07T14:01:01.123"`, "eventTime"},
		{"eventType lower case", `"COMPLETE"`, `"complete"`, `eventType "complete"`},
		{"producer relative", `"producer":"https://github.com/sluicehq/sluice"`, `"producer":"sluice"`, `producer "sluice"`},
		{"schemaURL unknown", `2-0-2/OpenLineage.json#/$defs/RunEvent`, `2-0-2/OpenLineage.json#/$defs/Nothing`, "names no vendored schema"},
		{"output without namespace", `"namespace":"postgres://db.example:5433"`, `"namespace":""`, `outputs[0].namespace ""`},
		{"job without name", `"name":"hydropower.curate"`, `"nom":"x"`, "job.name missing"},
		{"facet producer relative", `{"_producer":"https://github.com/sluicehq/sluice","_schemaURL":"https://openlineage.io/spec/facets/2-0-4`, `{"_producer":"me","_schemaURL":"https://openlineage.io/spec/facets/2-0-4`, `job.facets.jobType._producer "me"`},
		{"facet schema not vendored", `facets/1-0-2/OutputStatistics`, `facets/1-0-1/OutputStatistics`, "outputs[0].outputFacets.outputStatistics._schemaURL"},
		{"facet under another key", `"outputStatistics":{`, `"stats":{`, `"stats"`},
		{"facet breaking its schema", `"rowCount":4176`, `"rowCount":"many"`, "outputs[0].outputFacets.outputStatistics does not validate"},
		{"facets not an object", `"facets":{"jobType"`, `"facets":[],"x":{"jobType"`, "job.facets [] (a []interface {}): want an object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(complete, tc.old) {
				t.Fatalf("the valid event lacks %s", tc.old)
			}
			b := strings.Replace(complete, tc.old, tc.new, 1)
			p := lineagetest.CheckEvent([]byte(b))
			if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, tc.want) }) {
				t.Errorf("problems %q, want one saying %q", p, tc.want)
			}
		})
	}
}

func TestValidateUsesOnlyVendoredSchemas(t *testing.T) {
	urls := lineagetest.SchemaURLs()
	for _, u := range []string{lineagetest.SpecURL, lineagetest.SpecURL + "#/$defs/RunEvent",
		"https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"} {
		if _, ok := slices.BinarySearch(urls, u); !ok {
			t.Errorf("%s not among the vendored schema URLs %v", u, urls)
		}
	}
	err := lineagetest.Validate("https://openlineage.io/spec/facets/1-0-0/ColumnLineageDatasetFacet.json", map[string]any{})
	if err == nil || !strings.Contains(err.Error(), "not vendored") {
		t.Errorf("Validate against an unvendored schema: %v", err)
	}
	if err := lineagetest.Validate(lineagetest.SpecURL, map[string]any{"eventTime": "now"}); err == nil {
		t.Error("the spec accepted an event with nothing but a bad eventTime")
	}
}

func TestCheckFileNamesTheLineOfEachProblem(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.ndjson")
	broken := strings.Replace(complete, `"runId":"01923f3e`, `"runId":"zz923f3e`, 1)
	content := complete + "\n" + broken + "\n\n" + complete
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	events, problems := lineagetest.CheckFile(path)
	if len(events) != 3 || events[1]["eventType"] != "COMPLETE" {
		t.Errorf("%d events, want 3: %v", len(events), events)
	}
	for _, want := range []string{path + ":4: the last line has no newline", path + ":2: run.runId", path + ":3: blank line"} {
		if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, want) }) {
			t.Errorf("problems %q, want one starting %q", problems, want)
		}
	}
	if slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, path+":1:") }) {
		t.Errorf("problems on the valid line 1: %q", problems)
	}

	good := filepath.Join(dir, "good.ndjson")
	if err := os.WriteFile(good, []byte(complete+"\n"+complete+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if events, problems := lineagetest.CheckFile(good); len(events) != 2 || problems != nil {
		t.Errorf("valid file: %d events, problems %q", len(events), problems)
	}
	if events, problems := lineagetest.CheckFile(filepath.Join(dir, "absent.ndjson")); events != nil || len(problems) != 1 {
		t.Errorf("absent file: %v, %q", events, problems)
	}
}

// Check is called from many goroutines at once (run with -race).
func TestCheckIsSafeForConcurrentUse(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if p := lineagetest.CheckEvent([]byte(complete)); p != nil {
				t.Errorf("problems: %v", p)
			}
		})
	}
	wg.Wait()
}

func FuzzCheckEvent(f *testing.F) {
	for _, s := range []string{complete, `{}`, `[]`, `null`, `{"run":[],"job":1,"inputs":{}}`, `{"inputs":[1,{"facets":{"a":1}}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := lineagetest.Check(b) // must not panic
		if r.Problems == nil && !strings.HasPrefix(strings.TrimSpace(string(b)), "{") {
			t.Errorf("no problems with %q", b)
		}
	})
}
