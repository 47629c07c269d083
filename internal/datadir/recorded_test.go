package datadir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStripPasswordRemovesPasswordsAndKeepsTheRest(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"postgres://u:secret@db:5432/test?schema=s", "postgres://u@db:5432/test?schema=s"},
		{"postgres://u@db/test", "postgres://u@db/test"},
		{"postgres://db/test?password=secret&schema=s&sslpassword=k", "postgres://db/test?schema=s"},
		{"sqlite:///tmp/x%252Fy/warehouse.db", "sqlite:///tmp/x%252Fy/warehouse.db"},
		{"postgres://u:se%zzcret@db/test", ""}, // does not parse: nothing, not the password
	} {
		if got := StripPassword(c.in); got != c.want {
			t.Errorf("StripPassword(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestTheOwnerRecordsItsURLsWithoutPasswordsForLaterReaders(t *testing.T) {
	d := Dir{Path: t.TempDir()}
	if _, ok, err := d.Recorded(); ok || err != nil {
		t.Fatalf("before any owner: ok=%v err=%v", ok, err)
	}
	l, err := d.Acquire("run")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	in := Recorded{Warehouse: "postgres://u:secret@db/test?schema=w", State: "postgres://u:secret@db/test?schema=s", Spec: "/p.yaml"}
	if err := l.Record(in); err != nil {
		t.Fatal(err)
	}
	got, ok, err := d.Recorded()
	if err != nil || !ok {
		t.Fatalf("Recorded: ok=%v err=%v", ok, err)
	}
	want := Recorded{Warehouse: "postgres://u@db/test?schema=w", State: "postgres://u@db/test?schema=s", Spec: "/p.yaml"}
	if got != want {
		t.Fatalf("Recorded = %+v, want %+v", got, want)
	}
	p := filepath.Join(d.Path, RecordFile)
	b, _ := os.ReadFile(p)
	if strings.Contains(string(b), "secret") {
		t.Fatalf("%s holds the password:\n%s", RecordFile, b)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s mode %04o, want 0600", RecordFile, fi.Mode().Perm())
	}
	// The next owner's record replaces it whole: "" is the data dir's own.
	if err := l.Record(Recorded{}); err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := d.Recorded(); !ok || got != (Recorded{}) {
		t.Fatalf("after a default owner: %+v, %v", got, ok)
	}
	if left, _ := filepath.Glob(filepath.Join(d.Path, ".*.tmp")); len(left) > 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
