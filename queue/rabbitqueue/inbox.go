package rabbitqueue

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/queue/driver"
)

// InboxOptions configure OpenInbox. The zero value means defaults.
type InboxOptions struct {
	// AckWait: an unacked message is requeued after this long (default
	// queue.DefaultAckWait).
	AckWait time.Duration
	// Logger receives reconnection notices (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock for dead-letter times (default time.Now).
	Now func() time.Time
}

// inbox is a subscription that owns its connection.
type inbox struct{ *subscription }

// Close closes the subscription and the connection.
func (i inbox) Close() error {
	err := i.subscription.Close()
	i.l.close()
	return err
}

// OpenInbox returns a subscription over queueName, a queue that a foreign
// producer fills (MinIO's AMQP bucket notifications, bound by the operator
// to the exchange MinIO publishes to). The queue is used as it is when it
// exists, whatever its type; a missing one is declared as a durable quorum
// queue (bind it to the producer's exchange). Bodies are the raw bytes the
// producer sent; acks, nacks and the ack wait work as on a topic's
// subscription. A message without a message-id gets its body's hash as ID.
// Delivery counts include x-delivery-count only on quorum queues. DeadLetter
// appends to the stream "<queueName>:dead-letters", declared here.
// The subscription owns its connection; Close closes it.
func OpenInbox(ctx context.Context, amqpURL, queueName string, opts InboxOptions) (driver.Subscription, error) {
	if queueName == "" {
		return nil, fault.Permanent(fmt.Errorf("rabbitqueue: open inbox: empty queue name; name the queue the notifications are routed to"))
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	dlq := queueName + ":dead-letters"
	declare := func(c *amqp.Connection) error {
		ch, err := c.Channel()
		if err != nil {
			return fault.Transient(fmt.Errorf("rabbitqueue: open channel: %w", err))
		}
		_, err = ch.QueueDeclarePassive(queueName, true, false, false, false, nil)
		_ = ch.Close()
		if ae, ok := err.(*amqp.Error); ok && ae.Code == amqp.NotFound {
			if ch, err = c.Channel(); err != nil {
				return fault.Transient(fmt.Errorf("rabbitqueue: open channel: %w", err))
			}
			_, err = ch.QueueDeclare(queueName, true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
			_ = ch.Close()
		}
		if err != nil {
			return fmt.Errorf("rabbitqueue: open inbox queue %s: %w", queueName, err)
		}
		if ch, err = c.Channel(); err != nil {
			return fault.Transient(fmt.Errorf("rabbitqueue: open channel: %w", err))
		}
		defer func() { _ = ch.Close() }()
		if err := declareStream(ch, dlq); err != nil {
			return fmt.Errorf("rabbitqueue: declare dead-letter stream %s of inbox %s: %w", dlq, queueName, err)
		}
		return nil
	}
	l, err := dialLink(ctx, amqpURL, log, declare)
	if err != nil {
		return nil, err
	}
	return inbox{newSubscription(l, log, now, queueName, queueName, dlq, opts.AckWait, new(atomic.Int64))}, nil
}

// InboxDeadLetters lists the dead letters of the inbox over queueName,
// oldest first.
func InboxDeadLetters(ctx context.Context, amqpURL, queueName string) ([]driver.DeadLetter, error) {
	l, err := dialLink(ctx, amqpURL, slog.Default(), nil)
	if err != nil {
		return nil, err
	}
	defer l.close()
	var out []driver.DeadLetter
	dlq := queueName + ":dead-letters"
	err = readLog(ctx, l, dlq, func(d *amqp.Delivery) error {
		out = append(out, deadLetterFrom(d.Headers, d.Body, d.Timestamp))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rabbitqueue: list dead letters of inbox %s (stream %s): %w", queueName, dlq, err)
	}
	return out, nil
}
