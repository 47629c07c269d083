// Command eventlatency measures how fast sluice reacts to a write on its
// embedded defaults (local file store, embedded NATS JetStream, SQLite
// warehouse and state): the latency from the start of an object's write to
// its rows being committed, and from the write of the last object of a job
// group to that group's run being RUNNING, minus the job's settle window.
//
//	go run ./bench/eventlatency [-n 1000] [-rate 100] [-group 10] [-settle 1s] [-put inproc|process] [-dir DIR]
//
// It builds cmd/sluice (CGO_ENABLED=0), starts `sluice run` on a fresh data
// dir with one NDJSON load and one command job (`true`) on the same prefix,
// and writes n small objects at rate per second, group objects per folder
// (a job group is a folder). Each object is written the way `sluice put`
// writes it: with -put inproc (default) through the same code in this
// process (engine.Open with WriteOnly, Store.Write, Announce), timed from
// the call; with -put process by running `sluice put` itself, timed from
// the process start.
//
// Commit: a reader polls the warehouse's ledger every millisecond; an
// object counts as committed when its ledger row is visible (after the
// commit, so this errs late by up to the poll). The ledger's loaded_at —
// the owner's clock when its load transaction began, before the commit —
// is reported beside it (it errs early).
//
// RUNNING: the run's Started time as the owning process recorded it in the
// state database (the same machine's clock), minus the write start of the
// group's last object, minus the settle window.
package main

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "modernc.org/sqlite"

	"github.com/sluicehq/sluice/internal/datadir"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/warehouse/sqlitewh"
)

// logLevel is the owner's log level (SLUICE_BENCH_LOG, default warn).
var logLevel = cmp.Or(os.Getenv("SLUICE_BENCH_LOG"), "warn")

const spec = `name: latency
loads:
  items:
    on: {prefix: in/, suffix: .json}
    format: ndjson
    table: items
    columns: {id: bigint, v: text}
jobs:
  touch:
    on: {prefix: in/, suffix: .json}
    settle: %s
    command: ["true"]
`

func main() {
	n := flag.Int("n", 1000, "objects to write")
	rate := flag.Float64("rate", 100, "objects per second")
	group := flag.Int("group", 10, "objects per folder (job group)")
	settle := flag.Duration("settle", time.Second, "the job's settle window")
	put := flag.String("put", "inproc", "how objects are written: inproc (put's code in this process) or process (`sluice put`)")
	bin := flag.String("bin", "", "sluice binary (default: build cmd/sluice)")
	keep := flag.Bool("keep", false, "keep the data dir")
	under := flag.String("dir", "", "where to make the data dir (default the system's temporary directory; /dev/shm takes the disk out)")
	flag.Parse()
	if err := run(*n, *rate, *group, *settle, *put, *bin, *under, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "eventlatency:", err)
		os.Exit(1)
	}
}

func run(n int, rate float64, group int, settle time.Duration, put, bin, under string, keep bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	tmp, err := os.MkdirTemp(under, "eventlatency-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Println("data dir:", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	if bin == "" {
		bin = filepath.Join(tmp, "sluice")
		cmd := exec.Command("go", "build", "-o", bin, "github.com/sluicehq/sluice/cmd/sluice")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build sluice: %v\n%s", err, out)
		}
	}
	dir := datadir.Dir{Path: filepath.Join(tmp, "data")}
	specFile := filepath.Join(tmp, "pipeline.yaml")
	if err := os.WriteFile(specFile, fmt.Appendf(nil, spec, settle), 0o644); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(tmp, "run.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	owner := exec.Command(bin, "run", "--data-dir="+dir.Path, "--log-level="+logLevel, "-f", specFile)
	owner.Stdout, owner.Stderr = logf, logf
	if err := owner.Start(); err != nil {
		return err
	}
	defer func() {
		_ = owner.Process.Signal(syscall.SIGTERM)
		_ = owner.Wait()
		if ps := owner.ProcessState; ps != nil {
			fmt.Printf("sluice run used %s user + %s system CPU over the whole run\n", ps.UserTime().Round(time.Millisecond), ps.SystemTime().Round(time.Millisecond))
		}
		if la, err := os.ReadFile("/proc/loadavg"); err == nil {
			fmt.Printf("load average (1, 5, 15 min): %s\n", strings.Join(strings.Fields(string(la))[:3], " "))
		}
	}()

	// Up: the embedded queue is published and the table exists.
	wh, err := waitReady(ctx, dir)
	if err != nil {
		return err
	}
	defer wh.Close()
	sp, err := pipeline.LoadFile(specFile, func(string) string { return "" })
	if err != nil {
		return err
	}
	var e *engine.Engine
	if put == "inproc" {
		if e, err = engine.Open(ctx, engine.Config{Spec: sp, DataDir: dir, WriteOnly: true, Logger: slog.New(slog.DiscardHandler)}); err != nil {
			return err
		}
		defer e.Close()
	} else if put != "process" {
		return fmt.Errorf("-put %q: want inproc or process", put)
	}

	seen := map[string]time.Time{}   // key → first seen committed
	loaded := map[string]time.Time{} // key → ledger loaded_at
	var mu sync.Mutex
	pctx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	polled := make(chan error, 1)
	go func() { polled <- poll(pctx, wh, &mu, seen, loaded) }()

	keys := make([]string, n)
	started := make([]time.Time, n)
	var putTook []time.Duration // write + announce
	payload := filepath.Join(tmp, "payload.json")
	t0 := time.Now()
	for i := range n {
		keys[i] = fmt.Sprintf("in/g%04d/obj-%05d.json", i/group, i)
		if d := time.Until(t0.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
			time.Sleep(d)
		}
		body := fmt.Sprintf(`{"id": %d, "v": "object %d"}`+"\n", i, i)
		switch put {
		case "inproc":
			started[i] = time.Now()
			o, err := e.Store.Write(ctx, keys[i], strings.NewReader(body), "application/x-ndjson")
			if err != nil {
				return err
			}
			if err := e.Announce(ctx, o); err != nil {
				return err
			}
			putTook = append(putTook, time.Since(started[i]))
		case "process":
			if err := os.WriteFile(payload, []byte(body), 0o644); err != nil {
				return err
			}
			cmd := exec.CommandContext(ctx, bin, "put", "--data-dir="+dir.Path, payload, keys[i])
			started[i] = time.Now()
			if out, err := cmd.CombinedOutput(); err != nil || strings.Contains(string(out), "no event published") {
				return fmt.Errorf("sluice put %s: %v\n%s", keys[i], err, out)
			}
			putTook = append(putTook, time.Since(started[i]))
		}
	}
	offered := time.Since(t0)
	if keep { // for looking into the owner's log (SLUICE_BENCH_LOG=debug)
		var b strings.Builder
		for i, k := range keys {
			fmt.Fprintf(&b, "%s\t%d\n", k, started[i].UnixNano())
		}
		if err := os.WriteFile(filepath.Join(tmp, "starts.tsv"), []byte(b.String()), 0o644); err != nil {
			return err
		}
	}

	// Wait for every commit and every group's run.
	groups := (n + group - 1) / group
	deadline := time.Now().Add(2 * time.Minute)
	var runs []job.Run
	st, err := state.OpenReadOnly(ctx, "", dir.Path)
	if err != nil {
		return err
	}
	defer st.Close()
	for {
		mu.Lock()
		done := len(seen)
		mu.Unlock()
		runs, err = st.ListRuns(ctx, job.RunFilter{Rule: "touch"})
		if err != nil {
			return err
		}
		if done == n && startedGroups(runs) == groups {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after 2 minutes: %d of %d objects committed, %d of %d groups started (see %s)", done, n, startedGroups(runs), groups, logf.Name())
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopPoll()
	if err := <-polled; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}

	var commit, atLoad, running, created, spawn []time.Duration
	for i, k := range keys {
		commit = append(commit, seen[k].Sub(started[i]))
		atLoad = append(atLoad, loaded[k].Sub(started[i]))
	}
	first := map[string]job.Run{}
	splits := 0
	for _, r := range runs {
		if f, ok := first[r.Group]; ok {
			splits++
			if !r.Created.Before(f.Created) {
				continue
			}
		}
		first[r.Group] = r
	}
	for g, r := range first {
		var last time.Time
		for i, k := range keys {
			if strings.HasPrefix(k, "in/"+g+"/") && started[i].After(last) {
				last = started[i]
			}
		}
		running = append(running, r.Started.Sub(last)-settle)
		created = append(created, r.Created.Sub(last)-settle)
		spawn = append(spawn, r.Started.Sub(r.Created))
	}
	fmt.Printf("sluice run on embedded defaults; %d objects offered at %.0f/s (took %s), written by %s put; %d per job group, settle %s\n",
		n, rate, offered.Round(time.Millisecond), put, group, settle)
	fmt.Printf("%-44s %8s %8s %8s %8s\n", "", "p50", "p90", "p99", "max")
	report("the put itself (write, publish, mark seen)", putTook)
	report("write → rows committed (ledger row visible)", commit)
	report("write → load transaction began (loaded_at)", atLoad)
	report(fmt.Sprintf("write → job RUNNING − settle (%d runs)", len(running)), running)
	report("  of which: write → run recorded − settle", created)
	report("  of which: recorded → process started", spawn)
	if splits > 0 {
		fmt.Printf("note: %d group(s) had more than one run (a group's objects spanned more than the settle window)\n", splits)
	}
	return nil
}

// waitReady waits until the owner has published its embedded queue and
// created the table, and returns a read-only handle on the warehouse.
func waitReady(ctx context.Context, dir datadir.Dir) (*sql.DB, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		if o, owned := dir.Owned(); owned && o.QueueURL != "" {
			if _, err := os.Stat(filepath.Join(dir.Path, "warehouse.db")); err == nil {
				db, err := sql.Open("sqlite", "file:"+filepath.Join(dir.Path, "warehouse.db")+"?mode=ro&_pragma=busy_timeout(10000)&_pragma=query_only(1)")
				if err != nil {
					return nil, err
				}
				var k int
				if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE name IN ('items', '_sluice_ledger')`).Scan(&k); err == nil && k == 2 {
					return db, nil
				}
				db.Close()
			}
		}
		if time.Now().After(deadline) {
			return nil, errors.New("sluice run did not come up within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// poll reads new ledger rows every millisecond and notes when each was
// first visible, and its loaded_at.
func poll(ctx context.Context, db *sql.DB, mu *sync.Mutex, seen, loaded map[string]time.Time) error {
	var last int64
	for ctx.Err() == nil {
		rows, err := db.QueryContext(ctx, `SELECT rowid, object_key, loaded_at FROM _sluice_ledger WHERE rowid > ? ORDER BY rowid`, last)
		if err != nil {
			return err
		}
		now := time.Now()
		for rows.Next() {
			var key, at string
			if err := rows.Scan(&last, &key, &at); err != nil {
				rows.Close()
				return err
			}
			t, err := time.Parse(sqlitewh.TimestampLayout, at)
			if err != nil {
				rows.Close()
				return err
			}
			mu.Lock()
			seen[key], loaded[key] = now, t
			mu.Unlock()
		}
		if err := rows.Close(); err != nil {
			return err
		}
		time.Sleep(time.Millisecond)
	}
	return ctx.Err()
}

func startedGroups(runs []job.Run) int {
	g := map[string]bool{}
	for _, r := range runs {
		if !r.Started.IsZero() {
			g[r.Group] = true
		}
	}
	return len(g)
}

func report(what string, ds []time.Duration) {
	slices.Sort(ds)
	q := func(p float64) string {
		if len(ds) == 0 {
			return "-"
		}
		i := int(p*float64(len(ds))+0.999999) - 1 // nearest rank
		return ds[max(i, 0)].Round(100 * time.Microsecond).String()
	}
	fmt.Printf("%-44s %8s %8s %8s %8s\n", what, q(0.50), q(0.90), q(0.99), q(1))
}
