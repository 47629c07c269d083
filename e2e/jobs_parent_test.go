package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/job"
)

const commandSpec = `name: cmd
queue: "embedded?ack_wait=5s"
jobs:
  slow:
    on: {prefix: in/, suffix: .txt}
    settle: 500ms
    command: ["sh", "-c", "if [ -e \"$SLUICE_GROUP_MARKER\" ]; then sleep 60; fi; echo group=$SLUICE_GROUP inputs=$SLUICE_INPUTS"]
`

func TestAParentKilledDuringARunLeavesNoComputeAndTheRunIsMarkedFailedAtRestart(t *testing.T) {
	dataDir := t.TempDir()
	marker := filepath.Join(t.TempDir(), "slow")
	os.WriteFile(marker, nil, 0o644)
	d := startRun(t, dataDir, commandSpec, "SLUICE_GROUP_MARKER="+marker)
	put(t, dataDir, writeFile(t, "hello"), "in/g1/a.txt")
	// Wait until the run is RUNNING with a live process.
	deadline := time.Now().Add(60 * time.Second)
	var r job.Run
	for {
		if rs := runs(t, dataDir); len(rs) == 1 && rs[0].State == job.Running && rs[0].PID > 0 {
			r = rs[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no RUNNING run after 60s: %+v\n%s", runs(t, dataDir), d.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if p := jobProcesses(t, dataDir); len(p) != 1 || p[0] != r.PID {
		t.Fatalf("job processes = %v, want the run's pid %d", p, r.PID)
	}
	d.cmd.Process.Signal(syscall.SIGKILL)
	d.cmd.Wait()
	// The job, and everything it started, dies with its parent.
	deadline = time.Now().Add(10 * time.Second)
	for len(jobProcesses(t, dataDir)) > 0 || len(runProcesses(t, r.ID)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("processes of run %s outlived its killed parent: %v", r.ID, runProcesses(t, r.ID))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if rs := runs(t, dataDir); rs[0].State != job.Running || !rs[0].Terminated.IsZero() {
		t.Fatalf("before restart the record still says what the dead parent left: %+v", rs[0])
	}

	// At the next start the run is marked FAILED and terminated.
	os.Remove(marker)
	d = startRun(t, dataDir, commandSpec, "SLUICE_GROUP_MARKER="+marker)
	deadline = time.Now().Add(30 * time.Second)
	for {
		rs := runs(t, dataDir)
		if rs[0].State == job.Failed && !rs[0].Terminated.IsZero() {
			if !strings.HasPrefix(rs[0].Error, "worker lost: ") || !strings.Contains(rs[0].Error, "stopped heartbeating while the run was RUNNING") {
				t.Errorf("recovered run's error = %q, want it to say the worker was lost", rs[0].Error)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("run not marked FAILED after restart: %+v\n%s", rs[0], d.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Nothing of the run is left: neither the child nor what it started.
	if p := runProcesses(t, r.ID); len(p) != 0 {
		t.Fatalf("processes of run %s remain after recovery: %v", r.ID, p)
	}
	// Recovery requested the group again: it runs to SUCCEEDED with no new event.
	rs := waitRuns(t, d, 2)
	last := rs[len(rs)-1]
	if last.State != job.Succeeded || len(last.Inputs) != 1 || last.Inputs[0].Key != "in/g1/a.txt" {
		t.Fatalf("rerun after recovery: %+v\n%s", last, d.logTail())
	}
	// A hidden file (a segment starting with "_") is no input: its event
	// finds the inputs unchanged, so no run starts.
	put(t, dataDir, writeFile(t, "scratch"), "in/g1/_scratch.txt")
	time.Sleep(4 * time.Second)
	if rs := runs(t, dataDir); len(rs) != 2 {
		t.Fatalf("a hidden file started a run: %+v", rs[len(rs)-1])
	}
	// And a new event for the group runs it once more, with both inputs.
	put(t, dataDir, writeFile(t, "again"), "in/g1/b.txt")
	rs = waitRuns(t, d, 3)
	last = rs[len(rs)-1]
	if last.State != job.Succeeded || len(last.Inputs) != 2 {
		t.Fatalf("run after a new event: %+v\n%s", last, d.logTail())
	}
	detail := mustRun(t, nil, "jobs", "--data-dir="+dataDir, last.ID)
	if !strings.Contains(detail.stdout, "group=g1 inputs=") || !strings.Contains(detail.stdout, "in/g1/b.txt") {
		t.Errorf("command job's log lacks its environment:\n%s", detail.stdout)
	}
}

// runProcesses lists live processes whose environment marks them as part of run id.
func runProcesses(t *testing.T, id string) []string {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !strings.Contains("\x00"+string(env)+"\x00", "\x00SLUICE_RUN_ID="+id+"\x00") {
			continue
		}
		stat, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if strings.Contains(string(stat), ") Z ") {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		out = append(out, e.Name()+":"+strings.ReplaceAll(string(cmd), "\x00", " "))
	}
	return out
}

func TestValidateRejectsJobsWhoseOutputWouldRetriggerThem(t *testing.T) {
	dir := t.TempDir()
	self := filepath.Join(dir, "self.yaml")
	os.WriteFile(self, []byte(`name: self
jobs:
  loop:
    on: {prefix: data/}
    curate:
      input: "data/{{.Group}}/"
      columns: {a: string}
      output: "data/{{.Group}}-curated/"
`), 0o644)
	r := sluice(t, nil, "validate", "-f", self)
	if r.code == 0 || !strings.Contains(r.stdout, "self.yaml:8:") || !strings.Contains(r.stdout, "own trigger") {
		t.Errorf("self-trigger through a template not rejected at its output line:\n%s%s", r.stdout, r.stderr)
	}
	cycle := filepath.Join(dir, "cycle.yaml")
	os.WriteFile(cycle, []byte(`name: cycle
jobs:
  a:
    on: {prefix: x/}
    curate:
      input: "x/{{.Group}}/"
      columns: {a: string}
      output: "y/{{.Group}}/"
  b:
    on: {prefix: y/}
    curate:
      input: "y/{{.Group}}/"
      columns: {a: string}
      output: "x/{{.Group}}/"
`), 0o644)
	r = sluice(t, nil, "validate", "-f", cycle)
	if r.code == 0 || !strings.Contains(r.stdout, "cycle") || !strings.Contains(r.stdout, "a → b → a") {
		t.Errorf("two-rule cycle not rejected:\n%s%s", r.stdout, r.stderr)
	}
	mustRun(t, nil, "validate", "-f", "../examples/hydropower/pipeline.yaml")
}
