package natsqueue

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestOpenInboxCapturesAForeignSubjectAndKeepsRawBodies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := connectExternal()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	subject := "s3test." + strings.ToLower(rand.Text()) + ".events"
	stream := InboxStreamName(subject)
	t.Cleanup(func() { js.DeleteStream(context.Background(), stream) })

	in, err := OpenInbox(ctx, nc, subject, "posts bridge", &InboxOptions{AckWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	info, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("inbox stream %s not created: %v", stream, err)
	}
	if cfg := info.CachedInfo().Config; cfg.Storage != jetstream.FileStorage || cfg.Subjects[0] != subject {
		t.Fatalf("inbox stream config = %+v", cfg)
	}
	// A foreign publisher: core NATS publish, as versitygw does.
	body := []byte(`{"Records":[{"s3":{"object":{"key":"a b"}}}]}`)
	if err := nc.Publish(subject, body); err != nil {
		t.Fatal(err)
	}
	m, err := in.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Body) != string(body) || m.Deliveries != 1 {
		t.Fatalf("received %q (delivery %d)", m.Body, m.Deliveries)
	}
	// Not acked within the ack wait: delivered again.
	m2, err := in.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m2.ID != m.ID || m2.Deliveries != 2 {
		t.Fatalf("redelivery: id %s (want %s), delivery %d", m2.ID, m.ID, m2.Deliveries)
	}
	if err := in.Ack(ctx, m2); err != nil {
		t.Fatal(err)
	}
	if n, err := in.Pending(ctx); err != nil || n != 0 {
		t.Fatalf("pending after ack = %d, %v", n, err)
	}
	// Dead letters go to the inbox's own dead-letter subject, not back to
	// the consumer.
	if err := nc.Publish(subject, []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	m3, err := in.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.DeadLetter(ctx, m3, "not a notification"); err != nil {
		t.Fatal(err)
	}
	if n, err := in.Pending(ctx); err != nil || n != 0 {
		t.Fatalf("pending after dead letter = %d, %v", n, err)
	}
	raw, err := info.GetLastMsgForSubject(ctx, inboxDLQ(stream, consumerName("posts bridge")))
	if err != nil || string(raw.Data) != "garbage" || raw.Header.Get(HeaderReason) != "not a notification" {
		t.Fatalf("dead letter = %+v, %v", raw, err)
	}
}

func TestOpenInboxReusesAStreamThatAlreadyCapturesTheSubject(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := connectExternal()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	id := strings.ToLower(rand.Text())
	existing := "OPERATOR_" + id
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: existing, Subjects: []string{"s3test." + id + ".>"}, MaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { js.DeleteStream(context.Background(), existing) })
	subject := "s3test." + id + ".lake"

	in, err := OpenInbox(ctx, nc, subject, "bridge", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if _, err := js.Stream(ctx, InboxStreamName(subject)); err == nil {
		t.Fatal("OpenInbox created a second stream over captured subjects")
	}
	s, err := js.Stream(ctx, existing)
	if err != nil {
		t.Fatal(err)
	}
	if cfg := s.CachedInfo().Config; cfg.MaxAge != time.Hour {
		t.Fatalf("the operator's limits were changed: %+v", cfg)
	}
	if _, err := js.Publish(ctx, subject, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "s3test."+id+".other", []byte("other")); err != nil {
		t.Fatal(err)
	}
	m, err := in.Receive(ctx)
	if err != nil || string(m.Body) != "x" {
		t.Fatalf("received %v, %v", m, err)
	}
	if err := in.Ack(ctx, m); err != nil {
		t.Fatal(err)
	}
	if n, err := in.Pending(ctx); err != nil || n != 0 {
		t.Fatalf("the inbox sees other subjects of the stream: pending %d, %v", n, err)
	}
	// Opening again (a restart) resumes the same durable consumer.
	in2, err := OpenInbox(ctx, nc, subject, "bridge", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer in2.Close()
	if n, err := in2.Pending(ctx); err != nil || n != 0 {
		t.Fatalf("reopened inbox pending %d, %v", n, err)
	}
}

func TestOpenInboxRejectsBadSubjects(t *testing.T) {
	nc, err := connectExternal()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, s := range []string{"", "a b", "a..b", "a.>.b", "a.b*", ">", "sluice.inbox.>"} {
		if _, err := OpenInbox(context.Background(), nc, s, "bridge", nil); err == nil {
			t.Errorf("OpenInbox(%q) succeeded", s)
		}
	}
	if _, err := OpenInbox(context.Background(), nc, "a.b", "", nil); err == nil {
		t.Error("OpenInbox with an empty durable succeeded")
	}
}
