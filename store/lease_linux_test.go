//go:build linux

package store

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestTheLeaseProbeTellsAWriterFromNoneAndFromCannotTell(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	w, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	r, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if open, known := writerOpen(r); !open || !known {
		t.Errorf("while this process holds the file open for writing: writerOpen = %t, %t; want open, known", open, known)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if open, known := writerOpen(r); open || !known {
		t.Errorf("after the writer closed it: writerOpen = %t, %t; want not open, known", open, known)
	}
	// The lease was released: a writer opens the file at once (with
	// O_NONBLOCK, opening a file under a lease fails with EWOULDBLOCK
	// instead of waiting for the lease to be broken), and is seen.
	w2, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatalf("opening the file for writing after the probe: %v; want the lease released", err)
	}
	defer w2.Close()
	if open, known := writerOpen(r); !open || !known {
		t.Errorf("with a second writer: writerOpen = %t, %t; want open, known", open, known)
	}
	// Leases exist for regular files only: the kernel answers EINVAL for a
	// pipe, as it does on file systems without leases.
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if open, known := writerOpen(pr); open || known {
		t.Errorf("for a pipe: writerOpen = %t, %t; want not known", open, known)
	}
}
