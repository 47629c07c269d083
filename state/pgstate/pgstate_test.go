package pgstate_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/state/pgstate"
	"github.com/sluicehq/sluice/state/statetest"
)

func TestMain(m *testing.M) { statetest.Main(m) }

// baseURL is the test server: $SLUICE_TEST_POSTGRES or the local default.
func baseURL() string {
	if u := os.Getenv("SLUICE_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

const startHint = "start PostgreSQL on 127.0.0.1:5432 with a database `test` (scripts/test.sh does) or point SLUICE_TEST_POSTGRES at a server"

// newSchemaURL returns the test server's URL with a fresh random schema,
// dropped when the test ends.
func newSchemaURL(t *testing.T) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	schema := "statetest_" + hex.EncodeToString(b[:])
	db, err := sql.Open("pgx", baseURL())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PingContext(t.Context()); err != nil {
		db.Close()
		t.Fatalf("PostgreSQL: %v: %s", err, startHint)
	}
	t.Cleanup(func() {
		defer db.Close()
		if _, err := db.ExecContext(context.Background(), `DROP SCHEMA IF EXISTS `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(baseURL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("schema", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func TestConformance(t *testing.T) {
	statetest.RunConformanceTests(t, newSchemaURL)
}

func TestConcurrentOpensMigrateOnce(t *testing.T) {
	u := newSchemaURL(t)
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			db, err := pgstate.Open(t.Context(), u)
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
	db, err := pgstate.Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, v int
	if err := db.DB.DB.QueryRow(`SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &v); err != nil || n != pgstate.SchemaVersion || v != pgstate.SchemaVersion {
		t.Fatalf("schema_migrations: %d rows, version %d, %v; want %d", n, v, err, pgstate.SchemaVersion)
	}
}

func TestABadSchemaIsNamedWithoutThePassword(t *testing.T) {
	_, err := pgstate.OpenReadOnly(t.Context(), "postgres://u:secret@127.0.0.1:1/db?schema=no-such")
	if err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "schema") {
		t.Fatalf("bad schema error = %v; want it to name the schema and hide the password", err)
	}
}

func TestBadURLsSayWhatToWriteAndHideThePassword(t *testing.T) {
	for _, u := range []string{"postgres://u:secret@h:notaport/db", "mysql://u:secret@h/db", "sqlite://relative/path.db"} {
		_, err := state.Open(t.Context(), u, t.TempDir())
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%s) = %v; want an error without the password", u, err)
			continue
		}
		if !strings.Contains(err.Error(), "postgres://") && !strings.Contains(err.Error(), "sqlite:///") {
			t.Errorf("Open(%s) error %q does not say what to write", u, err)
		}
	}
}

// A process paused in the middle of a state transaction (here: one that
// locked a lease row and never finishes) must not block other processes'
// claims for longer than the server's idle-in-transaction timeout, which
// pgstate sets on its sessions: the stuck session is ended and its locks go.
func TestAPausedTransactionDoesNotBlockOtherProcessesClaims(t *testing.T) {
	ctx := t.Context()
	u := newSchemaURL(t)
	a, err := pgstate.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	l, err := a.Acquire(ctx, "job/j/g", "host/1/a", 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := a.DB.DB.BeginTx(ctx, nil) // a's session, as a fenced write would use it
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM leases WHERE name = $1 FOR UPDATE`, l.Name); err != nil {
		t.Fatal(err)
	}
	// ... and the process stops here. Another process claims the group
	// once the lease has expired.
	b, err := pgstate.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := b.Acquire(ctx, "job/j/g", "host/2/b", time.Minute)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the other process still cannot claim after 30s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := tx.ExecContext(ctx, `SELECT 1`); err == nil {
		t.Errorf("the stuck session still works: its transaction was not ended")
	}
}
