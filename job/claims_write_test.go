package job_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/trigger"
)

// flakyFinal is a state whose first write of a SUCCEEDED run fails, as a
// dropped connection or a failover of the state's database would.
type flakyFinal struct {
	state.Store
	failed atomic.Bool
}

func (f *flakyFinal) UpdateRun(ctx context.Context, r job.Run) error {
	if r.State == job.Succeeded && f.failed.CompareAndSwap(false, true) {
		return errors.New("state: update job run: connection reset by peer")
	}
	return f.Store.UpdateRun(ctx, r)
}

// A run that succeeded, whose final write hit one transient state error,
// must not end up FAILED "worker lost" and run again: its manager released
// the claim while the run was still recorded RUNNING, so any other live
// process recovers it as if its worker had vanished.
func TestASucceededRunWhoseFinalWriteFailedOnceIsNotFailedWorkerLost(t *testing.T) {
	url := "sqlite://" + filepath.Join(t.TempDir(), "state.db")
	objs, clk := &objects{objs: map[string]string{}}, &clock{now: time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC)}
	ctx := t.Context()
	st, err := state.Open(ctx, url, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rule, err := trigger.Compile(trigger.Rule{Name: "hydropower", Filter: event.Filter{Events: []string{"s3:ObjectCreated:*"}, Prefix: "data/", Suffix: ".csv"}})
	if err != nil {
		t.Fatal(err)
	}
	a := &env{t: t, ctx: ctx, st: st, clock: clk, objs: objs, logs: map[string][]byte{}, done: make(chan job.Run, 100),
		runner: &fakeRunner{calls: make(chan *call, 10)}}
	a.m, err = job.NewManager([]job.Definition{{
		Name: "hydropower", Rule: rule, Settle: settle, Inputs: objs.list,
		Task: func(string, []job.Input) (job.Task, error) {
			return job.Task{Kind: job.KindCurate, StoreURL: "mem://"}, nil
		},
	}}, job.Options{State: &flakyFinal{Store: st}, Runner: a.runner, Clock: clk.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		LeaseTTL: time.Minute, StateURL: url, OnDone: func(ctx context.Context, r job.Run) { a.done <- r }})
	if err != nil {
		t.Fatal(err)
	}
	b := sharedEnv(t, url, objs, clk, time.Minute)

	a.upload("data/d/x.csv", "1")
	clk.Advance(settle)
	a.step(1)
	if r := a.finish(a.next(), job.Outcome{}); r.State != job.Succeeded {
		t.Fatalf("run = %+v", r)
	}
	// Another live process sweeps for lost runs, as every Loop does each TTL.
	if err := b.m.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	rs := b.runs()
	if len(rs) != 1 || rs[0].State == job.Failed || strings.HasPrefix(rs[0].Error, "worker lost") {
		t.Fatalf("runs = %+v; the run that succeeded was failed as worker lost (and its group is requested again)", rs)
	}
}
