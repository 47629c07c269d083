package e2e

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluicehq/sluice/store/storetest"
)

// api serves one JSON row per request, with the request's number as id.
func api(t *testing.T) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `[{"id": %d}]`, n.Add(1))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// busCount returns how many events the pipeline's bus stream holds.
func busCount(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), "SLUICE_"+strings.ToUpper(name))
	if err != nil {
		t.Fatalf("the bus stream of %s: %v", name, err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// Every write produces exactly one event on the bus, whoever announces it:
// the S3 server's own notifications (bridged by sluice, which then emits
// none itself), sluice when the server sends none, or sluice's watcher and
// writer on a local store.
func TestEveryWriteProducesExactlyOneEvent(t *testing.T) {
	nc, err := nats.Connect(natsURL())
	if err != nil {
		t.Fatalf("NATS at %s is not reachable (run ./scripts/test.sh, which starts it): %v", natsURL(), err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	spec := func(name, store, notifications, apiURL string) string {
		s := fmt.Sprintf("name: %s\nqueue: %q\n", name, natsURL())
		if store != "" {
			s += fmt.Sprintf("store: %q\n", store)
		}
		if notifications != "" {
			s += notifications
		}
		return s + fmt.Sprintf(`sources:
  api: {http: {url: %q}, land: "raw/api/{{.Time}}_{{.Unique}}.json"}
loads:
  rows:
    on: {prefix: raw/}
    table: rows
    columns: {id: bigint}
`, apiURL)
	}
	run := func(t *testing.T, dataDir, spec string, env ...string) {
		t.Helper()
		f := writeFile(t, spec)
		if r := sluice(t, append(env, "SLUICE_DATA="+dataDir), "run", "--once", "--max-wait=1m", "-f", f); r.code != 0 {
			t.Fatalf("run --once: exit %d\n%s%s", r.code, r.stdout, tail(r.stderr, 3000))
		}
	}
	upload := func(t *testing.T, v *storetest.Versitygw, key string, id int) {
		t.Helper()
		if _, err := v.Client.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("lake"), Key: aws.String(key),
			Body: bytes.NewReader(fmt.Appendf(nil, `[{"id": %d}]`, id))}); err != nil {
			t.Fatal(err)
		}
	}
	newName := func(t *testing.T, base string) string {
		name := fmt.Sprintf("%s%d", base, rand.IntN(1e9))
		t.Cleanup(func() {
			js.DeleteStream(context.Background(), "SLUICE_"+strings.ToUpper(name))
		})
		return name
	}

	t.Run("versitygw with notifications", func(t *testing.T) {
		name := newName(t, "notif")
		subject := "lake." + name + ".notifications"
		v := storetest.StartVersitygw(t, "--event-nats-url", natsURL(), "--event-nats-topic", subject)
		srv, requests := api(t)
		notifications := fmt.Sprintf("notifications: {url: %q, key_encoding: raw}\n", natsURL()+"?subject="+subject)
		s := spec(name, v.Bucket(t, "lake"), notifications, srv.URL)
		dataDir := t.TempDir()
		run(t, dataDir, s, v.Env()...) // creates the inbox, lands one object: versitygw announces it
		upload(t, v, "raw/other/a file.json", 1001)
		upload(t, v, "raw/other/b.json", 1002)
		run(t, dataDir, s, v.Env()...) // bridges both uploads and lands one more object
		if n := requests.Load(); n != 2 {
			t.Fatalf("API requests = %d, want 2", n)
		}
		if got := busCount(t, js, name); got != 4 {
			t.Errorf("events on the bus = %d, want 4: one per write (2 landed by sluice, 2 uploaded), none doubled by sluice's own", got)
		}
		if got := count(t, dataDir, "select count(*) from rows", v.Env()...); got != "4" {
			t.Errorf("rows = %s, want 4", got)
		}
		if got := count(t, dataDir, "select count(*) from rows where id in (1001, 1002)", v.Env()...); got != "2" {
			t.Errorf("rows of the uploads (one with a space in its key) = %s, want 2", got)
		}
	})

	t.Run("versitygw without notifications", func(t *testing.T) {
		name := newName(t, "nonotif")
		v := storetest.StartVersitygw(t)
		srv, _ := api(t)
		dataDir := t.TempDir()
		run(t, dataDir, spec(name, v.Bucket(t, "lake"), "", srv.URL), v.Env()...)
		if got := busCount(t, js, name); got != 1 {
			t.Errorf("events on the bus = %d, want 1 for the one object sluice landed", got)
		}
		if got := count(t, dataDir, "select count(*) from rows", v.Env()...); got != "1" {
			t.Errorf("rows = %s, want 1", got)
		}
	})

	t.Run("file", func(t *testing.T) {
		name := newName(t, "file")
		srv, _ := api(t)
		dataDir := t.TempDir()
		s := spec(name, "", "", srv.URL)
		run(t, dataDir, s) // lands one object and announces it; the scan must not announce it again
		dropped := filepath.Join(dataDir, "lake", "raw", "dropped", "c.json")
		if err := os.MkdirAll(filepath.Dir(dropped), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dropped, []byte(`[{"id": 1003}]`), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, dataDir, s) // finds the dropped file, lands one more object
		if got := busCount(t, js, name); got != 3 {
			t.Errorf("events on the bus = %d, want 3 (two landed by sluice, one dropped in by another program)", got)
		}
		if got := count(t, dataDir, "select count(*) from rows"); got != "3" {
			t.Errorf("rows = %s, want 3", got)
		}
	})
}
