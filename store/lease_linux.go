//go:build linux

package store

import (
	"os"

	"golang.org/x/sys/unix"
)

// writerOpen reports whether some open file description may still write to
// f's file, and known, whether Linux could tell. It asks for a read lease on
// f (opened read-only): the kernel grants it only while no process, this one
// included, holds the file open for writing, and refuses with EAGAIN
// otherwise. A granted lease is released at once. Where leases are
// unavailable — EACCES or EPERM when the file belongs to another user and
// the process lacks CAP_LEASE, EINVAL on file systems without leases (NFS,
// FUSE, ...) or with fs.leases-enable off — known is false, and the settle
// window decides (see "Watching" in the package doc).
func writerOpen(f *os.File) (open, known bool) {
	_, err := unix.FcntlInt(f.Fd(), unix.F_SETLEASE, unix.F_RDLCK)
	switch err {
	case nil:
		_, _ = unix.FcntlInt(f.Fd(), unix.F_SETLEASE, unix.F_UNLCK)
		return false, true
	case unix.EAGAIN, unix.EBUSY:
		return true, true
	}
	return false, false
}
