//go:build unix && !linux

package local

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
)

func groupAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func childAttr() *syscall.SysProcAttr { return nil }

func killGroup(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }

// waitGroupGone kills group pgid until kill reports it gone (zombies
// count as alive here, so this may wait for their reaper).
func waitGroupGone(pgid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := syscall.Kill(-pgid, syscall.SIGKILL); errors.Is(err, syscall.ESRCH) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process group %d still alive %s after SIGKILL", pgid, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// reapRun cannot find a dead parent's processes without /proc.
func reapRun(ctx context.Context, id string, timeout time.Duration) error { return nil }

func supported() error { return nil }
