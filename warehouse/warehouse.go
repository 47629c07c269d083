// Package warehouse loads decoded records into SQL tables exactly once per
// object version. Warehouse is the user-facing type; backends implement
// warehouse/driver, register themselves (Register) when their package is
// linked in, and are chosen by URL (Open):
//
//	sqlite:///abs/path/warehouse.db   embedded SQLite (sqlitewh; the default, in the data dir)
//	postgres://user@host:port/db      PostgreSQL through pgx (pgwh)
//
// A program links the backends it wants with blank imports
// (import _ ".../warehouse/pgwh"), as go-cloud's blob does; this package
// itself depends on no database SDK, so portable packages (pipeline) use
// its types. Its types (Table, Batch, Mode, Result, ...) are its own:
// callers never import warehouse/driver.
//
// Exactly once: Load inserts the object version's ledger row and its rows in
// one transaction, so a redelivered or concurrent duplicate is a no-op.
// Callers acknowledge the message that carried the object only after Load
// returns without error.
//
// Streaming: Batch.Rows is a schema.Reader of typed columnar batches. Load
// checks each batch as it passes, column by column without boxing a value,
// and the backend writes it inside the one transaction (PostgreSQL: binary
// COPY encoded straight from the vectors; SQLite: prepared multi-row
// INSERTs), so memory does not grow with the number of rows. The ledger
// row's rows column holds the rows actually written.
//
// Write modes:
//
//   - append inserts every row.
//   - merge upserts on the primary key, conditionally: a row replaces the
//     stored row of its key only if its (Table.OrderBy value, when declared,
//     then Batch.Version) is not smaller than the stored row's. So a newer
//     object version never loses to an older one that commits later (after
//     retries, say). Merge tables carry the hidden text column
//     _sluice_version; rows stored before it existed hold the empty string and lose to
//     any version. Within one object the row with the greatest OrderBy per
//     key wins, ties (and no OrderBy) going to the later row.
//   - replace makes the table hold exactly the rows of the newest loaded
//     version of each object key: hidden columns _sluice_key and
//     _sluice_version; loading version V of key K deletes K's rows and
//     inserts V's, unless a version of K not older than V was loaded already
//     (kept in the table _sluice_current); then only V's ledger row is
//     written and Result.Superseded is set. No primary key is needed.
//
// Hidden columns are ordinary columns: Query (and sluice sql) shows them
// in SELECT *. Spec columns may not start with _sluice_.
//
// Bad rows: by default (DeadLetter) the first row that fails the
// checks, or that the decoder set aside (schema.Batch.Rejects), fails the load with
// ErrInvalidData naming the object, the row (record number and line) and
// the column. With Quarantine such rows are written, with record
// number, line, reason and raw record, to <table>__rejected (columns
// _sluice_key, _sluice_etag, record, line, reason, raw, rejected_at;
// created when needed) in the same transaction as the good rows and the
// ledger row, so they commit exactly once together; Result.Rejected counts
// them.
//
// Schema evolution: EnsureTable adds the columns a spec gained (ALTER TABLE
// ADD COLUMN; existing rows get NULL) and refuses a column whose type
// changed, naming the table, the column and both types. The first Load of a
// table (per spec, mode and on_bad_row) in a process runs the same check
// inside its transaction, adding the hidden columns its mode needs, so a
// load never writes a table missing a column. sluice's own tables
// (_sluice_ledger, _sluice_current, _sluice_meta) carry a schema version
// (SchemaVersion) in _sluice_meta: opening a warehouse migrates an
// older one forward in one transaction and refuses a newer one.
//
// Errors: ErrInvalidData (the data; permanent), ErrNoTable (the table does
// not exist; permanent until it is created: dead-letter and replay later);
// anything else — connection failures, timeouts, serialization failures,
// deadlocks, a busy or full disk — is transient: retry.
package warehouse

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluicehq/sluice/schema"
	"github.com/sluicehq/sluice/warehouse/driver"
)

// Names sluice uses in every backend (see the package doc).
const (
	LedgerTable    = driver.LedgerTable    // the ledger
	RejectedSuffix = driver.RejectedSuffix // appended to a table's name for its quarantine table
	VersionColumn  = driver.VersionColumn  // hidden column of merge and replace
	KeyColumn      = driver.KeyColumn      // hidden column of replace
	SchemaVersion  = driver.SchemaVersion  // of sluice's own tables
)

// ValidIdent reports whether s can be a table or column name: letters,
// digits and _, not starting with a digit, at most 63 characters (the same
// on every backend).
func ValidIdent(s string) bool { return driver.ValidIdent(s) }

// ErrInvalidData means the batch itself is bad: retrying cannot help. Load
// returns it, matched with errors.Is, for rows it rejects (a value the
// column cannot hold, a NULL primary key, a batch whose columns are not
// the table's) and for rows the database rejects (e.g. a duplicate primary
// key in append mode). Connection failures, timeouts, cancellation,
// serialization failures and deadlocks are never ErrInvalidData.
var ErrInvalidData = driver.ErrInvalidData

// ErrNoTable means the target table does not exist: a retry cannot help
// until the table is created.
var ErrNoTable = driver.ErrNoTable

// Table describes a target table. PrimaryKey may be empty (append-only).
type Table struct {
	Name       string
	Columns    []schema.Column
	PrimaryKey []string
	// OrderBy optionally names a column that orders the versions of a row
	// in merge mode: a row replaces the stored row of its key only if its
	// (OrderBy, object Version) is not smaller. Its values must not be NULL.
	OrderBy string
}

// Mode is how rows are written (see the package doc).
type Mode string

// The write modes.
const (
	Append  Mode = Mode(driver.Append)
	Merge   Mode = Mode(driver.Merge)
	Replace Mode = Mode(driver.Replace)
)

// OnBadRow says what Load does with a row that fails its checks or that
// the decoder set aside.
type OnBadRow string

const (
	// DeadLetter (the default, also for "") fails the whole load with an
	// error wrapping ErrInvalidData naming the row and column.
	DeadLetter OnBadRow = OnBadRow(driver.DeadLetter)
	// Quarantine writes bad rows, with their record number, line, reason
	// and raw record, to the table <table>__rejected in the same
	// transaction as the good rows and the ledger row.
	Quarantine OnBadRow = OnBadRow(driver.Quarantine)
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
	// greater being the newer. Required for merge and replace.
	Version string
	// Rows streams the rows as typed columnar batches whose Columns have
	// the types of Table.Columns, in that order; nil means no rows. Load
	// reads it to io.EOF or to its first error, and does not Close it.
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

// ObjectVersion names one object version: its key and ETag.
type ObjectVersion struct{ Key, ETag string }

// MaxLedgerLookup is the most versions LedgerHas asks a backend about in
// one query.
const MaxLedgerLookup = driver.MaxLedgerLookup

func (t Table) driver() driver.Table { return driver.Table(t) }

// Warehouse wraps a backend.
type Warehouse struct {
	url string
	d   driver.Warehouse
}

// New wraps a backend; url is used in error messages (without secrets).
func New(url string, d driver.Warehouse) *Warehouse { return &Warehouse{url: url, d: d} }

// URL returns the warehouse URL the Warehouse was opened with.
func (w *Warehouse) URL() string { return w.url }

func checkTable(t Table) error {
	if !driver.ValidIdent(t.Name) {
		return fmt.Errorf("invalid table name %q (letters, digits and _, not starting with a digit)", t.Name)
	}
	if len(t.Columns) == 0 {
		return fmt.Errorf("table %s has no columns", t.Name)
	}
	seen := map[string]bool{}
	for _, c := range t.Columns {
		if !driver.ValidIdent(c.Name) {
			return fmt.Errorf("table %s: invalid column name %q", t.Name, c.Name)
		}
		if !c.Type.Valid() {
			return fmt.Errorf("table %s: column %s: unknown type %q", t.Name, c.Name, c.Type)
		}
		if strings.HasPrefix(strings.ToLower(c.Name), "_sluice_") {
			return fmt.Errorf("table %s: column %s: names starting with _sluice_ are reserved for sluice's hidden columns; rename it", t.Name, c.Name)
		}
		if seen[c.Name] {
			return fmt.Errorf("table %s: column %s appears twice", t.Name, c.Name)
		}
		seen[c.Name] = true
	}
	for _, k := range t.PrimaryKey {
		if !seen[k] {
			return fmt.Errorf("table %s: primary key column %s is not a column", t.Name, k)
		}
	}
	if t.OrderBy != "" && !seen[t.OrderBy] {
		return fmt.Errorf("table %s: order_by column %s is not a column", t.Name, t.OrderBy)
	}
	return nil
}

// EnsureTable creates t when it is missing. On an existing table it adds
// the columns t has and the table lacks, and fails with an error naming the
// table, the column and both types when a column's type differs.
func (w *Warehouse) EnsureTable(ctx context.Context, t Table) error {
	if err := checkTable(t); err != nil {
		return fmt.Errorf("warehouse %s: %w", w.url, err)
	}
	if err := w.d.EnsureTable(ctx, t.driver()); err != nil {
		return fmt.Errorf("warehouse %s: create table %s: %w", w.url, t.Name, err)
	}
	return nil
}

// Load commits b exactly once (see the package doc), streaming b.Rows into
// the backend: memory does not grow with the number of rows. Every batch
// must have b.Table's columns, in order and with their types (else the
// load fails with ErrInvalidData). Load checks the values of every batch
// as it passes, column by column: Integer within 32 bits, Real within
// float32's range, JSON well-formed, text and JSON valid UTF-8 without NUL
// characters (PostgreSQL cannot store either, SQLite would), no NULL in a
// primary key or OrderBy column. A bad row, or one the decoder set aside
// (schema.Batch.Rejects), fails the load with an error wrapping
// ErrInvalidData that names the object, the row (record number and line)
// and the column — or, with b.OnBadRow Quarantine, goes to the table's
// quarantine table in the same transaction. Load does not modify the
// batches Rows returns (a batch with bad rows is copied without them).
func (w *Warehouse) Load(ctx context.Context, b Batch) (Result, error) {
	if err := checkTable(b.Table); err != nil {
		return Result{}, fmt.Errorf("warehouse %s: %w", w.url, err)
	}
	fail := func(format string, args ...any) (Result, error) {
		return Result{}, fmt.Errorf("warehouse %s: load object %s into %s: %s", w.url, b.Key, b.Table.Name, fmt.Sprintf(format, args...))
	}
	if b.Key == "" || b.ETag == "" {
		return fail("object key and ETag are required")
	}
	switch b.Mode {
	case Append:
	case Merge:
		if len(b.Table.PrimaryKey) == 0 {
			return fail("write mode merge needs a primary key")
		}
		if b.Version == "" {
			return fail("write mode merge needs the object version's order (Batch.Version)")
		}
	case Replace:
		if b.Version == "" {
			return fail("write mode replace needs the object version's order (Batch.Version)")
		}
	default:
		return fail("unknown write mode %q (append, merge or replace)", b.Mode)
	}
	switch b.OnBadRow {
	case "", DeadLetter:
	case Quarantine:
		if n := len(b.Table.Name) + len(driver.RejectedSuffix); n > 63 {
			return fail("quarantine table %s%s would be %d characters, more than the 63 PostgreSQL allows; shorten the table name", b.Table.Name, driver.RejectedSuffix, n)
		}
	default:
		return fail("unknown on_bad_row %q (dead_letter or quarantine)", b.OnBadRow)
	}
	checked := newChecker(b)
	res, err := w.d.Load(ctx, driver.Batch{Table: b.Table.driver(), Mode: driver.Mode(b.Mode), Key: b.Key, ETag: b.ETag,
		Version: b.Version, Rows: checked, OnBadRow: driver.OnBadRow(b.OnBadRow)})
	if err != nil && checked.err != nil && errors.Is(err, checked.err) {
		// A refused row: its reason leads, before the warehouse and the
		// backend's own context, so that the start of the message (all
		// `sluice dlq ls` shows) says which row and column.
		return Result(res), fmt.Errorf("load object %s (ETag %s) into %s: %w (warehouse %s)", b.Key, b.ETag, b.Table.Name, checked.err, w.url)
	}
	if err != nil {
		return Result(res), fmt.Errorf("warehouse %s: load object %s (ETag %s) into %s: %w", w.url, b.Key, b.ETag, b.Table.Name, err)
	}
	return Result(res), nil
}

// Query runs a read-only statement.
func (w *Warehouse) Query(ctx context.Context, sql string) ([]string, [][]any, error) {
	cols, rows, err := w.d.Query(ctx, sql)
	if err != nil {
		return nil, nil, fmt.Errorf("warehouse %s: query: %w", w.url, err)
	}
	return cols, rows, nil
}

// Ledger lists committed object versions of table ("" = all).
func (w *Warehouse) Ledger(ctx context.Context, table string) ([]LedgerEntry, error) {
	l, err := w.d.Ledger(ctx, table)
	if err != nil {
		return nil, fmt.Errorf("warehouse %s: read ledger: %w", w.url, err)
	}
	out := make([]LedgerEntry, len(l))
	for i, e := range l {
		out[i] = LedgerEntry(e)
	}
	return out, nil
}

// LedgerHas reports, for each of versions (in order), whether table's
// ledger holds that object version. It asks the backend in chunks of
// MaxLedgerLookup versions, one indexed query each, so its cost follows
// len(versions), not the size of the ledger: a caller that checks a long
// listing page by page holds one page at a time.
func (w *Warehouse) LedgerHas(ctx context.Context, table string, versions []ObjectVersion) ([]bool, error) {
	out := make([]bool, 0, len(versions))
	chunk := make([]driver.ObjectVersion, 0, min(len(versions), MaxLedgerLookup))
	for len(versions) > 0 {
		n := min(len(versions), MaxLedgerLookup)
		chunk = chunk[:0]
		for _, v := range versions[:n] {
			chunk = append(chunk, driver.ObjectVersion(v))
		}
		has, err := w.d.LedgerHas(ctx, table, chunk)
		if err != nil {
			return nil, fmt.Errorf("warehouse %s: look up ledger of %s: %w", w.url, table, err)
		}
		if len(has) != n {
			return nil, fmt.Errorf("warehouse %s: look up ledger of %s: backend answered %d of %d versions", w.url, table, len(has), n)
		}
		out = append(out, has...)
		versions = versions[n:]
	}
	return out, nil
}

// LedgerFilter selects ledger entries for LedgerRecent.
type LedgerFilter = driver.LedgerFilter

// TableSummary is what a table's ledger holds.
type TableSummary = driver.TableSummary

// LedgerRecent lists the newest committed object versions f selects,
// newest first (f.Limit defaults to 100).
func (w *Warehouse) LedgerRecent(ctx context.Context, f LedgerFilter) ([]LedgerEntry, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	l, err := w.d.LedgerRecent(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("warehouse %s: read ledger: %w", w.url, err)
	}
	out := make([]LedgerEntry, len(l))
	for i, e := range l {
		out[i] = LedgerEntry(e)
	}
	return out, nil
}

// LedgerSummary counts each table's committed object versions and rows.
func (w *Warehouse) LedgerSummary(ctx context.Context) ([]TableSummary, error) {
	s, err := w.d.LedgerSummary(ctx)
	if err != nil {
		return nil, fmt.Errorf("warehouse %s: read ledger: %w", w.url, err)
	}
	return s, nil
}

// Close releases the backend.
func (w *Warehouse) Close() error { return w.d.Close() }
