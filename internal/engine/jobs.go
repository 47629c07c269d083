package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluicehq/sluice/curate"
	"github.com/sluicehq/sluice/deadletter"
	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/job/local"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/queue"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/trigger"
)

// LogPrefix is where job logs are kept in the store. Keys under it raise
// no events.
const LogPrefix = "_sluice/jobs/"

// newJobManager builds the job manager for the spec's jobs (nil if none).
func (e *Engine) newJobManager() (*job.Manager, error) {
	if len(e.cfg.Spec.Jobs) == 0 {
		return nil, nil
	}
	var defs []job.Definition
	for _, j := range e.cfg.Spec.Jobs {
		rule, err := trigger.Compile(trigger.Rule{Name: j.Name, Filter: j.On.Filter(), Group: j.Group})
		if err != nil {
			return nil, err
		}
		defs = append(defs, job.Definition{
			Name:   j.Name,
			Rule:   rule,
			Settle: j.Settle,
			Inputs: func(ctx context.Context, group string) ([]job.Input, error) { return e.jobInputs(ctx, j, rule, group) },
			Task:   func(group string, _ []job.Input) (job.Task, error) { return e.jobTask(j, group) },
		})
	}
	runner := &local.Runner{Binary: e.cfg.JobBinary, Dir: e.cfg.DataDir.Jobs(), Logger: e.log}
	for i := range defs {
		j := e.cfg.Spec.Jobs[i]
		if j.Runner == pipeline.RunnerLocal {
			continue
		}
		if err := e.checkRemote(j); err != nil {
			return nil, err
		}
		r, err := e.remoteRunner(j)
		if err != nil {
			return nil, fmt.Errorf("job %s: runner %s: %w", j.Name, j.Runner, err)
		}
		defs[i].Runner = &remoteJob{Remote: r, e: e, j: j}
	}
	return job.NewManager(defs, job.Options{
		Retry: e.cfg.Retry,
		OnDeadLetter: func(_ context.Context, r job.Run, reason string) {
			e.Stats.DeadLettered.Add(1)
			e.cfg.Metrics.DeadLettered(string(deadletter.Job), r.Rule)
			e.fail(reason)
		},
		State:    e.State,
		StateURL: e.stateURL(),
		Holder:   e.holder,
		LeaseTTL: e.leaseTTL,
		Runner:   runner,
		Clock:    e.now,
		Logger:   e.log,
		OnDone:   e.jobDone,
		LogStore: func(ctx context.Context, runID string, log []byte) (string, error) {
			key := LogPrefix + runID + ".log"
			_, err := e.Store.Put(ctx, key, log, "text/plain; charset=utf-8")
			return key, err
		},
	})
}

// stateURL is the state as a job process opens it: the spec's, or the
// data dir's state.db as a sqlite:/// URL.
func (e *Engine) stateURL() string {
	if e.cfg.Spec.State != "" {
		return e.cfg.Spec.State
	}
	return e.cfg.DataDir.StateURL()
}

// jobInputs lists a group's inputs with their ETags: for curate jobs the
// CSV objects under the expanded input prefix (what the job will read), for
// command jobs every object under the rule's prefix that the rule maps to
// the group.
func (e *Engine) jobInputs(ctx context.Context, j pipeline.Job, rule *trigger.Compiled, group string) ([]job.Input, error) {
	prefix := j.On.Prefix
	if j.Curate != nil || j.Spark != nil {
		in := ""
		if j.Curate != nil {
			in = j.Curate.Input
		} else {
			in = j.Spark.Input
		}
		p, err := trigger.Expand(in, group)
		if err != nil {
			return nil, err
		}
		prefix = p
	}
	objs, err := e.Store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var in []job.Input
	for _, o := range objs {
		if j.Curate != nil {
			if !curate.IsInput(prefix, o.Key) {
				continue
			}
		} else if j.Spark != nil {
			if skipKey(o.Key) || curate.Hidden(o.Key[len(prefix):]) {
				continue
			}
		} else {
			if skipKey(o.Key) || curate.Hidden(o.Key[len(prefix):]) {
				continue
			}
			g, ok, err := rule.Match(event.New(e.Store.Bucket(), o.Key, o.Size, "x", e.now()))
			if err != nil || !ok || g != group {
				continue
			}
		}
		st, err := e.Store.Stat(ctx, o.Key)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted since the listing
		}
		if err != nil {
			return nil, err
		}
		in = append(in, job.Input{Key: st.Key, ETag: st.ETag})
	}
	return in, nil
}

func (e *Engine) jobTask(j pipeline.Job, group string) (job.Task, error) {
	t := job.Task{StoreURL: e.storeURL, Timeout: j.Timeout}
	if j.Spark != nil {
		return e.sparkTask(j, t), nil
	}
	if j.Curate == nil {
		t.Kind = job.KindCommand
		t.Command, t.PassEnv = j.Command, j.PassEnv
		return t, nil
	}
	c := j.Curate
	in, err := trigger.Expand(c.Input, group)
	if err != nil {
		return t, err
	}
	out, err := trigger.Expand(c.Output, group)
	if err != nil {
		return t, err
	}
	spec := curate.Spec{Input: in, Output: out, Rename: c.Rename, Filter: c.Filter, Mode: c.Mode, MaxRowsPerFile: c.MaxRowsPerFile, Limits: c.Limits}
	if c.Delimiter != "" {
		spec.Delimiter = []rune(c.Delimiter)[0]
	}
	for _, col := range c.Columns {
		spec.Columns = append(spec.Columns, curate.Column{Name: col.Name, Type: col.Type})
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return t, err
	}
	t.Kind = job.KindCurate
	t.Curate = raw
	return t, nil
}

// jobDone emits events for a successful run's outputs (at commit, once).
func (e *Engine) jobDone(ctx context.Context, r job.Run) {
	e.cfg.Metrics.JobEnded(r.Rule, string(r.State), r.Terminated.Sub(r.Created), r.ComputeSeconds)
	e.jobLineage(r)
	if r.State != job.Succeeded {
		// Counted; a failure only fails a once-run when the group is
		// dead-lettered (OnDeadLetter): a transient one is retried.
		e.Stats.JobsFailed.Add(1)
		return
	}
	e.Stats.JobsSucceeded.Add(1)
	for _, key := range r.Outputs {
		o, err := e.Store.Stat(ctx, key)
		if err != nil {
			e.log.Error("output vanished before its event", "job", r.Rule, "run", r.ID, "key", key, "err", err)
			continue
		}
		if err := e.Emit(ctx, o); err != nil {
			e.log.Error("emit output event", "job", r.Rule, "run", r.ID, "key", key, "err", err)
			continue
		}
		e.Stats.OutputEvents.Add(1)
		if e.Store.LocalDir() != "" {
			_ = e.State.MarkSeen(ctx, key, store.Fingerprint(o), o.ETag)
		}
	}
}

// handleJobEvent feeds one job's event to the manager; the event is acked
// once the run request is durably recorded (or the event dead-lettered).
// A failure to record the request (the state database unavailable) is
// retried in place, like a load's.
func (e *Engine) handleJobEvent(ctx context.Context, j pipeline.Job, m *job.Manager, msg *queue.Message) {
	log := e.log.With("job", j.Name, "message", msg.ID)
	sub := "job-" + j.Name
	if t := msg.Header[HeaderTarget]; t != "" && t != sub {
		e.ack(ctx, msg, log)
		return
	}
	recs, err := event.Parse(msg.Body, j.On.KeyEncoding)
	if errors.Is(err, event.ErrNoRecords) {
		e.ack(ctx, msg, log)
		return
	}
	if err != nil {
		if e.deadLetter(ctx, deadletter.DeadLetter{Target: sub, Kind: deadletter.Job, Name: j.Name, Key: "message-" + msg.ID,
			Event: msg.Body, Reason: fmt.Sprintf("job %s: message %s is not an S3 event: %v", j.Name, msg.ID, err)}) {
			e.ack(ctx, msg, log)
		}
		return
	}
	stop := e.keepAlive(ctx, msg)
	defer stop()
	for _, r := range recs {
		if skipKey(r.S3.Object.Key) {
			continue
		}
		err, attempts, first := e.retrying(ctx, sub+" "+r.S3.Object.Key, log, func() error {
			_, err := m.OfferTo(ctx, j.Name, r)
			if errors.Is(err, job.ErrUngroupable) {
				return fault.Permanent(err) // a key the rule cannot group: bad input
			}
			return err
		})
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return
		default:
			if !e.deadLetter(ctx, deadletter.DeadLetter{Target: sub, Kind: deadletter.Job, Name: j.Name, Key: r.S3.Object.Key,
				ETag: r.S3.Object.ETag, Event: msg.Body, Reason: err.Error(), Attempts: attempts, FirstFailure: first}) {
				return
			}
		}
	}
	e.ack(ctx, msg, log)
}

// consume receives from sub until ctx is done and hands each message to
// handle, which settles it. Receive errors are logged and retried.
func (e *Engine) consume(ctx context.Context, sub *queue.Subscription, handle func(context.Context, *queue.Message)) {
	for {
		m, err := sub.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			e.log.Error("receive failed", "subscription", sub.Name(), "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		if m.Deliveries > e.maxDeliveries {
			log := e.log.With("subscription", sub.Name(), "message", m.ID)
			kind, name := deadletter.Load, strings.TrimPrefix(sub.Name(), "load-")
			if strings.HasPrefix(sub.Name(), "job-") {
				kind, name = deadletter.Job, strings.TrimPrefix(sub.Name(), "job-")
			}
			key, etag := "message-"+m.ID, ""
			if recs, err := event.Parse(m.Body, event.KeyURL); err == nil && len(recs) > 0 {
				key, etag = recs[0].S3.Object.Key, recs[0].S3.Object.ETag
			}
			if e.deadLetter(ctx, deadletter.DeadLetter{Target: sub.Name(), Kind: kind, Name: name, Key: key, ETag: etag, Event: m.Body,
				Attempts: m.Deliveries, Reason: fmt.Sprintf("delivered %d times without being settled (max_deliveries %d): sluice crashed, was killed or ran past the ack deadline while working on it each time", m.Deliveries, e.maxDeliveries)}) {
				e.ack(ctx, m, log)
			}
			continue
		}
		if m.Deliveries > 1 {
			e.cfg.Metrics.Redelivered(sub.Name())
		}
		handle(ctx, m)
	}
}

// Failpoints are the crash points of a curate run that tests can set (nil
// means none): AfterPart runs once part n is staged, AfterCommit once the
// output is committed, before the run reports success.
type Failpoints struct {
	AfterPart   func(n int)
	AfterCommit func()
}

// ExecTask is the child side of a curate run (`sluice job exec`): it opens
// the store, runs curate and returns the committed output keys. afterPart,
// if not nil, is called after each part file (0-based) is written: the
// CLI's failpoint kills the process there.
func ExecTask(ctx context.Context, t job.Task, fp Failpoints) ([]string, error) {
	if t.Kind != job.KindCurate {
		return nil, fault.Permanent(fmt.Errorf("unknown job kind %q", t.Kind))
	}
	var spec curate.Spec
	if err := json.Unmarshal(t.Curate, &spec); err != nil {
		return nil, fault.Permanent(fmt.Errorf("read curate spec: %w", err))
	}
	st, err := store.Open(ctx, t.StoreURL, nil)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	res, err := curate.Run(ctx, curateStore{st}, spec, &curate.Options{AfterPart: fp.AfterPart,
		BeforeCommit: func(ctx context.Context) error { return local.CheckFence(ctx, t) },
		Logf:         func(f string, a ...any) { fmt.Printf(f+"\n", a...) }})
	if errors.Is(err, curate.ErrNoInput) || errors.Is(err, curate.ErrOutputExists) {
		return nil, fault.Permanent(err) // data errors (*format.RecordError) are permanent by themselves
	}
	if err != nil {
		return nil, err // a store or disk failure: transient, the run is retried
	}
	if fp.AfterCommit != nil {
		fp.AfterCommit()
	}
	fmt.Printf("curated %d row(s) from %d input(s) into %d part file(s) under %s\n", res.Rows, len(res.Inputs), res.Files, spec.Output)
	out := make([]string, len(res.Outputs))
	for i, o := range res.Outputs {
		out[i] = o.Key
	}
	return out, nil
}

// curateStore adapts *store.Store to curate.Store.
type curateStore struct{ s *store.Store }

func (c curateStore) List(ctx context.Context, prefix string) ([]curate.Object, error) {
	objs, err := c.s.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]curate.Object, len(objs))
	for i, o := range objs {
		out[i] = curate.Object{Key: o.Key, Size: o.Size, ETag: o.ETag}
	}
	return out, nil
}

// Open opens an input. On a local store it opens the file in the store's
// root directly (os.OpenInRoot, so no symlink leads out of the root, as
// with the store's own Open): the store's Open also hashes the whole file
// for its ETag, which curate does not use — on a 126 MB CSV that was 15 %
// of the job's CPU, spent before the first record was parsed.
func (c curateStore) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	if dir := c.s.LocalDir(); dir != "" {
		f, err := os.OpenInRoot(dir, filepath.FromSlash(key))
		if err != nil {
			return nil, fmt.Errorf("store %s: open %q: %w", c.s.URL(), key, err)
		}
		return f, nil
	}
	rc, _, err := c.s.Open(ctx, key)
	return rc, err
}

func (c curateStore) Write(ctx context.Context, key string, r io.Reader, contentType string) error {
	_, err := c.s.Write(ctx, key, r, contentType)
	return err
}

func (c curateStore) Delete(ctx context.Context, key string) error { return c.s.Delete(ctx, key) }
func (c curateStore) LocalDir() string                             { return c.s.LocalDir() }
