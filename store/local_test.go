package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/storetest"
)

func TestAFileReplacedWithTheSameSizeAndMtimeIsAnnouncedAgain(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, fileURL(dir), nil)
	p := filepath.Join(dir, "in", "ids.csv")
	first := []byte("id\n1\n2\n")
	writeFile(t, dir, "in/ids.csv", first)
	mtime := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	seen := &store.MemorySeenSet{}
	var rec recorder
	if n, err := emitted(s.ScanOnce(ctx, seen, newFakeTime().opts(), rec.emit)); n != 1 || err != nil {
		t.Fatalf("first ScanOnce = %d, %v; want the file announced", n, err)
	}
	// cp -p: different bytes of the same length, the old mtime restored.
	second := []byte("id\n3\n4\n")
	if err := os.WriteFile(p, second, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	n, err := emitted(s.ScanOnce(ctx, seen, newFakeTime().opts(), rec.emit))
	if n != 1 || err != nil || len(rec.objs) != 2 {
		t.Fatalf("ScanOnce after a same-size same-mtime replacement = %d, %v (%d announced in all); want the new version announced", n, err, len(rec.objs))
	}
	if got := rec.objs[1].ETag; got != storetest.MD5Hex(second) {
		t.Errorf("second announcement has ETag %s; want the new content's %s", got, storetest.MD5Hex(second))
	}
}

func TestAFileStillOpenForWritingIsNotAnnounced(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, fileURL(dir), nil)
	p := filepath.Join(dir, "slow.csv")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("id\n1\n"); err != nil { // the first half
		t.Fatal(err)
	}
	ft := newFakeTime()
	const pauseUntil = 6 // sleeps: three times the 2s Settle at 1s intervals
	ft.onSleep = func(n int) {
		if n != pauseUntil {
			return
		}
		if _, err := f.WriteString("2\n3\n"); err != nil {
			t.Error(err)
		}
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	}
	var rec recorder
	n, err := emitted(s.ScanOnce(ctx, &store.MemorySeenSet{}, ft.opts(), rec.emit))
	if err != nil {
		t.Fatal(err)
	}
	want := []byte("id\n1\n2\n3\n")
	if n != 1 || len(rec.objs) != 1 || rec.objs[0].ETag != storetest.MD5Hex(want) {
		t.Fatalf("ScanOnce announced %d object(s) %+v; want exactly one, the complete file (ETag %s)", n, rec.objs, storetest.MD5Hex(want))
	}
	if ft.sleeps < pauseUntil+2 {
		t.Errorf("announced after %d intervals; the writer held the file until %d and it must then settle for 2", ft.sleeps, pauseUntil)
	}
}

func TestTheSweeperDeletesOnlySluicesOwnTemporaryFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	user := filepath.Join(dir, "exports", "export.0123456789abcdef.tmp")
	own := filepath.Join(dir, "exports", ".sluice\\0123456789abcdef.tmp")
	writeFile(t, dir, "exports/export.0123456789abcdef.tmp", []byte("user data"))
	if err := os.WriteFile(own, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	old := now.Add(-store.StaleTempAge - time.Minute)
	for _, p := range []string{user, own} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	s := openT(t, fileURL(dir), &store.Options{Clock: func() time.Time { return now }})
	if err := s.SweepTemp(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(user); err != nil {
		t.Fatalf("the sweeper deleted a user's file: %v", err)
	}
	if _, err := os.Stat(own); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a stale temporary file of sluice's survived SweepTemp: %v", err)
	}
	objs, err := s.List(ctx, "exports/")
	if err != nil || len(objs) != 1 || objs[0].Key != "exports/export.0123456789abcdef.tmp" {
		t.Errorf("List = %+v, %v; want the user's file as an object", objs, err)
	}
}

func TestASymlinkToAFileOutsideTheStoreIsNotRead(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret.csv")
	if err := os.WriteFile(outside, []byte("password\nhunter2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link.csv")); err != nil {
		t.Fatal(err)
	}
	s := openT(t, fileURL(dir), nil)
	if _, _, err := s.ReadAll(ctx, "link.csv"); err == nil || !strings.Contains(err.Error(), "link.csv") {
		t.Errorf("ReadAll through a symlink leaving the store = %v; want an error naming link.csv", err)
	}
	if _, err := s.Stat(ctx, "link.csv"); err == nil {
		t.Error("Stat through a symlink leaving the store succeeded")
	}
	var rec recorder
	ft := newFakeTime()
	if n, _ := emitted(s.ScanOnce(ctx, &store.MemorySeenSet{}, ft.opts(), rec.emit)); n != 0 || len(rec.objs) != 0 {
		t.Errorf("the watcher announced %+v through a symlink leaving the store", rec.objs)
	}
}

func TestAWriteThroughASymlinkedDirectoryOutsideTheStoreFails(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	s := openT(t, fileURL(dir), nil)
	_, err := s.Put(ctx, "out/x.csv", []byte("a\n"), "text/csv")
	if err == nil || !strings.Contains(err.Error(), "out/x.csv") {
		t.Errorf("Put through a symlinked directory outside the store = %v; want an error naming out/x.csv", err)
	}
	ents, _ := os.ReadDir(outside)
	if len(ents) != 0 {
		t.Errorf("Put wrote %d file(s) outside the store: %v", len(ents), ents)
	}
}

func TestATouchedFileWithTheSameContentIsNotAnnouncedAgain(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, fileURL(dir), nil)
	p := filepath.Join(dir, "t.csv")
	writeFile(t, dir, "t.csv", []byte("id\n1\n"))
	seen := &store.MemorySeenSet{}
	var rec recorder
	if n, err := emitted(s.ScanOnce(ctx, seen, newFakeTime().opts(), rec.emit)); n != 1 || err != nil {
		t.Fatalf("first ScanOnce = %d, %v", n, err)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := emitted(s.ScanOnce(ctx, seen, newFakeTime().opts(), rec.emit)); n != 0 || err != nil {
		t.Errorf("ScanOnce after touch and chmod = %d, %v; want nothing announced (same content)", n, err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	fp, etag, _, _ := seen.Seen(ctx, "t.csv")
	if o, _ := s.Stat(ctx, "t.csv"); fp != store.Fingerprint(o) || etag != storetest.MD5Hex([]byte("id\n1\n")) || !o.ModTime.Equal(fi.ModTime()) {
		t.Errorf("seen holds %q %q; want the new identity %q and the unchanged ETag", fp, etag, store.Fingerprint(o))
	}
}

func TestAFileMarkedSeenByAnOlderVersionIsNotAnnouncedAgain(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openT(t, fileURL(dir), nil)
	writeFile(t, dir, "old.csv", []byte("id\n1\n"))
	fi, err := os.Stat(filepath.Join(dir, "old.csv"))
	if err != nil {
		t.Fatal(err)
	}
	// What an older sluice stored: "SIZE-MTIMENS" and no ETag.
	seen := &store.MemorySeenSet{}
	if err := seen.MarkSeen(ctx, "old.csv", fmt.Sprintf("%d-%d", fi.Size(), fi.ModTime().UnixNano()), ""); err != nil {
		t.Fatal(err)
	}
	var rec recorder
	if n, err := emitted(s.ScanOnce(ctx, seen, newFakeTime().opts(), rec.emit)); n != 0 || err != nil {
		t.Errorf("ScanOnce = %d, %v; want a file an older sluice announced not announced again", n, err)
	}
	if _, etag, _, _ := seen.Seen(ctx, "old.csv"); etag != storetest.MD5Hex([]byte("id\n1\n")) {
		t.Errorf("seen ETag = %q; want it upgraded to the content's MD5", etag)
	}
}

func TestASymlinkInsideTheStoreIsFollowed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeFile(t, dir, "real/a.csv", []byte("id\n1\n"))
	if err := os.Symlink(filepath.Join("real", "a.csv"), filepath.Join(dir, "alias.csv")); err != nil {
		t.Fatal(err)
	}
	s := openT(t, fileURL(dir), nil)
	got, o, err := s.ReadAll(ctx, "alias.csv")
	if err != nil || string(got) != "id\n1\n" || o.ETag != storetest.MD5Hex(got) {
		t.Errorf("ReadAll(alias.csv) = %q, %+v, %v; want the linked file", got, o, err)
	}
	if _, err := s.Put(ctx, "real/b.csv", []byte("x"), ""); err != nil {
		t.Errorf("Put into a plain directory: %v", err)
	}
	objs, err := s.List(ctx, "")
	if err != nil || len(objs) != 3 {
		t.Errorf("List = %+v, %v; want alias.csv, real/a.csv and real/b.csv", objs, err)
	}
}

// TestAKeyPartLongerThanAFileNameIsRefusedClearly: a file:// store cannot
// hold a 300-byte folder or file name; the error says so and what to do,
// instead of "renameat .sluice<hex>.tmp …: file name too long".
func TestAKeyPartLongerThanAFileNameIsRefusedClearly(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, "file://"+dir, nil)
	key := "in/" + strings.Repeat("s", 300) + ".json"
	_, err := s.Write(t.Context(), key, strings.NewReader("{}"), "")
	if !errors.Is(err, store.ErrInvalidKey) || !strings.Contains(err.Error(), "at most 255 bytes per folder or file name") || strings.Contains(err.Error(), ".tmp") {
		t.Fatalf("Write(%d-byte segment) = %v", 300, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "in")); len(ents) != 0 {
		t.Errorf("left %d entries behind", len(ents))
	}
	if _, err := s.Write(t.Context(), "in/"+strings.Repeat("s", 250)+".json", strings.NewReader("{}"), ""); err != nil {
		t.Errorf("a 255-byte name: %v", err)
	}
}

// TestIgnoredFilesArePrintedSafely: a file dropped in the lake with ESC in
// its name is listed quoted, so it cannot rewrite the operator's terminal.
func TestIgnoredFilesArePrintedSafely(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "esc-\x1b[31mred.json"), []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openT(t, "file://"+dir, nil)
	ign, err := s.Ignored(t.Context(), "")
	if err != nil || len(ign) != 1 {
		t.Fatalf("Ignored = %v, %v", ign, err)
	}
	if p := ign[0].PrintablePath(); strings.ContainsRune(p, 0x1b) || !strings.Contains(p, `\x1b[31mred.json"`) {
		t.Errorf("PrintablePath = %q", p)
	}
	if p := (store.IgnoredFile{Path: "/lake/ok é.json"}).PrintablePath(); p != "/lake/ok é.json" {
		t.Errorf("a printable path is changed: %q", p)
	}
}
