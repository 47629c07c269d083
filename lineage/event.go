package lineage

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Producer is the URI written as the producer of events and facets whose
// Producer field is empty.
const Producer = "https://github.com/sluicehq/sluice"

// The schema URLs written: OpenLineage core spec 2-0-2 and the facet
// versions vendored in lineagetest/schemas.
const (
	runEventSchemaURL        = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
	schemaFacetURL           = "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"
	outputStatisticsFacetURL = "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet"
	errorMessageFacetURL     = "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"
	nominalTimeFacetURL      = "https://openlineage.io/spec/facets/1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet"
	parentRunFacetURL        = "https://openlineage.io/spec/facets/1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet"
	jobTypeFacetURL          = "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet"
)

const (
	eventTimeLayout = "2006-01-02T15:04:05.000Z07:00" // RFC 3339, milliseconds, zone
	// errorLanguage is the errorMessage facet's programmingLanguage, as
	// OpenLineage's own Go client writes it.
	errorLanguage = "go"
)

// EventType is the run transition an event reports.
type EventType string

// The event types: one START and one of COMPLETE, FAIL or ABORT per run,
// any number of RUNNING between.
const (
	Start    EventType = "START"
	Running  EventType = "RUNNING"
	Complete EventType = "COMPLETE"
	Fail     EventType = "FAIL"
	Abort    EventType = "ABORT"
)

// RunEvent is an OpenLineage run event. An empty Producer or SchemaURL is
// written as Producer and the spec's RunEvent schema URL; EventTime is
// written in RFC 3339 with milliseconds and its zone
// ("2026-08-07T14:00:00.123Z").
type RunEvent struct {
	EventType EventType `json:"eventType"`
	EventTime time.Time `json:"eventTime"`
	Producer  string    `json:"producer"`
	SchemaURL string    `json:"schemaURL"`
	Run       Run       `json:"run"`
	Job       Job       `json:"job"`
	Inputs    []Dataset `json:"inputs,omitempty"`
	Outputs   []Dataset `json:"outputs,omitempty"`
}

// MarshalJSON writes the event with its defaults filled in (see RunEvent).
func (e RunEvent) MarshalJSON() ([]byte, error) {
	type plain RunEvent
	if e.Producer == "" {
		e.Producer = Producer
	}
	if e.SchemaURL == "" {
		e.SchemaURL = runEventSchemaURL
	}
	return json.Marshal(struct {
		plain
		EventTime string `json:"eventTime"`
	}{plain(e), e.EventTime.Format(eventTimeLayout)})
}

// validate reports what the spec requires and the event lacks.
func (e *RunEvent) validate() error {
	var errs []error
	switch e.EventType {
	case Start, Running, Complete, Fail, Abort:
	default:
		errs = append(errs, fmt.Errorf("eventType %q is not START, RUNNING, COMPLETE, FAIL or ABORT", e.EventType))
	}
	if e.EventTime.IsZero() {
		errs = append(errs, errors.New("eventTime is not set"))
	}
	if e.Run.RunID == uuid.Nil {
		errs = append(errs, errors.New("run.runId is not set"))
	}
	if e.Job.Namespace == "" || e.Job.Name == "" {
		errs = append(errs, fmt.Errorf("job needs a namespace and a name (have %q, %q)", e.Job.Namespace, e.Job.Name))
	}
	for _, ds := range [][]Dataset{e.Inputs, e.Outputs} {
		for _, d := range ds {
			if d.Namespace == "" || d.Name == "" {
				errs = append(errs, fmt.Errorf("dataset needs a namespace and a name (have %q, %q)", d.Namespace, d.Name))
			}
		}
	}
	if f := e.Run.Facets.ErrorMessage; f != nil && f.Message == "" {
		errs = append(errs, errors.New("errorMessage facet has no message"))
	}
	if f := e.Run.Facets.Parent; f != nil && (f.Run.RunID == uuid.Nil || f.Job.Namespace == "" || f.Job.Name == "") {
		errs = append(errs, errors.New("parent facet needs the parent's runId, job namespace and job name"))
	}
	return errors.Join(errs...)
}

// NewRunID returns a new run ID: a UUIDv7, as OpenLineage recommends, so
// IDs sort by start time.
func NewRunID() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.New()
	}
	return id
}

// Run identifies the run an event is about. All events of one run carry
// the same RunID.
type Run struct {
	RunID  uuid.UUID `json:"runId"`
	Facets RunFacets `json:"facets,omitzero"`
}

// RunFacets are the run facets this package knows; nil ones are left out.
type RunFacets struct {
	// ErrorMessage says why a run failed; set it on FAIL events.
	ErrorMessage *ErrorMessageRunFacet `json:"errorMessage,omitempty"`
	NominalTime  *NominalTimeRunFacet  `json:"nominalTime,omitempty"`
	Parent       *ParentRunFacet       `json:"parent,omitempty"`
}

// Job names the job a run belongs to.
type Job struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Facets    JobFacets `json:"facets,omitzero"`
}

// JobFacets are the job facets this package knows; nil ones are left out.
type JobFacets struct {
	JobType *JobTypeJobFacet `json:"jobType,omitempty"`
}

// Dataset is an input or output of a run; make one with ObjectDataset or
// TableDataset so that its namespace and name follow the naming
// conventions.
type Dataset struct {
	Namespace string        `json:"namespace"`
	Name      string        `json:"name"`
	Facets    DatasetFacets `json:"facets,omitzero"`
	// OutputFacets belong on outputs only. (No input facets are needed
	// yet; an InputFacets field would go beside it.)
	OutputFacets OutputFacets `json:"outputFacets,omitzero"`
}

// DatasetFacets are the dataset facets this package knows; nil ones are
// left out.
type DatasetFacets struct {
	Schema *SchemaDatasetFacet `json:"schema,omitempty"`
}

// OutputFacets are the output dataset facets this package knows; nil ones
// are left out.
type OutputFacets struct {
	OutputStatistics *OutputStatisticsOutputDatasetFacet `json:"outputStatistics,omitempty"`
}

// BaseFacet holds the two fields every facet carries. Left empty, they are
// written as Producer and the schema URL of the facet's vendored version.
type BaseFacet struct {
	Producer  string `json:"_producer"`
	SchemaURL string `json:"_schemaURL"`
}

func (b BaseFacet) or(schemaURL string) BaseFacet {
	if b.Producer == "" {
		b.Producer = Producer
	}
	if b.SchemaURL == "" {
		b.SchemaURL = schemaURL
	}
	return b
}

// SchemaDatasetFacet ("schema") lists a dataset's columns.
type SchemaDatasetFacet struct {
	BaseFacet
	Fields []SchemaField `json:"fields"`
}

// SchemaField is one column: its name and its type as the dataset's
// system names it (e.g. "BIGINT", "int32").
type SchemaField struct {
	Name        string `json:"name"`
	Type        string `json:"type,omitempty"`
	Description string `json:"description,omitempty"`
}

// MarshalJSON writes the facet with its base fields filled in.
func (f SchemaDatasetFacet) MarshalJSON() ([]byte, error) {
	type plain SchemaDatasetFacet
	f.BaseFacet = f.BaseFacet.or(schemaFacetURL)
	if f.Fields == nil {
		f.Fields = []SchemaField{}
	}
	return json.Marshal(plain(f))
}

// OutputStatisticsOutputDatasetFacet ("outputStatistics") says how much a
// run wrote to an output. Size (bytes) and FileCount are left out when
// zero, RowCount when nil (a job run's record does not count the rows its
// outputs hold: better none than a wrong 0); Rows makes one.
type OutputStatisticsOutputDatasetFacet struct {
	BaseFacet
	RowCount  *int64 `json:"rowCount,omitempty"`
	Size      int64  `json:"size,omitempty"`
	FileCount int64  `json:"fileCount,omitempty"`
}

// Rows returns a RowCount of n.
func Rows(n int64) *int64 { return &n }

// MarshalJSON writes the facet with its base fields filled in.
func (f OutputStatisticsOutputDatasetFacet) MarshalJSON() ([]byte, error) {
	type plain OutputStatisticsOutputDatasetFacet
	f.BaseFacet = f.BaseFacet.or(outputStatisticsFacetURL)
	return json.Marshal(plain(f))
}

// ErrorMessageRunFacet ("errorMessage") says why a run failed. An empty
// ProgrammingLanguage is written as "go".
type ErrorMessageRunFacet struct {
	BaseFacet
	Message             string `json:"message"`
	ProgrammingLanguage string `json:"programmingLanguage"`
	StackTrace          string `json:"stackTrace,omitempty"`
}

// ErrorMessage returns the errorMessage facet for err.
func ErrorMessage(err error) *ErrorMessageRunFacet {
	return &ErrorMessageRunFacet{Message: err.Error()}
}

// MarshalJSON writes the facet with its base fields filled in.
func (f ErrorMessageRunFacet) MarshalJSON() ([]byte, error) {
	type plain ErrorMessageRunFacet
	f.BaseFacet = f.BaseFacet.or(errorMessageFacetURL)
	if f.ProgrammingLanguage == "" {
		f.ProgrammingLanguage = errorLanguage
	}
	return json.Marshal(plain(f))
}

// NominalTimeRunFacet ("nominalTime") is the time a scheduled run was
// meant for (its schedule slot), as opposed to when it ran.
type NominalTimeRunFacet struct {
	BaseFacet
	NominalStartTime time.Time `json:"nominalStartTime"`
	NominalEndTime   time.Time `json:"nominalEndTime,omitzero"`
}

// MarshalJSON writes the facet with its base fields filled in.
func (f NominalTimeRunFacet) MarshalJSON() ([]byte, error) {
	type plain NominalTimeRunFacet
	f.BaseFacet = f.BaseFacet.or(nominalTimeFacetURL)
	return json.Marshal(plain(f))
}

// ParentRunFacet ("parent") names the run that started this one, such as
// the run whose output triggered a transient job.
type ParentRunFacet struct {
	BaseFacet
	Run ParentRun `json:"run"`
	Job ParentJob `json:"job"`
}

// ParentRun identifies the parent run.
type ParentRun struct {
	RunID uuid.UUID `json:"runId"`
}

// ParentJob names the parent run's job.
type ParentJob struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

// MarshalJSON writes the facet with its base fields filled in.
func (f ParentRunFacet) MarshalJSON() ([]byte, error) {
	type plain ParentRunFacet
	f.BaseFacet = f.BaseFacet.or(parentRunFacetURL)
	return json.Marshal(plain(f))
}

// JobTypeJobFacet ("jobType") says what kind of job this is. Empty
// ProcessingType is written as "BATCH"; Integration is e.g. "SLUICE" and
// JobType e.g. "LOAD" or "JOB".
type JobTypeJobFacet struct {
	BaseFacet
	ProcessingType string `json:"processingType"`
	Integration    string `json:"integration"`
	JobType        string `json:"jobType,omitempty"`
}

// MarshalJSON writes the facet with its base fields filled in.
func (f JobTypeJobFacet) MarshalJSON() ([]byte, error) {
	type plain JobTypeJobFacet
	f.BaseFacet = f.BaseFacet.or(jobTypeFacetURL)
	if f.ProcessingType == "" {
		f.ProcessingType = "BATCH"
	}
	return json.Marshal(plain(f))
}
