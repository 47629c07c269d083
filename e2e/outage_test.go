package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testsvc"
)

const (
	outageObjects = 300
	outageRecords = 500
	outageFor     = 60 * time.Second
)

// outageSpec loads in/*.json into table events. max_backoff is lowered
// from its 1m default so the test does not wait up to a minute after the
// outage for the next retry; the outage itself is longer than every
// delivery and backoff limit the old defaults had.
const outageSpec = `name: outage
queue: "embedded?ack_wait=2s"
retry: {max_backoff: 5s}
loads:
  events:
    on: {prefix: in/, suffix: .json}
    table: events
    columns: {obj: bigint, n: bigint, payload: text}
`

func writeObjects(t *testing.T, dataDir string, n, records int) {
	t.Helper()
	dir := filepath.Join(dataDir, "lake", "in")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	for o := 0; o < n; o++ {
		var b strings.Builder
		b.WriteString("[")
		for r := 0; r < records; r++ {
			if r > 0 {
				b.WriteString(",\n")
			}
			fmt.Fprintf(&b, `{"obj": %d, "n": %d, "payload": "object %d record %d"}`, o, r, o, r)
		}
		b.WriteString("]\n")
		p := filepath.Join(dir, fmt.Sprintf("obj-%03d.json", o))
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, old, old)
	}
}

// TestAPostgresOutageDeadLettersNothing stops a private PostgreSQL for 60 s
// in the middle of a 300-object load: the running sluice pauses and
// retries, and loads all 300 objects once the server is back, without a
// restart and without a dead letter; a `run --once --max-wait 10s` started
// during the outage exits 75 and dead-letters nothing, and loads everything
// when run again afterwards.
func TestAPostgresOutageDeadLettersNothing(t *testing.T) {
	pg := testsvc.StartPG(t)
	specFile := filepath.Join(t.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(specFile, []byte(outageSpec), 0o644); err != nil {
		t.Fatal(err)
	}

	// A: a long-running sluice in the middle of a load.
	dirA := t.TempDir()
	writeObjects(t, dirA, outageObjects, outageRecords)
	envA := []string{"SLUICE_WAREHOUSE=" + pg.URL("a")}
	d := startRun(t, dirA, outageSpec, envA...)
	deadline := time.Now().Add(2 * time.Minute)
	for pg.Count("select count(*) from a._sluice_ledger") < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("the load did not start within 2m:\n%s", d.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	pg.Stop()
	stopped := time.Now()
	if d.cmd.ProcessState != nil {
		t.Fatal("sluice run exited")
	}

	// B: run --once during the outage waits 10 s, then exits 75.
	dirB := t.TempDir()
	writeObjects(t, dirB, 5, 10)
	envB := []string{"SLUICE_WAREHOUSE=" + pg.URL("b")}
	r := sluice(t, envB, "run", "--data-dir="+dirB, "-f", specFile, "--once", "--max-wait", "10s")
	if r.code != 75 {
		t.Fatalf("run --once during the outage: exit %d, want 75\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, tail(r.stderr, 3000))
	}
	if !strings.Contains(r.stderr, "waiting for an unavailable service") || !strings.Contains(r.stderr, "nothing was dead-lettered") {
		t.Errorf("run --once's error does not say the work is waiting:\n%s", tail(r.stderr, 2000))
	}
	if dl := mustRun(t, envB, "dlq", "ls", "--data-dir="+dirB); !strings.Contains(dl.stdout, "no dead letters") {
		t.Errorf("dlq ls of the --once run after the outage:\n%s", dl.stdout)
	}

	// The outage lasts outageFor, then the server comes back.
	time.Sleep(time.Until(stopped.Add(outageFor)))
	pg.Start()
	t.Logf("PostgreSQL was down for %s", time.Since(stopped).Round(time.Second))

	deadline = time.Now().Add(3 * time.Minute)
	for pg.Count("select count(*) from a._sluice_ledger") < outageObjects {
		if time.Now().After(deadline) || d.cmd.ProcessState != nil {
			t.Fatalf("ledger has %d of %d objects 3m after the outage:\n%s", pg.Count("select count(*) from a._sluice_ledger"), outageObjects, d.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := pg.Count("select count(*) from a.events"); n != outageObjects*outageRecords {
		t.Errorf("rows = %d, want %d", n, outageObjects*outageRecords)
	}
	if n := pg.Count("select count(*) from (select obj, n from a.events group by obj, n having count(*) > 1) d"); n != 0 {
		t.Errorf("%d duplicate rows", n)
	}
	if d.cmd.ProcessState != nil {
		t.Errorf("sluice run was restarted or exited")
	}
	if dl := mustRun(t, envA, "dlq", "ls", "--data-dir="+dirA); !strings.Contains(dl.stdout, "no dead letters") {
		t.Errorf("dead letters after the outage:\n%s", dl.stdout)
	}
	if log, _ := os.ReadFile(d.log); !strings.Contains(string(log), "succeeded after retries") {
		t.Errorf("the log shows no load that succeeded after retries:\n%s", d.logTail())
	}

	// B again, with the server back: everything loads.
	r = mustRun(t, envB, "run", "--data-dir="+dirB, "-f", specFile, "--once")
	if n := pg.Count("select count(*) from b.events"); n != 5*10 {
		t.Errorf("B rows after the outage = %d, want 50\n%s", n, r.stdout)
	}
}
