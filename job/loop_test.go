package job_test

import (
	"context"
	"testing"
	"time"

	"github.com/sluicehq/sluice/job"
)

// wait is one wait of Loop: how long it asked for, and release, which lets
// that much time pass on the test's clock.
type wait struct {
	d       time.Duration
	release chan struct{}
}

// steppedLoop runs e's Loop with a Sleep that hands every wait to the test
// (time never passes by itself) and a Tick of an hour, so only Loop's own
// deadlines and wake-ups can start anything.
func steppedLoop(e *env) <-chan wait {
	waits := make(chan wait)
	e.m.SetTick(time.Hour)
	e.m.SetSleep(func(ctx context.Context, d time.Duration) error {
		w := wait{d: d, release: make(chan struct{})}
		select {
		case waits <- w:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-w.release:
			e.clock.Advance(d)
			return nil
		case <-ctx.Done(): // woken
			return ctx.Err()
		}
	})
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.m.Loop(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("Loop = %v", err)
		}
	})
	return waits
}

func nextWait(t *testing.T, waits <-chan wait) wait {
	t.Helper()
	select {
	case w := <-waits:
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("Loop did not wait within 10s")
		return wait{}
	}
}

func TestLoopStartsARunWhenTheSettleDeadlinePassesNotAtATick(t *testing.T) {
	e := newEnv(t, nil)
	waits := steppedLoop(e)
	if w := nextWait(t, waits); w.d < 30*time.Minute {
		t.Fatalf("an idle Loop waits %s; want a look at the state every 30–90min (Tick 1h), nothing else", w.d)
	}
	t0 := e.clock.Now()
	e.upload("data/g/a.csv", "1") // wakes Loop
	w := nextWait(t, waits)
	if w.d != settle {
		t.Fatalf("after an event Loop waits %s; want exactly the %s settle window", w.d, settle)
	}
	select {
	case c := <-e.runner.calls:
		t.Fatalf("run %s started before the settle window passed", c.task.RunID)
	default:
	}
	close(w.release)
	c := e.next()
	if c.task.Group != "g" {
		t.Fatalf("started group %q; want g", c.task.Group)
	}
	r, err := e.st.GetRun(e.ctx, c.task.RunID)
	if err != nil || r.State != job.Running || !r.Started.Equal(t0.Add(settle)) {
		t.Fatalf("run = %+v, %v; want RUNNING since %s, the settle deadline", r, err, t0.Add(settle))
	}

	// An event during the run: its follow-up starts when the run has ended
	// and the event's own window has passed — Loop is woken by the end and
	// waits exactly for the rest of the window.
	e.upload("data/g/b.csv", "1")
	if w := nextWait(t, waits); w.d < 30*time.Minute {
		t.Fatalf("with the group's run in flight Loop waits %s; want only the idle look (its end wakes Loop)", w.d)
	}
	e.clock.Advance(2 * time.Second) // the run takes 2s
	c.done <- job.Outcome{}
	w = nextWait(t, waits)
	if w.d != settle-2*time.Second {
		t.Fatalf("after the run ended Loop waits %s; want the %s left of the follow-up's window", w.d, settle-2*time.Second)
	}
	close(w.release)
	if c2 := e.next(); c2.task.Group != "g" || len(c2.task.Inputs) != 2 {
		t.Fatalf("follow-up = group %q with %v; want g with both inputs", c2.task.Group, c2.task.Inputs)
	}
}

func TestEventsWhoseDeadlineIsNotEarlierDoNotWakeTheScheduler(t *testing.T) {
	e := newEnv(t, nil)
	waits := steppedLoop(e)
	nextWait(t, waits) // idle
	e.upload("data/g/a.csv", "1")
	w := nextWait(t, waits)
	if w.d != settle {
		t.Fatalf("Loop waits %s; want the settle window", w.d)
	}
	// More events at the same moment settle at the same deadline: Loop
	// keeps its wait (were it woken, this wait would be abandoned and no
	// run could start when it is released).
	e.upload("data/h/a.csv", "1")
	e.upload("data/g/b.csv", "1")
	close(w.release)
	got := map[string]int{}
	for range 2 {
		c := e.next()
		got[c.task.Group] = len(c.task.Inputs)
	}
	if got["g"] != 2 || got["h"] != 1 {
		t.Errorf("runs started = %v (group → inputs); want g with 2 inputs and h with 1, at the one deadline", got)
	}
}
