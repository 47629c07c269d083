// Package driver defines the small interface a queue backend implements.
// Users do not call it: they use queue.Topic and queue.Subscription, which add
// validation, dead-lettering on too many deliveries and error wrapping once for
// every backend. Each backend runs queue/drivertest's conformance suite.
package driver

import (
	"context"
	"time"
)

// Message is one delivery of a published message.
type Message struct {
	// ID is stable across redeliveries of the same published message.
	ID string
	// Body is the published payload.
	Body []byte
	// Header carries the published headers.
	Header map[string]string
	// Deliveries counts deliveries of this message, 1 on the first.
	Deliveries int
	// Handle is the backend's own token for Ack, Nack and friends.
	Handle any
}

// DeadLetter is a message a subscription gave up on, with the reason.
type DeadLetter struct {
	Subscription string
	ID           string
	Body         []byte
	Header       map[string]string
	Reason       string
	Deliveries   int
	At           time.Time
}

// SubscriptionOptions configure a durable subscription. Zero values mean the
// backend's defaults as documented on queue.SubscriptionOptions.
type SubscriptionOptions struct {
	// AckWait is how long a delivered message may stay unacknowledged before
	// it is delivered again.
	AckWait time.Duration
}

// Topic is a backend's stream of messages with durable named subscriptions.
// Every subscription receives every message published after the topic was
// created (durable backends keep them across restarts). Several Subscription
// values opened with the same name compete for that subscription's messages.
type Topic interface {
	// Publish returns once the message is durably accepted by the backend.
	Publish(ctx context.Context, body []byte, header map[string]string) error
	// Subscribe opens, creating it if needed, the durable subscription name.
	Subscribe(ctx context.Context, name string, opts SubscriptionOptions) (Subscription, error)
	// DeadLetters lists the dead letters of every subscription, oldest first.
	DeadLetters(ctx context.Context) ([]DeadLetter, error)
	// Close releases the backend's resources; subscriptions stop working.
	Close() error
}

// Subscription receives messages of one durable subscription.
type Subscription interface {
	// Receive blocks until a message is available or ctx is done, then
	// returns ctx.Err().
	Receive(ctx context.Context) (*Message, error)
	// Ack marks the message done; it is not delivered again.
	Ack(ctx context.Context, m *Message) error
	// Nack asks for redelivery after delay (0: as soon as possible).
	Nack(ctx context.Context, m *Message, delay time.Duration) error
	// InProgress resets the message's ack deadline.
	InProgress(ctx context.Context, m *Message) error
	// DeadLetter records m with reason in the dead-letter destination and
	// then removes it from the subscription for good.
	DeadLetter(ctx context.Context, m *Message, reason string) error
	// Pending counts messages not yet acked or dead-lettered, including
	// those delivered and in flight.
	Pending(ctx context.Context) (int, error)
	// Close stops receiving; unacked messages are redelivered later.
	Close() error
}
