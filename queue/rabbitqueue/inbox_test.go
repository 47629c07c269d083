package rabbitqueue

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicehq/sluice/event"
)

// minioNotification is a bucket notification as MinIO's AMQP target sends
// it: the event name and key at the top, S3's record format inside, the key
// URL-encoded.
const minioNotification = `{"EventName":"s3:ObjectCreated:Put","Key":"raw/data/2026-12-01/hydropower+consumption.csv","Records":[{"eventVersion":"2.0","eventSource":"minio:s3","awsRegion":"","eventTime":"2026-12-01T10:00:00.000Z","eventName":"s3:ObjectCreated:Put","userIdentity":{"principalId":"minioadmin"},"requestParameters":{"sourceIPAddress":"127.0.0.1"},"responseElements":{"x-amz-request-id":"17F1"},"s3":{"s3SchemaVersion":"1.0","configurationId":"Config","bucket":{"name":"raw","ownerIdentity":{"principalId":"minioadmin"},"arn":"arn:aws:s3:::raw"},"object":{"key":"data%2F2026-12-01%2Fhydropower+consumption.csv","size":42,"eTag":"d41d8cd98f00b204e9800998ecf8427e","contentType":"text/csv","sequencer":"17F1"}}}]}`

// An inbox reads a queue a foreign producer fills, as MinIO's AMQP target
// does (to its exchange, with its routing key, no message-id): the raw body
// arrives, its ID is stable across a nack, a dead letter is listed, and the
// queue ends empty.
func TestInboxReceivesAMinIONotificationFromAForeignQueue(t *testing.T) {
	url := testURL()
	if err := reach(url); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := strings.ToLower(rand.Text())[:10]
	exchange, qname := "minio.test."+id, "sluice.test.inbox."+id

	c, err := amqp.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch, err := c.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { // before c closes
		for _, q := range []string{qname, qname + ":dead-letters"} {
			if _, err := ch.QueueDelete(q, false, false, false); err != nil {
				t.Errorf("clean up queue %s: %v", q, err)
			}
		}
		if err := ch.ExchangeDelete(exchange, false, false); err != nil {
			t.Errorf("clean up exchange %s: %v", exchange, err)
		}
	}()
	// The operator's set-up: MinIO's exchange; sluice declares the queue.
	if err := ch.ExchangeDeclare(exchange, amqp.ExchangeDirect, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	in, err := OpenInbox(ctx, url, qname, InboxOptions{AckWait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if err := ch.QueueBind(qname, "bucketlogs", exchange, false, nil); err != nil {
		t.Fatal(err)
	}
	// A second OpenInbox reuses the queue as it is.
	again, err := OpenInbox(ctx, url, qname, InboxOptions{})
	if err != nil {
		t.Fatalf("open the inbox over the existing queue: %v", err)
	}
	_ = again.Close()

	for _, body := range []string{minioNotification, "not json"} {
		if err := ch.PublishWithContext(ctx, exchange, "bucketlogs", false, false, amqp.Publishing{
			ContentType: "application/json", DeliveryMode: amqp.Persistent, Body: []byte(body),
		}); err != nil {
			t.Fatal(err)
		}
	}
	recv := func() (string, string, int) {
		t.Helper()
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		defer rcancel()
		m, err := in.Receive(rctx)
		if err != nil {
			t.Fatalf("receive from inbox %s: %v", qname, err)
		}
		switch string(m.Body) {
		case minioNotification:
			if m.Deliveries == 1 {
				if err := in.Nack(ctx, m, 0); err != nil {
					t.Fatalf("nack: %v", err)
				}
			} else if err := in.Ack(ctx, m); err != nil {
				t.Fatalf("ack: %v", err)
			}
		default:
			if err := in.DeadLetter(ctx, m, "not a notification"); err != nil {
				t.Fatalf("dead-letter: %v", err)
			}
		}
		return m.ID, string(m.Body), m.Deliveries
	}
	id1, body, n := recv()
	if body != minioNotification || n != 1 || id1 == "" {
		t.Fatalf("first message = %s %q delivery %d, want the notification, raw, delivery 1", id1, body, n)
	}
	recs, err := event.Parse([]byte(body), event.KeyURL)
	if err != nil || len(recs) != 1 || recs[0].S3.Object.Key != "data/2026-12-01/hydropower consumption.csv" {
		t.Fatalf("the received body does not parse as the notification: %+v, %v", recs, err)
	}
	_, body, _ = recv()
	if body != "not json" {
		t.Fatalf("second message = %q, want %q", body, "not json")
	}
	id3, body, n := recv()
	if body != minioNotification || n != 2 || id3 != id1 {
		t.Fatalf("after the nack got %s %q delivery %d, want %s delivery 2", id3, body, n, id1)
	}
	if got, err := in.Pending(ctx); err != nil || got != 0 {
		t.Errorf("inbox Pending = %d, %v; want 0", got, err)
	}
	dls, err := InboxDeadLetters(ctx, url, qname)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 1 || string(dls[0].Body) != "not json" || dls[0].Reason != "not a notification" || dls[0].Subscription != qname {
		t.Errorf("inbox dead letters = %+v, want the undecodable body with its reason", dls)
	}
}
