package pgwh_test

import (
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
