package queue_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/queue"
	"github.com/sluicehq/sluice/queue/memqueue"
)

func TestPublishRejectsAnEmptyMessageNamingTheTopic(t *testing.T) {
	top := queue.NewTopic("mem://posts", memqueue.New())
	err := top.Publish(context.Background(), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "mem://posts") || !strings.Contains(err.Error(), "empty message") {
		t.Errorf("Publish(empty) = %v, want an error naming mem://posts and the empty message", err)
	}
}

func TestSubscribeRejectsAnEmptyName(t *testing.T) {
	top := queue.NewTopic("mem://posts", memqueue.New())
	_, err := top.Subscribe(context.Background(), "", nil)
	if err == nil || !strings.Contains(err.Error(), "mem://posts") || !strings.Contains(err.Error(), "empty subscription name") {
		t.Errorf("Subscribe(\"\") = %v, want an error naming the topic and the empty name", err)
	}
}

func TestErrorsAfterCloseNameTheTopicAndWrapErrClosed(t *testing.T) {
	ctx := context.Background()
	top := queue.NewTopic("mem://posts", memqueue.New())
	sub, err := top.Subscribe(ctx, "loader", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Close(); err != nil {
		t.Fatal(err)
	}
	err = top.Publish(ctx, []byte("x"), nil)
	if !errors.Is(err, queue.ErrClosed) || !strings.Contains(err.Error(), "queue mem://posts: publish") {
		t.Errorf("Publish after Close = %v, want queue.ErrClosed wrapped with the topic name", err)
	}
	_, err = sub.Receive(ctx)
	if !errors.Is(err, queue.ErrClosed) || !strings.Contains(err.Error(), `receive on "loader"`) {
		t.Errorf("Receive after Close = %v, want queue.ErrClosed naming subscription loader", err)
	}
}

func TestReceiveReturnsTheContextErrorWhenCancelled(t *testing.T) {
	top := queue.NewTopic("mem://posts", memqueue.New())
	sub, err := top.Subscribe(context.Background(), "loader", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := sub.Receive(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Receive on an empty topic = %v, want context.DeadlineExceeded unwrapped", err)
	}
}

func TestDefaultMaxDeliveriesIsFive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	top := queue.NewTopic("mem://posts", memqueue.New())
	sub, err := top.Subscribe(ctx, "loader", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := top.Publish(ctx, []byte("poison"), nil); err != nil {
		t.Fatal(err)
	}
	for want := 1; want <= queue.DefaultMaxDeliveries; want++ {
		m, err := sub.Receive(ctx)
		if err != nil {
			t.Fatalf("delivery %d: %v", want, err)
		}
		if m.Deliveries != want {
			t.Fatalf("delivery has Deliveries %d, want %d", m.Deliveries, want)
		}
		if err := m.Nack(ctx, 0, "cannot parse"); err != nil {
			t.Fatal(err)
		}
	}
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	if m, err := sub.Receive(short); err == nil {
		t.Fatalf("delivery %d reached the consumer; the default MaxDeliveries is %d", m.Deliveries, queue.DefaultMaxDeliveries)
	}
	dls, err := top.DeadLetters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 1 || !strings.Contains(dls[0].Reason, "delivered 5 times") || !strings.Contains(dls[0].Reason, "cannot parse") {
		t.Errorf("dead letters = %+v, want one whose reason says delivered 5 times and quotes the last error", dls)
	}
	if n, err := sub.Pending(ctx); err != nil || n != 0 {
		t.Errorf("Pending = %d, %v after the dead letter, want 0", n, err)
	}
}
