package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// deadLettersSchema holds sluice's own dead letters: one row per piece of
// work given up on, identified by its target (the load or job subscription,
// such as "load-posts" or "job-hydropower") and the object version (key +
// ETag; for jobs the group and a digest of its inputs). A new failure of the
// same work updates the row (attempts, reason, last failure) instead of
// adding one.
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

// Dead-letter kinds.
const (
	DeadLoad = "load"
	DeadJob  = "job"
)

// DeadLetter is one piece of work sluice gave up on.
type DeadLetter struct {
	ID int64
	// Target is the subscription the work belonged to ("load-NAME" or
	// "job-NAME"); Kind is DeadLoad or DeadJob and Name the load or job.
	Target, Kind, Name string
	// Key and ETag name the object version (for a job: the group and a
	// digest of its inputs).
	Key, ETag string
	// Event is the event that carried the work (loads), for replay.
	Event        []byte
	Reason       string
	Attempts     int
	FirstFailure time.Time
	LastFailure  time.Time
	// Replayed is when it was last replayed (zero: never). A replayed dead
	// letter stays listed until its work succeeds.
	Replayed time.Time
}

// ErrDeadLetterNotFound is returned for an unknown dead-letter id.
var ErrDeadLetterNotFound = errors.New("no such dead letter")

// AddDeadLetter records d durably; when the same work (target, key, ETag)
// is already dead-lettered it adds d.Attempts to its attempts and takes
// d's reason, event and last failure. It returns the dead letter's id.
// When it returns nil the record is committed, so the message that carried
// the work may be acknowledged.
func (s *DB) AddDeadLetter(ctx context.Context, d DeadLetter) (int64, error) {
	if d.Target == "" || d.Key == "" {
		return 0, fmt.Errorf("state: add dead letter: target and key are required (got %q, %q)", d.Target, d.Key)
	}
	if d.Attempts < 1 {
		d.Attempts = 1
	}
	if d.FirstFailure.IsZero() {
		d.FirstFailure = d.LastFailure
	}
	var id int64
	err := s.db.QueryRowContext(ctx, `INSERT INTO dead_letters(target, kind, name, object_key, etag, event, reason, attempts, first_failure, last_failure)
		VALUES(?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(target, object_key, etag) DO UPDATE SET event = coalesce(excluded.event, event), reason = excluded.reason,
			attempts = attempts + excluded.attempts, last_failure = excluded.last_failure
		RETURNING id`,
		d.Target, d.Kind, d.Name, d.Key, d.ETag, d.Event, d.Reason, d.Attempts, fmtTime(d.FirstFailure), fmtTime(d.LastFailure)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("state: dead-letter %s of %s %s: %w", d.Key, d.Kind, d.Name, err)
	}
	return id, nil
}

// ResolveDeadLetter deletes the dead letter of (target, key, etag), if any:
// its work has now succeeded. It reports whether one was deleted.
func (s *DB) ResolveDeadLetter(ctx context.Context, target, key, etag string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM dead_letters WHERE target = ? AND object_key = ? AND etag = ?`, target, key, etag)
	if err != nil {
		return false, fmt.Errorf("state: resolve dead letter %s of %s: %w", key, target, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// MarkReplayed records that the dead letter id was replayed at.
func (s *DB) MarkReplayed(ctx context.Context, id int64, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE dead_letters SET replayed = ? WHERE id = ?`, fmtTime(at), id); err != nil {
		return fmt.Errorf("state: mark dead letter %d replayed: %w", id, err)
	}
	return nil
}

const deadLetterColumns = `id, target, kind, name, object_key, etag, event, reason, attempts, first_failure, last_failure, replayed`

func scanDeadLetter(sc interface{ Scan(...any) error }) (DeadLetter, error) {
	var d DeadLetter
	var first, last, replayed sql.NullString
	if err := sc.Scan(&d.ID, &d.Target, &d.Kind, &d.Name, &d.Key, &d.ETag, &d.Event, &d.Reason, &d.Attempts, &first, &last, &replayed); err != nil {
		return d, err
	}
	var err error
	if d.FirstFailure, err = parseTime(first); err == nil {
		if d.LastFailure, err = parseTime(last); err == nil {
			d.Replayed, err = parseTime(replayed)
		}
	}
	return d, err
}

// DeadLetters lists dead letters, oldest first; with ids, only those (an
// unknown id is an error wrapping ErrDeadLetterNotFound).
func (s *DB) DeadLetters(ctx context.Context, ids ...int64) ([]DeadLetter, error) {
	q := `SELECT ` + deadLetterColumns + ` FROM dead_letters`
	var args []any
	if len(ids) > 0 {
		q += ` WHERE id IN (?` + strings.Repeat(",?", len(ids)-1) + `)`
		for _, id := range ids {
			args = append(args, id)
		}
	}
	q += ` ORDER BY id`
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("state: list dead letters: %w", err)
	}
	defer rows.Close()
	var out []DeadLetter
	found := map[int64]bool{}
	for rows.Next() {
		d, err := scanDeadLetter(rows)
		if err != nil {
			return nil, fmt.Errorf("state: list dead letters: %w", err)
		}
		found[d.ID] = true
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: list dead letters: %w", err)
	}
	for _, id := range ids {
		if !found[id] {
			return nil, fmt.Errorf("state: dead letter %d: %w (see `sluice dlq ls`)", id, ErrDeadLetterNotFound)
		}
	}
	return out, nil
}

// DeadLetterFor returns the dead letter of (target, key, etag), if any.
func (s *DB) DeadLetterFor(ctx context.Context, target, key, etag string) (DeadLetter, bool, error) {
	d, err := scanDeadLetter(s.db.QueryRowContext(ctx, `SELECT `+deadLetterColumns+` FROM dead_letters WHERE target = ? AND object_key = ? AND etag = ?`, target, key, etag))
	if errors.Is(err, sql.ErrNoRows) {
		return DeadLetter{}, false, nil
	}
	if err != nil {
		return DeadLetter{}, false, fmt.Errorf("state: look up dead letter %s of %s: %w", key, target, err)
	}
	return d, true, nil
}
