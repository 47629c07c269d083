package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluicehq/sluice/deadletter"
	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/notify"
	"github.com/sluicehq/sluice/queue/driver"
	"github.com/sluicehq/sluice/queue/natsqueue"
	"github.com/sluicehq/sluice/queue/rabbitqueue"
	"github.com/sluicehq/sluice/queue/sqsqueue"
)

// NotificationsTarget is the dead-letter target of notifications the
// bridge could not read.
const NotificationsTarget = "notifications"

// openInbox opens the notifications inbox the spec names (see
// pipeline.Notifications). It runs at Open, before any source or upload,
// so that the stream or queue exists before the store's server publishes:
// a notification sent to no one is lost (reconcile finds its object later).
func (e *Engine) openInbox(ctx context.Context) (driver.Subscription, func(), error) {
	n := e.cfg.Spec.Notifications
	u, err := url.Parse(n.URL)
	if err != nil {
		return nil, nil, fault.Permanent(fmt.Errorf("notifications URL %q does not parse: %w", redactURL(n.URL), err))
	}
	q := u.Query()
	switch u.Scheme {
	case "nats":
		hostURL := (&url.URL{Scheme: "nats", User: u.User, Host: u.Host}).String()
		nc, err := nats.Connect(hostURL, nats.Name("sluice-notifications"), nats.Timeout(5*time.Second), nats.MaxReconnects(-1))
		if err != nil {
			return nil, nil, fmt.Errorf("notifications: connect to NATS at %s: %w", redacted(u), err)
		}
		durable := q.Get("durable")
		if durable == "" {
			durable = "sluice-" + e.cfg.Spec.Name
		}
		sub, err := natsqueue.OpenInbox(ctx, nc, q.Get("subject"), durable, &natsqueue.InboxOptions{AckWait: e.qopts.AckWait})
		if err != nil {
			nc.Close()
			return nil, nil, fmt.Errorf("notifications: open the inbox on subject %q at %s: %w", q.Get("subject"), redacted(u), err)
		}
		return sub, func() { sub.Close(); nc.Close() }, nil
	case "amqp", "amqps":
		bare := *u
		bare.RawQuery = ""
		sub, err := rabbitqueue.OpenInbox(ctx, bare.String(), q.Get("queue"), rabbitqueue.InboxOptions{AckWait: e.qopts.AckWait, Logger: e.log, Now: e.now})
		if err != nil {
			return nil, nil, fmt.Errorf("notifications: open the inbox queue %q at %s: %w", q.Get("queue"), redacted(u), err)
		}
		return sub, func() { sub.Close() }, nil
	case "sqs":
		sub, err := sqsqueue.OpenInbox(ctx, n.URL, sqsqueue.Options{Logger: e.log})
		if err != nil {
			return nil, nil, fmt.Errorf("notifications: open the inbox %s: %w", redacted(u), err)
		}
		return sub, func() { sub.Close() }, nil
	default:
		return nil, nil, fault.Permanent(fmt.Errorf("notifications URL %q: scheme %q is not supported; write nats://, sqs:// or amqp://", redacted(u), u.Scheme))
	}
}

// bridge moves the store's own notifications onto the bus until ctx ends.
// It runs in every process (the inbox's consumers compete), and is not a
// single-instance duty.
func (e *Engine) bridge(ctx context.Context) {
	n := e.cfg.Spec.Notifications
	b := &notify.Bridge{
		Name:        redactURL(n.URL),
		Inbox:       e.inbox,
		Bus:         e.Topic,
		KeyEncoding: n.KeyEncoding,
		Retry:       e.cfg.Retry,
		Logger:      e.log.With("notifications", redactURL(n.URL)),
		Now:         e.now,
		DeadLetter: func(ctx context.Context, body []byte, reason string) error {
			sum := sha256.Sum256(body)
			now := e.now()
			if !e.deadLetter(ctx, deadletter.DeadLetter{Target: NotificationsTarget, Kind: NotificationsTarget, Name: redactURL(n.URL),
				Key: "notification-" + hex.EncodeToString(sum[:8]), Event: body, Reason: reason, Attempts: 1, FirstFailure: now, LastFailure: now}) {
				return fmt.Errorf("the dead letter of a notification could not be recorded")
			}
			return nil
		},
	}
	if err := b.Run(ctx); err != nil && ctx.Err() == nil {
		e.log.Error("notifications bridge stopped", "err", err)
	}
}
