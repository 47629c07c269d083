//go:build unix

package cli

import "syscall"

// ownerOnly sets the umask to 077, as PostgreSQL does: whatever sluice
// creates — the data dir, the warehouse and state databases, the embedded
// queue's files, job logs, landed objects — is its owner's alone, whatever
// umask the shell had. A file:// store shared on purpose gets a default
// ACL on its directory (setfacl -d -m g:NAME:rX DIR), which new files and
// folders follow instead of the umask.
func ownerOnly() { syscall.Umask(0o077) }
