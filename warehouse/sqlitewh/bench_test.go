package sqlitewh_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/warehouse"
	"github.com/sluicehq/sluice/warehouse/drivertest"
	"github.com/sluicehq/sluice/warehouse/sqlitewh"
)

// BenchmarkLoad writes 1,000,000 posts-shaped rows (drivertest.Posts:
// userid bigint, id bigint primary key, title text, body text; about 330
// bytes of values a row) into a new database file in turn, within every
// iteration:
//
//   - sluice: warehouse.Load of 100 objects of 10,000 rows, merged on id,
//     each object one transaction with its ledger row (WAL,
//     synchronous=FULL: sqlitewh's settings);
//   - sluice-append: the same as appends into the table without a key;
//   - sqlite3-wal: `sqlite3 .import` of the rows as CSV into an identical
//     table (with the key), with sqlitewh's settings (WAL,
//     synchronous=FULL);
//   - sqlite3: `sqlite3 .import` with the shell's defaults (rollback
//     journal, synchronous=FULL), the reference.
//
// Every run counts the rows in the file afterwards. Reproduce the figures
// in the package doc with
//
//	go test -run '^$' -bench Load -benchtime 2x ./warehouse/sqlitewh
func BenchmarkLoad(b *testing.B) {
	const rows, perObject = 1_000_000, 10_000
	var objects []drivertest.Batches
	for i := 0; i < rows; i += perObject {
		objects = append(objects, drivertest.PostsBatches(drivertest.Span(int64(i+1), perObject), 4096, 0))
	}
	dir := b.TempDir()
	csv := filepath.Join(dir, "posts.csv")
	f, err := os.Create(csv)
	if err != nil {
		b.Fatal(err)
	}
	for _, o := range objects {
		if err := drivertest.WriteCSV(f, o); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	db := filepath.Join(dir, "wh.db")
	fresh := func() {
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			if err := os.Remove(db + suffix); err != nil && !os.IsNotExist(err) {
				b.Fatal(err)
			}
		}
	}
	count := func() {
		c, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		var n int64
		if err := c.QueryRow("SELECT count(*) FROM posts").Scan(&n); err != nil || n != rows {
			b.Fatalf("posts has %d rows (%v), want %d", n, err, rows)
		}
	}
	sluice := func(it int, mode warehouse.Mode) func() int64 {
		return func() int64 {
			d, err := sqlitewh.Open(ctx, db)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			w := warehouse.New("bench", d)
			tbl := drivertest.Posts
			if mode == warehouse.Append {
				tbl.PrimaryKey = nil
			}
			if err := w.EnsureTable(ctx, tbl); err != nil {
				b.Fatal(err)
			}
			var total int64
			for k, o := range objects {
				res, err := w.Load(ctx, warehouse.Batch{Table: tbl, Mode: mode, Key: fmt.Sprintf("posts-%03d.ndjson", k),
					ETag: fmt.Sprint(it), Version: fmt.Sprintf("%04d-%03d", it, k), Rows: o.Reader()})
				if err != nil || res.Rows != perObject {
					b.Fatalf("Load = %+v, %v", res, err)
				}
				total += res.Rows
			}
			return total
		}
	}
	sqlite3 := func(pragmas ...string) func() int64 {
		return func() int64 {
			args := []string{"-bail"}
			for _, p := range pragmas {
				args = append(args, "-cmd", p)
			}
			args = append(args, "-cmd", drivertest.PostsDDL(true), db, ".import --csv "+csv+" posts")
			if out, err := exec.Command("sqlite3", args...).CombinedOutput(); err != nil || len(out) > 0 && !isWAL(out) {
				b.Fatalf("sqlite3 .import: %v\n%s", err, out)
			}
			return rows
		}
	}
	names := []string{"sluice", "sluice-append", "sqlite3-wal", "sqlite3"}
	alts := []func(int) func() int64{
		func(it int) func() int64 { return sluice(it, warehouse.Merge) },
		func(it int) func() int64 { return sluice(it, warehouse.Append) },
		func(int) func() int64 { return sqlite3("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL") },
		func(int) func() int64 { return sqlite3() },
	}
	d := make([]time.Duration, len(alts))
	cpu := make([]time.Duration, len(alts))
	for it := 0; b.Loop(); it++ {
		for k := range alts {
			i := (it + k) % len(alts)
			fresh()
			start, c := time.Now(), cpuTime()
			alts[i](it)()
			d[i] += time.Since(start)
			cpu[i] += cpuTime() - c
			count()
		}
	}
	fresh()
	ref := d[len(d)-1]
	for i, name := range names {
		b.ReportMetric(float64(rows)*float64(b.N)/d[i].Seconds(), name+"-rows/s")
		if i < len(names)-1 {
			b.ReportMetric(ref.Seconds()/d[i].Seconds(), name+"/sqlite3")
		}
		if i < 2 {
			b.ReportMetric(float64(cpu[i].Nanoseconds())/float64(rows*b.N), name+"-cpu-ns/row")
		}
	}
}

// isWAL reports whether out is only what PRAGMA journal_mode=WAL prints.
func isWAL(out []byte) bool { return string(out) == "wal\n" }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
