//go:build linux

package curate

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// errSyncUnsupported: Linux supports fsync on directories.
var errSyncUnsupported = errors.New("directory sync unsupported")

// exchange swaps a and b atomically with renameat2(RENAME_EXCHANGE).
func exchange(a, b string) error {
	err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP):
		return fmt.Errorf("%w: %v", errExchangeUnsupported, err)
	}
	return fmt.Errorf("renameat2 exchange %s and %s: %w", a, b, err)
}
