//go:build !linux

package curate

import "errors"

// errSyncUnsupported matches the error some systems return for a directory
// fsync; it is ignored.
var errSyncUnsupported = errors.ErrUnsupported

func exchange(a, b string) error { return errExchangeUnsupported }
