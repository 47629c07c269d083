package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const badSpec = `name: badinput
queue: "embedded?ack_wait=2s"
loads:
  posts:
    on: {prefix: in/, suffix: .json}
    table: posts
    write: merge
    primary_key: [id]
    columns:
      id: bigint
      userId: {type: bigint, as: userid}
      title: text
`

func TestMalformedObjectsAreDeadLetteredAndTheRestLoad(t *testing.T) {
	dataDir := t.TempDir()
	lake := filepath.Join(dataDir, "lake", "in")
	os.MkdirAll(lake, 0o755)
	files := map[string]string{
		"good-1.json":     `[{"id": 1, "userId": 1, "title": "a"}, {"id": 2, "userId": 1, "title": "b"}]`,
		"good-2.json":     `[{"id": 3, "userId": 2, "title": "c"}]`,
		"truncated.json":  `[{"id": 4, "userId": 2, "title": "d"}, {"id": 5, "userId": 2, "ti`,
		"wrong-type.json": `[{"id": 6, "userId": 3, "title": "e"}, {"id": 7, "userId": "seven", "title": "f"}]`,
		// Rejected by the warehouse, not the decoder: a primary key of null.
		"null-key.json": `[{"id": 8, "userId": 3, "title": "g"}, {"id": null, "userId": 3, "title": "h"}]`,
	}
	old := time.Now().Add(-time.Minute)
	for name, body := range files {
		p := filepath.Join(lake, name)
		os.WriteFile(p, []byte(body), 0o644)
		os.Chtimes(p, old, old)
	}
	spec := filepath.Join(t.TempDir(), "pipeline.yaml")
	os.WriteFile(spec, []byte(badSpec), 0o644)
	dd := "--data-dir=" + dataDir

	r := sluice(t, nil, "run", dd, "-f", spec, "--once")
	if r.code == 0 {
		t.Fatalf("run --once exited 0 despite bad objects:\n%s\n%s", r.stdout, r.stderr)
	}
	// The final error (after the log lines) names each bad object.
	i := strings.LastIndex(r.stderr, "sluice run: ")
	if i < 0 {
		t.Fatalf("run --once printed no final error:\n%s", tail(r.stderr, 3000))
	}
	final := r.stderr[i:]
	for _, obj := range []string{"in/truncated.json", "in/wrong-type.json", "in/null-key.json"} {
		if !strings.Contains(final, obj) {
			t.Errorf("run --once's final error does not name %s:\n%s", obj, final)
		}
	}
	// Bad data is dead-lettered at its first delivery, never retried.
	if !strings.Contains(r.stdout, "0 retried, 3 dead-lettered") {
		t.Errorf("run --once's summary does not count 3 dead letters and no retries:\n%s", r.stdout)
	}
	count := mustRun(t, nil, "sql", dd, "--format=csv", "--no-header", "select count(*) from posts")
	if count.stdout != "3\n" {
		t.Errorf("rows loaded = %q, want 3 (the good objects)", count.stdout)
	}
	dlq := mustRun(t, nil, "dlq", "ls", dd)
	lines := deadLetterLines(dlq.stdout)
	if len(lines) != 3 {
		t.Fatalf("dlq ls shows %d dead letters, want 3:\n%s", len(lines), dlq.stdout)
	}
	var trunc, wrong string
	for _, l := range lines {
		switch {
		case strings.Contains(l, "in/truncated.json"):
			trunc = l
		case strings.Contains(l, "in/wrong-type.json"):
			wrong = l
		}
	}
	if !strings.Contains(trunc, "record 2") {
		t.Errorf("truncated object's reason does not name record 2: %q", trunc)
	}
	if !strings.Contains(wrong, "record 2") || !strings.Contains(wrong, "userId") {
		t.Errorf("wrong-type object's reason does not name record 2 and column userId: %q", wrong)
	}
	// Running again changes nothing and still reports the failures recorded.
	mustRun(t, nil, "sql", dd, "select * from _sluice_ledger")
}

func TestValidateReportsErrorsWithFileAndLine(t *testing.T) {
	spec := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(spec, []byte("name: x\nloads:\n  p:\n    table: posts\n    write: upsert\n    colums: {id: bigint}\n"), 0o644)
	r := sluice(t, nil, "validate", "-f", spec)
	if r.code == 0 {
		t.Fatalf("validate accepted a bad spec:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "bad.yaml:5:") || !strings.Contains(r.stdout, "bad.yaml:6:") {
		t.Errorf("validate output lacks file:line for both errors:\n%s%s", r.stdout, r.stderr)
	}
	ok := mustRun(t, nil, "validate", "-f", "../examples/posts/pipeline.yaml")
	if !strings.Contains(ok.stdout, "ok") {
		t.Errorf("example spec: %s", ok.stdout)
	}
}

// deadLetterLines returns the rows of `sluice dlq ls` (those starting with
// an ID).
func deadLetterLines(out string) []string {
	var rows []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 2 && strings.Trim(f[0], "0123456789") == "" && (strings.HasPrefix(f[1], "load-") || strings.HasPrefix(f[1], "job-")) {
			rows = append(rows, l)
		}
	}
	return rows
}
