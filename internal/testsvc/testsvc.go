// Package testsvc starts servers of a test's own — PostgreSQL, NATS
// JetStream, RabbitMQ — which the test may stop, kill and restart without
// touching the machine's: a fresh data directory, free loopback ports, and
// (RabbitMQ) its own node name and Erlang cookie. The e2e tests, the queue
// tests and the chaos suite (./chaos, a program) use it, so it takes a TB,
// which *testing.T and the chaos program's stand-in both are. It needs what
// ./scripts/test.sh installs, and runs as root (initdb as postgres).
package testsvc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// TB is what the starters need of a test.
type TB interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	TempDir() string
	Cleanup(func())
}

// FreePort returns a loopback TCP port nothing listens on now.
func FreePort(tb TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitPort(tb TB, port int, limit time.Duration, exited <-chan struct{}, what string) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			tb.Fatalf("%s exited during start", what)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s did not listen on 127.0.0.1:%d within %s", what, port, limit)
		}
	}
}

// PG is a PostgreSQL cluster of the test's own: initdb'd on a free port
// (trust auth, user postgres, fsync off), removed at the end.
type PG struct {
	tb       TB
	bin, dir string
	Port     int
	log      string
}

// StartPG initdb's a cluster in a temporary directory owned by the
// postgres user (initdb refuses to run as root) and starts it.
func StartPG(tb TB) *PG {
	tb.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		tb.Fatal("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (./scripts/test.sh installs them)")
	}
	sort.Strings(bins)
	p := &PG{tb: tb, bin: filepath.Dir(bins[len(bins)-1])}
	// Not tb.TempDir(): a test's is inside a 0700 directory the postgres
	// user cannot enter.
	dir, err := os.MkdirTemp("", "sluice-pg-")
	if err != nil {
		tb.Fatal(err)
	}
	p.dir, p.log = filepath.Join(dir, "data"), filepath.Join(dir, "server.log")
	u, err := user.Lookup("postgres")
	if err != nil {
		tb.Fatalf("no postgres user to run a private PostgreSQL as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		p.pgctl("stop", "-m", "immediate", "-w")
		os.RemoveAll(dir)
	})
	if out, err := p.as(filepath.Join(p.bin, "initdb"), "-D", p.dir, "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		tb.Fatalf("initdb: %v\n%s", err, out)
	}
	p.Port = FreePort(tb)
	p.Start()
	return p
}

func (p *PG) as(name string, args ...string) *exec.Cmd {
	return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
}

func (p *PG) pgctl(args ...string) ([]byte, error) {
	return p.as(filepath.Join(p.bin, "pg_ctl"), append([]string{"-D", p.dir, "-l", p.log}, args...)...).CombinedOutput()
}

// Start starts the server and waits until it accepts connections.
func (p *PG) Start() {
	p.tb.Helper()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off -c max_connections=200", p.Port, filepath.Dir(p.dir))
	if out, err := p.pgctl("start", "-w", "-t", "60", "-o", opts); err != nil {
		log, _ := os.ReadFile(p.log)
		if len(log) > 2000 {
			log = log[len(log)-2000:]
		}
		p.tb.Fatalf("start private PostgreSQL: %v\n%s\n%s", err, out, log)
	}
}

// Stop stops the server at once, as a crash or an outage would.
func (p *PG) Stop() {
	p.tb.Helper()
	if out, err := p.pgctl("stop", "-m", "immediate", "-w"); err != nil {
		p.tb.Fatalf("stop private PostgreSQL: %v\n%s", err, out)
	}
}

// URL is a sluice warehouse or state URL for schema ("": none) on it.
func (p *PG) URL(schema string) string {
	u := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.Port)
	if schema != "" {
		u += "&schema=" + schema
	}
	return u
}

// Count runs a count query; -1 when the server is down or the query fails.
func (p *PG) Count(q string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.URL(""))
	if err != nil {
		return -1
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, q).Scan(&n); err != nil {
		return -1
	}
	return n
}

// NATS is a nats-server with JetStream of the test's own, storing under a
// temporary directory, so a kill and a restart keep its streams.
type NATS struct {
	tb       TB
	bin, dir string
	Port     int
	log      *os.File
	mu       sync.Mutex
	cmd      *exec.Cmd
	exited   chan struct{}
}

// StartNATS starts nats-server (Debian's package) on a free port.
func StartNATS(tb TB) *NATS {
	tb.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		tb.Fatal("nats-server is not installed: ./scripts/test.sh installs it from Debian's packages")
	}
	n := &NATS{tb: tb, bin: bin, dir: tb.TempDir(), Port: FreePort(tb)}
	if n.log, err = os.Create(filepath.Join(n.dir, "nats.log")); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { n.Kill(); n.log.Close() })
	n.Start()
	return n
}

// URL is nats://127.0.0.1:PORT.
func (n *NATS) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.Port) }

// Start starts the server and waits for its port.
func (n *NATS) Start() {
	n.tb.Helper()
	cmd := exec.Command(n.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(n.Port), "-js", "-sd", filepath.Join(n.dir, "store"))
	cmd.Stdout, cmd.Stderr = n.log, n.log
	if err := cmd.Start(); err != nil {
		n.tb.Fatalf("start nats-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	n.mu.Lock()
	n.cmd, n.exited = cmd, exited
	n.mu.Unlock()
	waitPort(n.tb, n.Port, 30*time.Second, exited, "nats-server (log "+n.log.Name()+")")
}

// Kill kills the server (SIGKILL) and waits for it to exit.
func (n *NATS) Kill() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-exited
}

// Rabbit is a RabbitMQ node of the test's own: its own node name, ports,
// data and log directories, config and Erlang cookie, so stopping it never
// touches the machine's broker.
type Rabbit struct {
	tb     TB
	Name   string
	Port   int
	env    []string
	out    *os.File
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// rabbitBin finds a RabbitMQ script. Debian's /usr/sbin wrappers re-run the
// scripts as the rabbitmq user with its cookie and the machine's
// rabbitmq-env.conf; the scripts behind them take the environment as is.
func rabbitBin(tb TB, name string) string {
	tb.Helper()
	if p := filepath.Join("/usr/lib/rabbitmq/bin", name); fileExists(p) {
		return p
	}
	p, err := exec.LookPath(name)
	if err != nil {
		tb.Fatalf("%s not found: install RabbitMQ (Debian package rabbitmq-server; ./scripts/test.sh does it)", name)
	}
	return p
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// StartRabbit starts a node and waits until it has started.
func StartRabbit(tb TB) *Rabbit {
	tb.Helper()
	dir := tb.TempDir()
	n := &Rabbit{tb: tb, Port: FreePort(tb)}
	n.Name = fmt.Sprintf("sluicetest%d@localhost", n.Port)
	for f, body := range map[string]string{
		"rabbitmq.conf":   fmt.Sprintf("listeners.tcp.local = 127.0.0.1:%d\n", n.Port),
		"enabled_plugins": "[].\n",
		"env.conf":        "",
	} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "home"), 0o700); err != nil {
		tb.Fatal(err)
	}
	n.env = append(os.Environ(),
		"HOME="+filepath.Join(dir, "home"), // a private Erlang cookie
		"RABBITMQ_NODENAME="+n.Name,
		fmt.Sprintf("RABBITMQ_NODE_PORT=%d", n.Port),
		fmt.Sprintf("RABBITMQ_DIST_PORT=%d", FreePort(tb)),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "env.conf"), // not the machine's rabbitmq-env.conf
		"ERL_EPMD_ADDRESS=127.0.0.1",
	)
	out, err := os.Create(filepath.Join(dir, "rabbitmq.out"))
	if err != nil {
		tb.Fatal(err)
	}
	n.out = out
	tb.Cleanup(func() { n.shutdown(); out.Close() })
	n.Start()
	return n
}

// URL is the node's AMQP URL (guest/guest).
func (n *Rabbit) URL() string { return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", n.Port) }

// Start runs rabbitmq-server in the foreground, in a process group of its
// own, and waits for its AMQP port and rabbitmqctl await_startup.
func (n *Rabbit) Start() {
	n.tb.Helper()
	cmd := exec.Command(rabbitBin(n.tb, "rabbitmq-server"))
	cmd.Env, cmd.Stdout, cmd.Stderr = n.env, n.out, n.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		n.tb.Fatalf("start private RabbitMQ node %s: %v", n.Name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	n.mu.Lock()
	n.cmd, n.exited = cmd, exited
	n.mu.Unlock()
	waitPort(n.tb, n.Port, 2*time.Minute, exited, "private RabbitMQ node "+n.Name+" (output "+n.out.Name()+")")
	if err := n.Ctl("await_startup"); err != nil {
		n.tb.Fatal(err)
	}
}

// Ctl runs rabbitmqctl against the node.
func (n *Rabbit) Ctl(args ...string) error {
	cmd := exec.Command(rabbitBin(n.tb, "rabbitmqctl"), append([]string{"-n", n.Name}, args...)...)
	cmd.Env = n.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("rabbitmqctl -n %s %s: %v:\n%s", n.Name, strings.Join(args, " "), err, out)
	}
	return nil
}

// Stop stops the node with rabbitmqctl stop and waits for it to exit.
func (n *Rabbit) Stop() {
	n.tb.Helper()
	if err := n.Ctl("stop"); err != nil {
		n.tb.Fatal(err)
	}
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		n.tb.Fatalf("private RabbitMQ node %s still running 60s after rabbitmqctl stop", n.Name)
	}
}

// Kill kills the node and every process it started at once, as a crash of
// its machine would (its process group is not all of them: the disk
// monitor runs in a session of its own).
func (n *Rabbit) Kill() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	for _, pid := range Descendants(cmd.Process.Pid) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

// shutdown stops the node if it still runs: rabbitmqctl stop, then Kill.
func (n *Rabbit) shutdown() {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = n.Ctl("stop")
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		n.Kill()
	}
}

// Parent returns the parent process id of pid (0 if unknown), from
// /proc/PID/stat.
func Parent(pid int) int {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...: comm may hold spaces, so cut after ')'.
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

// children maps each process id to its children's, from /proc.
func children() map[int][]int {
	out := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cpid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid := Parent(cpid); ppid != 0 {
			out[ppid] = append(out[ppid], cpid)
		}
	}
	return out
}

// Children lists the processes whose parent is pid.
func Children(pid int) []int { return children()[pid] }

// Descendants lists the processes below pid: children, theirs, and so on.
func Descendants(pid int) []int {
	kids := children()
	var out []int
	for queue := kids[pid]; len(queue) > 0; queue = queue[1:] {
		out = append(out, queue[0])
		queue = append(queue, kids[queue[0]]...)
	}
	return out
}
