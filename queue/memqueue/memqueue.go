// Package memqueue is an in-process queue backend for tests and for
// single-process runs that need no durability. It implements queue/driver and
// passes queue/drivertest's conformance suite, so code tested against it
// behaves the same on the durable backends.
//
// Semantics mirror a JetStream durable pull consumer: a topic keeps every
// published message; each subscription name has its own cursor and starts at
// the first message of the topic; Subscription values opened with the same
// name compete for that name's messages. A delivered message that is neither
// acked nor dead-lettered is delivered again when its ack wait (a real timer)
// runs out, or after the delay given to Nack.
//
// All methods are safe for concurrent use. State lives in memory only: it
// survives Reopen (which models a process restart over durable storage, for
// the conformance suite) but not the end of the process.
package memqueue

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/sluicehq/sluice/queue"
	"github.com/sluicehq/sluice/queue/driver"
)

// defaultAckWait applies when a subscription is opened with a zero AckWait.
const defaultAckWait = queue.DefaultAckWait

var (
	_ driver.Topic        = (*Topic)(nil)
	_ driver.Subscription = (*subscription)(nil)
)

// state is what a durable backend would keep on disk.
type state struct {
	mu      sync.Mutex
	msgs    []stored // index i holds the message with ID i+1
	subs    map[string]*subState
	dead    []driver.DeadLetter
	changed chan struct{} // closed and replaced whenever something becomes deliverable
}

type stored struct {
	body   []byte
	header map[string]string
}

// subState is one subscription name's progress.
type subState struct {
	name    string
	ackWait time.Duration
	next    int             // index of the first message never delivered
	flights map[int]*flight // delivered, not yet acked or dead-lettered
	ready   []int           // indexes due for redelivery, oldest due first
	done    map[int]bool    // acked or dead-lettered
}

// flight is a delivered message awaiting its outcome.
type flight struct {
	deliveries int
	queued     bool        // on ready, waiting for redelivery
	timer      *time.Timer // fires when the ack wait or nack delay runs out
}

// handle is driver.Message.Handle for this backend.
type handle struct {
	sub        *subscription
	index      int
	deliveries int
}

// Topic is an in-memory topic. The zero value is not usable; call New.
type Topic struct {
	st *state

	mu     sync.Mutex
	closed bool
	subs   []*subscription
}

// New returns an empty topic.
func New() *Topic {
	return &Topic{st: &state{subs: map[string]*subState{}, changed: make(chan struct{})}}
}

// Reopen closes t and returns a new Topic over the same messages,
// subscriptions, acks and dead letters, as a durable backend reopened after
// a restart would be. Messages delivered through t and not yet acked are
// redelivered when their ack wait runs out. The conformance suite uses it to
// check durability contracts.
func (t *Topic) Reopen() *Topic {
	_ = t.Close()
	return &Topic{st: t.st}
}

// Publish stores a copy of body and header; it never blocks.
func (t *Topic) Publish(ctx context.Context, body []byte, header map[string]string) error {
	if err := t.check(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	st := t.st
	st.mu.Lock()
	st.msgs = append(st.msgs, stored{body: append([]byte(nil), body...), header: copyHeader(header)})
	st.signalLocked()
	st.mu.Unlock()
	return nil
}

// Subscribe opens the subscription name, creating it at the topic's first
// message if it does not exist. A non-zero AckWait replaces the ack wait of
// an existing subscription, as updating a JetStream consumer would.
func (t *Topic) Subscribe(ctx context.Context, name string, opts driver.SubscriptionOptions) (driver.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ackWait := opts.AckWait
	if ackWait <= 0 {
		ackWait = defaultAckWait
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, fmt.Errorf("memqueue: subscribe %q: %w", name, queue.ErrClosed)
	}
	st := t.st
	st.mu.Lock()
	ss := st.subs[name]
	if ss == nil {
		ss = &subState{name: name, flights: map[int]*flight{}, done: map[int]bool{}}
		st.subs[name] = ss
	}
	ss.ackWait = ackWait
	st.mu.Unlock()
	s := &subscription{topic: t, ss: ss, closed: make(chan struct{})}
	t.subs = append(t.subs, s)
	return s, nil
}

// DeadLetters lists the dead letters of every subscription, oldest first.
func (t *Topic) DeadLetters(ctx context.Context) ([]driver.DeadLetter, error) {
	if err := t.check(); err != nil {
		return nil, err
	}
	st := t.st
	st.mu.Lock()
	defer st.mu.Unlock()
	out := make([]driver.DeadLetter, len(st.dead))
	for i, d := range st.dead {
		d.Body = append([]byte(nil), d.Body...)
		d.Header = copyHeader(d.Header)
		out[i] = d
	}
	return out, nil
}

// Close stops every subscription opened on t; Receive and the
// acknowledgement methods then return queue.ErrClosed. Stored state is kept
// for Reopen.
func (t *Topic) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	for _, s := range t.subs {
		s.close()
	}
	t.subs = nil
	return nil
}

func (t *Topic) check() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("memqueue: %w", queue.ErrClosed)
	}
	return nil
}

// signalLocked wakes every waiting Receive. st.mu must be held.
func (st *state) signalLocked() {
	close(st.changed)
	st.changed = make(chan struct{})
}

// subscription is one Subscription value; several may share a subState.
type subscription struct {
	topic *Topic
	ss    *subState

	once   sync.Once
	closed chan struct{}
}

func (s *subscription) close() { s.once.Do(func() { close(s.closed) }) }

func (s *subscription) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// Receive returns the oldest message due for redelivery, else the next
// never-delivered one, waiting until one exists, ctx is done (ctx.Err()) or
// the subscription is closed (queue.ErrClosed).
func (s *subscription) Receive(ctx context.Context) (*driver.Message, error) {
	st := s.topic.st
	for {
		if s.isClosed() {
			return nil, fmt.Errorf("memqueue: receive on %q: %w", s.ss.name, queue.ErrClosed)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		st.mu.Lock()
		if m := s.takeLocked(); m != nil {
			st.mu.Unlock()
			return m, nil
		}
		wait := st.changed
		st.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.closed:
		}
	}
}

// takeLocked delivers the next due message, or returns nil. st.mu is held.
func (s *subscription) takeLocked() *driver.Message {
	st, ss := s.topic.st, s.ss
	index := -1
	var f *flight
	for len(ss.ready) > 0 && index < 0 {
		i := ss.ready[0]
		ss.ready = ss.ready[1:]
		if fl := ss.flights[i]; fl != nil && fl.queued {
			index, f = i, fl
			f.queued = false
		}
	}
	if index < 0 && ss.next < len(st.msgs) {
		index = ss.next
		ss.next++
		f = &flight{}
		ss.flights[index] = f
	}
	if index < 0 {
		return nil
	}
	f.deliveries++
	s.armLocked(index, f, ss.ackWait)
	m := st.msgs[index]
	return &driver.Message{
		ID:         strconv.Itoa(index + 1),
		Body:       append([]byte(nil), m.body...),
		Header:     copyHeader(m.header),
		Deliveries: f.deliveries,
		Handle:     &handle{sub: s, index: index, deliveries: f.deliveries},
	}
}

// armLocked (re)starts f's timer: when it fires, the message is queued for
// redelivery unless its delivery moved on meanwhile. st.mu is held.
func (s *subscription) armLocked(index int, f *flight, d time.Duration) {
	st, ss := s.topic.st, s.ss
	if f.timer != nil {
		f.timer.Stop()
	}
	deliveries := f.deliveries
	f.timer = time.AfterFunc(d, func() {
		st.mu.Lock()
		defer st.mu.Unlock()
		if ss.flights[index] != f || f.deliveries != deliveries || f.queued {
			return
		}
		s.queueLocked(index, f)
	})
}

func (s *subscription) queueLocked(index int, f *flight) {
	if f.timer != nil {
		f.timer.Stop()
	}
	f.queued = true
	s.ss.ready = append(s.ss.ready, index)
	s.topic.st.signalLocked()
}

// resolve checks m belongs to this subscription and the topic is open.
func (s *subscription) resolve(op string, m *driver.Message) (*handle, error) {
	if s.isClosed() {
		return nil, fmt.Errorf("memqueue: %s message %s on %q: %w", op, m.ID, s.ss.name, queue.ErrClosed)
	}
	h, ok := m.Handle.(*handle)
	if !ok || h.sub.ss != s.ss {
		return nil, fmt.Errorf("memqueue: %s message %s: it was not received from subscription %q of this topic", op, m.ID, s.ss.name)
	}
	return h, nil
}

// Ack marks the message done. Acking a message that is already done is a
// no-op; acking an older delivery of a redelivered message acks it too.
func (s *subscription) Ack(ctx context.Context, m *driver.Message) error {
	h, err := s.resolve("ack", m)
	if err != nil {
		return err
	}
	st := s.topic.st
	st.mu.Lock()
	defer st.mu.Unlock()
	s.finishLocked(h.index)
	return nil
}

func (s *subscription) finishLocked(index int) {
	ss := s.ss
	if f := ss.flights[index]; f != nil {
		if f.timer != nil {
			f.timer.Stop()
		}
		delete(ss.flights, index)
	}
	ss.done[index] = true
}

// current returns the flight of h if h is its latest delivery and the
// message is still awaiting an outcome. st.mu is held.
func (s *subscription) currentLocked(h *handle) *flight {
	f := s.ss.flights[h.index]
	if f == nil || f.deliveries != h.deliveries || f.queued {
		return nil
	}
	return f
}

// Nack queues the message for redelivery after delay. It is a no-op if the
// message was redelivered or finished since m was received.
func (s *subscription) Nack(ctx context.Context, m *driver.Message, delay time.Duration) error {
	h, err := s.resolve("nack", m)
	if err != nil {
		return err
	}
	st := s.topic.st
	st.mu.Lock()
	defer st.mu.Unlock()
	f := s.currentLocked(h)
	if f == nil {
		return nil
	}
	if delay <= 0 {
		s.queueLocked(h.index, f)
		return nil
	}
	s.armLocked(h.index, f, delay)
	return nil
}

// InProgress restarts the message's ack wait. It is a no-op if the message
// was redelivered or finished since m was received.
func (s *subscription) InProgress(ctx context.Context, m *driver.Message) error {
	h, err := s.resolve("extend deadline of", m)
	if err != nil {
		return err
	}
	st := s.topic.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if f := s.currentLocked(h); f != nil {
		s.armLocked(h.index, f, s.ss.ackWait)
	}
	return nil
}

// DeadLetter records m with reason and finishes it. A message already
// finished is not recorded twice.
func (s *subscription) DeadLetter(ctx context.Context, m *driver.Message, reason string) error {
	h, err := s.resolve("dead-letter", m)
	if err != nil {
		return err
	}
	st := s.topic.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if s.ss.done[h.index] {
		return nil
	}
	msg := st.msgs[h.index]
	st.dead = append(st.dead, driver.DeadLetter{
		Subscription: s.ss.name,
		ID:           m.ID,
		Body:         append([]byte(nil), msg.body...),
		Header:       copyHeader(msg.header),
		Reason:       reason,
		Deliveries:   h.deliveries,
		At:           time.Now(),
	})
	s.finishLocked(h.index)
	return nil
}

// Pending counts messages never delivered plus those delivered and not yet
// acked or dead-lettered.
func (s *subscription) Pending(ctx context.Context) (int, error) {
	if s.isClosed() {
		return 0, fmt.Errorf("memqueue: pending on %q: %w", s.ss.name, queue.ErrClosed)
	}
	st := s.topic.st
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.msgs) - s.ss.next + len(s.ss.flights), nil
}

// Close stops this Subscription value; its unacked messages are redelivered
// (to other values of the same name, or after a new Subscribe) when their ack
// wait runs out.
func (s *subscription) Close() error {
	s.close()
	return nil
}

func copyHeader(h map[string]string) map[string]string {
	if h == nil {
		return nil
	}
	return maps.Clone(h)
}
