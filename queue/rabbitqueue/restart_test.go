package rabbitqueue

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/internal/testsvc"
	"github.com/sluicehq/sluice/queue/driver"
)

// A broker restart keeps published messages, acks and dead letters; the
// topic and its subscription reconnect by themselves, a publish during the
// outage fails as transient, and the message held unacked when the broker
// stopped comes back with its count raised.
func TestBrokerRestartKeepsMessagesAndAcksAndTheDriverReconnects(t *testing.T) {
	n := testsvc.StartRabbit(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	top, err := Open(ctx, n.URL(), Options{Exchange: "sluice.restart"})
	if err != nil {
		t.Fatal(err)
	}
	defer top.Close()
	s, err := top.Subscribe(ctx, "loader", driver.SubscriptionOptions{AckWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"acked", "held", "waiting", "dead"} {
		if err := top.Publish(ctx, []byte(b), map[string]string{"Body": b}); err != nil {
			t.Fatalf("publish %q: %v", b, err)
		}
	}
	recv := func(want string) *driver.Message {
		t.Helper()
		rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
		defer rcancel()
		m, err := s.Receive(rctx)
		if err != nil {
			t.Fatalf("receive %q: %v", want, err)
		}
		if string(m.Body) != want {
			t.Fatalf("received %q, want %q", m.Body, want)
		}
		return m
	}
	a := recv("acked")
	if err := s.Ack(ctx, a); err != nil {
		t.Fatal(err)
	}
	held := recv("held")
	w := recv("waiting")
	if err := s.Nack(ctx, w, 0); err != nil { // republished: stays first-in-line after "dead"
		t.Fatal(err)
	}
	d := recv("dead")
	if err := s.DeadLetter(ctx, d, "bad row"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Pending(ctx); err != nil || got != 2 {
		t.Fatalf("Pending before the restart = %d, %v; want 2 (held and waiting)", got, err)
	}

	n.Stop()
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	err = top.Publish(pctx, []byte("during outage"), nil)
	pcancel()
	if err == nil {
		t.Fatal("publish with the broker stopped succeeded")
	}
	if !fault.IsTransient(err) {
		t.Errorf("publish with the broker stopped failed with %v, want a transient error", err)
	}
	if err := s.Ack(ctx, held); err == nil || !errors.Is(err, ErrNotHeld) {
		t.Errorf("ack of a message held across the broker stop = %v, want ErrNotHeld (the broker redelivers it)", err)
	}
	n.Start()

	// The same Topic and subscription work again once reconnected.
	got := map[string]int{}
	for range 2 {
		rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
		m, err := s.Receive(rctx)
		rcancel()
		if err != nil {
			t.Fatalf("receive after the broker restart: %v", err)
		}
		got[string(m.Body)] = m.Deliveries
		if string(m.Body) == "held" && m.ID != held.ID {
			t.Errorf("message held changed ID across the restart: %s, was %s", m.ID, held.ID)
		}
		if err := s.Ack(ctx, m); err != nil {
			t.Fatalf("ack after the restart: %v", err)
		}
	}
	if want := map[string]int{"held": 2, "waiting": 2}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the restart received body->Deliveries %v, want %v (acked and dead-lettered messages must not return)", got, want)
	}
	if err := top.Publish(ctx, []byte("after"), nil); err != nil {
		t.Fatalf("publish after the broker restart: %v", err)
	}
	recv("after")
	dls, err := top.DeadLetters(ctx)
	if err != nil {
		t.Fatalf("dead letters after the restart: %v", err)
	}
	if len(dls) != 1 || string(dls[0].Body) != "dead" || dls[0].Reason != "bad row" || dls[0].ID != d.ID {
		t.Errorf("dead letters after the restart = %+v, want message %s %q with reason %q", dls, d.ID, "dead", "bad row")
	}
	if got, err := s.Pending(ctx); err != nil || got != 1 {
		t.Errorf("Pending after the restart = %d, %v; want 1 (the unacked message \"after\")", got, err)
	}
}
