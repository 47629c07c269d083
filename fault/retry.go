package fault

import (
	"context"
	"math/rand/v2"
	"time"
)

// Defaults of Retry.
const (
	// DefaultRetryFor is how long transient failures of one piece of work
	// are retried before it is dead-lettered: long enough to ride out a
	// database failover, a maintenance window or a full disk being cleaned
	// up, short enough that a permanent outage shows up in the dead letters
	// the same day.
	DefaultRetryFor = 6 * time.Hour
	// DefaultBackoff is the first retry delay.
	DefaultBackoff = time.Second
	// DefaultMaxBackoff caps the delay between retries.
	DefaultMaxBackoff = time.Minute
)

// Retry is a retry policy for transient failures: capped exponential
// backoff with jitter, for at most For. The zero value means the defaults.
type Retry struct {
	// For bounds the time from the first failure to the last retry
	// (default DefaultRetryFor).
	For time.Duration
	// Backoff is the first delay (default DefaultBackoff); each retry
	// doubles it up to MaxBackoff (default DefaultMaxBackoff).
	Backoff, MaxBackoff time.Duration
}

func (r Retry) withDefaults() Retry {
	if r.For <= 0 {
		r.For = DefaultRetryFor
	}
	if r.Backoff <= 0 {
		r.Backoff = DefaultBackoff
	}
	if r.MaxBackoff <= 0 {
		r.MaxBackoff = DefaultMaxBackoff
	}
	if r.MaxBackoff < r.Backoff {
		r.MaxBackoff = r.Backoff
	}
	return r
}

// Delay returns the wait before retry number attempt (1 = the first retry,
// after the first failure): between half and all of
// min(MaxBackoff, Backoff·2^(attempt-1)), so that many workers failing
// together do not retry in lockstep.
func (r Retry) Delay(attempt int) time.Duration {
	r = r.withDefaults()
	d := r.Backoff
	for i := 1; i < attempt && d < r.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.MaxBackoff)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// GiveUp reports whether work that first failed at first should no longer
// be retried at now.
func (r Retry) GiveUp(first, now time.Time) bool {
	return now.Sub(first) >= r.withDefaults().For
}

// Budget returns the effective retry_for.
func (r Retry) Budget() time.Duration { return r.withDefaults().For }

// Sleep waits d, or until ctx ends and then returns ctx.Err(): the wait
// between retries, cancellable on shutdown.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
