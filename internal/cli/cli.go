// Package cli implements the sluice command line, one file per subcommand.
// Run is the only entry point; cmd/sluice/main.go calls it.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/sluicehq/sluice/internal/datadir"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/state"
)

// command is one subcommand.
type command struct {
	name, args, summary string
	hidden              bool // left out of the usage text
	run                 func(ctx context.Context, a *app, args []string) error
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

// app is what every subcommand gets.
type app struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	dataDir        string // --data-dir flag value
	logLevel       string
	logFormat      string
}

// usageError is a mistake in how a command was called: it prints the
// command's usage line and exits 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// exitError carries a specific exit status.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }

// Run runs the command line args (without the program name) and returns
// the process exit status.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	ownerOnly()
	a := &app{stdout: stdout, stderr: stderr, getenv: os.Getenv}
	global := flag.NewFlagSet("sluice", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	a.globalFlags(global)
	showVersion := global.Bool("version", false, "print sluice's version and exit")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "sluice: %v\n\n", err)
		usage(stderr)
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, versionLine())
		return 0
	}
	rest := global.Args()
	if len(rest) == 0 || rest[0] == "help" || rest[0] == "-h" || rest[0] == "--help" {
		if len(rest) > 1 {
			if c, ok := commands[rest[1]]; ok {
				return a.runCommand(ctx, c, []string{"--help"})
			}
		}
		usage(stdout)
		if len(rest) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[rest[0]]
	if !ok {
		fmt.Fprintf(stderr, "sluice: unknown command %q\n\n", rest[0])
		usage(stderr)
		return 2
	}
	return a.runCommand(ctx, c, rest[1:])
}

func (a *app) runCommand(ctx context.Context, c command, args []string) int {
	err := c.run(ctx, a, args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(a.stderr, "sluice %s: %v\nusage: sluice %s %s\n(`sluice %s --help` lists its flags)\n", c.name, err, c.name, c.args, c.name)
		return 2
	}
	fmt.Fprintf(a.stderr, "sluice %s: %v\n", c.name, err)
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func (a *app) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&a.dataDir, "data-dir", a.dataDir, "data directory (default $SLUICE_DATA, else ./sluice-data)")
	fs.StringVar(&a.logLevel, "log-level", a.logLevel, "log level: debug, info, warn or error (default info for run, worker and serve, warn for the others)")
	fs.StringVar(&a.logFormat, "log-format", a.logFormat, "log format: text or json (default text)")
}

// flags returns a FlagSet for a subcommand with the global flags and a
// usage text; parse with a.parse.
func (a *app) flags(c string) *flag.FlagSet {
	fs := flag.NewFlagSet("sluice "+c, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse reports errors itself
	a.globalFlags(fs)
	fs.Usage = func() {
		cmd := commands[c]
		fmt.Fprintf(fs.Output(), "usage: %s\n\n%s\n\nflags:\n", strings.TrimSpace("sluice "+c+" "+cmd.args), cmd.summary)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, allowing flags after positional arguments.
func (a *app) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(a.stdout)
				fs.Usage()
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			if _, ok := logLevels[strings.ToLower(a.logLevel)]; !ok && a.logLevel != "" {
				return nil, usagef("--log-level %q: want debug, info, warn or error", a.logLevel)
			}
			if f := strings.ToLower(a.logFormat); f != "" && f != "text" && f != "json" {
				return nil, usagef("--log-format %q: want text or json", a.logFormat)
			}
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func (a *app) dir() (datadir.Dir, error) { return datadir.Resolve(a.dataDir, a.getenv) }

var logLevels = map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "warning": slog.LevelWarn, "error": slog.LevelError}

// logger logs to stderr at --log-level, else at def, in --log-format
// (slog's text, else JSON: one object a line).
func (a *app) logger(def slog.Level) *slog.Logger {
	lvl, ok := logLevels[strings.ToLower(a.logLevel)]
	if !ok {
		lvl = def
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if strings.EqualFold(a.logFormat, "json") {
		return slog.New(slog.NewJSONHandler(a.stderr, opts))
	}
	return slog.New(slog.NewTextHandler(a.stderr, opts))
}

// existingDir is the data dir for commands that only read it: a missing
// one is an error (a typo in --data-dir must not look like an empty lake).
func (a *app) existingDir() (datadir.Dir, error) {
	dir, err := a.dir()
	if err != nil {
		return dir, err
	}
	if _, err := os.Stat(dir.Path); err != nil {
		return dir, fmt.Errorf("no data dir at %s: run `sluice demo` or `sluice run -f PIPELINE.yaml` first, or pass --data-dir DIR (or set SLUICE_DATA)", dir.Path)
	}
	return dir, nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "sluice — event-driven data pipelines\n\nusage: sluice [--data-dir DIR] [--log-level L] [--log-format text|json] COMMAND [flags] [args]\n       sluice --version\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n, c := range commands {
		if c.hidden {
			continue
		}
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nglobal flags (before or after the command):")
	fs := flag.NewFlagSet("sluice", flag.ContinueOnError)
	(&app{}).globalFlags(fs)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintln(w, "\nRun `sluice COMMAND --help` for a command's flags.")
}

// stateURL is the state for commands that read it outside a pipeline
// run: SLUICE_STATE, else "" (the data dir's state.db). Commands given a
// spec use its state: instead (which SLUICE_STATE also replaces).
func (a *app) stateURL() string { return a.getenv("SLUICE_STATE") }

// envOr returns the flag value, else the environment variable.
func (a *app) envOr(flagVal, env string) string {
	if flagVal != "" {
		return flagVal
	}
	return a.getenv(env)
}

func init() {
	register(command{name: "version", args: "", summary: "print sluice's version (also --version)",
		run: func(ctx context.Context, a *app, args []string) error {
			fs := a.flags("version")
			pos, err := a.parse(fs, args)
			if err != nil {
				return err
			}
			if len(pos) > 0 {
				return usagef("version takes no arguments")
			}
			fmt.Fprintln(a.stdout, versionLine())
			return nil
		}})
}

// versionLine is sluice's version in one line, from the build information
// Go embeds (formatVersion).
func versionLine() string {
	bi, _ := debug.ReadBuildInfo()
	return formatVersion(bi)
}

// formatVersion is "sluice VERSION [(commit REV[+dirty])] GOVERSION
// OS/ARCH": the module version ("devel" for a build without one), the
// commit in 12 hex digits, "+dirty" when the tree had changes (left out
// when the version already holds them, as go build's pseudo-versions do),
// the Go version and the platform. bi may be nil.
func formatVersion(bi *debug.BuildInfo) string {
	v, rev, dirty, gov := "", "", false, runtime.Version()
	if bi != nil {
		v = bi.Main.Version
		if bi.GoVersion != "" {
			gov = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	line := "sluice " + v
	if rev != "" {
		rev = rev[:min(len(rev), 12)]
		if dirty {
			rev += "+dirty"
		}
		if !strings.Contains(v, rev) {
			line += " (commit " + rev + ")"
		}
	}
	return line + " " + gov + " " + runtime.GOOS + "/" + runtime.GOARCH
}

// Where a reading command's warehouse or state URL comes from.
const (
	fromFlag     = "flag"
	fromSpec     = "-f"
	fromEnv      = "env"
	fromRecorded = "recorded"
	fromDefault  = "default"
)

// target is the warehouse or state a reading command uses: its URL ("" for
// the data dir's state.db) and where the URL comes from (from* above).
type target struct {
	what, url, from, env string
}

// describe names the target and its origin, for -v and error messages.
func (t target) describe(dir datadir.Dir) string {
	u := t.url
	if u == "" {
		u = dir.StateURL()
	}
	switch t.from {
	case fromFlag:
		return fmt.Sprintf("%s %s (from --%s)", t.what, state.Redact(u), t.what)
	case fromSpec:
		return fmt.Sprintf("%s %s (from -f's spec)", t.what, state.Redact(u))
	case fromEnv:
		return fmt.Sprintf("%s %s (from %s)", t.what, state.Redact(u), t.env)
	case fromRecorded:
		return fmt.Sprintf("%s %s (recorded by the data dir's last owner in %s)", t.what, u, filepath.Join(dir.Path, datadir.RecordFile))
	}
	return fmt.Sprintf("%s %s (the data dir's own)", t.what, u)
}

// openErr adds to err, from opening t, where t's URL came from, and for a
// recorded PostgreSQL URL where its password comes from.
func (t target) openErr(dir datadir.Dir, err error) error {
	if t.from != fromRecorded {
		return err
	}
	hint := ""
	if strings.HasPrefix(t.url, "postgres") {
		hint = fmt.Sprintf("; it is kept without its password: set PGPASSWORD or a ~/.pgpass line, or the whole URL in %s", t.env)
	}
	return fmt.Errorf("%w\n(%s%s)", err, t.describe(dir), hint)
}

// note says on stderr which target is read, for -v.
func (a *app) note(cmd string, dir datadir.Dir, t target) {
	fmt.Fprintf(a.stderr, "sluice %s: reading %s\n", cmd, t.describe(dir))
}

// readTargets are the warehouse and state a command that reads them (sql,
// jobs, dlq) uses, in this order: the spec given with -f (file, with the
// SLUICE_* variables applied as `run` applies them); SLUICE_WAREHOUSE /
// SLUICE_STATE; what the data dir's last owner recorded (datadir.Recorded:
// what `run` or `demo` ran on, passwords stripped); the data dir's own
// warehouse.db and state.db. dir must exist unless -f or the variables
// settle both.
func (a *app) readTargets(dir datadir.Dir, file string) (wh, st target, err error) {
	wh = target{what: "warehouse", env: "SLUICE_WAREHOUSE"}
	st = target{what: "state", env: "SLUICE_STATE"}
	if file != "" {
		spec, err := pipeline.LoadFile(file, a.getenv)
		if err != nil {
			return wh, st, err
		}
		wh.url, wh.from = spec.Warehouse, fromSpec
		st.url, st.from = spec.State, fromSpec
		if wh.url == "" {
			wh.url, wh.from = dir.WarehouseURL(), fromDefault
		}
		if st.url == "" {
			st.from = fromDefault
		}
		return wh, st, nil
	}
	rec, _, err := dir.Recorded()
	if err != nil {
		return wh, st, err
	}
	for _, t := range []struct {
		t        *target
		recorded string
	}{{&wh, rec.Warehouse}, {&st, rec.State}} {
		switch {
		case a.getenv(t.t.env) != "":
			t.t.url, t.t.from = a.getenv(t.t.env), fromEnv
		case t.recorded != "":
			t.t.url, t.t.from = t.recorded, fromRecorded
		default:
			t.t.from = fromDefault
		}
	}
	if wh.from == fromDefault {
		wh.url = dir.WarehouseURL()
	}
	return wh, st, nil
}

// applyRecorded makes a spec loaded from the path the data dir's owner
// recorded (no -f) run on what that owner ran on: its recorded warehouse
// and state replace the file's, unless SLUICE_WAREHOUSE / SLUICE_STATE
// set them (the owner may have had them set when it ran). A recorded URL
// that differs from the file's only by the password keeps the file's.
func (a *app) applyRecorded(spec *pipeline.Spec, rec datadir.Recorded) {
	for _, f := range []struct {
		dst      *string
		recorded string
		env      string
	}{{&spec.Warehouse, rec.Warehouse, "SLUICE_WAREHOUSE"}, {&spec.State, rec.State, "SLUICE_STATE"}} {
		if a.getenv(f.env) != "" || datadir.StripPassword(*f.dst) == f.recorded {
			continue
		}
		*f.dst = f.recorded
	}
}
