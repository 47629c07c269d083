package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/format"
	"github.com/sluicehq/sluice/internal/state"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/queue"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/warehouse/driver"
)

// loader consumes events for one load of the spec.
type loader struct {
	e      *Engine
	spec   pipeline.Load
	filter event.Filter
	mapper *format.Mapper
	table  driver.Table
}

func (e *Engine) newLoader(l pipeline.Load) (*loader, error) {
	cols := make([]format.Column, len(l.Columns))
	for i, c := range l.Columns {
		cols[i] = format.Column{Field: c.Field, Name: c.Name, Type: c.Type, Required: c.Required}
	}
	m, err := format.NewMapper(cols, nil)
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
		if ld.e.deadLetter(ctx, state.DeadLetter{Target: ld.subscription(), Kind: state.DeadLoad, Name: ld.spec.Name,
			Key: "message-" + m.ID, Event: m.Body, Reason: reason}) {
			ld.e.ack(ctx, m, log)
		}
		return
	}
	// Keep the deadline fresh while a big object loads or retries wait.
	stop := ld.keepAlive(ctx, m)
	defer stop()
	for _, r := range recs {
		if !ld.filter.Match(r) {
			continue
		}
		if !ld.loadWithRetry(ctx, r, m.Body, log) {
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
	err, attempts, first := ld.e.retrying(ctx, key, log, func() error { return ld.loadObject(ctx, r) })
	switch {
	case err == nil:
		return true
	case ctx.Err() != nil:
		return false
	}
	return ld.e.deadLetter(ctx, state.DeadLetter{Target: ld.subscription(), Kind: state.DeadLoad, Name: ld.spec.Name,
		Key: key, ETag: etag, Event: body, Reason: err.Error(), Attempts: attempts, FirstFailure: first})
}

func (ld *loader) keepAlive(ctx context.Context, m *queue.Message) func() {
	every := ld.e.qopts.AckWait
	if every <= 0 {
		every = queue.DefaultAckWait
	}
	every /= 3
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				_ = m.InProgress(ctx)
			}
		}
	}()
	return func() { close(done) }
}

// loadObject loads one object version exactly once.
func (ld *loader) loadObject(ctx context.Context, r event.Record) error {
	key, etag := r.S3.Object.Key, r.S3.Object.ETag
	rc, obj, err := ld.e.Store.Open(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return fault.Permanent(fmt.Errorf("object %s (ETag %s): not found in store %s; it was deleted after its event — upload it again to load it", key, etag, ld.e.Store.URL()))
	}
	if err != nil {
		return fmt.Errorf("object %s: %w", key, err)
	}
	defer rc.Close()
	if etag != "" && obj.ETag != "" && obj.ETag != etag {
		// The object was overwritten; its new version has its own event.
		ld.e.log.Info("skipping superseded object version", "key", key, "event_etag", etag, "current_etag", obj.ETag)
		return nil
	}
	if etag == "" {
		etag = obj.ETag
	}
	kind := ld.spec.FormatFor(key)
	var rows [][]any
	err = format.DecodeJSON(rc, kind, nil, func(rec format.Record) error {
		row, err := ld.mapper.Row(rec)
		if err != nil {
			return err
		}
		rows = append(rows, row)
		return nil
	})
	if err != nil {
		var re *format.RecordError
		if errors.As(err, &re) {
			return fault.Permanent(fmt.Errorf("object %s (ETag %s): %w; fix the object and upload it again", key, etag, err))
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("object %s: read: %w", key, err)
	}
	// Interim Version (the lead replaces it): event time, sequencer, key.
	version := r.EventTime.UTC().Format("2006-01-02T15:04:05.000000000Z") + "|" + r.S3.Object.Sequencer + "|" + key
	res, err := ld.e.WH.Load(ctx, driver.Batch{Table: ld.table, Mode: ld.spec.Write, Key: key, ETag: etag, Version: version, Rows: driver.SliceSource(rows)})
	if errors.Is(err, driver.ErrInvalidData) {
		return fault.Permanent(fmt.Errorf("object %s (ETag %s): %w; fix the object and upload it again", key, etag, err))
	}
	if err != nil {
		return fmt.Errorf("object %s (ETag %s): %w", key, etag, err)
	}
	if _, err := ld.e.State.ResolveDeadLetter(ctx, ld.subscription(), key, etag); err != nil {
		ld.e.log.Warn("could not clear the dead letter of a loaded object", "key", key, "err", err)
	}
	if !res.Loaded {
		ld.e.Stats.Duplicates.Add(1)
		ld.e.log.Info("object version already loaded; nothing to do", "key", key, "etag", etag, "table", ld.table.Name)
		return nil
	}
	ld.e.Stats.ObjectsLoaded.Add(1)
	ld.e.Stats.Rows.Add(res.Rows)
	ld.e.log.Info("loaded object", "key", key, "etag", etag, "table", ld.table.Name, "rows", res.Rows)
	return nil
}
