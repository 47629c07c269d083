//go:build !unix

package natsqueue

import (
	"fmt"
	"os"
)

// lockDir only creates dir on systems without flock: there, keeping one
// server per store is up to the caller.
func lockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create store dir %s: %w", dir, err)
	}
	return nil, nil
}

// freeBytes cannot read free space on systems without statfs; the recovery
// monitor then retries JetStream without waiting for space.
func freeBytes(dir string) (free uint64, ok bool) { return 0, false }
