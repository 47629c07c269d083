// Package sqlitewh is the embedded SQLite warehouse backend (modernc.org/sqlite,
// pure Go). It implements warehouse/driver and passes warehouse/drivertest.
//
// The database file is opened in WAL mode with synchronous=FULL (a
// committed load survives an OS crash) and a 10 s busy timeout. Writes
// (EnsureTable, Load) go through one connection and are serialised in the
// process; every Load is one BEGIN IMMEDIATE transaction holding the ledger
// row and the rows, so other processes that write the same file wait (up to
// the busy timeout) instead of interleaving. Reads (Query, Ledger) use a
// separate pool of read-only connections (PRAGMA query_only), so Query can
// never change data and readers do not wait for a load to finish.
//
// Column types are stored as follows (declared type, storage):
//
//	bigint     BIGINT     integer
//	integer    INTEGER    integer (warehouse.Load checks it fits 32 bits)
//	double     REAL       real
//	text       TEXT       text
//	json       TEXT       text (warehouse.Load checks it is valid JSON)
//	boolean    BOOLEAN    integer 0 or 1
//	timestamp  TIMESTAMP  text "2006-01-02T15:04:05.000000Z": UTC, fixed
//	                      width with microseconds (PostgreSQL's precision;
//	                      finer digits are truncated), so text order is
//	                      time order
//	date       DATE       text "2006-01-02"
//
// Load wraps driver.ErrInvalidData around SQLite's rejections of the rows
// (constraint violations such as a NULL or duplicate primary key, datatype
// mismatch, too big); other errors, such as a busy database, are not.
//
// Query returns int64, float64, string, bool (BOOLEAN columns), time.Time in
// UTC (TIMESTAMP and DATE columns) or nil. Expressions over a column lose its
// declared type, so e.g. max(ts) comes back as the stored text.
package sqlitewh

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluicehq/sluice/warehouse/driver"
	"modernc.org/sqlite" // also registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

// TimestampLayout is how timestamp values are stored as text.
const TimestampLayout = "2006-01-02T15:04:05.000000Z"

// DateLayout is how date values are stored as text.
const DateLayout = "2006-01-02"

const ledgerTable = driver.LedgerTable

// Warehouse is a SQLite database file used as a warehouse. It is safe for
// concurrent use.
type Warehouse struct {
	path  string
	wlock chan struct{} // holds one token; serialises writes in this process
	wdb   *sql.DB       // one connection, BEGIN IMMEDIATE
	rdb   *sql.DB       // read-only connections
}

var _ driver.Warehouse = (*Warehouse)(nil)

// Open opens (creating when missing, together with its directory) the
// SQLite database at path and its ledger table. ":memory:" is refused: the
// write and read connections must share a file.
func Open(ctx context.Context, path string) (*Warehouse, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite warehouse: invalid path %q: give a file path such as ./sluice-data/warehouse.db", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite warehouse %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("sqlite warehouse %s: create its directory: %w", abs, err)
	}
	base := "file:" + escapePath(abs) + "?_pragma=busy_timeout(10000)"
	// synchronous(FULL): in WAL mode NORMAL can roll back the last commits
	// on an OS crash or power loss, after the caller acknowledged the
	// message that carried the object; FULL syncs the WAL on every commit.
	wdb, err := sql.Open("sqlite", base+"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("sqlite warehouse %s: %w", abs, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetConnMaxIdleTime(0)
	w := &Warehouse{path: abs, wdb: wdb, wlock: make(chan struct{}, 1)}
	create := `CREATE TABLE IF NOT EXISTS ` + quote(ledgerTable) + ` (
		table_name TEXT NOT NULL,
		object_key TEXT NOT NULL,
		etag TEXT NOT NULL,
		rows INTEGER NOT NULL,
		loaded_at TEXT NOT NULL,
		PRIMARY KEY (table_name, object_key, etag))`
	if _, err := wdb.ExecContext(ctx, create); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlite warehouse %s: open and create ledger table (is the path writable, and is the file a SQLite database?): %w", abs, err)
	}
	rdb, err := sql.Open("sqlite", base+"&_pragma=query_only(1)")
	if err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlite warehouse %s: %w", abs, err)
	}
	rdb.SetMaxOpenConns(4)
	if err := rdb.PingContext(ctx); err != nil {
		wdb.Close()
		rdb.Close()
		return nil, fmt.Errorf("sqlite warehouse %s: open read connection: %w", abs, err)
	}
	w.rdb = rdb
	return w, nil
}

// lock waits for this process's turn to write, or for ctx to end.
func (w *Warehouse) lock(ctx context.Context) error {
	select {
	case w.wlock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sqlite %s: waiting for another write: %w", w.path, ctx.Err())
	}
}

func (w *Warehouse) unlock() { <-w.wlock }

// Path returns the absolute path of the database file.
func (w *Warehouse) Path() string { return w.path }

// escapePath makes p safe inside a SQLite URI filename.
func escapePath(p string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(p)
}

func quote(ident string) string { return `"` + strings.ReplaceAll(ident, `"`, `""`) + `"` }

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quote(n)
	}
	return strings.Join(q, ", ")
}

func declType(t driver.Type) (string, error) {
	switch t {
	case driver.BigInt:
		return "BIGINT", nil
	case driver.Integer:
		return "INTEGER", nil
	case driver.Double:
		return "REAL", nil
	case driver.Text, driver.JSON:
		return "TEXT", nil
	case driver.Boolean:
		return "BOOLEAN", nil
	case driver.Timestamp:
		return "TIMESTAMP", nil
	case driver.Date:
		return "DATE", nil
	}
	return "", fmt.Errorf("unknown column type %q", t)
}

// EnsureTable implements driver.Warehouse.
func (w *Warehouse) EnsureTable(ctx context.Context, t driver.Table) error {
	pk := map[string]bool{}
	for _, k := range t.PrimaryKey {
		pk[k] = true
	}
	var defs []string
	for _, c := range t.Columns {
		dt, err := declType(c.Type)
		if err != nil {
			return fmt.Errorf("column %s: %w", c.Name, err)
		}
		d := quote(c.Name) + " " + dt
		if pk[c.Name] {
			d += " NOT NULL"
		}
		defs = append(defs, d)
	}
	if len(t.PrimaryKey) > 0 {
		defs = append(defs, "PRIMARY KEY ("+quoteList(t.PrimaryKey)+")")
	}
	stmt := "CREATE TABLE IF NOT EXISTS " + quote(t.Name) + " (" + strings.Join(defs, ", ") + ")"
	if err := w.lock(ctx); err != nil {
		return err
	}
	defer w.unlock()
	if _, err := w.wdb.ExecContext(ctx, stmt); err != nil {
		return fmt.Errorf("sqlite %s: %w", w.path, err)
	}
	return nil
}

// Load implements driver.Warehouse. Cancelling ctx rolls the load back.
func (w *Warehouse) Load(ctx context.Context, b driver.Batch) (driver.Result, error) {
	switch {
	case b.Mode != driver.Append && b.Mode != driver.Merge:
		return driver.Result{}, fmt.Errorf("unknown write mode %q (append or merge)", b.Mode)
	case b.Mode == driver.Merge && len(b.Table.PrimaryKey) == 0:
		return driver.Result{}, fmt.Errorf("write mode merge needs a primary key")
	case len(b.Table.Columns) == 0:
		return driver.Result{}, fmt.Errorf("table %s has no columns", b.Table.Name)
	}
	rows, err := convertRows(b)
	if err != nil {
		return driver.Result{}, err
	}
	if b.Mode == driver.Merge {
		rows = lastPerKey(b.Table, rows)
	}
	// Rows go in multi-row INSERTs of up to chunk rows (SQLite allows 32766
	// parameters per statement): about 1.3x the rows/s of one statement per
	// row in BenchmarkLoadAppend.
	chunk := max(1, min(256, 32766/len(b.Table.Columns)))

	if err := w.lock(ctx); err != nil {
		return driver.Result{}, err
	}
	defer w.unlock()
	tx, err := w.wdb.BeginTx(ctx, nil)
	if err != nil {
		return driver.Result{}, fmt.Errorf("sqlite %s: begin: %w", w.path, err)
	}
	defer tx.Rollback() // no-op after Commit
	res, err := tx.ExecContext(ctx, `INSERT INTO `+quote(ledgerTable)+` (table_name, object_key, etag, rows, loaded_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		b.Table.Name, b.Key, b.ETag, int64(len(rows)), time.Now().UTC().Format(TimestampLayout))
	if err != nil {
		return driver.Result{}, fmt.Errorf("sqlite %s: insert ledger row: %w", w.path, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return driver.Result{}, fmt.Errorf("sqlite %s: insert ledger row: %w", w.path, err)
	} else if n == 0 {
		return driver.Result{Loaded: false}, nil // already loaded; Rollback ends the transaction
	}
	var stmt *sql.Stmt // for full chunks
	defer func() {
		if stmt != nil {
			stmt.Close()
		}
	}()
	for start := 0; start < len(rows); start += chunk {
		part := rows[start:min(start+chunk, len(rows))]
		args := make([]any, 0, len(part)*len(b.Table.Columns))
		for _, r := range part {
			args = append(args, r.vals...)
		}
		var err error
		if len(part) == chunk {
			if stmt == nil {
				if stmt, err = tx.PrepareContext(ctx, insertStatement(b.Table, b.Mode, chunk)); err != nil {
					return driver.Result{}, fmt.Errorf("sqlite %s: prepare insert into %s (does the table exist with these columns?): %w", w.path, b.Table.Name, err)
				}
			}
			_, err = stmt.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, insertStatement(b.Table, b.Mode, len(part)), args...)
		}
		if isDataError(err) {
			return driver.Result{}, fmt.Errorf("sqlite %s: insert rows %d to %d into %s: %w: %w", w.path, part[0].n, part[len(part)-1].n, b.Table.Name, driver.ErrInvalidData, err)
		}
		if err != nil {
			return driver.Result{}, fmt.Errorf("sqlite %s: insert rows %d to %d into %s: %w", w.path, part[0].n, part[len(part)-1].n, b.Table.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return driver.Result{}, fmt.Errorf("sqlite %s: commit: %w", w.path, err)
	}
	return driver.Result{Loaded: true, Rows: int64(len(rows))}, nil
}

// insertStatement inserts (append) or upserts (merge) n rows.
func insertStatement(t driver.Table, mode driver.Mode, n int) string {
	names := make([]string, len(t.Columns))
	ph := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
		ph[i] = "?"
	}
	tuple := "(" + strings.Join(ph, ", ") + ")"
	var sb strings.Builder
	sb.WriteString("INSERT INTO " + quote(t.Name) + " (" + quoteList(names) + ") VALUES ")
	for i := range n {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(tuple)
	}
	if mode == driver.Merge {
		pk := map[string]bool{}
		for _, k := range t.PrimaryKey {
			pk[k] = true
		}
		var set []string
		for _, c := range t.Columns {
			if !pk[c.Name] {
				set = append(set, quote(c.Name)+" = excluded."+quote(c.Name))
			}
		}
		sb.WriteString(" ON CONFLICT (" + quoteList(t.PrimaryKey) + ")")
		if len(set) == 0 {
			sb.WriteString(" DO NOTHING")
		} else {
			sb.WriteString(" DO UPDATE SET " + strings.Join(set, ", "))
		}
	}
	return sb.String()
}

// row is a converted row and its 1-based number in the batch.
type row struct {
	n    int
	vals []any
}

// convertRows turns rows that warehouse.Load checked into the values
// SQLite stores, numbered for messages (merge drops and reorders rows).
func convertRows(b driver.Batch) ([]row, error) {
	vals, err := driver.ConvertRows(b, 0, convert)
	if err != nil {
		return nil, err
	}
	out := make([]row, len(vals))
	for i, v := range vals {
		out[i] = row{n: i + 1, vals: v}
	}
	return out, nil
}

// convert returns the value SQLite stores for v, a value of column type t
// in the Go type driver.Type documents; false for any other value.
func convert(t driver.Type, v any) (any, bool) {
	switch x := v.(type) {
	case nil:
		return nil, true
	case int64:
		switch t {
		case driver.BigInt:
			return x, true
		case driver.Integer:
			return x, x >= math.MinInt32 && x <= math.MaxInt32
		}
	case float64:
		return x, t == driver.Double
	case string:
		return x, t == driver.Text || t == driver.JSON
	case bool:
		if t == driver.Boolean {
			if x {
				return int64(1), true
			}
			return int64(0), true
		}
	case time.Time:
		switch t {
		case driver.Timestamp:
			return x.UTC().Truncate(time.Microsecond).Format(TimestampLayout), true
		case driver.Date:
			return x.UTC().Format(DateLayout), true
		}
	}
	return nil, false
}

// isDataError reports whether err is SQLite rejecting the data itself: a
// constraint violation (NOT NULL, UNIQUE, PRIMARY KEY, CHECK), a datatype
// mismatch or a value too big. A busy or locked database, I/O errors and
// interruption are not.
func isDataError(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff { // the primary result code of an extended one
	case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_MISMATCH, sqlite3.SQLITE_TOOBIG:
		return true
	}
	return false
}

// lastPerKey keeps, for every primary key, only the last row that has it,
// in batch order.
func lastPerKey(t driver.Table, rows []row) []row {
	idx := make([]int, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		for j, c := range t.Columns {
			if c.Name == k {
				idx[i] = j
			}
		}
	}
	last := make(map[string]int, len(rows))
	keys := make([]string, len(rows))
	for i, r := range rows {
		var buf []byte
		for _, j := range idx {
			switch x := r.vals[j].(type) {
			case int64:
				buf = append(buf, 'i')
				buf = binary.AppendVarint(buf, x)
			case float64:
				buf = append(buf, 'f')
				buf = binary.BigEndian.AppendUint64(buf, math.Float64bits(x))
			case string:
				buf = append(buf, 's')
				buf = binary.AppendUvarint(buf, uint64(len(x)))
				buf = append(buf, x...)
			}
		}
		keys[i] = string(buf)
		last[keys[i]] = i
	}
	if len(last) == len(rows) {
		return rows
	}
	out := make([]row, 0, len(last))
	for i, r := range rows {
		if last[keys[i]] == i {
			out = append(out, r)
		}
	}
	return out
}

// Query implements driver.Warehouse on a read-only connection.
func (w *Warehouse) Query(ctx context.Context, query string) ([]string, [][]any, error) {
	rs, err := w.rdb.QueryContext(ctx, query)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite %s: %w", w.path, err)
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite %s: %w", w.path, err)
	}
	cts, err := rs.ColumnTypes()
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite %s: %w", w.path, err)
	}
	var out [][]any
	for rs.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			return nil, nil, fmt.Errorf("sqlite %s: read row %d: %w", w.path, len(out)+1, err)
		}
		for i, v := range vals {
			switch x := v.(type) {
			case []byte:
				vals[i] = string(x)
			case int64:
				if cts[i].DatabaseTypeName() == "BOOLEAN" {
					vals[i] = x != 0
				}
			case time.Time:
				vals[i] = x.UTC()
			}
		}
		out = append(out, vals)
	}
	if err := rs.Err(); err != nil {
		return nil, nil, fmt.Errorf("sqlite %s: %w", w.path, err)
	}
	return cols, out, nil
}

// Ledger implements driver.Warehouse, oldest first.
func (w *Warehouse) Ledger(ctx context.Context, table string) ([]driver.LedgerEntry, error) {
	q := `SELECT table_name, object_key, etag, rows, loaded_at FROM ` + quote(ledgerTable)
	var args []any
	if table != "" {
		q += ` WHERE table_name = ?`
		args = append(args, table)
	}
	q += ` ORDER BY loaded_at, table_name, object_key, etag`
	rs, err := w.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", w.path, err)
	}
	defer rs.Close()
	var out []driver.LedgerEntry
	for rs.Next() {
		var e driver.LedgerEntry
		var at string
		if err := rs.Scan(&e.Table, &e.Key, &e.ETag, &e.Rows, &at); err != nil {
			return nil, fmt.Errorf("sqlite %s: read ledger row: %w", w.path, err)
		}
		if e.LoadedAt, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return nil, fmt.Errorf("sqlite %s: ledger row for %s %s: bad loaded_at %q: %w", w.path, e.Table, e.Key, at, err)
		}
		out = append(out, e)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", w.path, err)
	}
	return out, nil
}

// Close closes both connection pools.
func (w *Warehouse) Close() error {
	return errors.Join(w.rdb.Close(), w.wdb.Close())
}
