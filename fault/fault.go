// Package fault is the one place that decides whether a failure is worth
// retrying. Every component asks it, instead of re-deciding: the loads, the
// job scheduler, the queue consumers and the CLI's exit status.
//
// There are two kinds, in the spirit of upspin's errors.Kind and pgx's
// SafeToRetry:
//
//   - Permanent: the data or the configuration is wrong, and retrying the
//     same thing cannot help — decode errors, failed casts, limits hit,
//     rows the warehouse rejects, a table that does not exist, an object
//     that was deleted. A permanent failure is dead-lettered at once, with
//     its reason, and waits for a fix and a replay.
//   - Transient: a service the work needs is unavailable — the warehouse,
//     the queue, the store, the disk, the network. A transient failure is
//     retried with capped exponential backoff for as long as the retry
//     budget (retry_for) allows; only then is it dead-lettered.
//
// Errors are transient unless they are known to be permanent: an unknown
// failure is retried (for a bounded time) rather than given up on, because
// giving up on good data during an outage loses it, while retrying bad data
// costs only time. Known permanent errors are the data errors of sluice's
// own packages (listed in knownPermanent, so that the rule lives here and
// nowhere else) and anything wrapped with Permanent.
//
// Command jobs report a transient failure with exit status 75
// (EX_TEMPFAIL from sysexits.h); any other non-zero status is permanent.
// sluice's own commands exit 75 when they stop because a service is still
// unavailable.
package fault

import (
	"context"
	"errors"
)

// Kind says whether a failure is worth retrying.
type Kind int

// Kinds.
const (
	// KindTransient failures are retried.
	KindTransient Kind = iota
	// KindPermanent failures are dead-lettered at once.
	KindPermanent
)

// String returns "transient" or "permanent".
func (k Kind) String() string {
	if k == KindPermanent {
		return "permanent"
	}
	return "transient"
}

// ExitTempFail is the exit status that means "try again later"
// (EX_TEMPFAIL). A command job that exits with it is retried; sluice's own
// commands exit with it when a service is still unavailable.
const ExitTempFail = 75

// kindError carries an explicit kind.
type kindError struct {
	kind Kind
	err  error
}

func (e *kindError) Error() string { return e.err.Error() }
func (e *kindError) Unwrap() error { return e.err }

// Permanent marks err as permanent (nil stays nil).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &kindError{KindPermanent, err}
}

// Transient marks err as transient, overriding a permanent cause it wraps
// (nil stays nil). Use it where a normally permanent error is known to be
// caused by an outage.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return &kindError{KindTransient, err}
}

// KindOf classifies err. The outermost explicit mark (Permanent or
// Transient) wins; otherwise a known permanent error of sluice's packages
// anywhere in the chain (see knownPermanent) makes it permanent; otherwise
// it is transient.
// Context cancellation is transient: the work was interrupted, not wrong.
func KindOf(err error) Kind {
	if err == nil {
		return KindTransient
	}
	var ke *kindError
	if errors.As(err, &ke) {
		return ke.kind
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return KindTransient
	}
	if knownPermanent(err) {
		return KindPermanent
	}
	return KindTransient
}

// IsPermanent reports whether err is a permanent failure.
func IsPermanent(err error) bool { return err != nil && KindOf(err) == KindPermanent }

// IsTransient reports whether err is a transient failure (nil is neither).
func IsTransient(err error) bool { return err != nil && KindOf(err) == KindTransient }
