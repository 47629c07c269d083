package natsqueue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/queue/driver"
)

// InboxOptions configure OpenInbox. The zero value (or nil) means defaults.
type InboxOptions struct {
	// AckWait: an unacknowledged message is delivered again after this
	// long (default 30s, queue.DefaultAckWait).
	AckWait time.Duration
	// StorageErr is as in Options.
	StorageErr func() error
}

// InboxStreamName is the stream OpenInbox creates for subject when no
// stream captures it yet: "SLUICE_INBOX_" followed by the subject made into
// a name the way subscription names become consumer names (every byte
// other than a letter, digit, '-' or '_' replaced by '_', cut to 40 bytes,
// then '_' and 10 hex digits of the subject's SHA-256, so distinct subjects
// get distinct streams). "s3.events" gives "SLUICE_INBOX_s3_events_" plus
// the hash.
func InboxStreamName(subject string) string {
	return "SLUICE_INBOX_" + consumerName(subject)
}

// OpenInbox returns a subscription to messages that another program (an S3
// server such as versitygw, a bridge from SNS or EventBridge) publishes on
// subject, a NATS subject sluice does not own: the "inbox" of a
// pipeline's notifications. Bodies are the raw bytes as published.
//
// The messages must be kept until sluice has handled them, so they go
// through JetStream: if a stream already captures subject (its own subject
// list, wildcards included, matches it), OpenInbox uses that stream, since
// JetStream refuses a second stream with overlapping subjects; otherwise it
// creates InboxStreamName(subject) with file storage and limits retention,
// capturing subject. Either way it creates (or updates) the durable pull
// consumer durable (made into a consumer name as Open does), filtered on
// subject, delivering every message the stream holds (deliver-all),
// explicit acks, unlimited deliveries. A message published before the
// stream existed is not kept: create the inbox before the publisher starts.
//
// subject may contain wildcards ("s3.*.events"), but not be ">" alone.
//
// Ack, Nack, InProgress and Pending behave as on Open's subscriptions
// (each waits for the server's confirmation). DeadLetter publishes the
// message with its reason to the dead-letter subject
// "sluice.inbox.dlq.<stream>.<consumer>", which OpenInbox adds to the
// inbox's stream (also to a stream it did not create: a subject added to
// its list, its limits kept), then terminates it. sluice's notification
// bridge records undecodable notifications in sluice's own dead letters
// instead, and uses this only as the driver contract requires.
//
// The caller keeps ownership of nc; closing the subscription leaves it
// open.
func OpenInbox(ctx context.Context, nc *nats.Conn, subject, durable string, opts *InboxOptions) (driver.Subscription, error) {
	var o InboxOptions
	if opts != nil {
		o = *opts
	}
	if nc == nil {
		return nil, errors.New("natsqueue: open inbox: nil NATS connection")
	}
	if err := checkInboxSubject(subject); err != nil {
		return nil, fmt.Errorf("natsqueue: open inbox: subject %q: %w", subject, err)
	}
	if durable == "" {
		return nil, fmt.Errorf("natsqueue: open inbox on %s: empty durable name; name the consumer after the pipeline, such as sluice-posts", subject)
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(opTimeout))
	if err != nil {
		return nil, fmt.Errorf("natsqueue: open inbox on %s: %w", subject, err)
	}
	cname := consumerName(durable)
	if subjectMatches(subject, inboxDLQ(InboxStreamName(subject), cname)) {
		return nil, fmt.Errorf("natsqueue: open inbox: subject %q would also capture sluice's inbox dead letters (sluice.inbox.dlq.>); pick a narrower subject", subject)
	}
	name, err := js.StreamNameBySubject(ctx, subject)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		name = InboxStreamName(subject)
		dlq := inboxDLQ(name, cname)
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        name,
			Description: "sluice notification inbox " + subject,
			Subjects:    []string{subject, dlq},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
		})
		if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, fmt.Errorf("natsqueue: create inbox stream %s for subject %s: %w", name, subject, err)
		}
		// Another process may have created it first: fall through to
		// look it up and add what is missing.
	case err != nil:
		return nil, fmt.Errorf("natsqueue: find the stream capturing %s on %s: %w (the server needs JetStream: run nats-server -js)", subject, nc.ConnectedUrlRedacted(), err)
	}
	stream, err := js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("natsqueue: look up inbox stream %s for subject %s: %w", name, subject, err)
	}
	dlq := inboxDLQ(name, cname)
	if cfg := stream.CachedInfo().Config; !slices.Contains(cfg.Subjects, dlq) {
		cfg.Subjects = append(cfg.Subjects, dlq)
		if stream, err = js.UpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("natsqueue: add the dead-letter subject %s to stream %s, which captures %s: %w", dlq, name, subject, err)
		}
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       cname,
		Description:   "sluice inbox " + durable + " on " + subject,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.AckWait,
		MaxDeliver:    -1,
		FilterSubject: subject,
	})
	t := &Topic{storageErr: o.StorageErr, nc: nc, js: js, stream: stream, name: name, subject: subject}
	if err != nil {
		return nil, t.diagnose(fmt.Errorf("natsqueue: create or update inbox consumer %s on stream %s (subject %s): %w", cname, name, subject, err))
	}
	s := &subscription{t: t, name: durable, cname: cname, dlq: dlq, cons: cons, turn: make(chan struct{}, 1), done: make(chan struct{})}
	t.subs = []*subscription{s}
	return s, nil
}

// inboxDLQ is the dead-letter subject of consumer cname on inbox stream.
func inboxDLQ(stream, cname string) string {
	return "sluice.inbox.dlq." + stream + "." + cname
}

func checkInboxSubject(s string) error {
	if s == "" {
		return errors.New("empty; name the subject the S3 server publishes its notifications to")
	}
	if strings.ContainsAny(s, " \t\r\n\f") {
		return errors.New("contains white space")
	}
	toks := strings.Split(s, ".")
	for i, tok := range toks {
		switch {
		case tok == "":
			return errors.New("has an empty token (leading, trailing or doubled '.')")
		case tok == ">" && i != len(toks)-1:
			return errors.New("has '>' before its last token")
		case strings.ContainsAny(tok, "*>") && len(tok) > 1:
			return errors.New("has a wildcard inside a token")
		}
	}
	return nil
}

// subjectMatches reports whether the subject pattern (with '*' and '>'
// wildcards) matches the literal subject lit.
func subjectMatches(pattern, lit string) bool {
	p, l := strings.Split(pattern, "."), strings.Split(lit, ".")
	for i, tok := range p {
		if tok == ">" {
			return len(l) > i
		}
		if i >= len(l) || (tok != "*" && tok != l[i]) {
			return false
		}
	}
	return len(p) == len(l)
}
