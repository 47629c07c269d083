// Package sqlitestate is the embedded state backend: one SQLite file
// (by default <data dir>/state.db) in WAL mode, shared by the processes of
// one machine. Lease expiry uses the process clock (Options.Clock).
//
// Files written by older sluice versions open and migrate forward (PRAGMA
// user_version counts the migrations applied); a file written by a newer
// sluice is refused.
package sqlitestate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"modernc.org/sqlite" // also registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sluicehq/sluice/internal/sqliteuri"
	"github.com/sluicehq/sluice/state/internal/sqlstate"
)

// DB is a SQLite state database; its methods are those of state.Store.
type DB struct {
	*sqlstate.DB
}

// Options tunes Open.
type Options struct {
	// Clock is the lease clock (default time.Now).
	Clock func() time.Time
}

const schema = `
CREATE TABLE IF NOT EXISTS seen (
	key TEXT PRIMARY KEY,
	fingerprint TEXT NOT NULL,
	seen_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (
	k TEXT PRIMARY KEY,
	v TEXT NOT NULL
);
`

// jobsSchema holds the job runs and the pending run requests. Times are
// stored as fixed-width UTC text, so they read well in a shell and sort
// lexically; a zero time is NULL.
const jobsSchema = `
CREATE TABLE IF NOT EXISTS job_runs (
	id TEXT PRIMARY KEY,
	rule TEXT NOT NULL,
	grp TEXT NOT NULL,
	state TEXT NOT NULL,
	inputs_json TEXT NOT NULL DEFAULT '[]',
	outputs_json TEXT NOT NULL DEFAULT '[]',
	exit_code INTEGER NOT NULL DEFAULT 0,
	error TEXT NOT NULL DEFAULT '',
	created TEXT NOT NULL,
	started TEXT,
	ended TEXT,
	terminated TEXT,
	compute_seconds REAL NOT NULL DEFAULT 0,
	log_key TEXT NOT NULL DEFAULT '',
	pid INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS job_runs_rule_grp ON job_runs(rule, grp, created);
CREATE INDEX IF NOT EXISTS job_runs_state ON job_runs(state);
CREATE TABLE IF NOT EXISTS job_requests (
	rule TEXT NOT NULL,
	grp TEXT NOT NULL,
	first_at TEXT NOT NULL,
	last_at TEXT NOT NULL,
	PRIMARY KEY (rule, grp)
);
`

// deadLettersSchema holds sluice's own dead letters: one row per piece of
// work given up on, identified by its target and object version.
const deadLettersSchema = `
CREATE TABLE IF NOT EXISTS dead_letters (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	target TEXT NOT NULL,
	kind TEXT NOT NULL,
	name TEXT NOT NULL,
	object_key TEXT NOT NULL,
	etag TEXT NOT NULL,
	event BLOB,
	reason TEXT NOT NULL,
	attempts INTEGER NOT NULL,
	first_failure TEXT NOT NULL,
	last_failure TEXT NOT NULL,
	replayed TEXT,
	UNIQUE (target, object_key, etag)
);
`

// migrations bring a state database forward, one schema version each
// (PRAGMA user_version counts the ones applied). Append only: never edit a
// migration that has shipped.
var migrations = []string{
	// 1: seen files, settings, job runs and requests.
	schema + jobsSchema,
	// 2: sluice's own dead letters; job requests learn retries.
	deadLettersSchema + `
ALTER TABLE job_requests ADD COLUMN not_before TEXT;
ALTER TABLE job_requests ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE job_requests ADD COLUMN first_failure TEXT;
`,
	// 3: the watcher remembers the ETag it announced for each key.
	`ALTER TABLE seen ADD COLUMN etag TEXT NOT NULL DEFAULT '';`,
	// 4: leases and fenced run claims; the fenced key/value table.
	`
ALTER TABLE job_runs ADD COLUMN claimer TEXT NOT NULL DEFAULT '';
ALTER TABLE job_runs ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
CREATE TABLE leases (
	name TEXT PRIMARY KEY,
	holder TEXT NOT NULL,
	epoch INTEGER NOT NULL,
	expires TEXT NOT NULL
);
CREATE TABLE fenced (
	k TEXT PRIMARY KEY,
	v TEXT NOT NULL
);
`,
	// 5: a run's remote compute (EMR cluster, EMR Serverless job run,
	// Kubernetes Job).
	`ALTER TABLE job_runs ADD COLUMN remote TEXT NOT NULL DEFAULT '';`,
	// 6: how many machines a run's compute had (sluice jobs --cost);
	// 0 in older runs, read as 1.
	`ALTER TABLE job_runs ADD COLUMN instances INTEGER NOT NULL DEFAULT 0;`,
}

// SchemaVersion is the state schema this sluice writes.
var SchemaVersion = len(migrations)

// Open opens (creating) the state database at path and migrates it to
// SchemaVersion. opts may be nil.
func Open(ctx context.Context, path string, opts *Options) (*DB, error) {
	if opts == nil {
		opts = &Options{}
	}
	// synchronous(FULL): in WAL mode NORMAL can roll back the last commits on an OS crash or power loss, after callers already acted on them (events emitted, messages acked).
	// WAL mode is not asked for here but by enableWAL, which copes with
	// other connections switching the same new file at the same time.
	db, err := sql.Open("sqlite", sqliteuri.File(path, fmt.Sprintf("?_pragma=busy_timeout(%d)&_pragma=synchronous(FULL)&_txlock=immediate", busyTimeout.Milliseconds())))
	if err != nil {
		return nil, fmt.Errorf("open state db %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := enableWAL(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state db %s: %w", path, err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state db %s: %w", path, err)
	}
	// Writes go through the one connection above; reads outside
	// transactions through a few more beside it (WAL lets them run while
	// it writes), so that a read such as the watcher's seen-check does
	// not wait behind other goroutines' writes and their fsyncs.
	reads, err := sql.Open("sqlite", sqliteuri.File(path, fmt.Sprintf("?_pragma=busy_timeout(%d)&_pragma=query_only(1)", busyTimeout.Milliseconds())))
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open state db %s: %w", path, err)
	}
	reads.SetMaxOpenConns(readConns)
	reads.SetMaxIdleConns(readConns)
	st := wrap(db, opts, true)
	st.Reads = reads
	closeWrites := st.Closer
	st.Closer = func() error { return errors.Join(reads.Close(), closeWrites()) }
	return st, nil
}

// readConns is how many connections serve reads beside the writing one.
const readConns = 4

func wrap(db *sql.DB, opts *Options, checkpoint bool) *DB {
	s := sqlstate.New(db, sqlstate.Dialect{Clock: opts.Clock})
	if checkpoint {
		// Close checkpoints the write-ahead log into the database file, so
		// that a reader on a full disk, which cannot map the log, misses
		// nothing. PASSIVE: it copies what no reader still needs and
		// never waits. A blocking checkpoint (FULL, RESTART, TRUNCATE)
		// holds off every new writer until all readers are done, and
		// short-lived processes close the state all the time (each job
		// run's fence check, `sluice put`): ten a second stalled the
		// writes of the process running the pipeline for over a second.
		// The process that closes the last connection, normally the one
		// that ran the pipeline, leaves nothing behind: its checkpoint
		// finds no reader.
		s.Closer = func() error {
			_, _ = db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
			return db.Close()
		}
	}
	return &DB{s}
}

// OpenReadOnly opens an existing state database for reading only (for
// commands such as `dlq ls`, which must work while another process owns
// the data dir, and on a full disk). It does not migrate; a database older
// than SchemaVersion may lack newer tables.
//
// A reader of a WAL database normally maps the shared-memory file, which
// may need to grow; on a full disk that fails, and OpenReadOnly then reads
// the database file alone (SQLite's immutable mode). That read misses only
// commits still in the write-ahead log, which Close checkpoints into the
// database file, so after a clean stop nothing is missed.
func OpenReadOnly(ctx context.Context, path string) (*DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open state db %s read-only: %w", path, err)
	}
	var firstErr error
	for _, q := range []string{"?mode=ro&_pragma=busy_timeout(10000)&_pragma=query_only(1)", "?mode=ro&immutable=1"} {
		db, err := sql.Open("sqlite", sqliteuri.File(path, q))
		if err == nil {
			err = db.PingContext(ctx)
			if err == nil {
				var n int
				err = db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&n)
			}
			if err == nil {
				return wrap(db, &Options{}, false), nil
			}
			db.Close()
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("open state db %s read-only: %w", path, firstErr)
}

// busyTimeout is how long a statement waits for another connection's
// write lock before it fails with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// enableWAL puts the database into WAL mode, a property of the file that
// every later connection (of any process) then uses.
//
// SQLite switches a file into WAL mode inside a read transaction that it
// upgrades to a write. When another connection switches the same file at
// the same moment (processes opening a new state.db together), the losing
// upgrade fails with SQLITE_BUSY at once rather than wait out
// busy_timeout, because waiting there could deadlock. The loser then waits
// the way that does honour busy_timeout, with a write transaction begun
// from no transaction (BEGIN IMMEDIATE, see _txlock), and switches again:
// by then the file is usually in WAL mode already, which needs no write.
// It tries until it succeeds or busyTimeout has passed.
func enableWAL(ctx context.Context, db *sql.DB) error {
	ctx, cancel := context.WithTimeout(ctx, busyTimeout)
	defer cancel()
	for {
		var mode string
		err := db.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode)
		if err == nil {
			if !strings.EqualFold(mode, "wal") {
				return fmt.Errorf("switch to WAL mode: SQLite kept journal mode %q: put the state database on a local file system", mode)
			}
			return nil
		}
		if !isBusy(err) {
			return fmt.Errorf("switch to WAL mode: %w", err)
		}
		// Wait for the other connection's switch to commit.
		tx, werr := db.BeginTx(ctx, nil)
		if werr != nil {
			return fmt.Errorf("switch to WAL mode: %w (waiting for the other connection: %w)", err, werr)
		}
		if werr := tx.Rollback(); werr != nil {
			return fmt.Errorf("switch to WAL mode: %w", werr)
		}
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY (with any extended
// code).
func isBusy(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

func migrate(ctx context.Context, db *sql.DB) error {
	// An up-to-date database needs no lock: versions only grow, and the
	// processes that open the state most often (a job run's fence check,
	// `sluice put`) would otherwise take the write lock from the process
	// running the pipeline every time.
	var v int
	if err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err == nil && v == len(migrations) {
		return nil
	}
	// Each step reads the version inside its own write transaction
	// (BEGIN IMMEDIATE), so processes opening the same database at once
	// apply every migration exactly once.
	for {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		var v int
		if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
			tx.Rollback()
			return fmt.Errorf("read schema version: %w", err)
		}
		if v > len(migrations) {
			tx.Rollback()
			return fmt.Errorf("it has schema version %d, newer than this sluice's %d: upgrade sluice", v, len(migrations))
		}
		if v == len(migrations) {
			return tx.Rollback()
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to schema version %d: %w", v+1, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v+1)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate to schema version %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate to schema version %d: %w", v+1, err)
		}
	}
}
