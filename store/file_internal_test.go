package store

import (
	"context"
	"testing"
)

func TestASidecarWrittenByThisStoreIsTrustedAfterARestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, "file://"+dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Put(ctx, "a/b.csv", []byte("x,y\n"), "text/csv")
	if err != nil {
		t.Fatal(err)
	}
	f, o, err := s.openLocal(ctx, "a/b.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	id, ok := identityOf(fi)
	if !ok {
		t.Fatal("no file identity on this platform")
	}
	etag, ct, ok := s.trustedSidecar(s.path("a/b.csv"), id)
	if !ok || etag != w.ETag || ct != "text/csv" || o.ETag != w.ETag {
		t.Errorf("trustedSidecar = %q %q %v; want the written MD5 %q and text/csv, so a restart need not reread the file", etag, ct, ok, w.ETag)
	}
}

func TestTempNamesMatchFileblobsPatternOnly(t *testing.T) {
	for name, want := range map[string]bool{
		"a.csv.18c2f5e0a1b2c3d4.tmp": true,
		".18c2f5e0a1b2c3d4.tmp":      false,
		"a.csv.18C2F5E0A1B2C3D4.tmp": false,
		"a.csv.18c2f5e0a1b2c3d.tmp":  false,
		"report.tmp":                 false,
		"a.18c2f5e0a1b2c3d4.tmpx":    false,
	} {
		if got := isTempName(name); got != want {
			t.Errorf("isTempName(%q) = %v, want %v", name, got, want)
		}
	}
}
