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
