package pipeline

import (
	"bytes"
	"fmt"
	"path"
	"strings"
	"text/template"
	"text/template/parse"
	"time"

	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/format"
	"github.com/sluicehq/sluice/warehouse/driver"
)

// Defaults applied by Parse when a key is absent.
const (
	DefaultTimeout           = 30 * time.Second
	DefaultRetries           = 5
	DefaultBackoff           = 500 * time.Millisecond
	DefaultMaxBackoff        = 30 * time.Second
	DefaultExpectContentType = "application/json"
	DefaultMaxPages          = 1000
	DefaultLand              = "raw/{{.Source}}/dt={{.Date}}/{{.Source}}_{{.Time}}_{{.Unique}}.json"
	// DefaultEvent is the event pattern a load or job matches when
	// on.events is absent.
	DefaultEvent = "ObjectCreated:*"
	// DefaultJobTimeout bounds a job run when timeout is absent.
	DefaultJobTimeout = time.Hour
	// MaxSettle is the longest settle window a job may ask for.
	MaxSettle = time.Hour
	// DefaultDelimiter is a curate job's CSV delimiter when absent.
	DefaultDelimiter = ","
)

// Job runners (Job.Runner). Only RunnerLocal is available; the others are
// recognised so that a spec written for them gets a clear refusal.
const (
	RunnerLocal      = "local"
	RunnerEMR        = "emr"
	RunnerKubernetes = "kubernetes"
)

// CurateCSV is the curate input format (Curate.Format).
const CurateCSV = "csv"

// Load formats (Load.Format).
const (
	FormatAuto   = "auto"
	FormatJSON   = "json"
	FormatNDJSON = "ndjson"
)

// Pagination types (Pagination.Type).
const (
	PaginatePage   = "page"
	PaginateOffset = "offset"
	PaginateCursor = "cursor"
	PaginateLink   = "link"
)

// Spec is a parsed, env-expanded and validated pipeline spec with every
// default applied. See the package doc for the file format.
type Spec struct {
	// File is the file name given to Parse or Load, used in messages.
	File string
	// Name names the pipeline (and its queue streams).
	Name string
	// Store, Queue and Warehouse are URLs; "" means the data dir's default.
	// The environment variables SLUICE_STORE, SLUICE_QUEUE and
	// SLUICE_WAREHOUSE, when set and non-empty, have replaced the file's values.
	Store, Queue, Warehouse string
	// Sources, Loads and Jobs are in file order.
	Sources []Source
	Loads   []Load
	Jobs    []Job
}

// Source is an importer: an HTTP API whose responses land in the store.
type Source struct {
	Name string
	HTTP HTTP
	// Every is the schedule; 0 means run once per `sluice run`.
	Every time.Duration
	// Land is the text/template of the key each response lands under
	// (see LandKey).
	Land string
	// Pos is where the source's name is written.
	Pos Pos
}

// HTTP configures an HTTP source.
type HTTP struct {
	URL     string
	Timeout time.Duration
	// Headers are sent with every request. They are not secrets; secrets
	// come from Auth.
	Headers map[string]string
	// Auth is nil when the source sends no credentials.
	Auth *Auth
	// Retries is the number of retries after the first try.
	Retries             int
	Backoff, MaxBackoff time.Duration
	// ExpectContentType is the media type responses must have; "" means
	// no check.
	ExpectContentType string
	// Pagination is nil for a single request.
	Pagination *Pagination
}

// Auth says where a source's secret comes from: the environment variable
// Env, read at request time (never stored in a Spec, never logged), sent
// in Header as "Scheme value" (or just "value" when Scheme is empty).
type Auth struct {
	Header, Env, Scheme string
}

// Pagination configures how a source walks pages.
type Pagination struct {
	// Type is PaginatePage, PaginateOffset, PaginateCursor or PaginateLink.
	Type string
	// Param is the query parameter carrying the page number, offset or
	// cursor ("" for link). SizeParam, when set, carries Size.
	Param, SizeParam string
	// Size is the page size (0 = not sent); Start the first page number or
	// offset.
	Size, Start int
	// CursorPath is the dotted path of the next cursor in a JSON response
	// body (cursor only).
	CursorPath string
	// MaxPages bounds one run.
	MaxPages int
}

// Load moves objects matching On into the warehouse table Table.
type Load struct {
	Name string
	On   On
	// Format is FormatAuto, FormatJSON or FormatNDJSON; see FormatFor.
	Format string
	Table  string
	// Write is driver.Append or driver.Merge (which needs PrimaryKey).
	Write      driver.Mode
	PrimaryKey []string
	// Columns are in file order.
	Columns []Column
	// Pos is where the load's name is written.
	Pos Pos
}

// On selects the object-created events a load consumes.
type On struct {
	// Events are event name patterns (event.ValidEventPattern); the default
	// is [DefaultEvent].
	Events         []string
	Prefix, Suffix string
	// KeyEncoding says how incoming records write keys (default event.KeyURL).
	KeyEncoding event.KeyEncoding
}

// Column maps a record field to a table column.
type Column struct {
	// Field is the name of the field in the source record.
	Field string
	// Name is the column name (Field unless renamed with "as").
	Name string
	Type driver.Type
	// Required rejects records where the field is missing or null.
	Required bool
}

// Job is a trigger rule plus the work it starts: events matching On are
// grouped by Group, and once a group has been quiet for Settle one
// transient run of Curate or Command processes it on Runner.
type Job struct {
	Name string
	// On selects the events that trigger the job (as for a load); the
	// default is every ObjectCreated event.
	On On
	// Group is a text/template over the key (see package trigger) naming
	// the unit of work; default trigger.DefaultGroup, the parent folder.
	Group string
	// Settle is how long a group must go without new events before its run
	// starts; 0 means the job package's default (job.DefaultSettle).
	Settle time.Duration
	// Runner is RunnerLocal, the only runner available so far.
	Runner string
	// Timeout bounds one run (default DefaultJobTimeout).
	Timeout time.Duration
	// Exactly one of Curate and Command is set.
	Curate *Curate
	// Command is the argv of a command job; Command[0] is the program.
	Command []string
	// Output is the template over .Group of the key prefix the job writes
	// under: Curate.Output for curate jobs, the optional output key for
	// command jobs ("" when a command job declares none). Parse checks that
	// no job's output triggers itself, directly or through other jobs.
	Output string
	// Pos is where the job's name is written.
	Pos Pos
}

// Curate configures the built-in curate job (package curate): every CSV
// object under Input is renamed, cast, filtered and written as snappy
// Parquet under Output. Input and Output are templates over .Group
// (trigger.Expand).
type Curate struct {
	// Input is the folder read, like "data/{{.Group}}/"; it ends with "/".
	Input string
	// Output is the folder written, like "curated/{{.Group}}/"; it ends
	// with "/" and does not overlap Input.
	Output string
	// Format is CurateCSV, the only input format so far.
	Format string
	// Delimiter is the CSV field delimiter, one character (default ",").
	Delimiter string
	// Rename maps a CSV header to its column name; nil when empty.
	Rename map[string]string
	// Columns are the output columns in order, named after Rename.
	Columns []CurateColumn
	// Filter is a row filter (curate.ParseFilter), "" for none.
	Filter string
	// Mode is curate.ModeOverwrite (default) or curate.ModeErrorIfExists.
	Mode string
	// MaxRowsPerFile bounds the rows of one Parquet part file.
	MaxRowsPerFile int
}

// CurateColumn is one output column of a curate job.
type CurateColumn struct {
	Name string
	Kind format.Kind
}

// Pos is a 1-based line and column in the spec file.
type Pos struct {
	Line, Col int
}

// String returns "line:col".
func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

// Filter returns the event filter the load's subscription applies.
func (o On) Filter() event.Filter {
	return event.Filter{Events: o.Events, Prefix: o.Prefix, Suffix: o.Suffix}
}

// TableDef returns the warehouse table the load writes.
func (l Load) TableDef() driver.Table {
	t := driver.Table{Name: l.Table, PrimaryKey: l.PrimaryKey}
	for _, c := range l.Columns {
		t.Columns = append(t.Columns, driver.Column{Name: c.Name, Type: c.Type})
	}
	return t
}

// FormatFor returns the decoder format for an object key: l.Format, or for
// FormatAuto, FormatNDJSON when the key (without a .gz suffix) ends in
// .ndjson or .jsonl and FormatJSON otherwise.
func (l Load) FormatFor(key string) string {
	if l.Format != FormatAuto && l.Format != "" {
		return l.Format
	}
	k := strings.TrimSuffix(strings.ToLower(key), ".gz")
	if strings.HasSuffix(k, ".ndjson") || strings.HasSuffix(k, ".jsonl") {
		return FormatNDJSON
	}
	return FormatJSON
}

// LandVars are the fields a land template can use (see Source.LandKey).
type LandVars struct {
	// Source is the source name.
	Source string
	// Date is the run's start date, YYYY-MM-DD in UTC.
	Date string
	// Time is the run's start time, like 20260102T030405Z (UTC).
	Time string
	// Unique is random and new for every landed object.
	Unique string
	// Page is the 1-based page number within the run.
	Page int
}

func newLandVars(source string, start time.Time, unique string, page int) LandVars {
	u := start.UTC()
	return LandVars{Source: source, Date: u.Format("2006-01-02"), Time: u.Format("20060102T150405Z"), Unique: unique, Page: page}
}

// LandKey renders the source's land template into the object key for page
// (1-based) of a run that started at start; unique must be new for every
// object (a random string such as a UUID).
func (s Source) LandKey(start time.Time, unique string, page int) (string, error) {
	land := s.Land
	if land == "" {
		land = DefaultLand
	}
	key, err := renderLand(land, newLandVars(s.Name, start, unique, page))
	if err != nil {
		return "", fmt.Errorf("source %s: land template: %w", s.Name, err)
	}
	return key, nil
}

// maxKeyLen is the longest object key S3 accepts, in bytes.
const maxKeyLen = 1024

// parseLand parses a land template. Only fields, functions and if are
// allowed: range, with, define and template could make a key without bound.
func parseLand(land string) (*template.Template, error) {
	t, err := template.New("land").Option("missingkey=error").Parse(land)
	if err != nil {
		return nil, err
	}
	if len(t.Templates()) > 1 {
		return nil, fmt.Errorf("define and block are not allowed in a land template")
	}
	if err := checkTemplateNodes(t.Tree.Root, "land", "{{.Date}}"); err != nil {
		return nil, err
	}
	return t, nil
}

// checkTemplateNodes rejects the actions that could make a key without
// bound (range, with, template, break, continue) in a template of kind what;
// field is an example field for the message.
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

func renderLand(land string, v LandVars) (string, error) {
	t, err := parseLand(land)
	if err != nil {
		return "", err
	}
	var b limitBuffer
	if err := t.Execute(&b, v); err != nil {
		return "", err
	}
	key := b.String()
	if msg := checkKey(key); msg != "" {
		return "", fmt.Errorf("key %q %s", key, msg)
	}
	return key, nil
}

// limitBuffer fails writes past maxKeyLen bytes.
type limitBuffer struct{ bytes.Buffer }

func (b *limitBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxKeyLen {
		return 0, fmt.Errorf("the key is longer than %d bytes", maxKeyLen)
	}
	return b.Buffer.Write(p)
}

// checkKey returns why key is not a usable object key, or "".
func checkKey(key string) string {
	switch {
	case key == "":
		return "is empty"
	case strings.HasPrefix(key, "/"):
		return "starts with /: keys are relative to the store"
	case strings.HasSuffix(key, "/"):
		return "ends with /: name a file, not a folder"
	case strings.ContainsAny(key, "\x00\r\n"):
		return "contains a control character"
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Sprintf("has an empty, . or .. path segment (clean form: %q)", path.Clean(key))
		}
	}
	return ""
}
