package sqsqueue

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/queue/driver"
	"github.com/sluicehq/sluice/queue/sqsqueue/sqsfake"
)

const s3Event = `{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"raw"},"object":{"key":"a%2Bb.json","size":3}}}]}`

// An inbox reads the raw notifications AWS put on a queue sluice does not
// own, with SQS's MessageId as ID, and acks, nacks and dead-letters them.
func TestInboxReadsRawNotifications(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fake := sqsfake.Start(t)
	c := fakeClient(fake)
	// As an operator and S3 would: a queue with a 5 s visibility timeout.
	q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("raw-events"), Attributes: map[string]string{"VisibilityTimeout": "5"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{s3Event, "not json"} {
		if _, err := c.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: q.QueueUrl, MessageBody: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := OpenInbox(ctx, "sqs://missing?region=us-east-1", Options{Client: c}); err == nil || !fault.IsPermanent(err) || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("OpenInbox of a missing queue = %v, want a permanent error saying it does not exist", err)
	}
	in, err := OpenInbox(ctx, "sqs://raw-events?region=us-east-1&empty_polls=-1", Options{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if in.ackWait != 5*time.Second {
		t.Errorf("inbox ack wait = %v, want the queue's visibility timeout 5s", in.ackWait)
	}
	if n, err := in.Pending(ctx); err != nil || n != 2 {
		t.Fatalf("Pending = %d (err %v), want 2", n, err)
	}
	m := recvWithin(t, in, 5*time.Second)
	if string(m.Body) != s3Event || m.Deliveries != 1 || len(m.Header) != 0 || m.ID == "" {
		t.Fatalf("got %s %q delivery %d header %v, want the raw S3 event, delivery 1, no header", m.ID, m.Body, m.Deliveries, m.Header)
	}
	if err := in.Nack(ctx, m, 0); err != nil {
		t.Fatal(err)
	}
	// The nacked message and "not json", in either order (SQS does not
	// promise one).
	var bad, again *driver.Message
	for range 2 {
		x := recvWithin(t, in, 5*time.Second)
		if x.ID == m.ID {
			again = x
		} else {
			bad = x
		}
	}
	if again == nil || again.Deliveries != 2 {
		t.Fatalf("after Nack the message %s did not come back with delivery 2 (got %+v)", m.ID, again)
	}
	if bad == nil || string(bad.Body) != "not json" {
		t.Fatalf("the second message = %+v, want %q", bad, "not json")
	}
	if err := in.Ack(ctx, again); err != nil {
		t.Fatal(err)
	}
	if dls, err := in.DeadLetters(ctx); err != nil || len(dls) != 0 {
		t.Fatalf("DeadLetters before any = %v (err %v), want none", dls, err)
	}
	const reason = "not an S3 notification: invalid character 'o'"
	if err := in.DeadLetter(ctx, bad, reason); err != nil {
		t.Fatal(err)
	}
	if n, err := in.Pending(ctx); err != nil || n != 0 {
		t.Errorf("Pending after ack and dead letter = %d (err %v), want 0", n, err)
	}
	// A new process lists them.
	in2, err := OpenInbox(ctx, "sqs://raw-events?region=us-east-1&ack_wait=2s", Options{Client: fakeClient(fake)})
	if err != nil {
		t.Fatal(err)
	}
	defer in2.Close()
	if in2.ackWait != 2*time.Second {
		t.Errorf("inbox ack wait with ack_wait=2s = %v", in2.ackWait)
	}
	dls, err := in2.DeadLetters(ctx)
	if err != nil || len(dls) != 1 {
		t.Fatalf("DeadLetters = %+v (err %v), want 1", dls, err)
	}
	if d := dls[0]; d.ID != bad.ID || string(d.Body) != "not json" || d.Reason != reason || d.Subscription != "raw-events" || d.Deliveries != 1 {
		t.Errorf("dead letter = %+v, want message %s %q of raw-events with the reason", d, bad.ID, "not json")
	}
	if got := fake.QueueNames(); len(got) != 2 || got[1] != "raw-events_sluice-dead-letters" {
		t.Errorf("queues = %v, want raw-events and raw-events_sluice-dead-letters", got)
	}
}

func TestInboxDeadLetterQueueNameFits(t *testing.T) {
	long := strings.Repeat("q", 80)
	if n := InboxDeadLetterQueue(long); len(n) > 80 || !strings.HasSuffix(n, InboxDeadLetterSuffix) {
		t.Errorf("InboxDeadLetterQueue of an 80-byte name = %q (%d bytes)", n, len(n))
	}
	if InboxDeadLetterQueue(long) == InboxDeadLetterQueue(long[:79]+"r") {
		t.Error("two long names share a dead-letter queue")
	}
}
