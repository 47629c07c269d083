package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// proc is one finished process: its wall time from start to exit, as this
// harness saw it, and its peak resident set from wait4's rusage.
type proc struct {
	wall   time.Duration
	maxRSS int64 // bytes; Linux reports ru_maxrss in KiB
	stdout string
	stderr string
}

// run starts name with args, env (nil: this process's) and working
// directory dir ("" for the current one), waits for it and fails naming
// the command and the tail of its output when it exits non-zero.
func run(ctx context.Context, env []string, dir, name string, args ...string) (proc, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env, cmd.Dir = env, dir
	var out, errb tailBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	p := proc{wall: time.Since(start), stdout: out.String(), stderr: errb.String()}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			p.maxRSS = ru.Maxrss * 1024
		}
	}
	if err != nil {
		return p, fmt.Errorf("%s %s: %w\nstderr (tail):\n%s\nstdout (tail):\n%s", name, strings.Join(args, " "), err, indentTail(p.stderr), indentTail(p.stdout))
	}
	return p, nil
}

// tailBuffer keeps the first and last 32 KiB of what is written to it, so
// a chatty process cannot fill memory and its final words are kept.
type tailBuffer struct {
	head, tail bytes.Buffer
	cut        int64
}

const tailMax = 32 << 10

func (t *tailBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if room := tailMax - t.head.Len(); room > 0 {
		k := min(room, len(p))
		t.head.Write(p[:k])
		p = p[k:]
	}
	if len(p) == 0 {
		return n, nil
	}
	t.tail.Write(p)
	if over := t.tail.Len() - tailMax; over > 0 {
		b := t.tail.Bytes()[over:]
		t.cut += int64(over)
		nb := make([]byte, len(b), tailMax*2)
		copy(nb, b)
		t.tail = *bytes.NewBuffer(nb)
	}
	return n, nil
}

func (t *tailBuffer) String() string {
	if t.cut > 0 {
		return t.head.String() + fmt.Sprintf("\n[... %d bytes omitted ...]\n", t.cut) + t.tail.String()
	}
	return t.head.String() + t.tail.String()
}

func indentTail(s string) string {
	s = strings.TrimRight(s, "\n")
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	if s == "" {
		return "  (empty)"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// baseEnv is this process's environment without SLUICE_* variables, so a
// developer's own overrides never leak into a measured run.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") {
			env = append(env, kv)
		}
	}
	return env
}
