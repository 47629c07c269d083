package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReadCommandsWorkOnAFullDisk fills the data dir's disk (a private
// tmpfs) after a run and checks that dlq ls, ls and sql still answer.
func TestReadCommandsWorkOnAFullDisk(t *testing.T) {
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount a private tmpfs (the tests run as root): %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	dataDir := filepath.Join(mnt, "dd")
	in := filepath.Join(dataDir, "lake", "in")
	os.MkdirAll(in, 0o755)
	for name, body := range map[string]string{"good.json": `[{"id": 1}]`, "bad.json": `[{"id": 1}, {"id": "x"}]`} {
		p := filepath.Join(in, name)
		os.WriteFile(p, []byte(body), 0o644)
		old := time.Now().Add(-time.Minute)
		os.Chtimes(p, old, old)
	}
	spec := filepath.Join(t.TempDir(), "pipeline.yaml")
	os.WriteFile(spec, []byte("name: full\nloads:\n  l:\n    on: {prefix: in/}\n    table: t\n    columns: {id: bigint}\n"), 0o644)
	dd := "--data-dir=" + dataDir
	if r := sluice(t, nil, "run", dd, "-f", spec, "--once"); r.code != 1 {
		t.Fatalf("run --once with a bad object: exit %d, want 1\n%s", r.code, tail(r.stderr, 2000))
	}
	// Fill the disk.
	f, err := os.Create(filepath.Join(mnt, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	if r := mustRun(t, nil, "dlq", "ls", dd); !strings.Contains(r.stdout, "in/bad.json") || !strings.Contains(r.stdout, `got string "x"`) {
		t.Errorf("dlq ls on a full disk:\n%s", r.stdout)
	}
	if r := mustRun(t, nil, "sql", dd, "--format=csv", "--no-header", "select count(*) from t"); r.stdout != "1\n" {
		t.Errorf("sql on a full disk = %q, want 1", r.stdout)
	}
	if r := mustRun(t, nil, "ls", dd, "in/"); !strings.Contains(r.stdout, "in/good.json") {
		t.Errorf("ls on a full disk:\n%s", r.stdout)
	}
}

// TestFilesThatCannotBeObjectsFailRunOnce: a file whose name can never be
// a key is reported, listed by ls --ignored, and fails run --once.
func TestFilesThatCannotBeObjectsFailRunOnce(t *testing.T) {
	dataDir := t.TempDir()
	in := filepath.Join(dataDir, "lake", "in")
	os.MkdirAll(in, 0o755)
	bad := filepath.Join(in, `back\slash.json`)
	os.WriteFile(bad, []byte(`[{"id": 1}]`), 0o644)
	old := time.Now().Add(-time.Minute)
	os.Chtimes(bad, old, old)
	spec := filepath.Join(t.TempDir(), "pipeline.yaml")
	os.WriteFile(spec, []byte("name: ign\nloads:\n  l:\n    on: {prefix: in/}\n    table: t\n    columns: {id: bigint}\n"), 0o644)
	dd := "--data-dir=" + dataDir
	r := sluice(t, nil, "run", dd, "-f", spec, "--once")
	if r.code == 0 || !strings.Contains(r.stderr, `back\slash.json`) || !strings.Contains(r.stderr, "cannot be objects") {
		t.Errorf("run --once with a file that cannot be an object: exit %d\n%s", r.code, tail(r.stderr, 2000))
	}
	if l := mustRun(t, nil, "ls", dd, "--ignored"); !strings.Contains(l.stdout, `back\slash.json`) {
		t.Errorf("ls --ignored = %q", l.stdout)
	}
}
