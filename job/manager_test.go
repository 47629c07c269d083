package job_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/deadletter"
	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/trigger"
)

// clock is a manually advanced time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// call is one task handed to the fake runner; the test finishes it by
// sending its outcome.
type call struct {
	task job.Task
	ctx  context.Context
	done chan job.Outcome
}

// fakeRunner is an in-memory Runner: every Run reports its start, hands the
// task to the test and blocks until the test sends the outcome or ctx ends.
type fakeRunner struct {
	calls chan *call
}

var _ job.Runner = (*fakeRunner)(nil)

func (f *fakeRunner) Run(ctx context.Context, t job.Task) (job.Outcome, error) {
	job.NotifyStarted(ctx, 4242)
	c := &call{task: t, ctx: ctx, done: make(chan job.Outcome, 1)}
	f.calls <- c
	select {
	case o := <-c.done:
		return o, nil
	case <-ctx.Done():
		return job.Outcome{ExitCode: -1, Err: "killed: " + ctx.Err().Error()}, nil
	}
}

// reaper is a fake Runner with the Reaper capability.
type reaper struct {
	fakeRunner
	reaped []string
	fail   error // returned by every Reap
}

func (r *reaper) Reap(ctx context.Context, run job.Run) error {
	r.reaped = append(r.reaped, run.ID)
	return r.fail
}

// objects is the fake store the Inputs function lists.
type objects struct {
	mu   sync.Mutex
	objs map[string]string // key → etag
	fail error
	// after runs once at the end of the next listing, outside the lock.
	after func()
	// slow, when set, holds a listing of its group until it is closed.
	slow      chan struct{}
	slowGroup string
}

func (o *objects) put(key, etag string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.objs[key] = etag
}

func (o *objects) list(ctx context.Context, group string) ([]job.Input, error) {
	if o.slow != nil && group == o.slowGroup {
		<-o.slow
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.fail != nil {
		return nil, o.fail
	}
	if f := o.after; f != nil {
		o.after = nil
		defer func() { o.mu.Unlock(); f(); o.mu.Lock() }()
	}
	var in []job.Input
	for k, e := range o.objs {
		if strings.HasPrefix(k, "data/"+group+"/") {
			in = append(in, job.Input{Key: k, ETag: e})
		}
	}
	return in, nil
}

type env struct {
	t      *testing.T
	ctx    context.Context
	st     state.Store
	clock  *clock
	runner *fakeRunner
	objs   *objects
	m      *job.Manager
	logs   map[string][]byte
	done   chan job.Run
}

const settle = 5 * time.Second

func newEnv(t *testing.T, runner job.Runner) *env {
	t.Helper()
	ctx := t.Context()
	st, err := state.Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, ctx: ctx, st: st, clock: &clock{now: time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC)},
		objs: &objects{objs: map[string]string{}}, logs: map[string][]byte{}, done: make(chan job.Run, 100)}
	if runner == nil {
		e.runner = &fakeRunner{calls: make(chan *call, 10)}
		runner = e.runner
	}
	rule, err := trigger.Compile(trigger.Rule{Name: "hydropower", Filter: event.Filter{Events: []string{"s3:ObjectCreated:*"}, Prefix: "data/", Suffix: ".csv"}})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	e.m, err = job.NewManager([]job.Definition{{
		Name: "hydropower", Rule: rule, Settle: settle, Inputs: e.objs.list,
		Task: func(group string, inputs []job.Input) (job.Task, error) {
			return job.Task{Kind: job.KindCurate, StoreURL: "mem://"}, nil
		},
	}}, job.Options{State: st, Runner: runner, Clock: e.clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnDone: func(ctx context.Context, r job.Run) { e.done <- r },
		LogStore: func(ctx context.Context, id string, log []byte) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			e.logs[id] = log
			return "logs/" + id + ".txt", nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// upload puts an object and offers its event, as the engine would.
func (e *env) upload(key, etag string) {
	e.t.Helper()
	e.objs.put(key, etag)
	e.offer(key, etag)
}

func (e *env) offer(key, etag string) {
	e.t.Helper()
	ok, err := e.m.Offer(e.ctx, event.New("lake", key, 10, etag, e.clock.Now()))
	if err != nil || !ok {
		e.t.Fatalf("Offer(%s) = %v, %v; want a match", key, ok, err)
	}
}

func (e *env) step(want int) {
	e.t.Helper()
	n, err := e.m.Step(e.ctx)
	if err != nil {
		e.t.Fatalf("Step: %v", err)
	}
	if n != want {
		e.t.Fatalf("Step started %d runs, want %d", n, want)
	}
}

// next returns the next task the runner received.
func (e *env) next() *call {
	e.t.Helper()
	select {
	case c := <-e.runner.calls:
		return c
	case <-time.After(10 * time.Second):
		e.t.Fatal("no run reached the runner within 10s")
		return nil
	}
}

// finish completes c with o and waits until the run is recorded.
func (e *env) finish(c *call, o job.Outcome) job.Run {
	e.t.Helper()
	c.done <- o
	e.m.Wait()
	select {
	case r := <-e.done:
		return r
	default:
		e.t.Fatal("OnDone was not called for the finished run")
		return job.Run{}
	}
}

func (e *env) runs() []job.Run {
	e.t.Helper()
	rs, err := e.st.ListRuns(e.ctx, job.RunFilter{})
	if err != nil {
		e.t.Fatal(err)
	}
	return rs
}

func inputs(kv ...string) []job.Input {
	var in []job.Input
	for i := 0; i < len(kv); i += 2 {
		in = append(in, job.Input{Key: kv[i], ETag: kv[i+1]})
	}
	return job.SortInputsForTest(in)
}

func TestFiveUploadsWithinTheSettleWindowStartOneRunWithExactlyThoseInputs(t *testing.T) {
	e := newEnv(t, nil)
	var want []string
	for i := range 5 {
		key := fmt.Sprintf("data/2020-08-07_2PM/part%d.csv", i)
		e.upload(key, fmt.Sprintf("e%d", i))
		want = append(want, key, fmt.Sprintf("e%d", i))
		e.step(0)
		e.clock.Advance(time.Second)
	}
	e.clock.Advance(settle - 2*time.Second) // 4s after the last upload: still settling
	e.step(0)
	e.clock.Advance(time.Second)
	e.step(1)
	c := e.next()
	if !slices.Equal(c.task.Inputs, inputs(want...)) || c.task.Group != "2020-08-07_2PM" || c.task.Rule != "hydropower" || c.task.RunID == "" || c.task.Kind != job.KindCurate {
		t.Fatalf("task = %+v, want the five inputs of group 2020-08-07_2PM", c.task)
	}
	running, err := e.st.GetRun(e.ctx, c.task.RunID)
	if err != nil || running.State != job.Running || running.PID != 4242 || running.Started.IsZero() {
		t.Fatalf("run while the runner works = %+v, %v; want RUNNING with pid and start time", running, err)
	}
	e.clock.Advance(3 * time.Second)
	r := e.finish(c, job.Outcome{Outputs: []string{"curated/2020-08-07_2PM/_SUCCESS"}, ComputeSeconds: 2.5, Log: []byte("ok\n")})
	rs := e.runs()
	if len(rs) != 1 {
		t.Fatalf("%d runs recorded, want 1", len(rs))
	}
	got := rs[0]
	if got.State != job.Succeeded || !slices.Equal(got.Inputs, inputs(want...)) || got.ComputeSeconds != 2.5 || got.Instances != 1 ||
		got.Terminated.IsZero() || !got.Ended.Equal(got.Started.Add(3*time.Second)) || got.LogKey != "logs/"+got.ID+".txt" ||
		!slices.Equal(got.Outputs, []string{"curated/2020-08-07_2PM/_SUCCESS"}) {
		t.Fatalf("recorded run = %+v", got)
	}
	if r.State != job.Succeeded || string(e.logs[got.ID]) != "ok\n" {
		t.Errorf("OnDone got %+v and log %q", r, e.logs[got.ID])
	}

	// A sixth file afterwards gives exactly one more run, over all six.
	e.upload("data/2020-08-07_2PM/part5.csv", "e5")
	e.clock.Advance(settle)
	e.step(1)
	c = e.next()
	if len(c.task.Inputs) != 6 {
		t.Fatalf("second run has %d inputs, want 6", len(c.task.Inputs))
	}
	e.finish(c, job.Outcome{})
	e.clock.Advance(time.Hour)
	e.step(0)
	if rs := e.runs(); len(rs) != 2 || rs[0].State != job.Succeeded || rs[0].ID != c.task.RunID {
		t.Fatalf("runs = %+v, want two, the newest first", rs)
	}
	if idle, err := e.m.Idle(e.ctx); err != nil || !idle {
		t.Errorf("Idle = %v, %v; want true", idle, err)
	}
}

func TestAnEventDuringARunGetsExactlyOneFollowUpRun(t *testing.T) {
	e := newEnv(t, nil)
	e.upload("data/d/a.csv", "1")
	e.clock.Advance(settle)
	e.step(1)
	c := e.next()
	e.upload("data/d/b.csv", "1")
	e.upload("data/d/c.csv", "1")
	e.clock.Advance(settle)
	e.step(0) // one run at a time per group
	if idle, _ := e.m.Idle(e.ctx); idle {
		t.Fatal("Idle is true while a run is in flight")
	}
	e.finish(c, job.Outcome{})
	e.step(1)
	c = e.next()
	if want := inputs("data/d/a.csv", "1", "data/d/b.csv", "1", "data/d/c.csv", "1"); !slices.Equal(c.task.Inputs, want) {
		t.Fatalf("follow-up inputs = %v, want %v", c.task.Inputs, want)
	}
	e.finish(c, job.Outcome{})
	e.clock.Advance(time.Hour)
	e.step(0)
	if n := len(e.runs()); n != 2 {
		t.Fatalf("%d runs, want 2", n)
	}
}

func TestARedeliveredEventAfterSuccessStartsNoRun(t *testing.T) {
	e := newEnv(t, nil)
	e.upload("data/d/a.csv", "1")
	e.clock.Advance(settle)
	e.step(1)
	e.finish(e.next(), job.Outcome{})
	e.offer("data/d/a.csv", "1") // the queue delivers it again
	e.clock.Advance(settle)
	e.step(0)
	if reqs, err := e.st.PendingRequests(e.ctx); err != nil || len(reqs) != 0 {
		t.Fatalf("pending requests = %v, %v; want none", reqs, err)
	}
	if n := len(e.runs()); n != 1 {
		t.Fatalf("%d runs, want 1", n)
	}
}

func TestAFileGoingBackToAnEarlierVersionRunsAgain(t *testing.T) {
	e := newEnv(t, nil)
	for _, etag := range []string{"1", "2", "1"} {
		e.upload("data/d/a.csv", etag)
		e.clock.Advance(settle)
		e.step(1)
		e.finish(e.next(), job.Outcome{})
	}
	if n := len(e.runs()); n != 3 {
		t.Fatalf("%d runs, want 3", n)
	}
}

func TestAFailedRunIsRunAgainByTheNextEvent(t *testing.T) {
	e := newEnv(t, nil)
	e.upload("data/d/a.csv", "1")
	e.clock.Advance(settle)
	e.step(1)
	r := e.finish(e.next(), job.Outcome{ExitCode: 1, Err: "data/d/a.csv line 3 column Year: abc is not an int32"})
	if r.State != job.Failed || !strings.Contains(r.Error, "abc") || r.ExitCode != 1 || r.Terminated.IsZero() {
		t.Fatalf("failed run = %+v", r)
	}
	e.offer("data/d/a.csv", "1")
	e.clock.Advance(settle)
	e.step(1)
	r = e.finish(e.next(), job.Outcome{})
	if r.State != job.Succeeded {
		t.Fatalf("rerun = %+v, want SUCCEEDED", r)
	}
	if rs := e.runs(); len(rs) != 2 || rs[1].State != job.Failed || rs[0].State != job.Succeeded {
		t.Fatalf("runs = %+v, want FAILED then SUCCEEDED", rs)
	}
}

func TestANonZeroExitWithoutMessageFailsTheRun(t *testing.T) {
	e := newEnv(t, nil)
	e.upload("data/d/a.csv", "1")
	e.clock.Advance(settle)
	e.step(1)
	if r := e.finish(e.next(), job.Outcome{ExitCode: 3}); r.State != job.Failed || r.Error != "job exited with status 3" {
		t.Fatalf("run = %+v", r)
	}
}

func TestGroupsRunConcurrently(t *testing.T) {
	e := newEnv(t, nil)
	e.upload("data/d1/a.csv", "1")
	e.upload("data/d2/a.csv", "1")
	e.clock.Advance(settle)
	e.step(2)
	a, b := e.next(), e.next()
	if a.task.Group == b.task.Group {
		t.Fatalf("both runs are for group %s", a.task.Group)
	}
	a.done <- job.Outcome{}
	b.done <- job.Outcome{}
	e.m.Wait()
	for _, r := range e.runs() {
		if r.State != job.Succeeded {
			t.Errorf("run %s for %s is %s", r.ID, r.Group, r.State)
		}
	}
}

// A group whose start is slow (here its store listing) does not hold up
// the other groups settled at the same time.
func TestASlowGroupDoesNotHoldUpTheOthers(t *testing.T) {
	e := newEnv(t, nil)
	e.objs.slow, e.objs.slowGroup = make(chan struct{}), "d1"
	e.upload("data/d1/a.csv", "1")
	e.upload("data/d2/a.csv", "1")
	e.clock.Advance(settle)
	stepped := make(chan int, 1)
	go func() {
		n, err := e.m.Step(e.ctx)
		if err != nil {
			t.Errorf("Step: %v", err)
		}
		stepped <- n
	}()
	if c := e.next(); c.task.Group != "d2" { // while d1's listing waits
		t.Fatalf("first run is for group %s, want d2", c.task.Group)
	} else {
		c.done <- job.Outcome{}
	}
	close(e.objs.slow)
	if n := <-stepped; n != 2 {
		t.Fatalf("Step started %d runs, want 2", n)
	}
	c := e.next()
	if c.task.Group != "d1" {
		t.Fatalf("second run is for group %s, want d1", c.task.Group)
	}
	c.done <- job.Outcome{}
	e.m.Wait()
}

func TestFailingToListInputsRecordsAFailedRunAndRetriesIt(t *testing.T) {
	e := newEnv(t, nil)
	e.upload("data/d/a.csv", "1")
	e.objs.fail = errors.New("store unreachable")
	e.clock.Advance(settle)
	e.step(0)
	rs := e.runs()
	if len(rs) != 1 || rs[0].State != job.Failed || !strings.Contains(rs[0].Error, "store unreachable") || rs[0].Terminated.IsZero() {
		t.Fatalf("runs = %+v, want one FAILED naming the listing error", rs)
	}
	if keys, _ := e.m.Retrying(e.ctx); len(keys) != 1 {
		t.Errorf("Retrying = %v, want the group: an unreachable store is transient", keys)
	}
	<-e.done // the failed run's OnDone
	e.objs.fail = nil
	e.clock.Advance(fault.DefaultBackoff)
	e.step(1)
	if r := e.finish(e.next(), job.Outcome{}); r.State != job.Succeeded {
		t.Fatalf("retry = %+v, want SUCCEEDED", r)
	}
	if idle, err := e.m.Idle(e.ctx); err != nil || !idle {
		t.Errorf("Idle = %v, %v; want true after the retry succeeded", idle, err)
	}
}

func TestOfferReportsKeysThatGiveNoGroup(t *testing.T) {
	e := newEnv(t, nil)
	ok, err := e.m.Offer(e.ctx, event.New("lake", "curated/d/x.csv", 1, "1", e.clock.Now()))
	if ok || err != nil {
		t.Fatalf("non-matching event: Offer = %v, %v", ok, err)
	}
	rule, _ := trigger.Compile(trigger.Rule{Name: "any"})
	m, err := job.NewManager([]job.Definition{{Name: "any", Rule: rule, Inputs: e.objs.list, Task: func(string, []job.Input) (job.Task, error) { return job.Task{}, nil }}},
		job.Options{State: e.st, Runner: e.runner})
	if err != nil {
		t.Fatal(err)
	}
	ok, err = m.Offer(e.ctx, event.New("lake", "top.csv", 1, "1", e.clock.Now()))
	if ok || !errors.Is(err, job.ErrUngroupable) || !strings.Contains(err.Error(), `"top.csv"`) {
		t.Fatalf("Offer of a key without a folder = %v, %v; want ErrUngroupable naming the key", ok, err)
	}
	if _, err := m.OfferTo(e.ctx, "any", event.New("lake", "top.csv", 1, "1", e.clock.Now())); !errors.Is(err, job.ErrUngroupable) {
		t.Fatalf("OfferTo of a key without a folder: %v, want ErrUngroupable", err)
	}
	if reqs, _ := e.st.PendingRequests(e.ctx); len(reqs) != 0 {
		t.Fatalf("requests = %v, want none", reqs)
	}
}

func TestNewManagerRejectsBadDefinitions(t *testing.T) {
	e := newEnv(t, nil)
	rule, _ := trigger.Compile(trigger.Rule{Name: "r"})
	ok := job.Definition{Name: "r", Rule: rule, Inputs: e.objs.list, Task: func(string, []job.Input) (job.Task, error) { return job.Task{}, nil }}
	noTask := ok
	noTask.Task = nil
	neg := ok
	neg.Settle = -time.Second
	for name, tc := range map[string]struct {
		defs []job.Definition
		opts job.Options
		want string
	}{
		"no state":       {[]job.Definition{ok}, job.Options{Runner: e.runner}, "Options.State"},
		"duplicate name": {[]job.Definition{ok, ok}, job.Options{State: e.st, Runner: e.runner}, "unique"},
		"no task":        {[]job.Definition{noTask}, job.Options{State: e.st, Runner: e.runner}, "needs Rule, Inputs and Task"},
		"negative":       {[]job.Definition{neg}, job.Options{State: e.st, Runner: e.runner}, "negative settle"},
	} {
		if _, err := job.NewManager(tc.defs, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: NewManager error = %v, want %q", name, err, tc.want)
		}
	}
}

func TestRecoverFailsRunsLeftByALostWorkerAndRequestsTheirGroupsAgain(t *testing.T) {
	rp := &reaper{fakeRunner: fakeRunner{calls: make(chan *call, 1)}}
	e := newEnv(t, rp)
	t0 := e.clock.Now()
	for _, r := range []job.Run{
		{ID: "running", Rule: "hydropower", Group: "d", State: job.Running, Created: t0, Started: t0, PID: 99},
		{ID: "starting", Rule: "hydropower", Group: "e", State: job.Starting, Created: t0},
		{ID: "done", Rule: "hydropower", Group: "f", State: job.Succeeded, Created: t0, Ended: t0, Terminated: t0},
	} {
		if err := e.st.CreateRun(e.ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Advance(time.Minute)
	recovered := e.clock.Now()
	if err := e.m.Recover(e.ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"running", "starting"} {
		r, err := e.st.GetRun(e.ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State != job.Failed || !strings.HasPrefix(r.Error, "worker lost: an earlier sluice process stopped heartbeating while the run was ") || r.ExitCode != -1 ||
			!r.Ended.Equal(recovered) || !r.Terminated.Equal(recovered) ||
			!strings.Contains(r.Error, "failed by "+e.m.Holder()+" at "+recovered.Format(time.RFC3339)+", group requested again") ||
			r.Claimer != e.m.Holder() || r.Epoch < 1 {
			t.Errorf("run %s after Recover = %+v, want FAILED, exit -1, worker lost, failed by this manager, ended and terminated at %s", id, r, recovered)
		}
	}
	if r, _ := e.st.GetRun(e.ctx, "done"); r.State != job.Succeeded || !r.Terminated.Equal(t0) {
		t.Errorf("finished run changed: %+v", r)
	}
	slices.Sort(rp.reaped)
	if !slices.Equal(rp.reaped, []string{"running", "starting"}) {
		t.Errorf("reaped %v, want the two unfinished runs", rp.reaped)
	}
	// The events behind the two runs were acknowledged long ago: Recover
	// itself asks for their groups again, at the recovery time.
	reqs, err := e.st.PendingRequests(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range reqs {
		if r.Rule != "hydropower" || !r.LastAt.Equal(recovered) {
			t.Errorf("request %+v, want job hydropower requested at %s", r, recovered)
		}
		got = append(got, r.Group)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"d", "e"}) {
		t.Fatalf("pending groups after Recover = %v, want [d e]", got)
	}
}

func TestRecoverThatCannotReapStillRequestsTheGroupButLeavesTheRunUnterminated(t *testing.T) {
	rp := &reaper{fakeRunner: fakeRunner{calls: make(chan *call, 1)}, fail: errors.New("pid 99 survived SIGKILL")}
	e := newEnv(t, rp)
	t0 := e.clock.Now()
	if err := e.st.CreateRun(e.ctx, job.Run{ID: "stuck", Rule: "hydropower", Group: "d", State: job.Running, Created: t0, Started: t0, PID: 99}); err != nil {
		t.Fatal(err)
	}
	err := e.m.Recover(e.ctx)
	if err == nil || !strings.Contains(err.Error(), "stuck") || !strings.Contains(err.Error(), "survived SIGKILL") {
		t.Fatalf("Recover = %v, want an error naming run stuck and the reap failure", err)
	}
	r, err := e.st.GetRun(e.ctx, "stuck")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != job.Failed || !r.Terminated.IsZero() || !strings.Contains(r.Error, "could not be killed") {
		t.Errorf("run after a failed reap = %+v, want FAILED, not terminated, saying its processes could not be killed", r)
	}
	if reqs, err := e.st.PendingRequests(e.ctx); err != nil || len(reqs) != 1 || reqs[0].Group != "d" {
		t.Errorf("requests = %v, %v; want group d requested again", reqs, err)
	}
}

func TestLoopRunsAGroupRecoveredFromADeadParentToSuccessWithoutANewEvent(t *testing.T) {
	rp := &reaper{fakeRunner: fakeRunner{calls: make(chan *call, 1)}}
	e := newEnv(t, rp)
	e.runner = &rp.fakeRunner
	e.m.SetTick(time.Millisecond)
	e.objs.put("data/d/a.csv", "1") // its event was acknowledged before the crash
	t0 := e.clock.Now()
	if err := e.st.CreateRun(e.ctx, job.Run{ID: "dead", Rule: "hydropower", Group: "d", State: job.Running,
		Inputs: []job.Input{{Key: "data/d/a.csv", ETag: "1"}}, Created: t0, Started: t0, PID: 99}); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Recover(e.ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := e.m.Step(e.ctx); err != nil || n != 0 {
		t.Fatalf("Step before the settle window = %d, %v; want nothing started yet", n, err)
	}
	e.clock.Advance(settle)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.m.Loop(ctx) }()
	c := e.next() // Loop started it on its own: the FAILED run does not deduplicate it
	if want := inputs("data/d/a.csv", "1"); c.task.Group != "d" || !slices.Equal(c.task.Inputs, want) {
		t.Fatalf("rerun task = group %q inputs %v, want group d with %v", c.task.Group, c.task.Inputs, want)
	}
	c.done <- job.Outcome{}
	var r job.Run
	select {
	case r = <-e.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the rerun was not recorded within 10s")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Loop returned %v", err)
	}
	if r.State != job.Succeeded || r.ID == "dead" || r.Terminated.IsZero() {
		t.Fatalf("rerun = %+v, want a new SUCCEEDED, terminated run", r)
	}
	if reqs, err := e.st.PendingRequests(e.ctx); err != nil || len(reqs) != 0 {
		t.Fatalf("requests after the rerun = %v, %v; want none", reqs, err)
	}
}

func TestLoopCancelsRunsInFlightAndRequestsThemAgain(t *testing.T) {
	e := newEnv(t, nil)
	e.m.SetTick(time.Millisecond)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.m.Loop(ctx) }()
	e.upload("data/d/a.csv", "1")
	e.clock.Advance(settle)
	c := e.next() // Loop started it on its own
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Loop returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Loop did not return within 10s of cancellation")
	}
	r, err := e.st.GetRun(e.ctx, c.task.RunID)
	if err != nil || r.State != job.Failed || !strings.Contains(r.Error, "killed") || r.Terminated.IsZero() {
		t.Fatalf("cancelled run = %+v, %v; want FAILED and terminated", r, err)
	}
	if reqs, err := e.st.PendingRequests(e.ctx); err != nil || len(reqs) != 1 || reqs[0].Group != "d" {
		t.Fatalf("requests after cancellation = %v, %v; want the group requested again", reqs, err)
	}
}

func TestAnEventArrivingWhileInputsAreListedGetsAFollowUpRun(t *testing.T) {
	e := newEnv(t, nil)
	e.upload("data/d/a.csv", "1")
	e.clock.Advance(settle)
	e.objs.after = func() { // b lands just after the listing saw only a
		e.clock.Advance(time.Millisecond)
		e.upload("data/d/b.csv", "1")
	}
	e.step(1)
	c := e.next()
	if want := inputs("data/d/a.csv", "1"); !slices.Equal(c.task.Inputs, want) {
		t.Fatalf("first run inputs = %v, want %v", c.task.Inputs, want)
	}
	e.finish(c, job.Outcome{})
	e.clock.Advance(settle)
	e.step(1)
	c = e.next()
	if want := inputs("data/d/a.csv", "1", "data/d/b.csv", "1"); !slices.Equal(c.task.Inputs, want) {
		t.Fatalf("follow-up inputs = %v, want %v", c.task.Inputs, want)
	}
	e.finish(c, job.Outcome{})
}

func TestATransientFailureIsRetriedAfterABackoffWithoutANewEvent(t *testing.T) {
	e := newEnv(t, nil)
	dead := 0
	e.m.SetOnDead(func(context.Context, job.Run, string) { dead++ })
	defer func() {
		if dead != 0 {
			t.Errorf("OnDeadLetter called %d times for a transient failure that then succeeded, want 0 (run --once must not fail)", dead)
		}
	}()
	e.upload("data/d/a.csv", "1")
	e.clock.Advance(settle)
	e.step(1)
	r := e.finish(e.next(), job.Outcome{ExitCode: fault.ExitTempFail, Err: "store s3://lake: connection refused", Transient: true})
	if r.State != job.Failed {
		t.Fatalf("run = %+v, want FAILED", r)
	}
	e.step(0) // the backoff has not passed
	if keys, since := e.m.Retrying(e.ctx); len(keys) != 1 || keys[0] != "hydropower/d" || !since.Equal(r.Ended) {
		t.Fatalf("Retrying = %v since %v, want [hydropower/d] since %v", keys, since, r.Ended)
	}
	e.clock.Advance(fault.DefaultBackoff)
	e.step(1)
	if r := e.finish(e.next(), job.Outcome{}); r.State != job.Succeeded {
		t.Fatalf("retry = %+v, want SUCCEEDED", r)
	}
	if keys, _ := e.m.Retrying(e.ctx); len(keys) != 0 {
		t.Fatalf("Retrying after success = %v, want none", keys)
	}
	if dls, err := e.st.DeadLetters(e.ctx); err != nil || len(dls) != 0 {
		t.Fatalf("dead letters = %+v, %v; want none", dls, err)
	}
}

func TestTransientFailuresPastRetryForAreDeadLettered(t *testing.T) {
	e := newEnv(t, nil)
	e.m.SetRetry(fault.Retry{For: 10 * time.Second})
	e.upload("data/d/a.csv", "1")
	e.clock.Advance(settle)
	e.step(1)
	e.finish(e.next(), job.Outcome{ExitCode: fault.ExitTempFail, Err: "warehouse down", Transient: true})
	e.clock.Advance(11 * time.Second)
	e.step(1)
	e.finish(e.next(), job.Outcome{ExitCode: fault.ExitTempFail, Err: "warehouse still down", Transient: true})
	dls, err := e.st.DeadLetters(e.ctx)
	if err != nil || len(dls) != 1 {
		t.Fatalf("dead letters = %+v, %v; want one", dls, err)
	}
	if d := dls[0]; d.Target != "job-hydropower" || d.Key != "d" || d.Attempts != 2 || !strings.Contains(d.Reason, "retry_for 10s") || !strings.Contains(d.Reason, "warehouse still down") {
		t.Fatalf("dead letter = %+v", d)
	}
	e.clock.Advance(time.Hour)
	e.step(0) // given up: no more runs until a replay or new input
}

func TestAPermanentFailureIsDeadLetteredAtOnceAndClearedBySuccess(t *testing.T) {
	e := newEnv(t, nil)
	var reasons []string
	e.m.SetOnDead(func(_ context.Context, _ job.Run, reason string) { reasons = append(reasons, reason) })
	e.upload("data/d/a.csv", "1")
	e.clock.Advance(settle)
	e.step(1)
	e.finish(e.next(), job.Outcome{ExitCode: 1, Err: "data/d/a.csv line 3 column Year: abc is not an int32"})
	if len(reasons) != 1 || !strings.Contains(reasons[0], "abc is not an int32") || !strings.Contains(reasons[0], "group d") {
		t.Errorf("OnDeadLetter reasons = %q, want one naming the group and the cause", reasons)
	}
	dls, err := e.st.DeadLetters(e.ctx)
	if err != nil || len(dls) != 1 || dls[0].Kind != deadletter.Job || !strings.Contains(dls[0].Reason, "abc is not an int32") {
		t.Fatalf("dead letters = %+v, %v; want the group", dls, err)
	}
	e.upload("data/d/a.csv", "2") // fixed
	e.clock.Advance(settle)
	e.step(1)
	e.finish(e.next(), job.Outcome{})
	if dls, err := e.st.DeadLetters(e.ctx); err != nil || len(dls) != 0 {
		t.Fatalf("dead letters after success = %+v, %v; want none", dls, err)
	}
}

func TestRecoverRunsAgainAGroupWhoseLastRunFailedUnlessDeadLettered(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Now()
	for _, r := range []job.Run{
		{ID: "a", Rule: "hydropower", Group: "outage", State: job.Failed, Created: now, Ended: now, Error: "store unavailable"},
		{ID: "b", Rule: "hydropower", Group: "bad", State: job.Failed, Created: now, Ended: now, Error: "abc is not an int32"},
		{ID: "c", Rule: "hydropower", Group: "fine", State: job.Failed, Created: now, Ended: now, Error: "old failure"},
		{ID: "d", Rule: "hydropower", Group: "fine", State: job.Succeeded, Created: now.Add(time.Second), Ended: now},
	} {
		if err := e.st.CreateRun(e.ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.st.AddDeadLetter(e.ctx, deadletter.DeadLetter{Target: job.Target("hydropower"), Kind: deadletter.Job, Name: "hydropower", Key: "bad", Reason: "abc", LastFailure: now}); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Recover(e.ctx); err != nil {
		t.Fatal(err)
	}
	reqs, err := e.st.PendingRequests(e.ctx)
	if err != nil || len(reqs) != 1 || reqs[0].Group != "outage" {
		t.Fatalf("requests after Recover = %+v, %v; want only group outage", reqs, err)
	}
}
