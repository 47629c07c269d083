package sqsqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/queue"
	"github.com/sluicehq/sluice/queue/driver"
)

// subscription receives from one SQS queue.
type subscription struct {
	client      *sqs.Client
	name, qname string
	url         string
	ackWait     time.Duration
	vis         int32 // visibility timeout in seconds
	poll        int32 // long poll in seconds
	empty       int   // empty polls before Pending may say 0; <= 0: trust counts
	dlq         *deadLetterQueue
	now         func() time.Time
	log         *slog.Logger
	ctx         context.Context // the polls'; cancelled by Close
	cancel      context.CancelFunc
	turn        chan struct{} // serialises Receive; guards polling
	polling     chan pollResult
	once        sync.Once
	lazyDLQ     func(ctx context.Context) (*deadLetterQueue, error) // inboxes: make the DLQ on first use
	mu          sync.Mutex
	inflight    map[string]held // message ID -> its latest delivery, not yet settled
	emptyPolls  int
}

// held is a delivery this subscription has not settled; it stops counting
// once its visibility timeout ran out (SQS counts it as visible again).
type held struct {
	receipt string
	until   time.Time
}

type pollResult struct {
	msgs []types.Message
	at   time.Time // when the poll returned
	err  error
}

// handle is driver.Message.Handle.
type handle struct {
	id, receipt string
}

func newSubscription(client *sqs.Client, name, qname, url string, ackWait time.Duration, poll int32, empty int, dlq *deadLetterQueue, log *slog.Logger, now func() time.Time) *subscription {
	ctx, cancel := context.WithCancel(context.Background())
	return &subscription{
		client: client, name: name, qname: qname, url: url, ackWait: ackWait, vis: visSecs(ackWait), poll: poll, empty: empty,
		dlq: dlq, log: log, now: now, ctx: ctx, cancel: cancel, turn: make(chan struct{}, 1), inflight: map[string]held{},
	}
}

func (s *subscription) closedErr(op string) error {
	return fmt.Errorf("sqsqueue: %s on queue %s: %w", op, s.qname, queue.ErrClosed)
}

// startPoll starts one long poll on the subscription's own context; its
// result arrives on s.polling. s.turn must be held.
func (s *subscription) startPoll() {
	ch := make(chan pollResult, 1)
	s.polling = ch
	go func() {
		// Bounded, so a lost connection cannot hold the poll forever.
		ctx, cancel := context.WithTimeout(s.ctx, time.Duration(s.poll)*time.Second+opTimeout)
		defer cancel()
		out, err := s.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(s.url),
			MaxNumberOfMessages:         1,
			WaitTimeSeconds:             s.poll,
			VisibilityTimeout:           s.vis,
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount},
			MessageAttributeNames:       []string{"All"},
		})
		r := pollResult{at: s.now(), err: err}
		if err == nil {
			r.msgs = out.Messages
		}
		ch <- r
	}()
}

// Receive waits for the next message. When ctx ends first the long poll
// goes on and its message is kept for the next Receive.
func (s *subscription) Receive(ctx context.Context) (*driver.Message, error) {
	select {
	case s.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.ctx.Done():
		return nil, s.closedErr("receive")
	}
	defer func() { <-s.turn }()
	for {
		if s.ctx.Err() != nil {
			return nil, s.closedErr("receive")
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if s.polling == nil {
			s.startPoll()
		}
		var r pollResult
		select {
		case r = <-s.polling:
			s.polling = nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.ctx.Done():
			return nil, s.closedErr("receive")
		}
		if r.err != nil {
			if s.ctx.Err() != nil {
				return nil, s.closedErr("receive")
			}
			return nil, classify(fmt.Errorf("sqsqueue: receive from queue %s: %w", s.qname, r.err))
		}
		if len(r.msgs) == 0 {
			s.mu.Lock()
			if s.poll > 0 {
				s.emptyPolls++
			}
			s.mu.Unlock()
			continue
		}
		m := r.msgs[0]
		// A message that waited for a Receive longer than its visibility
		// timeout is visible on the queue again: let SQS deliver it anew.
		if s.now().Sub(r.at) >= time.Duration(s.vis)*time.Second {
			s.log.Debug("dropping a message received before its visibility ran out", "queue", s.qname, "sqs_id", aws.ToString(m.MessageId))
			continue
		}
		dm, err := decode(m)
		if err != nil {
			// Undecodable: hand it to the caller raw, so it can dead-letter it.
			s.log.Warn("message does not decode; delivering it raw", "queue", s.qname, "err", err)
			dm = &driver.Message{ID: aws.ToString(m.MessageId), Body: []byte(aws.ToString(m.Body)), Deliveries: 1}
			if n, cerr := strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]); cerr == nil && n > 0 {
				dm.Deliveries = n
			}
		}
		receipt := aws.ToString(m.ReceiptHandle)
		dm.Handle = &handle{id: dm.ID, receipt: receipt}
		s.mu.Lock()
		s.inflight[dm.ID] = held{receipt: receipt, until: r.at.Add(time.Duration(s.vis) * time.Second)}
		s.emptyPolls = 0
		s.mu.Unlock()
		return dm, nil
	}
}

func (s *subscription) handle(op string, m *driver.Message) (*handle, error) {
	if s.ctx.Err() != nil {
		return nil, s.closedErr(op + " message " + m.ID)
	}
	h, ok := m.Handle.(*handle)
	if !ok {
		return nil, fmt.Errorf("sqsqueue: %s message %s: it was not received from an sqsqueue subscription", op, m.ID)
	}
	return h, nil
}

func (s *subscription) settled(h *handle) {
	s.mu.Lock()
	if s.inflight[h.id].receipt == h.receipt {
		delete(s.inflight, h.id)
	}
	s.mu.Unlock()
}

// Ack deletes m from the queue.
func (s *subscription) Ack(ctx context.Context, m *driver.Message) error {
	h, err := s.handle("ack", m)
	if err != nil {
		return err
	}
	ctx, cancel := bounded(ctx)
	defer cancel()
	if _, err := s.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(s.url), ReceiptHandle: aws.String(h.receipt)}); err != nil {
		return classify(fmt.Errorf("sqsqueue: ack (delete) message %s on queue %s: %w", m.ID, s.qname, err))
	}
	s.settled(h)
	return nil
}

func (s *subscription) visibility(ctx context.Context, h *handle, secs int32) error {
	ctx, cancel := bounded(ctx)
	defer cancel()
	_, err := s.client.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(s.url), ReceiptHandle: aws.String(h.receipt), VisibilityTimeout: secs})
	return err
}

// Nack makes m visible again after delay (rounded up to seconds).
func (s *subscription) Nack(ctx context.Context, m *driver.Message, delay time.Duration) error {
	h, err := s.handle("nack", m)
	if err != nil {
		return err
	}
	err = s.visibility(ctx, h, visSecs(delay))
	var notInflight *types.MessageNotInflight
	if err != nil && !errors.As(err, &notInflight) { // not in flight: visible already
		return classify(fmt.Errorf("sqsqueue: nack message %s on queue %s: %w", m.ID, s.qname, err))
	}
	s.settled(h)
	return nil
}

// InProgress sets m's visibility timeout to the ack wait again.
func (s *subscription) InProgress(ctx context.Context, m *driver.Message) error {
	h, err := s.handle("extend deadline of", m)
	if err != nil {
		return err
	}
	start := s.now()
	if err := s.visibility(ctx, h, s.vis); err != nil {
		var notInflight *types.MessageNotInflight
		if errors.As(err, &notInflight) {
			return fault.Transient(fmt.Errorf("sqsqueue: extend deadline of message %s on queue %s: its visibility timeout ran out and it may be delivered again: %w", m.ID, s.qname, err))
		}
		return classify(fmt.Errorf("sqsqueue: extend deadline of message %s on queue %s: %w", m.ID, s.qname, err))
	}
	s.mu.Lock()
	if c := s.inflight[h.id]; c.receipt == h.receipt {
		c.until = start.Add(time.Duration(s.vis) * time.Second)
		s.inflight[h.id] = c
	}
	s.mu.Unlock()
	return nil
}

// DeadLetter stores m in the dead-letter queue, then deletes it.
func (s *subscription) DeadLetter(ctx context.Context, m *driver.Message, reason string) error {
	h, err := s.handle("dead-letter", m)
	if err != nil {
		return err
	}
	dlq := s.dlq
	if s.lazyDLQ != nil { // an inbox makes its dead-letter queue on first use
		if dlq, err = s.lazyDLQ(ctx); err != nil {
			return err
		}
	}
	if err := dlq.put(ctx, s.name, m, reason); err != nil {
		return fmt.Errorf("%w (the message stays on queue %s and will be delivered again)", err, s.qname)
	}
	ctx, cancel := bounded(ctx)
	defer cancel()
	if _, err := s.client.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(s.url), ReceiptHandle: aws.String(h.receipt)}); err != nil {
		return classify(fmt.Errorf("sqsqueue: delete dead-lettered message %s from queue %s: %w (it is stored as a dead letter; a retry lists it once)", m.ID, s.qname, err))
	}
	s.settled(h)
	return nil
}

// Pending counts the queue's messages (SQS's approximate counts), never
// fewer than those this subscription holds unsettled, and at least 1 until
// the subscription saw its queue empty EmptyPolls times in a row.
func (s *subscription) Pending(ctx context.Context) (int, error) {
	if s.ctx.Err() != nil {
		return 0, s.closedErr("pending")
	}
	ctx, cancel := bounded(ctx)
	defer cancel()
	out, err := s.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(s.url),
		AttributeNames: []types.QueueAttributeName{
			types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		},
	})
	if err != nil {
		return 0, classify(fmt.Errorf("sqsqueue: count messages of queue %s: %w", s.qname, err))
	}
	n := 0
	for _, v := range out.Attributes {
		c, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("sqsqueue: count messages of queue %s: attribute value %q is not a number", s.qname, v)
		}
		n += c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	mine := 0
	for _, c := range s.inflight {
		if s.now().Before(c.until) {
			mine++
		}
	}
	n = max(n, mine)
	if n == 0 && s.empty > 0 && s.emptyPolls < s.empty {
		return 1, nil // not yet confirmed empty by long polls
	}
	return n, nil
}

// Close stops this subscription. A long poll still open is cancelled; the
// SQS message it may hold comes back after its visibility timeout.
func (s *subscription) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.mu.Lock()
		s.inflight = map[string]held{}
		s.mu.Unlock()
	})
	return nil
}

// deadLetterQueue stores dead letters as JSON envelopes in an SQS queue.
type deadLetterQueue struct {
	client    *sqs.Client
	url, name string
	now       func() time.Time
}

// envelope is a dead letter as stored.
type envelope struct {
	Subscription string            `json:"subscription"`
	ID           string            `json:"id"`
	Body         *string           `json:"body,omitempty"`
	BodyBase64   []byte            `json:"body_base64,omitempty"`
	Header       map[string]string `json:"header,omitempty"`
	Reason       string            `json:"reason"`
	Deliveries   int               `json:"deliveries"`
	At           time.Time         `json:"at"`
}

func (d *deadLetterQueue) put(ctx context.Context, sub string, m *driver.Message, reason string) error {
	e := envelope{Subscription: sub, ID: m.ID, Header: m.Header, Reason: reason, Deliveries: m.Deliveries, At: d.now().UTC()}
	if b := string(m.Body); sqsText(b) {
		e.Body = &b
	} else {
		e.BodyBase64 = m.Body
	}
	js, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("sqsqueue: dead-letter message %s: encode: %w", m.ID, err)
	}
	ctx, cancel := bounded(ctx)
	defer cancel()
	if _, err := d.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(d.url), MessageBody: aws.String(string(js))}); err != nil {
		return classify(fmt.Errorf("sqsqueue: dead-letter message %s: send to queue %s: %w", m.ID, d.name, err))
	}
	return nil
}

// list receives every dead letter with a hold of listHold, then makes them
// visible again.
func (d *deadLetterQueue) list(ctx context.Context) ([]driver.DeadLetter, error) {
	ctx, cancel := bounded(ctx)
	defer cancel()
	var (
		out      []driver.DeadLetter
		receipts []string
		seen     = map[string]bool{}
		lastErr  error
	)
	for {
		// A one-second long poll asks every SQS server, so an empty answer
		// means the queue holds no visible message.
		r, err := d.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(d.url), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: int32(listHold / time.Second)})
		if err != nil {
			lastErr = classify(fmt.Errorf("sqsqueue: read dead letters from queue %s: %w", d.name, err))
			break
		}
		if len(r.Messages) == 0 {
			break
		}
		for _, m := range r.Messages {
			receipts = append(receipts, aws.ToString(m.ReceiptHandle))
			var e envelope
			if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &e); err != nil {
				out = append(out, driver.DeadLetter{ID: aws.ToString(m.MessageId), Body: []byte(aws.ToString(m.Body)), Reason: "not a sluice dead letter: " + err.Error()})
				continue
			}
			key := e.Subscription + "\x00" + e.ID
			if seen[key] {
				continue
			}
			seen[key] = true
			dl := driver.DeadLetter{Subscription: e.Subscription, ID: e.ID, Header: e.Header, Reason: e.Reason, Deliveries: e.Deliveries, At: e.At}
			if e.Body != nil {
				dl.Body = []byte(*e.Body)
			} else {
				dl.Body = e.BodyBase64
			}
			out = append(out, dl)
		}
	}
	// Release what was held, even when ctx ended.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
	defer rcancel()
	for _, r := range receipts {
		if _, err := d.client.ChangeMessageVisibility(rctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(d.url), ReceiptHandle: aws.String(r), VisibilityTimeout: 0}); err != nil && lastErr == nil {
			lastErr = classify(fmt.Errorf("sqsqueue: release dead letter on queue %s after listing: %w (it stays hidden for %v)", d.name, err, listHold))
		}
	}
	if lastErr != nil {
		return nil, lastErr
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out, nil
}
