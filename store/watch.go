package store

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sort"
	"strings"
	"sync"
	"time"
)

// This file is the watcher: it turns objects that appear in a store by means
// other than sluice's own writes (another program's cp, or files that arrived
// while sluice was down) into events.
//
// It polls: every Interval it lists the whole store (for file:// a directory
// walk), which is fine up to about 100k objects; inotify/fsnotify could
// replace the walk later. It works on any store, but S3 buckets should use
// bucket notifications instead.

// SeenSet records which object versions have been announced. It is persisted
// by the caller (for example in the state database) so that a restart does not
// announce them again. A fingerprint comes from Fingerprint.
type SeenSet interface {
	Seen(ctx context.Context, key, fingerprint string) (bool, error)
	MarkSeen(ctx context.Context, key, fingerprint string) error
}

// Fingerprint identifies what the watcher has seen of an object: its size and
// modification time in nanoseconds, as "SIZE-MTIMENS". To keep the watcher
// from announcing sluice's own writes a second time, mark the Object that Put
// or Write returned as seen.
func Fingerprint(o Object) string {
	return fmt.Sprintf("%d-%d", o.Size, o.ModTime.UnixNano())
}

// Defaults for WatchOptions.
const (
	DefaultWatchInterval = time.Second
	DefaultSettle        = 2 * time.Second
)

// WatchOptions configure Watch and ScanOnce. A nil *WatchOptions, or a zero
// field, means defaults.
type WatchOptions struct {
	// Interval between scans (default 1s).
	Interval time.Duration
	// Settle: an object is announced once its size and mtime have been seen
	// unchanged for this long (default 2s). Writers that pause longer than
	// this mid-file need a longer Settle.
	Settle time.Duration
	// Clock returns the current time (default time.Now).
	Clock func() time.Time
	// Sleep waits d or until ctx is done, returning ctx.Err() in that case
	// (default: a timer). Tests replace it to advance a fake clock.
	Sleep func(ctx context.Context, d time.Duration) error
	// Logf reports emit failures, unreadable files and files that cannot be
	// objects (default log.Printf).
	Logf func(format string, args ...any)
}

func (o *WatchOptions) withDefaults() WatchOptions {
	var w WatchOptions
	if o != nil {
		w = *o
	}
	if w.Interval <= 0 {
		w.Interval = DefaultWatchInterval
	}
	if w.Settle <= 0 {
		w.Settle = DefaultSettle
	}
	if w.Clock == nil {
		w.Clock = time.Now
	}
	if w.Sleep == nil {
		w.Sleep = sleep
	}
	if w.Logf == nil {
		w.Logf = log.Printf
	}
	return w
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Watch scans the store at once and then every Interval. Each object whose
// fingerprint is not in seen and has stayed unchanged for Settle is passed to
// emit, with ETag and ContentType filled, and then marked seen. The first
// scan is the rescan that finds what arrived while sluice was down.
//
// Delivery is at least once: an object is marked seen only after emit
// returns nil, so a crash between the two announces it again. emit errors,
// and errors listing the store or reading an object, are logged and retried
// at the next scan. Watch returns nil when ctx is done; a scan in progress is
// abandoned, which is safe because nothing is marked seen before emit.
func (s *Store) Watch(ctx context.Context, seen SeenSet, opts *WatchOptions, emit func(ctx context.Context, o Object) error) error {
	w := opts.withDefaults()
	sc := s.newScanner(seen, w, emit)
	for {
		_, _, errs := sc.scan(ctx)
		if ctx.Err() != nil {
			return nil
		}
		for _, err := range errs {
			w.Logf("%v", err)
		}
		if w.Sleep(ctx, w.Interval) != nil {
			return nil
		}
	}
}

// ScanOnce announces every unseen object, like Watch, and returns when none
// is left waiting to settle: it rescans every Interval until objects still
// being written have been unchanged for Settle. It returns how many objects
// were emitted. Errors of the last scan (emit failures, unreadable objects)
// are returned together, after the other objects were handled; if ctx ends
// first, the error names the objects that had not settled.
func (s *Store) ScanOnce(ctx context.Context, seen SeenSet, opts *WatchOptions, emit func(ctx context.Context, o Object) error) (int, error) {
	w := opts.withDefaults()
	sc := s.newScanner(seen, w, emit)
	total := 0
	stopped := func(err error) (int, error) {
		waiting := make([]string, 0, len(sc.pending))
		for k := range sc.pending {
			waiting = append(waiting, k)
		}
		if len(waiting) == 0 {
			return total, fmt.Errorf("store %s: scan interrupted: %w", s.url, err)
		}
		return total, fmt.Errorf("store %s: scan stopped while %d object(s) were still changing or waiting to settle (%s): %w", s.url, len(waiting), abbreviate(waiting, 5), err)
	}
	for {
		n, unsettled, errs := sc.scan(ctx)
		total += n
		if err := ctx.Err(); err != nil {
			return stopped(err)
		}
		if len(unsettled) == 0 {
			return total, errors.Join(errs...)
		}
		if err := w.Sleep(ctx, w.Interval); err != nil {
			return stopped(err)
		}
	}
}

type pending struct {
	fp    string
	since time.Time
}

// scanner holds what one Watch or ScanOnce learns between scans.
type scanner struct {
	s       *Store
	seen    SeenSet
	w       WatchOptions
	emit    func(context.Context, Object) error
	pending map[string]pending // key → fingerprint first seen unchanged at since
	known   map[string]string  // key → fingerprint known to be seen (saves SeenSet lookups)
	logged  map[string]bool    // ignored files already reported
}

func (s *Store) newScanner(seen SeenSet, w WatchOptions, emit func(context.Context, Object) error) *scanner {
	return &scanner{s: s, seen: seen, w: w, emit: emit,
		pending: map[string]pending{}, known: map[string]string{}, logged: map[string]bool{}}
}

// scan does one pass. It returns how many objects were emitted, the keys
// still waiting to settle, and the errors met (each naming its key).
func (sc *scanner) scan(ctx context.Context) (emitted int, unsettled []string, errs []error) {
	s := sc.s
	var objs []Object
	var err error
	if s.dir != "" {
		var ignored []ignoredFile
		objs, ignored, err = s.listLocal(ctx, "")
		for _, f := range ignored {
			if !sc.logged[f.Path] {
				sc.logged[f.Path] = true
				sc.w.Logf("store %s: ignoring %s: %s", s.url, f.Path, f.Reason)
			}
		}
		if err != nil {
			err = fmt.Errorf("store %s: scan: %w (will retry)", s.url, err)
		}
	} else {
		objs, err = s.List(ctx, "")
	}
	if err != nil {
		return 0, nil, []error{err}
	}
	now := sc.w.Clock()
	present := make(map[string]bool, len(objs))
	for _, o := range objs {
		if ctx.Err() != nil {
			return emitted, unsettled, errs
		}
		present[o.Key] = true
		fp := Fingerprint(o)
		if sc.known[o.Key] == fp {
			continue
		}
		ok, err := sc.seen.Seen(ctx, o.Key, fp)
		if err != nil {
			errs = append(errs, fmt.Errorf("store %s: watch %q: checking whether it was seen: %w (will retry)", s.url, o.Key, err))
			continue
		}
		if ok {
			sc.known[o.Key] = fp
			delete(sc.pending, o.Key)
			continue
		}
		p, ok := sc.pending[o.Key]
		if !ok || p.fp != fp {
			p = pending{fp: fp, since: now}
			sc.pending[o.Key] = p
		}
		if now.Sub(p.since) < sc.w.Settle {
			unsettled = append(unsettled, o.Key)
			continue
		}
		full, err := s.Stat(ctx, o.Key)
		if errors.Is(err, ErrNotFound) {
			delete(sc.pending, o.Key)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%w (will retry)", err))
			continue
		}
		if nfp := Fingerprint(full); nfp != fp {
			sc.pending[o.Key] = pending{fp: nfp, since: now}
			unsettled = append(unsettled, o.Key)
			continue
		}
		if err := sc.emit(ctx, full); err != nil {
			errs = append(errs, fmt.Errorf("store %s: announcing %q failed, will retry next scan: %w", s.url, o.Key, err))
			continue
		}
		emitted++
		delete(sc.pending, o.Key)
		if err := sc.seen.MarkSeen(ctx, o.Key, fp); err != nil {
			errs = append(errs, fmt.Errorf("store %s: %q was announced but could not be marked seen, so it may be announced again: %w", s.url, o.Key, err))
			continue
		}
		sc.known[o.Key] = fp
	}
	for k := range sc.pending {
		if !present[k] {
			delete(sc.pending, k)
		}
	}
	for k := range sc.known {
		if !present[k] {
			delete(sc.known, k)
		}
	}
	return emitted, unsettled, errs
}

func abbreviate(keys []string, n int) string {
	sort.Strings(keys)
	q := make([]string, 0, n)
	for i, k := range keys {
		if i == n {
			q = append(q, fmt.Sprintf("and %d more", len(keys)-n))
			break
		}
		q = append(q, fmt.Sprintf("%q", k))
	}
	return strings.Join(q, ", ")
}

// MemorySeenSet is a SeenSet held in memory, for tests and one-off runs.
// The zero value is ready to use.
type MemorySeenSet struct {
	mu sync.Mutex
	m  map[string]string // key → last fingerprint marked
}

var _ SeenSet = (*MemorySeenSet)(nil)

// Seen reports whether key was marked seen with this fingerprint.
func (m *MemorySeenSet) Seen(_ context.Context, key, fingerprint string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fp, ok := m.m[key]
	return ok && fp == fingerprint, nil
}

// MarkSeen records key's fingerprint, replacing an older one.
func (m *MemorySeenSet) MarkSeen(_ context.Context, key, fingerprint string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string]string{}
	}
	m.m[key] = fingerprint
	return nil
}
