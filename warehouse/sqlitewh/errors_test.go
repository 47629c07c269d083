package sqlitewh_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/warehouse/sqlitewh"
)

func TestConstraintAndMismatchErrorsAreBadDataButBusyAndSQLErrorsAreNot(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "e.db")
	open := func() *sql.DB {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)&_pragma=journal_mode(WAL)")
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		return db
	}
	db := open()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, k BIGINT NOT NULL UNIQUE, n BIGINT CHECK (n > 0));
		CREATE TABLE c (a BIGINT, b TEXT, PRIMARY KEY (a, b));
		INSERT INTO t VALUES (1, 1, 1); INSERT INTO c VALUES (1, 'x')`); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, stmt string
		bad        bool
	}{
		{"NOT NULL", `INSERT INTO t VALUES (2, NULL, 1)`, true},
		{"UNIQUE", `INSERT INTO t VALUES (2, 1, 1)`, true},
		{"PRIMARY KEY", `INSERT INTO c VALUES (1, 'x')`, true},
		{"CHECK", `INSERT INTO t VALUES (2, 2, -1)`, true},
		{"datatype mismatch", `INSERT INTO t VALUES ('x', 3, 1)`, true},
		{"no such table", `INSERT INTO missing VALUES (1)`, false},
		{"syntax error", `INSERT INTO`, false},
	}
	for _, tc := range tests {
		_, err := db.ExecContext(ctx, tc.stmt)
		if err == nil {
			t.Fatalf("%s: %s succeeded", tc.name, tc.stmt)
		}
		if got := sqlitewh.IsDataError(err); got != tc.bad {
			t.Errorf("%s: IsDataError(%v) = %v, want %v", tc.name, err, got, tc.bad)
		}
	}

	// A database another connection holds the write lock of is busy: a
	// retry can succeed, so it is not bad data.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO t VALUES (5, 5, 5)`); err != nil {
		t.Fatal(err)
	}
	_, err = open().ExecContext(context.Background(), `INSERT INTO t VALUES (6, 6, 6)`)
	if err == nil {
		t.Fatal("write while another connection holds the write lock succeeded")
	}
	if sqlitewh.IsDataError(err) {
		t.Errorf("busy error %v is classed as bad data", err)
	}
	if !strings.Contains(err.Error(), "SQLITE_BUSY") {
		t.Errorf("error %v is not the busy error this test wants", err)
	}
}
