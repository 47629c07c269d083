//go:build linux

package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// writerOpen reports whether some open file description may still write to
// f's file. It asks Linux for a read lease on f (opened read-only): the
// kernel refuses with EAGAIN while any process, this one included, holds the
// file open for writing. The lease is released at once. Where leases are
// unavailable — EACCES or EPERM when the file belongs to another user and
// the process lacks CAP_LEASE, EINVAL on file systems without leases (NFS,
// FUSE, ...) — it reports false and the settle window alone decides.
func writerOpen(f *os.File) bool {
	_, err := unix.FcntlInt(f.Fd(), unix.F_SETLEASE, unix.F_RDLCK)
	if err == nil {
		_, _ = unix.FcntlInt(f.Fd(), unix.F_SETLEASE, unix.F_UNLCK)
		return false
	}
	return err == unix.EAGAIN || err == unix.EBUSY
}
