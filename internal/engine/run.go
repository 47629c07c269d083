package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/lease"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/queue"
	"github.com/sluicehq/sluice/source/httpsource"
	"github.com/sluicehq/sluice/store"
)

// Result is what Run did, for reports.
type Result struct {
	Started, Finished time.Time
	// SourceErrors holds one error per failed source run.
	SourceErrors []error
	// Failures holds the reasons of work dead-lettered during the run.
	Failures []string
	// Pending, after a once-run that stopped at MaxWait, names the work
	// still waiting for an unavailable service (nothing of it was
	// dead-lettered); Waiting is how much more the queues held.
	Pending []string
	Waiting int
	// Ignored lists files in a local store that cannot become objects
	// (found by a once-run's scan), with the reason.
	Ignored []string
}

// ErrStillPending is Result.Err's error when a once-run stopped at its
// MaxWait with work still waiting for a service; the CLI exits with
// fault.ExitTempFail (75) for it.
var ErrStillPending = errors.New("work is still waiting for an unavailable service")

// Err summarises a once-run: nil only if every source and every event
// succeeded and nothing is left pending.
func (r Result) Err() error {
	var errs []error
	errs = append(errs, r.SourceErrors...)
	for _, f := range r.Failures {
		errs = append(errs, errors.New(f))
	}
	if len(r.Ignored) > 0 {
		errs = append(errs, fmt.Errorf("%d file(s) in the store cannot be objects and were not loaded (%s); rename or remove them — `sluice ls --ignored` lists them", len(r.Ignored), abbreviate(r.Ignored, 3)))
	}
	if len(r.Pending) > 0 || r.Waiting > 0 {
		errs = append(errs, fmt.Errorf("%w: %d object(s) or group(s) being retried (%s) and %d more message(s) queued; nothing was dead-lettered — run again once the service is back",
			ErrStillPending, len(r.Pending), abbreviate(r.Pending, 5), r.Waiting))
	}
	return errors.Join(errs...)
}

func abbreviate(keys []string, n int) string {
	if len(keys) <= n {
		return strings.Join(keys, ", ")
	}
	return strings.Join(keys[:n], ", ") + fmt.Sprintf(" and %d more", len(keys)-n)
}

// DefaultMaxWait bounds how long a once-run waits for an unavailable
// service before it exits, leaving the work queued.
const DefaultMaxWait = 10 * time.Minute

// RunOptions configure Run.
type RunOptions struct {
	// Once runs each source once, scans the local store once, processes
	// every pending event and returns; otherwise Run runs until ctx is
	// cancelled.
	Once bool
	// MaxWait bounds how long a once-run waits while work is being retried
	// for an unavailable service (default DefaultMaxWait); then Run returns
	// with Result.Pending set and that work still queued.
	MaxWait time.Duration
	// DrainOnly runs no sources, does not scan the store and does not
	// reconcile: a once-run then only processes what is queued or
	// requested (replays).
	DrainOnly bool
	// Worker runs the consumers only — loads, job triggers, the job
	// scheduler and its runs — and none of the single-instance duties
	// (sources, the local store watcher, reconcile): `sluice worker`.
	Worker bool
}

// Run runs the pipeline (see RunOptions): a reconcile at start (before
// consuming) and every Spec.ReconcileEvery (see Reconcile), sources on
// their schedules, a watcher on local stores, the loads' and jobs'
// consumers and the job scheduler.
func (e *Engine) Run(ctx context.Context, opts RunOptions) (Result, error) {
	once := opts.Once
	if opts.MaxWait <= 0 {
		opts.MaxWait = DefaultMaxWait
	}
	res := Result{Started: e.now()}
	spec := e.cfg.Spec
	var loaders []*loader
	for _, l := range spec.Loads {
		ld, err := e.newLoader(l)
		if err != nil {
			return res, err
		}
		if err := e.WH.EnsureTable(ctx, ld.table); err != nil {
			return res, err
		}
		loaders = append(loaders, ld)
	}
	var importers []*httpsource.Importer
	for _, s := range spec.Sources {
		im, err := e.newImporter(s)
		if err != nil {
			return res, err
		}
		importers = append(importers, im)
	}

	jobs, err := e.newJobManager()
	if err != nil {
		return res, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	if jobs != nil {
		// Under runCtx: runs adopted here stop being followed with the rest.
		if err := jobs.Recover(runCtx); err != nil {
			stop()
			jobs.Wait() // runs adopted before the error detach
			return res, err
		}
	}
	var wg sync.WaitGroup
	var subs []*queue.Subscription
	if jobs != nil {
		for _, j := range spec.Jobs {
			sub, err := e.Topic.Subscribe(ctx, "job-"+j.Name, &e.qopts)
			if err != nil {
				return res, err
			}
			defer sub.Close()
			subs = append(subs, sub)
			wg.Add(1)
			go func() {
				defer wg.Done()
				e.consume(runCtx, sub, func(ctx context.Context, m *queue.Message) { e.handleJobEvent(ctx, j, jobs, m) })
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := jobs.Loop(runCtx); err != nil && runCtx.Err() == nil {
				e.log.Error("job scheduler stopped", "err", err)
			}
		}()
	}
	for _, ld := range loaders {
		for i := 0; i < e.cfg.Workers; i++ {
			sub, err := e.Topic.Subscribe(ctx, ld.subscription(), &e.qopts)
			if err != nil {
				return res, err
			}
			defer sub.Close()
			if i == 0 {
				subs = append(subs, sub)
			}
			wg.Add(1)
			go func() { defer wg.Done(); e.consume(runCtx, sub, ld.handle) }()
		}
	}
	defer e.watchSubscriptions(subs)()
	if e.inbox != nil {
		wg.Add(1)
		go func() { defer wg.Done(); e.bridge(runCtx) }()
	}
	defer wg.Wait()
	defer stop()

	watchOpts := &store.WatchOptions{Interval: e.cfg.ScanInterval, Settle: e.cfg.Settle, Clock: e.now, Logger: e.log}
	local := e.Store.LocalDir() != "" && !opts.Worker
	if local {
		// Only the owner sweeps: every other command opens the store
		// without walking it.
		if err := e.Store.SweepTemp(ctx); err != nil {
			return res, err
		}
	}
	if opts.Worker {
		importers = nil
	}
	if once {
		if local && !opts.DrainOnly {
			scan, err := e.Store.ScanOnce(ctx, e.State, watchOpts, e.emitFound)
			for _, f := range scan.Ignored {
				res.Ignored = append(res.Ignored, fmt.Sprintf("%s: %s", f.PrintablePath(), f.Reason))
			}
			if err != nil {
				return res, fmt.Errorf("scan local store: %w", err)
			}
		}
		for i, im := range importers {
			if opts.DrainOnly {
				break
			}
			if err := e.runSource(ctx, spec.Sources[i].Name, im); err != nil {
				res.SourceErrors = append(res.SourceErrors, err)
			}
		}
		pending, waiting, err := e.drain(ctx, subs, jobs, opts.MaxWait)
		if err != nil {
			return res, err
		}
		if len(pending) == 0 && waiting == 0 && !opts.DrainOnly && !opts.Worker {
			// Once every event that was announced is handled, what is
			// still missing never had an event (a lost notification, an
			// object older than the queue): reconcile re-drives exactly
			// that, and the work drains like the rest. Reconciling
			// before draining would give queued events a twin.
			if e.reconcileOnce(ctx, ReconcileOptions{}) > 0 {
				if pending, waiting, err = e.drain(ctx, subs, jobs, opts.MaxWait); err != nil {
					return res, err
				}
			}
		}
		res.Pending, res.Waiting = pending, waiting
		stop()
		wg.Wait()
		res.Failures = e.Failures()
		res.Finished = e.now()
		return res, nil
	}

	if local {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.duty(runCtx, "watch", false, func(ctx context.Context, _ func() lease.Lease) error {
				return e.Store.Watch(ctx, e.State, watchOpts, e.emitFound)
			})
		}()
	}
	if !opts.Worker {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.duty(runCtx, "reconcile", true, func(ctx context.Context, _ func() lease.Lease) error {
				// As in a once-run: first let what was announced drain
				// (or a reconcile period pass), so that queued events
				// get no twin.
				e.waitQuiet(ctx, subs, e.cfg.Spec.ReconcileEvery)
				e.reconcileOnce(ctx, ReconcileOptions{})
				e.reconcileLoop(ctx)
				return nil
			})
		}()
		e.startRetention(runCtx, &wg)
	}
	for i, im := range importers {
		s := spec.Sources[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.duty(runCtx, "source/"+s.Name, s.Every <= 0, func(ctx context.Context, held func() lease.Lease) error {
				return e.sourceDuty(ctx, s, im, held)
			})
		}()
	}
	<-ctx.Done()
	res.Finished = e.now()
	return res, nil
}

// drain waits until no subscription has pending messages and no job is
// pending or running, twice in a row. When work has been retried for an
// unavailable service for longer than maxWait, it stops waiting and
// returns that work and how many more messages are queued.
func (e *Engine) drain(ctx context.Context, subs []*queue.Subscription, jobs *job.Manager, maxWait time.Duration) (pending []string, waiting int, err error) {
	quiet := 0
	var unreachable time.Time // since when the queue or state could not be asked
	for quiet < 2 {
		n := 0
		var askErr error
		if jobs != nil {
			idle, err := jobs.Idle(ctx)
			if err != nil {
				askErr = err
			} else if !idle {
				n++
			}
		}
		for _, s := range subs {
			p, err := s.Pending(ctx)
			if err != nil {
				askErr = err
				continue
			}
			n += p
		}
		if e.inbox != nil {
			// Notifications not yet bridged are work too.
			if p, err := e.inbox.Pending(ctx); err != nil {
				askErr = err
			} else {
				n += p
			}
		}
		keys, since := e.Stalled()
		if askErr != nil {
			// The queue or the state is unavailable: that is an outage
			// too, waited for up to maxWait like any other.
			if unreachable.IsZero() {
				unreachable = e.now()
				e.log.Warn("cannot tell what is pending; waiting", "err", askErr)
			}
			n++
			keys = append(keys, askErr.Error())
			if since.IsZero() || unreachable.Before(since) {
				since = unreachable
			}
		} else {
			unreachable = time.Time{}
		}
		if n == 0 {
			quiet++
		} else {
			quiet = 0
		}
		if jobs != nil {
			jk, js := jobs.Retrying(ctx)
			keys = append(keys, jk...)
			if !js.IsZero() && (since.IsZero() || js.Before(since)) {
				since = js
			}
		}
		if n > 0 && !since.IsZero() && e.now().Sub(since) >= maxWait {
			e.log.Warn("stopping: work is still waiting for an unavailable service", "waited", e.now().Sub(since).Round(time.Second), "max_wait", maxWait, "retrying", len(keys))
			return keys, max(n-len(keys), 0), nil
		}
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil, 0, nil
}

// waitQuiet waits until no subscription and no notification inbox has
// pending messages, or limit passes (0: no limit), or ctx ends.
func (e *Engine) waitQuiet(ctx context.Context, subs []*queue.Subscription, limit time.Duration) {
	start := e.now()
	for {
		n := 0
		for _, s := range subs {
			p, err := s.Pending(ctx)
			if err != nil {
				p = 1
			}
			n += p
		}
		if e.inbox != nil {
			if p, err := e.inbox.Pending(ctx); err != nil || p > 0 {
				n++
			}
		}
		if n == 0 || (limit > 0 && e.now().Sub(start) >= limit) {
			return
		}
		if fault.Sleep(ctx, time.Second) != nil {
			return
		}
	}
}

// lander lands source pages into the store and emits their events.
type lander struct{ e *Engine }

func (l lander) Land(ctx context.Context, key string, body io.Reader, contentType string) error {
	if _, err := l.e.write(ctx, key, body, contentType); err != nil {
		return err
	}
	l.e.Stats.Landed.Add(1)
	return nil
}

// Put writes an object and publishes its event, as the owner does for
// every object it writes.
func (e *Engine) Put(ctx context.Context, key string, body []byte, contentType string) (store.Object, error) {
	return e.write(ctx, key, bytes.NewReader(body), contentType)
}

// write streams an object in and publishes its event, as Put does.
func (e *Engine) write(ctx context.Context, key string, body io.Reader, contentType string) (store.Object, error) {
	o, err := e.Store.Write(ctx, key, body, contentType)
	if err != nil {
		return o, err
	}
	return o, e.Announce(ctx, o)
}

// Announce publishes the event of o, an object sluice has just written,
// and marks it seen in a local store so that the watcher does not announce
// it a second time — unless the store's server announces it (the spec has
// notifications:). The event goes out the moment the write is complete, not
// when the watcher would find it. If publishing fails, o is not marked seen,
// so in a local store the watcher announces it once it has settled.
func (e *Engine) Announce(ctx context.Context, o store.Object) error {
	if e.cfg.Spec.Notifications != nil {
		return nil // the store's server announces it: one event per write
	}
	if err := e.Emit(ctx, o); err != nil {
		return err
	}
	if e.Store.LocalDir() != "" {
		// The watcher need not announce it again.
		_ = e.State.MarkSeen(ctx, o.Key, store.Fingerprint(o), o.ETag)
	}
	return nil
}

func (e *Engine) runSource(ctx context.Context, name string, im *httpsource.Importer) error {
	return e.runSourceAt(ctx, name, im, e.now())
}

// runSourceAt imports the source's tick at (see httpsource.Importer.RunAt).
func (e *Engine) runSourceAt(ctx context.Context, name string, im *httpsource.Importer, at time.Time) error {
	r, err := im.RunAt(ctx, lander{e}, at)
	e.sourceRan(ctx, name, r, err)
	if err != nil {
		return fmt.Errorf("source %s: %w", name, err)
	}
	e.log.Info("source run done", "source", name, "pages", len(r.Pages), "unchanged", r.Unchanged, "retries", r.Retries, "bytes", r.Bytes, "took", r.Duration.Round(time.Millisecond))
	return nil
}

// newImporter builds a source's importer. The state is its memory: the
// validators and body hashes of the pages it landed (conditional
// requests, skip_unchanged) outlive the process and are shared by every
// process that may hold the source's lease.
func (e *Engine) newImporter(s pipeline.Source) (*httpsource.Importer, error) {
	return httpsource.New(s.HTTP, &httpsource.Options{Clock: e.now, Memory: e.State, Observer: sourceObserver{e},
		Logger: e.log.With("source", s.Name)})
}
