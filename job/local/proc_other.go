//go:build !unix

package local

import (
	"context"
	"errors"
	"syscall"
	"time"
)

var errNoGroups = errors.New("the local job runner needs process groups (Linux or another Unix)")

func groupAttr() *syscall.SysProcAttr { return nil }

func childAttr() *syscall.SysProcAttr { return nil }

func killGroup(pgid int) {}

func waitGroupGone(pgid int, timeout time.Duration) error { return errNoGroups }

func reapRun(ctx context.Context, id string, timeout time.Duration) error { return nil }

func supported() error { return errNoGroups }

func killGroupOnSignal() (stop func()) { return func() {} }

func setNice(pgid, n int) error { return errNoGroups }
