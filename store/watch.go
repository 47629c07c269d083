package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/fault"
)

// This file is the watcher: it turns objects that appear in a store by means
// other than sluice's own writes (another program's cp, or files that arrived
// while sluice was down) into events. See "Watching" in the package doc for
// how it finds them (inotify on Linux file:// stores, polling elsewhere) and
// when a file counts as complete.

// SeenSet records, per key, the version the watcher last announced (or the
// caller marked): its fingerprint, the cheap change detector, and its ETag,
// the content. It is persisted by the caller (for example in the state
// database) so that a restart does not announce anything again.
type SeenSet interface {
	// Seen returns the fingerprint and ETag last marked for key; ok is
	// false if key was never marked.
	Seen(ctx context.Context, key string) (fingerprint, etag string, ok bool, err error)
	// MarkSeen records key's fingerprint and ETag, replacing older ones.
	MarkSeen(ctx context.Context, key, fingerprint, etag string) error
}

// Fingerprint is what the watcher compares between scans to notice that an
// object may have changed. In a file:// store it is the file identity
// ("dev:ino:size:mtime:ctime", see the package doc), which every rewrite
// changes; elsewhere, and for Objects not from this package, it is the size
// and the modification time in nanoseconds, as "SIZE-MTIMENS". A changed
// fingerprint makes the watcher compute the ETag; only a changed ETag is
// announced. To keep the watcher from announcing sluice's own writes a
// second time, mark the Object that Put or Write returned as seen, with its
// fingerprint and ETag.
func Fingerprint(o Object) string {
	if o.fp != "" {
		return o.fp
	}
	return legacyFingerprint(o)
}

// legacyFingerprint is the fingerprint of versions before file identities;
// seen-sets written by them hold it with an empty ETag.
func legacyFingerprint(o Object) string {
	return fmt.Sprintf("%d-%d", o.Size, o.ModTime.UnixNano())
}

// Defaults for WatchOptions.
const (
	DefaultWatchInterval = time.Second
	// DefaultSettle is the settle window where the watcher cannot tell
	// whether a file is still open for writing (see WatchOptions.Settle).
	DefaultSettle = 2 * time.Second
	DefaultRescan = time.Minute
)

// minBackoff is how soon a file found open for writing is looked at again:
// the wait doubles at each look that finds it still open, up to
// WatchOptions.Interval, and starts over when inotify reports a change.
const minBackoff = 5 * time.Millisecond

// WatchOptions configure Watch and ScanOnce. A nil *WatchOptions, or a zero
// field, means defaults.
type WatchOptions struct {
	// Interval between scans when polling (default 1s): the longest a new
	// file waits to be noticed, the longest wait between looks at a file
	// that is still open for writing (the wait starts at 5ms and doubles),
	// and how soon a file whose announcement failed is looked at again
	// (also with inotify).
	Interval time.Duration
	// Settle is the settle window: how long an object's fingerprint must
	// stay unchanged before it is announced, counted from its modification
	// time when the watcher first sees it, else from when the watcher saw
	// it change. A file:// object on Linux is also held back while any
	// process has it open for writing (see "Watching" in the package doc).
	//
	// Zero (the default) is automatic: a file:// object whose writers Linux
	// can tell is announced as soon as no process holds it open for
	// writing — no window at all; DefaultSettle (2s) applies where it
	// cannot tell (another user's file without CAP_LEASE, file systems
	// without leases, systems other than Linux), to mem:// and s3://
	// stores, and to versions sluice wrote itself, which their writer
	// announces. A Settle above zero applies to every object, in addition
	// to the writer check: set it for programs that write one file in
	// several opens (repeated >> appends), which otherwise get a version
	// announced at each close — or have them write under a temporary name
	// and rename the file into place.
	Settle time.Duration
	// Rescan is how often Watch lists the whole store although inotify
	// reports every change (default 1m): a safety net for changes the
	// kernel cannot see, such as other hosts' writes to a network file
	// system.
	Rescan time.Duration
	// Poll makes Watch poll every Interval even where it could use inotify.
	Poll bool
	// Clock returns the current time (default time.Now).
	Clock func() time.Time
	// Sleep waits d or until ctx is done, returning ctx.Err() in that case
	// (default: a timer). Every wait of the watcher is a Sleep — until the
	// next settle deadline, the next look at a file open for writing, the
	// next poll or the next rescan — and Watch
	// cancels it when inotify reports a change. Tests replace it to advance
	// a fake clock.
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger reports emit failures and unreadable files, and warns once
	// about each file that cannot be an object (default slog.Default()).
	Logger *slog.Logger
}

func (o *WatchOptions) withDefaults() WatchOptions {
	var w WatchOptions
	if o != nil {
		w = *o
	}
	if w.Interval <= 0 {
		w.Interval = DefaultWatchInterval
	}
	if w.Settle < 0 {
		w.Settle = 0 // automatic
	}
	if w.Rescan <= 0 {
		w.Rescan = DefaultRescan
	}
	if w.Clock == nil {
		w.Clock = time.Now
	}
	if w.Sleep == nil {
		w.Sleep = fault.Sleep
	}
	if w.Logger == nil {
		w.Logger = slog.Default()
	}
	return w
}

// Watch lists the store at once and then follows it: on a file:// store on
// Linux through inotify (see the package doc), elsewhere — or with Poll, or
// when inotify cannot be used — by listing it every Interval. An object
// whose fingerprint differs from the one in seen and that is complete — in
// a file:// store on Linux, no process holds it open for writing; its
// fingerprint has stayed unchanged for the settle window where one applies
// (see WatchOptions.Settle) — gets its ETag computed; if the ETag differs
// from the one seen last for its key, the object is passed to emit, with
// ETag and ContentType filled. Either way it is then marked seen with its
// fingerprint and ETag. The first listing is the rescan that finds what
// arrived while sluice was down; a file that was complete by then is
// announced at once.
//
// Delivery is at least once: an object is marked seen only after emit
// returns nil, so a crash between the two announces it again. emit errors,
// and errors listing the store or reading an object, are logged and retried
// an Interval later. Watch writes the marks on a goroutine of its own, in
// order, so that announcing the next object does not wait for the
// seen-set (markInBackground); it returns only once they are written.
// Watch returns nil when ctx is done; a scan in progress is abandoned,
// which is safe because nothing is marked seen before emit.
func (s *Store) Watch(ctx context.Context, seen SeenSet, opts *WatchOptions, emit func(ctx context.Context, o Object) error) error {
	w := opts.withDefaults()
	sc := s.newScanner(seen, w, emit)
	defer sc.markInBackground(ctx)()
	if s.root != nil && !w.Poll && inotifyAvailable {
		err := sc.follow(ctx)
		if err == nil || ctx.Err() != nil {
			return nil
		}
		w.Logger.Warn("store: cannot watch with inotify; polling instead", "store", s.url, "interval", w.Interval, "err", err)
	}
	for {
		r := sc.scan(ctx)
		if ctx.Err() != nil {
			return nil
		}
		sc.log(r.errs)
		if w.Sleep(ctx, sc.untilDue(w.Interval)) != nil {
			return nil
		}
	}
}

// ScanResult is what ScanOnce did.
type ScanResult struct {
	// Emitted counts the objects announced.
	Emitted int
	// Ignored lists the files of a file:// store that cannot be objects, as
	// the last scan found them (see Store.Ignored). A caller that must not
	// skip data silently, like `sluice run --once`, fails when it is not
	// empty.
	Ignored []IgnoredFile
}

// ScanOnce announces every unseen object, like Watch, and returns when none
// is left waiting to be complete: objects that are complete already (see
// Watch) are announced by the first listing, at once; for the others it
// lists the store again at their settle deadline, or when a file found
// open for writing is due to be looked at again (after 5ms, doubling up to
// Interval), until they are complete. Errors of the last scan (emit failures,
// unreadable objects) are returned together, after the other objects were
// handled; if ctx ends first, the error names the objects that had not
// settled. Files that cannot be objects are not errors: they are in the
// result's Ignored, and logged once each as a warning.
func (s *Store) ScanOnce(ctx context.Context, seen SeenSet, opts *WatchOptions, emit func(ctx context.Context, o Object) error) (ScanResult, error) {
	w := opts.withDefaults()
	sc := s.newScanner(seen, w, emit)
	var res ScanResult
	stopped := func(err error) (ScanResult, error) {
		waiting := make([]string, 0, len(sc.pending))
		for k := range sc.pending {
			waiting = append(waiting, k)
		}
		if len(waiting) == 0 {
			return res, fmt.Errorf("store %s: scan interrupted: %w", s.url, err)
		}
		return res, fmt.Errorf("store %s: scan stopped while %d object(s) were still changing, open for writing or waiting to settle (%s): %w", s.url, len(waiting), abbreviate(waiting, 5), err)
	}
	for {
		r := sc.scan(ctx)
		res.Emitted += r.emitted
		res.Ignored = r.ignored
		if err := ctx.Err(); err != nil {
			return stopped(err)
		}
		if len(r.unsettled) == 0 {
			return res, errors.Join(r.errs...)
		}
		if err := w.Sleep(ctx, sc.untilDue(w.Interval)); err != nil {
			return stopped(err)
		}
	}
}

// pending is an object waiting to be announced.
type pending struct {
	fp      string
	since   time.Time     // when fp was first seen (or, at the first look, the file's mtime)
	due     time.Time     // when to look at it again: the end of its settle window, the next look at an open file, or a retry
	backoff time.Duration // > 0: a writer held it open at the last look, which waits this long for the next
	blind   bool          // the kernel cannot tell whether a writer holds it open
	own     bool          // sluice wrote it (this Store, or another process as inotify told): its writer announces it
}

// window is how long p's version must stay unchanged before it may be
// announced (see WatchOptions.Settle): Settle when set; else none for a
// file whose writers the kernel can tell, and DefaultSettle for the others
// and for versions sluice wrote.
func (sc *scanner) window(p pending) time.Duration {
	switch {
	case sc.w.Settle > 0:
		return sc.w.Settle
	case sc.s.root == nil || p.blind || p.own:
		return DefaultSettle
	}
	return 0
}

// longer is the wait after d before a file still open for writing is looked
// at again: twice d, from minBackoff up to Interval.
func (sc *scanner) longer(d time.Duration) time.Duration {
	return max(min(2*d, sc.w.Interval), minBackoff)
}

// scanner holds what one Watch or ScanOnce learns between scans.
type scanner struct {
	s       *Store
	seen    SeenSet
	w       WatchOptions
	emit    func(context.Context, Object) error
	pending map[string]pending // key → the version waiting to settle
	known   map[string]string  // key → fingerprint known to be seen (saves SeenSet lookups)
	logged  map[string]bool    // ignored files already reported
	links   map[string]bool    // keys that are symbolic links (file://): looked at on every inotify batch
	wrote   map[string]bool    // keys a sluice writer (any process) just renamed into place, as inotify reported
	marks   chan mark          // Watch: announced versions to mark seen, in order, on their own goroutine
	// marked holds, per key, the ETag last queued on marks: the seen-set
	// may not hold it yet, and a touch meanwhile is still no new version.
	marked map[string]string
}

// mark is an announced version to record in the seen-set.
type mark struct{ key, fp, etag string }

// markInBackground makes the scanner mark announced versions seen on a
// goroutine of their own, in order, so that the next announcement does
// not wait for the seen-set's write (a transaction and an fsync on the
// state database, shared with every other writer of the process). The
// version is known to this scanner at once, and delivery stays at least
// once: a crash before its mark is written announces it again at the next
// start. A failed mark is logged (the version may be announced again
// after a restart). The returned func waits until every queued mark is
// written (at most a minute each), also after ctx ended.
func (sc *scanner) markInBackground(ctx context.Context) (wait func()) {
	sc.marks = make(chan mark, 1024)
	mctx := context.WithoutCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range sc.marks {
			c, cancel := context.WithTimeout(mctx, time.Minute)
			if err := sc.seen.MarkSeen(c, m.key, m.fp, m.etag); err != nil {
				sc.w.Logger.Warn("store: an announced object could not be marked seen, so it may be announced again after a restart", "store", sc.s.url, "key", m.key, "err", err)
			}
			cancel()
		}
	}()
	return func() {
		close(sc.marks)
		<-done
	}
}

func (s *Store) newScanner(seen SeenSet, w WatchOptions, emit func(context.Context, Object) error) *scanner {
	return &scanner{s: s, seen: seen, w: w, emit: emit,
		pending: map[string]pending{}, known: map[string]string{}, logged: map[string]bool{}, links: map[string]bool{}, wrote: map[string]bool{}, marked: map[string]string{}}
}

// scanResult is what one pass did: how many objects were emitted, the keys
// still waiting to settle, the files that cannot be objects, and the errors
// met (each naming its key).
type scanResult struct {
	emitted   int
	unsettled []string
	ignored   []IgnoredFile
	errs      []error
}

func (sc *scanner) log(errs []error) {
	for _, err := range errs {
		sc.w.Logger.Warn("store: watch", "store", sc.s.url, "err", err)
	}
}

// ignore reports a file that cannot be an object, once per name and reason.
func (sc *scanner) ignore(f IgnoredFile) {
	if !sc.logged[f.Name+"\x00"+f.Reason] {
		sc.logged[f.Name+"\x00"+f.Reason] = true
		sc.w.Logger.Warn("store: ignoring a file that cannot be an object", "store", sc.s.url, "path", f.Path, "reason", f.Reason)
	}
}

// untilDue is how long to wait before the earliest pending object is due,
// at most limit (and at least a millisecond, so a due object never spins).
func (sc *scanner) untilDue(limit time.Duration) time.Duration {
	now := sc.w.Clock()
	d := limit
	for _, p := range sc.pending {
		d = min(d, p.due.Sub(now))
	}
	return max(d, time.Millisecond)
}

// scan lists the whole store and considers every object in it.
func (sc *scanner) scan(ctx context.Context) (r scanResult) {
	s := sc.s
	var objs []Object
	var err error
	if s.root != nil {
		objs, r.ignored, err = s.listLocal(ctx, "")
		for _, f := range r.ignored {
			sc.ignore(f)
		}
		if err != nil {
			err = fmt.Errorf("store %s: scan: %w (will retry)", s.url, err)
		}
	} else {
		objs, err = s.List(ctx, "")
	}
	if err != nil {
		r.errs = append(r.errs, err)
		return r
	}
	now := sc.w.Clock()
	present := make(map[string]bool, len(objs))
	clear(sc.links)
	for _, o := range objs {
		if ctx.Err() != nil {
			return r
		}
		present[o.Key] = true
		sc.consider(ctx, o, now, &r, true)
	}
	for k := range sc.pending {
		if !present[k] {
			delete(sc.pending, k)
		}
	}
	for k := range sc.known {
		if !present[k] {
			delete(sc.known, k)
			delete(sc.marked, k)
		}
	}
	clear(sc.wrote)
	return r
}

// look considers the one key of a file:// store as it is now: what inotify
// reported, or a pending object whose deadline passed.
func (sc *scanner) look(ctx context.Context, key string, now time.Time, r *scanResult) {
	o, why, err := sc.s.localObject(key)
	switch {
	case errors.Is(err, ErrNotFound):
		sc.forget(key)
	case err != nil:
		r.errs = append(r.errs, fmt.Errorf("store %s: watch %q: %w (will retry)", sc.s.url, key, err))
		sc.retry(key, now)
	case why != "":
		sc.forget(key)
		sc.ignore(IgnoredFile{Name: key, Path: filepath.Join(sc.s.dir, filepath.FromSlash(key)), Reason: why})
	default:
		sc.consider(ctx, o, now, r, false)
	}
}

func (sc *scanner) forget(key string) {
	delete(sc.pending, key)
	delete(sc.known, key)
	delete(sc.marked, key)
	delete(sc.links, key)
	delete(sc.wrote, key)
}

// retry looks at key again an Interval from now (a key not pending yet is
// then looked at as if for the first time).
func (sc *scanner) retry(key string, now time.Time) {
	p := sc.pending[key]
	p.due = now.Add(sc.w.Interval)
	sc.pending[key] = p
}

// consider handles one object as listed (Key, Size, ModTime and its
// fingerprint): it starts or continues its settle window, and announces it
// once complete. The seen-set is asked when the object is due, and at once
// for objects found by a listing (listed), so that a listing of versions
// announced before does not wait for them to settle; with a settle window,
// an object inotify reported is usually being written, so asking at once
// would be wasted.
func (sc *scanner) consider(ctx context.Context, o Object, now time.Time, r *scanResult, listed bool) {
	s := sc.s
	if o.link {
		sc.links[o.Key] = true
	}
	fp := Fingerprint(o)
	wrote := sc.wrote[o.Key]
	delete(sc.wrote, o.Key)
	if sc.known[o.Key] == fp {
		delete(sc.pending, o.Key) // back to the version announced last
		return
	}
	p, ok := sc.pending[o.Key]
	switch {
	case ok && p.fp == fp:
	case ok && p.fp != "":
		// Changed since the watcher last looked. A writer that held it
		// open then is likely still at work. inotify reports each write,
		// so it is looked at again once the writes pause for minBackoff;
		// a listing sees only some, so it is looked at now, and the wait
		// keeps growing while the writer holds it open.
		q := pending{fp: fp, since: now, blind: p.blind}
		if p.backoff > 0 {
			q.backoff = p.backoff
			if !listed {
				q.backoff = minBackoff
				q.due = now.Add(minBackoff)
			}
		}
		p = q
	default:
		// The first look: the file's modification time says when it last
		// changed (one ahead of the clock counts as now).
		p = pending{fp: fp, since: now}
		if o.ModTime.Before(now) {
			p.since = o.ModTime
		}
	}
	if wrote {
		p.own = true
	}
	if d := p.since.Add(sc.window(p)); p.due.Before(d) {
		p.due = d
	}
	var seenFP, seenETag string
	var wasSeen bool
	if listed || !now.Before(p.due) {
		var err error
		seenFP, seenETag, wasSeen, err = sc.seen.Seen(ctx, o.Key)
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("store %s: watch %q: checking whether it was seen: %w (will retry)", s.url, o.Key, err))
			sc.retry(o.Key, now)
			return
		}
		if wasSeen && seenFP == fp {
			sc.known[o.Key] = fp
			delete(sc.pending, o.Key)
			return
		}
	}
	sc.pending[o.Key] = p
	if now.Before(p.due) {
		r.unsettled = append(r.unsettled, o.Key)
		return
	}
	var full Object
	var err error
	complete := true
	if s.root != nil {
		full, complete, err = sc.complete(ctx, o.Key, &p, now)
		sc.pending[o.Key] = p
	} else {
		full, err = s.Stat(ctx, o.Key)
	}
	if errors.Is(err, ErrNotFound) {
		delete(sc.pending, o.Key)
		return
	}
	if err != nil {
		r.errs = append(r.errs, fmt.Errorf("%w (will retry)", err))
		sc.retry(o.Key, now)
		return
	}
	if !complete {
		r.unsettled = append(r.unsettled, o.Key)
		return
	}
	if nfp := Fingerprint(full); nfp != fp { // changed since it was listed
		q := pending{fp: nfp, since: now, blind: p.blind}
		q.due = now.Add(sc.window(q))
		sc.pending[o.Key] = q
		r.unsettled = append(r.unsettled, o.Key)
		return
	}
	same := sc.marked[o.Key] == full.ETag && full.ETag != "" || wasSeen && (seenETag == full.ETag ||
		seenETag == "" && seenFP == legacyFingerprint(full)) // marked by an older sluice and untouched since
	if !same {
		if err := sc.emit(ctx, full); err != nil {
			r.errs = append(r.errs, fmt.Errorf("store %s: announcing %q failed, will retry in %s: %w", s.url, o.Key, sc.w.Interval, err))
			sc.retry(o.Key, now)
			return
		}
		r.emitted++
	}
	delete(sc.pending, o.Key)
	if sc.marks != nil {
		sc.marks <- mark{o.Key, fp, full.ETag}
		sc.known[o.Key], sc.marked[o.Key] = fp, full.ETag
		return
	}
	if err := sc.seen.MarkSeen(ctx, o.Key, fp, full.ETag); err != nil {
		r.errs = append(r.errs, fmt.Errorf("store %s: %q could not be marked seen, so it may be announced again: %w", s.url, o.Key, err))
		return
	}
	sc.known[o.Key] = fp
}

// complete opens the file of key, whose version p waited out its settle
// window, and tells whether that file is complete, describing it if so;
// otherwise it sets when to look again in p. A file still open for writing
// is looked at again after p's backoff. Finding that the kernel cannot tell
// (p.blind), or that this Store wrote the file (p.own), may lengthen p's
// window (see window).
func (sc *scanner) complete(ctx context.Context, key string, p *pending, now time.Time) (Object, bool, error) {
	s := sc.s
	f, err := s.root.Open(rel(key))
	if err != nil {
		return Object{}, false, s.errorf("stat", key, localErr(err))
	}
	defer f.Close()
	open, known := s.writers(f)
	switch {
	case open:
		p.backoff = sc.longer(p.backoff)
		p.due = now.Add(p.backoff)
		return Object{}, false, nil
	case !known:
		p.blind = true
	case sc.w.Settle <= 0 && !p.own && s.wroteHere(f):
		p.own = true
	}
	p.backoff = 0
	if d := p.since.Add(sc.window(*p)); now.Before(d) {
		p.due = d
		return Object{}, false, nil
	}
	o, err := s.describe(ctx, f, key)
	if err != nil {
		return Object{}, false, s.errorf("stat", key, err)
	}
	return o, true, nil
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
	m  map[string][2]string // key → last fingerprint and ETag marked
}

var _ SeenSet = (*MemorySeenSet)(nil)

// Seen returns the fingerprint and ETag last marked for key.
func (m *MemorySeenSet) Seen(_ context.Context, key string) (fingerprint, etag string, ok bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[key]
	return v[0], v[1], ok, nil
}

// MarkSeen records key's fingerprint and ETag, replacing older ones.
func (m *MemorySeenSet) MarkSeen(_ context.Context, key, fingerprint, etag string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string][2]string{}
	}
	m.m[key] = [2]string{fingerprint, etag}
	return nil
}
