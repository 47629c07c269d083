//go:build linux

package local

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/trigger"
)

func TestAManagedRunGoesThroughTheLifecycleInAFreshProcess(t *testing.T) {
	ctx := t.Context()
	st, err := state.Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rule, err := trigger.Compile(trigger.Rule{Name: "hydropower", Filter: event.Filter{Prefix: "data/"}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	clock := func() time.Time { return now }
	done := make(chan job.Run, 1)
	m, err := job.NewManager([]job.Definition{{
		Name: "hydropower", Rule: rule,
		Inputs: func(ctx context.Context, g string) ([]job.Input, error) {
			return []job.Input{{Key: "data/" + g + "/a.csv", ETag: "e1"}}, nil
		},
		Task: func(g string, in []job.Input) (job.Task, error) {
			raw, _ := json.Marshal(childSpec{Mode: "ok"})
			return job.Task{Kind: "test", Curate: raw}, nil
		},
	}}, job.Options{State: st, Runner: newRunner(t), Clock: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnDone: func(ctx context.Context, r job.Run) { done <- r }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Offer(ctx, event.New("lake", "data/d1/a.csv", 1, "e1", now)); err != nil {
		t.Fatal(err)
	}
	now = now.Add(job.DefaultSettle)
	if n, err := m.Step(ctx); err != nil || n != 1 {
		t.Fatalf("Step = %d, %v; want one run", n, err)
	}
	m.Wait()
	r := <-done
	if r.State != job.Succeeded || r.PID == 0 || r.Started.IsZero() || r.Terminated.IsZero() || len(r.Outputs) != 2 {
		t.Fatalf("run = %+v, want SUCCEEDED with pid, start, termination and outputs", r)
	}
	if kids := ourChildren(t); len(kids) != 0 {
		t.Fatalf("processes %v remain after the run", kids)
	}
	if idle, err := m.Idle(ctx); err != nil || !idle {
		t.Fatalf("Idle = %v, %v", idle, err)
	}
}
