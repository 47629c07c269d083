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
	return nil
}

// EnsureTable creates t when it is missing.
func (w *Warehouse) EnsureTable(ctx context.Context, t driver.Table) error {
	if err := checkTable(t); err != nil {
		return fmt.Errorf("warehouse %s: %w", w.url, err)
	}
	if err := w.d.EnsureTable(ctx, t); err != nil {
		return fmt.Errorf("warehouse %s: create table %s: %w", w.url, t.Name, err)
	}
	return nil
}

// Load commits b exactly once (see the package doc). It first checks every
// row against b.Table — one value per column, of the Go type driver.Type
// documents (int and int32 are taken for integers, float32 for double,
// []byte for JSON), Integer within 32 bits, well-formed JSON, text and JSON
// in valid UTF-8 without NUL characters (PostgreSQL cannot store either,
// SQLite would), no NULL in a primary key column — and returns an error
// wrapping ErrInvalidData that names the row and column of the first bad
// value. b.Rows is not modified.
func (w *Warehouse) Load(ctx context.Context, b driver.Batch) (driver.Result, error) {
	if err := checkTable(b.Table); err != nil {
		return driver.Result{}, fmt.Errorf("warehouse %s: %w", w.url, err)
	}
	if b.Key == "" || b.ETag == "" {
		return driver.Result{}, fmt.Errorf("warehouse %s: load into %s: object key and ETag are required", w.url, b.Table.Name)
	}
	switch b.Mode {
	case driver.Append:
	case driver.Merge:
		if len(b.Table.PrimaryKey) == 0 {
			return driver.Result{}, fmt.Errorf("warehouse %s: load into %s: write mode merge needs a primary key", w.url, b.Table.Name)
		}
	default:
		return driver.Result{}, fmt.Errorf("warehouse %s: load into %s: unknown write mode %q (append or merge)", w.url, b.Table.Name, b.Mode)
	}
	rows, err := checkRows(b.Table, b.Rows)
	if err != nil {
		return driver.Result{}, fmt.Errorf("warehouse %s: load object %s (ETag %s) into %s: %w", w.url, b.Key, b.ETag, b.Table.Name, err)
	}
	b.Rows = rows
	res, err := w.d.Load(ctx, b)
	if err != nil {
		return res, fmt.Errorf("warehouse %s: load object %s (ETag %s) into %s: %w", w.url, b.Key, b.ETag, b.Table.Name, err)
	}
	return res, nil
}

// checkRows checks rows against t (see Load) and returns them with every
// value in its canonical Go type. Rows that already are canonical are
// passed on without copying.
func checkRows(t driver.Table, rows [][]any) ([][]any, error) {
	pk := make([]bool, len(t.Columns))
	for j, c := range t.Columns {
		pk[j] = slices.Contains(t.PrimaryKey, c.Name)
	}
	out, copied := rows, false
	for i, r := range rows {
		if len(r) != len(t.Columns) {
			return nil, fmt.Errorf("%w: row %d has %d values for %d columns", ErrInvalidData, i+1, len(r), len(t.Columns))
		}
		var fixed []any // a copy of r, once a value needs converting
		for j, c := range t.Columns {
			v, converted, err := checkValue(c.Type, r[j])
			if err == nil && v == nil && pk[j] {
				err = errors.New("primary key column is null")
			}
			if err != nil {
				return nil, fmt.Errorf("%w: row %d, column %s (%s): %v", ErrInvalidData, i+1, c.Name, c.Type, err)
			}
			if converted {
				if fixed == nil {
					fixed = slices.Clone(r)
				}
				fixed[j] = v
			}
		}
		if fixed != nil {
			if !copied {
				out, copied = slices.Clone(rows), true
			}
			out[i] = fixed
		}
	}
	return out, nil
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

// Close releases the backend.
func (w *Warehouse) Close() error { return w.d.Close() }
