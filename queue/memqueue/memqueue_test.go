package memqueue_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/queue"
	"github.com/sluicehq/sluice/queue/driver"
	"github.com/sluicehq/sluice/queue/drivertest"
	"github.com/sluicehq/sluice/queue/memqueue"
)

type harness struct{}

func (harness) MakeTopic(context.Context) (driver.Topic, error) { return memqueue.New(), nil }

func (harness) Restart(_ context.Context, t driver.Topic) (driver.Topic, error) {
	mt, ok := t.(*memqueue.Topic)
	if !ok {
		return nil, fmt.Errorf("restart: topic is a %T, not a *memqueue.Topic", t)
	}
	return mt.Reopen(), nil
}

func (harness) Close() {}

func TestConformance(t *testing.T) {
	drivertest.RunConformanceTests(t, func(context.Context, *testing.T) (drivertest.Harness, error) {
		return harness{}, nil
	})
}

func TestClosedTopicRefusesWorkWithErrClosed(t *testing.T) {
	ctx := context.Background()
	top := memqueue.New()
	sub, err := top.Subscribe(ctx, "s", driver.SubscriptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Publish(ctx, []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	m, err := sub.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Receive(ctx); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("Receive after Close = %v, want queue.ErrClosed", err)
	}
	if err := sub.Ack(ctx, m); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("Ack after Close = %v, want queue.ErrClosed", err)
	}
	if err := top.Publish(ctx, []byte("y"), nil); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("Publish after Close = %v, want queue.ErrClosed", err)
	}
	if _, err := top.Subscribe(ctx, "s", driver.SubscriptionOptions{}); !errors.Is(err, queue.ErrClosed) {
		t.Errorf("Subscribe after Close = %v, want queue.ErrClosed", err)
	}
}

func TestCloseWakesABlockedReceive(t *testing.T) {
	ctx := context.Background()
	top := memqueue.New()
	sub, err := top.Subscribe(ctx, "s", driver.SubscriptionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := sub.Receive(ctx)
		done <- err
	}()
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, queue.ErrClosed) {
			t.Errorf("blocked Receive returned %v after Close, want queue.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Receive still blocked 5s after Close")
	}
}

func TestMessageFromAnotherSubscriptionIsRejected(t *testing.T) {
	ctx := context.Background()
	top := memqueue.New()
	a, _ := top.Subscribe(ctx, "a", driver.SubscriptionOptions{})
	b, _ := top.Subscribe(ctx, "b", driver.SubscriptionOptions{})
	if err := top.Publish(ctx, []byte("x"), nil); err != nil {
		t.Fatal(err)
	}
	m, err := a.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Ack(ctx, m); err == nil {
		t.Error("subscription b acked a message received from subscription a")
	}
	if n, _ := a.Pending(ctx); n != 1 {
		t.Errorf("Pending of a = %d after the foreign ack, want 1", n)
	}
}

func TestPublishedBodyIsCopied(t *testing.T) {
	ctx := context.Background()
	top := memqueue.New()
	sub, _ := top.Subscribe(ctx, "s", driver.SubscriptionOptions{})
	body := []byte("abc")
	if err := top.Publish(ctx, body, nil); err != nil {
		t.Fatal(err)
	}
	body[0] = 'X'
	m, err := sub.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Body) != "abc" {
		t.Errorf("received %q; the publisher's later change leaked into the queue", m.Body)
	}
}
