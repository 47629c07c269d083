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
//	real       REAL       real, rounded to 32 bits as PostgreSQL's real is
//	text       TEXT       text
//	json       TEXT       text (warehouse.Load checks it is valid JSON)
//	boolean    BOOLEAN    integer 0 or 1
//	timestamp  TIMESTAMP  text "2006-01-02T15:04:05.000000Z": UTC, fixed
//	                      width with microseconds (PostgreSQL's precision;
//	                      finer digits are truncated), so text order is
//	                      time order
//	date       DATE       text "2006-01-02"
//
// Load binds the values of each batch straight from its vectors into
// multi-row INSERTs of a power-of-two number of rows (up to 4096, within
// SQLite's 32766 bound parameters), kept prepared across loads; a
// statement never spans batches, so only one batch is in memory. Merge is
// an INSERT ... ON CONFLICT DO UPDATE ... WHERE (excluded.order_by,
// excluded._sluice_version) >= (stored), which SQLite applies row by row,
// so the later row of a key wins within an object without buffering. Its
// Rows result, the rows holding the object's version afterwards, is the
// sum of the statements' changes, rows that repeat a key of their object
// (driver.KeySet) being upserted one by one after a look-up (see
// writeRows); tables merged by earlier versions of sluice keep an index on
// _sluice_version that is no longer needed. Replace deletes the key's rows
// through an index on _sluice_key. Rejected rows are inserted into
// <table>__rejected as they come.
//
// Measured with BenchmarkLoad (bench_test.go): 1,000,000 posts-shaped rows
// (userid bigint, id bigint primary key, title text, body text; ~330 bytes
// of values a row) into a new file, the four in turn on this shared 2-core
// machine:
//
//	                                                     rows/s   vs sqlite3
//	sluice merge on id, 100 objects of 10,000 rows       213,000   0.89
//	sluice append, no key, 100 objects                   283,000   1.18
//	sqlite3 .import of the CSV, WAL, synchronous=FULL    203,000   0.85
//	sqlite3 .import of the CSV, shell defaults           239,000   1
//
// sqlite3 with this package's settings is the like-for-like reference;
// the shell's default rollback journal writes each page once where WAL
// writes it twice (log, then checkpoint), and imports in one transaction
// where sluice commits (and syncs) once per object. Two changes made the
// merge figure: statements kept prepared (parsing statements of 20,000
// parameters for every load took 7 % of the CPU) and no index on
// _sluice_version (it cost sqlite3 .import 25-33 % more time for the same
// rows). Tried and not kept: wal_autocheckpoint 10000 instead of 1000
// (merges at 0.96 and 0.92 of sqlite3 against 1.19 and 1.14 with
// 1000, in alternating runs). No setting
// that weakens durability is used (synchronous stays FULL).
//
// Load wraps driver.ErrInvalidData around SQLite's rejections of the rows
// (constraint violations such as a NULL or duplicate primary key, datatype
// mismatch, too big) and driver.ErrNoTable around "no such table"; other
// errors, such as a busy database or a full disk, are not classified.
//
// Schema: column types are compared by declared type (PRAGMA table_info),
// so text and json, both TEXT, cannot be told apart.
//
// Query returns int64, float64, string, bool (BOOLEAN columns), time.Time in
// UTC (TIMESTAMP and DATE columns) or nil. Expressions over a column lose its
// declared type, so e.g. max(ts) comes back as the stored text.
package sqlitewh

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/sqliteuri"
	"github.com/sluicehq/sluice/schema"
	"github.com/sluicehq/sluice/warehouse"
	"github.com/sluicehq/sluice/warehouse/driver"
	"modernc.org/sqlite" // also registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

func init() {
	warehouse.Register("sqlite", warehouse.Backend{
		Open:     func(ctx context.Context, path string) (driver.Warehouse, error) { return Open(ctx, path) },
		ReadOnly: func(ctx context.Context, path string) (driver.Warehouse, error) { return OpenReadOnly(ctx, path) },
	})
}

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
	// prepared holds the driver.Signature of every batch whose table Load
	// checked (and extended) in a committed transaction.
	prepared sync.Map
	// stmts holds the prepared INSERT statements of Load, by table
	// signature and row count; used under wlock.
	stmts map[string]*sql.Stmt
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
	base := sqliteuri.File(abs, "?_pragma=busy_timeout(10000)")
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
	if err := w.migrate(ctx); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("sqlite warehouse %s: %w", abs, err)
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

// OpenReadOnly opens an existing warehouse file for queries only (Query,
// Ledger), without creating or migrating anything, so that `sluice sql`
// works while another process writes the file and on a full disk. When the
// disk is too full to map the write-ahead log's shared memory, it reads the
// database file alone (SQLite's immutable mode), which misses only commits
// not yet checkpointed; Close checkpoints, so after a clean stop nothing is
// missed.
func OpenReadOnly(ctx context.Context, path string) (*Warehouse, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite warehouse %s: %w", path, err)
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("sqlite warehouse %s: %w", abs, err)
	}
	var firstErr error
	for _, q := range []string{"?mode=ro&_pragma=busy_timeout(10000)&_pragma=query_only(1)", "?mode=ro&immutable=1"} {
		rdb, err := sql.Open("sqlite", sqliteuri.File(abs, q))
		if err == nil {
			var n int
			if err = rdb.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&n); err == nil {
				rdb.SetMaxOpenConns(4)
				return &Warehouse{path: abs, rdb: rdb, wlock: make(chan struct{}, 1)}, nil
			}
			rdb.Close()
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("sqlite warehouse %s: open read-only: %w", abs, firstErr)
}

// lock waits for this process's turn to write, or for ctx to end.
func (w *Warehouse) lock(ctx context.Context) error {
	if w.wdb == nil {
		return fmt.Errorf("sqlite %s: opened read-only (OpenReadOnly): it cannot be written", w.path)
	}
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
	case driver.Double, driver.Real:
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

// migrate brings sluice's own tables to driver.SchemaVersion in one
// transaction (see driver.SchemaVersion), refusing a newer schema.
func (w *Warehouse) migrate(ctx context.Context) error {
	tx, err := w.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("open (is the path writable, and is the file a SQLite database?): %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+quote(driver.MetaTable)+` (key TEXT PRIMARY KEY, value TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("create %s (is the path writable, and is the file a SQLite database?): %w", driver.MetaTable, err)
	}
	var v int
	err = tx.QueryRowContext(ctx, `SELECT CAST(value AS INTEGER) FROM `+quote(driver.MetaTable)+` WHERE key = 'schema_version'`).Scan(&v)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > driver.SchemaVersion {
		return fmt.Errorf("its sluice tables have schema version %d, newer than the %d this sluice knows: a newer sluice wrote them; upgrade sluice", v, driver.SchemaVersion)
	}
	if v == driver.SchemaVersion {
		return nil
	}
	steps := []string{
		// Version 1: the ledger (which existed before _sluice_meta did).
		`CREATE TABLE IF NOT EXISTS ` + quote(ledgerTable) + ` (
			table_name TEXT NOT NULL,
			object_key TEXT NOT NULL,
			etag TEXT NOT NULL,
			rows INTEGER NOT NULL,
			loaded_at TEXT NOT NULL,
			PRIMARY KEY (table_name, object_key, etag))`,
		// Version 2.
		`ALTER TABLE ` + quote(ledgerTable) + ` ADD COLUMN version TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE ` + quote(ledgerTable) + ` ADD COLUMN rejected INTEGER NOT NULL DEFAULT 0`,
		`CREATE TABLE IF NOT EXISTS ` + quote(driver.CurrentTable) + ` (
			table_name TEXT NOT NULL,
			object_key TEXT NOT NULL,
			version TEXT NOT NULL,
			etag TEXT NOT NULL,
			PRIMARY KEY (table_name, object_key))`,
	}
	from := map[int]int{0: 0, 1: 1} // schema version → first step to run
	for _, st := range steps[from[v]:] {
		if _, err := tx.ExecContext(ctx, st); err != nil {
			return fmt.Errorf("migrate sluice tables from schema version %d to %d: %w", v, driver.SchemaVersion, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO `+quote(driver.MetaTable)+` (key, value) VALUES ('schema_version', ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, fmt.Sprint(driver.SchemaVersion)); err != nil {
		return fmt.Errorf("record schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate sluice tables: commit: %w", err)
	}
	return nil
}

// execer is what the schema helpers need of a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// columns returns the declared types of the columns of table, none when it
// does not exist.
func columns(ctx context.Context, tx execer, table string) (map[string]string, error) {
	rs, err := tx.QueryContext(ctx, `SELECT name, type FROM pragma_table_info(?)`, table)
	if err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", table, err)
	}
	defer rs.Close()
	have := map[string]string{}
	for rs.Next() {
		var n, t string
		if err := rs.Scan(&n, &t); err != nil {
			return nil, fmt.Errorf("read columns of %s: %w", table, err)
		}
		have[n] = t
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("read columns of %s: %w", table, err)
	}
	return have, nil
}

func typeName(t driver.Type) string {
	n, _ := declType(t)
	return n
}

// addColumns adds to table t the columns it lacks of t.Columns and hidden,
// and fails naming both types when one has another type. It reports
// whether the table exists.
func addColumns(ctx context.Context, tx execer, t driver.Table, hidden []driver.Column) (bool, error) {
	have, err := columns(ctx, tx, t.Name)
	if err != nil || len(have) == 0 {
		return false, err
	}
	add, err := driver.ColumnDiff(t, have, hidden, typeName)
	if err != nil {
		return true, err
	}
	for _, c := range add {
		def := quote(c.Name) + " " + typeName(c.Type)
		if c.Name == driver.VersionColumn || c.Name == driver.KeyColumn {
			def += " NOT NULL DEFAULT ''" // rows written before: any version is newer
		}
		if _, err := tx.ExecContext(ctx, "ALTER TABLE "+quote(t.Name)+" ADD COLUMN "+def); err != nil {
			return true, fmt.Errorf("table %s: add column %s: %w", t.Name, c.Name, err)
		}
	}
	return true, nil
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
	if err := w.lock(ctx); err != nil {
		return err
	}
	defer w.unlock()
	tx, err := w.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite %s: begin: %w", w.path, err)
	}
	defer tx.Rollback()
	exists, err := addColumns(ctx, tx, t, nil)
	if err != nil {
		return fmt.Errorf("sqlite %s: %w", w.path, err)
	}
	if !exists {
		if _, err := tx.ExecContext(ctx, "CREATE TABLE "+quote(t.Name)+" ("+strings.Join(defs, ", ")+")"); err != nil {
			return fmt.Errorf("sqlite %s: %w", w.path, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite %s: commit: %w", w.path, err)
	}
	return nil
}

// prepareTable makes table b.Table ready for b inside the load's
// transaction: it must exist (else driver.ErrNoTable); columns the spec
// added and the hidden columns of the mode are added, with their indexes,
// and with Quarantine the quarantine table is created.
func prepareTable(ctx context.Context, tx execer, b driver.Batch) error {
	t := b.Table
	exists, err := addColumns(ctx, tx, t, driver.HiddenColumns(b.Mode))
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("%w: table %s is missing; create it (sluice creates the tables of a pipeline when it starts) and replay the object", driver.ErrNoTable, t.Name)
	}
	var stmts []string
	if b.Mode == driver.Replace {
		stmts = append(stmts, "CREATE INDEX IF NOT EXISTS "+quote(t.Name+"__sluice_key")+" ON "+quote(t.Name)+" ("+quote(driver.KeyColumn)+")")
	}
	if b.OnBadRow == driver.Quarantine {
		stmts = append(stmts, "CREATE TABLE IF NOT EXISTS "+quote(t.Name+driver.RejectedSuffix)+` (
			_sluice_key TEXT NOT NULL,
			_sluice_etag TEXT NOT NULL,
			record INTEGER NOT NULL,
			line INTEGER,
			reason TEXT NOT NULL,
			raw TEXT NOT NULL,
			rejected_at TIMESTAMP NOT NULL)`)
	}
	for _, st := range stmts {
		if _, err := tx.ExecContext(ctx, st); err != nil {
			return fmt.Errorf("prepare table %s: %w", t.Name, err)
		}
	}
	return nil
}

// Load implements driver.Warehouse. Cancelling ctx rolls the load back.
func (w *Warehouse) Load(ctx context.Context, b driver.Batch) (driver.Result, error) {
	switch {
	case b.Mode != driver.Append && b.Mode != driver.Merge && b.Mode != driver.Replace:
		return driver.Result{}, fmt.Errorf("unknown write mode %q (append, merge or replace)", b.Mode)
	case b.Mode == driver.Merge && len(b.Table.PrimaryKey) == 0:
		return driver.Result{}, fmt.Errorf("write mode merge needs a primary key")
	case len(b.Table.Columns) == 0:
		return driver.Result{}, fmt.Errorf("table %s has no columns", b.Table.Name)
	}
	if err := w.lock(ctx); err != nil {
		return driver.Result{}, err
	}
	defer w.unlock()
	res, err := w.load(ctx, b)
	if err != nil {
		if isNoTable(err) && !errors.Is(err, driver.ErrNoTable) {
			err = fmt.Errorf("%w: %w", driver.ErrNoTable, err)
		}
		return driver.Result{}, fmt.Errorf("sqlite %s: %w", w.path, err)
	}
	return res, nil
}

// load runs Load's transaction; the caller holds the write lock.
func (w *Warehouse) load(ctx context.Context, b driver.Batch) (driver.Result, error) {
	sig := driver.Signature(b)
	if _, ok := w.prepared.Load(sig); ok {
		w.keepStmts(ctx, b)
	}
	tx, err := w.wdb.BeginTx(ctx, nil)
	if err != nil {
		return driver.Result{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() // no-op after Commit
	now := time.Now().UTC().Format(TimestampLayout)
	ins, err := tx.ExecContext(ctx, `INSERT INTO `+quote(ledgerTable)+` (table_name, object_key, etag, rows, loaded_at, version)
		VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT DO NOTHING`,
		b.Table.Name, b.Key, b.ETag, now, b.Version)
	if err != nil {
		return driver.Result{}, fmt.Errorf("insert ledger row: %w", err)
	}
	if n, err := ins.RowsAffected(); err != nil {
		return driver.Result{}, fmt.Errorf("insert ledger row: %w", err)
	} else if n == 0 {
		return driver.Result{Loaded: false}, nil // already loaded; Rollback ends the transaction
	}
	if _, ok := w.prepared.Load(sig); !ok {
		if err := prepareTable(ctx, tx, b); err != nil {
			return driver.Result{}, err
		}
	}
	if b.Mode == driver.Replace {
		var one int
		err := tx.QueryRowContext(ctx, `INSERT INTO `+quote(driver.CurrentTable)+` (table_name, object_key, version, etag) VALUES (?, ?, ?, ?)
			ON CONFLICT (table_name, object_key) DO UPDATE SET version = excluded.version, etag = excluded.etag
			WHERE excluded.version > `+quote(driver.CurrentTable)+`.version RETURNING 1`,
			b.Table.Name, b.Key, b.Version, b.ETag).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) { // a newer version is loaded: keep only the ledger row
			if err := tx.Commit(); err != nil {
				return driver.Result{}, fmt.Errorf("commit: %w", err)
			}
			w.prepared.Store(sig, true)
			return driver.Result{Loaded: true, Superseded: true}, nil
		}
		if err != nil {
			return driver.Result{}, fmt.Errorf("record the current version of %s: %w", b.Key, err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+quote(b.Table.Name)+" WHERE "+quote(driver.KeyColumn)+" = ?", b.Key); err != nil {
			return driver.Result{}, fmt.Errorf("delete the rows of the previous version of %s from %s: %w", b.Key, b.Table.Name, err)
		}
	}
	res, err := w.writeRows(ctx, tx, b)
	if err != nil {
		return driver.Result{}, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE `+quote(ledgerTable)+` SET rows = ?, rejected = ? WHERE table_name = ? AND object_key = ? AND etag = ?`,
		res.Rows, res.Rejected, b.Table.Name, b.Key, b.ETag); err != nil {
		return driver.Result{}, fmt.Errorf("update ledger row: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return driver.Result{}, fmt.Errorf("commit: %w", err)
	}
	w.prepared.Store(sig, true)
	res.Loaded = true
	return res, nil
}

// writeRows streams b.Rows into the table in multi-row INSERTs bound
// straight from the batches' vectors: each batch in statements of a
// power-of-two number of rows (the greatest that fits SQLite's limit of
// 32766 bound parameters, then smaller ones for the rest), prepared once
// per process and kept (see stmt). A statement never spans batches, so
// text is bound from the batch's arena without copying it first (the
// driver copies it into SQLite). Rejected rows go to the quarantine table
// as they come.
//
// Merge upserts in stream order (SQLite applies a multi-row upsert row by
// row), so the later row of a key wins within an object. Its Rows result,
// the keys holding the object's version afterwards, is the sum of the
// statements' changes, except for rows that repeat a key of an earlier
// row of the object (driver.KeySet tells them): each is upserted alone
// after looking up whether its key already holds the version, and counts
// only if it does not and the upsert changes the row.
func (w *Warehouse) writeRows(ctx context.Context, tx *sql.Tx, b driver.Batch) (driver.Result, error) {
	var res driver.Result
	if b.Rows == nil {
		return res, nil
	}
	maxRows := chunkRows(b)
	txStmts := map[int]*sql.Stmt{}
	var keys *driver.KeySet
	var lookup *sql.Stmt // whether a key holds b's version (merge)
	if b.Mode == driver.Merge {
		keys = driver.NewKeySet(b.Table)
	}
	var rejected *sql.Stmt
	var args []any
	var tail []any // the hidden columns' values
	switch b.Mode {
	case driver.Merge:
		tail = []any{b.Version}
	case driver.Replace:
		tail = []any{b.Key, b.Version}
	}
	// insert runs rows from to to of bt in one statement and returns its
	// changes.
	var insert func(bt *schema.Batch, from, to int) (int64, error)
	insert = func(bt *schema.Batch, from, to int) (int64, error) {
		st, err := w.stmt(ctx, tx, txStmts, b, to-from)
		if err != nil {
			return 0, err
		}
		args = appendArgs(args[:0], bt, from, to, tail)
		r, err := st.ExecContext(ctx, args...)
		if err == nil {
			var n int64
			if n, err = r.RowsAffected(); err == nil {
				return n, nil
			}
		}
		if isDataError(err) {
			if to-from > 1 {
				// Name the row: SQLite undid the statement and the
				// transaction goes on, so insert its rows one by one
				// until one fails (the caller rolls back on the error).
				for i := from; i < to; i++ {
					if _, err := insert(bt, i, i+1); err != nil {
						return 0, err
					}
				}
			}
			hint := ""
			if strings.Contains(err.Error(), "UNIQUE") {
				hint = " (its key is already in the table or earlier in this object: write: merge updates rows by key, or remove the duplicate)"
			}
			where := fmt.Sprintf("record %d", bt.N[from])
			if l := bt.Line[from]; l > 0 {
				where += fmt.Sprintf(" (line %d)", l)
			}
			return 0, fmt.Errorf("insert %s into %s: %w: %w%s", where, b.Table.Name, driver.ErrInvalidData, err, hint)
		}
		return 0, fmt.Errorf("insert rows %d to %d into %s: %w", bt.N[from], bt.N[to-1], b.Table.Name, err)
	}
	// held reports whether the key of row i of bt holds b's version.
	held := func(bt *schema.Batch, i int) (bool, error) {
		if lookup == nil {
			var err error
			if lookup, err = tx.PrepareContext(ctx, "SELECT "+quote(driver.VersionColumn)+" = ? FROM "+quote(b.Table.Name)+" WHERE "+keyMatch(b.Table)); err != nil {
				return false, fmt.Errorf("prepare key lookup in %s: %w", b.Table.Name, err)
			}
		}
		kargs := []any{b.Version}
		for _, k := range b.Table.PrimaryKey {
			j := slices.IndexFunc(b.Table.Columns, func(c schema.Column) bool { return c.Name == k })
			kargs = append(kargs, value(&bt.Vecs[j], i))
		}
		var is bool
		err := lookup.QueryRowContext(ctx, kargs...).Scan(&is)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("look up the key of row %d in %s: %w", bt.N[i], b.Table.Name, err)
		}
		return is, nil
	}
	for {
		bt, err := b.Rows.Next(ctx)
		if errors.Is(err, io.EOF) {
			return res, nil
		}
		if err != nil {
			return res, err
		}
		if r, ok := driver.FirstReject(bt); ok {
			if b.OnBadRow != driver.Quarantine {
				return res, driver.RejectError(r)
			}
			if rejected == nil {
				if rejected, err = tx.PrepareContext(ctx, "INSERT INTO "+quote(b.Table.Name+driver.RejectedSuffix)+
					" (_sluice_key, _sluice_etag, record, line, reason, raw, rejected_at) VALUES (?, ?, ?, ?, ?, ?, ?)"); err != nil {
					return res, fmt.Errorf("prepare insert into %s%s: %w", b.Table.Name, driver.RejectedSuffix, err)
				}
			}
			now := time.Now().UTC().Format(TimestampLayout)
			for _, r := range bt.Rejects {
				var line any
				if r.Line > 0 {
					line = r.Line
				}
				if _, err := rejected.ExecContext(ctx, b.Key, b.ETag, r.N, line, driver.Storable(r.Reason), driver.Storable(r.Raw), now); err != nil {
					return res, fmt.Errorf("quarantine row %d in %s%s: %w", r.N, b.Table.Name, driver.RejectedSuffix, err)
				}
				res.Rejected++
			}
		}
		var rep []bool
		if keys != nil {
			rep = keys.Add(bt)
		}
		for i, n := 0, bt.Len(); i < n; {
			if rep != nil && rep[i] {
				had, err := held(bt, i)
				if err != nil {
					return res, err
				}
				c, err := insert(bt, i, i+1)
				if err != nil {
					return res, err
				}
				if !had {
					res.Rows += c
				}
				i++
				continue
			}
			// The greatest power of two of rows, up to maxRows, that
			// repeat no key.
			run := 0
			for i+run < n && run < maxRows && (rep == nil || !rep[i+run]) {
				run++
			}
			for run&(run-1) != 0 {
				run &= run - 1
			}
			c, err := insert(bt, i, i+run)
			if err != nil {
				return res, err
			}
			res.Rows += c
			i += run
		}
	}
}

// maxChunkRows bounds the rows of one INSERT statement (prepared
// statements of thousands of rows take megabytes; past a few hundred rows
// the statement's own cost is negligible).
const maxChunkRows = 4096

// maxStmts bounds the statements a Warehouse keeps prepared (those of a
// few tables).
const maxStmts = 64

// stmt returns the statement that inserts (or, for merge, upserts) n rows
// of b's table in tx: one prepared before the transaction by keepStmts
// when there is one, else one prepared in tx (and kept in txStmts until
// the transaction ends).
func (w *Warehouse) stmt(ctx context.Context, tx *sql.Tx, txStmts map[int]*sql.Stmt, b driver.Batch, n int) (*sql.Stmt, error) {
	if st, ok := w.stmts[stmtKey(b, n)]; ok {
		return tx.StmtContext(ctx, st), nil
	}
	if st, ok := txStmts[n]; ok {
		return st, nil
	}
	st, err := tx.PrepareContext(ctx, insertStatement(b.Table, b.Mode, n))
	if err != nil {
		return nil, fmt.Errorf("prepare insert into %s (does the table exist with these columns?): %w", b.Table.Name, err)
	}
	txStmts[n] = st
	return st, nil
}

func stmtKey(b driver.Batch, n int) string { return fmt.Sprintf("%s|%d", driver.Signature(b), n) }

// keepStmts prepares, on the write connection and outside a transaction
// (database/sql cannot prepare a lasting statement while the one
// connection is in one), the INSERT statements of every row count a load
// of b uses, unless they are kept already, so that later loads skip
// SQLite's parsing of statements of thousands of parameters (measured:
// 7 % of a load's CPU when prepared per load). It runs once b's table
// is known to be ready (after a load of its signature committed); a
// failure only leaves the statements to be prepared in the load's
// transaction. The caller holds the write lock.
func (w *Warehouse) keepStmts(ctx context.Context, b driver.Batch) {
	if _, ok := w.stmts[stmtKey(b, 1)]; ok {
		return
	}
	if len(w.stmts) >= maxStmts {
		for k, s := range w.stmts {
			s.Close()
			delete(w.stmts, k)
		}
	}
	if w.stmts == nil {
		w.stmts = map[string]*sql.Stmt{}
	}
	for n := chunkRows(b); n >= 1; n /= 2 {
		st, err := w.wdb.PrepareContext(ctx, insertStatement(b.Table, b.Mode, n))
		if err != nil {
			return
		}
		w.stmts[stmtKey(b, n)] = st
	}
}

// chunkRows is the greatest number of rows of b's table that one INSERT
// statement takes: a power of two, within SQLite's limit of bound
// parameters and maxChunkRows.
func chunkRows(b driver.Batch) int {
	width := len(b.Table.Columns) + len(driver.HiddenColumns(b.Mode))
	n := 1
	for n*2*width <= maxParams && n*2 <= maxChunkRows {
		n *= 2
	}
	return n
}

// keyMatch is the WHERE condition matching t's primary key to parameters.
func keyMatch(t driver.Table) string {
	var conds []string
	for _, k := range t.PrimaryKey {
		conds = append(conds, quote(k)+" = ?")
	}
	return strings.Join(conds, " AND ")
}

// maxParams is SQLite's default limit on the bound parameters of one
// statement (SQLITE_MAX_VARIABLE_NUMBER since 3.32).
const maxParams = 32766

// appendArgs appends the values of rows from to to of b, each row followed
// by tail. Text aliases b's arena: the statement must run before b is
// reused.
func appendArgs(args []any, b *schema.Batch, from, to int, tail []any) []any {
	for i := from; i < to; i++ {
		for j := range b.Vecs {
			args = append(args, value(&b.Vecs[j], i))
		}
		args = append(args, tail...)
	}
	return args
}

// value is value i of v as SQLite stores it (see the package doc); text
// aliases v's arena.
func value(v *schema.Vector, i int) any {
	if v.Null[i] {
		return nil
	}
	switch v.Type {
	case schema.BigInt, schema.Integer:
		return v.Int[i]
	case schema.Double:
		return v.Float[i]
	case schema.Real: // rounded to float32, as PostgreSQL's real is
		return float64(float32(v.Float[i]))
	case schema.Text, schema.JSON:
		return v.TextString(i)
	case schema.Boolean:
		if v.Bool[i] {
			return int64(1)
		}
		return int64(0)
	case schema.Timestamp:
		return v.Time[i].UTC().Truncate(time.Microsecond).Format(TimestampLayout)
	case schema.Date:
		return v.Time[i].UTC().Format(DateLayout)
	}
	return nil
}

// insertStatement inserts (append, replace) or upserts (merge) n rows,
// with the hidden columns of the mode after the table's.
func insertStatement(t driver.Table, mode driver.Mode, n int) string {
	var names []string
	for _, c := range t.Columns {
		names = append(names, c.Name)
	}
	for _, c := range driver.HiddenColumns(mode) {
		names = append(names, c.Name)
	}
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(names)), ", ") + ")"
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
		for _, c := range names {
			if !pk[c] {
				set = append(set, quote(c)+" = excluded."+quote(c))
			}
		}
		// A row replaces the stored one only if it is not older: by
		// OrderBy first when declared, then by object version.
		v := quote(driver.VersionColumn)
		cond := "excluded." + v + " >= " + quote(t.Name) + "." + v
		if t.OrderBy != "" {
			ob := quote(t.OrderBy)
			cond = "(excluded." + ob + ", excluded." + v + ") >= (" + quote(t.Name) + "." + ob + ", " + quote(t.Name) + "." + v + ")"
		}
		sb.WriteString(" ON CONFLICT (" + quoteList(t.PrimaryKey) + ") DO UPDATE SET " + strings.Join(set, ", ") + " WHERE " + cond)
	}
	return sb.String()
}

// isNoTable reports whether err is SQLite saying a table does not exist.
func isNoTable(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such table")
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

// sqliteLimitAttached is SQLITE_LIMIT_ATTACHED, for sqlite3_limit.
const sqliteLimitAttached = 7

// Query implements driver.Warehouse on a read-only connection (query_only,
// and mode=ro when opened by OpenReadOnly). It refuses what would reach
// beyond the warehouse file or lift that protection (see refuseWrites), and
// runs on a connection allowed no attached database as well, so neither
// ATTACH nor VACUUM INTO can open or create another file, however written.
func (w *Warehouse) Query(ctx context.Context, query string) ([]string, [][]any, error) {
	if err := refuseWrites(query); err != nil {
		return nil, nil, fmt.Errorf("sqlite %s: %w", w.path, err)
	}
	c, err := w.rdb.Conn(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite %s: %w", w.path, err)
	}
	defer c.Close()
	if _, err := sqlite.Limit(c, sqliteLimitAttached, 0); err != nil {
		return nil, nil, fmt.Errorf("sqlite %s: limit attached databases: %w", w.path, err)
	}
	rs, err := c.QueryContext(ctx, query)
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
	q := `SELECT table_name, object_key, etag, version, rows, rejected, loaded_at FROM ` + quote(ledgerTable)
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
	return w.ledgerRows(rs)
}

// ledgerRows reads ledger entries from rs and closes it.
func (w *Warehouse) ledgerRows(rs *sql.Rows) ([]driver.LedgerEntry, error) {
	defer rs.Close()
	var out []driver.LedgerEntry
	for rs.Next() {
		var e driver.LedgerEntry
		var at string
		if err := rs.Scan(&e.Table, &e.Key, &e.ETag, &e.Version, &e.Rows, &e.Rejected, &at); err != nil {
			return nil, fmt.Errorf("sqlite %s: read ledger row: %w", w.path, err)
		}
		var err error
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

// LedgerRecent implements driver.Warehouse.
func (w *Warehouse) LedgerRecent(ctx context.Context, f driver.LedgerFilter) ([]driver.LedgerEntry, error) {
	q := `SELECT table_name, object_key, etag, version, rows, rejected, loaded_at FROM ` + quote(ledgerTable) + ` WHERE 1=1`
	var args []any
	if f.Table != "" {
		q += ` AND table_name = ?`
		args = append(args, f.Table)
	}
	if f.Key != "" {
		q += ` AND object_key = ?`
		args = append(args, f.Key)
	}
	q += ` ORDER BY loaded_at DESC, table_name, object_key, etag LIMIT ?`
	args = append(args, max(f.Limit, 1))
	rs, err := w.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", w.path, err)
	}
	return w.ledgerRows(rs)
}

// LedgerSummary implements driver.Warehouse.
func (w *Warehouse) LedgerSummary(ctx context.Context) ([]driver.TableSummary, error) {
	rs, err := w.rdb.QueryContext(ctx, `SELECT table_name, count(*), coalesce(sum(rows), 0), coalesce(sum(rejected), 0), max(loaded_at) FROM `+
		quote(ledgerTable)+` GROUP BY table_name ORDER BY table_name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", w.path, err)
	}
	defer rs.Close()
	var out []driver.TableSummary
	for rs.Next() {
		var s driver.TableSummary
		var at string
		if err := rs.Scan(&s.Table, &s.Objects, &s.Rows, &s.Rejected, &at); err != nil {
			return nil, fmt.Errorf("sqlite %s: read ledger summary: %w", w.path, err)
		}
		if s.LastLoaded, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return nil, fmt.Errorf("sqlite %s: ledger of %s: bad loaded_at %q: %w", w.path, s.Table, at, err)
		}
		out = append(out, s)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("sqlite %s: %w", w.path, err)
	}
	return out, nil
}

// LedgerHas implements driver.Warehouse: one query on the ledger's primary
// key (table_name, object_key, etag).
func (w *Warehouse) LedgerHas(ctx context.Context, table string, versions []driver.ObjectVersion) ([]bool, error) {
	out := make([]bool, len(versions))
	if len(versions) == 0 {
		return out, nil
	}
	args := make([]any, 0, len(versions)+1)
	args = append(args, table)
	for _, v := range versions {
		args = append(args, v.Key)
	}
	q := `SELECT object_key, etag FROM ` + quote(ledgerTable) + ` WHERE table_name = ? AND object_key IN (?` + strings.Repeat(",?", len(versions)-1) + `)`
	rs, err := w.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite %s: look up ledger of %s: %w", w.path, table, err)
	}
	defer rs.Close()
	have := map[driver.ObjectVersion]bool{}
	for rs.Next() {
		var v driver.ObjectVersion
		if err := rs.Scan(&v.Key, &v.ETag); err != nil {
			return nil, fmt.Errorf("sqlite %s: read ledger row: %w", w.path, err)
		}
		have[v] = true
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("sqlite %s: look up ledger of %s: %w", w.path, table, err)
	}
	for i, v := range versions {
		out[i] = have[v]
	}
	return out, nil
}

// Close closes both connection pools.
func (w *Warehouse) Close() error {
	if w.wdb == nil {
		return w.rdb.Close()
	}
	_, _ = w.wdb.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`) // see OpenReadOnly
	for _, st := range w.stmts {
		st.Close()
	}
	return errors.Join(w.rdb.Close(), w.wdb.Close())
}
