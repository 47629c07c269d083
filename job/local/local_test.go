//go:build linux

package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/fault"

	"github.com/sluicehq/sluice/job"
)

// The test binary is also the job child: with SLUICE_TEST_CHILD set it
// acts as `sluice job exec TASK_FILE`, its behaviour chosen by the task.
func TestMain(m *testing.M) {
	if os.Getenv("SLUICE_TEST_CHILD") != "" {
		if len(os.Args) != 4 || os.Args[1] != "job" || os.Args[2] != "exec" {
			fmt.Fprintln(os.Stderr, "test child: want args job exec TASK_FILE, got", os.Args)
			os.Exit(2)
		}
		os.Exit(Exec(context.Background(), os.Args[3], childDo))
	}
	if spec := os.Getenv("SLUICE_TEST_PARENT"); spec != "" {
		os.Exit(parentMain(spec))
	}
	os.Exit(m.Run())
}

// parentSpec is what the test binary does as a job's parent (with
// SLUICE_TEST_PARENT set to it as JSON): run Task under a Runner whose
// child is the test binary again.
type parentSpec struct {
	Dir  string   `json:"dir"`
	Task job.Task `json:"task"`
}

// parentMain runs one task as `sluice run` would; the test kills it midway.
func parentMain(spec string) int {
	var s parentSpec
	if err := json.Unmarshal([]byte(spec), &s); err != nil {
		fmt.Fprintln(os.Stderr, "test parent:", err)
		return 2
	}
	bin, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "test parent:", err)
		return 2
	}
	r := &Runner{Binary: bin, Env: []string{"SLUICE_TEST_CHILD=1"}, Dir: s.Dir}
	out, err := r.Run(context.Background(), s.Task)
	fmt.Fprintf(os.Stderr, "test parent: run ended: %+v, %v\n", out, err)
	return 0
}

// childSpec is the test executor's instructions, carried in Task.Curate.
type childSpec struct {
	Mode    string `json:"mode"`
	PIDFile string `json:"pid_file,omitempty"`
}

func childDo(ctx context.Context, t job.Task) ([]string, error) {
	var s childSpec
	if err := json.Unmarshal(t.Curate, &s); err != nil {
		return nil, err
	}
	fmt.Println("child stdout for", t.Group)
	fmt.Fprintln(os.Stderr, "child stderr for", t.Group)
	switch s.Mode {
	case "ok":
		return []string{"curated/" + t.Group + "/part-00000.parquet", "curated/" + t.Group + "/_SUCCESS"}, nil
	case "fail":
		return nil, fault.Permanent(errors.New("data/d/a.csv line 3 column Year: abc is not an int32"))
	case "unavailable":
		return nil, errors.New("store s3://lake: connection refused") // unclassified: transient
	case "exit3":
		os.Exit(3)
	case "killed": // by the OOM killer or an operator, not by sluice
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Hour)
	case "noresult":
		os.Exit(0)
	case "spawn-and-hang", "spawn-and-leave":
		sleep := exec.Command("sleep", "30")
		if err := sleep.Start(); err != nil {
			return nil, err
		}
		// Written whole or not at all: tests act as soon as the file exists.
		tmp := s.PIDFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(strconv.Itoa(sleep.Process.Pid)), 0o644); err != nil {
			return nil, err
		}
		if err := os.Rename(tmp, s.PIDFile); err != nil {
			return nil, err
		}
		if s.Mode == "spawn-and-leave" {
			return []string{"left"}, nil
		}
		time.Sleep(time.Hour)
	case "big-log":
		chunk := bytes.Repeat([]byte("x"), 1023)
		for range 1500 {
			fmt.Printf("%s\n", chunk)
		}
		fmt.Println("the end")
		return nil, nil
	}
	return nil, fault.Permanent(fmt.Errorf("unknown mode %q", s.Mode))
}

func newRunner(t *testing.T) *Runner {
	t.Helper()
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return &Runner{Binary: bin, Env: []string{"SLUICE_TEST_CHILD=1"}, Dir: t.TempDir()}
}

var runSeq int

// runID returns a run id no other process on this machine uses: Reap
// kills every process that carries the id, also another test binary's.
func runID() string {
	runSeq++
	return fmt.Sprintf("run-%d-%d-%d", os.Getpid(), time.Now().UnixNano(), runSeq)
}

func task(t *testing.T, s childSpec) job.Task {
	t.Helper()
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	return job.Task{RunID: runID(), Rule: "hydropower", Group: "2020-08-07_2PM", Kind: "test", Curate: raw,
		Inputs: []job.Input{{Key: "data/2020-08-07_2PM/a.csv", ETag: "e1"}}}
}

// alive reports whether pid is a live (non-zombie) process.
func alive(t *testing.T, pid int) bool {
	t.Helper()
	ps, err := procs()
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(ps, func(p proc) bool { return p.pid == pid })
}

// ourChildren lists live processes whose parent is this test process.
func ourChildren(t *testing.T) []int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
		if len(f) > 2 && f[0] != "Z" && f[1] == strconv.Itoa(os.Getpid()) {
			pid, _ := strconv.Atoi(e.Name())
			out = append(out, pid)
		}
	}
	return out
}

func run(t *testing.T, r *Runner, ctx context.Context, tk job.Task) job.Outcome {
	t.Helper()
	out, err := r.Run(ctx, tk)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if kids := ourChildren(t); len(kids) != 0 {
		t.Fatalf("processes %v still run after Run returned", kids)
	}
	return out
}

func TestASucceedingChildReportsItsOutputsAndLog(t *testing.T) {
	r := newRunner(t)
	tk := task(t, childSpec{Mode: "ok"})
	out := run(t, r, t.Context(), tk)
	if out.ExitCode != 0 || out.Err != "" {
		t.Fatalf("outcome = %+v, want success", out)
	}
	if want := []string{"curated/2020-08-07_2PM/part-00000.parquet", "curated/2020-08-07_2PM/_SUCCESS"}; !slices.Equal(out.Outputs, want) {
		t.Errorf("outputs = %v, want %v", out.Outputs, want)
	}
	if !bytes.Contains(out.Log, []byte("child stdout for 2020-08-07_2PM")) || !bytes.Contains(out.Log, []byte("child stderr for 2020-08-07_2PM")) {
		t.Errorf("log = %q, want the child's stdout and stderr", out.Log)
	}
	if out.ComputeSeconds <= 0 || out.ComputeSeconds > 60 {
		t.Errorf("compute seconds = %v", out.ComputeSeconds)
	}
	var back job.Task
	data, err := os.ReadFile(filepath.Join(r.Dir, tk.RunID, TaskFile))
	if err != nil || json.Unmarshal(data, &back) != nil || back.RunID != tk.RunID || !slices.Equal(back.Inputs, tk.Inputs) {
		t.Errorf("task file = %s, %v", data, err)
	}
}

func TestAFailingChildReportsItsErrorAndExitCode(t *testing.T) {
	r := newRunner(t)
	for _, tc := range []struct {
		mode          string
		wantCode      int
		wantErr       string
		wantTransient bool
	}{
		{"fail", 1, "abc is not an int32", false},
		{"exit3", 3, "exit status 3", false},
		{"noresult", 1, "left no usable result.json", false},
		{"nonsense", 1, `unknown mode "nonsense"`, false},
		{"unavailable", fault.ExitTempFail, "connection refused", true},
		{"killed", -1, "signal: killed", true},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			out := run(t, r, t.Context(), task(t, childSpec{Mode: tc.mode}))
			if out.ExitCode != tc.wantCode || !strings.Contains(out.Err, tc.wantErr) || out.Transient != tc.wantTransient {
				t.Fatalf("outcome = %+v, want exit %d, transient %v and an error containing %q", out, tc.wantCode, tc.wantTransient, tc.wantErr)
			}
		})
	}
}

// TestACommandKilledByASignalIsRetried: a program killed by a signal
// sluice did not send (the OOM killer, an operator's kill -9) may well
// succeed next time; its run is retried, not dead-lettered at once.
func TestACommandKilledByASignalIsRetried(t *testing.T) {
	r := newRunner(t)
	tk := task(t, childSpec{})
	tk.Kind, tk.Command = job.KindCommand, []string{"sh", "-c", "kill -9 $$"}
	out := run(t, r, t.Context(), tk)
	if !out.Transient || !strings.Contains(out.Err, "signal: killed") {
		t.Fatalf("outcome = %+v, want a transient failure naming the signal", out)
	}
}

func TestTimeoutKillsTheWholeProcessGroup(t *testing.T) {
	r := newRunner(t)
	pidFile := filepath.Join(t.TempDir(), "grandchild.pid")
	tk := task(t, childSpec{Mode: "spawn-and-hang", PIDFile: pidFile})
	tk.Timeout = 3 * time.Second
	out := run(t, r, t.Context(), tk)
	if !strings.Contains(out.Err, "exceeded its timeout of 3s") || out.ExitCode == 0 {
		t.Fatalf("outcome = %+v, want a timeout kill", out)
	}
	assertGrandchildGone(t, pidFile)
}

func TestCancellationKillsTheWholeProcessGroup(t *testing.T) {
	r := newRunner(t)
	pidFile := filepath.Join(t.TempDir(), "grandchild.pid")
	ctx, cancel := context.WithCancel(t.Context())
	go func() { // cancel once the grandchild exists
		for ctx.Err() == nil {
			if _, err := os.Stat(pidFile); err == nil {
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	out := run(t, r, ctx, task(t, childSpec{Mode: "spawn-and-hang", PIDFile: pidFile}))
	cancel()
	if !strings.Contains(out.Err, "cancelled") {
		t.Fatalf("outcome = %+v, want a cancellation kill", out)
	}
	assertGrandchildGone(t, pidFile)
}

func TestWhatAChildLeavesBehindIsKilledWhenItExits(t *testing.T) {
	r := newRunner(t)
	pidFile := filepath.Join(t.TempDir(), "grandchild.pid")
	out := run(t, r, t.Context(), task(t, childSpec{Mode: "spawn-and-leave", PIDFile: pidFile}))
	if out.Err != "" || !slices.Equal(out.Outputs, []string{"left"}) {
		t.Fatalf("outcome = %+v", out)
	}
	assertGrandchildGone(t, pidFile)
}

func assertGrandchildGone(t *testing.T, pidFile string) {
	t.Helper()
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the child never started its grandchild: %v", err)
	}
	pid, err := strconv.Atoi(string(data))
	if err != nil {
		t.Fatal(err)
	}
	if alive(t, pid) {
		t.Fatalf("grandchild %d is still alive after Run returned", pid)
	}
}

func TestTheLogIsCappedToItsTail(t *testing.T) {
	r := newRunner(t)
	out := run(t, r, t.Context(), task(t, childSpec{Mode: "big-log"}))
	if out.Err != "" {
		t.Fatal(out.Err)
	}
	if len(out.Log) > LogCap+100 || !bytes.HasPrefix(out.Log, []byte("[... ")) || !bytes.HasSuffix(out.Log, []byte("the end\n")) {
		t.Fatalf("log of %d bytes starts %q and ends %q", len(out.Log), out.Log[:40], out.Log[len(out.Log)-20:])
	}
}

func TestAMissingBinaryIsAnErrorNotAnOutcome(t *testing.T) {
	r := newRunner(t)
	r.Binary = filepath.Join(t.TempDir(), "no-such-sluice")
	if _, err := r.Run(t.Context(), task(t, childSpec{Mode: "ok"})); err == nil || !strings.Contains(err.Error(), "no-such-sluice") {
		t.Fatalf("Run error = %v, want one naming the binary", err)
	}
}

func TestRunRejectsRunIDsThatAreNotDirectoryNames(t *testing.T) {
	r := newRunner(t)
	for _, id := range []string{"", "..", "a/b"} {
		if _, err := r.Run(t.Context(), job.Task{RunID: id}); err == nil {
			t.Errorf("Run accepted run id %q", id)
		}
	}
}

func TestCommandJobsGetTheGroupAndInputsAndReportOutputs(t *testing.T) {
	r := newRunner(t)
	tk := task(t, childSpec{})
	tk.Kind = job.KindCommand
	tk.StoreURL = "file:///lake"
	tk.Command = []string{"sh", "-c", `echo "group=$SLUICE_GROUP arg=$2 rule=$SLUICE_RULE run=$SLUICE_RUN_ID store=$SLUICE_STORE inputs=$SLUICE_INPUTS"; echo "curated/$2/out.txt" > "$SLUICE_OUTPUTS"`, "sh"}
	out := run(t, r, t.Context(), tk)
	if out.Err != "" || !slices.Equal(out.Outputs, []string{"curated/2020-08-07_2PM/out.txt"}) {
		t.Fatalf("outcome = %+v", out)
	}
	want := fmt.Sprintf(`group=2020-08-07_2PM arg=2020-08-07_2PM rule=hydropower run=%s store=file:///lake inputs=[{"key":"data/2020-08-07_2PM/a.csv","etag":"e1"}]`, tk.RunID)
	if !strings.Contains(string(out.Log), want) {
		t.Fatalf("log = %q, want it to contain %q", out.Log, want)
	}

	tk = task(t, childSpec{})
	tk.Kind, tk.Command = job.KindCommand, []string{"sh", "-c", "echo oops >&2; exit 7"}
	out = run(t, r, t.Context(), tk)
	if out.ExitCode != 1 || !strings.Contains(out.Err, "exit status 7") || !strings.Contains(string(out.Log), "oops") {
		t.Fatalf("failing command outcome = %+v", out)
	}
}

// TestAGroupCannotInjectOptionsIntoACommand: the group comes from an
// object's key, so anyone who can write under the job's prefix chooses it.
// A key data/--version/x.csv must not make `ls` print its version and
// succeed: the group goes after "--", where it is only ever an operand.
func TestAGroupCannotInjectOptionsIntoACommand(t *testing.T) {
	r := newRunner(t)
	tk := task(t, childSpec{})
	tk.Kind, tk.Command, tk.Group = job.KindCommand, []string{"ls"}, "--version"
	out := run(t, r, t.Context(), tk)
	if out.ExitCode == 0 || strings.Contains(string(out.Log), "coreutils") || !strings.Contains(string(out.Log), "--version") {
		t.Fatalf("ls with the group --version: exit %d, log %q; want ls to fail on a file named --version", out.ExitCode, out.Log)
	}
	tk = task(t, childSpec{})
	tk.Kind, tk.Group = job.KindCommand, "-rf x"
	tk.Command = []string{"sh", "-c", `printf '%s|' "$@"`, "sh", "a"}
	out = run(t, r, t.Context(), tk)
	if out.Err != "" || !strings.Contains(string(out.Log), "a|--|-rf x|") {
		t.Fatalf("argv: outcome %+v, log %q; want a|--|-rf x|", out, out.Log)
	}
}

// TestCommandJobsGetOnlyTheEnvironmentTheyAreGiven: a command job sees the
// variables every program needs, its run's SLUICE_* ones and those its spec
// names in pass_env — not the importer's token, nor sluice's own SLUICE_*
// settings (the console's admin token, a warehouse URL with its password),
// nor any other secret of sluice's.
func TestCommandJobsGetOnlyTheEnvironmentTheyAreGiven(t *testing.T) {
	t.Setenv("API_TOKEN", "s3cr3t-token")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-key")
	t.Setenv("PASSED_ON", "yes-passed")
	t.Setenv("SLUICE_ADMIN_TOKEN", "s3cr3t-admin")
	t.Setenv("SLUICE_WAREHOUSE", "postgres://u:s3cr3t-pw@db/w")
	t.Setenv("LC_TIME", "C")
	r := newRunner(t)
	tk := task(t, childSpec{})
	tk.Kind, tk.Command, tk.PassEnv = job.KindCommand, []string{"sh", "-c", "env", "sh"}, []string{"PASSED_ON", "NOT_SET_AT_ALL"}
	out := run(t, r, t.Context(), tk)
	log := string(out.Log)
	if out.Err != "" {
		t.Fatalf("outcome %+v", out)
	}
	for _, secret := range []string{"API_TOKEN", "s3cr3t", "AWS_SECRET_ACCESS_KEY", "NOT_SET_AT_ALL", "SLUICE_ADMIN_TOKEN", "SLUICE_WAREHOUSE"} {
		if strings.Contains(log, secret) {
			t.Errorf("the command's environment holds %s:\n%s", secret, log)
		}
	}
	for _, want := range []string{"PATH=", "HOME=", "LC_TIME=C", "PASSED_ON=yes-passed", "SLUICE_GROUP=2020-08-07_2PM", "SLUICE_RUN_ID=" + tk.RunID} {
		if !strings.Contains(log, want) {
			t.Errorf("the command's environment lacks %s:\n%s", want, log)
		}
	}
}

func TestExecWithoutAnExecutorFailsClearly(t *testing.T) {
	dir := t.TempDir()
	tf := filepath.Join(dir, TaskFile)
	if err := os.WriteFile(tf, []byte(`{"run_id":"r","kind":"curate"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := Exec(t.Context(), tf, nil); code != 1 {
		t.Fatalf("Exec = %d, want 1", code)
	}
	res, err := readResult(filepath.Join(dir, ResultFile))
	if err != nil || !strings.Contains(res.Error, `no executor for job kind "curate"`) {
		t.Fatalf("result = %+v, %v", res, err)
	}
	if err := os.WriteFile(tf, []byte(`not json`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := Exec(t.Context(), tf, nil); code != 1 {
		t.Fatalf("Exec of a bad task file = %d, want 1", code)
	}
	if res, _ := readResult(filepath.Join(dir, ResultFile)); !strings.Contains(res.Error, "is not a job task") {
		t.Fatalf("result = %+v", res)
	}
}

func TestReapKillsProcessesADeadParentLeft(t *testing.T) {
	r := newRunner(t)
	pidFile := filepath.Join(t.TempDir(), "grandchild.pid")
	tk := task(t, childSpec{Mode: "spawn-and-hang", PIDFile: pidFile})
	dir := filepath.Join(r.Dir, tk.RunID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(tk)
	if err := os.WriteFile(filepath.Join(dir, TaskFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	// An orphan as a dead parent leaves it: the child, its own group, our run id.
	orphan := exec.Command(r.Binary, "job", "exec", filepath.Join(dir, TaskFile))
	orphan.Env = append(os.Environ(), "SLUICE_TEST_CHILD=1", "SLUICE_RUN_ID="+tk.RunID)
	orphan.SysProcAttr = groupAttr()
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { orphan.Wait(); close(waited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(pidFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the orphan never started its grandchild")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := r.Reap(t.Context(), job.Run{ID: tk.RunID}); err != nil {
		t.Fatal(err)
	}
	<-waited
	assertGrandchildGone(t, pidFile)
	if err := r.Reap(t.Context(), job.Run{ID: runID()}); err != nil {
		t.Fatalf("Reap of a run without processes: %v", err)
	}
}

func TestAJobAndEverythingItStartedDieWhenItsParentIsKilled(t *testing.T) {
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "grandchild.pid")
	tk := task(t, childSpec{Mode: "spawn-and-hang", PIDFile: pidFile})
	tk.RunID = "parent-death-" + runID()
	spec, err := json.Marshal(parentSpec{Dir: t.TempDir(), Task: tk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = reapRun(context.Background(), tk.RunID, 10*time.Second) }) // whatever a failure leaves
	parent := exec.Command(bin)
	parent.Env = append(os.Environ(), "SLUICE_TEST_PARENT="+string(spec))
	var stderr bytes.Buffer
	parent.Stderr = &stderr
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { parent.Wait(); close(waited) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(pidFile); err == nil {
			break
		}
		if time.Now().After(deadline) {
			parent.Process.Kill()
			<-waited
			t.Fatalf("the job never started its grandchild; parent's stderr:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if p := runProcesses(t, tk.RunID); len(p) != 2 {
		t.Fatalf("processes of run %s before the kill = %v, want the child and its sleep", tk.RunID, p)
	}
	if err := parent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-waited
	deadline = time.Now().Add(5 * time.Second)
	for {
		p := runProcesses(t, tk.RunID)
		if len(p) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes of run %s outlived its killed parent by 5s: %v", tk.RunID, p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runProcesses lists live (non-zombie) processes whose environment has
// SLUICE_RUN_ID=id, as "pid:cmdline".
func runProcesses(t *testing.T, id string) []string {
	t.Helper()
	ps, err := procs()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range ps {
		dir := "/proc/" + strconv.Itoa(p.pid)
		env, err := os.ReadFile(dir + "/environ")
		if err != nil || !slices.Contains(strings.Split(string(env), "\x00"), "SLUICE_RUN_ID="+id) {
			continue
		}
		cmd, _ := os.ReadFile(dir + "/cmdline")
		out = append(out, strconv.Itoa(p.pid)+":"+strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " "))
	}
	return out
}

func TestExecWithoutATaskFileReadsTheTaskFromTheEnvironment(t *testing.T) {
	result := filepath.Join(t.TempDir(), "termination-log")
	task, _ := json.Marshal(job.Task{RunID: "r1", Rule: "hydro", Group: "g", Kind: job.KindCurate})
	t.Setenv(job.EnvTask, string(task))
	t.Setenv(job.EnvResultFile, result)
	var got job.Task
	code := Exec(t.Context(), "", func(ctx context.Context, tk job.Task) ([]string, error) {
		got = tk
		return []string{"out/g/part-0.parquet", "out/g/_SUCCESS"}, nil
	})
	data, err := os.ReadFile(result)
	if code != 0 || err != nil || got.RunID != "r1" || got.Group != "g" ||
		string(data) != `{"outputs":["out/g/part-0.parquet","out/g/_SUCCESS"]}` {
		t.Fatalf("Exec = %d, task %+v, result %q, %v", code, got, data, err)
	}
	os.Unsetenv(job.EnvTask)
	code = Exec(t.Context(), "", func(ctx context.Context, tk job.Task) ([]string, error) { return nil, nil })
	data, _ = os.ReadFile(result)
	if code != 1 || !strings.Contains(string(data), "no task: give a task file, or the task's JSON in $SLUICE_TASK") {
		t.Fatalf("Exec without a task = %d, result %q", code, data)
	}
}

// Job processes, and what they start, run at the runner's niceness
// (DefaultNice unless set), below the pipeline's process; a negative Nice
// leaves them at the parent's.
func TestJobProcessesRunAtTheRunnersNiceness(t *testing.T) {
	own, err := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	if err != nil {
		t.Fatal(err)
	}
	ownNice := 20 - own // Linux's getpriority returns 20 - nice
	if ownNice >= DefaultNice {
		t.Fatalf("the test runs at nice %d already; it needs to run below %d", ownNice, DefaultNice)
	}
	for _, c := range []struct{ nice, want int }{{0, DefaultNice}, {15, 15}, {-1, ownNice}} {
		r := newRunner(t)
		r.Nice = c.nice
		tk := task(t, childSpec{})
		// Field 19 of /proc/PID/stat is the niceness; the shell is a
		// process the job process started.
		tk.Kind, tk.Command = job.KindCommand, []string{"sh", "-c", `echo "nice=$(cut -d' ' -f19 /proc/$$/stat)"`, "sh"}
		out := run(t, r, t.Context(), tk)
		if want := fmt.Sprintf("nice=%d\n", c.want); out.Err != "" || !strings.Contains(string(out.Log), want) {
			t.Errorf("Nice %d: outcome %+v, log %q; want it to contain %q", c.nice, out, out.Log, want)
		}
	}
}
