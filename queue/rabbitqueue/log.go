package rabbitqueue

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicehq/sluice/fault"
)

// headerMarker tags the markers readLog appends to a stream to find its end.
// Every reader of a stream skips messages carrying it.
const headerMarker = "Sluice-Marker"

// declareStream declares a durable stream queue (an append-only log that
// readers do not consume).
func declareStream(ch *amqp.Channel, name string) error {
	_, err := ch.QueueDeclare(name, true, false, false, false, amqp.Table{"x-queue-type": "stream"})
	return err
}

// publishConfirmed publishes p on ch (in confirm mode) and waits for the
// broker's confirm, until ctx's deadline or opTimeout.
func publishConfirmed(ctx context.Context, ch *amqp.Channel, exchange, key string, p amqp.Publishing) error {
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, true, false, p)
	if err != nil {
		return fault.Transient(err)
	}
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		return fault.Transient(fmt.Errorf("waiting for the broker's publisher confirm: %w", err))
	}
	if !ok {
		return fault.Transient(fmt.Errorf("the broker did not confirm the publish (negative ack or channel closed)"))
	}
	return nil
}

// readLog calls fn on every message of the stream, oldest first, that was
// in it when readLog was called. AMQP 0.9.1 cannot ask a stream for its
// length, so readLog first appends a marker with a random token (confirmed)
// and reads from the first offset until it meets that marker; markers are
// never passed to fn. A read that receives nothing for opTimeout fails.
func readLog(ctx context.Context, l *link, stream string, fn func(d *amqp.Delivery) error) error {
	ch, _, err := l.channel(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = ch.Close() }()
	token := rand.Text()
	if err := publishConfirmed(ctx, ch, "", stream, amqp.Publishing{
		Headers:      amqp.Table{headerMarker: token},
		DeliveryMode: amqp.Persistent,
	}); err != nil {
		return fmt.Errorf("append end marker to stream %s: %w", stream, err)
	}
	if err := ch.Qos(256, 0, false); err != nil {
		return fault.Transient(fmt.Errorf("set prefetch to read stream %s: %w", stream, err))
	}
	deliveries, err := ch.Consume(stream, "", false, false, false, false, amqp.Table{"x-stream-offset": "first"})
	if err != nil {
		return fault.Transient(fmt.Errorf("read stream %s: %w", stream, err))
	}
	idle := time.NewTimer(opTimeout)
	defer idle.Stop()
	for {
		select {
		case d, ok := <-deliveries:
			if !ok {
				return fault.Transient(fmt.Errorf("read stream %s: channel closed", stream))
			}
			_ = d.Ack(false) // streams need acks to grant more credit
			if m, ok := d.Headers[headerMarker]; ok {
				if fmt.Sprint(m) == token {
					return nil
				}
				continue
			}
			if err := fn(&d); err != nil {
				return err
			}
			idle.Reset(opTimeout)
		case <-idle.C:
			return fault.Transient(fmt.Errorf("read stream %s: no message for %v before its end marker", stream, opTimeout))
		case <-ctx.Done():
			return fault.Transient(fmt.Errorf("read stream %s: %w", stream, ctx.Err()))
		}
	}
}
