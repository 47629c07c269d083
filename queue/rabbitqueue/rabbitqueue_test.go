package rabbitqueue

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicehq/sluice/queue/driver"
	"github.com/sluicehq/sluice/queue/drivertest"
)

// testURL is the broker the tests use.
func testURL() string {
	if u := os.Getenv("SLUICE_TEST_AMQP_URL"); u != "" {
		return u
	}
	return "amqp://guest:guest@127.0.0.1:5672/"
}

// reach fails unless the broker answers, saying what to start.
func reach(url string) error {
	c, err := amqp.Dial(url)
	if err != nil {
		return fmt.Errorf("cannot reach RabbitMQ at %s: %w; start it (rabbitmq-server -detached, or scripts/test.sh) or point SLUICE_TEST_AMQP_URL at one", redact(url), err)
	}
	return c.Close()
}

// recorder wraps a Topic to learn the subscription names to delete.
type recorder struct {
	*Topic
	h *harness
}

func (r recorder) Subscribe(ctx context.Context, name string, opts driver.SubscriptionOptions) (driver.Subscription, error) {
	r.h.mu.Lock()
	r.h.subs[r.Topic.opts.Exchange] = append(r.h.subs[r.Topic.opts.Exchange], name)
	r.h.mu.Unlock()
	return r.Topic.Subscribe(ctx, name, opts)
}

// harness gives each topic a unique exchange and queue prefix on the broker
// and deletes every object it made at Close.
type harness struct {
	url  string
	mu   sync.Mutex
	opts []Options
	subs map[string][]string // exchange -> subscription names
}

func newHarness(ctx context.Context, t *testing.T) (drivertest.Harness, error) {
	if err := reach(testURL()); err != nil {
		return nil, err
	}
	return &harness{url: testURL(), subs: map[string][]string{}}, nil
}

func (h *harness) MakeTopic(ctx context.Context) (driver.Topic, error) {
	id := strings.ToLower(rand.Text())[:12]
	opts := Options{Exchange: "sluice.test." + id}
	h.mu.Lock()
	h.opts = append(h.opts, opts)
	h.mu.Unlock()
	top, err := Open(ctx, h.url, opts)
	if err != nil {
		return nil, err
	}
	return recorder{top, h}, nil
}

func (h *harness) Restart(ctx context.Context, t driver.Topic) (driver.Topic, error) {
	r, ok := t.(recorder)
	if !ok {
		return nil, fmt.Errorf("restart: topic %v was not made by this harness", t)
	}
	_ = r.Close()
	top, err := Open(ctx, h.url, r.Topic.opts)
	if err != nil {
		return nil, err
	}
	return recorder{top, h}, nil
}

func (h *harness) Close() {
	deleteTopics(h.url, h.opts, h.subs)
}

// deleteTopics removes the exchanges, streams and queues of topics.
func deleteTopics(url string, topics []Options, subs map[string][]string) {
	c, err := amqp.Dial(url)
	if err != nil {
		return
	}
	defer c.Close()
	for _, o := range topics {
		ex, log, dlq, _ := o.Names("")
		del := func(f func(ch *amqp.Channel) error) {
			if ch, err := c.Channel(); err == nil {
				_ = f(ch)
				_ = ch.Close()
			}
		}
		for _, q := range []string{log, dlq} {
			del(func(ch *amqp.Channel) error { _, err := ch.QueueDelete(q, false, false, false); return err })
		}
		for _, s := range subs[o.Exchange] {
			_, _, _, q := o.Names(s)
			del(func(ch *amqp.Channel) error { _, err := ch.QueueDelete(q, false, false, false); return err })
			del(func(ch *amqp.Channel) error { return ch.ExchangeDelete(q+":backfilled", false, false) })
		}
		del(func(ch *amqp.Channel) error { return ch.ExchangeDelete(ex, false, false) })
	}
}

func TestConformance(t *testing.T) {
	if err := reach(testURL()); err != nil {
		t.Fatal(err)
	}
	drivertest.RunConformanceTests(t, newHarness)
}

func TestOpenRejectsBadOptions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		opts Options
		want string
	}{
		{Options{}, "Options.Exchange is empty"},
		{Options{Exchange: "amq.topic"}, "reserved"},
	} {
		if _, err := Open(ctx, testURL(), tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v) error = %v, want one containing %q", tc.opts, err, tc.want)
		}
	}
}

func TestOpenNamesTheBrokerItCannotReach(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Open(ctx, "amqp://guest:secret@127.0.0.1:1/", Options{Exchange: "sluice.x"})
	if err == nil {
		t.Fatal("Open on a closed port succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, "127.0.0.1:1") || strings.Contains(msg, "secret") || !strings.Contains(msg, "start RabbitMQ") {
		t.Errorf("error %q should name the broker without its password and say what to start", msg)
	}
}
