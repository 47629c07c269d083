package rabbitqueue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
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

// Polling of an empty queue: first wait, and the most it backs off to.
const (
	pollMin = 5 * time.Millisecond
	pollMax = 100 * time.Millisecond
)

// ErrNotHeld is matched (errors.Is) by Ack, Nack, InProgress and DeadLetter
// on a message this subscription no longer holds: its ack wait ran out (it
// was requeued and will be delivered again), it was already settled, or the
// connection it came on was lost (the broker delivers it again).
var ErrNotHeld = errors.New("message no longer held by this subscription")

// Delivery states.
const (
	held     = iota // delivered, ack wait running
	delayed         // nacked with a delay, waiting to be republished
	settling        // being acked, nacked or dead-lettered
	settled
)

// delivery is the Handle of a received message.
type delivery struct {
	ch       *amqp.Channel
	tag      uint64
	d        amqp.Delivery
	id       string
	count    int // Deliveries
	state    int
	deadline time.Time
	timer    *time.Timer
}

// subscription pulls from one queue with basic.get on a channel of its own.
type subscription struct {
	l        *link
	log      *slog.Logger
	now      func() time.Time
	name     string // for dead letters and messages
	qname    string
	dlq      string
	ackWait  time.Duration
	inflight *atomic.Int64

	chMu  sync.Mutex // guards ch and gen, and serialises RPCs on ch
	ch    *amqp.Channel
	gen   uint64
	turn  chan struct{} // serialises Receive
	mu    sync.Mutex    // guards held and every delivery's state
	held  map[*delivery]struct{}
	done  chan struct{}
	close sync.Once
}

func newSubscription(l *link, log *slog.Logger, now func() time.Time, name, qname, dlq string, ackWait time.Duration, inflight *atomic.Int64) *subscription {
	if ackWait <= 0 {
		ackWait = queue.DefaultAckWait
	}
	return &subscription{
		l: l, log: log, now: now, name: name, qname: qname, dlq: dlq, ackWait: ackWait, inflight: inflight,
		turn: make(chan struct{}, 1), held: map[*delivery]struct{}{}, done: make(chan struct{}),
	}
}

func (s *subscription) closedErr(op string) error {
	return fmt.Errorf("rabbitqueue: %s on queue %s: %w", op, s.qname, queue.ErrClosed)
}

func (s *subscription) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// rpc runs f with the subscription's channel, opening a new one after a
// reconnection; RPCs on one channel must not overlap.
func (s *subscription) rpc(ctx context.Context, f func(ch *amqp.Channel) error) error {
	s.chMu.Lock()
	defer s.chMu.Unlock()
	if s.ch == nil || s.ch.IsClosed() || s.gen != s.l.generation() {
		if s.ch != nil {
			_ = s.ch.Close()
			s.prune()
		}
		ch, gen, err := s.l.channel(ctx)
		if err != nil {
			return err
		}
		s.ch, s.gen = ch, gen
	}
	return f(s.ch)
}

// Receive pulls the next message, polling while the queue is empty and
// retrying while the broker is unreachable, until ctx is done.
func (s *subscription) Receive(ctx context.Context) (*driver.Message, error) {
	select {
	case s.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
		return nil, s.closedErr("receive")
	}
	defer func() { <-s.turn }()
	wait := pollMin
	for {
		if s.isClosed() {
			return nil, s.closedErr("receive")
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var (
			d   amqp.Delivery
			ok  bool
			ch  *amqp.Channel
			err error
		)
		err = s.rpc(ctx, func(c *amqp.Channel) error {
			ch = c
			d, ok, err = c.Get(s.qname, false)
			return err
		})
		switch {
		case err != nil && ctx.Err() != nil:
			return nil, ctx.Err()
		case err != nil && (fault.IsTransient(err) && !isAMQPError(err) || connectionLost(err)):
			s.log.Debug("rabbitqueue: receive: broker unavailable; retrying", "queue", s.qname, "err", err)
			wait = maxBackoff / 10
		case err != nil:
			return nil, fmt.Errorf("rabbitqueue: get from queue %s: %w", s.qname, err)
		case ok:
			return s.hand(ch, d), nil
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.done:
			return nil, s.closedErr("receive")
		}
		wait = min(2*wait, pollMax)
	}
}

func isAMQPError(err error) bool {
	var ae *amqp.Error
	return errors.As(err, &ae)
}

// hand registers d as held and starts its ack wait.
func (s *subscription) hand(ch *amqp.Channel, d amqp.Delivery) *driver.Message {
	header, count := decodeHeaders(d.Headers)
	id := d.MessageId
	if id == "" {
		// A foreign producer set none: the body's hash is stable across
		// redeliveries (identical bodies share it).
		sum := sha256.Sum256(d.Body)
		id = "sha256-" + hex.EncodeToString(sum[:12])
	}
	dl := &delivery{ch: ch, tag: d.DeliveryTag, d: d, id: id, count: count}
	s.mu.Lock()
	dl.deadline = time.Now().Add(s.ackWait)
	dl.timer = time.AfterFunc(s.ackWait, func() { s.expire(dl) })
	s.held[dl] = struct{}{}
	s.mu.Unlock()
	s.inflight.Add(1)
	return &driver.Message{ID: id, Body: d.Body, Header: header, Deliveries: count, Handle: dl}
}

// decodeHeaders returns a delivery's user headers (as strings, without the
// broker's x- headers and the driver's own) and its Deliveries: 1 +
// x-delivery-count + Sluice-Delivered.
func decodeHeaders(h amqp.Table) (map[string]string, int) {
	header := map[string]string{}
	count := 1
	for k, v := range h {
		switch {
		case k == "x-delivery-count", k == HeaderDelivered:
			count += max(toInt(v), 0)
		case strings.HasPrefix(k, "x-"):
		default:
			header[k] = str(v)
		}
	}
	if len(header) == 0 {
		header = nil
	}
	return header, count
}

func toInt(v any) int {
	switch v := v.(type) {
	case int:
		return v
	case int8:
		return int(v)
	case int16:
		return int(v)
	case int32:
		return int(v)
	case int64:
		return int(v)
	case uint8:
		return int(v)
	case uint16:
		return int(v)
	case uint32:
		return int(v)
	case string:
		n, _ := strconv.Atoi(v)
		return n
	}
	return 0
}

// expire requeues a message whose ack wait ran out; the broker raises its
// x-delivery-count.
func (s *subscription) expire(dl *delivery) {
	s.mu.Lock()
	if dl.state != held {
		s.mu.Unlock()
		return
	}
	if left := time.Until(dl.deadline); left > 0 { // InProgress moved it
		dl.timer.Reset(left)
		s.mu.Unlock()
		return
	}
	dl.state = settling
	s.mu.Unlock()
	if err := dl.ch.Nack(dl.tag, false, true); err != nil && !dl.ch.IsClosed() {
		s.log.Warn("rabbitqueue: requeue a message whose ack wait ran out", "queue", s.qname, "id", dl.id, "err", err)
	}
	s.finish(dl)
}

// begin takes dl out of the held state for op, or says why it cannot.
func (s *subscription) begin(op string, m *driver.Message) (*delivery, error) {
	if s.isClosed() {
		return nil, s.closedErr(op + " message " + m.ID)
	}
	dl, ok := m.Handle.(*delivery)
	if !ok {
		return nil, fault.Permanent(fmt.Errorf("rabbitqueue: %s message %s: it was not received from a rabbitqueue subscription", op, m.ID))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, mine := s.held[dl]; !mine || dl.state != held {
		return nil, fmt.Errorf("rabbitqueue: %s message %s on queue %s: %w (its ack wait of %v may have run out; it will be delivered again)", op, m.ID, s.qname, ErrNotHeld, s.ackWait)
	}
	if dl.ch.IsClosed() {
		s.dropLocked(dl)
		return nil, fault.Transient(fmt.Errorf("rabbitqueue: %s message %s on queue %s: %w: the connection it came on was lost; the broker delivers it again", op, m.ID, s.qname, ErrNotHeld))
	}
	dl.state = settling
	dl.timer.Stop()
	return dl, nil
}

// dropLocked forgets dl, whose channel closed: the broker has it back.
// s.mu is held.
func (s *subscription) dropLocked(dl *delivery) {
	if _, mine := s.held[dl]; !mine {
		return
	}
	dl.timer.Stop()
	dl.state = settled
	delete(s.held, dl)
	s.inflight.Add(-1)
}

// prune forgets every held delivery whose channel closed.
func (s *subscription) prune() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for dl := range s.held {
		if dl.ch.IsClosed() {
			s.dropLocked(dl)
		}
	}
}

// finish forgets a settled delivery.
func (s *subscription) finish(dl *delivery) {
	s.mu.Lock()
	dl.state = settled
	_, mine := s.held[dl]
	delete(s.held, dl)
	s.mu.Unlock()
	if mine {
		s.inflight.Add(-1)
	}
}

// Ack acknowledges m. AMQP 0.9.1 does not confirm acks: once Ack returns
// the ack is on its way and ordered before anything else this subscription
// sends, but a broker crash in between may still redeliver the message.
func (s *subscription) Ack(ctx context.Context, m *driver.Message) error {
	dl, err := s.begin("ack", m)
	if err != nil {
		return err
	}
	defer s.finish(dl)
	if err := dl.ch.Ack(dl.tag, false); err != nil {
		return fault.Transient(fmt.Errorf("rabbitqueue: ack message %s on queue %s: %w (the broker will deliver it again)", m.ID, s.qname, err))
	}
	return nil
}

// Nack republishes m into the queue, now or after delay (see the package
// doc), with its delivery count, and acks the original.
func (s *subscription) Nack(ctx context.Context, m *driver.Message, delay time.Duration) error {
	dl, err := s.begin("nack", m)
	if err != nil {
		return err
	}
	if delay <= 0 {
		defer s.finish(dl)
		return s.requeue(ctx, dl)
	}
	s.mu.Lock()
	dl.state = delayed
	dl.timer = time.AfterFunc(delay, func() {
		s.mu.Lock()
		if dl.state != delayed {
			s.mu.Unlock()
			return
		}
		dl.state = settling
		s.mu.Unlock()
		defer s.finish(dl)
		if err := s.requeue(context.Background(), dl); err != nil {
			s.log.Warn("rabbitqueue: delayed nack failed; the broker redelivers the message when its channel closes", "queue", s.qname, "id", dl.id, "err", err)
		}
	})
	s.mu.Unlock()
	return nil
}

// requeue publishes a copy of dl into the queue, waits for the confirm and
// acks the original. Should the copy fail, the original is rejected with
// requeue instead (the broker raises its count).
func (s *subscription) requeue(ctx context.Context, dl *delivery) error {
	if dl.ch.IsClosed() {
		return nil // the broker returned the original already
	}
	h := amqp.Table{}
	for k, v := range dl.d.Headers {
		if !strings.HasPrefix(k, "x-") {
			h[k] = v
		}
	}
	h[HeaderDelivered] = int64(dl.count)
	err := publishConfirmed(ctx, dl.ch, "", s.qname, amqp.Publishing{
		Headers: h, MessageId: dl.id, Timestamp: dl.d.Timestamp, ContentType: dl.d.ContentType,
		ContentEncoding: dl.d.ContentEncoding, DeliveryMode: amqp.Persistent, Body: dl.d.Body,
	})
	if err == nil {
		err = dl.ch.Ack(dl.tag, false)
		if err != nil {
			return fault.Transient(fmt.Errorf("rabbitqueue: nack message %s on queue %s: ack the original after republishing it: %w (it may be delivered twice)", dl.id, s.qname, err))
		}
		return nil
	}
	if nerr := dl.ch.Nack(dl.tag, false, true); nerr != nil && !dl.ch.IsClosed() {
		return fault.Transient(fmt.Errorf("rabbitqueue: nack message %s on queue %s: republish: %w; requeue: %w", dl.id, s.qname, err, nerr))
	}
	return nil
}

// InProgress restarts m's ack wait.
func (s *subscription) InProgress(ctx context.Context, m *driver.Message) error {
	dl, ok := m.Handle.(*delivery)
	if !ok {
		return fault.Permanent(fmt.Errorf("rabbitqueue: extend deadline of message %s: it was not received from a rabbitqueue subscription", m.ID))
	}
	if s.isClosed() {
		return s.closedErr("extend deadline of message " + m.ID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, mine := s.held[dl]; !mine || dl.state != held {
		return fmt.Errorf("rabbitqueue: extend deadline of message %s on queue %s: %w (its ack wait of %v may have run out; it will be delivered again)", m.ID, s.qname, ErrNotHeld, s.ackWait)
	}
	if dl.ch.IsClosed() {
		s.dropLocked(dl)
		return fault.Transient(fmt.Errorf("rabbitqueue: extend deadline of message %s on queue %s: %w: the connection it came on was lost; the broker delivers it again", m.ID, s.qname, ErrNotHeld))
	}
	dl.deadline = time.Now().Add(s.ackWait)
	dl.timer.Reset(s.ackWait)
	return nil
}

// DeadLetter appends m with reason to the dead-letter stream, waits for the
// confirm, and only then acks m. If the append fails, m is requeued.
func (s *subscription) DeadLetter(ctx context.Context, m *driver.Message, reason string) error {
	dl, err := s.begin("dead-letter", m)
	if err != nil {
		return err
	}
	defer s.finish(dl)
	h := amqp.Table{}
	for k, v := range dl.d.Headers {
		if !strings.HasPrefix(k, "x-") && k != HeaderDelivered {
			h[k] = v
		}
	}
	h[HeaderReason] = reason
	h[HeaderSubscription] = s.name
	h[HeaderDeliveries] = strconv.Itoa(dl.count)
	h[HeaderMessageID] = dl.id
	h[HeaderAt] = s.now().UTC().Format(time.RFC3339Nano)
	err = publishConfirmed(ctx, dl.ch, "", s.dlq, amqp.Publishing{
		Headers: h, MessageId: dl.id, Timestamp: s.now(), ContentType: dl.d.ContentType,
		DeliveryMode: amqp.Persistent, Body: dl.d.Body,
	})
	if err != nil {
		_ = dl.ch.Nack(dl.tag, false, true)
		return fmt.Errorf("rabbitqueue: dead-letter message %s of queue %s: append to stream %s: %w (the message stays pending and will be delivered again)", dl.id, s.qname, s.dlq, err)
	}
	if err := dl.ch.Ack(dl.tag, false); err != nil {
		return fault.Transient(fmt.Errorf("rabbitqueue: dead-letter message %s of queue %s: ack after recording it: %w (it may be dead-lettered twice)", dl.id, s.qname, err))
	}
	return nil
}

// Pending is the queue's ready count plus the messages this Topic's
// subscriptions of the same name hold (see the package doc).
func (s *subscription) Pending(ctx context.Context) (int, error) {
	if s.isClosed() {
		return 0, s.closedErr("pending")
	}
	s.prune()
	var n int
	err := s.rpc(ctx, func(ch *amqp.Channel) error {
		q, err := ch.QueueDeclarePassive(s.qname, true, false, false, false, nil)
		n = q.Messages
		return err
	})
	if err != nil {
		return 0, fault.Transient(fmt.Errorf("rabbitqueue: count messages of queue %s: %w", s.qname, err))
	}
	return n + int(s.inflight.Load()), nil
}

// Close stops receiving and closes the channel; the broker returns every
// message it held (raising their counts), including delayed nacks.
func (s *subscription) Close() error {
	s.close.Do(func() {
		close(s.done)
		s.mu.Lock()
		n := len(s.held)
		for dl := range s.held {
			dl.timer.Stop()
			dl.state = settled
		}
		clear(s.held)
		s.mu.Unlock()
		s.inflight.Add(-int64(n))
		s.chMu.Lock()
		if s.ch != nil {
			_ = s.ch.Close()
		}
		s.chMu.Unlock()
	})
	return nil
}
