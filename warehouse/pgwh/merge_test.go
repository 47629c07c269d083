package pgwh_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sluicehq/sluice/schema"
	"github.com/sluicehq/sluice/warehouse/driver"
	"github.com/sluicehq/sluice/warehouse/pgwh"
)

// A merge that meets a key another transaction inserts concurrently
// waits for it and then updates the row, whether it meets it in a direct
// COPY (which fails with a unique violation and falls back to staging) or
// in the upsert from staging.
func TestMergeMeetingAConcurrentInsertOfItsKeyUpdatesTheRow(t *testing.T) {
	for _, direct := range []bool{false, true} {
		restore := pgwh.SetMergeOptions(direct, true, true)
		w := open(t)
		ctx := t.Context()
		tbl := driver.Table{Name: "t", Columns: []schema.Column{{Name: "id", Type: schema.BigInt}, {Name: "v", Type: schema.Text}}, PrimaryKey: []string{"id"}}
		if err := w.EnsureTable(ctx, tbl); err != nil {
			t.Fatal(err)
		}
		load := func(key string, rows ...[]any) (driver.Result, error) {
			return w.Load(ctx, driver.Batch{Table: tbl, Mode: driver.Merge, Key: key, ETag: "e", Version: key, Rows: mustRows(tbl, rows)})
		}
		// The first load adds the hidden column outside the race.
		if _, err := load("0", []any{int64(0), "first"}); err != nil {
			t.Fatal(err)
		}
		conn, err := pgx.Connect(ctx, baseURL())
		if err != nil {
			t.Fatal(err)
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+pgx.Identifier{w.Schema(), "t"}.Sanitize()+" (id, v, _sluice_version) VALUES (7, 'other', '1')"); err != nil {
			t.Fatal(err)
		}
		type result struct {
			res driver.Result
			err error
		}
		done := make(chan result, 1)
		go func() {
			res, err := load("2", []any{int64(7), "merged"}, []any{int64(8), "new"})
			done <- result{res, err}
		}()
		// Wait until the load waits for the other transaction's key.
		deadline := time.Now().Add(30 * time.Second)
		for {
			var waiting bool
			if err := w.QueryRowForTest(ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity WHERE wait_event_type = 'Lock'
				AND query LIKE '%' || $1 || '%' AND query NOT LIKE '%pg_stat_activity%')`, &waiting, w.Schema()); err != nil {
				t.Fatal(err)
			}
			if waiting {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the load never waited for the concurrent insert")
			}
			select {
			case r := <-done:
				t.Fatalf("the load finished before the concurrent insert committed: %+v, %v", r.res, r.err)
			case <-time.After(10 * time.Millisecond):
			}
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		conn.Close(ctx)
		r := <-done
		if r.err != nil || r.res.Rows != 2 {
			t.Fatalf("direct=%v: load = %+v, %v; want 2 rows", direct, r.res, r.err)
		}
		_, rows, err := w.Query(ctx, "SELECT id, v, _sluice_version FROM t ORDER BY id")
		if err != nil || len(rows) != 3 || rows[1][1] != "merged" || rows[1][2] != "2" || rows[2][1] != "new" {
			t.Fatalf("direct=%v: table holds %v, %v; want 7 merged by version 2 and 8 new", direct, rows, err)
		}
		restore()
	}
}

// A merge replaces stored rows by DELETE and COPY only where nobody can
// tell it from an UPDATE. A column the spec does not write keeps its
// value, rows of a table referring to the merged one with ON DELETE
// CASCADE stay, and a trigger that refuses DELETEs does not fire.
func TestMergeUpdatesInPlaceWhereADeleteWouldShow(t *testing.T) {
	tbl := driver.Table{Name: "t", Columns: []schema.Column{{Name: "id", Type: schema.BigInt}, {Name: "v", Type: schema.Text}}, PrimaryKey: []string{"id"}}
	cases := []struct {
		name  string
		setup string // %[1]s is the merged table, %[2]s the schema
		check string // a query returning true when what the user set up survived
	}{
		{"a column the spec does not write",
			`ALTER TABLE %[1]s ADD COLUMN note text; UPDATE %[1]s SET note = 'mine'`,
			`SELECT count(*) = 3 FROM %[1]s WHERE note = 'mine'`},
		{"a foreign key with ON DELETE CASCADE",
			`CREATE TABLE %[2]s.child (id bigint REFERENCES %[1]s (id) ON DELETE CASCADE); INSERT INTO %[2]s.child SELECT id FROM %[1]s`,
			`SELECT count(*) = 3 FROM %[2]s.child`},
		{"a trigger",
			`CREATE FUNCTION %[2]s.refuse() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'no deletes'; END$$;
			 CREATE TRIGGER refuse BEFORE DELETE ON %[1]s FOR EACH ROW EXECUTE FUNCTION %[2]s.refuse()`,
			`SELECT count(*) = 4 FROM %[1]s`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := open(t)
			ctx := t.Context()
			if err := w.EnsureTable(ctx, tbl); err != nil {
				t.Fatal(err)
			}
			load := func(version string, rows ...[]any) driver.Result {
				t.Helper()
				res, err := w.Load(ctx, driver.Batch{Table: tbl, Mode: driver.Merge, Key: "k" + version, ETag: "e", Version: version, Rows: mustRows(tbl, rows)})
				if err != nil {
					t.Fatal(err)
				}
				return res
			}
			load("1", []any{int64(1), "a"}, []any{int64(2), "b"}, []any{int64(3), "c"})
			table := pgx.Identifier{w.Schema(), "t"}.Sanitize()
			if err := w.ExecForTest(ctx, fmt.Sprintf(tc.setup, table, pgx.Identifier{w.Schema()}.Sanitize())); err != nil {
				t.Fatal(err)
			}
			if res := load("2", []any{int64(2), "B"}, []any{int64(3), "C"}, []any{int64(4), "d"}); res.Rows != 3 {
				t.Fatalf("merge wrote %d rows, want 3", res.Rows)
			}
			_, rows, err := w.Query(ctx, "SELECT id, v FROM t ORDER BY id")
			if err != nil || fmt.Sprint(rows) != "[[1 a] [2 B] [3 C] [4 d]]" {
				t.Fatalf("table holds %v, %v; want 1 a, 2 B, 3 C, 4 d", rows, err)
			}
			var kept bool
			if err := w.QueryRowForTest(ctx, "SELECT ("+fmt.Sprintf(tc.check, table, pgx.Identifier{w.Schema()}.Sanitize())+") AND $1::int = 1", &kept, 1); err != nil || !kept {
				t.Fatalf("after the merge, %q = %v, %v; want true", tc.check, kept, err)
			}
		})
	}
}
