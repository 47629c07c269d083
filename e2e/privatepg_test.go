package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// privatePG is a PostgreSQL server of the test's own (never the machine's,
// which other tests use): a fresh cluster on a free port, so the test may
// stop and start it.
type privatePG struct {
	t        *testing.T
	bin, dir string
	port     int
	log      string
}

// startPrivatePG initdb's a cluster in a temporary directory owned by the
// postgres user (initdb refuses to run as root) and starts it.
func startPrivatePG(t *testing.T) *privatePG {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		t.Fatal("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (./scripts/test.sh installs them)")
	}
	sort.Strings(bins)
	p := &privatePG{t: t, bin: filepath.Dir(bins[len(bins)-1])}
	dir, err := os.MkdirTemp("", "sluice-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir, p.log = filepath.Join(dir, "data"), filepath.Join(dir, "server.log")
	u, err := user.Lookup("postgres")
	if err != nil {
		t.Fatalf("no postgres user to run a private PostgreSQL as: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.pgctl("stop", "-m", "immediate", "-w")
		os.RemoveAll(dir)
	})
	if out, err := p.as(filepath.Join(p.bin, "initdb"), "-D", p.dir, "-A", "trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	p.start()
	return p
}

func (p *privatePG) as(name string, args ...string) *exec.Cmd {
	return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
}

func (p *privatePG) pgctl(args ...string) ([]byte, error) {
	return p.as(filepath.Join(p.bin, "pg_ctl"), append([]string{"-D", p.dir, "-l", p.log}, args...)...).CombinedOutput()
}

// start starts the server and waits until it accepts connections.
func (p *privatePG) start() {
	p.t.Helper()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off", p.port, filepath.Dir(p.dir))
	if out, err := p.pgctl("start", "-w", "-t", "60", "-o", opts); err != nil {
		log, _ := os.ReadFile(p.log)
		p.t.Fatalf("start private PostgreSQL: %v\n%s\n%s", err, out, tail(string(log), 2000))
	}
}

// stop stops the server at once, as a crash or an outage would.
func (p *privatePG) stop() {
	p.t.Helper()
	if out, err := p.pgctl("stop", "-m", "immediate", "-w"); err != nil {
		p.t.Fatalf("stop private PostgreSQL: %v\n%s", err, out)
	}
}

// url is a warehouse URL for schema on the private server.
func (p *privatePG) url(schema string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&schema=%s", p.port, schema)
}

// count runs a count query; -1 when the server is down or the table missing.
func (p *privatePG) count(q string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port))
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
