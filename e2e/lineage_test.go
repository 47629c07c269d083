package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/lineage/lineagetest"
)

// TestTheDemosOpenLineageEventsFollowTheSpecAndNameItsDatasets runs `sluice
// demo` with SLUICE_LINEAGE set to a file and checks its events against
// the official OpenLineage schemas: one load (START, COMPLETE with the 100
// rows) reading the raw object from the local store and writing table
// posts, and one job run (START, COMPLETE) reading the CSV and writing the
// curated folder, each pair sharing its run id.
func TestTheDemosOpenLineageEventsFollowTheSpecAndNameItsDatasets(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "d")
	file := filepath.Join(t.TempDir(), "lineage.ndjson")
	mustRun(t, []string{"SLUICE_LINEAGE=file://" + file}, "demo", "--data-dir="+dataDir)
	events, problems := lineagetest.CheckFile(file)
	for _, p := range problems {
		t.Errorf("OpenLineage: %s", p)
	}
	if len(events) != 4 {
		t.Fatalf("%d events, want 4 (a load's START and COMPLETE, a job run's START and COMPLETE)", len(events))
	}
	type dataset struct {
		Namespace, Name string
		Facets          map[string]json.RawMessage
		OutputFacets    map[string]map[string]any
	}
	type event struct {
		EventType string
		Run       struct{ RunID string }
		Job       struct{ Namespace, Name string }
		Inputs    []dataset
		Outputs   []dataset
	}
	byJob := map[string][]event{}
	for _, raw := range events {
		b, _ := json.Marshal(raw)
		var e event
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		if e.Job.Namespace != "sluice/demo" {
			t.Errorf("job namespace %q, want sluice/demo", e.Job.Namespace)
		}
		byJob[e.Job.Name] = append(byJob[e.Job.Name], e)
	}
	lake := filepath.Join(dataDir, "lake")
	check := func(job, input, outNS, outName string) []event {
		t.Helper()
		evs := byJob[job]
		if len(evs) != 2 || evs[0].EventType != "START" || evs[1].EventType != "COMPLETE" || evs[0].Run.RunID != evs[1].Run.RunID {
			t.Fatalf("%s: events %+v, want START then COMPLETE of one run", job, evs)
		}
		for _, e := range evs {
			if len(e.Inputs) != 1 || e.Inputs[0].Namespace != "file" || !strings.HasPrefix(e.Inputs[0].Name, input) {
				t.Errorf("%s %s: inputs %+v, want namespace file and a name under %s", job, e.EventType, e.Inputs, input)
			}
			if len(e.Outputs) != 1 || e.Outputs[0].Namespace != outNS || e.Outputs[0].Name != outName {
				t.Errorf("%s %s: outputs %+v, want %s %s", job, e.EventType, e.Outputs, outNS, outName)
			}
			if len(e.Outputs) == 1 && e.Outputs[0].Facets["schema"] == nil {
				t.Errorf("%s %s: the output has no schema facet", job, e.EventType)
			}
		}
		return evs
	}
	load := check("load.posts", filepath.Join(lake, "raw/posts/"), "sqlite:file://"+filepath.Join(dataDir, "warehouse.db"), "posts")
	if stats := load[1].Outputs[0].OutputFacets["outputStatistics"]; stats == nil || stats["rowCount"] != float64(100) {
		t.Errorf("the load's COMPLETE has outputStatistics %v, want rowCount 100", stats)
	}
	run := check("job.hydropower", filepath.Join(lake, "data/2020-08-07_2PM/hydropower-consumption.csv"), "file", filepath.Join(lake, "curated/2020-08-07_2PM"))
	if stats := run[1].Outputs[0].OutputFacets["outputStatistics"]; stats == nil || stats["fileCount"] != float64(1) || stats["size"] == nil {
		t.Errorf("the job run's COMPLETE has outputStatistics %v, want fileCount 1 and a size", stats)
	}
	runs := runs(t, dataDir)
	if len(runs) != 1 || run[0].Run.RunID != runs[0].ID {
		t.Errorf("the job run's OpenLineage run id %s is not its sluice run id %v", run[0].Run.RunID, runs)
	}
}
