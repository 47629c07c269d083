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
	"fmt"

	"github.com/sluicehq/sluice/warehouse/driver"
)

// LedgerTable is the name of the ledger table in every backend.
const LedgerTable = driver.LedgerTable

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

// Load commits b exactly once (see the package doc).
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
	for i, r := range b.Rows {
		if len(r) != len(b.Table.Columns) {
			return driver.Result{}, fmt.Errorf("warehouse %s: load %s into %s: row %d has %d values for %d columns", w.url, b.Key, b.Table.Name, i+1, len(r), len(b.Table.Columns))
		}
	}
	res, err := w.d.Load(ctx, b)
	if err != nil {
		return res, fmt.Errorf("warehouse %s: load object %s (ETag %s) into %s: %w", w.url, b.Key, b.ETag, b.Table.Name, err)
	}
	return res, nil
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
