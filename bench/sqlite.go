package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // reads the SQLite files both sides wrote
)

// sqlite is the load into sluice's embedded default warehouse (SQLite in
// the data dir, merge on id, no conflicts) against the sqlite3 shell's
// .import of the same rows as CSV into an identical table.
func (b *bench) sqlite(ctx context.Context) ([]result, error) {
	in, err := b.postsIn()
	if err != nil {
		return nil, err
	}
	refs, sls, err := b.pair("sqlite",
		func(rep int) (time.Duration, error) { return b.importSQLite(ctx, in) },
		func(rep int) (time.Duration, error) { return b.sluiceSQLite(ctx, in) })
	if err != nil {
		return nil, err
	}
	r, s := median(refs), median(sls)
	return []result{{id: "sqlite-merge-0", figure: "SQLite (embedded default warehouse) merge on id, " + count(in.main.rows) + " rows, `run --once`",
		sluice: spread(sls), reference: "`sqlite3 .import` CSV: " + spread(refs), ratio: r.Seconds() / s.Seconds(), value: r.Seconds() / s.Seconds(),
		crit: ratioAtLeast(0.8, 0.6), rows: in.main.rows}}, nil
}

func (b *bench) importSQLite(ctx context.Context, in *postsInputs) (time.Duration, error) {
	dd, err := b.dataDir("sqlite-ref")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dd)
	db := filepath.Join(dd, "ref.db")
	if _, err := run(ctx, nil, "", "sqlite3", db, postsDDL("posts", true)); err != nil {
		return 0, err
	}
	p, err := run(ctx, nil, "", "sqlite3", db, ".import --csv "+in.main.csv+" posts")
	if err != nil {
		return 0, err
	}
	if strings.TrimSpace(p.stderr) != "" {
		return 0, fmt.Errorf("sqlite3 .import complained (it skips rows it cannot read):\n%s", indentTail(p.stderr))
	}
	if err := checkSQLite(ctx, db, in.main.rows, in.main.chars); err != nil {
		return 0, fmt.Errorf("sqlite3 .import: %w", err)
	}
	return p.wall, nil
}

func (b *bench) sluiceSQLite(ctx context.Context, in *postsInputs) (time.Duration, error) {
	dd, err := b.dataDir("sqlite")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dd)
	lake, spec := filepath.Join(dd, "lake"), filepath.Join(dd, "pipeline.yaml")
	if err := postsSpec(spec, lake, "", "merge"); err != nil {
		return 0, err
	}
	if err := link(in.main.objects, filepath.Join(lake, "raw", "main")); err != nil {
		return 0, err
	}
	p, err := b.runSluice(ctx, dd, nil, "run", "--once", "-f", spec)
	if err != nil {
		return 0, err
	}
	// The embedded warehouse is the data dir's warehouse.db (README, "Data dir").
	db := filepath.Join(dd, "warehouse.db")
	if err := checkSQLite(ctx, db, in.main.rows, in.main.chars); err != nil {
		return 0, fmt.Errorf("sluice run --once: %w", err)
	}
	if err := sameTableSQLite(ctx, db, dd); err != nil {
		return 0, err
	}
	return p.wall, nil
}

func openSQLite(path string) (*sql.DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	return sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(10000)")
}

func checkSQLite(ctx context.Context, path string, rows, chars int64) error {
	db, err := openSQLite(path)
	if err != nil {
		return err
	}
	defer db.Close()
	var n, c int64
	if err := db.QueryRowContext(ctx, "SELECT count(*), coalesce(sum(length(title) + length(body)), 0) FROM posts").Scan(&n, &c); err != nil {
		return fmt.Errorf("count the rows in %s: %w", path, err)
	}
	if n != rows || c != chars {
		return fmt.Errorf("%s: posts holds %d rows of %d title and body characters, want %d rows of %d: the load wrote the wrong rows", path, n, c, rows, chars)
	}
	return nil
}

// sameTableSQLite fails unless sluice's posts table declares the
// reference's columns, types and primary key (its _sluice_* columns aside).
func sameTableSQLite(ctx context.Context, path, scratch string) error {
	got, err := describeSQLite(ctx, path)
	if err != nil {
		return err
	}
	ref := filepath.Join(scratch, "describe-ref.db")
	if _, err := run(ctx, nil, "", "sqlite3", ref, postsDDL("posts", true)); err != nil {
		return err
	}
	want, err := describeSQLite(ctx, ref)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("sluice's SQLite table is not the reference's: sluice made %q, the reference is %q; change postsDDL (bench/pg.go) to match", got, want)
	}
	return nil
}

func describeSQLite(ctx context.Context, path string) (string, error) {
	db, err := openSQLite(path)
	if err != nil {
		return "", err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT name, type, \"notnull\", pk FROM pragma_table_info('posts') WHERE name NOT LIKE '\\_sluice%' ESCAPE '\\' ORDER BY cid")
	if err != nil {
		return "", fmt.Errorf("describe posts in %s: %w", path, err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var name, typ string
		var notNull, pk int
		if err := rows.Scan(&name, &typ, &notNull, &pk); err != nil {
			return "", err
		}
		cols = append(cols, fmt.Sprintf("%s %s notnull=%d pk=%d", name, strings.ToLower(typ), notNull, pk))
	}
	return strings.Join(cols, ", "), rows.Err()
}
