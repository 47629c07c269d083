//go:build unix

package local

import (
	"os"
	"os/signal"
	"syscall"
)

// killGroupOnSignal makes SIGTERM or SIGINT kill this process's whole
// process group with SIGKILL (itself and every descendant that stayed in
// the group) when this process leads its group, as the runner's Setpgid
// guarantees. The parent-death signal is SIGTERM, so a runner that dies
// takes the job's grandchildren with it, not only the child. A process
// that does not lead its group (`sluice job exec` run by hand) keeps the
// signals' usual handling. The returned func stops the handling.
func killGroupOnSignal() (stop func()) {
	pgid := os.Getpid()
	if syscall.Getpgrp() != pgid {
		return func() {}
	}
	sigs := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		select {
		case <-sigs:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

// setNice sets the niceness of process group pgid's processes (a job
// process that has just started leads its own group) to n.
func setNice(pgid, n int) error {
	return syscall.Setpriority(syscall.PRIO_PGRP, pgid, n)
}
