package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/deadletter"
	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/trigger"
)

// Replays go through the normal path: a load's work is re-driven by
// publishing its event again with HeaderTarget naming that one load (every
// other subscription acknowledges it without acting), and a job's by
// requesting a run of its group. The ledger keeps loads exactly once, so
// replaying an object version that is already loaded writes nothing, and
// job runs are deduplicated on their inputs as usual.

// ReplayDeadLetters re-drives the dead letters with the given ids (all of
// them when ids is empty) and marks them replayed; they stay listed until
// their work succeeds. progress, if not nil, is called after each one.
func (e *Engine) ReplayDeadLetters(ctx context.Context, ids []int64, progress func(done, total int)) (int, error) {
	dls, err := e.State.DeadLetters(ctx, ids...)
	if err != nil {
		return 0, err
	}
	var errs []error
	n := 0
	for i, d := range dls {
		if err := e.replayOne(ctx, d); err != nil {
			// One that cannot be replayed (its load was removed from the
			// spec, say) does not stop the others.
			errs = append(errs, fmt.Errorf("replay dead letter %d (%s %s): %w", d.ID, d.Target, d.Key, err))
			continue
		}
		if err := e.State.MarkReplayed(ctx, d.ID, e.now()); err != nil {
			errs = append(errs, err)
		}
		n++
		if progress != nil {
			progress(i+1, len(dls))
		}
	}
	return n, errors.Join(errs...)
}

func (e *Engine) replayOne(ctx context.Context, d deadletter.DeadLetter) error {
	switch d.Kind {
	case deadletter.Job:
		if !e.hasJob(d.Name) {
			return fmt.Errorf("job %s is not in pipeline %s", d.Name, e.cfg.Spec.Name)
		}
		if len(d.Event) > 0 {
			// Dead-lettered while its event was handled (the key is an
			// object's): offer the event again, which finds the group.
			return e.publishTo(ctx, d.Target, d.Event)
		}
		return e.State.RequestRun(ctx, d.Name, d.Key, e.now()) // a run's group
	default:
		if !e.hasLoad(d.Name) {
			return fmt.Errorf("load %s is not in pipeline %s", d.Name, e.cfg.Spec.Name)
		}
		if len(d.Event) == 0 {
			return errors.New("no event was kept to replay")
		}
		return e.publishTo(ctx, d.Target, d.Event)
	}
}

// publishTo publishes body for the one subscription target.
func (e *Engine) publishTo(ctx context.Context, target string, body []byte) error {
	if err := e.Topic.Publish(ctx, body, map[string]string{HeaderTarget: target}); err != nil {
		return err
	}
	e.Stats.Events.Add(1)
	return nil
}

// ReplayFilter selects the objects ReplayObjects re-drives.
type ReplayFilter struct {
	Prefix string
	// Since and Until bound the objects' modification times (zero: open).
	Since, Until time.Time
	// Load or Job restricts the replay to one load or job ("" for both:
	// every load and job whose on: matches the object).
	Load, Job string
}

// ReplayObjects re-drives the objects already in the store that f selects,
// through every load and job of the spec whose on: matches them (or the one
// f names). It returns how many loads' events were published and how many
// job groups requested.
func (e *Engine) ReplayObjects(ctx context.Context, f ReplayFilter, progress func(done, total int)) (events, groups int, err error) {
	if f.Load != "" && !e.hasLoad(f.Load) {
		return 0, 0, fmt.Errorf("pipeline %s has no load %q", e.cfg.Spec.Name, f.Load)
	}
	if f.Job != "" && !e.hasJob(f.Job) {
		return 0, 0, fmt.Errorf("pipeline %s has no job %q", e.cfg.Spec.Name, f.Job)
	}
	objs, err := e.Store.List(ctx, f.Prefix)
	if err != nil {
		return 0, 0, err
	}
	var sel []store.Object
	for _, o := range objs {
		if !RaisesEvents(o.Key) || (!f.Since.IsZero() && o.ModTime.Before(f.Since)) || (!f.Until.IsZero() && !o.ModTime.Before(f.Until)) {
			continue
		}
		sel = append(sel, o)
	}
	// Compile each job's rule once, not once per object.
	rules := make([]*trigger.Compiled, len(e.cfg.Spec.Jobs))
	for i, j := range e.cfg.Spec.Jobs {
		if rules[i], err = trigger.Compile(trigger.Rule{Name: j.Name, Filter: j.On.Filter(), Group: j.Group}); err != nil {
			return 0, 0, err
		}
	}
	type jg struct{ job, group string }
	requested := map[jg]bool{}
	for i, o := range sel {
		full, err := e.Store.Stat(ctx, o.Key)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return events, groups, err
		}
		rec := event.New(e.Store.Bucket(), full.Key, full.Size, full.ETag, full.ModTime)
		body, err := event.Marshal(rec)
		if err != nil {
			return events, groups, err
		}
		for _, l := range e.cfg.Spec.Loads {
			if (f.Job != "" || f.Load != "" && f.Load != l.Name) || !l.On.Filter().Match(rec) {
				continue
			}
			if err := e.publishTo(ctx, "load-"+l.Name, body); err != nil {
				return events, groups, err
			}
			events++
		}
		for ji, j := range e.cfg.Spec.Jobs {
			if f.Load != "" || f.Job != "" && f.Job != j.Name {
				continue
			}
			g, ok, err := rules[ji].Match(rec)
			if err != nil || !ok || requested[jg{j.Name, g}] {
				continue
			}
			requested[jg{j.Name, g}] = true
			if err := e.State.RequestRun(ctx, j.Name, g, e.now()); err != nil {
				return events, groups, err
			}
			groups++
		}
		if progress != nil {
			progress(i+1, len(sel))
		}
	}
	return events, groups, nil
}

func (e *Engine) hasLoad(name string) bool {
	for _, l := range e.cfg.Spec.Loads {
		if l.Name == name {
			return true
		}
	}
	return false
}

func (e *Engine) hasJob(name string) bool {
	for _, j := range e.cfg.Spec.Jobs {
		if j.Name == name {
			return true
		}
	}
	return false
}
