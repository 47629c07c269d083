package datadir

import (
	"errors"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolvePrefersFlagThenEnvThenDefault(t *testing.T) {
	env := func(v string) func(string) string { return func(string) string { return v } }
	d, _ := Resolve("/x/flag", env("/x/env"))
	if d.Path != "/x/flag" {
		t.Fatalf("flag: got %s", d.Path)
	}
	d, _ = Resolve("", env("/x/env"))
	if d.Path != "/x/env" {
		t.Fatalf("env: got %s", d.Path)
	}
	d, _ = Resolve("", env(""))
	if !filepath.IsAbs(d.Path) || filepath.Base(d.Path) != "sluice-data" {
		t.Fatalf("default: got %s", d.Path)
	}
}

func TestSecondOwnerIsRefusedWithTheFirstOwnersPID(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	l, err := d.Acquire("run")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Acquire("demo"); !errors.Is(err, ErrOwned) {
		t.Fatalf("second acquire: got %v, want ErrOwned", err)
	}
	if o, ok := d.Owned(); !ok || o.Command != "run" {
		t.Fatalf("Owned = %+v, %v", o, ok)
	}
	l.Release()
	if _, ok := d.Owned(); ok {
		t.Fatal("still owned after release")
	}
	l2, err := d.Acquire("demo")
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	l2.Release()
}

func TestPublishingTheQueueURLKeepsTheOwnersCommand(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	l, err := d.Acquire("demo")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	if err := l.Publish(Owner{QueueURL: "nats://127.0.0.1:1234"}); err != nil {
		t.Fatal(err)
	}
	o, err := d.ReadOwner()
	if err != nil || o.Command != "demo" || o.QueueURL != "nats://127.0.0.1:1234" {
		t.Fatalf("owner = %+v, %v; want command demo with the queue URL", o, err)
	}
}

// TestURLsOfADataDirWithURICharactersNameThatDir: a data dir /tmp/x%2Fy/dd
// put the lake, the warehouse and the state in /tmp/x/y/dd, and /tmp/h#x/dd
// a SQLite file at /tmp/h.
func TestURLsOfADataDirWithURICharactersNameThatDir(t *testing.T) {
	for _, p := range []string{"/tmp/x%2Fy/dd", "/tmp/h#x/dd", "/tmp/q?a=b/dd", "/tmp/sp ace/é/dd"} {
		d := Dir{Path: p}
		for want, raw := range map[string]string{d.Lake(): d.StoreURL(), d.State(): d.StateURL(), filepath.Join(p, "warehouse.db"): d.WarehouseURL()} {
			u, err := url.Parse(raw)
			if err != nil || u.Path != want || u.Host != "" || u.RawQuery != "" || u.Fragment != "" {
				t.Errorf("%s: URL %q parses to path %q (host %q, query %q, fragment %q, %v), want %q", p, raw, u.Path, u.Host, u.RawQuery, u.Fragment, err, want)
			}
			// The warehouse's own parse: the path after "://", unescaped.
			_, rest, _ := strings.Cut(raw, "://")
			if got, err := url.PathUnescape(rest); err != nil || got != want || strings.Contains(rest, "?") {
				t.Errorf("%s: %q unescapes to %q (%v), want %q", p, raw, got, err, want)
			}
		}
	}
}
