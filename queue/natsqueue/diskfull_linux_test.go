package natsqueue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/queue/driver"
)

// mountSmallDisk mounts an 8 MiB tmpfs on a temporary directory for the
// test and unmounts it when the test ends.
func mountSmallDisk(t *testing.T) string {
	t.Helper()
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=8m"); err != nil {
		t.Fatalf("mount an 8 MiB tmpfs on %s: %v (this test fills a disk and needs root, as in CI)", mnt, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
	})
	return mnt
}

// fillDisk writes path until the disk is full and returns how much it wrote.
func fillDisk(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		w, err := f.Write(buf)
		n += int64(w)
		if errors.Is(err, syscall.ENOSPC) {
			return n
		}
		if err != nil {
			t.Fatalf("fill %s: %v", path, err)
		}
	}
}

// waitFor polls cond every 10ms until it holds or patience runs out.
func waitFor(t *testing.T, patience time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, patience)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// onDisk reports whether every body is in the stream's block files.
func onDisk(storeDir, stream string, bodies ...string) bool {
	blks, _ := filepath.Glob(filepath.Join(storeDir, "jetstream", "$G", "streams", stream, "msgs", "*.blk"))
	var all []byte
	for _, p := range blks {
		b, _ := os.ReadFile(p)
		all = append(all, b...)
	}
	for _, body := range bodies {
		if !bytes.Contains(all, []byte(body)) {
			return false
		}
	}
	return true
}

func TestEmbeddedQueueRecoversByItselfAfterTheDiskWasFull(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mnt := mountSmallDisk(t)
	dir := filepath.Join(mnt, "queue")
	var logs syncBuffer
	e, err := StartEmbedded(ctx, dir, &EmbeddedOptions{
		Logger:        slog.New(slog.NewTextHandler(&logs, nil)),
		CheckInterval: 20 * time.Millisecond,
		MinFree:       1 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	nc, err := e.Connect()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	top, err := Open(ctx, nc, Options{Stream: "SLUICE_posts", Subject: "sluice.posts.events", StorageErr: e.StorageErr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = top.Close() })
	sub, err := top.Subscribe(ctx, "loader", driver.SubscriptionOptions{AckWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	before := []string{"before-0", "before-1", "before-2"}
	for _, b := range before {
		if err := top.Publish(ctx, []byte(b), nil); err != nil {
			t.Fatal(err)
		}
	}
	// The server writes published messages in the background; wait until
	// they are in the block file, as they would be long before a disk fills.
	waitFor(t, 10*time.Second, "published messages written to the block file", func() bool {
		return onDisk(dir, "SLUICE_posts", before...)
	})

	filler := filepath.Join(mnt, "filler")
	fillDisk(t, filler)

	// The server acks a publish before it writes it, so the first publishes
	// on the full disk may still succeed; the write error then fails the
	// stream and the following ones must name the full disk.
	var perr error
	start := time.Now()
	for i := 0; ; i++ {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		perr = top.Publish(pctx, []byte(fmt.Sprintf("during-%d", i)), nil)
		cancel()
		if errors.Is(perr, ErrDiskFull) {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("publishing on a full disk: after %v the last error is %v, want one wrapping ErrDiskFull", time.Since(start), perr)
		}
	}
	for _, want := range []string{dir, "is full", "free space"} {
		if !strings.Contains(perr.Error(), want) {
			t.Errorf("publish error on a full disk = %q, want it to mention %q", perr, want)
		}
	}
	// Once the fault is known, a publish with no deadline fails at once
	// instead of waiting for an answer that never comes.
	if err := top.Publish(context.Background(), []byte("no deadline"), nil); !errors.Is(err, ErrDiskFull) {
		t.Errorf("publish without a deadline during the fault = %v, want ErrDiskFull", err)
	}
	if !strings.Contains(logs.String(), "disk full") {
		t.Errorf("nothing logged the full disk; log:\n%s", logs.String())
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the storage fault cleared after space was freed", func() bool {
		return e.StorageErr() == nil
	})
	if !strings.Contains(logs.String(), "storage fault cleared") {
		t.Errorf("the recovery was not logged; log:\n%s", logs.String())
	}
	if err := top.Publish(ctx, []byte("after"), nil); err != nil {
		t.Fatalf("publish after space was freed: %v", err)
	}
	want := map[string]bool{"before-0": true, "before-1": true, "before-2": true, "after": true}
	for len(want) > 0 {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		m, err := sub.Receive(rctx)
		cancel()
		if err != nil {
			t.Fatalf("receive after recovery, still missing %v: %v", want, err)
		}
		delete(want, string(m.Body))
		if err := sub.Ack(ctx, m); err != nil {
			t.Fatalf("ack %s %q after recovery: %v", m.ID, m.Body, err)
		}
	}
	t.Logf("server and monitor log:\n%s", logs.String())
}
