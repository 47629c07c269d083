package rabbitqueue

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/queue/driver"
)

// privateNode is a RabbitMQ node of the test's own: its own node name,
// ports, data and log directories, config and Erlang cookie, so stopping it
// never touches the machine's broker.
type privateNode struct {
	t        *testing.T
	dir      string
	name     string
	port     int
	env      []string
	cmd      *exec.Cmd
	out      *bytes.Buffer
	exited   chan struct{}
	startErr error
}

// rabbitBin finds a RabbitMQ script. Debian's /usr/sbin wrappers re-run the
// scripts as the rabbitmq user with its cookie and the machine's
// rabbitmq-env.conf; the scripts behind them take the environment as is.
func rabbitBin(name string) (string, error) {
	if p := filepath.Join("/usr/lib/rabbitmq/bin", name); fileExists(p) {
		return p, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found: install RabbitMQ (Debian package rabbitmq-server; scripts/test.sh does it)", name)
	}
	return p, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startPrivateNode(t *testing.T) *privateNode {
	t.Helper()
	dir := t.TempDir()
	n := &privateNode{t: t, dir: dir, name: "sluicetest" + strings.ToLower(rand.Text())[:8] + "@localhost", port: freePort(t)}
	dist := freePort(t)
	files := map[string]string{
		"rabbitmq.conf":   fmt.Sprintf("listeners.tcp.local = 127.0.0.1:%d\n", n.port),
		"enabled_plugins": "[].\n",
		"env.conf":        "",
	}
	for f, body := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "home"), 0o700); err != nil {
		t.Fatal(err)
	}
	n.env = append(os.Environ(),
		"HOME="+filepath.Join(dir, "home"), // a private Erlang cookie
		"RABBITMQ_NODENAME="+n.name,
		fmt.Sprintf("RABBITMQ_NODE_PORT=%d", n.port),
		fmt.Sprintf("RABBITMQ_DIST_PORT=%d", dist),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "advanced.config"),
		"RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_CONF_ENV_FILE="+filepath.Join(dir, "env.conf"), // not the machine's rabbitmq-env.conf
		"ERL_EPMD_ADDRESS=127.0.0.1",
	)
	t.Cleanup(n.kill)
	n.start()
	return n
}

func (n *privateNode) url() string { return fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/", n.port) }

// start runs rabbitmq-server in the foreground and waits for its AMQP port.
func (n *privateNode) start() {
	n.t.Helper()
	bin, err := rabbitBin("rabbitmq-server")
	if err != nil {
		n.t.Fatal(err)
	}
	n.out = &bytes.Buffer{}
	n.cmd = exec.Command(bin)
	n.cmd.Env, n.cmd.Stdout, n.cmd.Stderr = n.env, n.out, n.out
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		n.t.Fatalf("start private RabbitMQ node %s: %v", n.name, err)
	}
	n.exited = make(chan struct{})
	go func() { n.startErr = n.cmd.Wait(); close(n.exited) }()
	deadline := time.Now().Add(120 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n.port), time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-n.exited:
			n.t.Fatalf("private RabbitMQ node %s exited during start (%v):\n%s", n.name, n.startErr, n.out)
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("private RabbitMQ node %s did not open port %d within 120s:\n%s", n.name, n.port, n.out)
		}
	}
	if err := n.ctl("await_startup"); err != nil {
		n.t.Fatal(err)
	}
}

func (n *privateNode) ctl(args ...string) error {
	bin, err := rabbitBin("rabbitmqctl")
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, append([]string{"-n", n.name}, args...)...)
	cmd.Env = n.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("rabbitmqctl -n %s %s: %v:\n%s", n.name, strings.Join(args, " "), err, out)
	}
	return nil
}

// stop stops the node with rabbitmqctl stop and waits for it to exit.
func (n *privateNode) stop() {
	n.t.Helper()
	if err := n.ctl("stop"); err != nil {
		n.t.Fatal(err)
	}
	select {
	case <-n.exited:
	case <-time.After(60 * time.Second):
		n.t.Fatalf("private RabbitMQ node %s still running 60s after rabbitmqctl stop", n.name)
	}
}

// kill stops the node if it still runs: rabbitmqctl stop, then its own
// process group.
func (n *privateNode) kill() {
	if n.cmd == nil || n.exited == nil {
		return
	}
	select {
	case <-n.exited:
		return
	default:
	}
	_ = n.ctl("stop")
	select {
	case <-n.exited:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-n.cmd.Process.Pid, syscall.SIGKILL)
		<-n.exited
	}
}

// A broker restart keeps published messages, acks and dead letters; the
// topic and its subscription reconnect by themselves, a publish during the
// outage fails as transient, and the message held unacked when the broker
// stopped comes back with its count raised.
func TestBrokerRestartKeepsMessagesAndAcksAndTheDriverReconnects(t *testing.T) {
	n := startPrivateNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	top, err := Open(ctx, n.url(), Options{Exchange: "sluice.restart"})
	if err != nil {
		t.Fatal(err)
	}
	defer top.Close()
	s, err := top.Subscribe(ctx, "loader", driver.SubscriptionOptions{AckWait: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{"acked", "held", "waiting", "dead"} {
		if err := top.Publish(ctx, []byte(b), map[string]string{"Body": b}); err != nil {
			t.Fatalf("publish %q: %v", b, err)
		}
	}
	recv := func(want string) *driver.Message {
		t.Helper()
		rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
		defer rcancel()
		m, err := s.Receive(rctx)
		if err != nil {
			t.Fatalf("receive %q: %v", want, err)
		}
		if string(m.Body) != want {
			t.Fatalf("received %q, want %q", m.Body, want)
		}
		return m
	}
	a := recv("acked")
	if err := s.Ack(ctx, a); err != nil {
		t.Fatal(err)
	}
	held := recv("held")
	w := recv("waiting")
	if err := s.Nack(ctx, w, 0); err != nil { // republished: stays first-in-line after "dead"
		t.Fatal(err)
	}
	d := recv("dead")
	if err := s.DeadLetter(ctx, d, "bad row"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Pending(ctx); err != nil || got != 2 {
		t.Fatalf("Pending before the restart = %d, %v; want 2 (held and waiting)", got, err)
	}

	n.stop()
	pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
	err = top.Publish(pctx, []byte("during outage"), nil)
	pcancel()
	if err == nil {
		t.Fatal("publish with the broker stopped succeeded")
	}
	if !fault.IsTransient(err) {
		t.Errorf("publish with the broker stopped failed with %v, want a transient error", err)
	}
	if err := s.Ack(ctx, held); err == nil || !errors.Is(err, ErrNotHeld) {
		t.Errorf("ack of a message held across the broker stop = %v, want ErrNotHeld (the broker redelivers it)", err)
	}
	n.start()

	// The same Topic and subscription work again once reconnected.
	got := map[string]int{}
	for range 2 {
		rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
		m, err := s.Receive(rctx)
		rcancel()
		if err != nil {
			t.Fatalf("receive after the broker restart: %v", err)
		}
		got[string(m.Body)] = m.Deliveries
		if string(m.Body) == "held" && m.ID != held.ID {
			t.Errorf("message held changed ID across the restart: %s, was %s", m.ID, held.ID)
		}
		if err := s.Ack(ctx, m); err != nil {
			t.Fatalf("ack after the restart: %v", err)
		}
	}
	if want := map[string]int{"held": 2, "waiting": 2}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the restart received body->Deliveries %v, want %v (acked and dead-lettered messages must not return)", got, want)
	}
	if err := top.Publish(ctx, []byte("after"), nil); err != nil {
		t.Fatalf("publish after the broker restart: %v", err)
	}
	recv("after")
	dls, err := top.DeadLetters(ctx)
	if err != nil {
		t.Fatalf("dead letters after the restart: %v", err)
	}
	if len(dls) != 1 || string(dls[0].Body) != "dead" || dls[0].Reason != "bad row" || dls[0].ID != d.ID {
		t.Errorf("dead letters after the restart = %+v, want message %s %q with reason %q", dls, d.ID, "dead", "bad row")
	}
	if got, err := s.Pending(ctx); err != nil || got != 1 {
		t.Errorf("Pending after the restart = %d, %v; want 1 (the unacked message \"after\")", got, err)
	}
}
