package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/curate"
	"github.com/sluicehq/sluice/deadletter"
	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/lease"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/trigger"
	"github.com/sluicehq/sluice/warehouse"
)

// Retention (a source's retention: key) deletes what a source landed once
// it is older than the retention and done with — never before.
//
// Retain walks each such source's land folder (pipeline.Source.LandPrefix,
// one listing page at a time) and looks at the objects modified before
// now minus the retention (engine clock), skipping sluice's own staging
// and log keys. An object version (key + ETag) is deleted only when
//
//   - every load whose on: selects it has it in the ledger of its table
//     (the version was loaded, warehouse.LedgerHas);
//   - every job whose on: selects it has, for the object's group, a
//     SUCCEEDED run whose inputs include that key and ETag, no run
//     STARTING or RUNNING and no run requested;
//   - no dead letter names it (any dead letter with its key, whatever the
//     target and ETag), nor the group of any job that selects it.
//
// Anything else is kept and counted (RetentionSource): it is deleted by a
// later pass once its work has committed.
//
// Job groups go whole or not at all. Deleting part of a group would change
// its inputs, and reconcile would then run the job again over what is
// left (a curate job would rewrite its output from fewer files). So an
// object that a job selects waits until every current input of its group
// (and of every group sharing an input with it) could be deleted, and the
// group is then deleted under its run claim (lease job/<job>/<group>,
// taken with a holder of its own), so that no run of it starts while its
// inputs disappear; a run requested meanwhile for a group left without
// inputs is cleared, since it could only fail. A group that keeps
// receiving files after the retention has passed is therefore kept until
// it is quiet for a whole retention.
//
// What remains possible: reconcile listing a group at the very moment its
// deletion runs (in another process) can request a run that finds the
// group partly or wholly gone; a crash half-way through deleting a group
// leaves part of it until the next pass (which deletes the rest unless a
// run was requested in between). An object overwritten between the check
// and the delete (its key landed again) is re-checked just before the
// delete, which narrows that window but cannot close it: stores have no
// conditional delete. A late duplicate event of a deleted, loaded object
// is dead-lettered as "not found".
//
// Run applies retention at start and every RetentionEvery, under the
// "retention" lease, so one process at a time does it; `run --once` and
// workers do not.

// RetentionEvery is how often `sluice run` applies retention.
const RetentionEvery = time.Hour

// RetentionOptions configure Retain.
type RetentionOptions struct {
	// DryRun counts what would be deleted, and deletes nothing.
	DryRun bool
}

// RetentionSource is what Retain did for one source.
type RetentionSource struct {
	Name string
	// Prefix is the land folder walked.
	Prefix string
	// Expired counts the object versions under Prefix older than the
	// retention; Deleted those deleted (or that would be, in a dry run);
	// Uncommitted those kept because a load or job that selects them has
	// not committed them yet; DeadLettered those kept because a dead letter
	// names them or their job group; Busy those kept because their job
	// group has a run in flight or requested, has inputs not yet expired
	// or committed, or its claim was held.
	Expired, Deleted, Uncommitted, DeadLettered, Busy int
}

// RetentionResult is what Retain did.
type RetentionResult struct {
	Sources []RetentionSource
}

// Retain applies every source's retention once (see above). Every source
// is handled even when one fails; the error joins the failures.
// Cancelling ctx stops it between objects; what was deleted stays deleted.
func (e *Engine) Retain(ctx context.Context, opts RetentionOptions) (RetentionResult, error) {
	var res RetentionResult
	var srcs []pipeline.Source
	for _, s := range e.cfg.Spec.Sources {
		if s.Retention > 0 && s.LandPrefix() != "" {
			srcs = append(srcs, s)
		}
	}
	if len(srcs) == 0 {
		return res, nil
	}
	rc, err := e.newRetentionCheck(ctx, srcs)
	if err != nil {
		return res, err
	}
	var errs []error
	for _, s := range srcs {
		r, err := rc.source(ctx, s, opts)
		res.Sources = append(res.Sources, r)
		if err != nil {
			errs = append(errs, fmt.Errorf("retention of source %s: %w", s.Name, err))
		}
	}
	return res, errors.Join(errs...)
}

// startRetention starts the retention duty (under the "retention" lease:
// once at start, then every RetentionEvery) when a source has a
// retention; wg tracks it. Run calls it where it starts reconcile.
func (e *Engine) startRetention(ctx context.Context, wg *sync.WaitGroup) {
	if !slices.ContainsFunc(e.cfg.Spec.Sources, func(s pipeline.Source) bool { return s.Retention > 0 }) {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.duty(ctx, "retention", false, func(ctx context.Context, _ func() lease.Lease) error {
			t := time.NewTicker(RetentionEvery)
			defer t.Stop()
			for {
				e.retainOnce(ctx)
				select {
				case <-ctx.Done():
					return nil
				case <-t.C:
				}
			}
		})
	}()
}

// retainOnce runs one retention pass and logs what it did; a failure is
// logged and tried again at the next pass.
func (e *Engine) retainOnce(ctx context.Context) {
	res, err := e.Retain(ctx, RetentionOptions{})
	if err != nil && ctx.Err() == nil {
		e.log.Error("retention failed; trying again at the next pass", "err", err)
	}
	for _, s := range res.Sources {
		if s.Expired == 0 {
			continue
		}
		e.log.Info("retention: deleted expired objects the pipeline is done with", "source", s.Name, "prefix", s.Prefix,
			"deleted", s.Deleted, "expired", s.Expired)
		if kept := s.Uncommitted + s.DeadLettered + s.Busy; kept > 0 {
			e.log.Info("retention: kept expired objects whose work has not committed", "source", s.Name, "kept", kept,
				"uncommitted", s.Uncommitted, "dead_lettered", s.DeadLettered, "busy", s.Busy)
		}
	}
}

// Why an expired object version is kept ("" when it may go).
const (
	keepUncommitted = "uncommitted"
	keepDead        = "dead-lettered"
	keepBusy        = "busy"
)

// groupKey names a job's group.
type groupKey struct{ job, group string }

func (g groupKey) String() string { return g.job + "/" + g.group }

// retentionJob is a job with its compiled rule.
type retentionJob struct {
	job  pipeline.Job
	rule *trigger.Compiled
}

// groupState is what the state says of a job group, read once per pass.
type groupState struct {
	idle      bool            // no run STARTING or RUNNING
	committed map[string]bool // key\x00etag of the inputs of its SUCCEEDED runs
}

// retentionCheck holds what one retention pass reads once: dead letters,
// requested runs, compiled job rules, and the job groups it has looked at.
type retentionCheck struct {
	e          *Engine
	srcs       []pipeline.Source
	jobs       []retentionJob
	deadKeys   map[string]bool   // object keys named by a dead letter
	deadGroups map[groupKey]bool // job groups dead-lettered
	requested  map[groupKey]bool // job groups with a run requested
	groups     map[groupKey]*groupState
}

func (e *Engine) newRetentionCheck(ctx context.Context, srcs []pipeline.Source) (*retentionCheck, error) {
	rc := &retentionCheck{e: e, srcs: srcs, deadKeys: map[string]bool{}, deadGroups: map[groupKey]bool{},
		requested: map[groupKey]bool{}, groups: map[groupKey]*groupState{}}
	for _, j := range e.cfg.Spec.Jobs {
		rule, err := trigger.Compile(trigger.Rule{Name: j.Name, Filter: j.On.Filter(), Group: j.Group})
		if err != nil {
			return nil, err
		}
		rc.jobs = append(rc.jobs, retentionJob{job: j, rule: rule})
	}
	dls, err := e.State.DeadLetters(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range dls {
		if d.Kind == deadletter.Job {
			rc.deadGroups[groupKey{d.Name, d.Key}] = true
		} else {
			rc.deadKeys[d.Key] = true
		}
	}
	reqs, err := e.State.PendingRequests(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range reqs {
		rc.requested[groupKey{r.Rule, r.Group}] = true
	}
	return rc, nil
}

// source applies s's retention.
func (rc *retentionCheck) source(ctx context.Context, s pipeline.Source, opts RetentionOptions) (RetentionSource, error) {
	e := rc.e
	res := RetentionSource{Name: s.Name, Prefix: s.LandPrefix()}
	cutoff := e.now().Add(-s.Retention)
	waiting := map[groupKey]bool{} // groups whose expired objects wait for the group's decision
	keep := func(o store.Object) bool {
		return RaisesEvents(o.Key) && !strings.HasSuffix(o.Key, "/") && o.ModTime.Before(cutoff)
	}
	err := e.walkPages(ctx, res.Prefix, keep, func(objs []store.Object) error {
		why, groups, err := rc.check(ctx, objs)
		if err != nil {
			return err
		}
		for i, o := range objs {
			res.Expired++
			switch {
			case why[i] != "":
				res.count(why[i], 1)
			case len(groups[i]) > 0:
				for _, g := range groups[i] {
					waiting[g] = true
				}
			default:
				gone, err := rc.remove(ctx, o, opts)
				if err != nil {
					return err
				}
				if gone {
					res.Deleted++
				} else {
					res.Uncommitted++ // a new version landed at its key since the check
				}
			}
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	// Job groups, whole or not at all.
	names := make([]groupKey, 0, len(waiting))
	for g := range waiting {
		names = append(names, g)
	}
	slices.SortFunc(names, func(a, b groupKey) int { return strings.Compare(a.String(), b.String()) })
	done := map[groupKey]bool{}
	var errs []error
	for _, g := range names {
		if done[g] {
			continue
		}
		if err := rc.decideGroups(ctx, g, done, &res, opts); err != nil {
			if ctx.Err() != nil {
				return res, err
			}
			errs = append(errs, fmt.Errorf("job group %s: %w", g, err))
		}
	}
	return res, errors.Join(errs...)
}

func (r *RetentionSource) count(why string, n int) {
	switch why {
	case keepUncommitted:
		r.Uncommitted += n
	case keepDead:
		r.DeadLettered += n
	case keepBusy:
		r.Busy += n
	}
}

// check decides, for each of objs (with ETags), whether its work has
// committed: why[i] is "" or why it must be kept; groups[i] lists the job
// groups that select it (which then decide together).
func (rc *retentionCheck) check(ctx context.Context, objs []store.Object) (why []string, groups [][]groupKey, err error) {
	e := rc.e
	why = make([]string, len(objs))
	groups = make([][]groupKey, len(objs))
	keep := func(i int, reason string) {
		// A dead letter outranks the rest: it needs the user.
		if why[i] == "" || reason == keepDead {
			why[i] = reason
		}
	}
	for i, o := range objs {
		if rc.deadKeys[o.Key] {
			keep(i, keepDead)
		}
	}
	// Loads: one ledger query per load and page.
	for _, l := range e.cfg.Spec.Loads {
		filter := l.On.Filter()
		var idx []int
		var versions []warehouse.ObjectVersion
		for i, o := range objs {
			if l.Takes(o.Key) && filter.Match(event.New(e.Store.Bucket(), o.Key, o.Size, o.ETag, o.ModTime)) {
				idx = append(idx, i)
				versions = append(versions, warehouse.ObjectVersion{Key: o.Key, ETag: o.ETag})
			}
		}
		if len(idx) == 0 {
			continue
		}
		has, err := e.WH.LedgerHas(ctx, l.TableDef().Name, versions)
		if err != nil {
			return nil, nil, err
		}
		for k, i := range idx {
			if !has[k] {
				keep(i, keepUncommitted)
			}
		}
	}
	// Jobs: a succeeded run of the object's group that took this version.
	for i, o := range objs {
		for _, j := range rc.jobs {
			p := j.job.On.Prefix
			if !strings.HasPrefix(o.Key, p) || curate.Hidden(o.Key[len(p):]) {
				continue
			}
			ev := event.New(e.Store.Bucket(), o.Key, o.Size, o.ETag, o.ModTime)
			if !j.job.On.Filter().Match(ev) {
				continue
			}
			g, ok, err := j.rule.Match(ev)
			if err != nil {
				keep(i, keepUncommitted) // the event path dead-letters it
				continue
			}
			if !ok {
				continue
			}
			gk := groupKey{j.job.Name, g}
			groups[i] = append(groups[i], gk)
			if rc.deadGroups[gk] {
				keep(i, keepDead)
				continue
			}
			st, err := rc.group(ctx, gk)
			if err != nil {
				return nil, nil, err
			}
			switch {
			case rc.requested[gk] || !st.idle:
				keep(i, keepBusy)
			case !st.committed[o.Key+"\x00"+o.ETag]:
				keep(i, keepUncommitted)
			}
		}
	}
	return why, groups, nil
}

// group returns what the state says of job group g (cached for the pass).
func (rc *retentionCheck) group(ctx context.Context, g groupKey) (*groupState, error) {
	if st := rc.groups[g]; st != nil {
		return st, nil
	}
	st := &groupState{idle: true, committed: map[string]bool{}}
	latest, err := rc.e.State.ListRuns(ctx, job.RunFilter{Rule: g.job, Group: g.group,
		States: []job.State{job.Starting, job.Running, job.Succeeded}, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(latest) > 0 && latest[0].State != job.Succeeded {
		st.idle = false
	}
	runs, err := rc.e.State.ListRuns(ctx, job.RunFilter{Rule: g.job, Group: g.group, States: []job.State{job.Succeeded}})
	if err != nil {
		return nil, err
	}
	for _, r := range runs {
		for _, in := range r.Inputs {
			st.committed[in.Key+"\x00"+in.ETag] = true
		}
	}
	rc.groups[g] = st
	return st, nil
}

// sourceOf returns the source with a retention whose land folder holds
// key, and the cutoff of its retention.
func (rc *retentionCheck) sourceOf(key string) (pipeline.Source, time.Time, bool) {
	for _, s := range rc.srcs {
		if strings.HasPrefix(key, s.LandPrefix()) {
			return s, rc.e.now().Add(-s.Retention), true
		}
	}
	return pipeline.Source{}, time.Time{}, false
}

// decideGroups decides the job groups connected to g through shared
// inputs together: when every input of every one of them has expired
// under some source's retention and has committed, it deletes them all
// under their claims; otherwise it keeps them. done collects the groups
// decided. res counts the inputs under its source's folder that waited
// for this decision (expired, and committed as far as they alone go).
func (rc *retentionCheck) decideGroups(ctx context.Context, g groupKey, done map[groupKey]bool, res *RetentionSource, opts RetentionOptions) error {
	component := []groupKey{g}
	inputs := map[string]store.Object{} // key → version, over the component
	var order []string                  // keys in the order found
	ok := true
	mine := 0
	for i := 0; i < len(component); i++ {
		cur := component[i]
		done[cur] = true
		objs, err := rc.inputs(ctx, cur)
		if err != nil {
			return err
		}
		for _, o := range objs {
			if _, seen := inputs[o.Key]; seen {
				continue
			}
			inputs[o.Key] = o
			order = append(order, o.Key)
			src, cutoff, under := rc.sourceOf(o.Key)
			if !under || !o.ModTime.Before(cutoff) {
				ok = false // an input that no retention lets go (yet)
				continue
			}
			why, groups, err := rc.check(ctx, []store.Object{o})
			if err != nil {
				return err
			}
			if why[0] != "" {
				ok = false
			} else if src.Name == res.Name {
				mine++
			}
			for _, og := range groups[0] {
				if !slices.Contains(component, og) {
					component = append(component, og)
				}
			}
		}
	}
	if !ok {
		res.count(keepBusy, mine)
		return nil
	}
	if opts.DryRun {
		res.Deleted += mine
		return nil
	}
	// Under every claim of the component, so that no run of these groups
	// starts (here or anywhere) while their inputs disappear. The holder
	// is the pass's own: this process's job scheduler must be kept out
	// too.
	slices.SortFunc(component, func(a, b groupKey) int { return strings.Compare(a.String(), b.String()) })
	holder := lease.NewHolder()
	var claims []lease.Lease
	defer func() {
		for _, l := range claims {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := rc.e.State.Release(rctx, l); err != nil {
				rc.e.log.Warn("retention: could not release a job group's claim; it expires by itself", "claim", l.Name, "err", err)
			}
			cancel()
		}
	}()
	for _, cg := range component {
		l, err := rc.e.State.Acquire(ctx, job.LeaseName(cg.job, cg.group), holder, rc.e.leaseTTL)
		if errors.Is(err, lease.ErrHeld) {
			res.count(keepBusy, mine)
			return nil
		}
		if err != nil {
			return err
		}
		claims = append(claims, l)
	}
	// Under the claims, nothing may have changed since the check: no run
	// started or was requested, and the inputs are the versions checked.
	reqs, err := rc.e.State.PendingRequests(ctx)
	if err != nil {
		return err
	}
	for _, cg := range component {
		if slices.ContainsFunc(reqs, func(r job.RunRequest) bool { return r.Rule == cg.job && r.Group == cg.group }) {
			res.count(keepBusy, mine)
			return nil
		}
		delete(rc.groups, cg) // read it again
		st, err := rc.group(ctx, cg)
		if err != nil {
			return err
		}
		if !st.idle {
			res.count(keepBusy, mine)
			return nil
		}
		now, err := rc.inputs(ctx, cg)
		if err != nil {
			return err
		}
		for _, o := range now {
			if was, ok := inputs[o.Key]; !ok || was.ETag != o.ETag {
				res.count(keepBusy, mine)
				return nil
			}
		}
	}
	renewed := rc.e.now()
	deleted := 0
	for _, k := range order {
		if rc.e.now().Sub(renewed) > rc.e.leaseTTL/3 {
			for i, l := range claims {
				nl, err := rc.e.State.Renew(ctx, l, rc.e.leaseTTL)
				if err != nil {
					return fmt.Errorf("renew the claim %s while deleting its inputs: %w", l.Name, err)
				}
				claims[i] = nl
			}
			renewed = rc.e.now()
		}
		gone, err := rc.remove(ctx, inputs[k], opts)
		if err != nil {
			return err
		}
		if !gone {
			continue
		}
		deleted++
		if src, _, _ := rc.sourceOf(k); src.Name == res.Name {
			res.Deleted++
		}
	}
	// A run requested meanwhile (reconcile listed a group half-deleted) for
	// a group now without inputs could only fail.
	for _, cg := range component {
		now, err := rc.inputs(ctx, cg)
		if err != nil || len(now) > 0 {
			continue
		}
		if _, err := rc.e.State.ClearRequest(ctx, cg.job, cg.group, rc.e.now()); err != nil {
			rc.e.log.Warn("retention: could not clear the run request of a deleted job group", "job", cg.job, "group", cg.group, "err", err)
		}
	}
	rc.e.log.Info("retention: deleted the inputs of job groups whose runs succeeded", "groups", len(component), "first", component[0].String(), "objects", deleted)
	return nil
}

// inputs returns the current inputs of job group g as objects (with ETag
// and ModTime), as a run of it would see them.
func (rc *retentionCheck) inputs(ctx context.Context, g groupKey) ([]store.Object, error) {
	var rj *retentionJob
	for i := range rc.jobs {
		if rc.jobs[i].job.Name == g.job {
			rj = &rc.jobs[i]
		}
	}
	if rj == nil {
		return nil, fmt.Errorf("no job %s", g.job)
	}
	ins, err := rc.e.jobInputs(ctx, rj.job, rj.rule, g.group)
	if err != nil {
		return nil, err
	}
	out := make([]store.Object, 0, len(ins))
	for _, in := range ins {
		o, err := rc.e.Store.Stat(ctx, in.Key)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// remove deletes o unless its key now holds another version (landed
// again since the check), and reports whether o is gone (in a dry run:
// would be).
func (rc *retentionCheck) remove(ctx context.Context, o store.Object, opts RetentionOptions) (bool, error) {
	if opts.DryRun {
		return true, nil
	}
	cur, err := rc.e.Store.Stat(ctx, o.Key)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil // gone already
	}
	if err != nil {
		return false, err
	}
	if cur.ETag != o.ETag {
		return false, nil
	}
	if err := rc.e.Store.Delete(ctx, o.Key); err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	return true, nil
}
