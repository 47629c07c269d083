package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/curate"
	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/trigger"
	"github.com/sluicehq/sluice/warehouse"
)

// Reconcile finds the work that never happened: notifications are lossy
// (a queue outage, a server that drops them, a consumer that was never
// subscribed) and none is sent for objects uploaded before the queue
// existed, so an object version can sit in the store without ever having
// been loaded, and a job group's inputs can change without a run.
//
// For each load it walks the store under the load's prefix (Store.Walk:
// one page of keys at a time, never the whole listing), keeps the objects
// the load's on: selects (prefix, suffix, event names) and that raise
// events at all (not staging areas, not sluice's job logs, not "folder"
// markers), and looks their versions (key + ETag) up in the ledger of the
// load's table, a page of reconcilePage versions per query
// (warehouse.LedgerHas). A version the ledger lacks gets its event again,
// for that load only (HeaderTarget), through the same path as a replay —
// unless it is dead-lettered (the user replays it with `sluice dlq replay`
// once the cause is fixed) or, in a local store, the watcher has not
// announced it yet (its scan will; see emitFound).
//
// Only current versions are ever emitted: the store holds one version of
// each key, so a version that was overwritten before it was loaded is gone
// and nothing can load it; the current one is what reconcile compares.
//
// An object whose event is still queued (the consumers lag) is not in the
// ledger yet and gets a second event; the ledger makes that one a no-op
// (counted as a duplicate). The periodic reconcile (reconcileLoop) skips
// objects younger than ReconcileOptions.MinAge to keep that rare.
//
// For each job it walks the job's prefix, groups the keys with the job's
// rule, and requests every group whose current inputs (key + ETag, as a run
// would record them) differ from those of its latest run that did not
// fail, provided the group has no pending request, no run in flight, no
// dead letter and, in a local store, no file the watcher has yet to
// announce. Groups with no inputs are left alone (a run would fail for
// want of input). The request goes through the same path as a replay (the
// scheduler then deduplicates on inputs as usual).
//
// Memory: per load, one page of versions; per job, the set of group names
// under its prefix, then one group's inputs at a time.

// reconcilePage is how many object versions Reconcile checks against the
// ledger per query.
const reconcilePage = warehouse.MaxLedgerLookup

// ReconcileOptions configure Reconcile.
type ReconcileOptions struct {
	// DryRun counts what would be emitted and requested, and does neither.
	DryRun bool
	// Keys records in the result every key emitted and group requested
	// (for `sluice reconcile -v`); otherwise only counts are kept, so
	// memory does not grow with the store.
	Keys bool
	// MinAge skips objects modified less than MinAge ago (engine clock):
	// their events may still be on their way.
	MinAge time.Duration
}

// ReconcileLoad is what Reconcile found for one load.
type ReconcileLoad struct {
	Name string
	// Checked counts the object versions the load's on: selects; Loaded
	// those in its ledger; DeadLettered those skipped for a dead letter;
	// Unannounced those a local store's watcher will announce; Emitted
	// those whose event was published (or would be, in a dry run).
	Checked, Loaded, DeadLettered, Unannounced, Emitted int
	// Keys lists the emitted keys (with ReconcileOptions.Keys).
	Keys []string
}

// ReconcileJob is what Reconcile found for one job.
type ReconcileJob struct {
	Name string
	// Groups counts the groups under the job's prefix; Current those whose
	// inputs match their latest run; Busy those with a pending request or
	// a run in flight; DeadLettered those dead-lettered; Unannounced those
	// with a file a local store's watcher has yet to announce; Requested
	// those requested (or that would be, in a dry run).
	Groups, Current, Busy, DeadLettered, Unannounced, Requested int
	// Requests lists the requested groups (with ReconcileOptions.Keys).
	Requests []string
}

// ReconcileResult is what Reconcile did.
type ReconcileResult struct {
	Loads []ReconcileLoad
	Jobs  []ReconcileJob
}

// Emitted is the number of load events published.
func (r ReconcileResult) Emitted() int {
	n := 0
	for _, l := range r.Loads {
		n += l.Emitted
	}
	return n
}

// Requested is the number of job groups requested.
func (r ReconcileResult) Requested() int {
	n := 0
	for _, j := range r.Jobs {
		n += j.Requested
	}
	return n
}

// Reconcile re-drives the object versions that never produced work (see
// above). Every load and job is reconciled even when one fails; the error
// joins the failures. Cancelling ctx stops it between objects; what was
// emitted stays emitted (a repeat is a no-op).
func (e *Engine) Reconcile(ctx context.Context, opts ReconcileOptions) (ReconcileResult, error) {
	var res ReconcileResult
	var errs []error
	st := e.State
	for _, l := range e.cfg.Spec.Loads {
		r, err := e.reconcileLoad(ctx, st, l, opts)
		res.Loads = append(res.Loads, r)
		if err != nil {
			errs = append(errs, fmt.Errorf("reconcile load %s: %w", l.Name, err))
		}
	}
	for _, j := range e.cfg.Spec.Jobs {
		r, err := e.reconcileJob(ctx, st, j, opts)
		res.Jobs = append(res.Jobs, r)
		if err != nil {
			errs = append(errs, fmt.Errorf("reconcile job %s: %w", j.Name, err))
		}
	}
	return res, errors.Join(errs...)
}

func (e *Engine) reconcileLoad(ctx context.Context, st state.Store, l pipeline.Load, opts ReconcileOptions) (ReconcileLoad, error) {
	res := ReconcileLoad{Name: l.Name}
	target := "load-" + l.Name
	filter := l.On.Filter()
	table := l.TableDef().Name
	local := e.Store.LocalDir() != ""
	cutoff := time.Time{}
	if opts.MinAge > 0 {
		cutoff = e.now().Add(-opts.MinAge)
	}
	keep := func(o store.Object) bool {
		if !RaisesEvents(o.Key) || !l.Takes(o.Key) || (!cutoff.IsZero() && !o.ModTime.Before(cutoff)) {
			return false
		}
		return filter.Match(event.New(e.Store.Bucket(), o.Key, o.Size, o.ETag, o.ModTime))
	}
	err := e.walkPages(ctx, l.On.Prefix, keep, func(objs []store.Object) error {
		versions := make([]warehouse.ObjectVersion, 0, len(objs))
		for _, o := range objs {
			versions = append(versions, warehouse.ObjectVersion{Key: o.Key, ETag: o.ETag})
		}
		has, err := e.WH.LedgerHas(ctx, table, versions)
		if err != nil {
			return err
		}
		for i, o := range objs {
			res.Checked++
			if has[i] {
				res.Loaded++
				continue
			}
			if _, dead, err := st.DeadLetterFor(ctx, target, o.Key, o.ETag); err != nil {
				return err
			} else if dead {
				res.DeadLettered++
				continue
			}
			if local {
				// The watcher announces a file once it has settled and
				// records it seen; one it has not announced (yet) is its
				// to announce, with the right event time.
				_, etag, seen, err := st.Seen(ctx, o.Key)
				if err != nil {
					return err
				}
				if !seen || etag != o.ETag {
					res.Unannounced++
					continue
				}
			}
			if !opts.DryRun {
				body, err := event.Marshal(event.New(e.Store.Bucket(), o.Key, o.Size, o.ETag, o.ModTime))
				if err != nil {
					return err
				}
				if err := e.publishTo(ctx, target, body); err != nil {
					return err
				}
				e.log.Info("reconcile: object version never loaded; event emitted", "load", l.Name, "key", o.Key, "etag", o.ETag)
			}
			res.Emitted++
			if opts.Keys {
				res.Keys = append(res.Keys, o.Key)
			}
		}
		return nil
	})
	return res, err
}

// walkPages walks the store under prefix and hands handle the objects keep
// selects, reconcilePage at a time (one ledger lookup's worth), each with
// its ETag: a listing that gave none is completed by a Stat, and an object
// deleted since the listing is left out.
func (e *Engine) walkPages(ctx context.Context, prefix string, keep func(store.Object) bool, handle func([]store.Object) error) error {
	page := make([]store.Object, 0, reconcilePage)
	flush := func() error {
		objs := make([]store.Object, 0, len(page))
		for _, o := range page {
			if o.ETag == "" {
				full, err := e.Store.Stat(ctx, o.Key)
				if errors.Is(err, store.ErrNotFound) {
					continue // deleted since the listing
				}
				if err != nil {
					return err
				}
				o = full
			}
			objs = append(objs, o)
		}
		page = page[:0]
		return handle(objs)
	}
	err := e.Store.Walk(ctx, prefix, func(o store.Object) error {
		if !keep(o) {
			return nil
		}
		page = append(page, o)
		if len(page) < reconcilePage {
			return nil
		}
		return flush()
	})
	if err == nil && len(page) > 0 {
		err = flush()
	}
	return err
}

func (e *Engine) reconcileJob(ctx context.Context, st state.Store, j pipeline.Job, opts ReconcileOptions) (ReconcileJob, error) {
	res := ReconcileJob{Name: j.Name}
	rule, err := trigger.Compile(trigger.Rule{Name: j.Name, Filter: j.On.Filter(), Group: j.Group})
	if err != nil {
		return res, err
	}
	local := e.Store.LocalDir() != ""
	cutoff := time.Time{}
	if opts.MinAge > 0 {
		cutoff = e.now().Add(-opts.MinAge)
	}
	// The groups under the job's prefix (a set of names, not of objects).
	groups := map[string]bool{}
	young := map[string]bool{} // groups with an object modified within MinAge
	err = e.Store.Walk(ctx, j.On.Prefix, func(o store.Object) error {
		if skipKey(o.Key) || curate.Hidden(o.Key[len(j.On.Prefix):]) || strings.HasSuffix(o.Key, "/") {
			return nil
		}
		g, ok, err := rule.Match(event.New(e.Store.Bucket(), o.Key, o.Size, "x", o.ModTime))
		if err != nil || !ok {
			return nil // a key the rule cannot group is the event path's to dead-letter
		}
		groups[g] = true
		if !cutoff.IsZero() && !o.ModTime.Before(cutoff) {
			young[g] = true
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	reqs, err := st.PendingRequests(ctx)
	if err != nil {
		return res, err
	}
	pending := map[string]bool{}
	for _, r := range reqs {
		if r.Rule == j.Name {
			pending[r.Group] = true
		}
	}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	slices.Sort(names)
	res.Groups = len(names)
	var errs []error
	for _, g := range names {
		if young[g] {
			continue // its events may still be on their way
		}
		if pending[g] {
			res.Busy++
			continue
		}
		if _, dead, err := st.DeadLetterFor(ctx, job.Target(j.Name), g, ""); err != nil {
			errs = append(errs, err)
			continue
		} else if dead {
			res.DeadLettered++
			continue
		}
		prev, err := st.ListRuns(ctx, job.RunFilter{Rule: j.Name, Group: g,
			States: []job.State{job.Starting, job.Running, job.Succeeded}, Limit: 1})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(prev) > 0 && prev[0].State != job.Succeeded {
			res.Busy++ // a run in flight: it or its follow-up sees the inputs
			continue
		}
		inputs, err := e.jobInputs(ctx, j, rule, g)
		if err != nil {
			errs = append(errs, fmt.Errorf("group %s: %w", g, err))
			continue
		}
		if len(inputs) == 0 {
			continue
		}
		if len(prev) > 0 && job.SameInputs(prev[0].Inputs, inputs) {
			res.Current++
			continue
		}
		if local {
			// As for loads: a file the watcher has not announced yet is its
			// to announce, and its event requests the group.
			unannounced, err := e.unannounced(ctx, st, inputs)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if unannounced {
				res.Unannounced++
				continue
			}
		}
		if !opts.DryRun {
			if err := st.RequestRun(ctx, j.Name, g, e.now()); err != nil {
				errs = append(errs, err)
				continue
			}
			e.log.Info("reconcile: job group's inputs changed without a run; requested", "job", j.Name, "group", g, "inputs", len(inputs))
		}
		res.Requested++
		if opts.Keys {
			res.Requests = append(res.Requests, g)
		}
	}
	return res, errors.Join(errs...)
}

// unannounced reports whether a local store's watcher has yet to announce
// one of inputs (or announced another version of it).
func (e *Engine) unannounced(ctx context.Context, st state.Store, inputs []job.Input) (bool, error) {
	for _, in := range inputs {
		_, etag, seen, err := st.Seen(ctx, in.Key)
		if err != nil {
			return false, err
		}
		if !seen || etag != in.ETag {
			return true, nil
		}
	}
	return false, nil
}

// reconcileLoop reconciles every e.cfg.Spec.ReconcileEvery until ctx ends.
// Run calls it, after one reconcile, under the "reconcile" lease, so one
// process at a time reconciles. Objects younger than a minute are left to
// their own events.
func (e *Engine) reconcileLoop(ctx context.Context) {
	every := e.cfg.Spec.ReconcileEvery
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.reconcileOnce(ctx, ReconcileOptions{MinAge: min(time.Minute, every)})
	}
}

// reconcileOnce runs one reconcile, logs what it did and returns how many
// events it emitted and groups it requested; a failure is logged and tried
// again at the next one.
func (e *Engine) reconcileOnce(ctx context.Context, opts ReconcileOptions) int {
	res, err := e.Reconcile(ctx, opts)
	if err != nil && ctx.Err() == nil {
		e.log.Error("reconcile failed; trying again at the next", "err", err)
	}
	n, g := res.Emitted(), res.Requested()
	if n > 0 || g > 0 {
		e.log.Warn("reconcile found work that never happened (lost notifications, or objects from before the queue)", "events", n, "job_groups", g)
	}
	return n + g
}
