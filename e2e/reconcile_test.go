package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/queue/natsqueue"
	"github.com/sluicehq/sluice/store/storetest"
)

// TestObjectsWithoutANotificationAreLoadedAtTheNextStartOnARealS3Server
// runs the binary against versitygw with no bucket notifications at all:
// objects uploaded before sluice ever ran, and one uploaded while it was
// not running, are found by the reconcile that `run` does at start.
func TestObjectsWithoutANotificationAreLoadedAtTheNextStartOnARealS3Server(t *testing.T) {
	v := storetest.StartVersitygw(t) // no --event-* flags: no notifications
	storeURL := v.Bucket(t, "lake")
	dir := t.TempDir()
	specFile := filepath.Join(dir, "pipeline.yaml")
	spec := fmt.Sprintf(`name: reconcile
store: %q
loads:
  items:
    on: {prefix: raw/items/, suffix: .json}
    table: items
    write: merge
    primary_key: [id]
    columns: {id: bigint, name: text}
`, storeURL)
	if err := os.WriteFile(specFile, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	put := func(key, body string) {
		t.Helper()
		if _, err := v.Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("lake"), Key: aws.String(key),
			Body: bytes.NewReader([]byte(body))}); err != nil {
			t.Fatal(err)
		}
	}
	put("raw/items/1.json", `[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]`)
	put("raw/items/2.json", `{"id": 3, "name": "c"}`)
	put("raw/items/notes.txt", "not a load's object")
	dd := "--data-dir=" + filepath.Join(dir, "data")
	count := func() string {
		t.Helper()
		return strings.TrimSpace(mustRun(t, v.Env(), "sql", dd, "--format=csv", "--no-header", "select count(*) from items").stdout)
	}

	first := mustRun(t, v.Env(), "run", "-f", specFile, "--once", "--max-wait=1m", dd)
	if got := count(); got != "3" {
		t.Fatalf("rows after the first run --once = %s, want 3 (from the 2 objects uploaded before sluice ran)\n%s\n%s", got, first.stdout, tail(first.stderr, 3000))
	}
	if !strings.Contains(first.stdout, "loaded 2 object(s), 3 row(s)") {
		t.Fatalf("first run summary: %s", first.stdout)
	}

	// An upload while sluice is not running; no notification exists.
	put("raw/items/3.json", `{"id": 4, "name": "d"}`)
	second := mustRun(t, v.Env(), "run", "-f", specFile, "--once", "--max-wait=1m", dd)
	if got := count(); got != "4" {
		t.Fatalf("rows after the second run --once = %s, want 4\n%s\n%s", got, second.stdout, tail(second.stderr, 3000))
	}
	if !strings.Contains(second.stdout, "1 event(s) published in all") || !strings.Contains(second.stdout, "loaded 1 object(s), 1 row(s)") {
		t.Fatalf("second run summary (want exactly the new object re-driven): %s", second.stdout)
	}

	// Nothing is left: the reconcile command emits nothing.
	rec := mustRun(t, v.Env(), "reconcile", "-v", dd)
	if !strings.Contains(rec.stdout, "reconcile: emitted 0 event(s)") || !strings.Contains(rec.stdout, "load items: 3 object version(s) checked, 3 loaded") {
		t.Fatalf("reconcile after both runs:\n%s", rec.stdout)
	}
}

// Issue 7's reconcile case on a server that sends notifications: objects
// uploaded to versitygw before sluice ever ran (their notifications went to
// no one), and an upload whose notification was dropped, are loaded at the
// next start; after draining, a reconcile emits nothing; and after one
// ledger row is deleted, the next reconcile emits exactly one event, which
// loads that object again.
func TestReconcileLoadsWhatNotificationsMissedAndOnlyThat(t *testing.T) {
	ctx := context.Background()
	nc, err := nats.Connect(natsURL())
	if err != nil {
		t.Fatalf("NATS at %s is not reachable (run ./scripts/test.sh, which starts it): %v", natsURL(), err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	name := fmt.Sprintf("recon%d", rand.IntN(1e9))
	subject := "lake." + name + ".notifications"
	t.Cleanup(func() {
		js.DeleteStream(context.Background(), "SLUICE_"+strings.ToUpper(name))
		js.DeleteStream(context.Background(), natsqueue.InboxStreamName(subject))
	})
	v := storetest.StartVersitygw(t, "--event-nats-url", natsURL(), "--event-nats-topic", subject)
	whURL, schema, conn := pgSchema(t)
	spec := writeFile(t, fmt.Sprintf(`name: %s
store: %q
queue: %q
warehouse: %q
notifications: {url: %q, key_encoding: raw}
loads:
  items:
    on: {prefix: raw/items/, suffix: .json}
    table: items
    write: merge
    primary_key: [id]
    columns: {id: bigint, name: text}
`, name, v.Bucket(t, "lake"), natsURL(), whURL, natsURL()+"?subject="+subject))
	put := func(key, body string) {
		t.Helper()
		if _, err := v.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("lake"), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	dd := "--data-dir=" + t.TempDir()
	rows := func() int {
		var n int
		if err := conn.QueryRow(ctx, "select count(*) from "+schema+".items").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	reconcile := func(want string) {
		t.Helper()
		r := mustRun(t, v.Env(), "reconcile", "-f", spec, dd)
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("sluice reconcile printed:\n%s\nwant %q", r.stdout, want)
		}
	}

	// Before sluice ever ran: versitygw notifies a subject no stream holds.
	put("raw/items/1.json", `[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]`)
	put("raw/items/2.json", `{"id": 3, "name": "c"}`)
	if r := mustRun(t, v.Env(), "run", "--once", "--max-wait=1m", "-f", spec, dd); rows() != 3 {
		t.Fatalf("rows after the first run = %d, want 3\n%s", rows(), tail(r.stderr, 3000))
	}
	// An upload whose notification is dropped: it reaches the inbox stream
	// (which the first run created) and is purged from it.
	put("raw/items/3.json", `{"id": 4, "name": "d"}`)
	inbox, err := js.Stream(ctx, natsqueue.InboxStreamName(subject))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := inbox.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.LastSeq > 0 && info.State.Msgs > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw's notification never reached the inbox stream: %+v", info.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := inbox.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if r := mustRun(t, v.Env(), "run", "--once", "--max-wait=1m", "-f", spec, dd); rows() != 4 {
		t.Fatalf("rows after the second run = %d, want 4 (the object whose notification was dropped)\n%s", rows(), tail(r.stderr, 3000))
	}
	reconcile("reconcile: emitted 0 event(s)")

	// A lost ledger row: exactly that object is emitted again, and loaded.
	if _, err := conn.Exec(ctx, "delete from "+schema+"._sluice_ledger where object_key = 'raw/items/2.json'"); err != nil {
		t.Fatal(err)
	}
	reconcile("reconcile: emitted 1 event(s)")
	var ledger int
	if err := conn.QueryRow(ctx, "select count(*) from "+schema+"._sluice_ledger where object_key = 'raw/items/2.json'").Scan(&ledger); err != nil || ledger != 1 {
		t.Fatalf("ledger rows of raw/items/2.json after the reconcile = %d (%v), want 1: it was loaded again", ledger, err)
	}
	if rows() != 4 {
		t.Errorf("rows = %d after reloading one object into a merge table, want 4", rows())
	}
	reconcile("reconcile: emitted 0 event(s)")
}
