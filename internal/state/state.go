// Package state is sluice's own bookkeeping in the data dir: a SQLite
// database (state.db) holding which local files have already produced
// events, settings the owner recorded for other commands, and job runs.
// It is safe for concurrent use by one process; other processes may read it
// at the same time (WAL mode).
package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// DB is the state database.
type DB struct {
	db *sql.DB
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

// migrations bring a state database forward, one schema version each
// (PRAGMA user_version counts the ones applied). A database written by an
// older sluice is migrated at Open; one written by a newer sluice is
// refused. Append only: never edit a migration that has shipped.
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
}

// SchemaVersion is the state schema this sluice writes.
var SchemaVersion = len(migrations)

// Open opens (creating) the state database at path and migrates it to
// SchemaVersion.
func Open(ctx context.Context, path string) (*DB, error) {
	// synchronous(FULL): in WAL mode NORMAL can roll back the last commits on an OS crash or power loss, after callers already acted on them (events emitted, messages acked).
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open state db %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state db %s: %w", path, err)
	}
	return &DB{db: db}, nil
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
		db, err := sql.Open("sqlite", "file:"+path+q)
		if err == nil {
			err = db.PingContext(ctx)
			if err == nil {
				var n int
				err = db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master`).Scan(&n)
			}
			if err == nil {
				return &DB{db: db}, nil
			}
			db.Close()
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, fmt.Errorf("open state db %s read-only: %w", path, firstErr)
}

func migrate(ctx context.Context, db *sql.DB) error {
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

// Close checkpoints the write-ahead log into the database file (so that a
// reader on a full disk, which cannot map the log, misses nothing) and
// closes the database.
func (s *DB) Close() error {
	_, _ = s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	return s.db.Close()
}

// Seen returns the fingerprint and ETag key was last marked seen with
// (store.SeenSet).
func (s *DB) Seen(ctx context.Context, key string) (fingerprint, etag string, ok bool, err error) {
	err = s.db.QueryRowContext(ctx, `SELECT fingerprint, etag FROM seen WHERE key = ?`, key).Scan(&fingerprint, &etag)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, fmt.Errorf("state: look up %s: %w", key, err)
	}
	return fingerprint, etag, true, nil
}

// MarkSeen records that key was announced (or found unchanged) at this
// fingerprint and ETag (store.SeenSet).
func (s *DB) MarkSeen(ctx context.Context, key, fingerprint, etag string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO seen(key, fingerprint, seen_at, etag) VALUES(?, ?, ?, ?)
		ON CONFLICT(key) DO UPDATE SET fingerprint = excluded.fingerprint, seen_at = excluded.seen_at, etag = excluded.etag`,
		key, fingerprint, time.Now().UTC().Format(time.RFC3339Nano), etag)
	if err != nil {
		return fmt.Errorf("state: mark %s seen: %w", key, err)
	}
	return nil
}

// Set stores a setting.
func (s *DB) Set(ctx context.Context, k, v string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO kv(k, v) VALUES(?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v`, k, v)
	if err != nil {
		return fmt.Errorf("state: set %s: %w", k, err)
	}
	return nil
}

// Get reads a setting; "" when unset.
func (s *DB) Get(ctx context.Context, k string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT v FROM kv WHERE k = ?`, k).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("state: get %s: %w", k, err)
	}
	return v, nil
}
