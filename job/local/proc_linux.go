package local

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// groupAttr puts the child in its own process group and sends it SIGTERM
// if the parent dies; the child (Exec) then kills its whole group with
// SIGKILL, so its descendants die too (killGroupOnSignal).
func groupAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

// childAttr makes a command die with the job process that started it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

func killGroup(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }

// proc is one /proc entry.
type proc struct {
	pid, pgrp int
	state     byte
}

// procs lists live (non-zombie) processes.
func procs() ([]proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// "pid (comm) state ppid pgrp ..."; comm may hold spaces and parens.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data[i+1:]))
		if len(f) < 3 {
			continue
		}
		pgrp, err := strconv.Atoi(f[2])
		if err != nil || f[0] == "Z" || f[0] == "X" {
			continue
		}
		out = append(out, proc{pid: pid, pgrp: pgrp, state: f[0][0]})
	}
	return out, nil
}

// waitGroupGone kills what is left of group pgid until no live process
// remains in it, or fails after timeout.
func waitGroupGone(pgid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ps, err := procs()
		if err != nil {
			return fmt.Errorf("check process group %d: %w", pgid, err)
		}
		var left []int
		for _, p := range ps {
			if p.pgrp == pgid {
				left = append(left, p.pid)
			}
		}
		if len(left) == 0 {
			return nil
		}
		killGroup(pgid)
		if time.Now().After(deadline) {
			return fmt.Errorf("process group %d still has processes %v %s after SIGKILL", pgid, left, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// reapRun kills every live process whose environment has SLUICE_RUN_ID=id.
func reapRun(ctx context.Context, id string, timeout time.Duration) error {
	marker := []byte("SLUICE_RUN_ID=" + id)
	deadline := time.Now().Add(timeout)
	for {
		ps, err := procs()
		if err != nil {
			return fmt.Errorf("reap run %s: %w", id, err)
		}
		var left []int
		for _, p := range ps {
			if p.pid == os.Getpid() {
				continue
			}
			env, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/environ")
			if err != nil {
				continue // not ours to read, or gone
			}
			for _, kv := range bytes.Split(env, []byte{0}) {
				if bytes.Equal(kv, marker) {
					left = append(left, p.pid)
					_ = syscall.Kill(p.pid, syscall.SIGKILL)
					break
				}
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("reap run %s: processes %v still alive %s after SIGKILL", id, left, timeout)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("reap run %s: %w", id, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// supported reports whether this system can run local jobs.
func supported() error { return nil }
