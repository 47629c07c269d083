// Package driver defines the small interface a warehouse backend implements.
// Users call warehouse.Warehouse, which validates batches, checks rows as
// they stream and wraps errors once for every backend; backends run
// warehouse/drivertest.
//
// A backend's Load reads Batch.Rows (a schema.Reader of typed columnar
// batches) once, writing each batch as it reads it, never collecting the
// object; the records in a batch's Rejects go to the quarantine table
// (Quarantine) or fail the load with ErrInvalidData (RejectError). The
// semantics of the write modes, hidden columns, quarantine tables, schema
// evolution and error classes are the package warehouse's (see its doc);
// the names sluice uses in the database are the constants below.
package driver

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/schema"
)

// Type is a column type (see package schema).
type Type = schema.Type

// Column types (see package schema for the Vector field holding each).
//
// warehouse.Warehouse checks every value before a backend's Load sees it
// (its column's type, Integer within 32 bits, Real within float32's range,
// valid JSON, text and JSON valid UTF-8 without NUL characters, no NULL in
// a primary key or OrderBy column), so backends encode values without
// checking them again.
const (
	BigInt    = schema.BigInt
	Integer   = schema.Integer
	Real      = schema.Real
	Double    = schema.Double
	Text      = schema.Text
	Boolean   = schema.Boolean
	Timestamp = schema.Timestamp
	Date      = schema.Date
	JSON      = schema.JSON
)

// ErrInvalidData means the batch itself is bad: retrying cannot help. Match
// it with errors.Is. warehouse.Warehouse returns it for rows it rejects
// before the backend sees them, and backends wrap it around the database's
// own rejections of the data (constraint violations such as a NULL or
// duplicate primary key, values the column cannot hold), keeping the
// database's message.
//
// The classification rule every backend follows:
//
//   - ErrInvalidData: the data (a row, a value); permanent.
//   - ErrNoTable: the target table does not exist (PostgreSQL SQLSTATE
//     42P01, SQLite "no such table"); permanent until someone creates the
//     table, so callers dead-letter the object and replay it later.
//   - everything else — connection failures, timeouts, cancellation,
//     serialization failures, deadlocks, a busy or full database — is
//     unclassified and transient: retry with backoff.
var ErrInvalidData = errors.New("invalid data")

// ErrNoTable means the target table does not exist (see ErrInvalidData for
// the classification rule). A retry cannot help until the table is created.
var ErrNoTable = errors.New("table does not exist")

// LedgerTable is the name of the ledger table in every backend.
const LedgerTable = "_sluice_ledger"

// MetaTable holds sluice's own settings, among them the ledger schema
// version ("schema_version").
const MetaTable = "_sluice_meta"

// CurrentTable records, for write mode replace, which version of each
// object key a table currently holds.
const CurrentTable = "_sluice_current"

// SchemaVersion is the version of sluice's own tables (ledger, meta,
// current) this code writes. Version 1 had only the ledger (table_name,
// object_key, etag, rows, loaded_at); version 2 adds the ledger columns
// version and rejected, and the tables _sluice_meta and _sluice_current.
// Open migrates older versions forward and refuses newer ones.
const SchemaVersion = 2

// Hidden columns sluice adds to tables for merge and replace. Users see
// them in Query (and sluice sql); spec columns may not start with _sluice_.
const (
	// VersionColumn holds Batch.Version of the object version that wrote
	// the row (merge and replace).
	VersionColumn = "_sluice_version"
	// KeyColumn holds the object key that wrote the row (replace).
	KeyColumn = "_sluice_key"
)

// RejectedSuffix is appended to a table's name for its quarantine table.
const RejectedSuffix = "__rejected"

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ValidIdent reports whether s can be a table or column name. sluice quotes
// identifiers, but keeps them to this portable set so that the same spec
// works on every backend.
func ValidIdent(s string) bool { return identRE.MatchString(s) }

// Column is a table column.
type Column = schema.Column

// Table describes a target table. PrimaryKey may be empty (append-only).
type Table struct {
	Name       string
	Columns    []Column
	PrimaryKey []string
	// OrderBy optionally names a column that orders the versions of a row
	// in merge mode: a row replaces the stored row of its key only if its
	// (OrderBy, object Version) is not smaller. Its values must not be NULL.
	OrderBy string
}

// Mode is how rows are written.
type Mode string

const (
	// Append inserts every row.
	Append Mode = "append"
	// Merge upserts on the primary key. A row replaces the stored row of
	// its key only when its object Version (after Table.OrderBy, when set)
	// is not older than the stored row's, whatever the commit order; within
	// one object the row with the greatest OrderBy per key wins, ties (and
	// no OrderBy) going to the later row.
	Merge Mode = "merge"
	// Replace makes the table hold exactly the rows of the newest loaded
	// version of each object key: loading a version deletes the rows the
	// key's previous version wrote and inserts its own, unless a newer
	// version of the key was loaded already (then only its ledger row is
	// written and Result.Superseded is set). No primary key is needed.
	Replace Mode = "replace"
)

// OnBadRow says what Load does with a row that fails its checks or that
// the stream marked Reject.
type OnBadRow string

const (
	// DeadLetter (the default, also for "") fails the whole load with an
	// error wrapping ErrInvalidData naming the row and column.
	DeadLetter OnBadRow = "dead_letter"
	// Quarantine writes bad rows, with their record number, line, reason
	// and raw record, to the table <table>__rejected in the same
	// transaction as the good rows and the ledger row.
	Quarantine OnBadRow = "quarantine"
)

// Batch is the rows of one object version, loaded at most once per table.
type Batch struct {
	Table Table
	Mode  Mode
	// Key and ETag identify the object version; with Table.Name they are
	// the ledger's primary key.
	Key  string
	ETag string
	// Version orders the versions of one object (and, for merge, the
	// objects writing one key): an opaque string compared byte-wise, the
	// greater being the newer. The caller builds it (event time, then the
	// store's sequencer, then the key). Required for replace; for merge an
	// empty Version loses to every other (it is what rows written before
	// versions existed hold).
	Version string
	// Rows streams the rows in typed columnar batches; nil means no
	// rows. Load reads it to io.EOF or its first error and does not Close
	// it (the caller does). Through warehouse.Load every batch has the
	// table's columns (same order and types), passes schema.Batch.Check,
	// and holds only values that passed Load's checks; records set aside
	// (by the decoder or by those checks) are in its Rejects.
	Rows schema.Reader
	// OnBadRow is DeadLetter ("" too) or Quarantine.
	OnBadRow OnBadRow
}

// Result says what Load did.
type Result struct {
	// Loaded is false when the ledger already held this object version
	// for this table: nothing was written.
	Loaded bool
	// Superseded is true when write mode replace found a newer version of
	// the object already loaded: only the ledger row was written.
	Superseded bool
	// Rows is the number of rows written: inserted (append, replace), or
	// inserted or updated by this version and still holding it (merge).
	Rows int64
	// Rejected is the number of rows written to the quarantine table.
	Rejected int64
}

// LedgerEntry is one committed object version.
type LedgerEntry struct {
	Table    string
	Key      string
	ETag     string
	Version  string
	Rows     int64
	Rejected int64
	LoadedAt time.Time
}

// Warehouse is a backend. Implementations must be safe for concurrent use.
type Warehouse interface {
	// EnsureTable creates the table when missing (with its primary key).
	// On an existing table it adds the columns t has and the table lacks,
	// and fails, naming the table, the column and both types, when a
	// column exists with another type.
	EnsureTable(ctx context.Context, t Table) error
	// Load commits, in one transaction, a ledger row for (table, key, etag)
	// — inserted first, so a concurrent duplicate waits or finds it — the
	// batch's rows and, with Quarantine, its rejected rows. If the ledger
	// row exists it returns Loaded=false and writes nothing. The table
	// must exist (else ErrNoTable); the first Load of a table in a process
	// adds missing columns as EnsureTable does, plus the hidden columns
	// the mode needs, in the same transaction. Rows are streamed: memory
	// does not grow with their number.
	Load(ctx context.Context, b Batch) (Result, error)
	// Query runs a read-only SQL statement and returns column names and
	// rows (values as the database driver returns them).
	Query(ctx context.Context, sql string) (cols []string, rows [][]any, err error)
	// Ledger lists committed object versions of table ("" = all tables).
	Ledger(ctx context.Context, table string) ([]LedgerEntry, error)
	// LedgerHas reports, for each of versions (in order), whether table's
	// ledger holds that object version (key and ETag both equal). It is
	// one indexed query: warehouse.LedgerHas calls it with at most
	// MaxLedgerLookup versions, so that a caller checking a large listing
	// page by page holds one page, never the whole ledger.
	LedgerHas(ctx context.Context, table string, versions []ObjectVersion) ([]bool, error)
	// LedgerRecent lists the newest committed object versions f selects,
	// newest first, at most f.Limit of them (one indexed query).
	LedgerRecent(ctx context.Context, f LedgerFilter) ([]LedgerEntry, error)
	// LedgerSummary counts each table's committed object versions, rows
	// and rejected rows, with the time of the last commit.
	LedgerSummary(ctx context.Context) ([]TableSummary, error)
	Close() error
}

// LedgerFilter selects ledger entries for LedgerRecent: those of Table
// and of Key when set; Limit (at least 1) bounds how many.
type LedgerFilter struct {
	Table, Key string
	Limit      int
}

// TableSummary is what a table's ledger holds.
type TableSummary struct {
	Table                   string
	Objects, Rows, Rejected int64
	LastLoaded              time.Time
}

// ObjectVersion names one object version: its key and ETag.
type ObjectVersion struct{ Key, ETag string }

// MaxLedgerLookup is the most versions warehouse.LedgerHas passes to a
// backend's LedgerHas in one call (SQLite's default limit on bound
// parameters is 32766; PostgreSQL's 65535).
const MaxLedgerLookup = 500

// RejectReason describes a rejected record for the error that fails a
// dead-lettering load. A reason that names a column follows the record
// after a comma: "row 7 (line 8), column id (bigint): want an integer, got
// string".
func RejectReason(r schema.Reject) string {
	sep := ": "
	if strings.HasPrefix(r.Reason, "column ") {
		sep = ", "
	}
	if r.Line > 0 {
		return fmt.Sprintf("row %d (line %d)%s%s", r.N, r.Line, sep, r.Reason)
	}
	return fmt.Sprintf("row %d%s%s", r.N, sep, r.Reason)
}

// FirstReject returns the reject of b with the smallest record number, and
// false when b has none.
func FirstReject(b *schema.Batch) (schema.Reject, bool) {
	if len(b.Rejects) == 0 {
		return schema.Reject{}, false
	}
	first := b.Rejects[0]
	for _, r := range b.Rejects[1:] {
		if r.N < first.N {
			first = r
		}
	}
	return first, true
}

// RejectError is the error a backend returns for a reject it meets
// without Quarantine (warehouse.Load stops such loads before the backend
// sees the reject).
func RejectError(r schema.Reject) error {
	return fmt.Errorf("%w: %s", ErrInvalidData, RejectReason(r))
}

// Kept returns a copy of r whose strings do not alias the batch's memory,
// for a backend that holds rejects past the batch's lifetime, made
// storable (see Storable).
func Kept(r schema.Reject) schema.Reject {
	r.Reason = Storable(strings.Clone(r.Reason))
	r.Raw = Storable(strings.Clone(r.Raw))
	return r
}

// Storable makes s valid UTF-8 without NUL characters (PostgreSQL stores
// neither), spelling a NUL as \u0000.
func Storable(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", `\u0000`)
}

// ColumnDiff compares the columns a table has (name → the backend's type
// name, as typeName spells it) with those it needs: t's columns and hidden,
// all of which typeName maps. It returns the columns to add, or an error
// naming the table, the column and both types when one differs.
func ColumnDiff(t Table, have map[string]string, hidden []Column, typeName func(Type) string) ([]Column, error) {
	var add []Column
	for _, c := range append(slices.Clip(t.Columns), hidden...) {
		got, ok := have[c.Name]
		if !ok {
			add = append(add, c)
			continue
		}
		if want := typeName(c.Type); !strings.EqualFold(got, want) {
			return nil, fmt.Errorf("table %s: column %s is %s in the table but %s in the spec; change the spec back, or migrate the table yourself",
				t.Name, c.Name, strings.ToLower(got), c.Type)
		}
	}
	return add, nil
}

// HiddenColumns returns the hidden columns write mode m keeps in a table.
func HiddenColumns(m Mode) []Column {
	switch m {
	case Merge:
		return []Column{{Name: VersionColumn, Type: Text}}
	case Replace:
		return []Column{{Name: KeyColumn, Type: Text}, {Name: VersionColumn, Type: Text}}
	}
	return nil
}

// Signature identifies what a Load of b needs of its table (name, columns,
// mode, quarantine), so a backend can run its schema check once per
// process for each.
func Signature(b Batch) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s|%s|%s|%s|%v|", b.Table.Name, b.Mode, b.OnBadRow, b.Table.OrderBy, b.Table.PrimaryKey)
	for _, c := range b.Table.Columns {
		sb.WriteString(c.Name + " " + string(c.Type) + ",")
	}
	return sb.String()
}
