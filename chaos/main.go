// Command chaos injects faults into a distributed sluice set-up and checks
// every promise against the store and the warehouse after each round: each
// object loaded exactly once, no good object dead-lettered, each group
// curated once with complete output and nothing half-written visible, with
// no manual step.
//
// The set-up is what `sluice run` and `sluice worker` meet across machines:
// two runs and two workers, each with its own data dir, sharing a private
// PostgreSQL (warehouse and state), a private NATS JetStream server (the
// bus, and the store's notifications), and versitygw (a real S3 server)
// behind a proxy that can fail writes as a full disk does. The faults, at
// random points while objects and groups land (-queue rabbitmq: the bus is
// a private RabbitMQ node instead): kill -9 of a run, a worker
// or a job process (restarted, as systemd would); SIGSTOP of a run or a
// worker and its jobs past the lease, then SIGCONT; PostgreSQL stopped
// (60s; 5s in the short mode) and started again; NATS killed and restarted;
// the store's disk full for a few seconds.
//
//	go run ./chaos                 # 100 faults at least, a random seed
//	go run ./chaos -seed 42        # replays the run of seed 42
//	go run ./chaos -short          # the short mode the tests run in CI
//	go run ./chaos -queue rabbitmq # RabbitMQ as the bus, killed and restarted too
//
// It needs what ./scripts/test.sh installs: PostgreSQL's server binaries,
// nats-server and versitygw. It runs as root (initdb as the postgres user).
// The summary's figures count objects and rows read back from the
// warehouse and the store; the exit status is 1 if any promise broke.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	var cfg Config
	short := flag.Bool("short", false, "the short mode CI runs: few faults, a 5s PostgreSQL outage")
	flag.Int64Var(&cfg.Seed, "seed", 0, "the random seed (0: a new one, printed); the same seed replays a run's choices")
	flag.IntVar(&cfg.Faults, "faults", 0, "inject at least this many faults (default 100; 8 with -short)")
	queue := flag.String("queue", "nats", "the bus: nats or rabbitmq (a private node; NATS still carries the store's notifications)")
	keep := flag.Bool("keep", false, "keep the temporary directories (logs, data dirs) and print where")
	flag.Parse()
	if *short {
		cfg = ShortConfig(cfg.Seed, cfg.Faults)
	} else {
		cfg = FullConfig(cfg.Seed, cfg.Faults)
	}
	cfg.Out, cfg.Queue = os.Stdout, *queue

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	tb := newProgramTB(*keep)
	code := 0
	func() {
		defer tb.finish(&code)
		bin := filepath.Join(tb.TempDir(), "sluice")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/sluicehq/sluice/cmd/sluice")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			tb.Fatalf("build sluice: %v\n%s", err, out)
		}
		cfg.Bin = bin
		sum := Run(ctx, tb, cfg)
		fmt.Println(sum)
		if !sum.OK() {
			code = 1
		}
	}()
	os.Exit(code)
}

// programTB stands in for *testing.T in the program: Fatal stops the run
// (a panic finish recovers), cleanups run last-first.
type programTB struct {
	keep     bool
	dirs     []string
	cleanups []func()
}

type fatal struct{ msg string }

func newProgramTB(keep bool) *programTB { return &programTB{keep: keep} }

func (p *programTB) Helper() {}
func (p *programTB) Logf(f string, args ...any) {
	fmt.Printf(time.Now().Format("15:04:05 ")+f+"\n", args...)
}
func (p *programTB) Fatal(args ...any) { panic(fatal{fmt.Sprint(args...)}) }
func (p *programTB) Fatalf(f string, args ...any) {
	panic(fatal{fmt.Sprintf(f, args...)})
}
func (p *programTB) Cleanup(f func()) { p.cleanups = append(p.cleanups, f) }
func (p *programTB) TempDir() string {
	d, err := os.MkdirTemp("", "sluice-chaos-")
	if err != nil {
		panic(fatal{err.Error()})
	}
	p.dirs = append(p.dirs, d)
	return d
}

// finish runs the cleanups and turns a Fatal into exit status 1.
func (p *programTB) finish(code *int) {
	r := recover()
	for i := len(p.cleanups) - 1; i >= 0; i-- {
		p.cleanups[i]()
	}
	if p.keep {
		fmt.Println("kept:", p.dirs)
	} else {
		for _, d := range p.dirs {
			os.RemoveAll(d)
		}
	}
	if r != nil {
		f, ok := r.(fatal)
		if !ok {
			panic(r)
		}
		fmt.Fprintln(os.Stderr, "chaos:", f.msg)
		*code = 1
	}
}
