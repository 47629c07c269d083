// Package lineagetest checks OpenLineage run events against the official
// OpenLineage JSON schemas, offline. It is for tests only: the tests of
// package lineage use it on the events that package encodes, and end-to-end
// tests use it on the NDJSON file a real sluice run wrote. No sluice
// command imports it, so it (and its JSON Schema validator) is never linked
// into the sluice binary.
//
// The schemas are the OpenLineage spec 2-0-2 and the facet schema versions
// sluice writes, vendored unchanged in schemas/ (see schemas/README.md for
// their source and license) and embedded. They are registered under their
// $id and compiled once, on first use; a schema URL that names no vendored
// schema is a problem, never a download.
//
// Every function is safe for concurrent use.
package lineagetest

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// SpecURL is the $id of the vendored core spec, OpenLineage.json 2-0-2. An
// event is validated against it as a whole (its root is one of RunEvent,
// DatasetEvent, JobEvent), besides the schema its own schemaURL names.
const SpecURL = "https://openlineage.io/spec/2-0-2/OpenLineage.json"

//go:embed schemas/*.json schemas/facets/*.json
var schemaFiles embed.FS

// vendored is the compiled schemas: every vendored document under its $id
// and every one of its $defs under $id#/$defs/Name, which is the form of
// the schemaURL and _schemaURL values OpenLineage producers write.
type vendored struct {
	schemas map[string]*jsonschema.Schema
	docs    map[string]map[string]any // raw documents, by $id
}

var (
	loadOnce sync.Once
	loaded   *vendored
	loadErr  error
)

// offlineLoader refuses every URL: a $ref to a schema that is not vendored
// fails to compile instead of being fetched.
type offlineLoader struct{}

func (offlineLoader) Load(u string) (any, error) {
	return nil, fmt.Errorf("schema %s is not vendored in lineagetest/schemas", u)
}

func load() (*vendored, error) {
	loadOnce.Do(func() { loaded, loadErr = compile(schemaFiles) })
	return loaded, loadErr
}

func compile(fsys fs.FS) (*vendored, error) {
	files, _ := fs.Glob(fsys, "schemas/*.json")
	facets, _ := fs.Glob(fsys, "schemas/facets/*.json")
	files = append(files, facets...)
	if len(files) < 2 {
		return nil, fmt.Errorf("lineagetest: vendored schemas missing: %v", files)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.UseLoader(offlineLoader{})
	v := &vendored{schemas: map[string]*jsonschema.Schema{}, docs: map[string]map[string]any{}}
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f)
		if err != nil {
			return nil, fmt.Errorf("lineagetest: %w", err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("lineagetest: %s: %w", f, err)
		}
		m, _ := doc.(map[string]any)
		id, _ := m["$id"].(string)
		if id == "" {
			return nil, fmt.Errorf("lineagetest: %s has no $id", f)
		}
		if err := c.AddResource(id, doc); err != nil {
			return nil, fmt.Errorf("lineagetest: %s: %w", f, err)
		}
		v.docs[id] = m
	}
	for id, doc := range v.docs {
		urls := []string{id}
		defs, _ := doc["$defs"].(map[string]any)
		for name := range defs {
			urls = append(urls, id+"#/$defs/"+name)
		}
		for _, u := range urls {
			sch, err := c.Compile(u)
			if err != nil {
				return nil, fmt.Errorf("lineagetest: compile %s: %w", u, err)
			}
			v.schemas[u] = sch
		}
	}
	return v, nil
}

// SchemaURLs returns, sorted, the schema URLs the vendored schemas answer
// to: each document's $id and each of its $defs as $id#/$defs/Name.
func SchemaURLs() []string {
	v, err := load()
	if err != nil {
		return nil
	}
	urls := make([]string, 0, len(v.schemas))
	for u := range v.schemas {
		urls = append(urls, u)
	}
	slices.Sort(urls)
	return urls
}

// Validate validates doc, a decoded JSON value (as encoding/json or
// jsonschema.UnmarshalJSON give it), against the vendored schema that
// schemaURL names. It is an error if schemaURL names none.
func Validate(schemaURL string, doc any) error {
	v, err := load()
	if err != nil {
		return err
	}
	sch, ok := v.schemas[schemaURL]
	if !ok {
		return fmt.Errorf("schema %s is not vendored in lineagetest/schemas", schemaURL)
	}
	return sch.Validate(doc)
}

// Report is what Check found in one event.
type Report struct {
	// Facets are the facets validated against the schema their _schemaURL
	// names, sorted, as where.key: "run.errorMessage", "job.jobType",
	// "inputs.schema", "outputs.outputFacets.outputStatistics".
	Facets []string
	// Problems are schema violations and failed direct checks, one
	// sentence each; empty when the event is valid.
	Problems []string
}

// CheckEvent checks one encoded OpenLineage run event and returns the
// problems it finds, nil when there are none. See Check for what is checked.
func CheckEvent(b []byte) []string {
	return Check(b).Problems
}

// Check checks one encoded OpenLineage run event:
//
//   - it validates against SpecURL and against the vendored schema its
//     schemaURL names;
//   - every facet (run, job, and each input's and output's facets,
//     inputFacets, outputFacets) has _producer and _schemaURL, validates
//     against the vendored schema its _schemaURL names, and sits under the
//     key that schema gives it (an errorMessage facet under "errorMessage");
//   - directly, not trusting the validator's format checks: eventType is
//     one of the spec's six (the spec leaves it optional; sluice always
//     writes it), eventTime is an RFC 3339 time with a zone, run.runId is a
//     UUID in its canonical 36-character form, producer and every
//     _producer are absolute URIs with a host, job and every dataset have
//     a non-empty namespace and name.
//
// Malformed input is a problem, never a panic.
func Check(b []byte) Report {
	var r Report
	problemf := func(format string, args ...any) {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
	v, err := load()
	if err != nil {
		problemf("%v", err)
		return r
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		problemf("event is not JSON: %v", err)
		return r
	}
	ev, ok := inst.(map[string]any)
	if !ok {
		problemf("event is a JSON %T, not an object", inst)
		return r
	}

	// The schemas.
	if err := v.schemas[SpecURL].Validate(inst); err != nil {
		problemf("event does not validate against %s: %v", SpecURL, err)
	}
	schemaURL, _ := ev["schemaURL"].(string)
	if sch, ok := v.schemas[schemaURL]; !ok {
		problemf("schemaURL %q names no vendored schema", schemaURL)
	} else if err := sch.Validate(inst); err != nil {
		problemf("event does not validate against its schemaURL %s: %v", schemaURL, err)
	}

	// The direct checks.
	switch t, _ := ev["eventType"].(string); t {
	case "START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER":
	default:
		problemf("eventType %s: want START, RUNNING, COMPLETE, ABORT, FAIL or OTHER", show(ev["eventType"]))
	}
	if s, ok := ev["eventTime"].(string); !ok {
		problemf("eventTime %s: want an RFC 3339 time", show(ev["eventTime"]))
	} else if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
		problemf("eventTime %q is not an RFC 3339 time with a zone: %v", s, err)
	}
	if !absoluteURI(ev["producer"]) {
		problemf("producer %s is not an absolute URI", show(ev["producer"]))
	}
	run, ok := ev["run"].(map[string]any)
	if !ok {
		problemf("run %s: want an object", show(ev["run"]))
	}
	if id, ok := run["runId"].(string); !ok || len(id) != 36 || uuid.Validate(id) != nil {
		problemf("run.runId %s is not a UUID (8-4-4-4-12 hex digits)", show(run["runId"]))
	}
	job, ok := ev["job"].(map[string]any)
	if !ok {
		problemf("job %s: want an object", show(ev["job"]))
	}
	named := func(where string, m map[string]any) {
		for _, k := range []string{"namespace", "name"} {
			if s, _ := m[k].(string); s == "" {
				problemf("%s.%s %s: want a non-empty string", where, k, show(m[k]))
			}
		}
	}
	named("job", job)

	// The facets.
	// check checks the facets at where (as "inputs[0].facets"), naming
	// them in Report.Facets as name.key (as "inputs.schema").
	check := func(where, name string, facets any) {
		m, ok := facets.(map[string]any)
		if !ok {
			if facets != nil {
				problemf("%s %s: want an object", where, show(facets))
			}
			return
		}
		for _, key := range slices.Sorted(maps.Keys(m)) {
			at := where + "." + key
			facet, ok := m[key].(map[string]any)
			if !ok {
				problemf("%s %s: want an object", at, show(m[key]))
				continue
			}
			if !absoluteURI(facet["_producer"]) {
				problemf("%s._producer %s is not an absolute URI", at, show(facet["_producer"]))
			}
			su, _ := facet["_schemaURL"].(string)
			sch, ok := v.schemas[su]
			if !ok {
				problemf("%s._schemaURL %s names no vendored schema", at, show(facet["_schemaURL"]))
				continue
			}
			if err := sch.Validate(facet); err != nil {
				problemf("%s does not validate against %s: %v", at, su, err)
			}
			id, frag, _ := strings.Cut(su, "#")
			props, _ := v.docs[id]["properties"].(map[string]any)
			prop, _ := props[key].(map[string]any)
			if ref, _ := prop["$ref"].(string); ref != "#"+frag {
				problemf("%s: its schema %s does not name this facet %q (the key's $ref is %q)", at, id, key, ref)
			}
			r.Facets = append(r.Facets, name+"."+key)
		}
	}
	check("run.facets", "run", run["facets"])
	check("job.facets", "job", job["facets"])
	for _, side := range []string{"inputs", "outputs"} {
		ds, ok := ev[side].([]any)
		if !ok && ev[side] != nil {
			problemf("%s %s: want an array", side, show(ev[side]))
		}
		for i, d := range ds {
			where := fmt.Sprintf("%s[%d]", side, i)
			d, ok := d.(map[string]any)
			if !ok {
				problemf("%s: want an object", where)
				continue
			}
			named(where, d)
			check(where+".facets", side, d["facets"])
			check(where+".inputFacets", side+".inputFacets", d["inputFacets"])
			check(where+".outputFacets", side+".outputFacets", d["outputFacets"])
		}
	}
	slices.Sort(r.Facets)
	return r
}

// CheckFile reads an NDJSON file of OpenLineage run events, one per line as
// lineage's file emitter writes them, and checks each with Check. It
// returns the events that are JSON objects, decoded as
// jsonschema.UnmarshalJSON decodes them (numbers are json.Number), in file
// order, and the problems, each prefixed with path:line. A file that cannot
// be read, a blank line and a last line without its newline are problems; a
// file with no events is not (callers count the events they expect).
func CheckFile(path string) ([]map[string]any, []string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, []string{err.Error()}
	}
	var (
		events   []map[string]any
		problems []string
	)
	lines := bytes.Split(b, []byte("\n"))
	if last := len(lines) - 1; len(lines[last]) == 0 {
		lines = lines[:last]
	} else {
		problems = append(problems, fmt.Sprintf("%s:%d: the last line has no newline", path, len(lines)))
	}
	for i, line := range lines {
		if len(bytes.TrimSpace(line)) == 0 {
			problems = append(problems, fmt.Sprintf("%s:%d: blank line", path, i+1))
			continue
		}
		for _, p := range CheckEvent(line) {
			problems = append(problems, fmt.Sprintf("%s:%d: %s", path, i+1, p))
		}
		if inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(line)); err == nil {
			if ev, ok := inst.(map[string]any); ok {
				events = append(events, ev)
			}
		}
	}
	return events, problems
}

func absoluteURI(v any) bool {
	s, ok := v.(string)
	if !ok {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.IsAbs() && u.Host != ""
}

// show renders a value for a problem: strings quoted, absence said.
func show(v any) string {
	switch v := v.(type) {
	case nil:
		return "missing"
	case string:
		return fmt.Sprintf("%q", v)
	default:
		return fmt.Sprintf("%v (a %T)", v, v)
	}
}
