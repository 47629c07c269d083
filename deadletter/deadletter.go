// Package deadletter is sluice's own dead letters: work given up on (a
// load's object version, a job's group), kept in the shared state until it
// succeeds or is replayed. Store is what a state backend implements.
package deadletter

import (
	"context"
	"errors"
	"time"
)

// Dead-letter kinds.
const (
	Load = "load"
	Job  = "job"
)

// DeadLetter is one piece of work sluice gave up on.
type DeadLetter struct {
	ID int64
	// Target is the subscription the work belonged to ("load-NAME" or
	// "job-NAME"); Kind is Load or Job and Name the load or job.
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

// ErrNotFound is returned for an unknown dead-letter id.
var ErrNotFound = errors.New("no such dead letter")

// Store keeps dead letters.
type Store interface {
	// AddDeadLetter records d durably; when the same work (target, key,
	// ETag) is already dead-lettered it adds d.Attempts to its attempts and
	// takes d's reason, event and last failure. It returns the id. When it
	// returns nil the record is committed, so the message that carried the
	// work may be acknowledged.
	AddDeadLetter(ctx context.Context, d DeadLetter) (int64, error)
	// ResolveDeadLetter deletes the dead letter of (target, key, etag), if
	// any, and reports whether one was deleted.
	ResolveDeadLetter(ctx context.Context, target, key, etag string) (bool, error)
	// MarkReplayed records that dead letter id was replayed at.
	MarkReplayed(ctx context.Context, id int64, at time.Time) error
	// DeadLetters lists dead letters, oldest first; with ids only those
	// (an unknown id is an error wrapping ErrNotFound).
	DeadLetters(ctx context.Context, ids ...int64) ([]DeadLetter, error)
	// RecentDeadLetters returns the newest limit dead letters, newest
	// first, without their events, and how many there are in all: one
	// bounded read for pages that show a list.
	RecentDeadLetters(ctx context.Context, limit int) (recent []DeadLetter, total int, err error)
	// DeadLetterFor returns the dead letter of (target, key, etag), if any.
	DeadLetterFor(ctx context.Context, target, key, etag string) (DeadLetter, bool, error)
}
