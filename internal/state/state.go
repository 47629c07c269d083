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
	seen_at TEXT NOT NULL,
	etag TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS kv (
	k TEXT PRIMARY KEY,
	v TEXT NOT NULL
);
`

// Open opens (creating) the state database at path.
func Open(ctx context.Context, path string) (*DB, error) {
	// synchronous(FULL): in WAL mode NORMAL can roll back the last commits on an OS crash or power loss, after callers already acted on them (events emitted, messages acked).
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open state db %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema+jobsSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state db %s: %w", path, err)
	}
	if err := migrateSeenETag(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state db %s: %w", path, err)
	}
	return &DB{db: db}, nil
}

// Close closes the database.
func (s *DB) Close() error { return s.db.Close() }

// migrateSeenETag adds the seen table's etag column to a database created
// before it existed; rows from then keep an empty ETag (see store.SeenSet).
func migrateSeenETag(ctx context.Context, db *sql.DB) error {
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('seen') WHERE name = 'etag'`).Scan(&n); err != nil {
		return fmt.Errorf("migrate seen table: %w", err)
	}
	if n > 0 {
		return nil
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE seen ADD COLUMN etag TEXT NOT NULL DEFAULT ''`); err != nil {
		return fmt.Errorf("migrate seen table: add etag column: %w", err)
	}
	return nil
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
