// Package notify bridges bucket notifications from a foreign queue onto
// sluice's bus.
//
// An S3 server (AWS S3 through SQS, SNS or EventBridge; MinIO; versitygw)
// publishes notifications to a queue that sluice does not own: the inbox, a
// queue/driver.Subscription opened by natsqueue.OpenInbox or its RabbitMQ
// and SQS counterparts. A Bridge receives each inbox message, reads it with
// event.ParseNotification in whatever dialect it comes, publishes every
// record it carries on the bus in sluice's own format (event.Marshal: one
// message per record, keys URL-encoded), and acknowledges the inbox message
// only once every publish has returned nil. So a notification is never lost
// between the two queues: a crash, a failed publish or a lost ack leaves
// the inbox message unacknowledged, and it is delivered again.
//
// What happens to each inbox message:
//
//   - Records: published, then acked. Records of another bucket than
//     Bridge.Bucket, when that is set, are skipped.
//   - s3:TestEvent (sent by AWS when notifications are configured): acked,
//     logged at debug level, counted in Stats.Tests.
//   - Undecodable (event.ErrNotANotification), or records the bus refuses
//     for good (a permanent publish error, per package fault): handed to
//     Bridge.DeadLetter with the reason, so that it lands in sluice's dead
//     letters, then acked. If DeadLetter fails the message is not acked: it
//     is nacked with a delay and comes back. Never silently dropped.
//   - A transient publish failure (the bus is down): retried in place with
//     Bridge.Retry's capped exponential backoff, keeping the inbox message's
//     ack deadline alive with InProgress, for at most Retry.For; after that
//     the message is nacked with the largest backoff and will come back.
//     Records already published are not published again while retrying in
//     place.
//
// Delivery is at least once. The same notification delivered twice (the
// S3 server sent it twice, an ack was lost, the bridge stopped between
// publish and ack, or a nacked message had published some records) is
// published twice: sluice's loads are idempotent through the warehouse
// ledger, which records each object version (key and ETag) once, so the
// second copy loads nothing.
//
// Run handles one message at a time. Several Run calls (on one Bridge or
// on several sharing an inbox) may go on concurrently; Stats is safe for
// concurrent use.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/queue"
	"github.com/sluicehq/sluice/queue/driver"
)

// HeaderInboxMessage is set on every message the bridge publishes: the ID
// of the inbox message the record came from, for tracing.
const HeaderInboxMessage = "Sluice-Inbox-Message"

// DefaultHeartbeat is how often the bridge extends an inbox message's ack
// deadline while it waits between publish retries. It is well below the
// shortest ack wait sluice configures.
const DefaultHeartbeat = 5 * time.Second

// Bridge moves notifications from Inbox to Bus. Inbox, Bus and DeadLetter
// are required; the other fields have working zero values.
type Bridge struct {
	// Name identifies the inbox in logs and dead-letter reasons, e.g.
	// "nats s3.events".
	Name string
	// Inbox is the foreign queue the S3 server publishes to.
	Inbox driver.Subscription
	// Bus is sluice's topic the jobs subscribe to.
	Bus *queue.Topic
	// KeyEncoding of the S3 records on the inbox (event.KeyURL for AWS and
	// MinIO, event.KeyRaw for versitygw; "" means url).
	KeyEncoding event.KeyEncoding
	// Bucket, if not empty, keeps only records of that bucket (an inbox
	// shared by several buckets); others are skipped and counted.
	Bucket string
	// DeadLetter records an inbox message the bridge gives up on, with the
	// reason, in sluice's dead letters. The message is acked only after it
	// returned nil.
	DeadLetter func(ctx context.Context, body []byte, reason string) error
	// Retry bounds retrying a failing publish in place (zero: fault's
	// defaults).
	Retry fault.Retry
	// Heartbeat is how often the ack deadline is extended while waiting
	// to retry (default DefaultHeartbeat).
	Heartbeat time.Duration
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time

	// Stats counts what the bridge did.
	Stats Stats
}

// Stats counts a bridge's work. Fields are updated atomically.
type Stats struct {
	// Received counts inbox messages received (redeliveries included).
	Received atomic.Int64
	// Published counts records published on the bus.
	Published atomic.Int64
	// Skipped counts records of another bucket than Bridge.Bucket.
	Skipped atomic.Int64
	// Tests counts s3:TestEvent messages acked and ignored.
	Tests atomic.Int64
	// DeadLettered counts inbox messages handed to DeadLetter and acked.
	DeadLettered atomic.Int64
	// PublishRetries counts failed publishes that were retried.
	PublishRetries atomic.Int64
}

func (b *Bridge) logger() *slog.Logger {
	if b.Logger != nil {
		return b.Logger
	}
	return slog.Default()
}

func (b *Bridge) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *Bridge) name() string {
	if b.Name != "" {
		return b.Name
	}
	return "notifications"
}

// receiveBackoff bounds the wait between failed receives.
var receiveBackoff = fault.Retry{Backoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second}

// Run bridges messages until ctx is done, then returns nil. A failing
// receive (the inbox's server is down) is logged and retried with backoff;
// Run returns an error only when the bridge is misconfigured or the inbox
// was closed. A message being handled when ctx ends is left unacked and
// will be delivered again.
func (b *Bridge) Run(ctx context.Context) error {
	switch {
	case b.Inbox == nil:
		return fmt.Errorf("notify %s: Bridge.Inbox is nil; open the inbox (natsqueue.OpenInbox or another backend's) first", b.name())
	case b.Bus == nil:
		return fmt.Errorf("notify %s: Bridge.Bus is nil; open the pipeline's queue first", b.name())
	case b.DeadLetter == nil:
		return fmt.Errorf("notify %s: Bridge.DeadLetter is nil; the bridge needs somewhere to put notifications it cannot read", b.name())
	}
	enc, err := event.ParseKeyEncoding(string(b.KeyEncoding))
	if err != nil {
		return fmt.Errorf("notify %s: %w", b.name(), err)
	}
	failures := 0
	for {
		m, err := b.Inbox.Receive(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, queue.ErrClosed) {
				return fmt.Errorf("notify %s: receive: %w", b.name(), err)
			}
			failures++
			d := receiveBackoff.Delay(failures)
			b.logger().Warn("notification inbox receive failed; retrying", "inbox", b.name(), "error", err, "retry_in", d)
			if fault.Sleep(ctx, d) != nil {
				return nil
			}
			continue
		}
		failures = 0
		b.Stats.Received.Add(1)
		b.handle(ctx, m, enc)
	}
}

// handle decides the fate of one inbox message. It never acks a message
// whose records are not all on the bus or in the dead letters.
func (b *Bridge) handle(ctx context.Context, m *driver.Message, enc event.KeyEncoding) {
	log := b.logger().With("inbox", b.name(), "message", m.ID, "deliveries", m.Deliveries)
	recs, kind, err := event.ParseNotification(m.Body, enc)
	if err != nil {
		b.deadLetter(ctx, log, m, fmt.Sprintf("notification inbox %s, message %s: %v", b.name(), m.ID, err))
		return
	}
	if kind == event.NotificationTest {
		if b.ack(ctx, log, m) {
			b.Stats.Tests.Add(1)
			log.Debug("s3:TestEvent acked and ignored")
		}
		return
	}
	bodies := make([][]byte, 0, len(recs))
	for _, r := range recs {
		if b.Bucket != "" && r.S3.Bucket.Name != b.Bucket {
			b.Stats.Skipped.Add(1)
			log.Debug("record of another bucket skipped", "bucket", r.S3.Bucket.Name, "key", r.S3.Object.Key)
			continue
		}
		body, err := event.Marshal(r)
		if err != nil {
			b.deadLetter(ctx, log, m, fmt.Sprintf("notification inbox %s, message %s: encode record for %s: %v", b.name(), m.ID, r.Version(), err))
			return
		}
		bodies = append(bodies, body)
	}
	header := map[string]string{HeaderInboxMessage: m.ID}
	first := time.Time{}
	attempt := 0
	for i := 0; i < len(bodies); {
		err := b.Bus.Publish(ctx, bodies[i], header)
		if err == nil {
			b.Stats.Published.Add(1)
			i++
			continue
		}
		if ctx.Err() != nil {
			return // stopping: the message stays unacked and comes back
		}
		if fault.IsPermanent(err) {
			b.deadLetter(ctx, log, m, fmt.Sprintf("notification inbox %s, message %s: the bus refuses record %d of %d: %v", b.name(), m.ID, i+1, len(bodies), err))
			return
		}
		if first.IsZero() {
			first = b.now()
		}
		attempt++
		b.Stats.PublishRetries.Add(1)
		if b.Retry.GiveUp(first, b.now()) {
			delay := b.Retry.Delay(attempt)
			log.Warn("publishing notification records kept failing; the inbox message is nacked and will come back", "error", err, "for", b.now().Sub(first), "redelivery_in", delay)
			if nerr := b.Inbox.Nack(ctx, m, delay); nerr != nil {
				log.Warn("nack failed; the message comes back after its ack wait", "error", nerr)
			}
			return
		}
		delay := b.Retry.Delay(attempt)
		log.Warn("publishing a notification record failed; retrying", "error", err, "record", i+1, "of", len(bodies), "retry_in", delay)
		if !b.wait(ctx, log, m, delay) {
			return
		}
	}
	b.ack(ctx, log, m)
}

// wait sleeps d while extending m's ack deadline every Heartbeat. It
// returns false when ctx ended.
func (b *Bridge) wait(ctx context.Context, log *slog.Logger, m *driver.Message, d time.Duration) bool {
	beat := b.Heartbeat
	if beat <= 0 {
		beat = DefaultHeartbeat
	}
	for d > 0 {
		if err := b.Inbox.InProgress(ctx, m); err != nil && ctx.Err() == nil {
			log.Warn("extending the ack deadline failed; the message may be delivered again meanwhile", "error", err)
		}
		step := min(d, beat)
		if fault.Sleep(ctx, step) != nil {
			return false
		}
		d -= step
	}
	return true
}

// deadLetter hands m to DeadLetter and acks it; if DeadLetter fails, m is
// nacked so that it comes back.
func (b *Bridge) deadLetter(ctx context.Context, log *slog.Logger, m *driver.Message, reason string) {
	if err := b.DeadLetter(ctx, m.Body, reason); err != nil {
		if ctx.Err() != nil {
			return
		}
		delay := b.Retry.Delay(1)
		log.Warn("recording an unreadable notification in the dead letters failed; it is nacked and will come back", "reason", reason, "error", err, "redelivery_in", delay)
		if nerr := b.Inbox.Nack(ctx, m, delay); nerr != nil {
			log.Warn("nack failed; the message comes back after its ack wait", "error", nerr)
		}
		return
	}
	log.Warn("notification dead-lettered", "reason", reason)
	if b.ack(ctx, log, m) {
		b.Stats.DeadLettered.Add(1)
	}
}

// ack acks m, logging a failure (the message then comes back and is
// handled again, which is harmless).
func (b *Bridge) ack(ctx context.Context, log *slog.Logger, m *driver.Message) bool {
	if err := b.Inbox.Ack(ctx, m); err != nil {
		if ctx.Err() == nil {
			log.Warn("ack failed; the message will be delivered and handled again", "error", err)
		}
		return false
	}
	return true
}
