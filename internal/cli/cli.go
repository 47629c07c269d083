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
	"sort"
	"strings"

	"github.com/sluicehq/sluice/internal/datadir"
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
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout)
			return 0
		}
		fmt.Fprintf(stderr, "sluice: %v\n\n", err)
		usage(stderr)
		return 2
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
	fs.StringVar(&a.logLevel, "log-level", a.logLevel, "log level: debug, info, warn or error")
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

// logger logs to stderr at --log-level, else at def.
func (a *app) logger(def slog.Level) *slog.Logger {
	lvl, ok := logLevels[strings.ToLower(a.logLevel)]
	if !ok {
		lvl = def
	}
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: lvl}))
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
	fmt.Fprintln(w, "sluice — event-driven data pipelines\n\nusage: sluice [--data-dir DIR] COMMAND [flags] [args]\n\ncommands:")
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
