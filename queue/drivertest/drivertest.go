// Package drivertest is the conformance suite every queue backend runs: it
// checks the delivery contract written on package queue (at-least-once
// delivery, ack after commit, redelivery with a delivery count, delayed nack,
// dead letters, durability across restarts, competing and independent
// subscriptions, pending counts). A backend's own test supplies a Harness and
// calls RunConformanceTests; passing it is what lets code tested on memqueue
// trust the durable backends, and the reverse.
//
// The suite uses ack waits of about a second and real time, so it takes a
// few seconds; its subtests run in parallel, each with its own harness.
//
// No check depends on the machine being fast. Every wait for something that
// must happen is bounded by a generous patience, not a guess. Counts are
// asserted only after the operations that change them returned, so
// backends must apply Ack, Nack, InProgress and DeadLetter before returning
// and count a message in Pending once Publish returned. Checks that a
// redelivery did not come too early measure from a point before the
// operation that started the wait, so a slow machine can only make them
// pass; where a stall longer than an ack wait makes a redelivery correct
// (a message left unacked while others are handled, long work kept in
// progress) the test accepts it when the measured time allows it.
package drivertest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/queue"
	"github.com/sluicehq/sluice/queue/driver"
)

// Harness opens topics of one backend for one subtest.
type Harness interface {
	// MakeTopic opens a new, empty topic, isolated from every other topic.
	MakeTopic(ctx context.Context) (driver.Topic, error)
	// Restart closes t and opens the same topic again as a restarted
	// process would: published messages, subscriptions, acks and dead
	// letters must survive. Subscriptions opened on t stop working. The
	// suite calls it with only t open.
	Restart(ctx context.Context, t driver.Topic) (driver.Topic, error)
	// Close releases the harness and everything it opened.
	Close()
}

// SubscriptionsStartEmpty is a capability a Harness may implement. A
// backend that keeps one queue per subscription, filled by Publish (SQS,
// RabbitMQ), gives a subscription created for the first time only the
// messages published after that, where a stream (NATS, memqueue) gives it
// every message of the topic. Such a harness returns true and the suite
// checks that a new subscription gets no earlier message and every later
// one, in order, instead of all of them.
type SubscriptionsStartEmpty interface {
	SubscriptionsStartEmpty() bool
}

// HarnessMaker makes a fresh harness for one subtest. Failing to reach the
// backend must be returned as an error (the suite fails with it), never
// skipped.
type HarnessMaker func(ctx context.Context, t *testing.T) (Harness, error)

// Timings used by the suite. The ack wait is short so the suite is quick; the
// slack absorbs scheduling and network delays in both directions.
const (
	ackWait = 800 * time.Millisecond
	slack   = 150 * time.Millisecond
	// patience bounds every wait for a message that must arrive.
	patience = 10 * time.Second
)

// RunConformanceTests runs the suite. Subtest names are stable, so
// `go test -run 'Conformance/NackWithDelay'` picks one.
func RunConformanceTests(t *testing.T, newHarness HarnessMaker) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(*testing.T, *fixture)
	}{
		{"AtLeastOnceDelivery", testAtLeastOnceDelivery},
		{"AckAfterCommit", testAckAfterCommit},
		{"RedeliveryWithDeliveryCount", testRedeliveryWithDeliveryCount},
		{"InProgressExtendsAckWait", testInProgressExtendsAckWait},
		{"NackWithDelay", testNackWithDelay},
		{"DeadLetterAfterMaxDeliveries", testDeadLetterAfterMaxDeliveries},
		{"ExplicitDeadLetter", testExplicitDeadLetter},
		{"DurableAcrossRestart", testDurableAcrossRestart},
		{"CompetingConsumers", testCompetingConsumers},
		{"IndependentSubscriptions", testIndependentSubscriptions},
		{"Pending", testPending},
		{"OperationsWorkWithoutADeadline", testOperationsWorkWithoutADeadline},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			h, err := newHarness(ctx, t)
			if err != nil {
				t.Fatalf("make harness: %v", err)
			}
			defer h.Close()
			top, err := h.MakeTopic(ctx)
			if err != nil {
				t.Fatalf("make topic: %v", err)
			}
			f := &fixture{t: t, ctx: ctx, h: h, top: top}
			defer func() { _ = f.top.Close() }()
			tc.fn(t, f)
		})
	}
}

// fixture holds one subtest's harness and current topic.
type fixture struct {
	t   *testing.T
	ctx context.Context
	h   Harness
	top driver.Topic
}

// startsEmpty reports the harness's SubscriptionsStartEmpty capability.
func (f *fixture) startsEmpty() bool {
	c, ok := f.h.(SubscriptionsStartEmpty)
	return ok && c.SubscriptionsStartEmpty()
}

func (f *fixture) publish(body string, header map[string]string) {
	f.t.Helper()
	if err := f.top.Publish(f.ctx, []byte(body), header); err != nil {
		f.t.Fatalf("publish %q: %v", body, err)
	}
}

func (f *fixture) subscribe(name string, wait time.Duration) driver.Subscription {
	f.t.Helper()
	s, err := f.top.Subscribe(f.ctx, name, driver.SubscriptionOptions{AckWait: wait})
	if err != nil {
		f.t.Fatalf("subscribe %q: %v", name, err)
	}
	f.t.Cleanup(func() { _ = s.Close() })
	return s
}

func (f *fixture) restart() {
	f.t.Helper()
	top, err := f.h.Restart(f.ctx, f.top)
	if err != nil {
		f.t.Fatalf("restart topic: %v", err)
	}
	f.top = top
}

// receive waits up to patience for a message and fails the test without one.
func (f *fixture) receive(s driver.Subscription) *driver.Message {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, patience)
	defer cancel()
	m, err := s.Receive(ctx)
	if err != nil {
		f.t.Fatalf("receive: no message within %v: %v", patience, err)
	}
	if m == nil {
		f.t.Fatal("receive returned neither a message nor an error")
	}
	return m
}

// nothing asserts no message arrives within d and that Receive then reports
// the context's deadline.
func (f *fixture) nothing(s driver.Subscription, d time.Duration, why string) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, d)
	defer cancel()
	m, err := s.Receive(ctx)
	if err == nil {
		f.t.Fatalf("%s: got message %s %q (delivery %d), want none within %v", why, m.ID, m.Body, m.Deliveries, d)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		f.t.Fatalf("%s: Receive after its context expired returned %v, want context.DeadlineExceeded", why, err)
	}
}

func (f *fixture) ack(s driver.Subscription, m *driver.Message) {
	f.t.Helper()
	if err := s.Ack(f.ctx, m); err != nil {
		f.t.Fatalf("ack message %s %q: %v", m.ID, m.Body, err)
	}
}

func (f *fixture) pending(s driver.Subscription, want int, when string) {
	f.t.Helper()
	got, err := s.Pending(f.ctx)
	if err != nil {
		f.t.Fatalf("pending %s: %v", when, err)
	}
	if got != want {
		f.t.Fatalf("Pending %s = %d, want %d", when, got, want)
	}
}

// Every published message is received with its body and headers; a message
// that is not acked comes back, and nothing comes back once all are acked.
//
// msg-3 is left unacked while the others are received. Should the machine
// stall for longer than the ack wait meanwhile, msg-3 comes back among them;
// that is correct, so a second delivery fails the test only when it comes
// before the ack wait since the first could have run out.
func testAtLeastOnceDelivery(t *testing.T, f *fixture) {
	const n = 10
	s := f.subscribe("loader", ackWait)
	for i := range n {
		f.publish(fmt.Sprintf("msg-%d", i), map[string]string{"Seq": fmt.Sprint(i), "Content-Type": "application/json"})
	}
	seen := map[string]string{}     // body -> ID
	first := map[string]time.Time{} // body -> when its first delivery was received
	ids := map[string]bool{}
	var unacked, again *driver.Message
	for len(seen) < n {
		m := f.receive(s)
		body := string(m.Body)
		if id, dup := seen[body]; dup {
			// Every other message was acked before the next Receive.
			if body != "msg-3" {
				t.Fatalf("acked message %q delivered again (delivery %d)", body, m.Deliveries)
			}
			if since := time.Since(first[body]); since < ackWait-slack {
				t.Fatalf("message %q delivered again %v after its first delivery, before the ack wait of %v ran out", body, since, ackWait)
			}
			if m.ID != id {
				t.Fatalf("redelivery of %q has ID %q, was %q", body, m.ID, id)
			}
			again = m
			continue
		}
		first[body] = time.Now()
		if ids[m.ID] {
			t.Fatalf("two different messages share ID %q", m.ID)
		}
		if m.ID == "" {
			t.Fatalf("message %q has an empty ID", body)
		}
		seen[body], ids[m.ID] = m.ID, true
		if m.Deliveries != 1 {
			t.Errorf("first delivery of %q has Deliveries %d, want 1", body, m.Deliveries)
		}
		want := map[string]string{"Seq": strings.TrimPrefix(body, "msg-"), "Content-Type": "application/json"}
		if !maps.Equal(m.Header, want) {
			t.Errorf("message %q header = %v, want %v", body, m.Header, want)
		}
		if body == "msg-3" {
			unacked = m
			continue
		}
		f.ack(s, m)
	}
	if unacked == nil {
		t.Fatal("msg-3 was never received")
	}
	if again == nil {
		again = f.receive(s)
	}
	if string(again.Body) != "msg-3" || again.ID != unacked.ID || again.Deliveries != 2 {
		t.Fatalf("after the ack wait got %s %q delivery %d, want the unacked message %s %q delivery 2", again.ID, again.Body, again.Deliveries, unacked.ID, unacked.Body)
	}
	f.ack(s, again)
	f.nothing(s, ackWait+slack, "every message acked")
}

// An acked message is never delivered again: not after its ack wait, not
// after a restart.
func testAckAfterCommit(t *testing.T, f *fixture) {
	s := f.subscribe("loader", ackWait)
	f.publish("committed", nil)
	f.publish("crashed", nil)
	a := f.receive(s)
	if string(a.Body) != "committed" {
		t.Fatalf("first message = %q, want %q (publish order)", a.Body, "committed")
	}
	f.ack(s, a)
	b := f.receive(s)
	if string(b.Body) != "crashed" {
		t.Fatalf("second message = %q, want %q", b.Body, "crashed")
	}
	// b is left unacked, as by a consumer that died before committing.
	f.restart()
	s = f.subscribe("loader", ackWait)
	m := f.receive(s)
	if string(m.Body) != "crashed" || m.ID != b.ID || m.Deliveries != 2 {
		t.Fatalf("after restart got %s %q delivery %d, want the unacked %s %q delivery 2", m.ID, m.Body, m.Deliveries, b.ID, b.Body)
	}
	f.ack(s, m)
	f.nothing(s, ackWait+slack, "both messages acked before and after the restart")
	f.restart()
	s = f.subscribe("loader", ackWait)
	f.nothing(s, ackWait+slack, "acks survive a second restart")
}

// A message not acked within the ack wait comes again, with the same ID,
// body and headers and Deliveries 2, and not before the ack wait.
func testRedeliveryWithDeliveryCount(t *testing.T, f *fixture) {
	s := f.subscribe("loader", ackWait)
	f.publish("slow", map[string]string{"K": "v"})
	// The backend delivers after Receive is called, and redelivers an ack
	// wait after that at the earliest; measured from here, a slow machine
	// only makes the wait look longer.
	requested := time.Now()
	first := f.receive(s)
	if first.Deliveries != 1 {
		t.Fatalf("first delivery has Deliveries %d, want 1", first.Deliveries)
	}
	second := f.receive(s)
	if waited := time.Since(requested); waited < ackWait-slack {
		t.Errorf("redelivered after %v, before the ack wait of %v ran out", waited, ackWait)
	}
	if second.ID != first.ID || string(second.Body) != "slow" || second.Header["K"] != "v" {
		t.Errorf("redelivery = %s %q %v, want %s %q with header K=v", second.ID, second.Body, second.Header, first.ID, "slow")
	}
	if second.Deliveries != 2 {
		t.Errorf("redelivery has Deliveries %d, want 2", second.Deliveries)
	}
	third := f.receive(s)
	if third.ID != first.ID || third.Deliveries != 3 {
		t.Errorf("second redelivery = %s delivery %d, want %s delivery 3", third.ID, third.Deliveries, first.ID)
	}
	f.ack(s, third)
	f.nothing(s, ackWait+slack, "the message was acked at its third delivery")
}

// InProgress restarts the ack wait, so long work does not cause a redelivery.
//
// A redelivery is wrong if it comes less than an ack wait after the
// InProgress before last was sent: InProgress returns once the backend
// applied it, and a backend may hand a message that arrived after one
// Receive gave up to the next Receive, after one more InProgress. One that
// comes later means the machine stalled for longer than the ack wait; it
// is correct, and the test goes on with the new delivery. An InProgress
// that does nothing still fails: the message then comes back one ack wait
// after its delivery, two InProgress calls (half an ack wait) after one.
func testInProgressExtendsAckWait(t *testing.T, f *fixture) {
	s := f.subscribe("loader", ackWait)
	f.publish("long work", nil)
	m := f.receive(s)
	deadline := time.Now().Add(2 * ackWait)
	prev := time.Now() // the InProgress before last, or the delivery
	last := prev
	for time.Now().Before(deadline) {
		prev, last = last, time.Now()
		if err := s.InProgress(f.ctx, m); err != nil {
			t.Fatalf("InProgress on message %s: %v", m.ID, err)
		}
		ctx, cancel := context.WithTimeout(f.ctx, ackWait/4)
		got, err := s.Receive(ctx)
		cancel()
		if err == nil {
			if since := time.Since(prev); since < ackWait-slack {
				t.Fatalf("message %s delivered again (delivery %d) %v after the InProgress before last, before the ack wait of %v ran out", got.ID, got.Deliveries, since, ackWait)
			}
			if got.ID != m.ID {
				t.Fatalf("got message %s %q, want only the message %s in progress", got.ID, got.Body, m.ID)
			}
			m = got
			continue
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Receive while message %s is in progress: %v, want context.DeadlineExceeded", m.ID, err)
		}
	}
	f.ack(s, m)
	f.nothing(s, ackWait+slack, "the message was acked after long work")
}

// Nack(delay) redelivers after the delay and not before; Nack(0) redelivers
// well before the ack wait.
func testNackWithDelay(t *testing.T, f *fixture) {
	const longWait = 10 * time.Second // so only the nack can cause redelivery
	const delay = time.Second
	s := f.subscribe("loader", longWait)
	f.publish("retry me", nil)
	// A delivery's ack wait starts after the Receive that brought it was
	// called: a redelivery sooner than longWait after that call is the
	// nack's, however slow the machine.
	requested := time.Now()
	m := f.receive(s)
	start := time.Now()
	if err := s.Nack(f.ctx, m, delay); err != nil {
		t.Fatalf("nack message %s: %v", m.ID, err)
	}
	f.nothing(s, delay-2*slack, "nacked with a delay")
	requested2 := time.Now()
	again := f.receive(s)
	if waited := time.Since(start); waited < delay-slack {
		t.Errorf("redelivered %v after Nack, want at least the delay %v", waited, delay)
	} else if since := time.Since(requested); since >= longWait {
		t.Errorf("redelivered %v after Nack(%v), %v after the delivery: the delay was ignored and the ack wait ran out", waited, delay, since)
	}
	if again.ID != m.ID || again.Deliveries != 2 {
		t.Errorf("after Nack got %s delivery %d, want %s delivery 2", again.ID, again.Deliveries, m.ID)
	}
	start = time.Now()
	if err := s.Nack(f.ctx, again, 0); err != nil {
		t.Fatalf("nack message %s without delay: %v", m.ID, err)
	}
	third := f.receive(s)
	if since := time.Since(requested2); since >= longWait {
		t.Errorf("Nack(0) redelivered %v after Nack, %v after the delivery: the nack was ignored and the ack wait ran out", time.Since(start), since)
	}
	if third.ID != m.ID || third.Deliveries != 3 {
		t.Errorf("after Nack(0) got %s delivery %d, want %s delivery 3", third.ID, third.Deliveries, m.ID)
	}
	f.ack(s, third)
}

// Through the user-facing queue types: with MaxDeliveries 2, the third
// delivery is dead-lettered by Receive, listed with a reason naming the
// count, and never delivered again.
func testDeadLetterAfterMaxDeliveries(t *testing.T, f *fixture) {
	top := queue.NewTopic("conformance", f.top)
	sub, err := top.Subscribe(f.ctx, "loader", &queue.SubscriptionOptions{AckWait: ackWait, MaxDeliveries: 2})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer sub.Close()
	if err := top.Publish(f.ctx, []byte("poison"), map[string]string{"K": "v"}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	recv := func(within time.Duration) (*queue.Message, error) {
		ctx, cancel := context.WithTimeout(f.ctx, within)
		defer cancel()
		return sub.Receive(ctx)
	}
	var poisonID string
	for want := 1; want <= 2; want++ {
		m, err := recv(patience)
		if err != nil {
			t.Fatalf("receive delivery %d of the poison message: %v", want, err)
		}
		if m.Deliveries != want {
			t.Fatalf("poison message delivery has Deliveries %d, want %d", m.Deliveries, want)
		}
		poisonID = m.ID
		if want == 1 {
			// The cause is quoted in the dead-letter reason.
			if err := m.Nack(f.ctx, 0, "row 7: bad date"); err != nil {
				t.Fatalf("nack: %v", err)
			}
		} // the second delivery is left unacked: the consumer failed
	}
	// The third delivery comes an ack wait later and Receive dead-letters
	// it instead of returning it. Receive runs until the dead letter is
	// listed, for at most patience, so a slow machine cannot fail the test.
	// (Each Receive gets three ack waits: queue.Subscription.Receive
	// dead-letters with the caller's ctx, so one ending in the middle of it
	// would fail the dead letter.)
	var dls []driver.DeadLetter
	for deadline := time.Now().Add(patience); ; {
		m, err := recv(3 * ackWait)
		if err == nil {
			t.Fatalf("third delivery of message %s %q (Deliveries %d) reached the consumer; MaxDeliveries is 2", m.ID, m.Body, m.Deliveries)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("receive while the poison message is dead-lettered: %v", err)
		}
		if dls, err = top.DeadLetters(f.ctx); err != nil {
			t.Fatalf("dead letters: %v", err)
		}
		if len(dls) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the poison message was not dead-lettered within %v", patience)
		}
	}
	if len(dls) != 1 {
		t.Fatalf("DeadLetters lists %d messages, want 1: %+v", len(dls), dls)
	}
	dl := dls[0]
	if dl.ID != poisonID || string(dl.Body) != "poison" || dl.Header["K"] != "v" || dl.Subscription != "loader" {
		t.Errorf("dead letter = %+v, want message %s %q with header K=v of subscription loader", dl, poisonID, "poison")
	}
	if !strings.Contains(dl.Reason, "delivered 2 times") || !strings.Contains(dl.Reason, "row 7: bad date") {
		t.Errorf("dead-letter reason %q should name the 2 failed deliveries and the last error", dl.Reason)
	}
	if dl.Deliveries != 3 {
		t.Errorf("dead letter records Deliveries %d, want 3 (dead-lettered at the third)", dl.Deliveries)
	}
	if dl.At.IsZero() {
		t.Error("dead letter has no time")
	}
	if m, err := recv(ackWait + slack); err == nil {
		t.Fatalf("dead-lettered message delivered again: %s %q", m.ID, m.Body)
	}
}

// DeadLetter(reason) lists the message with exactly that reason, keeps it
// across a restart, and never delivers it again; other messages flow on.
func testExplicitDeadLetter(t *testing.T, f *fixture) {
	s := f.subscribe("loader", ackWait)
	f.publish("bad", map[string]string{"Trace": "t1"})
	f.publish("good", nil)
	const reason = "object raw/x.json: line 3: want an array; fix the file and upload it again"
	before := time.Now()
	m := f.receive(s)
	if string(m.Body) != "bad" {
		t.Fatalf("first message = %q, want %q", m.Body, "bad")
	}
	if err := s.DeadLetter(f.ctx, m, reason); err != nil {
		t.Fatalf("dead-letter message %s: %v", m.ID, err)
	}
	g := f.receive(s)
	if string(g.Body) != "good" {
		t.Fatalf("after the dead letter got %q, want %q", g.Body, "good")
	}
	f.ack(s, g)
	f.nothing(s, ackWait+slack, "the dead-lettered message is gone")
	f.restart()
	dls, err := f.top.DeadLetters(f.ctx)
	if err != nil {
		t.Fatalf("dead letters after restart: %v", err)
	}
	if len(dls) != 1 {
		t.Fatalf("DeadLetters lists %d messages, want 1: %+v", len(dls), dls)
	}
	dl := dls[0]
	if dl.Reason != reason {
		t.Errorf("dead-letter reason = %q, want %q", dl.Reason, reason)
	}
	if dl.ID != m.ID || string(dl.Body) != "bad" || dl.Subscription != "loader" || dl.Deliveries != 1 {
		t.Errorf("dead letter = %+v, want message %s %q of subscription loader at delivery 1", dl, m.ID, "bad")
	}
	if !maps.Equal(dl.Header, map[string]string{"Trace": "t1"}) {
		t.Errorf("dead letter header = %v, want the published Trace=t1 only", dl.Header)
	}
	if dl.At.Before(before.Add(-time.Second)) || dl.At.After(time.Now().Add(time.Second)) {
		t.Errorf("dead letter time %v is not around now", dl.At)
	}
	s = f.subscribe("loader", ackWait)
	f.nothing(s, ackWait+slack, "dead-lettered before the restart")
}

// Messages published but never consumed, and delivered but not acked,
// survive a restart; so do subscriptions (a new one still starts at the
// first message, or with SubscriptionsStartEmpty at the next one).
func testDurableAcrossRestart(t *testing.T, f *fixture) {
	s := f.subscribe("loader", ackWait)
	f.publish("a", nil)
	f.publish("b", nil)
	f.publish("c", nil)
	a := f.receive(s)
	if string(a.Body) != "a" {
		t.Fatalf("first message = %q, want %q", a.Body, "a")
	}
	f.restart()
	f.publish("d", nil)
	s = f.subscribe("loader", ackWait)
	got := map[string]int{}
	for range 4 {
		m := f.receive(s)
		got[string(m.Body)] = m.Deliveries
		if string(m.Body) == "a" && m.ID != a.ID {
			t.Errorf("message a changed ID across the restart: %s, was %s", m.ID, a.ID)
		}
		f.ack(s, m)
	}
	want := map[string]int{"a": 2, "b": 1, "c": 1, "d": 1}
	if !maps.Equal(got, want) {
		t.Errorf("after restart received body->Deliveries %v, want %v", got, want)
	}
	fresh := f.subscribe("audit", ackWait)
	if f.startsEmpty() {
		// The backend keeps no history for new subscriptions: audit gets
		// what is published from now on, and loader gets it too.
		f.nothing(fresh, ackWait+slack, "a subscription opened after a, b, c and d were published (SubscriptionsStartEmpty)")
		f.publish("e", nil)
		for _, sc := range []struct {
			name string
			s    driver.Subscription
		}{{"audit", fresh}, {"loader", s}} {
			m := f.receive(sc.s)
			if string(m.Body) != "e" || m.Deliveries != 1 {
				t.Errorf("subscription %s after the restart received %q delivery %d, want %q delivery 1", sc.name, m.Body, m.Deliveries, "e")
			}
			f.ack(sc.s, m)
		}
		return
	}
	var bodies []string
	for range 4 {
		m := f.receive(fresh)
		bodies = append(bodies, string(m.Body))
		f.ack(fresh, m)
	}
	if strings.Join(bodies, ",") != "a,b,c,d" {
		t.Errorf("a subscription opened after the restart received %v, want [a b c d] in order", bodies)
	}
}

// Two Subscription values with the same name share its messages: each
// message goes to one of them, every message is processed, both get some.
func testCompetingConsumers(t *testing.T, f *fixture) {
	const n = 20
	const wait = 10 * time.Second // no redelivery during the test
	s1 := f.subscribe("workers", wait)
	s2 := f.subscribe("workers", wait)
	for i := range n {
		f.publish(fmt.Sprintf("job-%d", i), nil)
	}
	// One message held in flight by s1 forces s2 to take another.
	held := f.receive(s1)
	other := f.receive(s2)
	if other.ID == held.ID {
		t.Fatalf("message %s was delivered to both consumers while in flight", held.ID)
	}
	var (
		mu       sync.Mutex
		byWorker = map[string]map[string]int{"s1": {string(held.Body): 1}, "s2": {string(other.Body): 1}}
		total    = 2
		errs     []error
	)
	f.ack(s1, held)
	f.ack(s2, other)
	ctx, cancel := context.WithTimeout(f.ctx, patience)
	defer cancel()
	var wg sync.WaitGroup
	for name, s := range map[string]driver.Subscription{"s1": s1, "s2": s2} {
		wg.Go(func() {
			for {
				m, err := s.Receive(ctx)
				if err != nil {
					if ctx.Err() == nil {
						mu.Lock()
						errs = append(errs, fmt.Errorf("%s: receive: %w", name, err))
						mu.Unlock()
						cancel()
					}
					return
				}
				if err := s.Ack(ctx, m); err != nil && ctx.Err() == nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: ack %s: %w", name, m.ID, err))
					mu.Unlock()
				}
				mu.Lock()
				byWorker[name][string(m.Body)]++
				total++
				if total >= n {
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		t.Error(err)
	}
	for i := range n {
		body := fmt.Sprintf("job-%d", i)
		c := byWorker["s1"][body] + byWorker["s2"][body]
		if c != 1 {
			t.Errorf("%s processed %d times, want once", body, c)
		}
	}
	if len(byWorker["s1"]) == 0 || len(byWorker["s2"]) == 0 {
		t.Errorf("work was not shared: s1 processed %d, s2 %d", len(byWorker["s1"]), len(byWorker["s2"]))
	}
}

// Two subscription names each receive every message, in publish order, even
// when one is opened after the messages were published (with
// SubscriptionsStartEmpty: every message published after it was opened,
// and none before).
func testIndependentSubscriptions(t *testing.T, f *fixture) {
	const n = 5
	early := f.subscribe("warehouse", ackWait)
	for i := range n {
		f.publish(fmt.Sprintf("ev-%d", i), nil)
	}
	late := f.subscribe("audit", ackWait)
	lateFrom := 0 // the first message audit gets
	if f.startsEmpty() {
		// audit gets only what is published after it was created.
		f.nothing(late, ackWait+slack, "a subscription opened after ev-0..ev-4 were published (SubscriptionsStartEmpty)")
		for i := range n {
			f.publish(fmt.Sprintf("ev-%d", n+i), nil)
		}
		lateFrom = n
	}
	for _, sc := range []struct {
		name string
		s    driver.Subscription
		from int
	}{{"warehouse", early, 0}, {"audit", late, lateFrom}} {
		for i := sc.from; i < lateFrom+n; i++ {
			m := f.receive(sc.s)
			if want := fmt.Sprintf("ev-%d", i); string(m.Body) != want || m.Deliveries != 1 {
				t.Errorf("subscription %s message %d = %q delivery %d, want %q delivery 1", sc.name, i, m.Body, m.Deliveries, want)
			}
			f.ack(sc.s, m)
		}
	}
	f.nothing(early, slack, "warehouse acked everything")
	f.nothing(late, slack, "audit acked everything")
}

// Pending counts messages not acked or dead-lettered, in flight or not, per
// subscription, and falls to 0 once all are acked.
func testPending(t *testing.T, f *fixture) {
	s := f.subscribe("loader", 10*time.Second)
	other := f.subscribe("other", 10*time.Second)
	f.pending(s, 0, "of an empty topic")
	for i := range 4 {
		f.publish(fmt.Sprintf("p-%d", i), nil)
	}
	f.pending(s, 4, "after 4 publishes")
	m1 := f.receive(s)
	f.pending(s, 4, "with 1 message in flight")
	f.ack(s, m1)
	f.pending(s, 3, "after 1 ack")
	m2 := f.receive(s)
	if err := s.Nack(f.ctx, m2, 0); err != nil {
		t.Fatalf("nack: %v", err)
	}
	f.pending(s, 3, "after a nack")
	m3 := f.receive(s)
	if err := s.DeadLetter(f.ctx, m3, "test"); err != nil {
		t.Fatalf("dead-letter: %v", err)
	}
	f.pending(s, 2, "after a dead letter")
	for range 2 {
		f.ack(s, f.receive(s))
	}
	f.pending(s, 0, "after every message was acked or dead-lettered")
	f.pending(other, 4, "of a subscription that received nothing")
}

// Every operation works with a context that has no deadline, as a CLI's
// signal-cancelled context has none: a backend bounds its own round trips
// and never asks the caller for a deadline. Receive gets a context that is
// only cancelled, by a timer, as a safety net.
func testOperationsWorkWithoutADeadline(t *testing.T, f *fixture) {
	// The ack wait is longer than patience, so only the nack can bring the
	// message back within the test. Errors of InProgress, Nack and
	// DeadLetter do not stop the test, so one run reports each of them.
	const longWait = 2 * patience
	bg := context.Background()
	receive := func(s driver.Subscription, what string) *driver.Message {
		t.Helper()
		ctx, cancel := context.WithCancel(bg)
		defer cancel()
		if _, ok := ctx.Deadline(); ok {
			t.Fatal("the receive context has a deadline; this test needs one without")
		}
		timer := time.AfterFunc(patience, cancel) // safety net, not a deadline
		defer timer.Stop()
		m, err := s.Receive(ctx)
		if err != nil {
			t.Fatalf("receive %s with a context without deadline: %v", what, err)
		}
		if m == nil {
			t.Fatalf("receive %s returned neither a message nor an error", what)
		}
		return m
	}
	pending := func(s driver.Subscription, want int, when string) {
		t.Helper()
		got, err := s.Pending(bg)
		if err != nil {
			t.Fatalf("Pending %s with a context without deadline: %v", when, err)
		}
		if got != want {
			t.Fatalf("Pending %s = %d, want %d", when, got, want)
		}
	}

	s, err := f.top.Subscribe(bg, "loader", driver.SubscriptionOptions{AckWait: longWait})
	if err != nil {
		t.Fatalf("subscribe with a context without deadline: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	pending(s, 0, "of an empty topic")
	if err := f.top.Publish(bg, []byte("retry me"), map[string]string{"K": "v"}); err != nil {
		t.Fatalf("publish with a context without deadline: %v", err)
	}
	pending(s, 1, "after a publish")

	m := receive(s, "the published message")
	if string(m.Body) != "retry me" || m.Deliveries != 1 {
		t.Fatalf("received %s %q delivery %d, want %q delivery 1", m.ID, m.Body, m.Deliveries, "retry me")
	}
	if err := s.InProgress(bg, m); err != nil {
		t.Errorf("InProgress on message %s with a context without deadline: %v", m.ID, err)
	}
	if err := s.Nack(bg, m, 0); err != nil {
		t.Errorf("nack message %s with a context without deadline: %v", m.ID, err)
	}
	again := receive(s, "the nacked message")
	if again.ID != m.ID || again.Deliveries != 2 {
		t.Fatalf("after Nack got %s %q delivery %d, want %s delivery 2", again.ID, again.Body, again.Deliveries, m.ID)
	}
	if err := s.Ack(bg, again); err != nil {
		t.Fatalf("ack message %s with a context without deadline: %v", again.ID, err)
	}
	pending(s, 0, "after the ack")

	if err := f.top.Publish(bg, []byte("poison"), nil); err != nil {
		t.Fatalf("publish with a context without deadline: %v", err)
	}
	p := receive(s, "the message to dead-letter")
	if string(p.Body) != "poison" {
		t.Fatalf("received %s %q, want %q", p.ID, p.Body, "poison")
	}
	const reason = "dead-lettered with a context without deadline"
	if err := s.DeadLetter(bg, p, reason); err != nil {
		t.Errorf("dead-letter message %s with a context without deadline: %v", p.ID, err)
	}
	pending(s, 0, "after the dead letter")
	dls, err := f.top.DeadLetters(bg)
	if err != nil {
		t.Fatalf("dead letters with a context without deadline: %v", err)
	}
	if len(dls) != 1 {
		t.Fatalf("DeadLetters lists %d messages, want 1: %+v", len(dls), dls)
	}
	if dl := dls[0]; dl.ID != p.ID || string(dl.Body) != "poison" || dl.Reason != reason || dl.Subscription != "loader" {
		t.Errorf("dead letter = %+v, want message %s %q of subscription loader with reason %q", dl, p.ID, "poison", reason)
	}
}
