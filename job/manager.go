package job

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/deadletter"
	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/lease"
)

// Options configures a Manager. State is required, and Runner unless every
// Definition has its own.
type Options struct {
	State  StateStore
	Runner Runner
	// Clock is the time source for request and run times and for the
	// settle window (default time.Now).
	Clock  func() time.Time
	Logger *slog.Logger
	// Tick is how often Loop looks for requests it was not told about
	// (DefaultTick): those other processes sharing the state recorded, and
	// runs to recover. Requests this Manager records (Offer) wake Loop at
	// once, and Loop wakes by itself when the earliest settle deadline or
	// retry time passes.
	Tick time.Duration
	// Sleep waits d or until ctx is done, returning ctx.Err() in that case
	// (default: a timer). Every wait of Loop is a Sleep, which Offer and the
	// end of a run cancel; tests replace it to advance a fake clock.
	Sleep func(ctx context.Context, d time.Duration) error
	// OnDone is called after a run's final state is recorded (for example
	// to emit events for its outputs). It is not called for runs deduplicated
	// away.
	OnDone func(ctx context.Context, r Run)
	// LogStore keeps a run's log (for example in the object store) and
	// returns its key, recorded as Run.LogKey. Nil keeps no log.
	LogStore func(ctx context.Context, runID string, log []byte) (key string, err error)
	// Retry is the policy for runs that fail transiently (zero: fault's
	// defaults).
	Retry fault.Retry
	// OnDeadLetter is called after a group is dead-lettered (a permanent
	// failure, or retries that ran out), with the reason.
	OnDeadLetter func(ctx context.Context, r Run, reason string)
	// Holder is this Manager's identity in leases (default
	// lease.NewHolder()); LeaseTTL how long its claims last without a
	// heartbeat (DefaultLeaseTTL).
	Holder   string
	LeaseTTL time.Duration
	// StateURL is the state as a job process opens it (sqlite:///… or
	// postgres://…), put in each task's Fence; "" sends no fence.
	StateURL string
}

// DefaultLeaseTTL is how long a run's claim lasts without a heartbeat.
const DefaultLeaseTTL = 15 * time.Second

// errClaimLost is the cancellation cause of a run whose claim was lost.
var errClaimLost = errors.New("claim lost: another process may run this group now")

// Manager schedules and records runs for a set of job definitions.
type Manager struct {
	defs     []*Definition
	byName   map[string]*Definition
	st       StateStore
	now      func() time.Time
	log      *slog.Logger
	tick     time.Duration
	sleep    func(context.Context, time.Duration) error
	onDone   func(context.Context, Run)
	logStore func(context.Context, string, []byte) (string, error)
	retry    fault.Retry
	onDead   func(context.Context, Run, string)
	holder   string
	ttl      time.Duration
	stateURL string

	mu        sync.Mutex
	inflight  map[groupKey]bool
	leases    map[groupKey]*held
	beating   bool // the heartbeat goroutine runs
	lastSweep time.Time
	wg        sync.WaitGroup
	// woken is set by wake; stopWait cancels Loop's current wait, which
	// ends at waitEnd.
	woken    bool
	stopWait context.CancelFunc
	waitEnd  time.Time
}

// held is a claim this Manager holds.
type held struct {
	l      lease.Lease
	runID  string
	cancel context.CancelCauseFunc // cancels the run's compute; nil before it runs
	lost   bool
	// cancelled is set once a cancel request (CancelKey) was acted on.
	cancelled bool
}

type groupKey struct{ rule, group string }

// NewManager checks the definitions and returns a Manager for them.
func NewManager(defs []Definition, opts Options) (*Manager, error) {
	if opts.State == nil {
		return nil, errors.New("job: NewManager needs Options.State")
	}
	m := &Manager{byName: map[string]*Definition{}, st: opts.State, now: opts.Clock,
		log: opts.Logger, tick: opts.Tick, sleep: opts.Sleep, onDone: opts.OnDone, logStore: opts.LogStore, retry: opts.Retry, onDead: opts.OnDeadLetter, inflight: map[groupKey]bool{},
		holder: opts.Holder, ttl: opts.LeaseTTL, stateURL: opts.StateURL, leases: map[groupKey]*held{}}
	if m.holder == "" {
		m.holder = lease.NewHolder()
	}
	if m.ttl <= 0 {
		m.ttl = DefaultLeaseTTL
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.tick <= 0 {
		m.tick = DefaultTick
	}
	if m.sleep == nil {
		m.sleep = fault.Sleep
	}
	for i := range defs {
		d := defs[i]
		switch {
		case d.Name == "":
			return nil, fmt.Errorf("job: definition %d has no name", i)
		case m.byName[d.Name] != nil:
			return nil, fmt.Errorf("job: two jobs are named %q: job names must be unique", d.Name)
		case d.Rule == nil || d.Inputs == nil || d.Task == nil:
			return nil, fmt.Errorf("job %s: definition needs Rule, Inputs and Task", d.Name)
		case d.Settle < 0:
			return nil, fmt.Errorf("job %s: negative settle window %s", d.Name, d.Settle)
		}
		if d.Settle == 0 {
			d.Settle = DefaultSettle
		}
		if d.Runner == nil {
			if opts.Runner == nil {
				return nil, fmt.Errorf("job %s: no runner (set Definition.Runner or Options.Runner)", d.Name)
			}
			d.Runner = opts.Runner
		}
		m.defs = append(m.defs, &d)
		m.byName[d.Name] = &d
	}
	return m, nil
}

// Offer matches rec against every definition and, for each match, records
// a run request for (job, group). It returns after every request is
// committed, so the caller may acknowledge the event then. An error (a key
// that yields no usable group, a state DB failure) means the event must not
// be acknowledged as handled; matches for other definitions are still
// recorded.
func (m *Manager) Offer(ctx context.Context, rec event.Record) (matched bool, err error) {
	var errs []error
	for _, d := range m.defs {
		ok, err := m.offer(ctx, d, rec)
		errs = append(errs, err)
		matched = matched || ok
	}
	return matched, errors.Join(errs...)
}

// ErrUngroupable marks an event whose key the job's rule cannot turn into a
// group: bad input that no retry fixes (the consumer dead-letters it).
var ErrUngroupable = errors.New("the key yields no usable group")

// OfferTo is Offer for the one definition name: for consumers that
// subscribe per job (each job sets its own key encoding).
func (m *Manager) OfferTo(ctx context.Context, name string, rec event.Record) (matched bool, err error) {
	d := m.byName[name]
	if d == nil {
		return false, fmt.Errorf("job: no job named %q", name)
	}
	return m.offer(ctx, d, rec)
}

func (m *Manager) offer(ctx context.Context, d *Definition, rec event.Record) (bool, error) {
	g, ok, err := d.Rule.Match(rec)
	if err != nil {
		return false, fmt.Errorf("job %s: %w: %w", d.Name, ErrUngroupable, err)
	}
	if !ok {
		return false, nil
	}
	if err := m.st.RequestRun(ctx, d.Name, g, m.now()); err != nil {
		return false, fmt.Errorf("job %s: event for %s: %w", d.Name, rec.Version(), err)
	}
	m.log.Debug("job requested", "job", d.Name, "group", g, "object", rec.Version().String())
	m.wakeBy(m.now().Add(d.Settle)) // the group's new settle deadline
	return true, nil
}

// Recover fails the runs that workers which stopped heartbeating left
// STARTING or RUNNING: runs whose claim lease expired, or whose holder is a
// process on this host that no longer exists; never a live holder's. For
// each it takes the claim itself (a new epoch), asks the runner to reap
// any compute the run left on this host (if it is a Reaper), records a run
// request for its (rule, group), marks the run FAILED ("worker lost: ...")
// with ExitCode -1 (unknown) and Ended and Terminated at the recovery time,
// and releases the claim. The event that caused the run was acknowledged
// long ago, so the request is what runs the group again: Loop starts it
// once the settle window has passed, and deduplication does not drop it
// because FAILED runs do not count. The request is committed before the
// run is marked, so a failure between the two leaves the run for the next
// recovery.
//
// If reaping fails the run is still marked FAILED and requested again, but
// Terminated stays unset and Recover returns an error naming the run.
// Recover also requests again the groups whose latest run FAILED (see
// rerunFailed). Call it once at start, before Loop; Loop repeats the
// recovery of lost runs every LeaseTTL.
func (m *Manager) Recover(ctx context.Context) error {
	err := m.recoverLost(ctx)
	m.mu.Lock()
	m.lastSweep = time.Now()
	m.mu.Unlock()
	return errors.Join(err, m.rerunFailed(ctx))
}

// rerunFailed requests again every group of a known job whose latest run
// FAILED and that is not dead-lettered: a run failed by an outage, a
// shutdown or a dead parent runs again at the next start, without waiting
// for a new event. Dead-lettered groups (a permanent failure, or retries
// that ran out) wait for `sluice dlq replay` or new input.
func (m *Manager) rerunFailed(ctx context.Context) error {
	failed, err := m.st.ListRuns(ctx, RunFilter{States: []State{Failed}})
	if err != nil {
		return fmt.Errorf("job: recover: %w", err)
	}
	seen := map[groupKey]bool{}
	var errs []error
	for _, f := range failed {
		k := groupKey{f.Rule, f.Group}
		if seen[k] || m.byName[f.Rule] == nil {
			continue
		}
		seen[k] = true
		latest, err := m.st.ListRuns(ctx, RunFilter{Rule: f.Rule, Group: f.Group, Limit: 1})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(latest) == 0 || latest[0].State != Failed {
			continue
		}
		if _, dead, err := m.st.DeadLetterFor(ctx, Target(f.Rule), f.Group, ""); err != nil || dead {
			errs = append(errs, err)
			continue
		}
		if err := m.st.RequestRun(ctx, f.Rule, f.Group, m.now()); err != nil {
			errs = append(errs, err)
			continue
		}
		m.log.Info("job group requested again: its last run failed", "job", f.Rule, "group", f.Group, "run", latest[0].ID)
	}
	return errors.Join(errs...)
}

// Target is the dead-letter target of job name ("job-NAME"), the same as
// its queue subscription.
func Target(name string) string { return "job-" + name }

// Retrying returns the groups whose runs are being retried after a
// transient failure ("job/group"), and the earliest first failure among
// them (zero when none is).
func (m *Manager) Retrying(ctx context.Context) (keys []string, since time.Time) {
	reqs, err := m.st.PendingRequests(ctx)
	if err != nil {
		return nil, time.Time{}
	}
	for _, r := range reqs {
		if r.Attempts == 0 || m.byName[r.Rule] == nil {
			continue
		}
		keys = append(keys, r.Rule+"/"+r.Group)
		if since.IsZero() || r.FirstFailure.Before(since) {
			since = r.FirstFailure
		}
	}
	return keys, since
}

// Loop schedules runs until ctx is cancelled (see Step). Between passes it
// waits until the earliest settle deadline (or retry time) of a pending
// request passes, until Offer records a request or a run ends, or at most a
// random 50–150% of Tick — the look for requests recorded by other
// processes. Runs in flight are then cancelled, recorded FAILED and
// requested again, and Loop returns nil once all are recorded. Scheduling
// errors are logged and retried on the next pass.
func (m *Manager) Loop(ctx context.Context) error {
	for {
		_, next, err := m.step(ctx)
		if err != nil && ctx.Err() == nil {
			m.log.Error("job scheduler", "err", err)
		}
		m.mu.Lock()
		sweep := time.Since(m.lastSweep) >= m.ttl
		if sweep {
			m.lastSweep = time.Now()
		}
		m.mu.Unlock()
		if sweep {
			if err := m.recoverLost(ctx); err != nil && ctx.Err() == nil {
				m.log.Error("job recovery", "err", err)
			}
		}
		// The random part lets processes sharing a state take turns at
		// claiming the groups they learn about by looking, instead of the
		// one whose looks happen to fall first winning every time.
		wait := m.tick/2 + rand.N(m.tick)
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(m.now()), 0))
		}
		m.pause(ctx, wait)
		if ctx.Err() != nil {
			m.Wait()
			return nil
		}
	}
}

// wake ends Loop's current wait, or its next one if it is not waiting.
func (m *Manager) wake() { m.wakeBy(time.Time{}) }

// wakeBy makes Loop pass by at t (zero: now): it ends Loop's current wait
// if that would end later, or its next one if it is not waiting (the next
// pass may not have seen what changed). A wait that ends earlier is left
// alone: the pass after it sees the change and waits for t then — so a
// burst of events costs one pass per settle deadline, not one per event.
func (m *Manager) wakeBy(t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopWait == nil {
		m.woken = true
		return
	}
	if t.IsZero() || t.Before(m.waitEnd) {
		m.stopWait()
	}
}

// pause waits d with the injected Sleep, or until wake or ctx ends it.
func (m *Manager) pause(ctx context.Context, d time.Duration) {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.mu.Lock()
	if m.woken {
		m.woken = false
		m.mu.Unlock()
		return
	}
	m.stopWait, m.waitEnd = cancel, m.now().Add(d)
	m.mu.Unlock()
	_ = m.sleep(wctx, d)
	m.mu.Lock()
	m.stopWait, m.woken = nil, false
	m.mu.Unlock()
}

// Step is one scheduling pass: for every pending request of a known job
// that has settled and has no run in flight, it lists the group's inputs,
// drops the request if the latest non-failed run had the same inputs, and
// otherwise records a STARTING run and starts it in its own goroutine
// under ctx. Settled groups are handled concurrently (stepParallel at
// once). It returns how many runs it started.
func (m *Manager) Step(ctx context.Context) (started int, err error) {
	started, _, err = m.step(ctx)
	return started, err
}

// step is Step; next is when the earliest request that has not settled yet
// (or waits for a retry) will be due, zero when there is none.
func (m *Manager) step(ctx context.Context) (started int, next time.Time, err error) {
	reqs, err := m.st.PendingRequests(ctx)
	if err != nil {
		return 0, next, fmt.Errorf("job: %w", err)
	}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	sooner := func(due time.Time) {
		if !due.IsZero() && (next.IsZero() || due.Before(next)) {
			next = due
		}
	}
	// Due groups are handled concurrently, at most stepParallel at once:
	// each takes a few state writes, a listing of the store and a process
	// start, and one slow group must not hold up the others.
	sem := make(chan struct{}, stepParallel)
	for _, req := range reqs {
		d := m.byName[req.Rule]
		if d == nil {
			continue // a job no longer in the spec; the request waits for it
		}
		k := groupKey{req.Rule, req.Group}
		if m.inFlight(k) {
			continue // its run's end wakes Loop
		}
		if due := latest(req.LastAt.Add(d.Settle), req.NotBefore); m.now().Before(due) {
			mu.Lock()
			sooner(due)
			mu.Unlock()
			continue
		}
		if !m.claim(k) {
			continue // a run started meanwhile
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ok, due, err := m.handle(ctx, d, req, k)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				started++
			}
			sooner(due)
			errs = append(errs, err)
		}()
	}
	wg.Wait()
	return started, next, errors.Join(errs...)
}

// stepParallel bounds the due groups one step handles at once.
const stepParallel = 4

// handle starts a run for the settled request req of group k, which the
// caller has claimed in this process (claim): it takes the group's lease,
// adopts or fails a run of the group still active, and starts a run unless
// the request changed meanwhile. ok reports whether a run (started or
// adopted) now owns the group's in-flight slot; otherwise the slot is
// released. due is when the request will be due again if it is not yet.
func (m *Manager) handle(ctx context.Context, d *Definition, req RunRequest, k groupKey) (ok bool, due time.Time, err error) {
	l, err := m.st.Acquire(ctx, LeaseName(req.Rule, req.Group), m.holder, m.ttl)
	if err != nil {
		m.release(k) // held: another process runs the group
		if !errors.Is(err, lease.ErrHeld) {
			return false, due, fmt.Errorf("job %s: claim group %s: %w", req.Rule, req.Group, err)
		}
		return false, due, nil
	}
	m.hold(k, l)
	// A run of the group still active under a claim nobody holds (its
	// claimer stopped or died and recovery has not come by yet) is taken
	// over first: a remote one is adopted — the request waits for it to
	// end, so a second compute never works on the group at once — and any
	// other is failed "worker lost".
	adopted, err := m.takeOverActive(ctx, req.Rule, req.Group, l)
	if adopted {
		return true, due, nil
	}
	if err != nil {
		m.unhold(ctx, k)
		m.release(k)
		return false, due, err
	}
	// Re-read the request under the claim: another process may have run
	// the group, or an event refreshed it, since the list above.
	fresh, found, err := m.request(ctx, req.Rule, req.Group)
	switch {
	case err != nil:
	case !found:
	case m.now().Sub(fresh.LastAt) < d.Settle || m.now().Before(fresh.NotBefore):
		due = latest(fresh.LastAt.Add(d.Settle), fresh.NotBefore)
	default:
		ok, err = m.start(ctx, d, fresh, l)
	}
	if !ok {
		m.unhold(ctx, k)
		m.release(k)
	}
	return ok, due, err
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// takeOverActive takes over (takeOver) the latest run of (rule, group) if
// it is STARTING or RUNNING: under claim l, this Manager is not running it.
func (m *Manager) takeOverActive(ctx context.Context, rule, group string, l lease.Lease) (adopted bool, err error) {
	active, err := m.st.ListRuns(ctx, RunFilter{Rule: rule, Group: group, States: []State{Starting, Running}, Limit: 1})
	if err != nil || len(active) == 0 {
		return false, err
	}
	return m.takeOver(ctx, active[0], l)
}

// request returns the pending request of (rule, group), if any.
func (m *Manager) request(ctx context.Context, rule, group string) (RunRequest, bool, error) {
	reqs, err := m.st.PendingRequests(ctx)
	if err != nil {
		return RunRequest{}, false, fmt.Errorf("job: %w", err)
	}
	for _, r := range reqs {
		if r.Rule == rule && r.Group == group {
			return r, true, nil
		}
	}
	return RunRequest{}, false, nil
}

func (m *Manager) claim(k groupKey) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inflight[k] {
		return false
	}
	m.inflight[k] = true
	return true
}

func (m *Manager) inFlight(k groupKey) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.inflight[k]
}

func (m *Manager) release(k groupKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.inflight, k)
}

// start handles one settled request; ok reports whether a run goroutine
// now owns the group's in-flight slot.
func (m *Manager) start(ctx context.Context, d *Definition, req RunRequest, l lease.Lease) (ok bool, err error) {
	inputs, lerr := d.Inputs(ctx, req.Group)
	if lerr != nil && ctx.Err() != nil {
		return false, nil // shutting down; the request stays
	}
	inputs = sortInputs(inputs)
	if lerr == nil {
		prev, err := m.st.ListRuns(ctx, RunFilter{Rule: d.Name, Group: req.Group,
			States: []State{Starting, Running, Succeeded}, Limit: 1})
		if err != nil {
			return false, fmt.Errorf("job %s: group %s: %w", d.Name, req.Group, err)
		}
		if len(prev) > 0 && SameInputs(prev[0].Inputs, inputs) {
			if _, err := m.st.ClearRequest(ctx, d.Name, req.Group, req.LastAt); err != nil {
				return false, fmt.Errorf("job %s: %w", d.Name, err)
			}
			m.log.Info("job run not needed: inputs unchanged since run", "job", d.Name, "group", req.Group, "run", prev[0].ID)
			return false, nil
		}
	}
	now := m.now()
	run := Run{ID: newID(), Rule: d.Name, Group: req.Group, State: Starting, Inputs: inputs, Created: now,
		Claimer: l.Holder, Epoch: l.Epoch}
	var task Task
	var failure error // why the run failed before starting
	if lerr != nil {
		failure = lerr
		run.Error = fmt.Sprintf("list inputs of group %s: %v", req.Group, lerr)
	} else if task, err = d.Task(req.Group, inputs); err != nil {
		failure = fault.Permanent(err)
		run.Error = fmt.Sprintf("prepare task: %v", err)
	}
	if run.Error != "" {
		run.State, run.Ended, run.Terminated = Failed, now, now
	}
	if err := m.st.CreateRun(ctx, run); err != nil {
		if m.fenced(run, err) {
			return false, nil
		}
		return false, fmt.Errorf("job %s: %w", d.Name, err)
	}
	if _, err := m.st.ClearRequest(ctx, d.Name, req.Group, req.LastAt); err != nil {
		// The run is recorded; a surviving request only means one more
		// (deduplicated) look at the group later.
		m.log.Error("job request not cleared", "job", d.Name, "group", req.Group, "err", err)
	}
	if run.State == Failed {
		m.log.Error("job run failed before starting", "job", d.Name, "group", req.Group, "run", run.ID, "err", run.Error)
		if fault.IsTransient(failure) {
			m.retryLater(ctx, run, req) // the store could not be listed: try again
		} else {
			m.deadLetter(ctx, run, req.Attempts+1, req.FirstFailure, run.Error)
		}
		m.finish(ctx, run)
		return false, nil
	}
	task = m.prepare(task, run, l)
	m.log.Info("job run starting", "job", d.Name, "group", req.Group, "run", run.ID, "inputs", len(inputs))
	m.wg.Add(1)
	go m.execute(ctx, d, run, task, req)
	return true, nil
}

// prepare fills in what a task takes from its run and claim.
func (m *Manager) prepare(task Task, run Run, l lease.Lease) Task {
	task.RunID, task.Rule, task.Group, task.Inputs = run.ID, run.Rule, run.Group, run.Inputs
	task.Created, task.Deadline, task.Remote = run.Created, deadline(run.Created, task.Timeout), run.Remote
	task.Fence = nil
	if m.stateURL != "" {
		task.Fence = &Fence{StateURL: m.stateURL, Lease: l.Name, Holder: l.Holder, Epoch: l.Epoch}
	}
	return task
}

// execute runs task on d's runner and records the run's lifecycle.
func (m *Manager) execute(ctx context.Context, d *Definition, run Run, task Task, req RunRequest) {
	lastAt := req.LastAt
	k := groupKey{run.Rule, run.Group}
	defer m.wg.Done()
	defer m.wake() // a request that waited for this run may start now
	defer m.release(k)
	rec := context.WithoutCancel(ctx)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	m.running(k, run.ID, cancel)

	var mu sync.Mutex
	var once sync.Once
	rctx := withStarted(ctx, func(pid int) {
		once.Do(func() {
			mu.Lock()
			defer mu.Unlock()
			if run.State == Running {
				return // adopted: it was running already
			}
			run.State, run.Started, run.PID = Running, m.now(), pid
			if err := m.st.UpdateRun(rec, run); err != nil && !m.fenced(run, err) {
				m.log.Error("job run state not recorded", "run", run.ID, "state", Running, "err", err)
			}
		})
	})
	rctx = withRemote(rctx, func(id string) {
		mu.Lock()
		defer mu.Unlock()
		if run.Remote == id || run.State == Succeeded || run.State == Failed {
			return
		}
		run.Remote = id
		if err := m.st.UpdateRun(rec, run); err != nil && !m.fenced(run, err) {
			m.log.Error("job run's remote compute not recorded", "run", run.ID, "remote", id, "err", err)
		}
		m.log.Info("job run's remote compute", "job", run.Rule, "group", run.Group, "run", run.ID, "remote", id)
	})
	out, err := d.Runner.Run(rctx, task)
	once.Do(func() {}) // a late NotifyStarted must not move the run back to RUNNING
	mu.Lock()
	defer mu.Unlock()
	_, remote := d.Runner.(Remote)
	if remote && err != nil && ctx.Err() != nil && !errors.Is(context.Cause(ctx), ErrCancelled) {
		// Stopped following (shutdown, a lost claim) with an error on the
		// way out: the compute's fate is unknown, so it is left to an
		// adopter rather than recorded.
		err = fmt.Errorf("%w (%v)", ErrDetached, err)
	}
	if errors.Is(err, ErrDetached) {
		// The remote compute keeps running; releasing the claim lets a
		// live process (this one after a restart, or another) adopt it.
		m.unhold(rec, k)
		m.log.Warn("stopped following the job run; its remote compute keeps running and a live sluice process adopts it",
			"job", run.Rule, "group", run.Group, "run", run.ID, "remote", run.Remote, "cause", context.Cause(ctx))
		return
	}
	now := m.now()
	run.Ended, run.Terminated = now, now
	run.ExitCode, run.Outputs, run.ComputeSeconds, run.Instances = out.ExitCode, out.Outputs, out.ComputeSeconds, max(out.Instances, 1)
	switch {
	case err != nil:
		run.State, run.Error = Failed, err.Error()
	case out.Err != "":
		run.State, run.Error = Failed, out.Err
	case out.ExitCode != 0:
		run.State, run.Error = Failed, fmt.Sprintf("job exited with status %d", out.ExitCode)
	default:
		run.State = Succeeded
	}
	if _, lost := m.claimOf(k); lost {
		m.unhold(rec, k)
		m.log.Error("claim lost: the run's end is not recorded", "job", run.Rule, "group", run.Group, "run", run.ID, "err", run.Error)
		return
	}
	if err := m.recordEnd(rec, k, run); err != nil {
		if m.fenced(run, err) {
			m.unhold(rec, k)
			return
		}
		m.log.Error("job run state not recorded", "run", run.ID, "state", string(run.State), "err", err)
		if remote {
			// The run stays active in the state: an adopter follows its
			// (ended) compute again and records the end once, with its
			// outputs' events; doing more here would do it twice.
			m.unhold(rec, k)
			return
		}
	}
	cancelled := errors.Is(context.Cause(ctx), ErrCancelled)
	if cancelled {
		if st, ok := m.st.(interface {
			SetSetting(ctx context.Context, k, v string) error
		}); ok {
			_ = st.SetSetting(rec, CancelKey(run.ID), "") // done: the request is spent
		}
	}
	switch {
	case run.State == Failed && cancelled:
		m.deadLetter(rec, run, req.Attempts+1, req.FirstFailure, "cancelled by `sluice jobs cancel`: "+run.Error)
	case run.State == Failed && ctx.Err() != nil:
		// Cancelled by shutdown: ask again so the next start runs it.
		if err := m.st.RequestRun(rec, run.Rule, run.Group, lastAt); err != nil {
			m.log.Error("job request not restored after cancellation", "run", run.ID, "err", err)
		}
	case run.State == Failed && ((err != nil && fault.IsTransient(err)) || out.Transient):
		m.retryLater(rec, run, req)
	case run.State == Failed:
		m.deadLetter(rec, run, req.Attempts+1, req.FirstFailure, run.Error)
	default:
		if _, err := m.st.ResolveDeadLetter(rec, Target(run.Rule), run.Group, ""); err != nil {
			m.log.Warn("could not clear the dead letter of a group that now succeeded", "job", run.Rule, "group", run.Group, "err", err)
		}
		if err := m.st.ResetRetry(rec, run.Rule, run.Group); err != nil {
			m.log.Warn("could not reset the retry count of a group that now succeeded", "job", run.Rule, "group", run.Group, "err", err)
		}
	}
	if len(out.Log) > 0 && m.logStore != nil {
		key, err := m.logStore(rec, run.ID, out.Log)
		if err != nil {
			m.log.Error("job log not stored", "run", run.ID, "err", err)
		} else {
			run.LogKey = key
			if err := m.st.UpdateRun(rec, run); err != nil && !m.fenced(run, err) {
				m.log.Error("job log key not recorded", "run", run.ID, "err", err)
			}
		}
	}
	m.unhold(rec, k)
	lvl := slog.LevelInfo
	if run.State == Failed {
		lvl = slog.LevelError
	}
	m.log.Log(rec, lvl, "job run "+strings.ToLower(string(run.State)), "job", run.Rule, "group", run.Group, "run", run.ID,
		"compute_seconds", run.ComputeSeconds, "outputs", len(run.Outputs), "err", run.Error)
	m.finish(rec, run)
}

// endWriteAttempts bounds how often the final write of a run is tried.
const endWriteAttempts = 5

// recordEnd writes run's final state, retrying a failing write (a dropped
// connection, a failover) while the claim holds: a run left RUNNING after
// its claim is released would be failed "worker lost" and run again by the
// next recovery in any process.
func (m *Manager) recordEnd(ctx context.Context, k groupKey, run Run) error {
	for attempt := 1; ; attempt++ {
		err := m.st.UpdateRun(ctx, run)
		if err == nil || errors.Is(err, lease.ErrLost) || errors.Is(err, ErrBadTransition) || errors.Is(err, ErrRunNotFound) || attempt >= endWriteAttempts {
			return err
		}
		if _, lost := m.claimOf(k); lost {
			return err
		}
		m.log.Warn("job run state not recorded; trying again", "run", run.ID, "state", string(run.State), "attempt", attempt, "err", err)
		if fault.Sleep(ctx, min(m.retry.Delay(attempt), m.ttl/3)) != nil {
			return err
		}
	}
}

// retryLater keeps the request of a run that failed transiently, to run
// again after a backoff, or dead-letters the group once retries have run
// out (Options.Retry).
func (m *Manager) retryLater(ctx context.Context, run Run, req RunRequest) {
	attempts, first := req.Attempts+1, req.FirstFailure
	if first.IsZero() {
		first = run.Ended
	}
	now := m.now()
	if m.retry.GiveUp(first, now) {
		m.deadLetter(ctx, run, attempts, first, fmt.Sprintf("still failing after %d attempts over %s (retry_for %s): %s",
			attempts, now.Sub(first).Round(time.Second), m.retry.Budget(), run.Error))
		return
	}
	delay := m.retry.Delay(attempts)
	if err := m.st.RetryRequest(ctx, run.Rule, run.Group, req.LastAt, now.Add(delay), first, attempts); err != nil {
		m.log.Error("job retry not recorded; the next start runs the group again", "run", run.ID, "err", err)
		return
	}
	m.log.Warn("job run failed transiently; retrying", "job", run.Rule, "group", run.Group, "run", run.ID, "attempt", attempts, "in", delay.Round(time.Millisecond))
}

// deadLetter records the group of a run that failed for good.
func (m *Manager) deadLetter(ctx context.Context, run Run, attempts int, first time.Time, reason string) {
	if first.IsZero() {
		first = run.Ended
	}
	id, err := m.st.AddDeadLetter(ctx, deadletter.DeadLetter{Target: Target(run.Rule), Kind: deadletter.Job, Name: run.Rule,
		Key: run.Group, Reason: fmt.Sprintf("run %s: %s", run.ID, reason), Attempts: attempts, FirstFailure: first, LastFailure: m.now()})
	if err != nil {
		m.log.Error("job dead letter not recorded; the next start runs the group again", "run", run.ID, "err", err)
		return
	}
	m.log.Error("job group dead-lettered", "id", id, "job", run.Rule, "group", run.Group, "run", run.ID)
	if m.onDead != nil {
		m.onDead(ctx, run, fmt.Sprintf("job %s run %s for group %s FAILED and was dead-lettered (`sluice dlq show %d`): %s", run.Rule, run.ID, run.Group, id, reason))
	}
}

func (m *Manager) finish(ctx context.Context, run Run) {
	if m.onDone != nil {
		m.onDone(context.WithoutCancel(ctx), run)
	}
}

// Wait blocks until every run started so far has been recorded.
func (m *Manager) Wait() { m.wg.Wait() }

// Idle reports whether no request of a known job is pending and no run is
// in flight (for draining in `run --once`).
func (m *Manager) Idle(ctx context.Context) (bool, error) {
	m.mu.Lock()
	busy := len(m.inflight) > 0
	m.mu.Unlock()
	if busy {
		return false, nil
	}
	reqs, err := m.st.PendingRequests(ctx)
	if err != nil {
		return false, fmt.Errorf("job: %w", err)
	}
	for _, r := range reqs {
		if m.byName[r.Rule] != nil {
			return false, nil
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.inflight) == 0, nil
}

func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

func sortInputs(in []Input) []Input {
	out := slices.Clone(in)
	if out == nil {
		out = []Input{}
	}
	slices.SortFunc(out, func(a, b Input) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return strings.Compare(a.ETag, b.ETag)
	})
	return slices.Compact(out)
}

// SameInputs reports whether a and b hold the same object versions (key +
// ETag), in any order: what decides that a group needs no new run.
func SameInputs(a, b []Input) bool {
	return slices.Equal(sortInputs(a), sortInputs(b))
}
