package sqsqueue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/queue/driver"
)

// InboxDeadLetterSuffix names an inbox's dead-letter queue:
// "<queue>_sluice-dead-letters" (see InboxDeadLetterQueue).
const InboxDeadLetterSuffix = "_sluice-dead-letters"

// Inbox is a subscription over an existing SQS queue that sluice does not
// own and that AWS fills (S3 event notifications, SNS, EventBridge).
// Message bodies are the raw notification bytes; Message.ID is SQS's
// MessageId (stable across redeliveries from one queue); Header holds the
// message attributes, if any. Ack deletes, Nack and InProgress change the
// visibility timeout as on a topic's subscription. DeadLetter moves the
// message to InboxDeadLetterQueue(queue), created on first use.
type Inbox struct {
	*subscription
	dlqName string
	dlqOnce sync.Mutex
}

var _ driver.Subscription = (*Inbox)(nil)

// InboxDeadLetterQueue is the dead-letter queue of inbox queue name.
func InboxDeadLetterQueue(name string) string {
	if n := name + InboxDeadLetterSuffix; len(n) <= maxNameLen {
		return n
	}
	sum := sha256.Sum256([]byte(name))
	h := hex.EncodeToString(sum[:5])
	return name[:maxNameLen-len(InboxDeadLetterSuffix)-len(h)-1] + "-" + h + InboxDeadLetterSuffix
}

// OpenInbox opens sqs://QUEUE-NAME?region=R&endpoint=URL[&ack_wait=..]
// over the existing queue QUEUE-NAME. The ack wait is the URL's ack_wait,
// else the queue's own visibility timeout. At most one Options may be
// given; its Client, Logger, PollWait and EmptyPolls apply.
func OpenInbox(ctx context.Context, sqsURL string, opts ...Options) (*Inbox, error) {
	var o Options
	if len(opts) > 1 {
		return nil, errors.New("sqsqueue: open inbox: give at most one Options")
	}
	if len(opts) == 1 {
		o = opts[0]
	}
	p, err := parseURL(sqsURL)
	if err != nil {
		return nil, err
	}
	if p.name == "" || !nameRE.MatchString(p.name) || len(p.name) > maxNameLen {
		return nil, fault.Permanent(fmt.Errorf("sqsqueue: open inbox %s: want sqs://QUEUE-NAME?region=R with the name of an existing queue", sqsURL))
	}
	client, err := o.resolve(ctx, p)
	if err != nil {
		return nil, err
	}
	bctx, cancel := bounded(ctx)
	defer cancel()
	got, err := client.GetQueueUrl(bctx, &sqs.GetQueueUrlInput{QueueName: aws.String(p.name)})
	if err != nil {
		var dne *types.QueueDoesNotExist
		if errors.As(err, &dne) {
			return nil, fault.Permanent(fmt.Errorf("sqsqueue: open inbox: queue %s does not exist; create it and point the S3, SNS or EventBridge notifications at it: %w", p.name, err))
		}
		return nil, classify(fmt.Errorf("sqsqueue: open inbox: find queue %s: %w", p.name, err))
	}
	ackWait := p.ackWait
	if ackWait == 0 {
		attrs, err := client.GetQueueAttributes(bctx, &sqs.GetQueueAttributesInput{QueueUrl: got.QueueUrl, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameVisibilityTimeout}})
		if err != nil {
			return nil, classify(fmt.Errorf("sqsqueue: open inbox: read the visibility timeout of queue %s: %w", p.name, err))
		}
		secs, err := strconv.Atoi(attrs.Attributes[string(types.QueueAttributeNameVisibilityTimeout)])
		if err != nil || secs <= 0 {
			secs = 30
		}
		ackWait = time.Duration(secs) * time.Second
	}
	log := o.Logger.With("inbox", "sqs://"+p.name)
	in := &Inbox{dlqName: InboxDeadLetterQueue(p.name)}
	in.subscription = newSubscription(client, p.name, p.name, aws.ToString(got.QueueUrl), ackWait,
		int32(min(max(o.PollWait, 0), defaultPoll)/time.Second), o.EmptyPolls, nil, log, o.Now)
	now := o.Now
	in.subscription.lazyDLQ = func(ctx context.Context) (*deadLetterQueue, error) {
		in.dlqOnce.Lock()
		defer in.dlqOnce.Unlock()
		if in.subscription.dlq != nil {
			return in.subscription.dlq, nil
		}
		t := &Topic{client: client, prefix: p.name}
		u, err := t.ensureQueue(ctx, in.dlqName, "dead-letters", 30*time.Second)
		if err != nil {
			return nil, fmt.Errorf("sqsqueue: inbox %s: %w", p.name, err)
		}
		in.subscription.dlq = &deadLetterQueue{client: client, url: u, name: in.dlqName, now: now}
		return in.subscription.dlq, nil
	}
	return in, nil
}

// DeadLetters lists the inbox's dead letters, oldest first (none before
// the first DeadLetter created its queue).
func (in *Inbox) DeadLetters(ctx context.Context) ([]driver.DeadLetter, error) {
	in.dlqOnce.Lock()
	dlq := in.subscription.dlq
	in.dlqOnce.Unlock()
	if dlq == nil {
		bctx, cancel := bounded(ctx)
		defer cancel()
		_, err := in.client.GetQueueUrl(bctx, &sqs.GetQueueUrlInput{QueueName: aws.String(in.dlqName)})
		var dne *types.QueueDoesNotExist
		if errors.As(err, &dne) {
			return nil, nil
		}
		if err != nil {
			return nil, classify(fmt.Errorf("sqsqueue: inbox %s: find dead-letter queue %s: %w", in.name, in.dlqName, err))
		}
		if dlq, err = in.subscription.lazyDLQ(ctx); err != nil {
			return nil, err
		}
	}
	return dlq.list(ctx)
}
