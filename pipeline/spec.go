package pipeline

import (
	"fmt"
	"strings"
	"time"

	"github.com/sluicehq/sluice/curate"
	"github.com/sluicehq/sluice/schema"

	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/format"
	"github.com/sluicehq/sluice/source/httpsource"
	"github.com/sluicehq/sluice/warehouse"
)

// Defaults applied by Parse when a key is absent. A source's defaults are
// httpsource's (httpsource.DefaultTimeout and the others), applied by
// httpsource.New.
const (
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

// Job runners (Job.Runner): local runs curate and command jobs as local
// processes; kubernetes runs them as batch/v1 Jobs; emr and emr-serverless
// run spark jobs.
const (
	RunnerLocal         = "local"
	RunnerEMR           = "emr"
	RunnerEMRServerless = "emr-serverless"
	RunnerKubernetes    = "kubernetes"
)

// CurateCSV is the curate input format (Curate.Format).
const CurateCSV = "csv"

// Load formats (Load.Format).
const (
	FormatAuto    = "auto"
	FormatJSON    = "json"
	FormatNDJSON  = "ndjson"
	FormatCSV     = "csv"
	FormatParquet = "parquet"
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
	// State is where sluice keeps its own state (job runs, leases, dead
	// letters, seen files): "" means the data dir's state.db,
	// sqlite:///ABS/PATH.db or postgres://…?schema=S. SLUICE_STATE, when set
	// and non-empty, has replaced the file's value.
	State string
	// Notifications, when set, is where the store's server sends its
	// bucket notifications; sluice then bridges them onto the queue and
	// emits no events of its own for writes to the store.
	Notifications *Notifications
	// Retry is the policy for transient failures of loads and jobs: how
	// long (For, default six hours) and how often they are retried before
	// they are dead-lettered.
	Retry fault.Retry
	// Watch tunes the local store watcher (zero: store's defaults, a scan a
	// second where it polls, and no settle window where Linux can tell that
	// a file is complete).
	Watch Watch
	// ReconcileEvery is how often `sluice run` looks for object versions
	// that never produced work (lost notifications, uploads made before the
	// queue existed) and re-drives them; Parse sets DefaultReconcileEvery
	// when the spec says nothing, and 0 turns the periodic reconcile off
	// (run still reconciles once at start).
	ReconcileEvery time.Duration
	// Serve is where long-running processes serve the web console,
	// /metrics and health (zero: the command's defaults; the --http flag
	// overrides it).
	Serve Serve
	// Lineage is where OpenLineage run events go: file:///ABS/PATH.ndjson
	// or an http(s) endpoint ("" = none). SLUICE_LINEAGE, when set and
	// non-empty, has replaced the file's value.
	Lineage string
	// Sources, Loads and Jobs are in file order.
	Sources []Source
	Loads   []Load
	Jobs    []Job
	// Warnings are problems that do not stop the spec from running but
	// probably do not do what its author meant (pagination that may never
	// get past its first page, say), sorted by position. Each formats like
	// an error: "file:line:col: key.path: what: what to write instead".
	// `sluice validate` and `sluice run` print them.
	Warnings []*Error
}

// Serve is the console's address and TLS files.
type Serve struct {
	// Address is HOST:PORT, or "off".
	Address string
	// TLSCert and TLSKey are PEM files; both or neither.
	TLSCert, TLSKey string
}

// Source is an importer: an HTTP API whose responses land in the store.
type Source struct {
	Name string
	// HTTP is the importer's configuration as httpsource.New takes it, with
	// httpsource's defaults applied (it is the Config of an Importer that
	// Parse built): HTTP.Name is Name and HTTP.Land the land template. Auth
	// names the environment variable of the secret, which Parse never
	// reads.
	HTTP httpsource.Config
	// Every is the schedule; 0 means run once per `sluice run`.
	Every time.Duration
	// Retention, when above zero, is how long the objects under the
	// source's land folder (LandPrefix) are kept: `sluice run` deletes
	// older ones, but only those every load and job that selects them has
	// committed and no dead letter names. 0 keeps everything.
	Retention time.Duration
	// Pos is where the source's name is written.
	Pos Pos
}

// LandPrefix returns the fixed folder every key the source lands starts
// with (httpsource.LandPrefix), like "raw/posts/"; Parse refuses a
// retention on a source for which it is "" or overlaps another source's.
func (s Source) LandPrefix() string {
	p, err := httpsource.LandPrefix(s.Name, s.HTTP.Land)
	if err != nil {
		return "" // Parse checked the template
	}
	return p
}

// Notifications is the inbox of a store's bucket notifications.
type Notifications struct {
	// URL names the inbox: nats://HOST:PORT?subject=S, sqs://QUEUE?region=R
	// or amqp://…/VHOST?queue=Q (SLUICE_NOTIFICATIONS replaces it).
	URL string
	// KeyEncoding says how the server writes keys: event.KeyURL (AWS,
	// MinIO; the default) or event.KeyRaw (versitygw).
	KeyEncoding event.KeyEncoding
	// Pos is where notifications is written ({0, 0} when only the
	// environment set it).
	Pos Pos
}

// Load moves objects matching On into the warehouse table Table.
type Load struct {
	Name string
	On   On
	// Format is FormatAuto, FormatJSON, FormatNDJSON, FormatCSV or
	// FormatParquet; see FormatFor.
	Format string
	// Delimiter separates CSV fields; 0 means ','.
	Delimiter rune
	Table     string
	// Write is warehouse.Append or warehouse.Merge (which needs PrimaryKey).
	Write      warehouse.Mode
	PrimaryKey []string
	// Columns are in file order.
	Columns []Column
	// OrderBy names the column whose value orders versions of a row in
	// merge (greatest wins); "" orders by object version (event time, S3
	// sequencer, key).
	OrderBy string
	// OnBadRecord is OnBadDeadLetter (default) or OnBadQuarantine.
	OnBadRecord string
	// OnMissing and Extra say what to do about declared fields absent from
	// every record of an object and undeclared fields (format's policies);
	// ExtraColumn is the json column extra: json keeps them in.
	OnMissing   format.OnMissing
	Extra       format.OnExtra
	ExtraColumn string
	// Limits bound each object (zero fields: format's defaults).
	Limits format.Limits
	// Pos is where the load's name is written.
	Pos Pos
}

// What a load does with a record that cannot be loaded (Load.OnBadRecord).
const (
	OnBadDeadLetter = "dead-letter"
	OnBadQuarantine = "quarantine"
)

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
	// Field is the name of the field in the source record, or the dotted
	// path of a nested field ("address.city").
	Field string
	// Path is the field's path in the record (Field split on "."; or as
	// written with path: [...] for keys that contain dots).
	Path []string
	// Name is the column name (Field unless renamed with "as").
	Name string
	Type schema.Type
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
	// Runner is RunnerLocal (default), RunnerKubernetes, RunnerEMR or
	// RunnerEMRServerless; the remote ones have their settings in EMR,
	// EMRServerless or Kubernetes.
	Runner        string
	EMR           *EMR
	EMRServerless *EMRServerless
	Kubernetes    *Kubernetes
	// Timeout bounds one run (default DefaultJobTimeout).
	Timeout time.Duration
	// Exactly one of Curate, Command and Spark is set.
	Curate *Curate
	// Spark is a spark job's application (runners emr and emr-serverless).
	Spark *Spark
	// Command is the argv of a command job; Command[0] is the program.
	Command []string
	// PassEnv names variables of sluice's environment a command job's
	// program gets besides the few every program needs and SLUICE_*.
	PassEnv []string
	// Output is the template over .Group of the key prefix the job writes
	// under: Curate.Output for curate jobs, Spark.Output for spark jobs, the optional output key for
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
	Columns []schema.Column
	// Filter is a row filter (curate.ParseFilter), "" for none.
	Filter string
	// Mode is curate.ModeOverwrite (default) or curate.ModeErrorIfExists.
	Mode string
	// MaxRowsPerFile bounds the rows of one Parquet part file.
	MaxRowsPerFile int
	// Limits bound each input CSV (zero fields: format's defaults).
	Limits format.Limits
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
func (l Load) TableDef() warehouse.Table {
	t := warehouse.Table{Name: l.Table, PrimaryKey: l.PrimaryKey, OrderBy: l.OrderBy}
	for _, c := range l.Columns {
		t.Columns = append(t.Columns, schema.Column{Name: c.Name, Type: c.Type})
	}
	return t
}

// FormatFor returns the decoder format for an object key: l.Format, or for
// FormatAuto the key's suffix (without a compression suffix .gz, .zst or
// .zstd, case-insensitively): .ndjson and .jsonl are FormatNDJSON, .csv
// FormatCSV, .parquet FormatParquet, anything else FormatJSON. Compression
// itself is detected from the object's first bytes, whatever its name.
func (l Load) FormatFor(key string) string {
	if l.Format != FormatAuto && l.Format != "" {
		return l.Format
	}
	k := strings.ToLower(key)
	for _, s := range []string{".gz", ".zst", ".zstd"} {
		k = strings.TrimSuffix(k, s)
	}
	switch {
	case strings.HasSuffix(k, ".ndjson"), strings.HasSuffix(k, ".jsonl"):
		return FormatNDJSON
	case strings.HasSuffix(k, ".csv"):
		return FormatCSV
	case strings.HasSuffix(k, ".parquet"):
		return FormatParquet
	}
	return FormatJSON
}

// Takes reports whether the load reads key at all (its event filter
// aside): not a "folder" marker (a key ending in "/", which holds no
// records), and no segment below the load's prefix that Spark and Hadoop
// treat as hidden (starting with "_" or "."), so that a load of a curated
// folder skips _SUCCESS and staging files as Spark and DuckDB do.
func (l Load) Takes(key string) bool {
	return !strings.HasSuffix(key, "/") && !curate.Hidden(strings.TrimPrefix(key, l.On.Prefix))
}

// DefaultReconcileEvery is ReconcileEvery when a spec does not set
// reconcile_every.
const DefaultReconcileEvery = 10 * time.Minute

// Watch tunes how files that other programs drop into a local store are
// found (see package store, "Watching"). A file is announced once it is
// complete: on Linux, as soon as no process holds it open for writing (it
// was renamed into place, or its writer closed it). Settle 0 (watch.settle
// unset or 0) is automatic: no settle window where Linux can tell, and
// store.DefaultSettle (2s) where it cannot (another user's files, file
// systems without leases such as NFS, other systems). A Settle above zero is
// a window every file must stay unchanged for, everywhere, in addition: for
// programs that write one file in several opens (repeated >> appends),
// which otherwise get each closed version announced; renaming a finished
// file into place is the better fix. Where the watcher cannot follow the
// store with inotify it lists it every Interval (0: 1s).
type Watch struct {
	Settle, Interval time.Duration
}
