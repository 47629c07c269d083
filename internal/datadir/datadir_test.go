package datadir

import (
	"errors"
	"path/filepath"
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
