package sqlstate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluicehq/sluice/deadletter"
)

// AddDeadLetter records d durably (deadletter.Store).
func (s *DB) AddDeadLetter(ctx context.Context, d deadletter.DeadLetter) (int64, error) {
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
	err := s.queryRow(ctx, s.DB, `INSERT INTO dead_letters(target, kind, name, object_key, etag, event, reason, attempts, first_failure, last_failure)
		VALUES(?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(target, object_key, etag) DO UPDATE SET event = coalesce(excluded.event, dead_letters.event), reason = excluded.reason,
			attempts = dead_letters.attempts + excluded.attempts, last_failure = excluded.last_failure
		RETURNING id`,
		d.Target, d.Kind, d.Name, d.Key, d.ETag, d.Event, d.Reason, d.Attempts, FmtTime(d.FirstFailure), FmtTime(d.LastFailure)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("state: dead-letter %s of %s %s: %w", d.Key, d.Kind, d.Name, err)
	}
	return id, nil
}

// ResolveDeadLetter deletes the dead letter of (target, key, etag), if any.
func (s *DB) ResolveDeadLetter(ctx context.Context, target, key, etag string) (bool, error) {
	// Every load and run that succeeds resolves its dead letter, which
	// almost never exists: look first, on the read connections, rather
	// than take the write lock for nothing.
	var any bool
	if err := s.queryRow(ctx, s.reads(), `SELECT EXISTS (SELECT 1 FROM dead_letters WHERE target = ? AND object_key = ? AND etag = ?)`, target, key, etag).Scan(&any); err != nil {
		return false, fmt.Errorf("state: resolve dead letter %s of %s: %w", key, target, err)
	}
	if !any {
		return false, nil
	}
	res, err := s.exec(ctx, s.DB, `DELETE FROM dead_letters WHERE target = ? AND object_key = ? AND etag = ?`, target, key, etag)
	if err != nil {
		return false, fmt.Errorf("state: resolve dead letter %s of %s: %w", key, target, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// MarkReplayed records that the dead letter id was replayed at.
func (s *DB) MarkReplayed(ctx context.Context, id int64, at time.Time) error {
	if _, err := s.exec(ctx, s.DB, `UPDATE dead_letters SET replayed = ? WHERE id = ?`, FmtTime(at), id); err != nil {
		return fmt.Errorf("state: mark dead letter %d replayed: %w", id, err)
	}
	return nil
}

const deadLetterColumns = `id, target, kind, name, object_key, etag, event, reason, attempts, first_failure, last_failure, replayed`

func scanDeadLetter(sc interface{ Scan(...any) error }) (deadletter.DeadLetter, error) {
	var d deadletter.DeadLetter
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

// DeadLetters lists dead letters, oldest first; with ids, only those.
func (s *DB) DeadLetters(ctx context.Context, ids ...int64) ([]deadletter.DeadLetter, error) {
	q := `SELECT ` + deadLetterColumns + ` FROM dead_letters`
	var args []any
	if len(ids) > 0 {
		q += ` WHERE id IN (?` + strings.Repeat(",?", len(ids)-1) + `)`
		for _, id := range ids {
			args = append(args, id)
		}
	}
	q += ` ORDER BY id`
	rows, err := s.reads().QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("state: list dead letters: %w", err)
	}
	defer rows.Close()
	var out []deadletter.DeadLetter
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
			return nil, fmt.Errorf("state: dead letter %d: %w (see `sluice dlq ls`)", id, deadletter.ErrNotFound)
		}
	}
	return out, nil
}

// RecentDeadLetters returns the newest limit dead letters, newest first,
// without their events, and the number of dead letters.
func (s *DB) RecentDeadLetters(ctx context.Context, limit int) ([]deadletter.DeadLetter, int, error) {
	var total int
	if err := s.queryRow(ctx, s.reads(), `SELECT count(*) FROM dead_letters`).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("state: count dead letters: %w", err)
	}
	cols := strings.Replace(deadLetterColumns, "event,", "NULL,", 1)
	rows, err := s.reads().QueryContext(ctx, s.q(`SELECT `+cols+` FROM dead_letters ORDER BY id DESC LIMIT ?`), max(limit, 1))
	if err != nil {
		return nil, 0, fmt.Errorf("state: list dead letters: %w", err)
	}
	defer rows.Close()
	var out []deadletter.DeadLetter
	for rows.Next() {
		d, err := scanDeadLetter(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("state: list dead letters: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("state: list dead letters: %w", err)
	}
	return out, total, nil
}

// DeadLetterFor returns the dead letter of (target, key, etag), if any.
func (s *DB) DeadLetterFor(ctx context.Context, target, key, etag string) (deadletter.DeadLetter, bool, error) {
	d, err := scanDeadLetter(s.queryRow(ctx, s.reads(), `SELECT `+deadLetterColumns+` FROM dead_letters WHERE target = ? AND object_key = ? AND etag = ?`, target, key, etag))
	if errors.Is(err, sql.ErrNoRows) {
		return deadletter.DeadLetter{}, false, nil
	}
	if err != nil {
		return deadletter.DeadLetter{}, false, fmt.Errorf("state: look up dead letter %s of %s: %w", key, target, err)
	}
	return d, true, nil
}
