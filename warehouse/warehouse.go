// Package warehouse loads decoded records into SQL tables exactly once per
// object version. Warehouse is the user-facing type; backends implement
// warehouse/driver and are chosen by URL:
//
//	sqlite:///abs/path/warehouse.db   embedded SQLite (sqlitewh; the default, in the data dir)
//	postgres://user@host:port/db      PostgreSQL through pgx (pgwh)
//
// Exactly once: Load inserts the object version's ledger row and its rows in
// one transaction, so a redelivered or concurrent duplicate is a no-op.
// Callers acknowledge the message that carried the object only after Load
// returns without error.
//
// Streaming: Batch.Rows is a driver.RowSource. Load checks each row as it
// passes and the backend writes it inside the one transaction (PostgreSQL:
// binary COPY; SQLite: chunks of prepared multi-row INSERTs), so memory
// does not grow with the number of rows. The ledger row's rows column holds
// the rows actually written.
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
// Bad rows: by default (driver.DeadLetter) the first row that fails the
// checks, or that the source marked Reject, fails the load with
// ErrInvalidData naming the object, the row (record number and line) and
// the column. With driver.Quarantine such rows are written, with record
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
// (driver.SchemaVersion) in _sluice_meta: opening a warehouse migrates an
// older one forward in one transaction and refuses a newer one.
//
// Errors: ErrInvalidData (the data; permanent), ErrNoTable (the table does
// not exist; permanent until it is created: dead-letter and replay later);
// anything else — connection failures, timeouts, serialization failures,
// deadlocks, a busy or full disk — is transient: retry.
package warehouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/warehouse/driver"
)

// LedgerTable is the name of the ledger table in every backend.
const LedgerTable = driver.LedgerTable

// ErrInvalidData means the batch itself is bad: retrying cannot help (see
// driver.ErrInvalidData). Load returns it, matched with errors.Is, for rows
// it rejects (wrong number of values, a value the column cannot hold, a
// NULL primary key) and for rows the database rejects (e.g. a duplicate
// primary key in append mode). Connection failures, timeouts, cancellation,
// serialization failures and deadlocks are never ErrInvalidData.
var ErrInvalidData = driver.ErrInvalidData

// ErrNoTable means the target table does not exist (see driver.ErrNoTable):
// a retry cannot help until the table is created.
var ErrNoTable = driver.ErrNoTable

// Warehouse wraps a backend.
type Warehouse struct {
	url string
	d   driver.Warehouse
}

// New wraps a backend; url is used in error messages (without secrets).
func New(url string, d driver.Warehouse) *Warehouse { return &Warehouse{url: url, d: d} }

// URL returns the warehouse URL the Warehouse was opened with.
func (w *Warehouse) URL() string { return w.url }

func checkTable(t driver.Table) error {
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
func (w *Warehouse) EnsureTable(ctx context.Context, t driver.Table) error {
	if err := checkTable(t); err != nil {
		return fmt.Errorf("warehouse %s: %w", w.url, err)
	}
	if err := w.d.EnsureTable(ctx, t); err != nil {
		return fmt.Errorf("warehouse %s: create table %s: %w", w.url, t.Name, err)
	}
	return nil
}

// Load commits b exactly once (see the package doc), streaming b.Rows into
// the backend: memory does not grow with the number of rows. It checks
// every row as it passes against b.Table — one value per column, of the Go
// type driver.Type documents (int and int32 are taken for integers,
// float32 for double, []byte for JSON), Integer within 32 bits,
// well-formed JSON, text and JSON in valid UTF-8 without NUL characters
// (PostgreSQL cannot store either, SQLite would), no NULL in a primary key
// or OrderBy column. A bad row, or one the stream marked Reject, fails the
// load with an error wrapping ErrInvalidData that names the object, the row
// (record number and line) and the column — or, with b.OnBadRow
// Quarantine, goes to the table's quarantine table in the same transaction.
// The slices the source returns are not modified.
func (w *Warehouse) Load(ctx context.Context, b driver.Batch) (driver.Result, error) {
	if err := checkTable(b.Table); err != nil {
		return driver.Result{}, fmt.Errorf("warehouse %s: %w", w.url, err)
	}
	fail := func(format string, args ...any) (driver.Result, error) {
		return driver.Result{}, fmt.Errorf("warehouse %s: load object %s into %s: %s", w.url, b.Key, b.Table.Name, fmt.Sprintf(format, args...))
	}
	if b.Key == "" || b.ETag == "" {
		return fail("object key and ETag are required")
	}
	switch b.Mode {
	case driver.Append:
	case driver.Merge:
		if len(b.Table.PrimaryKey) == 0 {
			return fail("write mode merge needs a primary key")
		}
		if b.Version == "" {
			return fail("write mode merge needs the object version's order (Batch.Version)")
		}
	case driver.Replace:
		if b.Version == "" {
			return fail("write mode replace needs the object version's order (Batch.Version)")
		}
	default:
		return fail("unknown write mode %q (append, merge or replace)", b.Mode)
	}
	switch b.OnBadRow {
	case "", driver.DeadLetter:
	case driver.Quarantine:
		if n := len(b.Table.Name) + len(driver.RejectedSuffix); n > 63 {
			return fail("quarantine table %s%s would be %d characters, more than the 63 PostgreSQL allows; shorten the table name", b.Table.Name, driver.RejectedSuffix, n)
		}
	default:
		return fail("unknown on_bad_row %q (dead_letter or quarantine)", b.OnBadRow)
	}
	checked := newCheckedSource(b)
	b.Rows = checked
	res, err := w.d.Load(ctx, b)
	if err != nil && checked.err != nil && errors.Is(err, checked.err) {
		// A refused row: its reason leads, before the warehouse and the
		// backend's own context, so that the start of the message (all
		// `sluice dlq ls` shows) says which row and column.
		return res, fmt.Errorf("load object %s (ETag %s) into %s: %w (warehouse %s)", b.Key, b.ETag, b.Table.Name, checked.err, w.url)
	}
	if err != nil {
		return res, fmt.Errorf("warehouse %s: load object %s (ETag %s) into %s: %w", w.url, b.Key, b.ETag, b.Table.Name, err)
	}
	return res, nil
}

// checkedSource checks the rows of a batch as they stream by (see Load).
type checkedSource struct {
	src        driver.RowSource
	t          driver.Table
	notNull    []bool // primary key and OrderBy columns
	quarantine bool
	err        error // the refused row's error, once returned
}

func newCheckedSource(b driver.Batch) *checkedSource {
	s := &checkedSource{src: driver.Numbered(b.Rows), t: b.Table, quarantine: b.OnBadRow == driver.Quarantine}
	s.notNull = make([]bool, len(b.Table.Columns))
	for j, c := range b.Table.Columns {
		s.notNull[j] = slices.Contains(b.Table.PrimaryKey, c.Name) || c.Name == b.Table.OrderBy && b.Mode == driver.Merge
	}
	return s
}

func (s *checkedSource) Next(ctx context.Context) (driver.Row, error) {
	r, err := s.src.Next(ctx)
	if err != nil {
		return r, err
	}
	if r.Reject == "" {
		r.Values, r.Reject = checkRow(s.t, s.notNull, r.Values)
	}
	if r.Reject != "" && !s.quarantine {
		s.err = fmt.Errorf("%w: %s (set on_bad_record: quarantine in the load's spec to load the good rows and keep the bad ones in %s%s)", ErrInvalidData, driver.RejectReason(r), s.t.Name, driver.RejectedSuffix)
		return driver.Row{}, s.err
	}
	return r, nil
}

// checkRow checks values against t (see Load) and returns them with every
// value in its canonical Go type, or why the row is bad (naming the
// column). Values that already are canonical are passed on without
// copying.
func checkRow(t driver.Table, notNull []bool, values []any) ([]any, string) {
	if len(values) != len(t.Columns) {
		return values, fmt.Sprintf("%d values for %d columns", len(values), len(t.Columns))
	}
	var fixed []any // a copy of values, once a value needs converting
	for j, c := range t.Columns {
		v, converted, err := checkValue(c.Type, values[j])
		if err == nil && v == nil && notNull[j] {
			if c.Name == t.OrderBy {
				err = errors.New("order_by column is null")
			} else {
				err = errors.New("primary key column is null")
			}
		}
		if err != nil {
			return values, fmt.Sprintf("column %s (%s): %v", c.Name, c.Type, err)
		}
		if converted {
			if fixed == nil {
				fixed = slices.Clone(values)
			}
			fixed[j] = v
		}
	}
	if fixed != nil {
		return fixed, ""
	}
	return values, ""
}

// errNUL explains why text with a NUL character is refused on every backend.
var errNUL = errors.New("contains a NUL character (\\u0000), which PostgreSQL cannot store; remove it from the data")

// checkValue checks a value for a column of type t and returns it in its
// canonical Go type, and whether that differs from v's type.
func checkValue(t driver.Type, v any) (canonical any, converted bool, err error) {
	if v == nil {
		return nil, false, nil
	}
	switch t {
	case driver.BigInt, driver.Integer:
		var n int64
		switch x := v.(type) {
		case int64:
			n = x
		case int:
			n, converted = int64(x), true
		case int32:
			n, converted = int64(x), true
		default:
			return nil, false, fmt.Errorf("want an integer, got %T", v)
		}
		if t == driver.Integer && (n < math.MinInt32 || n > math.MaxInt32) {
			return nil, false, fmt.Errorf("%d does not fit a 32-bit integer (use bigint)", n)
		}
		return n, converted, nil
	case driver.Double:
		switch x := v.(type) {
		case float64:
			return x, false, nil
		case float32:
			return float64(x), true, nil
		}
		return nil, false, fmt.Errorf("want a float64, got %T", v)
	case driver.Text:
		s, ok := v.(string)
		switch {
		case !ok:
			return nil, false, fmt.Errorf("want a string, got %T", v)
		case strings.IndexByte(s, 0) >= 0:
			return nil, false, fmt.Errorf("text %w", errNUL)
		case !utf8.ValidString(s):
			return nil, false, fmt.Errorf("text %.40q is not valid UTF-8", s)
		}
		return s, false, nil
	case driver.JSON:
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case []byte:
			s, converted = string(x), true
		default:
			return nil, false, fmt.Errorf("want JSON text as a string, got %T", v)
		}
		switch {
		case !json.Valid([]byte(s)):
			return nil, false, fmt.Errorf("invalid JSON %.40q", s)
		case !utf8.ValidString(s):
			return nil, false, fmt.Errorf("JSON %.40q is not valid UTF-8", s)
		case jsonHasNUL(s):
			return nil, false, fmt.Errorf("JSON %w", errNUL)
		}
		return s, converted, nil
	case driver.Boolean:
		if x, ok := v.(bool); ok {
			return x, false, nil
		}
		return nil, false, fmt.Errorf("want a bool, got %T", v)
	case driver.Timestamp, driver.Date:
		if x, ok := v.(time.Time); ok {
			return x, false, nil
		}
		return nil, false, fmt.Errorf("want a time.Time, got %T", v)
	}
	return nil, false, fmt.Errorf("unknown column type %q", t)
}

// jsonHasNUL reports whether valid JSON text s has a string (or object key)
// holding a NUL character, which JSON can only spell as the escape \u0000.
func jsonHasNUL(s string) bool {
	if !strings.Contains(s, `\u0000`) {
		return false
	}
	dec := json.NewDecoder(strings.NewReader(s))
	for {
		tok, err := dec.Token()
		if err != nil { // io.EOF: s was checked to be valid JSON
			return false
		}
		if str, ok := tok.(string); ok && strings.IndexByte(str, 0) >= 0 {
			return true
		}
	}
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
func (w *Warehouse) Ledger(ctx context.Context, table string) ([]driver.LedgerEntry, error) {
	l, err := w.d.Ledger(ctx, table)
	if err != nil {
		return nil, fmt.Errorf("warehouse %s: read ledger: %w", w.url, err)
	}
	return l, nil
}

// LedgerHas reports, for each of versions (in order), whether table's
// ledger holds that object version. It asks the backend in chunks of
// driver.MaxLedgerLookup versions, one indexed query each, so its cost
// follows len(versions), not the size of the ledger: a caller that checks
// a long listing page by page holds one page at a time.
func (w *Warehouse) LedgerHas(ctx context.Context, table string, versions []driver.ObjectVersion) ([]bool, error) {
	out := make([]bool, 0, len(versions))
	for len(versions) > 0 {
		n := min(len(versions), driver.MaxLedgerLookup)
		has, err := w.d.LedgerHas(ctx, table, versions[:n])
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

// Close releases the backend.
func (w *Warehouse) Close() error { return w.d.Close() }
