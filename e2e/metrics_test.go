package e2e

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestMetricsDuringDemoServeAgreeWithSQLAndJobs runs `sluice demo
// --serve` and scrapes its /metrics: the rows loaded equal what `sluice
// sql` counts, the compute seconds what `sluice jobs` shows for the run,
// and the exposition passes the client library's linter.
func TestMetricsDuringDemoServeAgreeWithSQLAndJobs(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "d")
	port := freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	var out lockedBuffer
	cmd := exec.Command(bin, "demo", "--data-dir="+dataDir, "--serve", "--http", fmt.Sprintf("127.0.0.1:%d", port))
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "log")
	d := &daemon{cmd: cmd, dataDir: dataDir, log: logPath}
	defer d.stop()
	// The demo prints the console line once it is done and serving.
	waitDaemon(t, "the demo to finish and serve", nil, func() bool {
		return strings.Contains(out.String(), "Console     "+base)
	})

	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("/metrics: %d %s", res.StatusCode, body)
	}
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatalf("promlint could not parse /metrics: %v", err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	value := func(name string, labels map[string]string) float64 {
		t.Helper()
		f, ok := families[name]
		if !ok {
			t.Fatalf("/metrics has no %s:\n%s", name, body)
		}
	next:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
		t.Fatalf("/metrics has no %s with %v", name, labels)
		return 0
	}

	// Rows: SQL's count against the counter.
	sql := mustRun(t, nil, "sql", "--data-dir="+dataDir, "--format=csv", "--no-header", "select count(*) from posts")
	n, err := strconv.Atoi(strings.TrimSpace(sql.stdout))
	if err != nil {
		t.Fatalf("sluice sql: %q", sql.stdout)
	}
	rows := value("sluice_rows_loaded_total", map[string]string{"pipeline": "demo", "load": "posts"})
	if n != 100 || rows != float64(n) {
		t.Errorf("sluice_rows_loaded_total = %v, SQL counts %d (want both 100)", rows, n)
	}
	if got := value("sluice_objects_loaded_total", map[string]string{"load": "posts"}); got != 1 {
		t.Errorf("sluice_objects_loaded_total = %v, want 1", got)
	}

	// Compute seconds: `sluice jobs RUN` shows them to the millisecond.
	list := mustRun(t, nil, "jobs", "--data-dir="+dataDir)
	lines := strings.Split(strings.TrimSpace(list.stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("sluice jobs lists %d lines, want a header and one run:\n%s", len(lines), list.stdout)
	}
	runID := strings.Fields(lines[1])[0]
	show := mustRun(t, nil, "jobs", "--data-dir="+dataDir, runID)
	m := regexp.MustCompile(`(?m)^compute s\s+([0-9.]+)`).FindStringSubmatch(show.stdout)
	if m == nil {
		t.Fatalf("sluice jobs %s shows no compute seconds:\n%s", runID, show.stdout)
	}
	shown, _ := strconv.ParseFloat(m[1], 64)
	compute := value("sluice_compute_seconds_total", map[string]string{"job": "hydropower"})
	if shown <= 0 || math.Abs(compute-shown) > 0.0005 {
		t.Errorf("sluice_compute_seconds_total = %v, sluice jobs shows %v", compute, shown)
	}
	if got := value("sluice_job_runs_total", map[string]string{"job": "hydropower", "state": "SUCCEEDED"}); got != 1 {
		t.Errorf("sluice_job_runs_total{SUCCEEDED} = %v, want 1", got)
	}
	if _, err := os.Stat(dataDir); err != nil {
		t.Fatal(err)
	}
}

// lockedBuffer is a bytes.Buffer a process writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
