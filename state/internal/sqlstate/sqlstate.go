// Package sqlstate is the SQL both state backends share: runs, requests,
// dead letters, seen files, settings and leases over database/sql, with a
// Dialect for what differs between SQLite and PostgreSQL (placeholders,
// the clock leases expire by, row locks). The backends (state/sqlitestate,
// state/pgstate) own their schemas and migrations.
package sqlstate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Dialect is what differs between the SQL databases.
type Dialect struct {
	// Postgres selects $n placeholders, GREATEST, row locks and the
	// database clock for leases; otherwise SQLite with Clock.
	Postgres bool
	// Clock is the lease clock on SQLite (default time.Now).
	Clock func() time.Time
}

// DB is a state database.
type DB struct {
	DB *sql.DB
	// Reads, when set, serves the reads that need no transaction: SQLite
	// writes through one connection, and in WAL mode other connections
	// read beside it instead of queueing behind its writes.
	Reads *sql.DB
	d     Dialect
	// Closer, when set, replaces DB.Close (SQLite checkpoints first).
	Closer func() error
}

// New returns a DB over db.
func New(db *sql.DB, d Dialect) *DB {
	if d.Clock == nil {
		d.Clock = time.Now
	}
	return &DB{DB: db, d: d}
}

// reads is the pool for reads outside transactions.
func (s *DB) reads() *sql.DB {
	if s.Reads != nil {
		return s.Reads
	}
	return s.DB
}

// Close closes the database.
func (s *DB) Close() error {
	if s.Closer != nil {
		return s.Closer()
	}
	return s.DB.Close()
}

// timeFormat is fixed-width so that text order is time order.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

// FmtTime formats a stored time; a zero time is NULL.
func FmtTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeFormat)
}

func parseTime(s sql.NullString) (time.Time, error) {
	if !s.Valid || s.String == "" {
		return time.Time{}, nil
	}
	return time.Parse(timeFormat, s.String)
}

// q rewrites ? placeholders to $n on PostgreSQL.
func (s *DB) q(query string) string {
	if !s.d.Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (s *DB) exec(ctx context.Context, ex execer, query string, args ...any) (sql.Result, error) {
	return ex.ExecContext(ctx, s.q(query), args...)
}

func (s *DB) queryRow(ctx context.Context, ex execer, query string, args ...any) *sql.Row {
	return ex.QueryRowContext(ctx, s.q(query), args...)
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// inTx runs f in a transaction and commits it when f returns nil.
func (s *DB) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := s.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *DB) forUpdate() string {
	if s.d.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

func (s *DB) forShare() string {
	if s.d.Postgres {
		return " FOR SHARE"
	}
	return ""
}

func (s *DB) greatest() string {
	if s.d.Postgres {
		return "GREATEST"
	}
	return "max"
}

// Seen returns the fingerprint and ETag key was last marked seen with
// (store.SeenSet).
func (s *DB) Seen(ctx context.Context, key string) (fingerprint, etag string, ok bool, err error) {
	err = s.queryRow(ctx, s.reads(), `SELECT fingerprint, etag FROM seen WHERE key = ?`, key).Scan(&fingerprint, &etag)
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
	_, err := s.exec(ctx, s.DB, `INSERT INTO seen(key, fingerprint, seen_at, etag) VALUES(?, ?, ?, ?)
		ON CONFLICT(key) DO UPDATE SET fingerprint = excluded.fingerprint, seen_at = excluded.seen_at, etag = excluded.etag`,
		key, fingerprint, s.d.Clock().UTC().Format(time.RFC3339Nano), etag)
	if err != nil {
		return fmt.Errorf("state: mark %s seen: %w", key, err)
	}
	return nil
}

// SetSetting stores a setting.
func (s *DB) SetSetting(ctx context.Context, k, v string) error {
	_, err := s.exec(ctx, s.DB, `INSERT INTO kv(k, v) VALUES(?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v`, k, v)
	if err != nil {
		return fmt.Errorf("state: set %s: %w", k, err)
	}
	return nil
}

// Setting reads a setting; "" when unset.
func (s *DB) Setting(ctx context.Context, k string) (string, error) {
	var v string
	err := s.queryRow(ctx, s.reads(), `SELECT v FROM kv WHERE k = ?`, k).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("state: get %s: %w", k, err)
	}
	return v, nil
}
