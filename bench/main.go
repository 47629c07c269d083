// Command bench measures sluice against the reference tools for the same
// work, on the same deterministic inputs, in the same run, and prints a
// markdown table of figures, ratios, goals and floors (issue 9):
//
//	go run ./bench                      # the full run, 11–14 minutes on 2 cores
//	go run ./bench -quick               # small inputs, a smoke run (under a minute)
//	go run ./bench -only pg,curate -runs 5
//	go run ./bench -out docs/BENCHMARKS.md   # also write the table into the doc
//
// It builds the sluice binary itself (CGO_ENABLED=0 go build ./cmd/sluice)
// and drives it only through its command line, pipeline specs and data
// dir, so it keeps measuring whatever the internals become. docs/BENCHMARKS.md
// says what each figure is and how it is taken; in short:
//
//   - pg: 100 NDJSON objects of posts rows loaded by `sluice run --once`
//     (merge on id at 0 %, ~30 % and 100 % key conflicts; append) against
//     `psql \copy` of the same rows as one CSV into an identical empty
//     table; plus the seed's one INSERT per row in one transaction (pgx).
//   - sqlite: the same load into sluice's embedded SQLite warehouse
//     against `sqlite3 .import` of the CSV.
//   - curate: the hydropower CSV ×1000 → snappy Parquet by the curate
//     job's own process (`sluice job exec`) against node + DuckDB with 2
//     threads; both outputs read back by DuckDB and compared.
//   - latency: 1,000 small objects dropped into a running pipeline's local
//     store at 100/s: write → rows committed, write → job RUNNING.
//   - memory: peak RSS (wait4) loading a 1 GiB NDJSON object and curating
//     a 1 GiB CSV.
//
// Every timed pair alternates which side goes first, is repeated -runs
// times and reports the median. Every figure counts what was written (rows
// in the database, Parquet rows and sums read by DuckDB) and the run fails
// loudly when a count is wrong. Inputs live in a temporary directory that
// is removed at the end; PostgreSQL work happens in fresh schemas that are
// dropped after each measurement.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := mainErr(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stop()
		os.Exit(1)
	}
}

// groups are the figure groups -only selects from, in run order.
var groups = []string{"pg", "seed", "sqlite", "curate", "latency", "memory"}

func mainErr(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	rep, err := runBench(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, rep.block(cfg))
	if cfg.out != "" {
		if err := writeDoc(cfg.out, rep.block(cfg)); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "bench: wrote the table into %s\n", cfg.out)
	}
	return nil
}

// config is what the flags say.
type config struct {
	runs  int
	only  []string
	quick bool
	out   string
	pgURL string
	tmp   string
	keep  bool
	args  []string // as given, for the doc
	sizes sizes
}

// sizes are the input sizes: full for the published figures, quick for
// the smoke run and the test.
type sizes struct {
	posts       int64 // posts rows loaded by the pg and sqlite figures
	objects     int   // NDJSON objects they are split into
	seedRows    int64 // rows of the one-INSERT-per-row reference
	hydroCopies int   // copies of the 4,176 hydropower rows curated
	latObjects  int   // objects of the latency figure
	latRate     int   // their arrival rate, per second
	bigBytes    int64 // size of the memory figure's inputs
}

var (
	fullSizes  = sizes{posts: 1_000_000, objects: 100, seedRows: 50_000, hydroCopies: 1000, latObjects: 1000, latRate: 100, bigBytes: 1 << 30}
	quickSizes = sizes{posts: 20_000, objects: 10, seedRows: 2_000, hydroCopies: 10, latObjects: 50, latRate: 100, bigBytes: 4 << 20}
)

func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config
	only := fs.String("only", "", "comma-separated figure groups to run (default all): "+strings.Join(groups, ","))
	fs.IntVar(&cfg.runs, "runs", 5, "repetitions of every timed pair; the median is reported")
	fs.BoolVar(&cfg.quick, "quick", false, "small inputs: a smoke run, not figures to publish")
	fs.StringVar(&cfg.out, "out", "", "also write the table into this markdown file, between its bench markers (docs/BENCHMARKS.md)")
	fs.StringVar(&cfg.pgURL, "pg", firstNonEmpty(os.Getenv("SLUICE_BENCH_POSTGRES"), os.Getenv("SLUICE_TEST_POSTGRES"), "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"),
		"PostgreSQL to measure on (fresh schemas are created and dropped there); default $SLUICE_BENCH_POSTGRES, else $SLUICE_TEST_POSTGRES")
	fs.StringVar(&cfg.tmp, "tmp", "", "directory for the inputs and data dirs (default the system temp dir); a fresh subdirectory is removed at the end")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (to look at a failure)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q (flags only; -help lists them)", fs.Args())
	}
	if cfg.runs < 1 {
		return cfg, fmt.Errorf("-runs %d: want at least 1", cfg.runs)
	}
	cfg.args = args
	cfg.sizes = fullSizes
	if cfg.quick {
		cfg.sizes = quickSizes
	}
	if *only == "" {
		cfg.only = groups
	} else {
		for _, g := range strings.Split(*only, ",") {
			g = strings.TrimSpace(g)
			if !slices.Contains(groups, g) {
				return cfg, fmt.Errorf("-only %q: unknown group %q; want some of %s", *only, g, strings.Join(groups, ","))
			}
			if !slices.Contains(cfg.only, g) {
				cfg.only = append(cfg.only, g)
			}
		}
	}
	return cfg, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// runBench checks the tools, builds sluice, runs the selected groups in
// order and returns their results.
func runBench(ctx context.Context, cfg config, log io.Writer) (rep *report, err error) {
	b, err := newBench(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := b.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	started := time.Now()
	for _, g := range groups {
		if !slices.Contains(cfg.only, g) {
			continue
		}
		b.logf("== %s", g)
		t0 := time.Now()
		var rs []result
		switch g {
		case "pg":
			rs, err = b.postgres(ctx)
		case "seed":
			rs, err = b.seed(ctx)
		case "sqlite":
			rs, err = b.sqlite(ctx)
		case "curate":
			rs, err = b.curate(ctx)
		case "latency":
			rs, err = b.latency(ctx)
		case "memory":
			rs, err = b.memory(ctx)
		}
		if err != nil {
			if ctx.Err() != nil {
				err = errors.Join(err, ctx.Err())
			}
			return nil, fmt.Errorf("%s: %w", g, err)
		}
		b.logf("   %s took %s", g, time.Since(t0).Round(time.Second))
		b.report.results = append(b.report.results, rs...)
	}
	b.report.took = time.Since(started)
	b.logf("== all took %s", b.report.took.Round(time.Second))
	return &b.report, nil
}
