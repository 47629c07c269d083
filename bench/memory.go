package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// memory is the peak resident set (wait4's ru_maxrss) of the sluice
// process loading one big NDJSON object into the embedded SQLite
// warehouse (`run --once`), and of the curate job's process curating one
// big CSV (`sluice job exec`).
func (b *bench) memory(ctx context.Context) ([]result, error) {
	size := b.cfg.sizes.bigBytes
	label := fmt.Sprintf("%.0f MiB", float64(size)/(1<<20))
	if size >= 1<<30 {
		label = fmt.Sprintf("%.0f GiB", float64(size)/(1<<30))
	}

	// Load.
	dd, err := b.dataDir("memory-load")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dd)
	lake, spec := filepath.Join(dd, "lake"), filepath.Join(dd, "pipeline.yaml")
	if err := os.MkdirAll(filepath.Join(lake, "raw", "big"), 0o755); err != nil {
		return nil, err
	}
	t0 := time.Now()
	rows, err := writeBigNDJSON(filepath.Join(lake, "raw", "big", "posts.ndjson"), size, mainMtime)
	if err != nil {
		return nil, err
	}
	b.logf("   memory: generated a %s NDJSON object (%s rows) in %s", label, count(rows), time.Since(t0).Round(100*time.Millisecond))
	if err := postsSpec(spec, lake, "", "merge"); err != nil {
		return nil, err
	}
	load, err := b.runSluice(ctx, dd, nil, "run", "--once", "-f", spec)
	if err != nil {
		return nil, err
	}
	if n, err := countRowsSQLite(ctx, filepath.Join(dd, "warehouse.db")); err != nil || n != rows {
		return nil, fmt.Errorf("load of the big object: %d rows in posts, want %d (%v)", n, rows, err)
	}
	b.logf("   memory: load took %s, peak RSS %s", secs(load.wall), mib(load.maxRSS))
	os.RemoveAll(dd)

	// Curate: the curate data dir, its input replaced by the big CSV.
	s := b.curated
	if s == nil {
		if s, err = b.setupCurate(ctx, 1); err != nil {
			return nil, err
		}
		b.curated = s
	}
	copies := int((size + hydropowerCopyBytes() - 1) / hydropowerCopyBytes())
	t0 = time.Now()
	crows, err := writeHydropower(s.input, copies, mainMtime)
	if err != nil {
		return nil, err
	}
	b.logf("   memory: generated a %s CSV (%s rows) in %s", label, count(crows), time.Since(t0).Round(100*time.Millisecond))
	cur, _, err := b.execCurate(ctx, s, crows)
	if err != nil {
		return nil, err
	}
	b.logf("   memory: curate took %s, peak RSS %s", secs(cur.wall), mib(cur.maxRSS))
	crit := below(256, 512, " MiB")
	return []result{
		{id: "memory-load", figure: fmt.Sprintf("peak RSS loading one %s NDJSON object (%s rows) into SQLite, `run --once` (took %s)", label, count(rows), secs(load.wall)),
			sluice: mib(load.maxRSS), value: float64(load.maxRSS) / (1 << 20), crit: crit, rows: rows},
		{id: "memory-curate", figure: fmt.Sprintf("peak RSS curating one %s CSV (%s rows), `sluice job exec` (took %s)", label, count(crows), secs(cur.wall)),
			sluice: mib(cur.maxRSS), value: float64(cur.maxRSS) / (1 << 20), crit: crit, rows: crows},
	}, nil
}

func countRowsSQLite(ctx context.Context, path string) (int64, error) {
	db, err := openSQLite(path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int64
	err = db.QueryRowContext(ctx, "SELECT count(*) FROM posts").Scan(&n)
	return n, err
}
