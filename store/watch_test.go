package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/storetest"
)

// fakeTime is a clock that moves only when the watcher sleeps; onSleep runs
// at every sleep, before the clock advances, to change files between scans.
// Its options make Watch poll: the tests using it hold for the polling
// watcher (mem://, s3://, systems without inotify) and for ScanOnce; those
// of the inotify watcher use stepClock (follow_test.go). They set a 2s
// settle window, which holds everywhere; autoOpts leaves it automatic.
type fakeTime struct {
	mu      sync.Mutex
	now     time.Time
	sleeps  int
	slept   []time.Duration // each sleep's length
	onSleep func(n int)
	logs    []string
}

// newFakeTime starts an hour behind the real clock: the files the tests
// write then look newer than the watcher's clock, so their settle window
// starts at the watcher's first look (see WatchOptions.Settle) and the
// number of sleeps is exact.
func newFakeTime() *fakeTime { return &fakeTime{now: time.Now().Add(-time.Hour)} }

func (f *fakeTime) opts() *store.WatchOptions {
	return &store.WatchOptions{
		Interval: time.Second,
		Settle:   2 * time.Second,
		Poll:     true,
		Clock: func() time.Time {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.now
		},
		Sleep: func(ctx context.Context, d time.Duration) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			f.mu.Lock()
			f.sleeps++
			f.slept = append(f.slept, d)
			n, hook := f.sleeps, f.onSleep
			f.mu.Unlock()
			if hook != nil {
				hook(n)
			}
			f.mu.Lock()
			f.now = f.now.Add(d)
			f.mu.Unlock()
			return nil
		},
		Logger: slog.New(slog.NewTextHandler(logWriter{f}, nil)),
	}
}

// autoOpts is opts with the settle window left automatic.
func (f *fakeTime) autoOpts() *store.WatchOptions {
	o := f.opts()
	o.Settle = 0
	return o
}

// logWriter keeps each log record (one Write each) as a line of f.logs.
type logWriter struct{ f *fakeTime }

func (w logWriter) Write(p []byte) (int, error) {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	w.f.logs = append(w.f.logs, string(p))
	return len(p), nil
}

// emitted drops ScanOnce's list of ignored files, for tests that count.
func emitted(r store.ScanResult, err error) (int, error) { return r.Emitted, err }

// isSeen reports whether seen holds o's fingerprint and ETag.
func isSeen(t *testing.T, seen store.SeenSet, o store.Object) bool {
	t.Helper()
	fp, etag, ok, err := seen.Seen(context.Background(), o.Key)
	if err != nil {
		t.Fatal(err)
	}
	return ok && fp == store.Fingerprint(o) && etag == o.ETag
}

// recorder collects emitted objects.
type recorder struct {
	mu   sync.Mutex
	objs []store.Object
	fail func(o store.Object) error
}

func (r *recorder) emit(_ context.Context, o store.Object) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		if err := r.fail(o); err != nil {
			return err
		}
	}
	r.objs = append(r.objs, o)
	return nil
}

func (r *recorder) keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ks []string
	for _, o := range r.objs {
		ks = append(ks, o.Key)
	}
	return ks
}

func writeFile(t *testing.T, dir, key string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestAFileDroppedInIsAnnouncedOnceAfterSettling(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, fileURL(dir), nil)
	data := []byte("Entity,Code,Year,Hydropower (Terawatt-hours)\nNorway,NOR,2019,125.77\n")
	writeFile(t, dir, "data/2020-08-07_2PM/hydropower-consumption.csv", data)
	ft := newFakeTime()
	var rec recorder
	seen := &store.MemorySeenSet{}
	n, err := emitted(s.ScanOnce(ctx, seen, ft.opts(), rec.emit))
	if err != nil || n != 1 {
		t.Fatalf("ScanOnce = %d, %v; want 1 object", n, err)
	}
	if ft.sleeps != 2 {
		t.Errorf("ScanOnce slept %d intervals; want 2 (the 2s settle time at 1s intervals)", ft.sleeps)
	}
	o := rec.objs[0]
	if o.Key != "data/2020-08-07_2PM/hydropower-consumption.csv" || o.Size != int64(len(data)) || o.ETag != storetest.MD5Hex(data) || !strings.HasPrefix(o.ContentType, "text/csv") {
		t.Errorf("emitted %+v; want the file with its MD5 ETag", o)
	}
	if !isSeen(t, seen, o) {
		t.Error("the announced object was not marked seen")
	}
	n, err = emitted(s.ScanOnce(ctx, seen, ft.opts(), rec.emit))
	if err != nil || n != 0 || len(rec.objs) != 1 {
		t.Errorf("second ScanOnce = %d, %v, %d emitted in all; want nothing new", n, err, len(rec.objs))
	}
}

func TestAGrowingFileIsNotAnnouncedUntilStable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, fileURL(dir), nil)
	p := filepath.Join(dir, "big.csv")
	writeFile(t, dir, "big.csv", []byte("part 0\n"))
	ft := newFakeTime()
	grow := func(n int) {
		if n > 5 {
			return
		}
		f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		fmt.Fprintf(f, "part %d\n", n)
		f.Close()
	}
	ft.onSleep = grow
	var rec recorder
	n, err := emitted(s.ScanOnce(ctx, &store.MemorySeenSet{}, ft.opts(), rec.emit))
	if err != nil || n != 1 {
		t.Fatalf("ScanOnce = %d, %v; want 1", n, err)
	}
	final, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if rec.objs[0].Size != int64(len(final)) || rec.objs[0].ETag != storetest.MD5Hex(final) {
		t.Errorf("emitted %+v; want the complete file of %d bytes", rec.objs[0], len(final))
	}
	if ft.sleeps < 5+2 {
		t.Errorf("announced after %d intervals; the file grew for 5 and must then settle for 2", ft.sleeps)
	}
}

func TestAFileChangingOnlyItsMtimeIsStillUnsettled(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, fileURL(dir), nil)
	p := filepath.Join(dir, "same-size.bin")
	writeFile(t, dir, "same-size.bin", []byte("aaaa"))
	ft := newFakeTime()
	base := time.Now().Add(-time.Hour)
	ft.onSleep = func(n int) {
		if n <= 3 {
			mt := base.Add(time.Duration(n) * time.Second)
			if err := os.Chtimes(p, mt, mt); err != nil {
				t.Error(err)
			}
		}
	}
	var rec recorder
	if n, err := emitted(s.ScanOnce(ctx, &store.MemorySeenSet{}, ft.opts(), rec.emit)); err != nil || n != 1 {
		t.Fatalf("ScanOnce = %d, %v", n, err)
	}
	if ft.sleeps < 3+2 {
		t.Errorf("announced after %d intervals; mtime changed for 3 and must then settle for 2", ft.sleeps)
	}
}

func TestWatchFindsFilesThatArrivedBeforeItStarted(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "while-down/a.json", []byte(`{"a":1}`))
	writeFile(t, dir, "while-down/b.json", []byte(`{"b":2}`))
	s := openT(t, fileURL(dir), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ft := newFakeTime()
	rec := recorder{}
	rec.fail = func(o store.Object) error {
		if len(rec.objs) == 1 { // this is the second: stop after recording it
			defer cancel()
		}
		return nil
	}
	if err := s.Watch(ctx, &store.MemorySeenSet{}, ft.opts(), rec.emit); err != nil {
		t.Fatalf("Watch returned %v; want nil when its context ends", err)
	}
	if got := fmt.Sprint(rec.keys()); got != "[while-down/a.json while-down/b.json]" {
		t.Errorf("Watch announced %s; want both files present at start", got)
	}
	if ft.sleeps != 2 {
		t.Errorf("files present at start were announced after %d intervals; want 2 (found by the first scan, then settled)", ft.sleeps)
	}
}

func TestASeenFileIsNotAnnouncedAgainAfterARestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFile(t, dir, "x.csv", []byte("1\n"))
	seen := &store.MemorySeenSet{} // stands in for the persisted state DB
	var rec recorder
	if n, err := emitted(openT(t, fileURL(dir), nil).ScanOnce(ctx, seen, newFakeTime().opts(), rec.emit)); n != 1 || err != nil {
		t.Fatalf("first run: %d, %v", n, err)
	}
	restarted := openT(t, fileURL(dir), nil)
	if n, err := emitted(restarted.ScanOnce(ctx, seen, newFakeTime().opts(), rec.emit)); n != 0 || err != nil {
		t.Errorf("after restart: %d, %v; want nothing announced", n, err)
	}
	// A new version of the file is announced.
	later := time.Now().Add(time.Minute)
	writeFile(t, dir, "x.csv", []byte("1\n2\n"))
	if err := os.Chtimes(filepath.Join(dir, "x.csv"), later, later); err != nil {
		t.Fatal(err)
	}
	if n, err := emitted(restarted.ScanOnce(ctx, seen, newFakeTime().opts(), rec.emit)); n != 1 || err != nil {
		t.Errorf("after a rewrite: %d, %v; want the new version announced", n, err)
	}
	if len(rec.objs) != 2 || rec.objs[0].ETag == rec.objs[1].ETag {
		t.Errorf("announced %+v; want two versions with different ETags", rec.objs)
	}
}

func TestOwnWritesMarkedSeenAreNotAnnouncedAgain(t *testing.T) {
	ctx := context.Background()
	s := openT(t, fileURL(t.TempDir()), nil)
	seen := &store.MemorySeenSet{}
	o, err := s.Put(ctx, "curated/_SUCCESS", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := seen.MarkSeen(ctx, o.Key, store.Fingerprint(o), o.ETag); err != nil {
		t.Fatal(err)
	}
	var rec recorder
	if n, err := emitted(s.ScanOnce(ctx, seen, newFakeTime().opts(), rec.emit)); n != 0 || err != nil {
		t.Errorf("ScanOnce = %d, %v; want sluice's own write not announced again", n, err)
	}
}

func TestAFailedEmitIsRetriedAtTheNextScan(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "retry.csv", []byte("r\n"))
	s := openT(t, fileURL(dir), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ft := newFakeTime()
	seen := &store.MemorySeenSet{}
	attempts := 0
	rec := recorder{}
	rec.fail = func(o store.Object) error {
		attempts++
		if attempts == 1 {
			if isSeen(t, seen, o) {
				t.Error("marked seen before emit succeeded")
			}
			return errors.New("queue unavailable")
		}
		defer cancel()
		return nil
	}
	if err := s.Watch(ctx, seen, ft.opts(), rec.emit); err != nil {
		t.Fatal(err)
	}
	if attempts != 2 || len(rec.objs) != 1 {
		t.Errorf("emit called %d times, succeeded %d; want a failure then one success", attempts, len(rec.objs))
	}
	if ft.sleeps != 3 {
		t.Errorf("retried after %d intervals; want the scan right after the failure (3rd interval)", ft.sleeps)
	}
	if len(ft.logs) != 1 || !strings.Contains(ft.logs[0], "queue unavailable") || !strings.Contains(ft.logs[0], `retry.csv`) || !strings.Contains(ft.logs[0], "level=WARN") {
		t.Errorf("logs = %q; want one line naming the key and the failure", ft.logs)
	}
	if !isSeen(t, seen, rec.objs[0]) {
		t.Error("not marked seen after the successful emit")
	}
}

func TestScanOnceReportsAFailedEmitAndLeavesItUnseen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFile(t, dir, "a", []byte("a"))
	writeFile(t, dir, "b", []byte("b"))
	s := openT(t, fileURL(dir), nil)
	seen := &store.MemorySeenSet{}
	rec := recorder{fail: func(o store.Object) error {
		if o.Key == "a" {
			return errors.New("queue unavailable")
		}
		return nil
	}}
	n, err := emitted(s.ScanOnce(ctx, seen, newFakeTime().opts(), rec.emit))
	if n != 1 || err == nil || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("ScanOnce = %d, %v; want b announced and an error naming a", n, err)
	}
	rec.fail = nil
	if n, err := emitted(s.ScanOnce(ctx, seen, newFakeTime().opts(), rec.emit)); n != 1 || err != nil || fmt.Sprint(rec.keys()) != "[b a]" {
		t.Errorf("second ScanOnce = %d, %v, keys %v; want a announced now", n, err, rec.keys())
	}
}

func TestScanOnceGivesUpOnFilesThatNeverSettleWhenCtxEnds(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "forever.log", []byte("x"))
	s := openT(t, fileURL(dir), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ft := newFakeTime()
	ft.onSleep = func(n int) {
		if n == 20 {
			cancel()
			return
		}
		f, err := os.OpenFile(filepath.Join(dir, "forever.log"), os.O_APPEND|os.O_WRONLY, 0)
		if err == nil {
			f.WriteString("x")
			f.Close()
		}
	}
	var rec recorder
	n, err := emitted(s.ScanOnce(ctx, &store.MemorySeenSet{}, ft.opts(), rec.emit))
	if n != 0 || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), `"forever.log"`) {
		t.Errorf("ScanOnce = %d, %v; want 0 and a cancellation error naming forever.log", n, err)
	}
}

func TestFilesThatCannotBeObjectsAreReported(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	long := strings.Repeat(strings.Repeat("d", 200)+"/", 6) + "long.csv" // 1,214 bytes
	writeFile(t, dir, `in/back\slash.csv`, []byte("x"))
	writeFile(t, dir, "in/tab\tname.csv", []byte("x"))
	writeFile(t, dir, "in/"+long, []byte("x"))
	writeFile(t, dir, "in/ok.csv", []byte("x"))
	if err := os.Symlink(t.TempDir(), filepath.Join(dir, "in", "elsewhere")); err != nil {
		t.Fatal(err)
	}
	s := openT(t, fileURL(dir), nil)
	ft := newFakeTime()
	var rec recorder
	res, err := s.ScanOnce(ctx, &store.MemorySeenSet{}, ft.opts(), rec.emit)
	if err != nil || res.Emitted != 1 || fmt.Sprint(rec.keys()) != "[in/ok.csv]" {
		t.Fatalf("ScanOnce = %+v, %v, announced %v; want in/ok.csv only", res, err, rec.keys())
	}
	want := []string{`in/back\slash.csv`, "in/" + long, "in/elsewhere", "in/tab\tname.csv"}
	var got []string
	for _, f := range res.Ignored {
		got = append(got, f.Name)
		if f.Path != filepath.Join(dir, filepath.FromSlash(f.Name)) || f.Reason == "" {
			t.Errorf("ignored file %+v: want its path on disk and a reason", f)
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ScanOnce reported ignored %q; want %q", got, want)
	}
	all := strings.Join(ft.logs, "")
	if n := strings.Count(all, "level=WARN"); n != len(want) || ft.sleeps == 0 {
		t.Errorf("%d warnings over %d rescans; want one per ignored file:\n%s", n, ft.sleeps, all)
	}
	for _, frag := range []string{"slash.csv", "name.csv", "long.csv", "elsewhere"} {
		if strings.Count(all, frag) != 1 {
			t.Errorf("logs mention %s %d times; want once:\n%s", frag, strings.Count(all, frag), all)
		}
	}
	ign, err := s.Ignored(ctx, "in/")
	if err != nil || len(ign) != len(want) {
		t.Errorf("Ignored(in/) = %+v, %v; want the %d files", ign, err, len(want))
	}
	if ign, err := s.Ignored(ctx, "other/"); err != nil || len(ign) != 0 {
		t.Errorf("Ignored(other/) = %+v, %v; want none", ign, err)
	}
}

func TestWatchWorksOnAMemStore(t *testing.T) {
	s := openT(t, "mem://", nil)
	if _, err := s.Put(context.Background(), "m/1", []byte("one"), ""); err != nil {
		t.Fatal(err)
	}
	var rec recorder
	n, err := emitted(s.ScanOnce(context.Background(), &store.MemorySeenSet{}, newFakeTime().opts(), rec.emit))
	if n != 1 || err != nil || rec.objs[0].ETag != storetest.MD5Hex([]byte("one")) {
		t.Errorf("ScanOnce on mem:// = %d, %v, %+v", n, err, rec.objs)
	}
}

func TestObjectsOfAMemStoreWaitTheDefaultSettleWindowByDefault(t *testing.T) {
	s := openT(t, "mem://", nil)
	if _, err := s.Put(context.Background(), "m/1", []byte("one"), ""); err != nil {
		t.Fatal(err)
	}
	ft := newFakeTime() // behind the object's time: the window starts at the first listing
	var rec recorder
	n, err := emitted(s.ScanOnce(context.Background(), &store.MemorySeenSet{}, ft.autoOpts(), rec.emit))
	if n != 1 || err != nil {
		t.Fatalf("ScanOnce on mem:// = %d, %v; want the object", n, err)
	}
	if fmt.Sprint(ft.slept) != "[1s 1s]" {
		t.Errorf("ScanOnce slept %v; want the 2s DefaultSettle at 1s intervals: nothing tells when a mem:// object is complete", ft.slept)
	}
}

func TestWatchReturnsWhenItsContextEnds(t *testing.T) {
	s := openT(t, fileURL(t.TempDir()), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- s.Watch(ctx, &store.MemorySeenSet{}, &store.WatchOptions{Interval: time.Hour}, func(context.Context, store.Object) error { return nil })
	}()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Watch = %v; want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return within 10s of its context ending")
	}
}

func TestFingerprintIsSizeAndNanosecondMtime(t *testing.T) {
	mt := time.Unix(1596808800, 123456789)
	a := store.Fingerprint(store.Object{Size: 10, ModTime: mt})
	if a != "10-1596808800123456789" {
		t.Errorf("Fingerprint = %q", a)
	}
	if a == store.Fingerprint(store.Object{Size: 10, ModTime: mt.Add(time.Nanosecond)}) || a == store.Fingerprint(store.Object{Size: 11, ModTime: mt}) {
		t.Error("fingerprints of different size or mtime are equal")
	}
}

// blockingSeen is a SeenSet whose MarkSeen waits until release is closed.
type blockingSeen struct {
	store.MemorySeenSet
	release chan struct{}
}

func (b *blockingSeen) MarkSeen(ctx context.Context, key, fp, etag string) error {
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.MemorySeenSet.MarkSeen(ctx, key, fp, etag)
}

// Watch announces the next object without waiting for the seen-set to
// record the one before (the marks are written in the background), and
// returns only once every mark is written.
func TestWatchAnnouncesWithoutWaitingForMarksAndWritesThemAllBeforeReturning(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.csv", []byte("a\n"))
	writeFile(t, dir, "b.csv", []byte("b\n"))
	s := openT(t, fileURL(dir), nil)
	ctx, cancel := context.WithCancel(context.Background())
	seen := &blockingSeen{release: make(chan struct{})}
	var rec recorder
	rec.fail = func(o store.Object) error {
		if len(rec.objs) == 1 { // the second announcement, with the first mark still blocked
			cancel()
		}
		return nil
	}
	returned := make(chan error, 1)
	go func() { returned <- s.Watch(ctx, seen, newFakeTime().opts(), rec.emit) }()
	select {
	case err := <-returned:
		t.Fatalf("Watch returned (%v) before the blocked marks were written", err)
	case <-ctx.Done(): // both announced while the first mark waits
	case <-time.After(time.Minute):
		close(seen.release)
		t.Fatal("the second object was not announced while the first one's mark waited")
	}
	close(seen.release)
	if err := <-returned; err != nil {
		t.Fatal(err)
	}
	if got := rec.keys(); !slices.Equal(got, []string{"a.csv", "b.csv"}) {
		t.Fatalf("announced %q; want a.csv and b.csv", got)
	}
	for _, o := range rec.objs {
		if !isSeen(t, &seen.MemorySeenSet, o) {
			t.Errorf("%s not marked seen when Watch returned", o.Key)
		}
	}
}

// A touch of an announced file while its mark is still queued is no new
// version: the watcher compares the content with what it queued, not only
// with what the seen-set holds yet.
func TestATouchWhileTheMarkIsQueuedIsNotAnnouncedAgain(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.csv", []byte("a\n"))
	s := openT(t, fileURL(dir), nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := &blockingSeen{release: make(chan struct{})}
	var rec recorder
	rec.fail = func(o store.Object) error {
		later := time.Now().Add(time.Hour)
		if err := os.Chtimes(filepath.Join(dir, "a.csv"), later, later); err != nil {
			t.Error(err)
		}
		return nil
	}
	ft := newFakeTime()
	ft.onSleep = func(n int) {
		if n == 10 { // several scans after the touch, each past its settle window
			cancel()
		}
	}
	returned := make(chan error, 1)
	go func() { returned <- s.Watch(ctx, seen, ft.opts(), rec.emit) }()
	<-ctx.Done()
	close(seen.release)
	if err := <-returned; err != nil {
		t.Fatal(err)
	}
	if got := rec.keys(); !slices.Equal(got, []string{"a.csv"}) {
		t.Fatalf("announced %q; want a.csv once", got)
	}
}
