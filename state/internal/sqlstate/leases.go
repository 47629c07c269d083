package sqlstate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/lease"
)

// now is the SQL for the lease clock and its arguments: the database's
// clock_timestamp() on PostgreSQL, Dialect.Clock on SQLite.
func (s *DB) now() (string, []any) {
	if s.d.Postgres {
		return "clock_timestamp()", nil
	}
	return "?", []any{FmtTime(s.d.Clock())}
}

// later is the SQL for now + ttl and its arguments.
func (s *DB) later(ttl time.Duration) (string, []any) {
	if s.d.Postgres {
		return "(clock_timestamp() + ?::bigint * interval '1 microsecond')", []any{ttl.Microseconds()}
	}
	return "?", []any{FmtTime(s.d.Clock().Add(ttl))}
}

func scanExpires(v any) (time.Time, error) {
	switch t := v.(type) {
	case time.Time:
		return t, nil
	case string:
		return time.Parse(timeFormat, t)
	case []byte:
		return time.Parse(timeFormat, string(t))
	}
	return time.Time{}, fmt.Errorf("lease expiry of unexpected type %T", v)
}

func checkTTL(op, name string, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("state: %s lease %s: the TTL must be positive, got %s", op, name, ttl)
	}
	return nil
}

// Acquire takes lease name for holder (lease.Store).
func (s *DB) Acquire(ctx context.Context, name, holder string, ttl time.Duration) (lease.Lease, error) {
	if err := checkTTL("acquire", name, ttl); err != nil {
		return lease.Lease{}, err
	}
	if name == "" || holder == "" {
		return lease.Lease{}, fmt.Errorf("state: acquire lease: name and holder are required (got %q, %q)", name, holder)
	}
	exp, expArgs := s.later(ttl)
	now, nowArgs := s.now()
	args := append(append([]any{name, holder}, expArgs...), nowArgs...)
	args = append(args, nowArgs...)
	l := lease.Lease{Name: name, Holder: holder}
	var expires any
	err := s.queryRow(ctx, s.DB, `INSERT INTO leases(name, holder, epoch, expires) VALUES(?, ?, 1, `+exp+`)
		ON CONFLICT(name) DO UPDATE SET
			epoch = CASE WHEN leases.holder = excluded.holder AND leases.expires > `+now+` THEN leases.epoch ELSE leases.epoch + 1 END,
			holder = excluded.holder, expires = excluded.expires
		WHERE leases.holder = excluded.holder OR leases.expires <= `+now+`
		RETURNING epoch, expires`, args...).Scan(&l.Epoch, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		cur, _, gerr := s.Get(ctx, name)
		if gerr != nil {
			return lease.Lease{}, fmt.Errorf("state: acquire lease %s: %w", name, lease.ErrHeld)
		}
		return lease.Lease{}, fmt.Errorf("state: acquire lease %s: %w by %s (epoch %d) until %s", name, lease.ErrHeld, cur.Holder, cur.Epoch, cur.Expires.UTC().Format(time.RFC3339Nano))
	}
	if err == nil {
		l.Expires, err = scanExpires(expires)
	}
	if err != nil {
		return lease.Lease{}, fmt.Errorf("state: acquire lease %s: %w", name, err)
	}
	return l, nil
}

// Renew extends l by ttl (lease.Store).
func (s *DB) Renew(ctx context.Context, l lease.Lease, ttl time.Duration) (lease.Lease, error) {
	if err := checkTTL("renew", l.Name, ttl); err != nil {
		return l, err
	}
	exp, expArgs := s.later(ttl)
	now, nowArgs := s.now()
	args := append(append(expArgs, l.Name, l.Holder, l.Epoch), nowArgs...)
	var expires any
	err := s.queryRow(ctx, s.DB, `UPDATE leases SET expires = `+exp+` WHERE name = ? AND holder = ? AND epoch = ? AND expires > `+now+` RETURNING expires`, args...).Scan(&expires)
	if errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("state: renew lease %s (holder %s, epoch %d): %w", l.Name, l.Holder, l.Epoch, lease.ErrLost)
	}
	if err == nil {
		l.Expires, err = scanExpires(expires)
	}
	if err != nil {
		return l, fmt.Errorf("state: renew lease %s: %w", l.Name, err)
	}
	return l, nil
}

// Release gives up l if it is still current (lease.Store).
func (s *DB) Release(ctx context.Context, l lease.Lease) error {
	now, nowArgs := s.now()
	args := append(append(append([]any{}, nowArgs...), l.Name, l.Holder, l.Epoch), nowArgs...)
	if _, err := s.exec(ctx, s.DB, `UPDATE leases SET expires = `+now+` WHERE name = ? AND holder = ? AND epoch = ? AND expires > `+now, args...); err != nil {
		return fmt.Errorf("state: release lease %s: %w", l.Name, err)
	}
	return nil
}

// Break expires l now if it is still at l.Epoch (lease.Store).
func (s *DB) Break(ctx context.Context, l lease.Lease) (bool, error) {
	now, nowArgs := s.now()
	args := append(append(append([]any{}, nowArgs...), l.Name, l.Epoch), nowArgs...)
	res, err := s.exec(ctx, s.DB, `UPDATE leases SET expires = `+now+` WHERE name = ? AND epoch = ? AND expires > `+now, args...)
	if err != nil {
		return false, fmt.Errorf("state: break lease %s: %w", l.Name, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("state: break lease %s: %w", l.Name, err)
	}
	return n > 0, nil
}

// Get returns lease name as stored (lease.Store).
func (s *DB) Get(ctx context.Context, name string) (lease.Lease, bool, error) {
	l := lease.Lease{Name: name}
	var expires any
	err := s.queryRow(ctx, s.reads(), `SELECT holder, epoch, expires FROM leases WHERE name = ?`, name).Scan(&l.Holder, &l.Epoch, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return l, false, nil
	}
	if err == nil {
		l.Expires, err = scanExpires(expires)
	}
	if err != nil {
		return l, false, fmt.Errorf("state: get lease %s: %w", name, err)
	}
	return l, true, nil
}

// Check returns nil if l is current and unexpired (lease.Store).
func (s *DB) Check(ctx context.Context, l lease.Lease) error {
	if err := s.checkLease(ctx, s.reads(), l, false); err != nil {
		return fmt.Errorf("state: check lease: %w", err)
	}
	return nil
}

// checkLease is Check on ex; on PostgreSQL inside a transaction it locks
// the lease row so that it cannot change hands before the transaction ends.
func (s *DB) checkLease(ctx context.Context, ex execer, l lease.Lease, lock bool) error {
	now, nowArgs := s.now()
	lockClause := ""
	if lock {
		lockClause = s.forShare()
	}
	var one int
	err := s.queryRow(ctx, ex, `SELECT 1 FROM leases WHERE name = ? AND holder = ? AND epoch = ? AND expires > `+now+lockClause,
		append([]any{l.Name, l.Holder, l.Epoch}, nowArgs...)...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("lease %s is no longer held by %s at epoch %d: %w", l.Name, l.Holder, l.Epoch, lease.ErrLost)
	}
	return err
}

// CompareAndSwap sets key from old to new while l is current (lease.Store).
func (s *DB) CompareAndSwap(ctx context.Context, l lease.Lease, key, old, new string) (bool, error) {
	var swapped bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.checkLease(ctx, tx, l, true); err != nil {
			return err
		}
		var res sql.Result
		var err error
		if old == "" {
			res, err = s.exec(ctx, tx, `INSERT INTO fenced(k, v) VALUES(?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v WHERE fenced.v = ''`, key, new)
		} else {
			res, err = s.exec(ctx, tx, `UPDATE fenced SET v = ? WHERE k = ? AND v = ?`, new, key, old)
		}
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		swapped = n > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("state: compare-and-swap %s under lease %s: %w", key, l.Name, err)
	}
	return swapped, nil
}

// Value reads a key of the fenced table (lease.Store).
func (s *DB) Value(ctx context.Context, key string) (string, bool, error) {
	var v string
	err := s.queryRow(ctx, s.reads(), `SELECT v FROM fenced WHERE k = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("state: read %s: %w", key, err)
	}
	return v, true, nil
}
