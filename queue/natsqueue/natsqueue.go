// Package natsqueue is the NATS JetStream queue backend, for an external
// server (nats://HOST:PORT) or one embedded in the process that owns the data
// dir (StartEmbedded). It implements queue/driver and passes
// queue/drivertest's conformance suite on both.
//
// Layout on the server, for Options{Stream: "SLUICE_posts", Subject: "sluice.posts.events"}:
//
//   - One stream, SLUICE_posts, file storage, limits retention (never a work
//     queue, so any number of subscriptions each see every message). It
//     captures the events subject and the dead-letter subjects
//     "sluice.posts.events.dlq.<subscription>": keeping dead letters in the
//     same stream keeps one object to create, back up and delete.
//   - One durable pull consumer per subscription, named after it (see
//     consumerName), filtered on the events subject, deliver-all, explicit
//     ack, unlimited deliveries: queue.Subscription counts deliveries and
//     dead-letters, so the server must keep redelivering.
//
// An existing stream is reused; only missing subjects are added, so limits an
// operator set (max age, replicas) are kept.
//
// Message IDs are stream sequence numbers; Deliveries is the server's
// delivery count. Ack waits for the server's confirmation (a double ack), so
// an acked message is not delivered again even if the process stops right
// after. Nack, InProgress and the dead-letter Term are sent and flushed.
//
// No call needs a deadline on ctx (a CLI's signal-cancelled context has
// none). A JetStream request (publish, double ack, consumer info, message
// get) waits until ctx's deadline when it has one, and 5 seconds when it has
// none; the flush after a nack, in-progress or term waits at most 5 seconds
// or until ctx ends, whichever is sooner (nats.Conn.FlushWithContext alone
// would refuse a context without a deadline).
//
// Topic and Subscription are safe for concurrent use. Topic does not own the
// *nats.Conn: closing a Topic leaves the connection open.
package natsqueue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/queue"
	"github.com/sluicehq/sluice/queue/driver"
)

// Headers on dead-letter messages.
const (
	HeaderReason       = "Sluice-Reason"
	HeaderSubscription = "Sluice-Subscription"
	HeaderDeliveries   = "Sluice-Deliveries"
	HeaderMessageID    = "Sluice-Message-Id"
)

// pollWait bounds one pull request; Receive issues another until ctx is done.
const pollWait = 5 * time.Second

// opTimeout bounds a JetStream request whose ctx has no deadline, and every
// flush.
const opTimeout = 5 * time.Second

var (
	_ driver.Topic        = (*Topic)(nil)
	_ driver.Subscription = (*subscription)(nil)
)

// Options name where a topic lives on the server. Both are required.
type Options struct {
	// Stream is the JetStream stream name, e.g. "SLUICE_posts". It may not
	// contain spaces, '.', '*', '>', '/' or '\'.
	Stream string
	// Subject is the events subject, e.g. "sluice.posts.events", without
	// wildcards. Dead letters go to Subject + ".dlq.<subscription>".
	Subject string
}

// Topic is a JetStream-backed topic.
type Topic struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	name    string // stream name
	subject string

	mu     sync.Mutex
	closed bool
	subs   []*subscription
}

// Open creates the stream for opts (or adds its subjects to an existing one)
// and returns the topic. The caller keeps ownership of nc.
func Open(ctx context.Context, nc *nats.Conn, opts Options) (*Topic, error) {
	if nc == nil {
		return nil, errors.New("natsqueue: open: nil NATS connection")
	}
	if err := checkName(opts.Stream); err != nil {
		return nil, fmt.Errorf("natsqueue: open: Options.Stream %q: %w", opts.Stream, err)
	}
	if err := checkSubject(opts.Subject); err != nil {
		return nil, fmt.Errorf("natsqueue: open stream %s: Options.Subject %q: %w", opts.Stream, opts.Subject, err)
	}
	// The default timeout applies to every JetStream request whose ctx has
	// no deadline; callers need not set one.
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(opTimeout))
	if err != nil {
		return nil, fmt.Errorf("natsqueue: open stream %s: %w", opts.Stream, err)
	}
	subjects := []string{opts.Subject, opts.Subject + ".dlq.>"}
	stream, err := js.Stream(ctx, opts.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		stream, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        opts.Stream,
			Description: "sluice queue " + opts.Subject,
			Subjects:    subjects,
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
		})
		if err != nil {
			return nil, fmt.Errorf("natsqueue: create stream %s for subjects %v: %w (another stream may already capture these subjects)", opts.Stream, subjects, err)
		}
	case err != nil:
		return nil, fmt.Errorf("natsqueue: look up stream %s on %s: %w (the server needs JetStream: run nats-server -js)", opts.Stream, nc.ConnectedUrlRedacted(), err)
	default:
		cfg := stream.CachedInfo().Config
		if cfg.Retention == jetstream.WorkQueuePolicy {
			return nil, fmt.Errorf("natsqueue: stream %s has work-queue retention, which lets only one subscription see each message; delete it or pick another stream name", opts.Stream)
		}
		var missing []string
		for _, s := range subjects {
			if !slices.Contains(cfg.Subjects, s) {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 {
			cfg.Subjects = append(cfg.Subjects, missing...)
			if stream, err = js.UpdateStream(ctx, cfg); err != nil {
				return nil, fmt.Errorf("natsqueue: add subjects %v to stream %s: %w", missing, opts.Stream, err)
			}
		}
	}
	return &Topic{nc: nc, js: js, stream: stream, name: opts.Stream, subject: opts.Subject}, nil
}

func checkName(s string) error {
	switch {
	case s == "":
		return errors.New("empty; set a name such as SLUICE_posts")
	case strings.ContainsAny(s, " \t\r\n\f.*>/\\"):
		return errors.New("contains a space, '.', '*', '>', '/' or '\\'")
	case len(s) > 255:
		return errors.New("longer than 255 bytes")
	}
	return nil
}

func checkSubject(s string) error {
	if s == "" {
		return errors.New("empty; set a subject such as sluice.posts.events")
	}
	if strings.ContainsAny(s, " \t\r\n\f") {
		return errors.New("contains white space")
	}
	for tok := range strings.SplitSeq(s, ".") {
		switch tok {
		case "":
			return errors.New("has an empty token (leading, trailing or doubled '.')")
		case "*", ">":
			return errors.New("has a wildcard; use a literal subject")
		}
	}
	return nil
}

func (t *Topic) check(op string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("natsqueue: %s on stream %s: %w", op, t.name, queue.ErrClosed)
	}
	return nil
}

// Publish sends body to the events subject and waits for the stream's ack.
func (t *Topic) Publish(ctx context.Context, body []byte, header map[string]string) error {
	if err := t.check("publish"); err != nil {
		return err
	}
	msg := &nats.Msg{Subject: t.subject, Data: body}
	if len(header) > 0 {
		msg.Header = nats.Header{}
		for k, v := range header {
			msg.Header.Set(k, v)
		}
	}
	if _, err := t.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("natsqueue: publish to %s (stream %s): %w", t.subject, t.name, err)
	}
	return nil
}

// Subscribe creates or updates the durable consumer for name and returns a
// subscription pulling from it.
func (t *Topic) Subscribe(ctx context.Context, name string, opts driver.SubscriptionOptions) (driver.Subscription, error) {
	if err := t.check("subscribe"); err != nil {
		return nil, err
	}
	cname := consumerName(name)
	cons, err := t.stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       cname,
		Description:   "sluice subscription " + name,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       opts.AckWait, // 0: the server's 30s, queue.DefaultAckWait
		MaxDeliver:    -1,
		FilterSubject: t.subject,
	})
	if err != nil {
		return nil, fmt.Errorf("natsqueue: create or update consumer %s on stream %s: %w", cname, t.name, err)
	}
	s := &subscription{t: t, name: name, cname: cname, cons: cons, turn: make(chan struct{}, 1), done: make(chan struct{})}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, fmt.Errorf("natsqueue: subscribe %q on stream %s: %w", name, t.name, queue.ErrClosed)
	}
	t.subs = append(t.subs, s)
	return s, nil
}

// DeadLetters reads every message on the dead-letter subjects, oldest first.
func (t *Topic) DeadLetters(ctx context.Context) ([]driver.DeadLetter, error) {
	if err := t.check("list dead letters"); err != nil {
		return nil, err
	}
	filter := t.subject + ".dlq.>"
	var out []driver.DeadLetter
	for seq := uint64(1); ; {
		raw, err := t.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("natsqueue: read dead letters (%s) of stream %s from sequence %d: %w", filter, t.name, seq, err)
		}
		out = append(out, deadLetterFrom(raw.Header, raw.Data, raw.Time))
		seq = raw.Sequence + 1
	}
}

// deadLetterFrom decodes a stored dead-letter message. Missing or malformed
// Sluice headers leave the matching fields zero rather than failing: a dead
// letter is still worth listing.
func deadLetterFrom(h nats.Header, body []byte, at time.Time) driver.DeadLetter {
	dl := driver.DeadLetter{
		Subscription: h.Get(HeaderSubscription),
		ID:           h.Get(HeaderMessageID),
		Body:         body,
		Reason:       h.Get(HeaderReason),
		At:           at,
	}
	if n, err := strconv.Atoi(h.Get(HeaderDeliveries)); err == nil && n >= 0 {
		dl.Deliveries = n
	}
	for k, vs := range h {
		if strings.HasPrefix(k, "Sluice-") || strings.HasPrefix(k, "Nats-") || len(vs) == 0 {
			continue
		}
		if dl.Header == nil {
			dl.Header = map[string]string{}
		}
		dl.Header[k] = vs[0]
	}
	return dl
}

// Close stops every subscription opened on t. The connection stays open.
func (t *Topic) Close() error {
	t.mu.Lock()
	subs := t.subs
	t.subs, t.closed = nil, true
	t.mu.Unlock()
	for _, s := range subs {
		_ = s.Close()
	}
	return nil
}

// consumerName turns a subscription name into a durable consumer name that
// is also a valid subject token. Names made only of letters, digits, '-' and
// '_' (up to 64 bytes) are kept; others have every other byte replaced by
// '_', are cut to 40 bytes and get a hash of the original appended, so
// distinct names stay distinct.
func consumerName(name string) string {
	clean := true
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) {
			clean = false
			break
		}
	}
	if clean && name != "" && len(name) <= 64 {
		return name
	}
	b := []byte(name)
	for i := range b {
		if !nameByte(b[i]) {
			b[i] = '_'
		}
	}
	if len(b) > 40 {
		b = b[:40]
	}
	sum := sha256.Sum256([]byte(name))
	return string(b) + "_" + hex.EncodeToString(sum[:5])
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// subscription pulls one message at a time from a durable consumer, so
// competing subscriptions share messages and no message waits in a client
// buffer while its ack wait runs.
type subscription struct {
	t     *Topic
	name  string
	cname string
	cons  jetstream.Consumer

	// turn serialises Receive and guards batch: a pull request still open
	// when a Receive gave up, whose message the next Receive takes.
	turn  chan struct{}
	batch jetstream.MessageBatch

	once sync.Once
	done chan struct{}
}

func (s *subscription) closedErr(op string) error {
	return fmt.Errorf("natsqueue: %s on consumer %s of stream %s: %w", op, s.cname, s.t.name, queue.ErrClosed)
}

func (s *subscription) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Receive waits for the next message of the consumer. When ctx ends first,
// the pull request stays open and its message, if one comes, goes to the
// next Receive (or is nacked by Close), so no delivery is wasted.
func (s *subscription) Receive(ctx context.Context) (*driver.Message, error) {
	select {
	case s.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.done:
		return nil, s.closedErr("receive")
	}
	defer func() { <-s.turn }()
	for {
		if s.isClosed() {
			return nil, s.closedErr("receive")
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if s.batch == nil {
			b, err := s.cons.Fetch(1, jetstream.FetchMaxWait(pollWait))
			if err != nil {
				return nil, fmt.Errorf("natsqueue: pull from consumer %s of stream %s: %w", s.cname, s.t.name, err)
			}
			s.batch = b
		}
		select {
		case jm, ok := <-s.batch.Messages():
			if !ok {
				err := s.batch.Error()
				s.batch = nil
				if err != nil {
					return nil, fmt.Errorf("natsqueue: pull from consumer %s of stream %s: %w", s.cname, s.t.name, err)
				}
				continue // the pull request expired empty
			}
			s.batch = nil // a batch of one holds no more
			return s.toMessage(jm)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.done:
			return nil, s.closedErr("receive")
		}
	}
}

func (s *subscription) toMessage(jm jetstream.Msg) (*driver.Message, error) {
	md, err := jm.Metadata()
	if err != nil {
		return nil, fmt.Errorf("natsqueue: read metadata of a message from consumer %s of stream %s: %w", s.cname, s.t.name, err)
	}
	var header map[string]string
	if h := jm.Headers(); len(h) > 0 {
		header = make(map[string]string, len(h))
		for k, vs := range h {
			if len(vs) > 0 {
				header[k] = vs[0]
			}
		}
	}
	return &driver.Message{
		ID:         strconv.FormatUint(md.Sequence.Stream, 10),
		Body:       jm.Data(),
		Header:     header,
		Deliveries: int(md.NumDelivered),
		Handle:     jm,
	}, nil
}

func (s *subscription) msg(op string, m *driver.Message) (jetstream.Msg, error) {
	if s.isClosed() {
		return nil, s.closedErr(op + " message " + m.ID)
	}
	jm, ok := m.Handle.(jetstream.Msg)
	if !ok {
		return nil, fmt.Errorf("natsqueue: %s message %s: it was not received from a natsqueue subscription", op, m.ID)
	}
	return jm, nil
}

// flushed sends what is buffered on the connection and waits for the
// server to have read it, so a fire-and-forget acknowledgement is not lost
// in the client buffer. The wait is bounded by opTimeout, so ctx needs no
// deadline (FlushWithContext alone would refuse one without).
func (s *subscription) flushed(ctx context.Context, op string, m *driver.Message, err error) error {
	if err == nil {
		fctx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		err = s.t.nc.FlushWithContext(fctx)
	}
	if err != nil {
		return fmt.Errorf("natsqueue: %s message %s on consumer %s of stream %s: %w", op, m.ID, s.cname, s.t.name, err)
	}
	return nil
}

// Ack acknowledges m and waits for the server's confirmation.
func (s *subscription) Ack(ctx context.Context, m *driver.Message) error {
	jm, err := s.msg("ack", m)
	if err != nil {
		return err
	}
	if err := jm.DoubleAck(ctx); err != nil {
		return fmt.Errorf("natsqueue: ack message %s on consumer %s of stream %s: %w", m.ID, s.cname, s.t.name, err)
	}
	return nil
}

// Nack asks the server to redeliver m after delay.
func (s *subscription) Nack(ctx context.Context, m *driver.Message, delay time.Duration) error {
	jm, err := s.msg("nack", m)
	if err != nil {
		return err
	}
	if delay > 0 {
		err = jm.NakWithDelay(delay)
	} else {
		err = jm.Nak()
	}
	return s.flushed(ctx, "nack", m, err)
}

// InProgress restarts m's ack wait on the server.
func (s *subscription) InProgress(ctx context.Context, m *driver.Message) error {
	jm, err := s.msg("extend deadline of", m)
	if err != nil {
		return err
	}
	return s.flushed(ctx, "extend deadline of", m, jm.InProgress())
}

// DeadLetter publishes m to the subscription's dead-letter subject, waits for
// the stream to hold it, and only then terminates m. The publish carries a
// Nats-Msg-Id, so a retry within the stream's duplicate window (2 minutes
// by default) after a lost Term is not listed twice.
func (s *subscription) DeadLetter(ctx context.Context, m *driver.Message, reason string) error {
	jm, err := s.msg("dead-letter", m)
	if err != nil {
		return err
	}
	h := nats.Header{}
	for k, vs := range jm.Headers() {
		if !strings.HasPrefix(k, "Nats-") {
			h[k] = slices.Clone(vs)
		}
	}
	h.Set(HeaderReason, reason)
	h.Set(HeaderSubscription, s.name)
	h.Set(HeaderDeliveries, strconv.Itoa(m.Deliveries))
	h.Set(HeaderMessageID, m.ID)
	h.Set(jetstream.MsgIDHeader, "sluice-dlq-"+s.cname+"-"+m.ID)
	dlq := s.t.subject + ".dlq." + s.cname
	if _, err := s.t.js.PublishMsg(ctx, &nats.Msg{Subject: dlq, Header: h, Data: jm.Data()}); err != nil {
		return fmt.Errorf("natsqueue: dead-letter message %s of consumer %s: publish to %s: %w (the message stays pending and will be redelivered)", m.ID, s.cname, dlq, err)
	}
	return s.flushed(ctx, "terminate dead-lettered", m, jm.Term())
}

// Pending is the consumer's count of undelivered plus unacked messages.
func (s *subscription) Pending(ctx context.Context) (int, error) {
	if s.isClosed() {
		return 0, s.closedErr("pending")
	}
	info, err := s.cons.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("natsqueue: read info of consumer %s on stream %s: %w", s.cname, s.t.name, err)
	}
	return int(info.NumPending) + info.NumAckPending, nil
}

// Close stops this subscription. A pull request still open is drained in the
// background and any message it brings is nacked for prompt redelivery.
func (s *subscription) Close() error {
	s.once.Do(func() {
		close(s.done)
		go func() {
			s.turn <- struct{}{} // wait for a running Receive to return
			b := s.batch
			s.batch = nil
			<-s.turn
			if b == nil {
				return
			}
			for jm := range b.Messages() {
				_ = jm.Nak()
			}
		}()
	})
	return nil
}
