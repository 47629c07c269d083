//go:build linux

package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/storetest"
)

// These are ScanOnce's (`run --once`) and the polling watcher's answers to
// the lease probe, with the default, automatic settle window.

func TestScanOnceAnnouncesACompleteFileAtOnce(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "in/done.csv", []byte("a\n1\n"))
	s := openT(t, fileURL(dir), nil)
	ft := newFakeTime() // behind the file's time: a window counted from its mtime would be waited in full
	var rec recorder
	n, err := emitted(s.ScanOnce(context.Background(), &store.MemorySeenSet{}, ft.autoOpts(), rec.emit))
	if n != 1 || err != nil || ft.sleeps != 0 {
		t.Errorf("ScanOnce = %d, %v after sleeping %v; want the closed file announced without waiting", n, err, ft.slept)
	}
}

func TestScanOnceWaitsForAWriterToCloseItsFileLookingAgainSoon(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, fileURL(dir), nil)
	f, err := os.OpenFile(filepath.Join(dir, "slow.csv"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("id\n1\n"); err != nil {
		t.Fatal(err)
	}
	ft := newFakeTime()
	ft.onSleep = func(n int) {
		if n != 3 {
			return
		}
		if _, err := f.WriteString("2\n"); err != nil {
			t.Error(err)
		}
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	}
	var rec recorder
	n, err := emitted(s.ScanOnce(context.Background(), &store.MemorySeenSet{}, ft.autoOpts(), rec.emit))
	want := []byte("id\n1\n2\n")
	if n != 1 || err != nil || rec.objs[0].ETag != storetest.MD5Hex(want) {
		t.Fatalf("ScanOnce = %d, %v, %+v; want the whole file (ETag %s)", n, err, rec.objs, storetest.MD5Hex(want))
	}
	// Open at the first three looks (the wait doubling from 5ms), closed
	// at the fourth.
	if got := fmt.Sprint(ft.slept); got != "[5ms 10ms 20ms]" {
		t.Errorf("ScanOnce slept %s; want [5ms 10ms 20ms]", got)
	}
}

func TestAnExplicitSettleWindowHoldsBackAClosedFileInScanOnce(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "done.csv", []byte("a\n"))
	s := openT(t, fileURL(dir), nil)
	ft := newFakeTime()
	var rec recorder
	if n, err := emitted(s.ScanOnce(context.Background(), &store.MemorySeenSet{}, ft.opts(), rec.emit)); n != 1 || err != nil {
		t.Fatalf("ScanOnce = %d, %v", n, err)
	}
	if got := fmt.Sprint(ft.slept); got != "[1s 1s]" {
		t.Errorf("ScanOnce slept %s; want the 2s window at 1s intervals although the file was complete", got)
	}
}
