package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// bench holds what every figure shares: the configuration, the sluice
// binary, the temporary directory, the PostgreSQL connection and the
// inputs generated so far.
type bench struct {
	cfg    config
	log    io.Writer
	root   string // repository root
	tmp    string // this run's temporary directory
	sluice string // the binary built for this run
	id     string // names this run's PostgreSQL schemas
	pg     *pgx.Conn
	report report

	posts   *postsInputs // generated on first use
	curated *curateSetup // set up on first use
	seq     int          // numbers data dirs and schemas
}

// tool is an outside program a figure needs.
type tool struct {
	name, install string
	groups        []string
}

var tools = []tool{
	{"psql", "install PostgreSQL's client: apt-get install postgresql-client (./scripts/test.sh installs and starts PostgreSQL)", []string{"pg"}},
	{"sqlite3", "install the SQLite shell: apt-get install sqlite3 (./scripts/test.sh installs it)", []string{"sqlite"}},
	{"node", "install Node.js: apt-get install nodejs npm (./scripts/test.sh installs it)", []string{"curate", "memory"}},
	{"go", "install Go 1.26 or newer (https://go.dev/doc/install)", groups},
}

func newBench(ctx context.Context, cfg config, log io.Writer) (*bench, error) {
	b := &bench{cfg: cfg, log: log}
	var err error
	if b.root, err = repoRoot(); err != nil {
		return nil, err
	}
	if err := b.checkTools(ctx); err != nil {
		return nil, err
	}
	idb := make([]byte, 3)
	rand.Read(idb)
	b.id = hex.EncodeToString(idb)
	if b.tmp, err = os.MkdirTemp(cfg.tmp, "sluice-bench-"); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			b.close()
		}
	}()
	if b.needs("pg", "seed") {
		if b.pg, err = pgx.Connect(ctx, cfg.pgURL); err != nil {
			return nil, fmt.Errorf("connect to PostgreSQL at %s: %w (start it, e.g. with ./scripts/test.sh, or name another with -pg)", redact(cfg.pgURL), err)
		}
	}
	b.sluice = filepath.Join(b.tmp, "sluice")
	b.logf("bench: building sluice (CGO_ENABLED=0 go build ./cmd/sluice) into %s", b.tmp)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", b.sluice, "./cmd/sluice")
	cmd.Dir, cmd.Env = b.root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build sluice: %w\n%s", err, out)
	}
	b.report = report{started: time.Now().UTC(), machine: machine(), versions: b.versions(ctx), commit: b.commit(ctx)}
	ok = true
	return b, nil
}

// needs reports whether any of the groups runs.
func (b *bench) needs(gs ...string) bool {
	for _, g := range gs {
		for _, o := range b.cfg.only {
			if o == g {
				return true
			}
		}
	}
	return false
}

// checkTools fails, naming the tool and how to install it, when a program
// a selected figure needs is missing.
func (b *bench) checkTools(ctx context.Context) error {
	var missing []string
	for _, t := range tools {
		if !b.needs(t.groups...) {
			continue
		}
		if _, err := exec.LookPath(t.name); err != nil {
			missing = append(missing, fmt.Sprintf("%s is not on PATH: %s", t.name, t.install))
		}
	}
	if b.needs("curate", "memory") {
		mod := filepath.Join(b.root, "tools", "duckcheck", "node_modules", "@duckdb", "node-api")
		if _, err := os.Stat(mod); err != nil {
			missing = append(missing, "DuckDB's npm package @duckdb/node-api is not installed in tools/duckcheck: run `npm install` there (./scripts/test.sh does)")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing tools:\n  %s", strings.Join(missing, "\n  "))
	}
	return nil
}

func (b *bench) close() error {
	if b.pg != nil {
		b.pg.Close(context.Background())
	}
	if b.tmp == "" {
		return nil
	}
	if b.cfg.keep {
		b.logf("bench: kept %s", b.tmp)
		return nil
	}
	return os.RemoveAll(b.tmp)
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, format+"\n", args...)
}

// repoRoot finds the sluice module's root from the working directory up.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.HasPrefix(string(data), "module github.com/sluicehq/sluice\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run bench inside the sluice repository (no go.mod of github.com/sluicehq/sluice above the working directory)")
		}
		dir = parent
	}
}

// dataDir returns a new, empty directory for one sluice data dir (or one
// reference's files); name says what it is for.
func (b *bench) dataDir(name string) (string, error) {
	b.seq++
	d := filepath.Join(b.tmp, "runs", fmt.Sprintf("%03d-%s", b.seq, name))
	return d, os.MkdirAll(d, 0o755)
}

// runSluice runs the sluice binary with a data dir, a clean environment
// (no SLUICE_* variable of the caller's) plus env.
func (b *bench) runSluice(ctx context.Context, dataDir string, env []string, args ...string) (proc, error) {
	return run(ctx, append(baseEnv(), env...), dataDir, b.sluice, append([]string{"--data-dir", dataDir}, args...)...)
}

// link hard-links (or copies, across file systems) the files into dir, so
// every run gets the same bytes without writing them again.
func link(files []string, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		dst := filepath.Join(dir, filepath.Base(f))
		if err := os.Link(f, dst); err == nil {
			continue
		}
		if err := copyFile(f, dst); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chtimes(dst, st.ModTime(), st.ModTime())
}

func machine() string {
	model := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(data), "MemTotal: %d kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
		}
	}
	return fmt.Sprintf("%d cores (%s)%s, %s/%s", runtime.NumCPU(), model, mem, runtime.GOOS, runtime.GOARCH)
}

// versions names the versions of everything measured.
func (b *bench) versions(ctx context.Context) string {
	var v []string
	if out, err := exec.CommandContext(ctx, "go", "version").Output(); err == nil {
		v = append(v, strings.TrimPrefix(strings.TrimSpace(string(out)), "go version "))
	}
	if b.pg != nil {
		var s string
		if err := b.pg.QueryRow(ctx, "SHOW server_version").Scan(&s); err == nil {
			v = append(v, "PostgreSQL "+s)
		}
	}
	if b.needs("sqlite") {
		if out, err := exec.CommandContext(ctx, "sqlite3", "-version").Output(); err == nil {
			v = append(v, "sqlite3 "+strings.Fields(string(out))[0])
		}
	}
	if b.needs("curate", "memory") {
		if out, err := exec.CommandContext(ctx, "node", "--version").Output(); err == nil {
			v = append(v, "node "+strings.TrimSpace(string(out)))
		}
		if data, err := os.ReadFile(filepath.Join(b.root, "tools", "duckcheck", "node_modules", "@duckdb", "node-api", "package.json")); err == nil {
			if _, rest, ok := strings.Cut(string(data), `"version": "`); ok {
				v = append(v, "@duckdb/node-api "+rest[:strings.IndexByte(rest, '"')])
			}
		}
	}
	return strings.Join(v, ", ")
}

// commit names the sluice source measured: the commit, and whether the
// work tree had changes on top of it.
func (b *bench) commit(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "-C", b.root, "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return "unknown (not a git checkout)"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.CommandContext(ctx, "git", "-C", b.root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += " with uncommitted changes"
	}
	return c
}

// redact hides a password in a URL.
func redact(u string) string {
	if at := strings.Index(u, "@"); at > 0 {
		if scheme := strings.Index(u, "://"); scheme > 0 && scheme < at {
			if colon := strings.Index(u[scheme+3:at], ":"); colon >= 0 {
				return u[:scheme+3+colon] + ":***" + u[at:]
			}
		}
	}
	return u
}
