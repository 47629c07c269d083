package job_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/lease"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/trigger"
)

// backends are the shared states the claim tests run on.
var backends = map[string]func(t *testing.T) string{
	"sqlite": func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "state.db") },
	"postgres": func(t *testing.T) string {
		base := os.Getenv("SLUICE_TEST_POSTGRES")
		if base == "" {
			base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
		}
		var b [6]byte
		rand.Read(b[:])
		schema := "jobtest_" + hex.EncodeToString(b[:])
		db, err := sql.Open("pgx", base)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.PingContext(t.Context()); err != nil {
			t.Fatalf("PostgreSQL: %v: start it on 127.0.0.1:5432 with a database `test` or set SLUICE_TEST_POSTGRES", err)
		}
		t.Cleanup(func() {
			defer db.Close()
			db.ExecContext(context.Background(), `DROP SCHEMA IF EXISTS `+schema+` CASCADE`)
		})
		u, _ := url.Parse(base)
		q := u.Query()
		q.Set("schema", schema)
		u.RawQuery = q.Encode()
		return u.String()
	},
}

// sharedEnv is an env whose Manager uses its own connection to the state
// at url, with its own holder, sharing objs and clk with the others.
func sharedEnv(t *testing.T, url string, objs *objects, clk *clock, ttl time.Duration) *env {
	t.Helper()
	return sharedEnvWith(t, url, objs, clk, ttl, nil)
}

// sharedEnvWith is sharedEnv with the given runner, or a fakeRunner if nil;
// a non-nil runner must hand its calls to its fakeRunner's channel (for
// env.next).
func sharedEnvWith(t *testing.T, url string, objs *objects, clk *clock, ttl time.Duration, runner interface {
	job.Runner
	fake() *fakeRunner
}) *env {
	t.Helper()
	ctx := t.Context()
	st, err := state.Open(ctx, url, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var r job.Runner
	e := &env{t: t, ctx: ctx, st: st, clock: clk, objs: objs, logs: map[string][]byte{}, done: make(chan job.Run, 100)}
	if runner == nil {
		e.runner = &fakeRunner{calls: make(chan *call, 10)}
		r = e.runner
	} else {
		e.runner, r = runner.fake(), runner
	}
	rule, err := trigger.Compile(trigger.Rule{Name: "hydropower", Filter: event.Filter{Events: []string{"s3:ObjectCreated:*"}, Prefix: "data/", Suffix: ".csv"}})
	if err != nil {
		t.Fatal(err)
	}
	e.m, err = job.NewManager([]job.Definition{{
		Name: "hydropower", Rule: rule, Settle: settle, Inputs: objs.list,
		Task: func(group string, inputs []job.Input) (job.Task, error) {
			return job.Task{Kind: job.KindCurate, StoreURL: "mem://", Timeout: time.Hour}, nil
		},
	}}, job.Options{State: st, Runner: r, Clock: clk.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		LeaseTTL: ttl, StateURL: url,
		OnDone: func(ctx context.Context, r job.Run) { e.done <- r }})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func forEachBackend(t *testing.T, f func(t *testing.T, url string)) {
	for name, newURL := range backends {
		t.Run(name, func(t *testing.T) { f(t, newURL(t)) })
	}
}

func TestTwoManagersSharingAStateNeverRunOneGroupTwiceAtOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		objs, clk := &objects{objs: map[string]string{}}, &clock{now: time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC)}
		a, b := sharedEnv(t, url, objs, clk, time.Minute), sharedEnv(t, url, objs, clk, time.Minute)
		for round := range 5 {
			etag := string(rune('a' + round))
			a.upload("data/d/x.csv", etag)
			b.offer("data/d/x.csv", etag)
			clk.Advance(settle)
			var wg sync.WaitGroup
			var started [2]int
			for i, e := range []*env{a, b} {
				wg.Go(func() {
					n, err := e.m.Step(e.ctx)
					if err != nil {
						t.Error(err)
					}
					started[i] = n
				})
			}
			wg.Wait()
			if started[0]+started[1] != 1 {
				t.Fatalf("round %d: the managers started %v runs; want exactly one", round, started)
			}
			winner, other := a, b
			if started[1] == 1 {
				winner, other = b, a
			}
			c := winner.next()
			// While the winner runs, the other may not start the group.
			other.offer("data/d/x.csv", etag)
			clk.Advance(settle)
			if n, err := other.m.Step(other.ctx); err != nil || n != 0 {
				t.Fatalf("round %d: the other manager started %d runs (%v) while the group ran", round, n, err)
			}
			r := winner.finish(c, job.Outcome{})
			if r.State != job.Succeeded || r.Claimer != winner.m.Holder() || r.Epoch < 1 {
				t.Fatalf("round %d: run = %+v", round, r)
			}
			// The request the other's event left is deduplicated away.
			other.step(0)
			winner.step(0)
		}
	})
}

func TestAManagerWhoseClaimIsBrokenStopsItsRunAndWritesNothingMore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		objs, clk := &objects{objs: map[string]string{}}, &clock{now: time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC)}
		// The heartbeat renews every TTL/3, so it notices the broken claim
		// within a second; the claim lapses by itself only if renewals
		// stall for seconds.
		a := sharedEnv(t, url, objs, clk, 3*time.Second)
		a.upload("data/d/x.csv", "1")
		clk.Advance(settle)
		a.step(1)
		c := a.next()
		var run job.Run
		waitUntil(t, "the run is RUNNING", func() bool {
			rs, _ := a.st.ListRuns(a.ctx, job.RunFilter{})
			if len(rs) == 1 && rs[0].State == job.Running {
				run = rs[0]
				return true
			}
			return false
		})
		l, ok, err := a.st.Get(a.ctx, job.LeaseName("hydropower", "d"))
		if err != nil || !ok || l.Holder != a.m.Holder() || l.Epoch != run.Epoch {
			t.Fatalf("lease = %+v, %v, %v; want held by the manager at the run's epoch", l, ok, err)
		}
		if ok, err := a.st.Break(a.ctx, l); !ok || err != nil {
			t.Fatalf("Break = %v, %v", ok, err)
		}
		// The heartbeat finds the claim lost and cancels the run's compute.
		select {
		case <-c.ctx.Done():
		case <-time.After(15 * time.Second):
			t.Fatal("the run's compute was not cancelled after its claim was broken")
		}
		if !strings.Contains(context.Cause(c.ctx).Error(), "claim lost") {
			t.Errorf("cancellation cause = %v", context.Cause(c.ctx))
		}
		c.done <- job.Outcome{ExitCode: -1, Err: "killed"}
		a.m.Wait()
		got, err := a.st.GetRun(a.ctx, run.ID)
		if err != nil || got.State != job.Running || got.Error != "" {
			t.Fatalf("run after the lost claim = %+v, %v; want it left RUNNING for recovery", got, err)
		}
		// A late write under the old claim is refused.
		late := got
		late.State = job.Succeeded
		if err := a.st.UpdateRun(a.ctx, late); !errors.Is(err, lease.ErrLost) {
			t.Fatalf("late UpdateRun = %v, want ErrLost", err)
		}
	})
}

func TestAVanishedHoldersRunIsFailedWorkerLostAndRerunByAnotherManager(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		objs, clk := &objects{objs: map[string]string{}}, &clock{now: time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC)}
		b := sharedEnv(t, url, objs, clk, time.Minute)
		objs.put("data/d/x.csv", "1")
		// A worker that claimed the group and started the run.
		ghost, err := b.st.Acquire(b.ctx, job.LeaseName("hydropower", "d"), "elsewhere/1/ghost", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t0 := clk.Now()
		if err := b.st.CreateRun(b.ctx, job.Run{ID: "lost", Rule: "hydropower", Group: "d", State: job.Running, Created: t0, Started: t0,
			Inputs: inputs("data/d/x.csv", "1"), Claimer: ghost.Holder, Epoch: ghost.Epoch}); err != nil {
			t.Fatal(err)
		}
		// While its claim is current, recovery leaves it alone.
		if err := b.m.Recover(b.ctx); err != nil {
			t.Fatal(err)
		}
		if r, _ := b.st.GetRun(b.ctx, "lost"); r.State != job.Running {
			t.Fatalf("a live holder's run was recovered: %+v", r)
		}
		// Its last heartbeat was a short one, and then it vanished.
		if ghost, err = b.st.Renew(b.ctx, ghost, 200*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the ghost's claim expires", func() bool { return lease.Lost(b.st.Check(b.ctx, ghost)) })
		if err := b.m.Recover(b.ctx); err != nil {
			t.Fatal(err)
		}
		r, err := b.st.GetRun(b.ctx, "lost")
		want := "worker lost: elsewhere/1/ghost stopped heartbeating while the run was RUNNING; failed by " + b.m.Holder() + " at "
		if err != nil || r.State != job.Failed || r.ExitCode != -1 || !strings.HasPrefix(r.Error, want) ||
			!strings.HasSuffix(r.Error, ", group requested again") || r.Claimer != b.m.Holder() || r.Epoch <= ghost.Epoch {
			t.Fatalf("recovered run = %+v, %v; want FAILED %q...", r, err, want)
		}
		clk.Advance(settle)
		b.step(1)
		c := b.next()
		if got := b.finish(c, job.Outcome{}); got.State != job.Succeeded || got.ID == "lost" {
			t.Fatalf("rerun = %+v", got)
		}
	})
}

func TestASettledGroupSplitAcrossTwoManagersStartsOneRun(t *testing.T) {
	forEachBackend(t, func(t *testing.T, url string) {
		objs, clk := &objects{objs: map[string]string{}}, &clock{now: time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC)}
		a, b := sharedEnv(t, url, objs, clk, time.Minute), sharedEnv(t, url, objs, clk, time.Minute)
		a.upload("data/d/1.csv", "1")
		clk.Advance(settle / 2)
		b.upload("data/d/2.csv", "2")
		clk.Advance(settle / 2)
		// Not settled: b's event refreshed the shared request.
		a.step(0)
		b.step(0)
		clk.Advance(settle / 2)
		na, err := a.m.Step(a.ctx)
		if err != nil {
			t.Fatal(err)
		}
		nb, err := b.m.Step(b.ctx)
		if err != nil || na+nb != 1 {
			t.Fatalf("started %d + %d runs (%v); want one", na, nb, err)
		}
		e := a
		if nb == 1 {
			e = b
		}
		c := e.next()
		if got := c.task.Inputs; len(got) != 2 {
			t.Fatalf("inputs = %v; want both files", got)
		}
		if c.task.Fence == nil || c.task.Fence.StateURL != url || c.task.Fence.Holder != e.m.Holder() || c.task.Fence.Epoch < 1 {
			t.Fatalf("task fence = %+v", c.task.Fence)
		}
		e.finish(c, job.Outcome{})
	})
}
