// Package driver defines the small interface a warehouse backend implements.
// Users call warehouse.Warehouse, which validates batches and wraps errors
// once for every backend; backends run warehouse/drivertest.
package driver

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Type is a column type, spelled as in pipeline specs.
type Type string

// Column types. Go values in Batch.Rows: int64 for BigInt and Integer,
// float64 for Double, string for Text and JSON (the JSON text), bool for
// Boolean, time.Time for Timestamp (UTC) and Date (midnight UTC); nil is NULL.
//
// warehouse.Warehouse checks every value before a backend's Load sees it
// (its type, Integer within 32 bits, valid JSON, no NUL character in Text
// and JSON, no NULL in a primary key column) and hands backends only these
// canonical types, so backends convert values without checking them again.
const (
	BigInt    Type = "bigint"
	Integer   Type = "integer"
	Double    Type = "double"
	Text      Type = "text"
	Boolean   Type = "boolean"
	Timestamp Type = "timestamp"
	Date      Type = "date"
	JSON      Type = "json"
)

// Valid reports whether t is a known column type.
func (t Type) Valid() bool {
	switch t {
	case BigInt, Integer, Double, Text, Boolean, Timestamp, Date, JSON:
		return true
	}
	return false
}

// ErrInvalidData means the batch itself is bad: retrying cannot help. Match
// it with errors.Is. warehouse.Warehouse returns it for rows it rejects
// before the backend sees them, and backends wrap it around the database's
// own rejections of the data (constraint violations such as a NULL or
// duplicate primary key, values the column cannot hold), keeping the
// database's message. Errors that a retry can cure — connection failures,
// timeouts, cancellation, serialization failures, deadlocks, a busy
// database — never wrap it.
var ErrInvalidData = errors.New("invalid data")

// LedgerTable is the name of the ledger table in every backend.
const LedgerTable = "_sluice_ledger"

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ValidIdent reports whether s can be a table or column name. sluice quotes
// identifiers, but keeps them to this portable set so that the same spec
// works on every backend.
func ValidIdent(s string) bool { return identRE.MatchString(s) }

// Column is a table column.
type Column struct {
	Name string
	Type Type
}

// Table describes a target table. PrimaryKey may be empty (append-only).
type Table struct {
	Name       string
	Columns    []Column
	PrimaryKey []string
}

// Mode is how rows are written.
type Mode string

const (
	// Append inserts every row.
	Append Mode = "append"
	// Merge upserts on the primary key; within one batch the last row for a
	// key wins.
	Merge Mode = "merge"
)

// Batch is the rows of one object version, loaded at most once per table.
type Batch struct {
	Table Table
	Mode  Mode
	// Key and ETag identify the object version; with Table.Name they are
	// the ledger's primary key.
	Key  string
	ETag string
	// Rows holds one value per Table.Columns entry, in that order.
	Rows [][]any
}

// Result says what Load did.
type Result struct {
	// Loaded is false when the ledger already held this object version
	// for this table: nothing was written.
	Loaded bool
	// Rows is the number of rows written.
	Rows int64
}

// LedgerEntry is one committed object version.
type LedgerEntry struct {
	Table    string
	Key      string
	ETag     string
	Rows     int64
	LoadedAt time.Time
}

// Warehouse is a backend. Implementations must be safe for concurrent use.
type Warehouse interface {
	// EnsureTable creates the table when missing (with its primary key).
	// An existing table is left as it is.
	EnsureTable(ctx context.Context, t Table) error
	// Load commits, in one transaction, a ledger row for (table, key, etag)
	// — inserted first, so a concurrent duplicate waits or finds it — and
	// the batch's rows. If the ledger row exists it returns Loaded=false
	// and writes nothing. The table must exist.
	Load(ctx context.Context, b Batch) (Result, error)
	// Query runs a read-only SQL statement and returns column names and
	// rows (values as the database driver returns them).
	Query(ctx context.Context, sql string) (cols []string, rows [][]any, err error)
	// Ledger lists committed object versions of table ("" = all tables).
	Ledger(ctx context.Context, table string) ([]LedgerEntry, error)
	Close() error
}

// ConvertRows turns the rows of b, which warehouse.Load has checked, into a
// backend's own values with convert (false: a value the backend cannot
// store, reported as ErrInvalidData naming the row and column). Each row
// gets spare capacity for extra trailing values.
func ConvertRows(b Batch, extra int, convert func(Type, any) (any, bool)) ([][]any, error) {
	out := make([][]any, len(b.Rows))
	for i, r := range b.Rows {
		if len(r) != len(b.Table.Columns) {
			return nil, fmt.Errorf("%w: row %d has %d values for %d columns", ErrInvalidData, i+1, len(r), len(b.Table.Columns))
		}
		vals := make([]any, len(r), len(r)+extra)
		for j, c := range b.Table.Columns {
			v, ok := convert(c.Type, r[j])
			if !ok {
				return nil, fmt.Errorf("%w: row %d, column %s (%s): unexpected %T value %.40v (warehouse.Load checks and converts values)", ErrInvalidData, i+1, c.Name, c.Type, r[j], r[j])
			}
			vals[j] = v
		}
		out[i] = vals
	}
	return out, nil
}
