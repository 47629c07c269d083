package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// latencySettle is the job's settle window, subtracted from write → job
// RUNNING (spelled out in the spec, equal to the default).
const latencySettle = 5 * time.Second

// latencyGroup is how many consecutive objects share a folder, and so a
// job group and its run.
const latencyGroup = 10

// The latency pipeline runs on embedded defaults (the data dir's local
// store, embedded queue, SQLite warehouse and state): one load and one
// job on the same objects; every latencyGroup consecutive objects share a
// folder, so each folder is a job group and starts one run.
const latencySpec = `name: latency
loads:
  events:
    on: {prefix: lat/, suffix: .ndjson}
    format: ndjson
    table: events
    write: append
    columns:
      id: bigint
jobs:
  touch:
    on: {events: ["s3:ObjectCreated:*"], prefix: lat/, suffix: .ndjson}
    group: "{{.Key.Parent}}"
    settle: 5s
    command: ["true"]
`

// latency drops small objects into a running `sluice run`'s local store
// at a steady rate — written beside it and renamed in, as another program
// would — and measures write → rows committed and, per job group, write
// of its last object → its run RUNNING (the settle window counts from
// the last event of a group).
//
// Committed is when a reader sees the object's row: a goroutine polls the
// warehouse every 2 ms (the ledger's loaded_at is stamped when the load's
// transaction starts, before its rows are written, so it would flatter
// the figure). RUNNING is the run record's started time (what `sluice
// jobs RUN_ID` shows), read from the data dir's state.db in one query
// instead of a thousand `sluice jobs` processes. The objects are files
// rather than `sluice put`s: one put process costs about 30 ms of CPU to
// start, and 100 a second would need more than this machine's two cores.
func (b *bench) latency(ctx context.Context) ([]result, error) {
	n, rate := b.cfg.sizes.latObjects, b.cfg.sizes.latRate
	dd, err := b.dataDir("latency")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dd)
	spec := filepath.Join(dd, "pipeline.yaml")
	if err := os.WriteFile(spec, []byte(latencySpec), 0o644); err != nil {
		return nil, err
	}
	lake, stage := filepath.Join(dd, "lake"), filepath.Join(dd, "stage")
	if err := os.MkdirAll(stage, 0o755); err != nil {
		return nil, err
	}
	put := func(id int) error {
		tmp := filepath.Join(stage, fmt.Sprintf("%05d.ndjson", id))
		if err := os.WriteFile(tmp, fmt.Appendf(nil, "{\"id\":%d}\n", id), 0o644); err != nil {
			return err
		}
		dir := filepath.Join(lake, "lat", groupOf(id))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		return os.Rename(tmp, filepath.Join(dir, filepath.Base(tmp)))
	}

	// Start sluice; it is stopped (SIGINT, then killed) whatever happens.
	var out, errb tailBuffer
	cmd := exec.Command(b.sluice, "--data-dir", dd, "run", "-f", spec)
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = baseEnv(), dd, &out, &errb
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(time.Minute):
			cmd.Process.Kill()
			<-exited
		}
	}()
	alive := func() error {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("sluice run exited early (%v); stderr (tail):\n%s", err, indentTail(errb.String()))
		default:
			return nil
		}
	}

	// Warm up: the clock starts once object 0 is loaded (its job run may
	// still be waiting for its settle window).
	if err := put(0); err != nil {
		return nil, err
	}
	wh, state := filepath.Join(dd, "warehouse.db"), filepath.Join(dd, "state.db")
	if err := waitFor(ctx, 2*time.Minute, alive, "the warm-up object's row", func() (bool, error) {
		ids, err := rowIDs(ctx, wh)
		return len(ids) > 0, err
	}); err != nil {
		return nil, err
	}

	// Poll the warehouse for rows, every 2 ms, while the objects arrive.
	seen := make(map[int64]time.Time, n)
	var mu sync.Mutex
	pollCtx, stopPoll := context.WithCancel(ctx)
	polled := make(chan error, 1)
	go func() { polled <- pollRows(pollCtx, wh, seen, &mu) }()
	wrote := make([]time.Time, n+1)
	start := time.Now()
	interval := time.Second / time.Duration(rate)
	for i := 1; i <= n; i++ {
		if d := time.Until(start.Add(time.Duration(i-1) * interval)); d > 0 {
			time.Sleep(d)
		}
		wrote[i] = time.Now()
		if err := put(i); err != nil {
			stopPoll()
			return nil, err
		}
	}
	b.logf("   latency: wrote %d objects in %s", n, time.Since(start).Round(time.Millisecond))
	err = waitFor(ctx, 3*time.Minute, alive, fmt.Sprintf("the rows of all %d objects", n), func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) >= n+1, nil
	})
	stopPoll()
	if perr := <-polled; perr != nil && !errors.Is(perr, context.Canceled) {
		return nil, perr
	}
	if err != nil {
		return nil, err
	}
	var runs map[string]runInfo
	if err := waitFor(ctx, 5*time.Minute, alive, fmt.Sprintf("the job runs of all %d objects", n), func() (bool, error) {
		var err error
		runs, err = jobRuns(ctx, state)
		done := 0
		for _, r := range runs {
			if r.ended {
				done++
			}
		}
		return done >= len(runs) && len(runs) >= (n+latencyGroup-1)/latencyGroup+1, err
	}); err != nil {
		return nil, err
	}

	var commit, running []time.Duration
	last := map[string]int{} // group → its last object
	for i := 1; i <= n; i++ {
		commit = append(commit, seen[int64(i)].Sub(wrote[i]))
		last[groupOf(i)] = i
	}
	for g, i := range last {
		r, ok := runs[g]
		if !ok || r.started.IsZero() {
			return nil, fmt.Errorf("group %s: no job run started", g)
		}
		running = append(running, r.started.Sub(wrote[i])-latencySettle)
	}
	label := fmt.Sprintf("%d objects at %d/s, embedded defaults", n, rate)
	return []result{
		{id: "latency-commit", figure: "write → rows committed (seen by a reader), p50 / p99; " + label,
			sluice: ms(percentile(commit, 50)) + " / " + ms(percentile(commit, 99)), value: float64(percentile(commit, 99)) / float64(time.Millisecond),
			crit: below(50, 100, " ms"), rows: int64(len(commit))},
		{id: "latency-job", figure: fmt.Sprintf("write of a group's last object → its job RUNNING, minus the %s settle, p50 / p99; %d groups of %d of the %s", latencySettle, len(running), latencyGroup, label),
			sluice: ms(percentile(running, 50)) + " / " + ms(percentile(running, 99)), value: float64(percentile(running, 99)) / float64(time.Millisecond),
			crit: below(200, 500, " ms"), rows: int64(len(running))},
	}, nil
}

// groupOf is the folder, and so the job group, of object id: the warm-up
// object 0 alone, then latencyGroup consecutive objects each.
func groupOf(id int) string {
	if id == 0 {
		return "warmup"
	}
	return fmt.Sprintf("g%04d", (id-1)/latencyGroup)
}

// waitFor polls cond every 10 ms until it holds, failing when it fails,
// after limit, or when alive reports the process gone.
func waitFor(ctx context.Context, limit time.Duration, alive func() error, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if err := alive(); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waiting for %s: not there after %s", what, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// rowIDs reads the ids in the latency table; none while it does not exist.
func rowIDs(ctx context.Context, path string) ([]int64, error) {
	db, err := openSQLite(path)
	if err != nil {
		return nil, nil
	}
	defer db.Close()
	return queryIDs(ctx, db)
}

func queryIDs(ctx context.Context, db *sql.DB) ([]int64, error) {
	rows, err := db.QueryContext(ctx, "SELECT id FROM events")
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil, nil
		}
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// pollRows records when each id first becomes visible: the start of the
// first query that sees it, an upper bound of its commit that is at most
// one poll interval late.
func pollRows(ctx context.Context, path string, seen map[int64]time.Time, mu *sync.Mutex) error {
	db, err := openSQLite(path)
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var last int64 = -1
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		at := time.Now()
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM events").Scan(&n); err != nil {
			return err
		}
		if n != last {
			ids, err := queryIDs(ctx, db)
			if err != nil {
				return err
			}
			mu.Lock()
			for _, id := range ids {
				if _, ok := seen[id]; !ok {
					seen[id] = at
				}
			}
			mu.Unlock()
			last = n
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

type runInfo struct {
	started time.Time
	ended   bool
}

// jobRuns reads the first run of each group of job touch from the data
// dir's state.db (table job_runs: grp, state, started as fixed-width UTC
// text). A FAILED run fails the figure.
func jobRuns(ctx context.Context, path string) (map[string]runInfo, error) {
	db, err := openSQLite(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT grp, state, coalesce(started, '') FROM job_runs WHERE rule = 'touch' ORDER BY created")
	if err != nil {
		return nil, fmt.Errorf("read the job runs from %s (table job_runs: grp, state, started): %w; if the state schema changed, update bench/latency.go", path, err)
	}
	defer rows.Close()
	runs := map[string]runInfo{}
	for rows.Next() {
		var grp, state, started string
		if err := rows.Scan(&grp, &state, &started); err != nil {
			return nil, err
		}
		if state == "FAILED" {
			return nil, fmt.Errorf("job run of group %s FAILED (see `sluice --data-dir %s jobs`)", grp, filepath.Dir(path))
		}
		if _, ok := runs[grp]; ok {
			continue
		}
		var r runInfo
		if started != "" {
			if r.started, err = time.Parse(time.RFC3339Nano, started); err != nil {
				return nil, fmt.Errorf("job run of group %s: started %q: %w", grp, started, err)
			}
		}
		r.ended = state == "SUCCEEDED"
		runs[grp] = r
	}
	return runs, rows.Err()
}
