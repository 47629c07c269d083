package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"sync"
	"syscall"

	"github.com/sluicehq/sluice/console"
	"github.com/sluicehq/sluice/internal/datadir"
	"github.com/sluicehq/sluice/internal/engine"
	"github.com/sluicehq/sluice/metrics"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/warehouse"
)

func init() {
	register(command{name: "serve", args: "[-f PIPELINE.yaml] [--http ADDR]",
		summary: "serve the web console, /metrics and health over a data dir or a shared state, without running the pipeline", run: runServe})
}

// Default console addresses: `run` (and `serve`, `demo --serve`) and
// `worker` differ so that both can run on one machine with their defaults.
const (
	defaultRunHTTP    = "127.0.0.1:9464"
	defaultWorkerHTTP = "127.0.0.1:9465"
)

// httpOpts are the console flags of a long-running command.
type httpOpts struct {
	addr, cert, key string
	def             string // the default address: failing to bind it only warns
	url             string // where the console answers, once serving
	fs              *flag.FlagSet
}

// withSpec applies the spec's serve: settings that no flag overrides.
func (o *httpOpts) withSpec(spec *pipeline.Spec) {
	if o == nil || spec == nil {
		return
	}
	if spec.Serve.Address != "" && !explicit(o.fs, "http") {
		o.addr, o.def = spec.Serve.Address, ""
	}
	if spec.Serve.TLSCert != "" && !explicit(o.fs, "tls-cert") && !explicit(o.fs, "tls-key") {
		o.cert, o.key = spec.Serve.TLSCert, spec.Serve.TLSKey
	}
}

func (a *app) httpFlags(fs *flag.FlagSet, def string) *httpOpts {
	o := &httpOpts{def: def, fs: fs}
	fs.StringVar(&o.addr, "http", def, "address of the web console, /metrics, /healthz and /readyz (off: none; "+console.TokenEnv+" in the environment enables actions, and is required beyond loopback)")
	fs.StringVar(&o.cert, "tls-cert", "", "serve the console over HTTPS with this certificate (PEM), with --tls-key")
	fs.StringVar(&o.key, "tls-key", "", "the certificate's private key (PEM)")
	return o
}

func (o *httpOpts) enabled() bool { return o != nil && o.addr != "" && o.addr != "off" }

// serveConsole starts the console of cfg on o's address and returns a
// function that stops it. When the default address is taken (another
// sluice on this machine), it warns and serves nothing: the pipeline
// matters more than its console; an address given explicitly must bind.
func (a *app) serveConsole(ctx context.Context, o *httpOpts, cfg console.Config) (stop func(), err error) {
	if !o.enabled() {
		return func() {}, nil
	}
	cfg.AdminToken = a.getenv(console.TokenEnv)
	l, err := console.Listen(o.addr, cfg.AdminToken, o.cert, o.key)
	if err != nil {
		if o.addr == o.def && errors.Is(err, syscall.EADDRINUSE) {
			cfg.Logger.Warn("no console: its default address is taken; pass --http ADDR (or --http off)", "err", err)
			return func() {}, nil
		}
		return nil, err
	}
	o.url = l.URL
	cfg.Exposed = l.Exposed
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := l.Serve(ctx, console.New(cfg), cfg.Logger); err != nil {
			cfg.Logger.Error("console stopped", "err", err)
		}
	}()
	mode := "read-only"
	if cfg.AdminToken != "" {
		mode = "actions need the admin token"
	}
	cfg.Logger.Info("console serving", "url", l.URL, "mode", mode)
	fmt.Fprintf(a.stderr, "console: %s (%s; /metrics, /healthz, /readyz)\n", l.URL, mode)
	return func() { cancel(); wg.Wait() }, nil
}

// engineConsole is the console configuration of an opened engine.
func engineConsole(e *engine.Engine, spec *pipeline.Spec, role string, m *metrics.Metrics, log *slog.Logger) console.Config {
	return console.Config{Spec: spec, State: e.State, Warehouse: e.WH, Store: e.Store, Metrics: m, Role: role, Logger: log,
		Ready: e.ReadyChecks(),
		Replay: func(ctx context.Context, id int64) error {
			_, err := e.ReplayDeadLetters(ctx, []int64{id}, nil)
			return err
		}}
}

// runServe serves the console over what the data dir's owner recorded (or
// -f's spec), without running anything. Replays go through a running
// sluice that owns the data dir; with none, the console says to use `sluice
// dlq replay`.
func runServe(ctx context.Context, a *app, args []string) error {
	fs := a.flags("serve")
	file := fs.String("f", "", "pipeline spec (default: the spec the data dir last ran, if any)")
	ho := a.httpFlags(fs, defaultRunHTTP)
	if _, err := a.parse(fs, args); err != nil {
		return err
	}
	if !ho.enabled() {
		return usagef("--http off leaves nothing to serve")
	}
	ho.def = "" // asked for explicitly: the address must bind
	dir, err := a.existingDir()
	if err != nil {
		return err
	}
	log := a.logger(slog.LevelInfo)
	var spec *pipeline.Spec
	if *file != "" {
		if spec, err = pipeline.LoadFile(*file, a.getenv); err != nil {
			return err
		}
	} else if spec, err = a.specFor(ctx, dir, ""); err != nil {
		log.Warn("no pipeline spec: the console shows runs and dead letters but not the pipeline's parts", "err", err)
		spec = nil
	}
	stateURL, whURL, storeURL, err := a.servedURLs(spec, *file, dir)
	if err != nil {
		return err
	}
	// Read-only unless actions are possible (cancel writes its request).
	open := state.OpenReadOnly
	if a.getenv(console.TokenEnv) != "" {
		open = func(ctx context.Context, u, d string) (state.Store, error) { return state.Open(ctx, u, d) }
	}
	st, err := open(ctx, stateURL, dir.Path)
	if err != nil {
		return err
	}
	defer st.Close()
	cfg := console.Config{Spec: spec, State: st, Role: "sluice serve", Logger: log, Metrics: metrics.New(specName(spec)),
		Ready: map[string]func(context.Context) error{"state": func(ctx context.Context) error { _, err := st.Setting(ctx, "pipeline"); return err }}}
	if wh, err := warehouse.Open(ctx, whURL); err != nil {
		log.Warn("no warehouse: loads are not shown", "err", err)
		cfg.Ready["warehouse"] = func(context.Context) error {
			return fmt.Errorf("could not be opened when serve started (restart it once the warehouse is back): %w", err)
		}
	} else {
		defer wh.Close()
		cfg.Warehouse = wh
		cfg.Ready["warehouse"] = func(ctx context.Context) error { _, _, err := wh.Query(ctx, "select 1"); return err }
	}
	if s, err := store.Open(ctx, storeURL, &store.Options{Logger: log}); err != nil {
		log.Warn("no store: job logs are not shown", "err", err)
	} else {
		defer s.Close()
		cfg.Store = s
	}
	if spec != nil {
		cfg.Replay = func(ctx context.Context, id int64) error {
			if _, owned := dir.Owned(); !owned {
				return fmt.Errorf("no sluice runs on %s to process the replay: run `sluice dlq replay %d`, or start `sluice run`", dir.Path, id)
			}
			e, err := engine.Open(ctx, engine.Config{Spec: spec, DataDir: dir, Logger: log, WriteOnly: true})
			if err != nil {
				return err
			}
			defer e.Close()
			_, err = e.ReplayDeadLetters(ctx, []int64{id}, nil)
			return err
		}
	}
	stop, err := a.serveConsole(ctx, ho, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	stop()
	return nil
}

// explicit reports whether flag name was given on the command line.
func explicit(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

func specName(spec *pipeline.Spec) string {
	if spec == nil {
		return ""
	}
	return spec.Name
}

// servedURLs are the state, warehouse and store `serve` reads: those
// `sql` and `jobs` read (-f's spec, SLUICE_WAREHOUSE / SLUICE_STATE, what
// the data dir's owner recorded, the data dir's own), and the spec's store
// (SLUICE_STORE applied), else the data dir's.
func (a *app) servedURLs(spec *pipeline.Spec, file string, dir datadir.Dir) (stateURL, whURL, storeURL string, err error) {
	wh, st, err := a.readTargets(dir, file)
	if err != nil {
		return "", "", "", err
	}
	storeURL = cmp.Or(a.getenv("SLUICE_STORE"), dir.StoreURL())
	if spec != nil {
		storeURL, _, _ = engine.URLs(spec, dir)
	}
	return st.url, wh.url, storeURL, nil
}
