package sqlitestate_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluicehq/sluice/state/sqlitestate"
	"github.com/sluicehq/sluice/state/statetest"
)

func TestMain(m *testing.M) { statetest.Main(m) }

func TestConformance(t *testing.T) {
	statetest.RunConformanceTests(t, func(t *testing.T) string {
		return "sqlite://" + filepath.Join(t.TempDir(), "state.db")
	})
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
		db, err := sqlitestate.Open(t.Context(), path, nil)
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

// A state.db written before leases (schema version 3) opens, keeps its
// runs and gains claims.
func TestAVersion3DatabaseMigratesForward(t *testing.T) {
	path := t.TempDir() + "/state.db"
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range sqlitestate.Migrations()[:3] {
		if _, err := old.Exec(m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := old.Exec(`PRAGMA user_version = 3;
		INSERT INTO job_runs(id, rule, grp, state, created) VALUES ('r1', 'j', 'g', 'SUCCEEDED', '2026-01-01T00:00:00.000000000Z')`); err != nil {
		t.Fatal(err)
	}
	old.Close()
	db, err := sqlitestate.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := db.GetRun(t.Context(), "r1")
	if err != nil || r.State != "SUCCEEDED" || r.Epoch != 0 || r.Claimer != "" || r.Instances != 0 {
		t.Fatalf("old run = %+v, %v", r, err)
	}
	if _, err := db.Acquire(t.Context(), "x", "h", 1e9); err != nil {
		t.Fatalf("Acquire on a migrated database: %v", err)
	}
	var v int
	if err := db.DB.DB.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != sqlitestate.SchemaVersion {
		t.Fatalf("user_version = %d, %v; want %d", v, err, sqlitestate.SchemaVersion)
	}
}

// Processes opening a new state.db together all succeed, and the file
// ends in WAL mode at the current schema version. SQLite refuses a
// contended switch into WAL mode at once (SQLITE_BUSY) rather than wait,
// so the race is run on several fresh files.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	const rounds, openers = 10, 8
	for range rounds {
		path := t.TempDir() + "/state.db"
		errs := make(chan error, openers)
		for range openers {
			go func() {
				db, err := sqlitestate.Open(t.Context(), path, nil)
				if err == nil {
					db.Close()
				}
				errs <- err
			}()
		}
		for range openers {
			if err := <-errs; err != nil {
				t.Fatalf("concurrent Open: %v", err)
			}
		}
		db, err := sqlitestate.Open(t.Context(), path, nil)
		if err != nil {
			t.Fatal(err)
		}
		var mode string
		var v int
		if err := db.DB.DB.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("journal_mode = %q, %v; want wal", mode, err)
		}
		if err := db.DB.DB.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != sqlitestate.SchemaVersion {
			t.Errorf("user_version = %d, %v; want %d", v, err, sqlitestate.SchemaVersion)
		}
		db.Close()
	}
}

// Reads outside transactions do not queue behind a write in progress: the
// one connection that writes is busy in an open transaction, and Seen,
// GetRun-style reads still answer (and see only committed data).
func TestReadsDoNotWaitForTheWritingConnection(t *testing.T) {
	ctx := t.Context()
	db, err := sqlitestate.Open(ctx, filepath.Join(t.TempDir(), "state.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.MarkSeen(ctx, "a.csv", "fp1", "e1"); err != nil {
		t.Fatal(err)
	}
	tx, err := db.DB.DB.BeginTx(ctx, nil) // holds the writing connection
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`UPDATE seen SET fingerprint = 'fp2' WHERE key = 'a.csv'`); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	fp, etag, ok, err := db.Seen(rctx, "a.csv")
	if err != nil || !ok || fp != "fp1" || etag != "e1" {
		t.Fatalf("Seen during another write = %q %q %v %v; want the committed fp1 e1 at once", fp, etag, ok, err)
	}
	if _, err := db.PendingRequests(rctx); err != nil {
		t.Fatalf("PendingRequests during another write: %v", err)
	}
}

// TestOpenOnAPathWithURICharactersUsesThatFile: a state under a data dir
// /tmp/h#x/d%2Fd was created at /tmp/h.
func TestOpenOnAPathWithURICharactersUsesThatFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "h#x", "d%2Fd?q")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "state.db")
	db, err := sqlitestate.Open(t.Context(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no state at the literal path: %v", err)
	}
	ro, err := sqlitestate.OpenReadOnly(t.Context(), path)
	if err != nil {
		t.Fatalf("read-only: %v", err)
	}
	ro.Close()
	if ents, _ := os.ReadDir(filepath.Dir(filepath.Dir(dir))); len(ents) != 1 {
		t.Errorf("files beside the data dir's parent: %v", ents)
	}
}
