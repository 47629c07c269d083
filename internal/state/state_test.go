package state

import (
	"database/sql"
	"testing"

	"github.com/sluicehq/sluice/store"
)

var _ store.SeenSet = (*DB)(nil)

func TestSeenRoundTripsFingerprintAndETag(t *testing.T) {
	db, ctx := openTest(t), t.Context()
	if _, _, ok, err := db.Seen(ctx, "a.csv"); ok || err != nil {
		t.Fatalf("Seen(unmarked) = %v, %v; want not seen", ok, err)
	}
	for _, v := range [][2]string{{"1:2:3:4:5", "e1"}, {"1:2:3:4:6", "e2"}} {
		if err := db.MarkSeen(ctx, "a.csv", v[0], v[1]); err != nil {
			t.Fatal(err)
		}
		fp, etag, ok, err := db.Seen(ctx, "a.csv")
		if !ok || err != nil || fp != v[0] || etag != v[1] {
			t.Errorf("Seen = %q %q %v %v; want %q %q", fp, etag, ok, err, v[0], v[1])
		}
	}
}

func TestASeenTableFromBeforeETagsIsMigrated(t *testing.T) {
	path := t.TempDir() + "/state.db"
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(`CREATE TABLE seen (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, seen_at TEXT NOT NULL);
		INSERT INTO seen VALUES ('old.csv', '12-345', '2026-01-01T00:00:00Z')`); err != nil {
		t.Fatal(err)
	}
	old.Close()
	want := [2]string{"12-345", ""}
	for range 2 { // migrating an already migrated database is a no-op
		db, err := Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		fp, etag, ok, err := db.Seen(t.Context(), "old.csv")
		if !ok || err != nil || [2]string{fp, etag} != want {
			t.Errorf("Seen(old.csv) = %q %q %v %v; want %q", fp, etag, ok, err, want)
		}
		want = [2]string{"1:2:12:345:6", "e"}
		if err := db.MarkSeen(t.Context(), "old.csv", want[0], want[1]); err != nil {
			t.Error(err)
		}
		db.Close()
	}
}

func TestConcurrentOpensMigrateOnce(t *testing.T) {
	path := t.TempDir() + "/state.db"
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			db, err := Open(t.Context(), path)
			if err == nil {
				db.Close()
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Open: %v", err)
		}
	}
}
