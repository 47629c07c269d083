package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// putSpec loads NDJSON from in/; its watcher takes an hour to settle a
// file, so whatever loads sooner was announced by someone else.
const putSpec = `name: puts
watch: {settle: %s}
loads:
  items:
    on: {prefix: in/, suffix: .json}
    format: ndjson
    table: items
    columns: {id: bigint, v: text}
`

func TestPutPublishesItsEventWithoutWaitingForTheWatcher(t *testing.T) {
	dataDir := t.TempDir()
	d := startRun(t, dataDir, strings.Replace(putSpec, "%s", "1h", 1))
	waitDaemon(t, "sluice run to own the data dir and publish its queue", d, func() bool {
		b, err := os.ReadFile(filepath.Join(dataDir, "owner.json"))
		return err == nil && strings.Contains(string(b), `"queue_url"`)
	})
	src := filepath.Join(t.TempDir(), "one.json")
	if err := os.WriteFile(src, []byte(`{"id": 1, "v": "a"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, nil, "put", "--data-dir="+dataDir, src, "in/one.json")
	if strings.Contains(r.stderr, "no event published") {
		t.Fatalf("put published no event while sluice runs:\n%s", r.stderr)
	}
	// The watcher would announce the file only after an hour: the row is
	// there because put published the event. (sql fails until run has
	// created the table.)
	waitDaemon(t, "the put object's row", d, func() bool {
		return sluice(t, nil, "sql", "--data-dir="+dataDir, "--format=csv", "--no-header", "select count(*) from items").stdout == "1\n"
	})
	d.stop()
	if log, _ := os.ReadFile(d.log); strings.Contains(string(log), "found object") {
		t.Errorf("the watcher announced the put object too:\n%s", d.logTail())
	}

	// Without a running sluice put only writes, and says who announces it:
	// the next run's watcher (here with a 100ms window).
	src2 := filepath.Join(t.TempDir(), "two.json")
	if err := os.WriteFile(src2, []byte(`{"id": 2, "v": "b"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = mustRun(t, nil, "put", "--data-dir="+dataDir, src2, "in/two.json")
	if !strings.Contains(r.stderr, "no event published for in/two.json (no sluice is running on "+dataDir+")") {
		t.Errorf("put without a running sluice says:\n%s", r.stderr)
	}
	d = startRun(t, dataDir, strings.Replace(putSpec, "%s", "100ms", 1))
	waitDaemon(t, "the second object's row, announced by the watcher", d, func() bool {
		return count(t, dataDir, "select count(*) from items") == "2"
	})
}
