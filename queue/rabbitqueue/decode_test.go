package rabbitqueue

import (
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

func TestDeadLetterFromToleratesMissingAndOddHeaders(t *testing.T) {
	ts := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	dl := deadLetterFrom(amqp.Table{HeaderDeliveries: "x", HeaderAt: "yesterday", "K": int32(7), "x-stream-offset": int64(3)}, []byte("b"), ts)
	if dl.Deliveries != 0 || !dl.At.Equal(ts) || dl.Header["K"] != "7" || len(dl.Header) != 1 || dl.Reason != "" {
		t.Errorf("dead letter from odd headers = %+v, want Deliveries 0, the message timestamp, header K=7 only", dl)
	}
	at := ts.Add(time.Second + time.Millisecond)
	dl = deadLetterFrom(amqp.Table{HeaderDeliveries: "3", HeaderAt: at.Format(time.RFC3339Nano), HeaderReason: "r", HeaderSubscription: "s", HeaderMessageID: "id"}, nil, ts)
	if dl.Deliveries != 3 || !dl.At.Equal(at) || dl.Reason != "r" || dl.Subscription != "s" || dl.ID != "id" || dl.Header != nil {
		t.Errorf("dead letter = %+v, want deliveries 3 at %v, reason r of s, id id, no header", dl, at)
	}
}

func FuzzDeadLetterFrom(f *testing.F) {
	f.Add("3", "2026-12-01T10:00:00Z", "reason", []byte("body"))
	f.Add("-1", "", "", []byte(nil))
	f.Fuzz(func(t *testing.T, deliveries, at, reason string, body []byte) {
		dl := deadLetterFrom(amqp.Table{HeaderDeliveries: deliveries, HeaderAt: at, HeaderReason: reason}, body, time.Time{})
		if dl.Deliveries < 0 || dl.Reason != reason || string(dl.Body) != string(body) {
			t.Fatalf("dead letter %+v from deliveries %q reason %q", dl, deliveries, reason)
		}
	})
}

// Deliveries counts the broker's x-delivery-count and the copies' own count,
// whatever integer type the broker encoded them with.
func TestDeliveryCountAddsBrokerAndCopyCounts(t *testing.T) {
	for _, tc := range []struct {
		h    amqp.Table
		want int
	}{
		{nil, 1},
		{amqp.Table{"x-delivery-count": int64(0)}, 1},
		{amqp.Table{"x-delivery-count": int32(2)}, 3},
		{amqp.Table{"x-delivery-count": int64(1), HeaderDelivered: int64(2)}, 4},
		{amqp.Table{HeaderDelivered: "5", "K": []byte("v")}, 6},
		{amqp.Table{HeaderDelivered: int64(-4)}, 1},
	} {
		header, got := decodeHeaders(tc.h)
		if got != tc.want {
			t.Errorf("headers %v: Deliveries %d, want %d", tc.h, got, tc.want)
		}
		for k := range header {
			if k != "K" {
				t.Errorf("headers %v: user header %q kept, want only K", tc.h, k)
			}
		}
	}
}
