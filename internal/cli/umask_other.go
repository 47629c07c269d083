//go:build !unix

package cli

// ownerOnly does nothing where there is no umask.
func ownerOnly() {}
