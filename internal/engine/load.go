package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/format"
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

// handle processes one message and settles it: ack after commit, dead
// letter for bad input, nack with backoff for anything else.
func (ld *loader) handle(ctx context.Context, m *queue.Message) {
	log := ld.e.log.With("load", ld.spec.Name, "message", m.ID, "delivery", m.Deliveries)
	recs, err := event.Parse(m.Body, ld.spec.On.KeyEncoding)
	if errors.Is(err, event.ErrNoRecords) {
		ld.settle(ctx, m, nil, log) // e.g. s3:TestEvent: nothing to do
		return
	}
	if err != nil {
		ld.settle(ctx, m, permanent(fmt.Errorf("message %s: %w", m.ID, err)), log)
		return
	}
	// Keep the deadline fresh while a big object loads.
	stop := ld.keepAlive(ctx, m)
	defer stop()
	for _, r := range recs {
		if !ld.filter.Match(r) {
			continue
		}
		if err := ld.loadObject(ctx, r); err != nil {
			ld.settle(ctx, m, err, log)
			return
		}
	}
	ld.settle(ctx, m, nil, log)
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

func (ld *loader) settle(ctx context.Context, m *queue.Message, err error, log *slog.Logger) {
	switch {
	case err == nil:
		if aerr := m.Ack(ctx); aerr != nil && ctx.Err() == nil {
			log.Warn("ack failed; the message will be redelivered and skipped by the ledger", "err", aerr)
		}
	case ctx.Err() != nil:
		// Shutting down: leave the message unacked; it is redelivered.
	case isPermanent(err):
		ld.e.deadLetter(ctx, m, err.Error())
	default:
		delay := backoff(m.Deliveries)
		log.Warn("load failed; will retry", "in", delay, "err", err)
		ld.e.Stats.Retried.Add(1)
		if nerr := m.Nack(ctx, delay, err.Error()); nerr != nil {
			log.Warn("nack failed; the message is redelivered after its ack deadline", "err", nerr)
		}
	}
}

// backoff is 1s, 2s, 4s, ... capped at one minute.
func backoff(deliveries int) time.Duration {
	d := time.Second << min(max(deliveries-1, 0), 6)
	return min(d, time.Minute)
}

// loadObject loads one object version exactly once.
func (ld *loader) loadObject(ctx context.Context, r event.Record) error {
	key, etag := r.S3.Object.Key, r.S3.Object.ETag
	rc, obj, err := ld.e.Store.Open(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return permanent(fmt.Errorf("object %s (ETag %s): not found in store %s; it was deleted after its event — upload it again to load it", key, etag, ld.e.Store.URL()))
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
			return permanent(fmt.Errorf("object %s (ETag %s): %w; fix the object and upload it again", key, etag, err))
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("object %s: read: %w", key, err)
	}
	res, err := ld.e.WH.Load(ctx, driver.Batch{Table: ld.table, Mode: ld.spec.Write, Key: key, ETag: etag, Rows: rows})
	if errors.Is(err, driver.ErrInvalidData) {
		return permanent(fmt.Errorf("object %s (ETag %s): %w; fix the object and upload it again", key, etag, err))
	}
	if err != nil {
		return err
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
