package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// postsInputs are the posts rows every load figure uses.
type postsInputs struct {
	main   postsSet  // ids 1..n, variant 0: the timed loads; with the CSV
	pre30  *postsSet // ids with id%10 < 3, variant 1: pre-loaded for ~30 % conflicts
	pre100 *postsSet // every id, variant 1: pre-loaded for 100 % conflicts
}

// Modification times of the generated objects: a local store takes an
// object's event time from it, and merge keeps the newer version, so the
// timed objects are newer than the pre-loaded ones.
var (
	mainMtime = time.Now().Add(-time.Hour).Truncate(time.Second)
	preMtime  = mainMtime.Add(-time.Hour)
)

func (b *bench) postsIn() (*postsInputs, error) {
	if b.posts != nil {
		return b.posts, nil
	}
	n := b.cfg.sizes.posts
	t0 := time.Now()
	set, err := writePosts(filepath.Join(b.tmp, "in", "posts"), n, nil, 0, b.cfg.sizes.objects, true, mainMtime)
	if err != nil {
		return nil, fmt.Errorf("generate posts: %w", err)
	}
	in := &postsInputs{main: set}
	b.logf("   generated %s posts rows: %d NDJSON objects, %.0f MB (%.0f bytes/row), and one CSV, in %s",
		count(set.rows), len(set.objects), float64(set.bytes)/1e6, float64(set.bytes)/float64(set.rows), time.Since(t0).Round(100*time.Millisecond))
	b.posts = in
	return in, nil
}

// preload returns the older versions of pct % of the rows (30 or 100).
func (b *bench) preload(pct int) (*postsSet, error) {
	in, err := b.postsIn()
	if err != nil {
		return nil, err
	}
	slot, keep := &in.pre30, func(id int64) bool { return id%10 < 3 }
	if pct == 100 {
		slot, keep = &in.pre100, nil
	}
	if *slot != nil {
		return *slot, nil
	}
	set, err := writePosts(filepath.Join(b.tmp, "in", fmt.Sprintf("pre%d", pct)), b.cfg.sizes.posts, keep, 1, b.cfg.sizes.objects, false, preMtime)
	if err != nil {
		return nil, fmt.Errorf("generate the rows to pre-load: %w", err)
	}
	*slot = &set
	return &set, nil
}

// postsSpec writes a pipeline spec loading raw/**.ndjson into table
// posts. warehouse "" leaves the data dir's embedded SQLite.
func postsSpec(path, lake, warehouse, write string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "name: bench\nstore: %s\n", "file://"+lake)
	if warehouse != "" {
		fmt.Fprintf(&b, "warehouse: %q\n", warehouse)
	}
	fmt.Fprintf(&b, `loads:
  posts:
    on: {prefix: raw/, suffix: .ndjson}
    format: ndjson
    table: posts
    write: %s
`, write)
	if write == "merge" {
		b.WriteString("    primary_key: [id]\n")
	}
	b.WriteString(`    columns:
      userId: {type: bigint, as: userid}
      id: bigint
      title: text
      body: text
`)
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// postsDDL is the reference tables' definition: the columns and types
// sluice gives the spec's columns, and the same primary key (checked
// against sluice's table on every run by sameTable).
func postsDDL(table string, withKey bool) string {
	if withKey {
		return fmt.Sprintf("CREATE TABLE %s (userid bigint, id bigint NOT NULL, title text, body text, PRIMARY KEY (id))", table)
	}
	return fmt.Sprintf("CREATE TABLE %s (userid bigint, id bigint, title text, body text)", table)
}

// loadPG is one load figure's variant.
type loadPG struct {
	id, figure string
	write      string // merge or append
	conflicts  int    // % of ids pre-loaded before timing (merge only)
	crit       *criterion
}

func (b *bench) postgres(ctx context.Context) ([]result, error) {
	in, err := b.postsIn()
	if err != nil {
		return nil, err
	}
	n := count(in.main.rows)
	variants := []loadPG{
		{"pg-merge-0", "PostgreSQL merge on id, 0 % conflicts: " + n + " rows, " + fmt.Sprint(len(in.main.objects)) + " NDJSON objects, `run --once`", "merge", 0, ratioAtLeast(0.9, 0.7)},
		{"pg-merge-30", "PostgreSQL merge on id, ~30 % conflicts", "merge", 30, ratioAtLeast(0.9, 0.7)},
		{"pg-merge-100", "PostgreSQL merge on id, 100 % conflicts", "merge", 100, nil},
		{"pg-append", "PostgreSQL append (no key)", "append", 0, ratioAtLeast(1.0, 0.9)},
	}
	var res []result
	for _, v := range variants {
		refs, sls, err := b.pair(v.id,
			func(rep int) (time.Duration, error) { return b.copyPG(ctx, v.id, rep, v.write == "merge") },
			func(rep int) (time.Duration, error) { return b.sluicePG(ctx, v, rep) })
		if err != nil {
			return nil, err
		}
		r, s := median(refs), median(sls)
		if v.id == "pg-merge-0" {
			b.report.mergeRate = float64(in.main.rows) / s.Seconds()
		}
		res = append(res, result{id: v.id, figure: v.figure, sluice: spread(sls), reference: "`psql \\copy` CSV: " + spread(refs),
			ratio: r.Seconds() / s.Seconds(), value: r.Seconds() / s.Seconds(), crit: v.crit, rows: in.main.rows})
	}
	return res, nil
}

// pair measures the reference and sluice runs times each, alternating
// which goes first, and returns their durations.
func (b *bench) pair(name string, ref, sl func(rep int) (time.Duration, error)) (refs, sls []time.Duration, err error) {
	for rep := range b.cfg.runs {
		order := []bool{true, false} // sluice first in even repetitions
		if rep%2 == 1 {
			order = []bool{false, true}
		}
		for _, isSluice := range order {
			var d time.Duration
			if isSluice {
				if d, err = sl(rep); err != nil {
					return nil, nil, fmt.Errorf("%s, run %d, sluice: %w", name, rep+1, err)
				}
				sls = append(sls, d)
			} else {
				if d, err = ref(rep); err != nil {
					return nil, nil, fmt.Errorf("%s, run %d, reference: %w", name, rep+1, err)
				}
				refs = append(refs, d)
			}
			b.logf("   %s run %d %-9s %s", name, rep+1, map[bool]string{true: "sluice", false: "reference"}[isSluice], secs(d))
		}
	}
	return refs, sls, nil
}

// schema returns a fresh schema name for one measurement.
func (b *bench) schema(name string) string {
	b.seq++
	return strings.NewReplacer("-", "_").Replace(fmt.Sprintf("bench_%s_%03d_%s", b.id, b.seq, name))
}

// dropSchema drops a measurement's schema, even after an interrupt (which
// closes the shared connection when it cuts a query short).
func (b *bench) dropSchema(schema string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if b.pg.IsClosed() {
		conn, err := pgx.Connect(ctx, b.cfg.pgURL)
		if err != nil {
			b.logf("bench: warning: drop schema %s: %v", schema, err)
			return
		}
		b.pg = conn
	}
	if _, err := b.pg.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		b.logf("bench: warning: drop schema %s: %v", schema, err)
	}
}

// copyPG is the reference: psql's \copy of the CSV into an identical,
// empty table in a fresh schema.
func (b *bench) copyPG(ctx context.Context, name string, rep int, withKey bool) (time.Duration, error) {
	in, err := b.postsIn()
	if err != nil {
		return 0, err
	}
	schema := b.schema(name + "_ref")
	defer b.dropSchema(schema)
	table := pgx.Identifier{schema, "posts"}.Sanitize()
	if _, err := b.pg.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()+"; "+postsDDL(table, withKey)); err != nil {
		return 0, err
	}
	p, err := run(ctx, nil, "", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", b.cfg.pgURL,
		"-c", fmt.Sprintf(`\copy %s (userid, id, title, body) FROM '%s' WITH (FORMAT csv)`, table, in.main.csv))
	if err != nil {
		return 0, err
	}
	if err := b.checkPG(ctx, schema, in.main.rows, in.main.chars); err != nil {
		return 0, fmt.Errorf("psql \\copy: %w", err)
	}
	return p.wall, nil
}

// sluicePG loads the objects with `sluice run --once` into a fresh schema,
// after pre-loading older versions of v.conflicts % of the rows (untimed).
func (b *bench) sluicePG(ctx context.Context, v loadPG, rep int) (time.Duration, error) {
	in, err := b.postsIn()
	if err != nil {
		return 0, err
	}
	schema := b.schema(v.id)
	defer b.dropSchema(schema)
	dd, err := b.dataDir(v.id)
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dd)
	lake, spec := filepath.Join(dd, "lake"), filepath.Join(dd, "pipeline.yaml")
	if err := postsSpec(spec, lake, withSchema(b.cfg.pgURL, schema), v.write); err != nil {
		return 0, err
	}
	if v.conflicts > 0 {
		pre, err := b.preload(v.conflicts)
		if err != nil {
			return 0, err
		}
		if err := link(pre.objects, filepath.Join(lake, "raw", "pre")); err != nil {
			return 0, err
		}
		if _, err := b.runSluice(ctx, dd, nil, "run", "--once", "-f", spec); err != nil {
			return 0, fmt.Errorf("pre-load the conflicting rows: %w", err)
		}
		if err := b.checkPG(ctx, schema, pre.rows, pre.chars); err != nil {
			return 0, fmt.Errorf("pre-load the conflicting rows: %w", err)
		}
	}
	if err := link(in.main.objects, filepath.Join(lake, "raw", "main")); err != nil {
		return 0, err
	}
	p, err := b.runSluice(ctx, dd, nil, "run", "--once", "-f", spec)
	if err != nil {
		return 0, err
	}
	if err := b.checkPG(ctx, schema, in.main.rows, in.main.chars); err != nil {
		return 0, fmt.Errorf("sluice run --once: %w", err)
	}
	if err := b.sameTablePG(ctx, schema, v.write == "merge"); err != nil {
		return 0, err
	}
	return p.wall, nil
}

func withSchema(pgURL, schema string) string {
	u, err := url.Parse(pgURL)
	if err != nil {
		return pgURL
	}
	q := u.Query()
	q.Set("schema", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func (b *bench) countPG(ctx context.Context, schema string) (int64, error) {
	var n int64
	err := b.pg.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, "posts"}.Sanitize()).Scan(&n)
	return n, err
}

// checkPG fails unless schema.posts holds exactly rows rows whose titles
// and bodies add up to chars characters (the newest versions).
func (b *bench) checkPG(ctx context.Context, schema string, rows, chars int64) error {
	var n, c int64
	err := b.pg.QueryRow(ctx, "SELECT count(*), coalesce(sum(length(title) + length(body)), 0) FROM "+pgx.Identifier{schema, "posts"}.Sanitize()).Scan(&n, &c)
	if err != nil {
		return fmt.Errorf("count the rows in %s.posts: %w", schema, err)
	}
	if n != rows || c != chars {
		return fmt.Errorf("%s.posts holds %d rows of %d title and body characters, want %d rows of %d: the load wrote the wrong rows", schema, n, c, rows, chars)
	}
	return nil
}

// sameTablePG fails unless sluice's table has the reference's columns
// (sluice's own _sluice_* columns aside), types, primary key and
// persistence: identical tables on both sides.
func (b *bench) sameTablePG(ctx context.Context, schema string, withKey bool) error {
	got, err := b.describePG(ctx, schema)
	if err != nil {
		return err
	}
	ref := b.schema("describe_ref")
	defer b.dropSchema(ref)
	if _, err := b.pg.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{ref}.Sanitize()+"; "+postsDDL(pgx.Identifier{ref, "posts"}.Sanitize(), withKey)); err != nil {
		return err
	}
	want, err := b.describePG(ctx, ref)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("sluice's table is not the reference's: sluice made %q, the reference is %q; change postsDDL (bench/pg.go) to match so both sides stay identical", got, want)
	}
	return nil
}

func (b *bench) describePG(ctx context.Context, schema string) (string, error) {
	rows, err := b.pg.Query(ctx, `SELECT column_name, data_type, is_nullable FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = 'posts' AND column_name NOT LIKE '\_sluice%' ORDER BY ordinal_position`, schema)
	if err != nil {
		return "", err
	}
	var cols []string
	for rows.Next() {
		var name, typ, null string
		if err := rows.Scan(&name, &typ, &null); err != nil {
			return "", err
		}
		cols = append(cols, name+" "+typ+map[string]string{"NO": " not null", "YES": ""}[null])
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	var pk, persistence string
	err = b.pg.QueryRow(ctx, `SELECT coalesce((SELECT string_agg(a.attname, ',' ORDER BY a.attnum) FROM pg_index i
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
			WHERE i.indrelid = c.oid AND i.indisprimary), ''), c.relpersistence::text
		FROM pg_class c WHERE c.oid = ($1 || '.posts')::regclass`, pgx.Identifier{schema}.Sanitize()).Scan(&pk, &persistence)
	if err != nil {
		return "", fmt.Errorf("describe %s.posts: %w", schema, err)
	}
	return fmt.Sprintf("(%s) primary key (%s) persistence %s", strings.Join(cols, ", "), pk, persistence), nil
}

// seed is the seed's approach, for scale: parse the NDJSON objects and
// send one INSERT per row, all in one transaction (pgx), on the first
// seedRows rows, against sluice's rows/s in the 0 %-conflict merge.
func (b *bench) seed(ctx context.Context) ([]result, error) {
	in, err := b.postsIn()
	if err != nil {
		return nil, err
	}
	var rates []time.Duration // per-row time, so median works on durations
	var rows int64
	for rep := range b.cfg.runs {
		d, n, err := b.insertRows(ctx, in, rep)
		if err != nil {
			return nil, fmt.Errorf("run %d: %w", rep+1, err)
		}
		rows = n
		rates = append(rates, d/time.Duration(n))
		b.logf("   seed run %d: %s rows in %s", rep+1, count(n), secs(d))
	}
	seedRate := float64(time.Second) / float64(median(rates))
	sluiceRate := b.report.mergeRate
	if sluiceRate == 0 {
		// pg did not run: measure sluice's merge now.
		var sls []time.Duration
		for rep := range b.cfg.runs {
			d, err := b.sluicePG(ctx, loadPG{id: "seed-sluice", write: "merge"}, rep)
			if err != nil {
				return nil, err
			}
			sls = append(sls, d)
		}
		sluiceRate = float64(in.main.rows) / median(sls).Seconds()
	}
	return []result{{id: "pg-seed", figure: fmt.Sprintf("vs one INSERT per row in one transaction (pgx; %s rows), PostgreSQL merge 0 %%", count(rows)),
		sluice: fmt.Sprintf("%s rows/s", count(int64(sluiceRate))), reference: fmt.Sprintf("%s rows/s", count(int64(seedRate))),
		ratio: sluiceRate / seedRate, value: sluiceRate / seedRate, crit: ratioAtLeast(30, 15), rows: rows}}, nil
}

func (b *bench) insertRows(ctx context.Context, in *postsInputs, rep int) (time.Duration, int64, error) {
	schema := b.schema("seed")
	defer b.dropSchema(schema)
	table := pgx.Identifier{schema, "posts"}.Sanitize()
	if _, err := b.pg.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()+"; "+postsDDL(table, true)); err != nil {
		return 0, 0, err
	}
	conn, err := pgx.Connect(ctx, b.cfg.pgURL)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(context.Background())
	want := b.cfg.sizes.seedRows
	start := time.Now()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer tx.Rollback(context.Background())
	var n int64
	ins := "INSERT INTO " + table + " (userid, id, title, body) VALUES ($1, $2, $3, $4)"
	for _, obj := range in.main.objects {
		if n >= want {
			break
		}
		f, err := os.Open(obj)
		if err != nil {
			return 0, 0, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() && n < want {
			var p struct {
				UserID int64  `json:"userId"`
				ID     int64  `json:"id"`
				Title  string `json:"title"`
				Body   string `json:"body"`
			}
			if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
				f.Close()
				return 0, 0, fmt.Errorf("%s: %w", obj, err)
			}
			if _, err := tx.Exec(ctx, ins, p.UserID, p.ID, p.Title, p.Body); err != nil {
				f.Close()
				return 0, 0, err
			}
			n++
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return 0, 0, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, 0, err
	}
	d := time.Since(start)
	got, err := b.countPG(ctx, schema)
	if err != nil || got != n || n != want {
		return 0, 0, fmt.Errorf("one INSERT per row: %d rows in %s.posts, want %d (%v)", got, schema, want, err)
	}
	return d, n, nil
}
