// Package rabbitqueue is the RabbitMQ queue backend (amqp://user:pass@host:5672/vhost),
// over AMQP 0.9.1. It implements queue/driver and passes queue/drivertest's
// conformance suite; OpenInbox also reads a queue that a foreign producer
// (MinIO's AMQP bucket notifications) fills.
//
// Layout on the broker, for Options{Exchange: "sluice.posts"}:
//
//   - One durable topic exchange, sluice.posts. Publish sends every message
//     to it, persistent and mandatory, with a fresh message-id, and returns
//     only once the broker confirmed it (publisher confirms).
//   - One durable stream, "sluice.posts:log", bound to the exchange: the
//     topic's history. The driver contract says a subscription opened after
//     a message was published still receives it, and an exchange keeps
//     nothing, so a subscription queue created later is filled from the
//     stream first (see Subscribe).
//   - One durable quorum queue per subscription, "sluice.posts.<name>",
//     bound to the exchange with "#". Quorum queues replicate, survive
//     broker restarts and count deliveries (x-delivery-count).
//   - One durable stream of dead letters, "sluice.posts:dead-letters".
//     A stream, not a queue, because DeadLetters lists without consuming.
//
// Delivery. Receive pulls with basic.get instead of consuming with a
// prefetch: a message pushed into a client buffer and returned unseen when
// the subscription closes would have its delivery count raised although no
// one saw it, and the suite requires Deliveries 1 for a message first seen
// after a restart. Receive polls an empty queue every few milliseconds,
// backing off to 100ms.
//
// Deliveries is 1 + x-delivery-count (the quorum queue's count of earlier
// deliveries returned to it, by a requeue or a closed channel) + the
// Sluice-Delivered header (deliveries of earlier copies, see Nack).
// Message IDs are the AMQP message-id, set at Publish and kept on every
// copy, so they are stable across redeliveries.
//
// Ack wait. RabbitMQ has no per-message ack deadline, so the driver keeps
// one: a message neither acked nor marked in progress within AckWait is
// rejected with requeue, and the broker delivers it again with its count
// raised. (The broker's own consumer_timeout, 30 minutes by default, still
// closes a channel holding a message longer than that.)
//
// Nack. A requeue (basic.reject) is applied by the quorum queue
// asynchronously: measured on RabbitMQ 3.10, the queue's message count read
// right after it missed the message every time, so Pending would be short.
// Nack therefore republishes a copy straight into the subscription's queue
// (same message-id, body and headers, Sluice-Delivered raised), waits for
// the broker's confirm and only then acks the original: when Nack returns,
// the copy is counted. Nack with a delay holds the message (unacked, so
// counted by Pending and returned by the broker should this process die)
// and republishes it when the delay has passed. A per-queue delay queue with
// TTL and dead-lettering would survive a crash of the consumer, but
// per-message TTLs expire only at the head of a queue, so one long delay
// would hold back every shorter one behind it; holding costs an earlier
// retry after a crash at most, which at-least-once delivery allows.
//
// Pending is the subscription queue's ready count (queue.declare, exact once
// Publish or Nack returned) plus the messages this Topic's subscriptions of
// that name hold unacked. AMQP 0.9.1 does not report a queue's unacked
// count, so messages another process holds are not counted. A message
// requeued because its ack wait ran out may be missing from the count for
// the few milliseconds the quorum queue takes to apply the requeue.
//
// Connections. A Topic owns one connection and reconnects with capped
// exponential backoff when the broker closes it (a restart); operations
// wait for the reconnection until their ctx's deadline, or 10 seconds when
// ctx has none, and fail with errors marked fault.Transient. Receive keeps
// retrying while its ctx lasts. A message received before the connection
// was lost can no longer be acked: the broker redelivers it.
//
// Topic and the subscriptions are safe for concurrent use.
package rabbitqueue

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/queue"
	"github.com/sluicehq/sluice/queue/driver"
)

// Headers the driver sets. Sluice-Delivered is internal and stripped from
// received messages; the others are on dead letters.
const (
	HeaderDelivered    = "Sluice-Delivered"
	HeaderReason       = "Sluice-Reason"
	HeaderSubscription = "Sluice-Subscription"
	HeaderDeliveries   = "Sluice-Deliveries"
	HeaderMessageID    = "Sluice-Message-Id"
	HeaderAt           = "Sluice-At"
)

// routingKey is the key Publish uses; subscription queues bind with "#".
const routingKey = "events"

var (
	_ driver.Topic        = (*Topic)(nil)
	_ driver.Subscription = (*subscription)(nil)
)

// Options name where a topic lives on the broker. Exchange is required.
type Options struct {
	// Exchange is the topic exchange, e.g. "sluice.posts".
	Exchange string
	// QueuePrefix starts the names of the topic's queues and streams
	// (default: Exchange). Subscription name's queue is QueuePrefix+"."+name.
	QueuePrefix string
	// Logger receives reconnection notices (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock for dead-letter times (default time.Now).
	Now func() time.Time
}

// Names returns the broker objects of a topic with these options: the
// exchange, the log stream, the dead-letter stream, and the queue of
// subscription sub.
func (o Options) Names(sub string) (exchange, log, deadLetters, queue string) {
	p := o.QueuePrefix
	if p == "" {
		p = o.Exchange
	}
	return o.Exchange, p + ":log", p + ":dead-letters", p + "." + sub
}

// Topic is a RabbitMQ-backed topic.
type Topic struct {
	opts     Options
	l        *link
	log      *slog.Logger
	now      func() time.Time
	exchange string
	logQ     string
	dlq      string

	pubMu  sync.Mutex
	pub    *amqp.Channel
	pubGen uint64

	mu       sync.Mutex
	closed   bool
	subs     []*subscription
	inflight map[string]*atomic.Int64 // queue name -> messages held by this Topic's subscriptions
}

// Open connects to amqpURL, declares the exchange, the log and dead-letter
// streams, and returns the topic. The Topic owns its connection.
func Open(ctx context.Context, amqpURL string, opts Options) (*Topic, error) {
	if opts.Exchange == "" {
		return nil, fault.Permanent(fmt.Errorf("rabbitqueue: open: Options.Exchange is empty; set an exchange name such as sluice.posts"))
	}
	if strings.HasPrefix(opts.Exchange, "amq.") {
		return nil, fault.Permanent(fmt.Errorf("rabbitqueue: open: exchange %q: names starting amq. are reserved by the broker; pick another", opts.Exchange))
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	exchange, logQ, dlq, _ := opts.Names("")
	t := &Topic{opts: opts, log: log, now: now, exchange: exchange, logQ: logQ, dlq: dlq, inflight: map[string]*atomic.Int64{}}
	l, err := dialLink(ctx, amqpURL, log, t.declare)
	if err != nil {
		return nil, err
	}
	t.l = l
	return t, nil
}

// declare creates the exchange and streams (idempotent), on c.
func (t *Topic) declare(c *amqp.Connection) error {
	ch, err := c.Channel()
	if err != nil {
		return fault.Transient(fmt.Errorf("rabbitqueue: open channel to declare exchange %s: %w", t.exchange, err))
	}
	defer func() { _ = ch.Close() }()
	if err := ch.ExchangeDeclare(t.exchange, amqp.ExchangeTopic, true, false, false, false, nil); err != nil {
		return fmt.Errorf("rabbitqueue: declare topic exchange %s: %w (an exchange of another type may exist under that name)", t.exchange, err)
	}
	for _, s := range []string{t.logQ, t.dlq} {
		if err := declareStream(ch, s); err != nil {
			return fmt.Errorf("rabbitqueue: declare stream %s: %w (a queue of another type may exist under that name; RabbitMQ 3.9 or newer is needed)", s, err)
		}
	}
	if err := ch.QueueBind(t.logQ, "#", t.exchange, false, nil); err != nil {
		return fault.Transient(fmt.Errorf("rabbitqueue: bind stream %s to exchange %s: %w", t.logQ, t.exchange, err))
	}
	return nil
}

func (t *Topic) check(op string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("rabbitqueue: %s on exchange %s: %w", op, t.exchange, queue.ErrClosed)
	}
	return nil
}

// publisher returns the confirm-mode channel Publish uses, opening a new one
// after a reconnection.
func (t *Topic) publisher(ctx context.Context) (*amqp.Channel, error) {
	t.pubMu.Lock()
	defer t.pubMu.Unlock()
	if t.pub != nil && !t.pub.IsClosed() && t.pubGen == t.l.generation() {
		return t.pub, nil
	}
	if t.pub != nil {
		_ = t.pub.Close()
	}
	ch, gen, err := t.l.channel(ctx)
	if err != nil {
		return nil, err
	}
	t.pub, t.pubGen = ch, gen
	return ch, nil
}

// Publish sends body to the exchange and returns once the broker confirmed
// it (it is then in the log stream and every subscription queue).
func (t *Topic) Publish(ctx context.Context, body []byte, header map[string]string) error {
	if err := t.check("publish"); err != nil {
		return err
	}
	ch, err := t.publisher(ctx)
	if err != nil {
		return fmt.Errorf("rabbitqueue: publish to exchange %s: %w", t.exchange, err)
	}
	p := amqp.Publishing{
		MessageId:    newID(),
		Timestamp:    t.now(),
		DeliveryMode: amqp.Persistent,
		Body:         body,
	}
	if len(header) > 0 {
		p.Headers = make(amqp.Table, len(header))
		for k, v := range header {
			p.Headers[k] = v
		}
	}
	if err := publishConfirmed(ctx, ch, t.exchange, routingKey, p); err != nil {
		return fmt.Errorf("rabbitqueue: publish to exchange %s on %s: %w", t.exchange, t.l.safe, err)
	}
	return nil
}

func newID() string { return strings.ToLower(rand.Text()) }

func (t *Topic) counter(q string) *atomic.Int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.inflight[q]
	if c == nil {
		c = new(atomic.Int64)
		t.inflight[q] = c
	}
	return c
}

// Subscribe declares the quorum queue of subscription name, binds it to the
// exchange and returns a subscription on it.
//
// A queue created now is first filled with the topic's history: the driver
// appends an end marker to the log stream and copies every message before
// it into the queue (with its message-id), then records that the copy is
// complete by declaring the exchange "<queue>:backfilled". Should the
// process die during the copy, the next Subscribe copies again. A message
// published while a queue is being created may reach it twice (routed and
// copied); consumers are idempotent under at-least-once delivery anyway.
func (t *Topic) Subscribe(ctx context.Context, name string, opts driver.SubscriptionOptions) (driver.Subscription, error) {
	if err := t.check("subscribe"); err != nil {
		return nil, err
	}
	_, _, _, qname := t.opts.Names(name)
	mark := qname + ":backfilled"
	ch, _, err := t.l.channel(ctx)
	if err != nil {
		return nil, fmt.Errorf("rabbitqueue: subscribe %q: %w", name, err)
	}
	defer func() { _ = ch.Close() }()
	if _, err := ch.QueueDeclare(qname, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		return nil, fmt.Errorf("rabbitqueue: declare quorum queue %s for subscription %q: %w (a queue of another type may exist under that name)", qname, name, err)
	}
	if err := ch.QueueBind(qname, "#", t.exchange, false, nil); err != nil {
		return nil, fault.Transient(fmt.Errorf("rabbitqueue: bind queue %s to exchange %s: %w", qname, t.exchange, err))
	}
	done, err := t.exchangeExists(ctx, mark)
	if err != nil {
		return nil, fmt.Errorf("rabbitqueue: subscribe %q: %w", name, err)
	}
	if !done {
		if err := t.backfill(ctx, ch, qname); err != nil {
			return nil, fmt.Errorf("rabbitqueue: subscribe %q: copy the topic's history from stream %s into queue %s: %w", name, t.logQ, qname, err)
		}
		if err := ch.ExchangeDeclare(mark, amqp.ExchangeFanout, true, false, true, false, nil); err != nil {
			return nil, fault.Transient(fmt.Errorf("rabbitqueue: subscribe %q: record the history copy as done (exchange %s): %w", name, mark, err))
		}
	}
	s := newSubscription(t.l, t.log, t.now, name, qname, t.dlq, opts.AckWait, t.counter(qname))
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		_ = s.Close()
		return nil, fmt.Errorf("rabbitqueue: subscribe %q on exchange %s: %w", name, t.exchange, queue.ErrClosed)
	}
	t.subs = append(t.subs, s)
	return s, nil
}

// exchangeExists declares name passively on a channel of its own (a missing
// exchange closes the channel).
func (t *Topic) exchangeExists(ctx context.Context, name string) (bool, error) {
	c, _, err := t.l.conn(ctx)
	if err != nil {
		return false, err
	}
	ch, err := c.Channel()
	if err != nil {
		return false, fault.Transient(fmt.Errorf("open channel: %w", err))
	}
	defer func() { _ = ch.Close() }()
	err = ch.ExchangeDeclarePassive(name, amqp.ExchangeFanout, true, false, true, false, nil)
	if err == nil {
		return true, nil
	}
	if ae, ok := err.(*amqp.Error); ok && ae.Code == amqp.NotFound {
		return false, nil
	}
	return false, fault.Transient(fmt.Errorf("look up exchange %s: %w", name, err))
}

// backfill copies the log stream into queue qname, pipelining confirms.
func (t *Topic) backfill(ctx context.Context, ch *amqp.Channel, qname string) error {
	var pending []*amqp.DeferredConfirmation
	wait := func() error {
		ctx, cancel := withTimeout(ctx)
		defer cancel()
		for _, dc := range pending {
			ok, err := dc.WaitContext(ctx)
			if err != nil {
				return fault.Transient(err)
			}
			if !ok {
				return fault.Transient(fmt.Errorf("the broker did not confirm a copied message"))
			}
		}
		pending = pending[:0]
		return nil
	}
	err := readLog(ctx, t.l, t.logQ, func(d *amqp.Delivery) error {
		h := amqp.Table{}
		for k, v := range d.Headers {
			if !strings.HasPrefix(k, "x-") {
				h[k] = v
			}
		}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", qname, true, false, amqp.Publishing{
			Headers: h, MessageId: d.MessageId, Timestamp: d.Timestamp, ContentType: d.ContentType,
			DeliveryMode: amqp.Persistent, Body: d.Body,
		})
		if err != nil {
			return fault.Transient(err)
		}
		pending = append(pending, dc)
		if len(pending) >= 256 {
			return wait()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return wait()
}

// DeadLetters reads the dead-letter stream, oldest first.
func (t *Topic) DeadLetters(ctx context.Context) ([]driver.DeadLetter, error) {
	if err := t.check("list dead letters"); err != nil {
		return nil, err
	}
	var out []driver.DeadLetter
	err := readLog(ctx, t.l, t.dlq, func(d *amqp.Delivery) error {
		out = append(out, deadLetterFrom(d.Headers, d.Body, d.Timestamp))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rabbitqueue: list dead letters of exchange %s: %w", t.exchange, err)
	}
	return out, nil
}

// deadLetterFrom decodes a stored dead letter. Missing or malformed Sluice
// headers leave their fields zero: a dead letter is still worth listing.
func deadLetterFrom(h amqp.Table, body []byte, ts time.Time) driver.DeadLetter {
	dl := driver.DeadLetter{
		Subscription: str(h[HeaderSubscription]),
		ID:           str(h[HeaderMessageID]),
		Body:         body,
		Reason:       str(h[HeaderReason]),
		At:           ts,
	}
	if n, err := strconv.Atoi(str(h[HeaderDeliveries])); err == nil && n >= 0 {
		dl.Deliveries = n
	}
	if at, err := time.Parse(time.RFC3339Nano, str(h[HeaderAt])); err == nil {
		dl.At = at
	}
	for k, v := range h {
		if strings.HasPrefix(k, "Sluice-") || strings.HasPrefix(k, "x-") {
			continue
		}
		if dl.Header == nil {
			dl.Header = map[string]string{}
		}
		dl.Header[k] = str(v)
	}
	return dl
}

// str renders an AMQP header value as a string.
func str(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case []byte:
		return string(v)
	default:
		return fmt.Sprint(v)
	}
}

// Close stops every subscription and closes the connection.
func (t *Topic) Close() error {
	t.mu.Lock()
	subs := t.subs
	already := t.closed
	t.subs, t.closed = nil, true
	t.mu.Unlock()
	if already {
		return nil
	}
	for _, s := range subs {
		_ = s.Close()
	}
	t.l.close()
	return nil
}
