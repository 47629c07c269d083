package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/console"
	"github.com/sluicehq/sluice/source/httpsource"

	"github.com/sluicehq/sluice/queue"
	"github.com/sluicehq/sluice/store"
)

// ReadyChecks are the engine's readiness checks for /readyz: the store,
// the queue, the warehouse and the state, each one cheap request.
func (e *Engine) ReadyChecks() map[string]func(ctx context.Context) error {
	checks := map[string]func(ctx context.Context) error{
		"state": func(ctx context.Context) error {
			_, err := e.State.Setting(ctx, "pipeline")
			return err
		},
		"store": func(ctx context.Context) error {
			_, err := e.Store.Stat(ctx, LogPrefix+"readyz")
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			return err
		},
		"queue": func(ctx context.Context) error {
			sub := e.firstSubscription()
			if sub == nil {
				return nil // not consuming yet: nothing to check beyond Open
			}
			if _, err := sub.Pending(ctx); err != nil {
				return fmt.Errorf("%s: %w", e.Topic.Name(), err)
			}
			return nil
		},
	}
	if e.WH != nil {
		checks["warehouse"] = func(ctx context.Context) error {
			_, _, err := e.WH.Query(ctx, "select 1")
			return err
		}
	}
	return checks
}

// knownToMetrics creates the metrics' series of the spec's loads, jobs and
// sources, and the gauge of open dead letters.
func (e *Engine) knownToMetrics() {
	m := e.cfg.Metrics
	if m == nil {
		return
	}
	var loads, jobs, sources []string
	for _, l := range e.cfg.Spec.Loads {
		loads = append(loads, l.Name)
	}
	for _, j := range e.cfg.Spec.Jobs {
		jobs = append(jobs, j.Name)
	}
	for _, s := range e.cfg.Spec.Sources {
		sources = append(sources, s.Name)
	}
	m.Known(loads, jobs, sources)
	m.OpenDeadLetters(func(ctx context.Context) (int, error) {
		_, n, err := e.State.RecentDeadLetters(ctx, 1)
		return n, err
	})
}

// watchSubscriptions records the subscriptions Run consumes, for the
// readiness check and the queue depth metrics, until the returned function
// forgets them (when Run returns and closes them).
func (e *Engine) watchSubscriptions(subs []*queue.Subscription) (forget func()) {
	e.mu.Lock()
	e.subs = subs
	e.mu.Unlock()
	for _, s := range subs {
		name := s.Name()
		e.cfg.Metrics.QueueDepth(name, func(ctx context.Context) (int, error) { return e.pending(ctx, name) })
	}
	return func() {
		e.mu.Lock()
		e.subs = nil
		e.mu.Unlock()
	}
}

// errNotConsuming is pending's answer while Run consumes nothing.
var errNotConsuming = errors.New("not consuming")

// pending is the depth of the subscription called name that Run consumes.
func (e *Engine) pending(ctx context.Context, name string) (int, error) {
	e.mu.Lock()
	var sub *queue.Subscription
	for _, s := range e.subs {
		if s.Name() == name {
			sub = s
		}
	}
	e.mu.Unlock()
	if sub == nil {
		return 0, errNotConsuming
	}
	return sub.Pending(ctx)
}

func (e *Engine) firstSubscription() *queue.Subscription {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.subs) == 0 {
		return nil
	}
	return e.subs[0]
}

// leftUnacked records work a shutdown interrupted: its message stays
// unacknowledged and is delivered again (to this process after a restart,
// or to another worker), where the ledger keeps it exactly once.
func (e *Engine) leftUnacked(what string) {
	e.mu.Lock()
	e.unacked = append(e.unacked, what)
	e.mu.Unlock()
}

// LogShutdown logs, once Run has returned, what the process did and what
// it left: the work in flight whose messages go back to the queue, and the
// job groups requested again.
func (e *Engine) LogShutdown(res Result) {
	e.mu.Lock()
	left := append([]string(nil), e.unacked...)
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	requested := -1
	if reqs, err := e.State.PendingRequests(ctx); err == nil {
		requested = len(reqs)
	}
	s := &e.Stats
	e.log.Info("sluice stopped",
		"in_flight_left_for_redelivery", len(left), "left", abbreviate(left, 10),
		"job_groups_requested", requested,
		"objects_loaded", s.ObjectsLoaded.Load(), "rows", s.Rows.Load(), "dead_lettered", s.DeadLettered.Load(),
		"job_runs_succeeded", s.JobsSucceeded.Load(), "job_runs_failed", s.JobsFailed.Load(),
		"ran", res.Finished.Sub(res.Started).Round(time.Second))
}

// sourceObserver feeds the sources' HTTP responses, retries and limits to
// the metrics and the run's counts.
type sourceObserver struct{ e *Engine }

func (o sourceObserver) Response(source string, status int) { o.e.cfg.Metrics.Response(source, status) }

func (o sourceObserver) Retry(source string) {
	o.e.Stats.HTTPRetries.Add(1)
	o.e.cfg.Metrics.Retry(source)
}

func (o sourceObserver) LimitHit(source, limit string) {
	o.e.Stats.LimitsHit.Add(1)
	o.e.cfg.Metrics.LimitHit("http." + limit)
}

// sourceRan records a source run: its outcome in the metrics and the
// counts, and its status in the state for the console (last run, pages,
// error).
func (e *Engine) sourceRan(ctx context.Context, name string, r httpsource.Result, err error) {
	e.Stats.Unchanged.Add(int64(r.Unchanged))
	outcome := "landed"
	switch {
	case err != nil:
		outcome = "failed"
	case len(r.Pages) == 0 && r.Unchanged > 0:
		outcome = "unchanged"
	case len(r.Pages) == 0:
		outcome = "empty"
	}
	e.cfg.Metrics.Fetched(name, outcome)
	st := console.SourceStatus{At: e.now(), Pages: len(r.Pages), Bytes: r.Bytes, Landed: len(r.Pages), Unchanged: r.Unchanged, Retries: r.Retries}
	if err != nil {
		st.Err = err.Error()
	}
	if b, jerr := json.Marshal(st); jerr == nil && ctx.Err() == nil {
		if serr := e.State.SetSetting(ctx, console.SourceStatusKey(name), string(b)); serr != nil {
			e.log.Debug("source status not recorded", "source", name, "err", serr)
		}
	}
}

// ProgressEvery is how often long work (a big object's load) logs that it
// is still going, with how far it got.
const ProgressEvery = 30 * time.Second

// progress logs msg with args, and count's value as name, every
// ProgressEvery until the returned stop is called: a load of a large object
// shows that it moves, and how fast.
func (e *Engine) progress(ctx context.Context, msg, name string, count func() int64, args ...any) (stop func()) {
	start := time.Now()
	return repeat(ctx, ProgressEvery, func() {
		n := count()
		e.log.Info(msg, append(args, name, n, "per_second", int64(float64(n)/time.Since(start).Seconds()), "for", time.Since(start).Round(time.Second))...)
	})
}
