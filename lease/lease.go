// Package lease is sluice's named, expiring, fenced claims in the shared
// state: one holder at a time per name, each holding numbered by an epoch
// (the fencing token) that never repeats. A process that holds a lease
// renews it before it expires; one that stops heartbeating loses it, and
// the next holder's epoch is higher, so writes fenced by the old epoch are
// refused (see Store.CompareAndSwap and job.Store.UpdateRun).
//
// Store is the interface a state backend implements (state/sqlitestate,
// state/pgstate); state/statetest is its conformance suite.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"
)

// Lease is one holding of a named lease.
type Lease struct {
	Name   string
	Holder string
	// Epoch is the fencing token: it increases every time the lease
	// changes holder or is acquired again after it expired, and is never
	// reused.
	Epoch int64
	// Expires is when the lease lapses unless renewed, on the state's
	// clock (the database's on PostgreSQL).
	Expires time.Time
}

// ErrHeld is returned by Acquire when another holder has the lease and it
// has not expired.
var ErrHeld = errors.New("lease is held by another holder")

// ErrLost is returned when a lease is no longer held at the epoch the
// caller has: it expired, was broken, or another holder took it. A write
// fenced by it did not happen.
var ErrLost = errors.New("lease lost")

// Store keeps leases and a small fenced key/value table. Every method is
// safe for concurrent use, also from several processes sharing the state.
type Store interface {
	// Acquire takes the lease name for holder for ttl: when it is free,
	// expired, or already holder's (then it is extended, same epoch). It
	// returns an error wrapping ErrHeld when someone else holds it.
	Acquire(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error)
	// Renew extends l by ttl from now; ErrLost unless l is still current
	// (same holder and epoch) and unexpired.
	Renew(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	// Release gives up l (it expires now) if it is still current; releasing
	// a lost lease is not an error.
	Release(ctx context.Context, l Lease) error
	// Get returns the lease name as stored (possibly expired); ok is false
	// when it was never acquired.
	Get(ctx context.Context, name string) (l Lease, ok bool, err error)
	// Break expires l now if it is still at l.Epoch, whoever holds it: for
	// a holder known to be dead. It reports whether it did.
	Break(ctx context.Context, l Lease) (bool, error)
	// Check returns nil if l is current and unexpired, else an error
	// wrapping ErrLost.
	Check(ctx context.Context, l Lease) error
	// CompareAndSwap sets key to new if its value is old ("" also matches
	// an absent key), in one transaction with a check that l is current
	// and unexpired. It returns ErrLost (and writes nothing) when l is
	// not, and false when the value was not old.
	CompareAndSwap(ctx context.Context, l Lease, key, old, new string) (bool, error)
	// Value reads a key of the fenced table ("" and false when absent).
	Value(ctx context.Context, key string) (string, bool, error)
}

// NewHolder returns a holder identity for this process:
// "host/pid/random". The random part makes two Managers in one process,
// or a process whose pid was reused, different holders.
func NewHolder() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Lost reports whether err says a lease was lost.
func Lost(err error) bool { return errors.Is(err, ErrLost) }
