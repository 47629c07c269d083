package pgwh_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sluicehq/sluice/schema"
	"github.com/sluicehq/sluice/warehouse"
	"github.com/sluicehq/sluice/warehouse/drivertest"
	"github.com/sluicehq/sluice/warehouse/pgwh"
)

// The benchmarks of the load path write 1,000,000 posts-shaped rows
// (drivertest.Posts: userid bigint, id bigint, title text, body text;
// about 330 bytes of values a row) and compare with psql's \copy of the
// same rows as CSV into an identical table, on the same server in the same
// run. Every iteration counts the rows in the table afterwards. Reproduce
// the figures in the package doc with
//
//	go test -run '^$' -bench 'Copy|Load' -benchtime 2x ./warehouse/pgwh
//	go test -run '^$' -bench Merge -benchtime 20x ./warehouse/pgwh

const benchRows = 1_000_000

var (
	postsOnce sync.Once
	postsAll  drivertest.Batches
	postsCSV  string
	postsErr  error
)

// posts returns the benchmark rows, in batches of format's default size,
// and the path of the same rows as CSV.
func posts(b *testing.B) (drivertest.Batches, string) {
	postsOnce.Do(func() {
		postsAll = drivertest.PostsBatches(drivertest.Span(1, benchRows), 4096, 0)
		dir, err := os.MkdirTemp("", "sluice-pgwh-bench")
		if err != nil {
			postsErr = err
			return
		}
		postsCSV = filepath.Join(dir, "posts.csv")
		f, err := os.Create(postsCSV)
		if err != nil {
			postsErr = err
			return
		}
		if err := drivertest.WriteCSV(f, postsAll); err != nil {
			postsErr = err
		}
		if err := f.Close(); err != nil && postsErr == nil {
			postsErr = err
		}
	})
	if postsErr != nil {
		b.Fatal(postsErr)
	}
	return postsAll, postsCSV
}

func TestMain(m *testing.M) {
	code := m.Run()
	if postsCSV != "" {
		os.RemoveAll(filepath.Dir(postsCSV))
	}
	os.Exit(code)
}

// benchDB is a fresh schema with a pgx connection and a warehouse on it.
type benchDB struct {
	b      *testing.B
	ctx    context.Context
	schema string
	conn   *pgx.Conn
	wh     *warehouse.Warehouse
}

func newBenchDB(b *testing.B) *benchDB {
	u := freshSchema(b)
	_, schema, err := pgwh.SplitURL(u)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	d, err := pgwh.Open(ctx, u)
	if err != nil {
		b.Fatalf("%v\n%s", err, startHint)
	}
	b.Cleanup(func() { d.Close() })
	conn, err := pgx.Connect(ctx, baseURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close(context.Background()) })
	return &benchDB{b: b, ctx: ctx, schema: schema, conn: conn, wh: warehouse.New("bench", d)}
}

func (db *benchDB) exec(sql string) {
	db.b.Helper()
	if _, err := db.conn.Exec(db.ctx, sql); err != nil {
		db.b.Fatalf("%s: %v", sql, err)
	}
}

// reset drops and recreates posts (keyed or not) in the schema.
func (db *benchDB) reset(keyed bool) {
	db.b.Helper()
	db.exec("SET search_path = " + db.schema)
	db.exec("DROP TABLE IF EXISTS posts")
	db.exec(drivertest.PostsDDL(keyed))
}

func (db *benchDB) count(want int64) {
	db.b.Helper()
	var n int64
	if err := db.conn.QueryRow(db.ctx, "SELECT count(*) FROM "+db.schema+".posts").Scan(&n); err != nil {
		db.b.Fatal(err)
	}
	if n != want {
		db.b.Fatalf("posts has %d rows, want %d", n, want)
	}
}

// psqlCopy loads the CSV file with psql's \copy, the reference.
func (db *benchDB) psqlCopy(csv string) {
	db.b.Helper()
	out, err := exec.Command("psql", baseURL(), "-q", "-v", "ON_ERROR_STOP=1",
		"-c", fmt.Sprintf(`\copy %s.posts FROM '%s' WITH (FORMAT csv)`, db.schema, csv)).CombinedOutput()
	if err != nil {
		db.b.Fatalf("psql \\copy: %v\n%s", err, out)
	}
}

// boxed is a pgx.CopyFromSource over batches that boxes every value, as
// any CopyFromSource must: the alternative to encoding from the vectors.
type boxed struct {
	bs     drivertest.Batches
	bi, i  int
	values []any
}

func (s *boxed) Next() bool {
	for s.bi < len(s.bs) {
		if s.i < s.bs[s.bi].Len() {
			s.i++
			return true
		}
		s.bi, s.i = s.bi+1, 0
	}
	return false
}

func (s *boxed) Values() ([]any, error) {
	b, i := s.bs[s.bi], s.i-1
	s.values = s.values[:0]
	for j := range b.Vecs {
		v := &b.Vecs[j]
		switch {
		case v.Null[i]:
			s.values = append(s.values, nil)
		case v.Type.IsInt():
			s.values = append(s.values, v.Int[i])
		default:
			s.values = append(s.values, v.TextString(i))
		}
	}
	return s.values, nil
}

func (s *boxed) Err() error { return nil }

// timings accumulates the time of each of several alternatives run in
// turn within every iteration, so that they meet the same load of a
// shared machine, and reports each as a metric.
type timings struct {
	names []string
	d     []time.Duration
	cpu   []time.Duration // this process's CPU time (user and system)
	rows  []int64
}

func newTimings(names ...string) *timings {
	n := len(names)
	return &timings{names: names, d: make([]time.Duration, n), cpu: make([]time.Duration, n), rows: make([]int64, n)}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// run times f as alternative i; f returns the rows it wrote.
func (t *timings) run(i int, f func() int64) {
	start, cpu := time.Now(), cpuTime()
	n := f()
	t.d[i] += time.Since(start)
	t.cpu[i] += cpuTime() - cpu
	t.rows[i] += n
}

// report reports rows/s of every alternative, and the ratio of each to
// the last (the reference).
func (t *timings) report(b *testing.B) {
	ref := float64(t.rows[len(t.names)-1]) / t.d[len(t.names)-1].Seconds()
	for i, name := range t.names {
		rate := float64(t.rows[i]) / t.d[i].Seconds()
		b.ReportMetric(rate, name+"-rows/s")
		b.ReportMetric(float64(t.cpu[i].Nanoseconds())/float64(t.rows[i]), name+"-client-cpu-ns/row")
		if i < len(t.names)-1 {
			b.ReportMetric(rate/ref, name+"/"+t.names[len(t.names)-1])
		}
	}
}

// BenchmarkCopy compares ways of COPYing the batches into a table without
// indexes, in turn within each iteration: pgx's CopyFrom with a
// CopyFromSource that boxes each value, pgwh's encoder writing the binary
// format from the vectors, and psql's \copy of the rows as CSV.
func BenchmarkCopy(b *testing.B) {
	bs, csv := posts(b)
	cols := []string{"userid", "id", "title", "body"}
	types := []schema.Type{schema.BigInt, schema.BigInt, schema.Text, schema.Text}
	db := newBenchDB(b)
	alts := []func() int64{
		func() int64 {
			n, err := db.conn.CopyFrom(db.ctx, pgx.Identifier{db.schema, "posts"}, cols, &boxed{bs: bs})
			if err != nil {
				b.Fatal(err)
			}
			return n
		},
		func() int64 {
			n, err := pgwh.CopyBatches(db.ctx, db.conn, pgx.Identifier{db.schema, "posts"}, cols, types, bs.Reader())
			if err != nil {
				b.Fatal(err)
			}
			return n
		},
		func() int64 { db.psqlCopy(csv); return benchRows },
	}
	t := newTimings("pgx-boxed", "vectors", "psql")
	for it := 0; b.Loop(); it++ {
		for k := range alts {
			i := (it + k) % len(alts)
			db.reset(false)
			t.run(i, alts[i])
			db.count(benchRows)
		}
	}
	t.report(b)
}

// BenchmarkLoad loads the rows as 100 objects of 10,000 rows through
// warehouse.Load, each object its own transaction with its ledger row, as
// a pipeline does, and in turn psql's \copy of the same rows as CSV into
// the same table: appended into a table without a key, and merged on id
// into an empty table with the primary key.
func BenchmarkLoad(b *testing.B) {
	_, csv := posts(b)
	const perObject = 10_000
	objects := make([]drivertest.Batches, 0, benchRows/perObject)
	for i := 0; i < benchRows; i += perObject {
		objects = append(objects, drivertest.PostsBatches(drivertest.Span(int64(i+1), perObject), 4096, 0))
	}
	for _, tc := range []struct {
		name  string
		keyed bool
		mode  warehouse.Mode
	}{
		{"Append", false, warehouse.Append},
		{"Merge", true, warehouse.Merge},
	} {
		b.Run(tc.name, func(b *testing.B) {
			db := newBenchDB(b)
			tbl := drivertest.Posts
			if !tc.keyed {
				tbl.PrimaryKey = nil
			}
			sluice := func(it int) func() int64 {
				return func() int64 {
					var total int64
					for k, o := range objects {
						res, err := db.wh.Load(db.ctx, warehouse.Batch{Table: tbl, Mode: tc.mode, Key: fmt.Sprintf("posts-%03d.ndjson", k),
							ETag: fmt.Sprint(it), Version: fmt.Sprintf("%04d-%03d", it, k), Rows: o.Reader()})
						if err != nil || res.Rows != perObject {
							b.Fatalf("Load = %+v, %v", res, err)
						}
						total += res.Rows
					}
					return total
				}
			}
			t := newTimings("sluice", "psql")
			for it := 0; b.Loop(); it++ {
				for k := range 2 {
					db.reset(tc.keyed)
					if i := (it + k) % 2; i == 0 {
						if tc.mode == warehouse.Merge { // as the first merge Load in a process adds it
							db.exec("ALTER TABLE posts ADD COLUMN _sluice_version text NOT NULL DEFAULT ''")
						}
						t.run(0, sluice(it))
					} else {
						t.run(1, func() int64 { db.psqlCopy(csv); return benchRows })
					}
					db.count(benchRows)
				}
			}
			t.report(b)
		})
	}
}

// BenchmarkMerge merges objects of 10,000 rows into a table that holds
// 1,000,000 rows, at 0 %, 30 % and 100 % of the object's keys already in
// the table (spread through the object), with each merge strategy in turn
// within every iteration: one object per strategy, each its own Load
// (ledger row and rows in one transaction). copy-only, at 0 %, is the
// speed of light: the same kind of object COPYed into the table without
// merging or ledger.
func BenchmarkMerge(b *testing.B) {
	posts(b) // the rows that fill the table
	const perObject = 10_000
	strategies := []struct {
		name                                    string
		direct, reuseStaging, tracked, reinsert bool
	}{
		{"a-staging-distinct", false, false, false, false},
		{"a2-reused-staging", false, true, false, false},
		{"c-staging-tracked-keys", false, false, true, false},
		{"b-direct-savepoint", true, false, false, false},
		{"d-direct-reused-tracked", true, true, true, false},
		{"e-d-reinsert", true, true, true, true},
	}
	db := newBenchDB(b)
	// Fill the table once, with the merge Load itself (one object).
	if err := db.wh.EnsureTable(db.ctx, drivertest.Posts); err != nil {
		b.Fatal(err)
	}
	if _, err := db.wh.Load(db.ctx, warehouse.Batch{Table: drivertest.Posts, Mode: warehouse.Merge, Key: "fill", ETag: "e", Version: "0000",
		Rows: postsAll.Reader()}); err != nil {
		b.Fatal(err)
	}
	db.exec("VACUUM ANALYZE " + db.schema + ".posts")
	next := int64(benchRows) // the last key used
	rng := rand.New(rand.NewPCG(1, 2))
	object := func(conflicts int) []int64 {
		ids := make([]int64, perObject)
		seen := map[int64]bool{}
		for i := range ids {
			if i%100 < conflicts {
				for ids[i] == 0 || seen[ids[i]] { // a stored key, once in the object
					ids[i] = 1 + rng.Int64N(benchRows)
				}
				seen[ids[i]] = true
			} else {
				next++
				ids[i] = next
			}
		}
		return ids
	}
	version := 0
	for _, conflicts := range []int{0, 30, 100} {
		b.Run(fmt.Sprintf("conflicts=%d%%", conflicts), func(b *testing.B) {
			names := make([]string, 0, len(strategies)+1)
			for _, st := range strategies {
				names = append(names, st.name)
			}
			alts := len(strategies)
			if conflicts == 0 {
				names = append(names, "copy-only")
				alts++
			}
			t := newTimings(names...)
			for it := 0; b.Loop(); it++ {
				for k := range alts {
					i := (it + k) % alts
					version++
					o := drivertest.Batches(drivertest.PostsBatches(object(conflicts), 4096, uint64(version)))
					if i == len(strategies) {
						t.run(i, func() int64 { return db.copyOnly(o) })
						continue
					}
					st := strategies[i]
					restore := pgwh.SetMergeOptions(st.direct, st.reuseStaging, st.tracked)
					noReinsert := pgwh.SetReinsert(st.reinsert)
					t.run(i, func() int64 {
						res, err := db.wh.Load(db.ctx, warehouse.Batch{Table: drivertest.Posts, Mode: warehouse.Merge, Key: fmt.Sprint("obj-", version),
							ETag: "e", Version: fmt.Sprintf("%08d", version), Rows: o.Reader()})
						if err != nil || res.Rows != o.Rows() {
							b.Fatalf("Load = %+v, %v; want %d rows", res, err, o.Rows())
						}
						return res.Rows
					})
					noReinsert()
					restore()
				}
			}
			for i, name := range names {
				b.ReportMetric(t.d[i].Seconds()*1000/float64(b.N), name+"-ms/object")
			}
		})
	}
}

// copyOnly COPYs o into posts in a transaction, without merging.
func (db *benchDB) copyOnly(o drivertest.Batches) int64 {
	tx, err := db.conn.Begin(db.ctx)
	if err != nil {
		db.b.Fatal(err)
	}
	n, err := pgwh.CopyBatches(db.ctx, tx.Conn(), pgx.Identifier{db.schema, "posts"}, []string{"userid", "id", "title", "body"},
		[]schema.Type{schema.BigInt, schema.BigInt, schema.Text, schema.Text}, o.Reader())
	if err != nil {
		db.b.Fatal(err)
	}
	if err := tx.Commit(db.ctx); err != nil {
		db.b.Fatal(err)
	}
	return n
}
