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
// delivery count. Ack, Nack, InProgress and the dead-letter Term each wait
// for the server's confirmation (sent as requests, like a double ack), so
// once they return the server has applied them: an acked message is not
// delivered again even if the process stops right after, and Pending
// already reflects a nack or dead letter.
//
// No call needs a deadline on ctx (a CLI's signal-cancelled context has
// none). Every request to the server (publish, acknowledgements, consumer
// info, message get) waits until ctx's deadline when it has one, and 5
// seconds when it has none.
//
// Pending is exact once Publish has returned. The durable consumer's own
// NumPending is not: the server acks a publish before its stream's
// signalling goroutine bumps each consumer's pending count, so consumer
// info read in between misses the message. Pending therefore adds the
// consumer's unacked count to a count of the messages after its delivered
// sequence that the server computes from the store, through a short-lived
// in-memory consumer (two more requests per call).
//
// A server that cannot write its store (a full disk) never answers a
// publish; the caller sees a timeout. Options.StorageErr lets the owner of
// the server say why: Embedded.StorageErr names the store directory and the
// full disk, Publish then fails at once and other failures carry the cause.
// Embedded also recovers by itself once space returns (see Embedded).
// JetStream's own storage errors (limits reached) wrap ErrStorage.
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
// confirmed acknowledgement.
const opTimeout = 5 * time.Second

// counterIdle is the inactive threshold of the consumers Pending creates to
// count messages; the server deletes one left behind after that long.
const counterIdle = 30 * time.Second

var (
	_ driver.Topic        = (*Topic)(nil)
	_ driver.Subscription = (*subscription)(nil)
)

// Options name where a topic lives on the server. Stream and Subject are
// required.
type Options struct {
	// Stream is the JetStream stream name, e.g. "SLUICE_posts". It may not
	// contain spaces, '.', '*', '>', '/' or '\'.
	Stream string
	// Subject is the events subject, e.g. "sluice.posts.events", without
	// wildcards. Dead letters go to Subject + ".dlq.<subscription>".
	Subject string
	// StorageErr, if not nil, reports a storage fault the server is known
	// to have: pass (*Embedded).StorageErr for the embedded server. While
	// it returns an error, Publish and DeadLetter fail at once with it (a
	// server that cannot write its store never answers a publish, so the
	// caller would wait out its deadline for a bare timeout); every other
	// failed request gets it added, so the error says why.
	StorageErr func() error
}

// Topic is a JetStream-backed topic.
type Topic struct {
	storageErr func() error // nil when unknown
	nc         *nats.Conn
	js         jetstream.JetStream
	stream     jetstream.Stream
	name       string // stream name
	subject    string

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
	return &Topic{storageErr: opts.StorageErr, nc: nc, js: js, stream: stream, name: opts.Stream, subject: opts.Subject}, nil
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

// ErrStorage is matched (errors.Is) by errors the server returned because
// it is out of storage or cannot write its store (JetStream's insufficient
// resources, storage resources exceeded and store failed errors).
var ErrStorage = errors.New("queue server storage full or failing")

// Codes of the JetStream API errors that mean the server's storage is full
// or failing (nats-server's server/errors.json).
const (
	codeInsufficientResources    = 10023
	codeStorageResourcesExceeded = 10047
	codeStreamStoreFailed        = 10077
)

// diagnose adds to err what is known about its cause: the storage fault
// reported by Options.StorageErr, or ErrStorage for the server's own storage
// errors.
func (t *Topic) diagnose(err error) error {
	if err == nil {
		return nil
	}
	if t.storageErr != nil {
		if serr := t.storageErr(); serr != nil {
			return fmt.Errorf("%w; cause: %w", err, serr)
		}
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case codeInsufficientResources, codeStorageResourcesExceeded, codeStreamStoreFailed:
			return fmt.Errorf("%w: %w; free space on the server's store or raise its JetStream max_file_store", err, ErrStorage)
		}
	}
	return err
}

// storageFault is the fault Options.StorageErr reports now, or nil.
func (t *Topic) storageFault() error {
	if t.storageErr == nil {
		return nil
	}
	return t.storageErr()
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
// During a storage fault reported by Options.StorageErr it fails at once.
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
	if err := t.storageFault(); err != nil {
		return fmt.Errorf("natsqueue: publish to %s (stream %s): %w", t.subject, t.name, err)
	}
	if _, err := t.js.PublishMsg(ctx, msg); err != nil {
		return t.diagnose(fmt.Errorf("natsqueue: publish to %s (stream %s): %w", t.subject, t.name, err))
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
		return nil, t.diagnose(fmt.Errorf("natsqueue: create or update consumer %s on stream %s: %w", cname, t.name, err))
	}
	s := &subscription{t: t, name: name, cname: cname, dlq: t.subject + ".dlq." + cname, cons: cons, turn: make(chan struct{}, 1), done: make(chan struct{})}
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
			return nil, t.diagnose(fmt.Errorf("natsqueue: read dead letters (%s) of stream %s from sequence %d: %w", filter, t.name, seq, err))
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
	dlq   string // the dead-letter subject
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
				return nil, s.t.diagnose(fmt.Errorf("natsqueue: pull from consumer %s of stream %s: %w", s.cname, s.t.name, err))
			}
			s.batch = b
		}
		select {
		case jm, ok := <-s.batch.Messages():
			if !ok {
				err := s.batch.Error()
				s.batch = nil
				if err != nil {
					return nil, s.t.diagnose(fmt.Errorf("natsqueue: pull from consumer %s of stream %s: %w", s.cname, s.t.name, err))
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

// Acknowledgement bodies of the JetStream protocol.
var (
	ackNak      = []byte("-NAK")
	ackProgress = []byte("+WPI")
	ackTerm     = []byte("+TERM")
)

// confirm sends the acknowledgement body for jm as a request and waits for
// the server's reply, which it sends only after it has applied the
// acknowledgement (acks are queued on the server, so a plain publish plus
// flush returns before a term has left the consumer's pending set). It waits
// until ctx's deadline when ctx has one, and opTimeout when it has none.
func (s *subscription) confirm(ctx context.Context, op string, m *driver.Message, jm jetstream.Msg, body []byte) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opTimeout)
		defer cancel()
	}
	if _, err := s.t.nc.RequestWithContext(ctx, jm.Reply(), body); err != nil {
		return s.t.diagnose(fmt.Errorf("natsqueue: %s message %s on consumer %s of stream %s: %w", op, m.ID, s.cname, s.t.name, err))
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
		return s.t.diagnose(fmt.Errorf("natsqueue: ack message %s on consumer %s of stream %s: %w", m.ID, s.cname, s.t.name, err))
	}
	return nil
}

// Nack asks the server to redeliver m after delay.
func (s *subscription) Nack(ctx context.Context, m *driver.Message, delay time.Duration) error {
	jm, err := s.msg("nack", m)
	if err != nil {
		return err
	}
	body := ackNak
	if delay > 0 {
		body = fmt.Appendf(nil, "%s {\"delay\": %d}", ackNak, delay.Nanoseconds())
	}
	return s.confirm(ctx, "nack", m, jm, body)
}

// InProgress restarts m's ack wait on the server.
func (s *subscription) InProgress(ctx context.Context, m *driver.Message) error {
	jm, err := s.msg("extend deadline of", m)
	if err != nil {
		return err
	}
	return s.confirm(ctx, "extend deadline of", m, jm, ackProgress)
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
	dlq := s.dlq
	if err := s.t.storageFault(); err != nil {
		return fmt.Errorf("natsqueue: dead-letter message %s of consumer %s: publish to %s: %w (the message stays pending and will be redelivered)", m.ID, s.cname, dlq, err)
	}
	if _, err := s.t.js.PublishMsg(ctx, &nats.Msg{Subject: dlq, Header: h, Data: jm.Data()}); err != nil {
		return s.t.diagnose(fmt.Errorf("natsqueue: dead-letter message %s of consumer %s: publish to %s: %w (the message stays pending and will be redelivered)", m.ID, s.cname, dlq, err))
	}
	return s.confirm(ctx, "terminate dead-lettered", m, jm, ackTerm)
}

// Pending is the number of messages of the subscription not yet acked or
// dead-lettered: those delivered and awaiting an ack (the consumer's
// NumAckPending) plus those on the events subject after the consumer's
// delivered stream sequence.
//
// The second term is not the durable consumer's NumPending. The server
// stores a message and acks the publish first, and bumps each consumer's
// pending counter later, from the stream's signalling goroutine; consumer
// info read in between misses the message, so Pending right after Publish
// returned could be one short (and Engine.drain could see 0 with a message
// waiting). Instead Pending asks the server to count the stream itself: it
// creates a short-lived in-memory consumer starting after the delivered
// sequence, whose info the server computes from the store when it creates
// it, and deletes it again (an inactive threshold removes it should the
// delete be lost). Once Publish has returned, the message is counted.
func (s *subscription) Pending(ctx context.Context) (int, error) {
	if s.isClosed() {
		return 0, s.closedErr("pending")
	}
	info, err := s.cons.Info(ctx)
	if err != nil {
		return 0, s.t.diagnose(fmt.Errorf("natsqueue: read info of consumer %s on stream %s: %w", s.cname, s.t.name, err))
	}
	counter, err := s.t.stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
		Description:       "sluice pending count of subscription " + s.name,
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       info.Delivered.Stream + 1,
		AckPolicy:         jetstream.AckNonePolicy,
		FilterSubject:     s.t.subject,
		MemoryStorage:     true,
		InactiveThreshold: counterIdle,
	})
	if err != nil {
		return 0, s.t.diagnose(fmt.Errorf("natsqueue: count pending messages of consumer %s on stream %s: create counting consumer: %w", s.cname, s.t.name, err))
	}
	undelivered := counter.CachedInfo().NumPending
	// Best effort: the inactive threshold removes it anyway.
	_ = s.t.stream.DeleteConsumer(ctx, counter.CachedInfo().Name)
	return int(undelivered) + info.NumAckPending, nil
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
