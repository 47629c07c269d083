package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

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
	if !strings.Contains(second.stdout, "published 1 event(s); loaded 1 object(s), 1 row(s)") {
		t.Fatalf("second run summary (want exactly the new object re-driven): %s", second.stdout)
	}

	// Nothing is left: the reconcile command emits nothing.
	rec := mustRun(t, v.Env(), "reconcile", "-v", dd)
	if !strings.Contains(rec.stdout, "reconcile: emitted 0 event(s)") || !strings.Contains(rec.stdout, "load items: 3 object version(s) checked, 3 loaded") {
		t.Fatalf("reconcile after both runs:\n%s", rec.stdout)
	}
}
