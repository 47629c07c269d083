package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/internal/testsvc"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/parquet-go/parquet-go"

	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/store/storetest"
)

// TB is what Run needs of a test: *testing.T, or the program's stand-in.
type TB interface {
	testsvc.TB
	Logf(format string, args ...any)
}

// Fault kinds.
const (
	KillRun    = "kill -9 run"
	KillWorker = "kill -9 worker"
	KillJob    = "kill -9 job process"
	Pause      = "SIGSTOP past the lease"
	PGOutage   = "PostgreSQL stopped"
	NATSCrash  = "NATS killed and restarted"
	RabbitKill = "RabbitMQ killed and restarted"
	DiskFull   = "store disk full"
)

// allKinds is every kind, in the order summaries list them.
var allKinds = []string{KillRun, KillWorker, KillJob, Pause, PGOutage, NATSCrash, RabbitKill, DiskFull}

// Kinds are the faults a run with this bus injects: RabbitMQ's only when
// it is the bus.
func (c Config) Kinds() []string {
	var out []string
	for _, k := range allKinds {
		if k != RabbitKill || c.Queue == "rabbitmq" {
			out = append(out, k)
		}
	}
	return out
}

// Config is one chaos run.
type Config struct {
	// Queue is the bus: "nats" (default; the private NATS server that also
	// carries the store's notifications) or "rabbitmq" (a private node).
	Queue     string
	Seed      int64
	Faults    int           // at least this many faults are injected
	PerRound  int           // faults per round; the promises are checked after each
	PGOutage  time.Duration // how long PostgreSQL stays down
	Objects   int           // raw objects landed per round
	Rows      int           // rows per raw object
	Groups    int           // curate groups landed per round
	GroupRows int           // rows per group's CSV
	LeaseTTL  time.Duration // SLUICE_LEASE_TTL of every process
	Settle    time.Duration // the longest a round may take to settle after its last fault
	Bin       string        // the sluice binary
	Out       io.Writer     // progress lines; nil: none
}

// FullConfig is `go run ./chaos`: at least 100 faults (faults, when
// given), PostgreSQL down 60s each time.
func FullConfig(seed int64, faults int) Config {
	if faults <= 0 {
		faults = 100
	}
	return Config{Seed: seed, Faults: faults, PerRound: 5, PGOutage: 60 * time.Second, Objects: 60, Rows: 50,
		Groups: 3, GroupRows: 20000, LeaseTTL: 3 * time.Second, Settle: 4 * time.Minute}
}

// ShortConfig is the short mode, inside the test suite's time budget.
func ShortConfig(seed int64, faults int) Config {
	if faults <= 0 {
		faults = 8
	}
	return Config{Seed: seed, Faults: faults, PerRound: 4, PGOutage: 5 * time.Second, Objects: 30, Rows: 20,
		Groups: 2, GroupRows: 5000, LeaseTTL: 3 * time.Second, Settle: 3 * time.Minute}
}

// Summary is what a chaos run found, read back from the warehouse, the
// state and the store.
type Summary struct {
	Seed             int64
	Queue            string
	Kinds            []string
	Rounds           int
	Faults           map[string]int
	Objects          int   // raw objects landed
	LoadedOnce       int   // ... each in the ledger once with all its rows
	Lost             int   // ... not loaded, or missing rows
	Duplicated       int   // ... in the ledger more than once, or rows twice
	GoodDeadLettered int   // dead letters (every input is good)
	Groups           int   // curate groups landed
	Curated          int   // ... with one SUCCEEDED run whose complete output is all the store holds
	WritesRefused    int64 // store writes the full disk refused
	Problems         []string
	Took             time.Duration
}

// OK reports whether every promise held.
func (s Summary) OK() bool {
	return len(s.Problems) == 0 && s.Lost == 0 && s.Duplicated == 0 && s.GoodDeadLettered == 0 &&
		s.LoadedOnce == s.Objects && s.Curated == s.Groups
}

func (s Summary) String() string {
	var b strings.Builder
	total := 0
	for _, n := range s.Faults {
		total += n
	}
	fmt.Fprintf(&b, "chaos: seed %d, bus %s, %d rounds, %d faults injected in %s\n", s.Seed, s.Queue, s.Rounds, total, s.Took.Round(time.Second))
	for _, k := range s.Kinds {
		fmt.Fprintf(&b, "  %-28s %4d\n", k, s.Faults[k])
	}
	fmt.Fprintf(&b, "store writes refused by the full disk: %d\n", s.WritesRefused)
	fmt.Fprintf(&b, "objects expected %d, loaded exactly once %d, lost %d, duplicated %d, good objects dead-lettered %d\n",
		s.Objects, s.LoadedOnce, s.Lost, s.Duplicated, s.GoodDeadLettered)
	fmt.Fprintf(&b, "groups expected %d, curated once with complete output %d\n", s.Groups, s.Curated)
	if s.OK() {
		b.WriteString("every promise held\n")
	} else {
		fmt.Fprintf(&b, "FAILED (replay with -seed %d):\n", s.Seed)
		for _, p := range s.Problems {
			fmt.Fprintf(&b, "  %s\n", p)
		}
	}
	return b.String()
}

// Run sets everything up, runs rounds of landing work and injecting faults
// until cfg.Faults faults are in, and checks the promises after each round.
// Set-up failures are tb.Fatal; broken promises are in the Summary.
func Run(ctx context.Context, tb TB, cfg Config) Summary {
	start := time.Now()
	if cfg.Seed == 0 {
		cfg.Seed = time.Now().UnixNano()
	}
	if cfg.Queue == "" {
		cfg.Queue = "nats"
	}
	h := setUp(ctx, tb, cfg)
	sum := Summary{Seed: cfg.Seed, Queue: cfg.Queue, Kinds: cfg.Kinds(), Faults: map[string]int{}}
	h.logf("seed %d: %d processes, store %s, PostgreSQL on :%d, NATS on :%d", cfg.Seed, len(h.procs), h.v.Endpoint, h.pg.Port, h.nats.Port)
	injected := 0
	for round := 1; injected < cfg.Faults && ctx.Err() == nil; round++ {
		sum.Rounds = round
		injected += h.round(ctx, round, sum.Faults)
		h.healAll()
		h.logf("round %d: %d faults so far; waiting for the work to settle", round, injected)
		deadline := time.Now().Add(cfg.Settle)
		var got Summary
		for {
			got = h.check(ctx)
			if got.OK() || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			time.Sleep(time.Second)
		}
		got.Seed, got.Queue, got.Kinds, got.Rounds, got.Faults = sum.Seed, sum.Queue, sum.Kinds, sum.Rounds, sum.Faults
		sum = got
		if !sum.OK() {
			sum.Problems = append(sum.Problems, fmt.Sprintf("round %d did not settle within %s", round, cfg.Settle))
			h.logf("round %d failed:\n%s\n%s", round, sum, h.logTails())
			break
		}
		h.logf("round %d settled: %d objects loaded exactly once, %d groups curated", round, sum.LoadedOnce, sum.Curated)
	}
	sum.Took, sum.WritesRefused = time.Since(start), h.proxy.refused.Load()
	return sum
}

// harness is the running set-up.
type harness struct {
	tb     TB
	cfg    Config
	rng    *rand.Rand
	v      *storetest.Versitygw
	proxy  *failingProxy
	pg     *testsvc.PG
	nats   *testsvc.NATS
	rabbit *testsvc.Rabbit // the bus, when cfg.Queue is rabbitmq
	conn   func(ctx context.Context) (*pgx.Conn, error)
	st     state.Store
	spec   string
	env    []string
	procs  []*proc
	deck   []string       // fault kinds still to deal: each kind once, in a random order, then again
	keys   []string       // raw objects landed
	groups map[string]int // group → rows landed
}

func (h *harness) logf(f string, args ...any) {
	if h.cfg.Out != nil {
		fmt.Fprintf(h.cfg.Out, time.Now().Format("15:04:05 ")+f+"\n", args...)
	}
}

const (
	bucket  = "lake"
	schema  = "chaos"
	subject = "lake.chaos.notifications"
)

func setUp(ctx context.Context, tb TB, cfg Config) *harness {
	h := &harness{tb: tb, cfg: cfg, rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5EED)), groups: map[string]int{}}
	h.pg = testsvc.StartPG(tb)
	h.nats = testsvc.StartNATS(tb)
	bus := h.nats.URL()
	if cfg.Queue == "rabbitmq" {
		h.rabbit = testsvc.StartRabbit(tb)
		bus = h.rabbit.URL()
	} else if cfg.Queue != "nats" {
		tb.Fatalf("queue %q: want nats or rabbitmq", cfg.Queue)
	}
	h.v = storetest.StartVersitygw(tb, "--event-nats-url", h.nats.URL(), "--event-nats-topic", subject)
	h.v.Bucket(tb, bucket)
	h.proxy = startFailingProxy(tb, h.v.Endpoint)
	h.conn = func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, h.pg.URL("")) }
	storeURL := "s3://" + bucket + "?endpoint=" + h.proxy.url + "&region=" + storetest.S3Region + "&use_path_style=true"
	spec := fmt.Sprintf(`name: chaos
store: %q
queue: %q
warehouse: %q
state: %q
notifications: {url: %q, key_encoding: raw}
reconcile_every: 20s
loads:
  items:
    on: {prefix: raw/}
    table: items
    columns: {id: bigint, round: bigint, v: text}
jobs:
  curate:
    on: {prefix: data/, suffix: .csv}
    settle: 300ms
    curate:
      input: "data/{{.Group}}/"
      columns: {id: int64, v: string}
      output: "curated/{{.Group}}/"
      max_rows_per_file: 2000
`, storeURL, bus, h.pg.URL(schema), h.pg.URL(schema+"_state"), h.nats.URL()+"?subject="+subject)
	h.spec = filepath.Join(tb.TempDir(), "pipeline.yaml")
	if err := os.WriteFile(h.spec, []byte(spec), 0o600); err != nil {
		tb.Fatal(err)
	}
	h.env = append(h.v.Env(), "SLUICE_LEASE_TTL="+cfg.LeaseTTL.String())
	// The first run creates the schemas, the bus stream and the inbox
	// before the others start and before anything lands.
	first := h.startProc("run-1", "run")
	h.waitFor(ctx, "the first run to create the notification inbox", 2*time.Minute, func() bool {
		return strings.Contains(first.logText(), "consuming") || h.inboxReady()
	})
	st, err := state.Open(ctx, h.pg.URL(schema+"_state"), tb.TempDir())
	if err != nil {
		tb.Fatalf("open the state: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	h.st = st
	h.startProc("run-2", "run")
	h.startProc("worker-1", "worker")
	h.startProc("worker-2", "worker")
	return h
}

// inboxReady reports whether the state schema exists, which the first run
// creates before it consumes.
func (h *harness) inboxReady() bool {
	return h.pg.Count(fmt.Sprintf("select count(*) from information_schema.tables where table_schema = '%s_state'", schema)) > 0 &&
		h.pg.Count(fmt.Sprintf("select count(*) from information_schema.tables where table_schema = '%s'", schema)) > 0
}

func (h *harness) waitFor(ctx context.Context, what string, limit time.Duration, ok func() bool) {
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			h.tb.Fatalf("waited %s for %s\n%s", limit, what, h.logTails())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// round lands one round's objects and groups in slices, injecting a fault
// after each slice but the last, and returns the faults injected.
func (h *harness) round(ctx context.Context, round int, faults map[string]int) int {
	c := h.cfg
	var work []func()
	for i := 0; i < c.Objects; i++ {
		key := fmt.Sprintf("raw/r%03d/o%04d.json", round, i)
		var b bytes.Buffer
		b.WriteString("[")
		for j := 0; j < c.Rows; j++ {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"id": %d, "round": %d, "v": "r%d-o%d-%d"}`, (round*100000+i)*1000+j, round, round, i, j)
		}
		b.WriteString("]")
		work = append(work, func() { h.put(ctx, key, b.Bytes()); h.keys = append(h.keys, key) })
	}
	for g := 0; g < c.Groups; g++ {
		group := fmt.Sprintf("r%03dg%02d", round, g)
		work = append(work, func() { h.landGroup(ctx, group) })
	}
	h.rng.Shuffle(len(work), func(i, j int) { work[i], work[j] = work[j], work[i] })
	parts := c.PerRound + 1
	n := 0
	for s := 0; s < parts; s++ {
		for _, w := range work[s*len(work)/parts : (s+1)*len(work)/parts] {
			w()
		}
		if s == parts-1 || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Duration(h.rng.IntN(1500)) * time.Millisecond)
		if kind := h.inject(ctx, fmt.Sprintf("r%03dx%02d", round, s)); kind != "" {
			faults[kind]++
			n++
		}
	}
	return n
}

// landGroup lands a curate group's CSV.
func (h *harness) landGroup(ctx context.Context, group string) {
	var b bytes.Buffer
	b.WriteString("id,v\n")
	for j := 0; j < h.cfg.GroupRows; j++ {
		fmt.Fprintf(&b, "%d,%s-%d\n", j, group, j)
	}
	h.put(ctx, "data/"+group+"/part.csv", b.Bytes())
	h.groups[group] = h.cfg.GroupRows
}

// waitJob lands a group of its own and waits for a job process to run,
// so that the fault meets a job at work; it returns the job processes.
func (h *harness) waitJob(ctx context.Context, group string) []int {
	h.landGroup(ctx, group)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if pids := h.jobPIDs(); len(pids) > 0 {
			return pids
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// put lands an object as another program would: straight into versitygw,
// which announces it on NATS. It retries while NATS is down (versitygw
// fails the write when it cannot publish? no: it writes and drops the
// event, which the reconcile finds) or the server is busy.
func (h *harness) put(ctx context.Context, key string, body []byte) {
	var err error
	for try := 0; try < 20; try++ {
		_, err = h.v.Client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)})
		if err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	h.tb.Fatalf("land %s: %v", key, err)
}

// inject injects one fault, of the next kind dealt from a shuffled deck of
// all kinds (so every kind comes up, in a random order), and returns its kind, or ""
// when none could be. Faults that need work under way to mean anything (a
// job to kill, writes to refuse) land a group of their own, named group.
func (h *harness) inject(ctx context.Context, group string) string {
	if len(h.deck) == 0 {
		h.deck = h.cfg.Kinds()
		h.rng.Shuffle(len(h.deck), func(i, j int) { h.deck[i], h.deck[j] = h.deck[j], h.deck[i] })
	}
	kind := h.deck[0]
	h.deck = h.deck[1:]
	switch kind {
	case KillRun, KillWorker:
		role := "run"
		if kind == KillWorker {
			role = "worker"
		}
		p := h.pick(role)
		h.logf("fault: %s %s (pid %d)", kind, p.name, p.pid())
		p.kill()
		time.Sleep(time.Duration(300+h.rng.IntN(1200)) * time.Millisecond)
		p.restart(h)
	case KillJob:
		pids := h.jobPIDs()
		if len(pids) == 0 {
			pids = h.waitJob(ctx, group)
		}
		if len(pids) == 0 {
			h.logf("fault: %s: no job process ran within 20s of landing group %s", kind, group)
			return ""
		}
		// Let it work a little: a kill at start, mid-write or at commit.
		time.Sleep(time.Duration(h.rng.IntN(800)) * time.Millisecond)
		pid := pids[h.rng.IntN(len(pids))]
		h.logf("fault: %s (pid %d)", kind, pid)
		syscall.Kill(pid, syscall.SIGKILL)
	case Pause:
		// Half the time a process while it runs a job, else any.
		p := h.pick("")
		if h.rng.IntN(2) == 0 && len(h.waitJob(ctx, group)) > 0 {
			for _, q := range h.procs {
				if len(h.childJobs(q.pid())) > 0 {
					p = q
					break
				}
			}
		}
		jobs := h.childJobs(p.pid())
		h.logf("fault: %s: %s (pid %d) and its job processes %v for %s", kind, p.name, p.pid(), jobs, 2*h.cfg.LeaseTTL)
		p.signal(syscall.SIGSTOP)
		for _, j := range jobs {
			syscall.Kill(j, syscall.SIGSTOP)
		}
		time.Sleep(2*h.cfg.LeaseTTL + time.Duration(h.rng.IntN(1000))*time.Millisecond)
		p.signal(syscall.SIGCONT)
		for _, j := range jobs {
			syscall.Kill(j, syscall.SIGCONT)
		}
	case PGOutage:
		h.logf("fault: %s for %s", kind, h.cfg.PGOutage)
		h.pg.Stop()
		time.Sleep(h.cfg.PGOutage)
		h.pg.Start()
	case NATSCrash, RabbitKill:
		var srv interface {
			Kill()
			Start()
		} = h.nats
		if kind == RabbitKill {
			srv = h.rabbit
		}
		down := time.Duration(500+h.rng.IntN(2500)) * time.Millisecond
		h.logf("fault: %s (down %s, then its start)", kind, down)
		srv.Kill()
		time.Sleep(down)
		srv.Start()
	case DiskFull:
		d := time.Duration(2000+h.rng.IntN(4000)) * time.Millisecond
		before := h.proxy.refused.Load()
		h.proxy.full.Store(true)
		h.waitJob(ctx, group) // its outputs meet the full disk
		time.Sleep(d)
		h.proxy.full.Store(false)
		h.logf("fault: %s for %s: %d writes refused", kind, d, h.proxy.refused.Load()-before)
	}
	return kind
}

// pick returns a random process of role ("" for any).
func (h *harness) pick(role string) *proc {
	var ps []*proc
	for _, p := range h.procs {
		if role == "" || p.role == role {
			ps = append(ps, p)
		}
	}
	return ps[h.rng.IntN(len(ps))]
}

// healAll makes sure every process runs, as a supervisor would.
func (h *harness) healAll() {
	h.proxy.full.Store(false)
	for _, p := range h.procs {
		p.signal(syscall.SIGCONT)
		if !p.running() {
			p.restart(h)
		}
	}
}

// jobPIDs lists the job processes (sluice job exec) of every process.
func (h *harness) jobPIDs() []int {
	var out []int
	for _, p := range h.procs {
		out = append(out, h.childJobs(p.pid())...)
	}
	return out
}

// childJobs lists the `sluice job exec` processes whose parent is pid.
func (h *harness) childJobs(pid int) []int {
	var out []int
	for _, c := range testsvc.Children(pid) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c))
		if bytes.Contains(cmdline, []byte("job\x00exec")) {
			out = append(out, c)
		}
	}
	return out
}

func (h *harness) logTails() string {
	var b strings.Builder
	for _, p := range h.procs {
		l := p.logText()
		if len(l) > 3000 {
			l = "…" + l[len(l)-3000:]
		}
		fmt.Fprintf(&b, "--- %s (pid %d)\n%s\n", p.name, p.pid(), l)
	}
	return b.String()
}

// check reads back what the promises are about.
func (h *harness) check(ctx context.Context) Summary {
	s := Summary{Objects: len(h.keys), Groups: len(h.groups)}
	problem := func(f string, args ...any) { s.Problems = append(s.Problems, fmt.Sprintf(f, args...)) }
	conn, err := h.conn(ctx)
	if err != nil {
		problem("connect to PostgreSQL: %v", err)
		return s
	}
	defer conn.Close(context.Background())
	// Objects: each key's ledger rows and table rows.
	ledger := map[string]int{}
	rows, err := conn.Query(ctx, "select object_key, count(*) from "+schema+"._sluice_ledger where table_name = 'items' group by object_key")
	if err != nil {
		problem("read the ledger: %v", err)
		return s
	}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			problem("read the ledger: %v", err)
			return s
		}
		ledger[k] = n
	}
	rows.Close()
	perObject := map[string][2]int{} // "rNNN/oNNNN" → rows, distinct ids
	rows, err = conn.Query(ctx, "select split_part(v, '-', 1) || '-' || split_part(v, '-', 2), count(*), count(distinct id) from "+schema+".items group by 1")
	if err != nil {
		problem("read the rows: %v", err)
		return s
	}
	for rows.Next() {
		var k string
		var n, d int
		if err := rows.Scan(&k, &n, &d); err != nil {
			problem("read the rows: %v", err)
			return s
		}
		perObject[k] = [2]int{n, d}
	}
	rows.Close()
	for _, key := range h.keys {
		var r, o int
		fmt.Sscanf(key, "raw/r%03d/o%04d.json", &r, &o)
		got := perObject[fmt.Sprintf("r%d-o%d", r, o)]
		switch {
		case ledger[key] > 1 || got[0] > got[1]:
			s.Duplicated++
		case ledger[key] == 1 && got[0] == h.cfg.Rows && got[1] == h.cfg.Rows:
			s.LoadedOnce++
		default:
			s.Lost++
		}
	}
	if s.Lost > 0 || s.Duplicated > 0 {
		return s // still settling, most likely; the caller waits
	}
	// Dead letters: every input is good, so there must be none.
	st := h.st
	dls, err := st.DeadLetters(ctx)
	if err != nil {
		problem("read the dead letters: %v", err)
		return s
	}
	s.GoodDeadLettered = len(dls)
	for _, d := range dls {
		problem("dead letter %d: %s %s after %d attempts: %s", d.ID, d.Target, d.Key, d.Attempts, d.Reason)
	}
	// Groups: one SUCCEEDED run; the store holds exactly its outputs (no
	// part of another run, nothing staged visible), _SUCCESS among them,
	// and the parts hold every row.
	for group, want := range h.groups {
		rs, err := st.ListRuns(ctx, job.RunFilter{Rule: "curate", Group: group, States: []job.State{job.Succeeded}})
		if err != nil {
			problem("runs of %s: %v", group, err)
			continue
		}
		if len(rs) != 1 {
			if len(rs) > 1 {
				problem("group %s has %d SUCCEEDED runs", group, len(rs))
			}
			continue
		}
		stored := h.list(ctx, "curated/"+group+"/")
		outputs := slices.Clone(rs[0].Outputs)
		sort.Strings(outputs)
		if !slices.Equal(stored, outputs) {
			problem("group %s: the store holds %v, its SUCCEEDED run %s wrote %v", group, stored, rs[0].ID, outputs)
			continue
		}
		n, hasSuccess := 0, false
		for _, k := range stored {
			if strings.HasSuffix(k, "/_SUCCESS") {
				hasSuccess = true
				continue
			}
			rows, err := parquetRows(filepath.Join(h.v.Dir, bucket, filepath.FromSlash(k)))
			if err != nil {
				problem("group %s: read %s: %v", group, k, err)
			}
			n += rows
		}
		if !hasSuccess || n != want {
			problem("group %s: _SUCCESS %v, %d rows in its parts, want %d", group, hasSuccess, n, want)
			continue
		}
		s.Curated++
	}
	return s
}

func (h *harness) list(ctx context.Context, prefix string) []string {
	var keys []string
	p := s3.NewListObjectsV2Paginator(h.v.Client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return []string{"list: " + err.Error()}
		}
		for _, o := range page.Contents {
			keys = append(keys, *o.Key)
		}
	}
	sort.Strings(keys)
	return keys
}

// parquetRows reads a Parquet file's row count from its footer.
func parquetRows(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	pf, err := parquet.OpenFile(f, fi.Size())
	if err != nil {
		return 0, err
	}
	return int(pf.NumRows()), nil
}

// proc is one sluice process with its own data dir, as on its own machine.
type proc struct {
	name, role, dataDir, log string
	mu                       sync.Mutex
	cmd                      *exec.Cmd
	done                     chan struct{}
}

func (h *harness) startProc(name, role string) *proc {
	p := &proc{name: name, role: role, dataDir: h.tb.TempDir(), log: filepath.Join(h.tb.TempDir(), name+".log")}
	h.procs = append(h.procs, p)
	p.restart(h)
	h.tb.Cleanup(func() {
		p.signal(syscall.SIGCONT)
		p.signal(syscall.SIGTERM)
		select {
		case <-p.doneCh():
		case <-time.After(20 * time.Second):
			p.kill()
		}
	})
	return p
}

// restart starts the process again (its first start, or after a kill).
func (p *proc) restart(h *harness) {
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		h.tb.Fatal(err)
	}
	cmd := exec.Command(h.cfg.Bin, p.role, "--data-dir="+p.dataDir, "-f", h.spec)
	cmd.Env = append(os.Environ(), h.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		h.tb.Fatalf("start %s: %v", p.name, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(done) }()
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
}

func (p *proc) doneCh() chan struct{} { p.mu.Lock(); defer p.mu.Unlock(); return p.done }
func (p *proc) pid() int              { p.mu.Lock(); defer p.mu.Unlock(); return p.cmd.Process.Pid }
func (p *proc) signal(s syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cmd.Process.Signal(s)
}
func (p *proc) kill() { p.signal(syscall.SIGKILL); <-p.doneCh() }
func (p *proc) running() bool {
	select {
	case <-p.doneCh():
		return false
	default:
		return true
	}
}
func (p *proc) logText() string { b, _ := os.ReadFile(p.log); return string(b) }

// failingProxy forwards to versitygw and, while full is set, refuses every
// write as an S3-compatible server on a full disk does (MinIO's 507
// XMinioStorageFull): the store's disk is full for sluice's writes (raw
// objects, curated parts, _SUCCESS, job logs).
type failingProxy struct {
	url     string
	full    atomic.Bool
	refused atomic.Int64
}

func startFailingProxy(tb TB, target string) *failingProxy {
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatal(err)
	}
	p := &failingProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p.full.Load() && (r.Method == http.MethodPut || r.Method == http.MethodPost) {
			p.refused.Add(1)
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusInsufficientStorage)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>XMinioStorageFull</Code><Message>Storage backend has reached its minimum free drive threshold. Please delete a few objects to proceed.</Message></Error>`)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
	p.url = "http://" + ln.Addr().String()
	return p
}
