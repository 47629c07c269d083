//go:build linux

package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/storetest"
)

// These tests are of the inotify watcher. Its clock is a stepClock: time
// never passes by itself; each wait of the watcher is handed to the test,
// which checks how long the watcher asked to wait and lets that much time
// pass. The scan interval and the rescan are an hour, so only inotify, the
// settle deadlines and the looks at files open for writing can explain
// anything the watcher does. The settle window is automatic (none where the
// kernel can tell a file's writers) unless a test sets one.

// sleepReq is one wait of the watcher.
type sleepReq struct {
	d       time.Duration
	release chan struct{}
}

type stepClock struct {
	mu   sync.Mutex
	now  time.Time
	reqs chan sleepReq
	held []sleepReq // waits untilAnnounced received but did not let pass: next returns them first
}

func newStepClock(now time.Time) *stepClock {
	return &stepClock{now: now, reqs: make(chan sleepReq)}
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) Sleep(ctx context.Context, d time.Duration) error {
	r := sleepReq{d: d, release: make(chan struct{})}
	select {
	case c.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-r.release:
		c.mu.Lock()
		c.now = c.now.Add(d)
		c.mu.Unlock()
		return nil
	case <-ctx.Done(): // inotify woke the watcher
		return ctx.Err()
	}
}

// next returns the watcher's next wait (failing after 10 s of real time).
func (c *stepClock) next(t *testing.T) sleepReq {
	t.Helper()
	if len(c.held) > 0 {
		r := c.held[0]
		c.held = c.held[1:]
		return r
	}
	select {
	case r := <-c.reqs:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher did not wait within 10s")
		return sleepReq{}
	}
}

// untilAnnounced lets every wait shorter than an hour pass — settle
// deadlines, never a poll interval or a rescan — until the watcher announces
// something, and returns that. A longer wait is kept for next: the watcher
// may ask for it just after announcing, and select may take it first.
func (c *stepClock) untilAnnounced(t *testing.T, got <-chan store.Object) store.Object {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case r := <-c.reqs:
			if r.d < time.Hour {
				close(r.release)
			} else {
				c.held = append(c.held, r)
			}
		case o := <-got:
			return o
		case <-deadline:
			t.Fatal("nothing announced within 10s (without any interval or rescan passing)")
		}
	}
}

// idle is how long a watcher with nothing pending waits: the rescan period.
const idle = 24 * time.Hour

func (c *stepClock) opts(t *testing.T) *store.WatchOptions {
	return &store.WatchOptions{
		Interval: time.Hour,
		Rescan:   idle,
		Clock:    c.Now,
		Sleep:    c.Sleep,
		Logger:   slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// following runs Watch in the background until the test ends; emitted
// objects arrive on the returned channel.
func following(t *testing.T, s *store.Store, opts *store.WatchOptions, emit func(context.Context, store.Object) error) <-chan store.Object {
	t.Helper()
	return followingSeen(t, s, &store.MemorySeenSet{}, opts, emit)
}

// followingSeen is following with the given seen-set.
func followingSeen(t *testing.T, s *store.Store, seen store.SeenSet, opts *store.WatchOptions, emit func(context.Context, store.Object) error) <-chan store.Object {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan store.Object, 100)
	done := make(chan error, 1)
	go func() {
		done <- s.Watch(ctx, seen, opts, func(ctx context.Context, o store.Object) error {
			if emit != nil {
				if err := emit(ctx, o); err != nil {
					return err
				}
			}
			out <- o
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch = %v", err)
		}
	})
	return out
}

func receive(t *testing.T, ch <-chan store.Object) store.Object {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("nothing announced within 10s")
		return store.Object{}
	}
}

func nothingYet(t *testing.T, ch <-chan store.Object) {
	t.Helper()
	select {
	case o := <-ch:
		t.Fatalf("announced %q early", o.Key)
	default:
	}
}

// moveIn writes data outside dir and renames it to key: one inotify event.
func moveIn(t *testing.T, dir, key string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(dir), "staging-"+filepath.Base(dir))
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(tmp, "f")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(src, dst); err != nil {
		t.Fatal(err)
	}
}

func TestAFileRenamedIntoPlaceIsAnnouncedAtOnceWithoutASettleWindow(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := openT(t, fileURL(dir), nil)
	// Behind the files' times, so a window counted from their modification
	// time would still be to wait out in full.
	start := time.Now().Add(-time.Hour)
	c := newStepClock(start)
	got := following(t, s, c.opts(t), nil)
	if r := c.next(t); r.d != idle {
		t.Fatalf("an idle watcher waits %s; want the rescan period: nothing is pending", r.d)
	}
	data := []byte("a,b\n1,2\n")
	moveIn(t, dir, "in/x.csv", data)
	// The pass that handles the rename announces the file: the watcher's
	// next wait is the idle one, with nothing pending.
	if r := c.next(t); r.d != idle {
		t.Fatalf("after a complete file was moved in the watcher waits %s; want it announced in the same pass, then idle", r.d)
	}
	o := receive(t, got)
	if o.Key != "in/x.csv" || o.ETag != storetest.MD5Hex(data) || o.Size != int64(len(data)) {
		t.Errorf("announced %+v; want in/x.csv with its MD5", o)
	}
	if c.Now() != start {
		t.Errorf("announced after %s of watcher time; want no wait at all", c.Now().Sub(start))
	}
}

func TestAnExplicitSettleWindowHoldsBackAFileMovedInUntilItsDeadlineNotAScan(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := openT(t, fileURL(dir), nil)
	start := time.Now().Add(-time.Hour) // behind the files' times: the window starts when the watcher sees them
	c := newStepClock(start)
	opts := c.opts(t)
	opts.Settle = 2 * time.Second
	got := following(t, s, opts, nil)
	if r := c.next(t); r.d != idle {
		t.Fatalf("an idle watcher waits %s; want the rescan period: nothing is pending", r.d)
	}
	data := []byte("a,b\n1,2\n")
	moveIn(t, dir, "in/x.csv", data)
	r := c.next(t)
	if r.d != 2*time.Second {
		t.Fatalf("after the file appeared the watcher waits %s; want exactly the 2s settle window, although the file is complete", r.d)
	}
	nothingYet(t, got)
	close(r.release)
	o := receive(t, got)
	if o.Key != "in/x.csv" || o.ETag != storetest.MD5Hex(data) {
		t.Errorf("announced %+v; want in/x.csv with its MD5", o)
	}
	if el := c.Now().Sub(start); el != 2*time.Second {
		t.Errorf("announced after %s of watcher time; want the settle window exactly (no scan interval passed)", el)
	}
}

func TestFilesInDirectoriesCreatedOrMovedWhileWatchingAreFollowed(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, fileURL(dir), nil)
	start := time.Now().Add(-time.Hour)
	c := newStepClock(start)
	got := following(t, s, c.opts(t), nil)
	c.next(t) // idle
	// announced lets settle windows pass until exactly the keys are announced.
	announced := func(keys ...string) {
		t.Helper()
		want := map[string]bool{}
		for _, k := range keys {
			want[k] = true
		}
		for len(want) > 0 {
			o := c.untilAnnounced(t, got)
			if !want[o.Key] {
				t.Fatalf("announced %s; want %v", o.Key, keys)
			}
			delete(want, o.Key)
		}
	}
	// A tree made at once (mkdir -p): the first file in it is found by
	// listing the new directory, the second only through its watch.
	moveIn(t, dir, "a/b/c/1.json", []byte(`{"n":1}`))
	announced("a/b/c/1.json")
	moveIn(t, dir, "a/b/c/2.json", []byte(`{"n":2}`))
	announced("a/b/c/2.json")
	// A directory moved within the store is followed under its new name:
	// its files are new keys, and files written into it later are seen.
	if err := os.Rename(filepath.Join(dir, "a"), filepath.Join(dir, "z")); err != nil {
		t.Fatal(err)
	}
	announced("z/b/c/1.json", "z/b/c/2.json")
	moveIn(t, dir, "z/b/c/3.json", []byte(`{"n":3}`))
	announced("z/b/c/3.json")
	moveIn(t, dir, "z/b/4.json", []byte(`{"n":4}`))
	announced("z/b/4.json")
	if el := c.Now().Sub(start); el != 0 {
		t.Errorf("%s of watcher time passed; want none: every file was complete when it appeared", el)
	}
}

func TestFilesSettledBeforeStartAreAnnouncedAtOnce(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "old/a.csv", []byte("1\n"))
	writeFile(t, dir, "old/b.csv", []byte("2\n"))
	s := openT(t, fileURL(dir), nil)
	// The watcher's clock is an hour past the files' last change.
	start := time.Now().Add(time.Hour)
	c := newStepClock(start)
	got := following(t, s, c.opts(t), nil)
	r := c.next(t)
	if r.d != idle {
		t.Errorf("after the first listing the watcher waits %s; want nothing pending (the rescan period)", r.d)
	}
	if a, b := receive(t, got), receive(t, got); a.Key != "old/a.csv" || b.Key != "old/b.csv" {
		t.Errorf("announced %s and %s; want both old files", a.Key, b.Key)
	}
	if c.Now() != start {
		t.Errorf("the watcher's clock moved by %s; want the files announced without waiting", c.Now().Sub(start))
	}
	// Likewise a file moved in (a rename: complete) whose modification
	// time is older than the window.
	moveIn(t, dir, "late/c.csv", []byte("3\n"))
	if o := receive(t, got); o.Key != "late/c.csv" || c.Now() != start {
		t.Errorf("announced %s after %s; want late/c.csv without waiting", o.Key, c.Now().Sub(start))
	}

	// ScanOnce (run --once) likewise does not wait for them.
	dir2 := t.TempDir()
	writeFile(t, dir2, "x", []byte("x"))
	ft := newFakeTime()
	ft.now = time.Now().Add(time.Hour)
	var rec recorder
	if n, err := emitted(openT(t, fileURL(dir2), nil).ScanOnce(context.Background(), &store.MemorySeenSet{}, ft.opts(), rec.emit)); n != 1 || err != nil || ft.sleeps != 0 {
		t.Errorf("ScanOnce = %d, %v after %d sleeps; want the settled file announced at once", n, err, ft.sleeps)
	}
}

func TestAFileOpenForWritingIsAnnouncedOnlyOnceItsWriterClosesIt(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, fileURL(dir), nil)
	start := time.Now().Add(-time.Hour)
	c := newStepClock(start)
	got := following(t, s, c.opts(t), nil)
	c.next(t) // idle
	f, err := os.OpenFile(filepath.Join(dir, "slow.csv"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Each system call below is one inotify event, and the watcher is
	// waiting again (having looked at the file) before the next one.
	if r := c.next(t); r.d != 5*time.Millisecond {
		t.Fatalf("after the file was created (and is open for writing) the watcher waits %s; want 5ms, the first wait for its writer", r.d)
	}
	var want []byte
	var r sleepReq
	for i := range 3 {
		line := fmt.Appendf(nil, "row %d\n", i)
		want = append(want, line...)
		if _, err := f.Write(line); err != nil {
			t.Fatal(err)
		}
		// A change: the writer is at work, so the watcher looks again
		// once it has paused for 5ms.
		if r = c.next(t); r.d != 5*time.Millisecond {
			t.Fatalf("after write %d the watcher waits %s; want 5ms", i, r.d)
		}
		nothingYet(t, got)
	}
	// Paused but still open: the wait doubles at each look.
	for _, d := range []time.Duration{10, 20, 40} {
		close(r.release)
		if r = c.next(t); r.d != d*time.Millisecond {
			t.Fatalf("a file still open for writing is looked at again in %s; want %s", r.d, d*time.Millisecond)
		}
		nothingYet(t, got)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// inotify does not report the close: the next look finds it.
	close(r.release)
	o := receive(t, got)
	if o.Key != "slow.csv" || o.ETag != storetest.MD5Hex(want) || o.Size != int64(len(want)) {
		t.Errorf("announced %+v; want the whole file (%d bytes)", o, len(want))
	}
	if el := c.Now().Sub(start); el != (5+10+20+40)*time.Millisecond {
		t.Errorf("announced after %s of watcher time; want the 75ms of looks", el)
	}
	if r := c.next(t); r.d != idle-c.Now().Sub(start) {
		t.Errorf("after announcing the watcher waits %s; want nothing pending (the rest of the rescan period)", r.d)
	}
}

func TestAnExplicitSettleWindowAndTheWriterCheckBothHoldBackAFileWrittenInPlace(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, fileURL(dir), nil)
	c := newStepClock(time.Now().Add(-time.Hour))
	opts := c.opts(t)
	opts.Settle = 2 * time.Second
	got := following(t, s, opts, nil)
	c.next(t) // idle
	p := filepath.Join(dir, "slow.csv")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if r := c.next(t); r.d != 2*time.Second {
		t.Fatalf("after the file was created the watcher waits %s; want the settle window", r.d)
	}
	var want []byte
	for i := range 5 {
		line := fmt.Appendf(nil, "row %d\n", i)
		want = append(want, line...)
		if _, err := f.Write(line); err != nil {
			t.Fatal(err)
		}
		r := c.next(t) // each write restarts the window
		if r.d != 2*time.Second {
			t.Fatalf("after write %d the watcher waits %s; want the settle window again", i, r.d)
		}
		nothingYet(t, got)
		if i == 4 {
			close(r.release)
		}
	}
	// Settled but still open for writing: not complete. It is looked at
	// again 5ms later, then 10ms.
	r := c.next(t)
	if r.d != 5*time.Millisecond {
		t.Fatalf("a settled file still open for writing is looked at again in %s; want 5ms", r.d)
	}
	nothingYet(t, got)
	close(r.release)
	if r = c.next(t); r.d != 10*time.Millisecond {
		t.Fatalf("then in %s; want 10ms", r.d)
	}
	nothingYet(t, got)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	close(r.release)
	if o := receive(t, got); o.Key != "slow.csv" || o.ETag != storetest.MD5Hex(want) || o.Size != int64(len(want)) {
		t.Errorf("announced %+v; want the whole file (%d bytes)", o, len(want))
	}
}

func TestWhereTheKernelCannotTellAFilesWritersTheDefaultSettleWindowDecides(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "in"), 0o755); err != nil { // one event for the file, none for its directory
		t.Fatal(err)
	}
	s := openT(t, fileURL(dir), nil)
	// As for another user's file without CAP_LEASE, or on NFS: the lease
	// is refused, which says nothing about writers.
	store.SetWriterProbe(s, func(*os.File) (open, known bool) { return false, false })
	start := time.Now().Add(-time.Hour)
	c := newStepClock(start)
	got := following(t, s, c.opts(t), nil)
	c.next(t) // idle
	moveIn(t, dir, "in/x.csv", []byte("x\n"))
	r := c.next(t)
	if r.d != store.DefaultSettle {
		t.Fatalf("the watcher waits %s for a file whose writers it cannot tell; want DefaultSettle (%s)", r.d, store.DefaultSettle)
	}
	nothingYet(t, got)
	close(r.release)
	if o := receive(t, got); o.Key != "in/x.csv" || c.Now().Sub(start) != store.DefaultSettle {
		t.Errorf("announced %s after %s; want in/x.csv after DefaultSettle", o.Key, c.Now().Sub(start))
	}
}

func TestVersionsThisStoreWroteWaitForTheirWriterToMarkThemSeen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, fileURL(dir), nil)
	start := time.Now().Add(-time.Hour)
	c := newStepClock(start)
	seen := &store.MemorySeenSet{}
	var mu sync.Mutex
	at := map[string]time.Time{} // watcher time of each announcement
	got := followingSeen(t, s, seen, c.opts(t), func(_ context.Context, o store.Object) error {
		mu.Lock()
		defer mu.Unlock()
		at[o.Key] = c.Now()
		return nil
	})
	c.next(t) // idle
	// The engine writes, publishes and then marks seen (Announce); "lost"
	// stands for a version whose publishing failed, so it is not marked.
	o, err := s.Put(ctx, "landed/marked.json", []byte(`{"a":1}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if err := seen.MarkSeen(ctx, o.Key, store.Fingerprint(o), o.ETag); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "landed/lost.json", []byte(`{"b":2}`), ""); err != nil {
		t.Fatal(err)
	}
	if o := c.untilAnnounced(t, got); o.Key != "landed/lost.json" {
		t.Fatalf("announced %s; want only landed/lost.json", o.Key)
	}
	for r := c.next(t); r.d != idle; r = c.next(t) {
		close(r.release)
	}
	nothingYet(t, got)
	mu.Lock()
	defer mu.Unlock()
	if el := at["landed/lost.json"].Sub(start); el < store.DefaultSettle {
		t.Errorf("the unmarked version was announced after %s of watcher time; want DefaultSettle (%s) for its writer to mark it first", el, store.DefaultSettle)
	}
}

func TestVersionsAnotherSluiceProcessWroteWaitForTheirWriter(t *testing.T) {
	dir := t.TempDir()
	// The directory exists: a new one would be listed, and a listing
	// cannot tell who wrote a file.
	if err := os.Mkdir(filepath.Join(dir, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := openT(t, fileURL(dir), nil)
	// A second Store on the directory stands for `sluice put` or a job
	// run: its writes are unknown to s but for what inotify reports.
	other := openT(t, fileURL(dir), nil)
	start := time.Now().Add(-time.Hour)
	c := newStepClock(start)
	var mu sync.Mutex
	var at time.Time
	got := following(t, s, c.opts(t), func(context.Context, store.Object) error {
		mu.Lock()
		defer mu.Unlock()
		at = c.Now()
		return nil
	})
	c.next(t) // idle
	if _, err := other.Put(context.Background(), "in/put.json", []byte(`{"p":1}`), ""); err != nil {
		t.Fatal(err)
	}
	// A file another program moves in right after is not taken for one.
	moveIn(t, dir, "in/moved.json", []byte(`{"m":1}`))
	if o := receive(t, got); o.Key != "in/moved.json" || c.Now() != start { // no wait is let pass
		t.Fatalf("announced %s after %s; want in/moved.json at once", o.Key, c.Now().Sub(start))
	}
	if o := c.untilAnnounced(t, got); o.Key != "in/put.json" {
		t.Fatalf("announced %s; want in/put.json", o.Key)
	}
	mu.Lock()
	defer mu.Unlock()
	if el := at.Sub(start); el < store.DefaultSettle {
		t.Errorf("the version another sluice wrote was announced after %s of watcher time; want DefaultSettle (%s), time for its writer to mark it seen", el, store.DefaultSettle)
	}
}

func TestAnInotifyOverflowIsRecoveredByARescan(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "first", []byte("1"))
	writeFile(t, dir, "noise/a", []byte("a"))
	writeFile(t, dir, "noise/b", []byte("b"))
	s := openT(t, fileURL(dir), nil)
	c := newStepClock(time.Now().Add(time.Hour)) // everything written is settled already
	hold := make(chan struct{})
	var once sync.Once
	got := following(t, s, c.opts(t), func(ctx context.Context, o store.Object) error {
		if o.Key == "first" {
			once.Do(func() { <-hold }) // block the watcher while the kernel's queue overflows
		}
		return nil
	})
	// The watcher is blocked announcing "first" (noise/* wait behind it).
	// Fill inotify's queue (fs.inotify.max_queued_events, 16384 by default)
	// with alternating changes, which the kernel cannot merge; the file
	// written afterwards has its events dropped.
	max := 16384
	if b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events"); err == nil {
		fmt.Sscan(string(b), &max)
	}
	for i := 0; i < 2*max+8192; i++ {
		if err := os.Chmod(filepath.Join(dir, "noise", string(rune('a'+i%2))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, dir, "lost/event.csv", []byte("found by the rescan\n"))
	close(hold)
	for {
		if o := c.untilAnnounced(t, got); o.Key == "lost/event.csv" {
			return
		}
	}
}
