// Package queue carries events from producers to consumers with at-least-once
// delivery. Topic and Subscription are the user-facing types; backends
// implement queue/driver and are chosen by URL:
//
//	mem://NAME            in-process, for tests (memqueue)
//	embedded              NATS JetStream embedded in the process owning the data dir (natsqueue)
//	nats://HOST:PORT      an external NATS JetStream server (natsqueue)
//	amqp://U:P@HOST/VHOST RabbitMQ: a topic exchange, one quorum queue per subscription (rabbitqueue)
//	sqs://PREFIX?region=R Amazon SQS: one queue per subscription, each publish sent to all (sqsqueue)
//
// Delivery contract, for every backend: a message is delivered until it is
// acknowledged. Consumers ack only after their work is committed; a message
// that is not acked within the ack deadline is delivered again with its
// delivery count raised; Nack asks for a delayed redelivery; a message
// delivered more than MaxDeliveries times, or explicitly dead-lettered, is
// published to the dead-letter destination with the reason and never
// delivered again. Consumers must therefore be idempotent (sluice's loads
// are, through the warehouse ledger).
package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sluicehq/sluice/queue/driver"
)

// Defaults for SubscriptionOptions.
const (
	DefaultAckWait       = 30 * time.Second
	DefaultMaxDeliveries = 5
)

// Topic is a stream of messages with durable named subscriptions.
type Topic struct {
	name string
	d    driver.Topic
}

// NewTopic wraps a backend. name is used in error messages.
func NewTopic(name string, d driver.Topic) *Topic { return &Topic{name: name, d: d} }

// Name returns the topic's name (its URL, for messages).
func (t *Topic) Name() string { return t.name }

// Publish sends body; it returns once the backend holds it durably.
func (t *Topic) Publish(ctx context.Context, body []byte, header map[string]string) error {
	if len(body) == 0 {
		return fmt.Errorf("queue %s: publish: empty message", t.name)
	}
	if err := t.d.Publish(ctx, body, header); err != nil {
		return fmt.Errorf("queue %s: publish: %w", t.name, err)
	}
	return nil
}

// SubscriptionOptions configure Subscribe. The zero value means defaults.
type SubscriptionOptions struct {
	// AckWait: an unacked message is redelivered after this long (default 30s).
	AckWait time.Duration
	// MaxDeliveries: a message delivered this many times without an ack is
	// dead-lettered at its next delivery (default 5).
	MaxDeliveries int
}

// Subscribe opens the durable subscription name.
func (t *Topic) Subscribe(ctx context.Context, name string, opts *SubscriptionOptions) (*Subscription, error) {
	var o SubscriptionOptions
	if opts != nil {
		o = *opts
	}
	if o.AckWait <= 0 {
		o.AckWait = DefaultAckWait
	}
	if o.MaxDeliveries <= 0 {
		o.MaxDeliveries = DefaultMaxDeliveries
	}
	if name == "" {
		return nil, fmt.Errorf("queue %s: subscribe: empty subscription name", t.name)
	}
	s, err := t.d.Subscribe(ctx, name, driver.SubscriptionOptions{AckWait: o.AckWait})
	if err != nil {
		return nil, fmt.Errorf("queue %s: subscribe %q: %w", t.name, name, err)
	}
	return &Subscription{topic: t.name, name: name, opts: o, d: s}, nil
}

// DeadLetters lists every subscription's dead letters, oldest first.
func (t *Topic) DeadLetters(ctx context.Context) ([]driver.DeadLetter, error) {
	dl, err := t.d.DeadLetters(ctx)
	if err != nil {
		return nil, fmt.Errorf("queue %s: list dead letters: %w", t.name, err)
	}
	return dl, nil
}

// Close releases the backend.
func (t *Topic) Close() error { return t.d.Close() }

// Subscription receives the messages of one durable subscription.
type Subscription struct {
	topic, name string
	opts        SubscriptionOptions
	d           driver.Subscription

	mu      sync.Mutex
	lastErr map[string]string // message ID -> cause of its last Nack
}

// Message is one delivery. Exactly one of Ack, Nack or DeadLetter should be
// called once the consumer knows the outcome.
type Message struct {
	ID         string
	Body       []byte
	Header     map[string]string
	Deliveries int

	sub *Subscription
	m   *driver.Message
}

// Receive blocks for the next message. Messages delivered more than
// MaxDeliveries times are dead-lettered here, with that reason, and skipped.
func (s *Subscription) Receive(ctx context.Context) (*Message, error) {
	for {
		m, err := s.d.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("queue %s: receive on %q: %w", s.topic, s.name, err)
		}
		if m.Deliveries > s.opts.MaxDeliveries {
			reason := fmt.Sprintf("delivered %d times without success (max %d)", m.Deliveries-1, s.opts.MaxDeliveries)
			s.mu.Lock()
			if cause := s.lastErr[m.ID]; cause != "" {
				reason += "; last error: " + cause
			}
			delete(s.lastErr, m.ID)
			s.mu.Unlock()
			if err := s.d.DeadLetter(ctx, m, reason); err != nil {
				return nil, fmt.Errorf("queue %s: dead-letter message %s: %w", s.topic, m.ID, err)
			}
			continue
		}
		return &Message{ID: m.ID, Body: m.Body, Header: m.Header, Deliveries: m.Deliveries, sub: s, m: m}, nil
	}
}

// Ack marks the message done. Call it only after the work is committed.
func (m *Message) Ack(ctx context.Context) error {
	return m.wrap("ack", m.sub.d.Ack(ctx, m.m))
}

// Nack asks for redelivery after delay. cause, if not empty, is remembered
// by this process and quoted in the dead-letter reason should the message
// run out of deliveries.
func (m *Message) Nack(ctx context.Context, delay time.Duration, cause string) error {
	if cause != "" {
		m.sub.mu.Lock()
		if m.sub.lastErr == nil {
			m.sub.lastErr = map[string]string{}
		}
		m.sub.lastErr[m.ID] = cause
		m.sub.mu.Unlock()
	}
	return m.wrap("nack", m.sub.d.Nack(ctx, m.m, delay))
}

// InProgress resets the ack deadline while long work goes on.
func (m *Message) InProgress(ctx context.Context) error {
	return m.wrap("extend deadline of", m.sub.d.InProgress(ctx, m.m))
}

// DeadLetter gives up on the message for reason (which should name the
// object and record at fault and what to do).
func (m *Message) DeadLetter(ctx context.Context, reason string) error {
	return m.wrap("dead-letter", m.sub.d.DeadLetter(ctx, m.m, reason))
}

func (m *Message) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("queue %s: %s message %s on %q: %w", m.sub.topic, op, m.ID, m.sub.name, err)
}

// Pending counts messages not yet acked or dead-lettered.
func (s *Subscription) Pending(ctx context.Context) (int, error) {
	n, err := s.d.Pending(ctx)
	if err != nil {
		return 0, fmt.Errorf("queue %s: pending on %q: %w", s.topic, s.name, err)
	}
	return n, nil
}

// Name returns the subscription's name.
func (s *Subscription) Name() string { return s.name }

// Close stops receiving.
func (s *Subscription) Close() error { return s.d.Close() }

// ErrClosed is returned by drivers after Close.
var ErrClosed = errors.New("queue: closed")
