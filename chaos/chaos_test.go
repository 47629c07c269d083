package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestChaosShort runs the chaos suite's short mode: a few faults of random
// kinds (seeded; the seed is printed, and `go run ./chaos -short -seed N`
// replays it) against the distributed set-up, every promise checked after
// each round. `go run ./chaos` is the full mode (100 faults and more).
func TestChaosShort(t *testing.T) { runShort(t, "nats") }

func runShort(t *testing.T, queue string) {
	bin := filepath.Join(t.TempDir(), "sluice")
	build := exec.Command("go", "build", "-o", bin, "github.com/sluicehq/sluice/cmd/sluice")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build sluice: %v\n%s", err, out)
	}
	cfg := ShortConfig(0, 0)
	cfg.Bin, cfg.Out, cfg.Queue = bin, testWriter{t}, queue
	sum := Run(t.Context(), t, cfg)
	t.Log("\n" + sum.String())
	total := 0
	for _, n := range sum.Faults {
		total += n
	}
	if total < cfg.Faults {
		t.Errorf("%d faults injected, want at least %d", total, cfg.Faults)
	}
	if !sum.OK() {
		t.Errorf("a promise broke (seed %d): see the summary above", sum.Seed)
	}
	if sum.Objects == 0 || sum.Groups == 0 {
		t.Errorf("nothing landed: %d objects, %d groups", sum.Objects, sum.Groups)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
