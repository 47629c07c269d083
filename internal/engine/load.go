package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/deadletter"
	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/format"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/queue"
	"github.com/sluicehq/sluice/schema"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/warehouse"
)

// loader consumes events for one load of the spec.
type loader struct {
	e      *Engine
	spec   pipeline.Load
	filter event.Filter
	mapper *format.Mapper
	table  warehouse.Table
}

func (e *Engine) newLoader(l pipeline.Load) (*loader, error) {
	cols := make([]format.Column, len(l.Columns))
	for i, c := range l.Columns {
		cols[i] = format.Column{Field: c.Field, Path: c.Path, Name: c.Name, Type: c.Type, Required: c.Required}
		if len(c.Path) == 1 && c.Path[0] == c.Field {
			cols[i].Path = nil // a plain top-level field
		} else if len(c.Path) > 0 {
			cols[i].Field = "" // a nested path
		}
	}
	m, err := format.NewMapper(cols, &format.MapperOptions{OnMissing: l.OnMissing, Extra: l.Extra, ExtraColumn: l.ExtraColumn})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", l.Name, err)
	}
	return &loader{
		e:      e,
		spec:   l,
		filter: l.On.Filter(),
		mapper: m,
		table:  l.TableDef(),
	}, nil
}

// subscription is the durable subscription name of a load.
func (ld *loader) subscription() string { return "load-" + ld.spec.Name }

// handle processes one message and settles it. Each matching object
// version is loaded; a transient failure (warehouse, store or disk
// unavailable) is retried in place with capped exponential backoff while
// the message's ack deadline is kept fresh, so this worker pauses instead
// of burning deliveries, and later messages wait behind it (which keeps
// their order); a permanent failure, or a transient one past retry_for, is
// recorded in sluice's dead letters. The message is acked only once every
// object version in it is committed or dead-lettered; when recording a
// dead letter fails, or on shutdown, it stays unacked and is redelivered.
func (ld *loader) handle(ctx context.Context, m *queue.Message) {
	log := ld.e.log.With("load", ld.spec.Name, "message", m.ID, "delivery", m.Deliveries)
	if t := m.Header[HeaderTarget]; t != "" && t != ld.subscription() {
		ld.e.ack(ctx, m, log) // a replay meant for another load or job
		return
	}
	recs, err := event.Parse(m.Body, ld.spec.On.KeyEncoding)
	if errors.Is(err, event.ErrNoRecords) {
		ld.e.ack(ctx, m, log) // e.g. s3:TestEvent: nothing to do
		return
	}
	if err != nil {
		reason := fmt.Sprintf("load %s: message %s is not an S3 event: %v", ld.spec.Name, m.ID, err)
		if ld.e.deadLetter(ctx, deadletter.DeadLetter{Target: ld.subscription(), Kind: deadletter.Load, Name: ld.spec.Name,
			Key: "message-" + m.ID, Event: m.Body, Reason: reason}) {
			ld.e.ack(ctx, m, log)
		}
		return
	}
	// Keep the deadline fresh while a big object loads or retries wait.
	stop := ld.e.keepAlive(ctx, m)
	defer stop()
	for _, r := range recs {
		if !ld.filter.Match(r) || !ld.spec.Takes(r.S3.Object.Key) {
			continue
		}
		if !ld.loadWithRetry(ctx, r, m.Body, log) {
			if ctx.Err() != nil {
				ld.e.leftUnacked(ld.subscription() + " " + r.S3.Object.Key)
			}
			return // shutting down, or the dead letter could not be recorded: redelivered later
		}
	}
	ld.e.ack(ctx, m, log)
}

// loadWithRetry loads one object version, retrying transient failures in
// place (Engine.retrying). It returns true once the version is committed
// (or was already) or dead-lettered, false when ctx ended or the dead
// letter could not be recorded.
func (ld *loader) loadWithRetry(ctx context.Context, r event.Record, body []byte, log *slog.Logger) bool {
	key, etag := r.S3.Object.Key, r.S3.Object.ETag
	lin := ld.startLineage(key)
	var rows int64
	err, attempts, first := ld.e.retrying(ctx, ld.subscription()+" "+key, log, func() error {
		var err error
		rows, err = ld.loadObject(ctx, r)
		return err
	})
	switch {
	case err == nil:
		lin.end(rows, nil)
		return true
	case ctx.Err() != nil:
		return false // no end event: the load is redelivered and runs again
	}
	lin.end(0, err)
	var le *format.LimitError
	if errors.As(err, &le) {
		ld.e.Stats.LimitsHit.Add(1)
		ld.e.cfg.Metrics.LimitHit(le.Key)
	}
	return ld.e.deadLetter(ctx, deadletter.DeadLetter{Target: ld.subscription(), Kind: deadletter.Load, Name: ld.spec.Name,
		Key: key, ETag: etag, Event: body, Reason: err.Error(), Attempts: attempts, FirstFailure: first})
}

// keepAlive keeps m's ack deadline fresh until the returned stop is
// called, while long work or retries go on.
func (e *Engine) keepAlive(ctx context.Context, m *queue.Message) func() {
	every := e.qopts.AckWait
	if every <= 0 {
		every = queue.DefaultAckWait
	}
	return repeat(ctx, every/3, func() { _ = m.InProgress(ctx) })
}

// repeat calls f every d until the returned stop is called or ctx ends.
func repeat(ctx context.Context, d time.Duration, f func()) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				f()
			}
		}
	}()
	return func() { close(done) }
}

// loadObject loads one object version exactly once and returns the rows it
// committed (0 when the version was loaded before or is superseded).
func (ld *loader) loadObject(ctx context.Context, r event.Record) (int64, error) {
	start := time.Now()
	key, etag := r.S3.Object.Key, r.S3.Object.ETag
	rc, obj, err := ld.e.Store.Open(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return 0, fault.Permanent(fmt.Errorf("object %s (ETag %s): not found in store %s; it was deleted after its event — upload it again to load it", key, etag, ld.e.Store.URL()))
	}
	if errors.Is(err, store.ErrInvalidKey) {
		return 0, fault.Permanent(fmt.Errorf("object %s: %w; sluice cannot read objects with such keys", key, err))
	}
	if err != nil {
		return 0, fmt.Errorf("object %s: %w", key, err)
	}
	defer rc.Close()
	if etag != "" && obj.ETag != "" && obj.ETag != etag {
		// The object was overwritten; its new version has its own event.
		// Nothing is left to do for this version, ever (the store no
		// longer holds it): a dead letter of it, being replayed, is
		// resolved rather than listed forever.
		ld.e.log.Info("skipping superseded object version", "key", key, "event_etag", etag, "current_etag", obj.ETag)
		if _, err := ld.e.State.ResolveDeadLetter(ctx, ld.subscription(), key, etag); err != nil {
			ld.e.log.Warn("could not clear the dead letter of a superseded object version", "key", key, "etag", etag, "err", err)
		}
		return 0, nil
	}
	if etag == "" {
		etag = obj.ETag
	}
	src, err := ld.stream(ctx, rc, key)
	if err != nil {
		return 0, fmt.Errorf("object %s: %w", key, err)
	}
	// The reader before the store's body: the decoder may be reading it,
	// and store readers are not safe to close under a concurrent Read.
	defer src.Close()
	defer ld.e.progress(ctx, "still loading", "records_read", src.rows.Load, "load", ld.spec.Name, "key", key, "size", obj.Size)()
	mode := warehouse.DeadLetter
	if ld.spec.OnBadRecord == pipeline.OnBadQuarantine {
		mode = warehouse.Quarantine
	}
	res, err := ld.e.WH.Load(ctx, warehouse.Batch{Table: ld.table, Mode: ld.spec.Write, Key: key, ETag: etag,
		Version: objectVersion(r, etag), Rows: src, OnBadRow: mode})
	if derr := src.err; derr != nil {
		// The object itself failed while it streamed (decode, limits,
		// on_missing: error, a bad record when dead-lettering).
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if format.IsReadFailure(derr) {
			return 0, fmt.Errorf("object %s (ETag %s): reading it from the store failed mid-object: %w", key, etag, derr) // transient
		}
		var re *format.RecordError
		if errors.Is(derr, format.ErrRejected) {
			return 0, fault.Permanent(fmt.Errorf("object %s (ETag %s): %w; fix the object and upload it again, or set on_bad_record: quarantine in load %s to load the other records and keep such records in %s%s",
				key, etag, derr, ld.spec.Name, ld.table.Name, warehouse.RejectedSuffix))
		}
		if errors.As(derr, &re) {
			return 0, fault.Permanent(fmt.Errorf("object %s (ETag %s): %w; fix the object and upload it again", key, etag, derr))
		}
		return 0, fmt.Errorf("object %s: read: %w", key, derr)
	}
	switch {
	case errors.Is(err, warehouse.ErrInvalidData):
		return 0, fault.Permanent(fmt.Errorf("object %s (ETag %s): %w; fix the object and upload it again", key, etag, err))
	case errors.Is(err, warehouse.ErrNoTable):
		// The cause and the remedy come first: `sluice dlq ls` shows a
		// reason's first 200 characters, and the warehouse's own error
		// (its URL, the object again) is long.
		return 0, fault.Permanent(fmt.Errorf("object %s (ETag %s): table %s does not exist; create it (a restart of sluice run does) and replay the object with `sluice dlq replay`: %w", key, etag, ld.table.Name, err))
	case err != nil:
		return 0, fmt.Errorf("object %s (ETag %s): %w", key, etag, err)
	}
	if w := src.rd.Report().Warning(); w != "" {
		ld.e.Stats.Warnings.Add(1)
		ld.e.log.Warn("object loaded with a warning: "+w, "load", ld.spec.Name, "key", key, "etag", etag)
	}
	if res.Rejected > 0 {
		ld.e.Stats.Rejected.Add(res.Rejected)
		ld.e.log.Warn("rows quarantined", "load", ld.spec.Name, "key", key, "etag", etag, "rejected", res.Rejected, "table", ld.table.Name+warehouse.RejectedSuffix)
	}
	if _, err := ld.e.State.ResolveDeadLetter(ctx, ld.subscription(), key, etag); err != nil {
		ld.e.log.Warn("could not clear the dead letter of a loaded object", "key", key, "err", err)
	}
	if res.Superseded {
		ld.e.log.Info("an older version of the object: a newer one is loaded, nothing replaced", "key", key, "etag", etag, "table", ld.table.Name)
	}
	if !res.Loaded {
		ld.e.Stats.Duplicates.Add(1)
		ld.e.cfg.Metrics.Duplicate(ld.spec.Name)
		ld.e.log.Info("object version already loaded; nothing to do", "key", key, "etag", etag, "table", ld.table.Name)
		return 0, nil
	}
	ld.e.Stats.ObjectsLoaded.Add(1)
	ld.e.Stats.Rows.Add(res.Rows)
	ld.e.cfg.Metrics.Loaded(ld.spec.Name, res.Rows, res.Rejected, obj.Size, time.Since(start))
	ld.e.log.Info("loaded object", "key", key, "etag", etag, "table", ld.table.Name, "rows", res.Rows)
	return res.Rows, nil
}

// objectVersion orders object versions for merge and replace: the event
// time (nanoseconds, 20 decimal digits), then the S3 sequencer (hex
// without leading zeros, after its length in two hex digits, so that
// sequencers of different lengths compare as numbers, as AWS documents),
// then a 64-bit hash of the key and the ETag (so that the value is unique
// per object version). Byte-wise order is version order. Every row a merge
// or replace writes carries it, so it is kept short: 40 bytes plus the
// sequencer. (Before, the sequencer was zero-padded to 32 digits and the
// key and ETag were spelled out; the event time leads both, so stored
// versions still order against new ones unless their times are equal to
// the nanosecond.)
func objectVersion(r event.Record, etag string) string {
	ns := max(r.EventTime.UnixNano(), 0)
	seq := strings.TrimLeft(strings.ToUpper(r.S3.Object.Sequencer), "0")
	h := fnv.New64a()
	h.Write([]byte(r.S3.Object.Key))
	h.Write([]byte{0})
	h.Write([]byte(etag))
	return fmt.Sprintf("%020d|%02x%s|%016x", ns, len(seq), seq, h.Sum64())
}

// objectReader is the object's format.Reader as the warehouse reads it
// (a schema.Reader of typed batches, decoded ahead of the writes, never the
// whole object), keeping the error that stopped it: a decode error always
// stops the object; a record the mapper refused (format.ErrRejected) only
// without quarantine.
type objectReader struct {
	rd   *format.Reader
	err  error        // why the object failed while it streamed, once it did
	rows atomic.Int64 // records decoded so far, for progress
}

func (ld *loader) stream(ctx context.Context, r io.Reader, key string) (*objectReader, error) {
	rd, err := format.NewReader(ctx, r, format.ReadOptions{
		Format:     ld.spec.FormatFor(key),
		Mapper:     ld.mapper,
		Limits:     ld.spec.Limits,
		Delimiter:  ld.spec.Delimiter,
		Quarantine: ld.spec.OnBadRecord == pipeline.OnBadQuarantine,
	})
	if err != nil {
		return nil, err
	}
	return &objectReader{rd: rd}, nil
}

// Next implements schema.Reader.
func (o *objectReader) Next(ctx context.Context) (*schema.Batch, error) {
	b, err := o.rd.Next(ctx)
	if err != nil && err != io.EOF {
		o.err = err
	}
	if b != nil {
		o.rows.Add(int64(b.Len()))
	}
	return b, err
}

// Close implements schema.Reader.
func (o *objectReader) Close() error { return o.rd.Close() }
