package natsqueue

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// startTimeout bounds StartEmbedded when ctx has no deadline.
const startTimeout = 30 * time.Second

// Defaults of EmbeddedOptions.
const (
	DefaultCheckInterval = time.Second
	DefaultMinFree       = 1 << 20
)

// ErrDiskFull is matched (errors.Is) by the errors of requests that failed
// because the embedded server's disk is full.
var ErrDiskFull = errors.New("disk full")

// EmbeddedOptions tune StartEmbedded. nil and the zero value mean defaults.
type EmbeddedOptions struct {
	// Logger receives the server's notices, warnings and errors and the
	// recovery monitor's reports. nil: the server's notices are dropped and
	// its warnings and errors, and the monitor's reports, go to
	// slog.Default().
	Logger *slog.Logger
	// CheckInterval is how often the recovery monitor looks at the server
	// and, during a storage fault, at the free space (default 1s).
	CheckInterval time.Duration
	// MinFree is the free space, in bytes, the store's file system needs
	// before the monitor restarts JetStream after a fault (default 1 MiB).
	MinFree uint64
}

// Embedded is a NATS server with JetStream running inside this process, for
// the data dir's owner. It listens on 127.0.0.1 on a free port, so other
// local processes (sluice put, sluice worker, the nats CLI) can connect to
// ClientURL. Every local user can reach that port, so the server admits
// only clients with its credential: a random token made at each start,
// which ClientURL carries (nats://TOKEN@127.0.0.1:PORT) and the data dir's
// owner.json (0600 in the 0700 data dir) hands to the owner's processes.
// (nats-server listens on TCP only: no Unix socket.)
//
// # Storage faults and recovery
//
// When the server cannot write its store (a full disk: "no space left on
// device"), nats-server marks the stream's file store failed for good: it
// logs a critical write error, never answers later publishes (clients see
// only a timeout) and stays so after space returns, until JetStream is
// restarted. Standalone servers do not disable JetStream for it; they do
// for permission errors.
//
// Embedded therefore runs a monitor. It learns of a fault from the server's
// log (the critical write error and store failures; the server has no API
// for them) or from JetStream being disabled. From then on StorageErr
// returns an error naming the store directory and the condition (wrapping
// ErrDiskFull for a full disk), which Topic puts into the errors of failed
// requests and with which Publish fails at once (see Options.StorageErr).
// Every CheckInterval the monitor reads the free space of the store's file
// system; once it is at least MinFree it restarts JetStream on the same
// server with the limits it started with. Streams and consumers reload from
// disk, client connections (in-process and TCP) stay open, so Topics and
// subscriptions go on working without being reopened. It logs the fault
// once at error level and the recovery at info level.
//
// What a full disk can lose: the server acknowledges a publish before its
// background flusher writes the message to the block file, so messages
// acknowledged just before the disk filled may not be on disk when the
// write fails, and are gone after JetStream restarts. Consumer acks written
// during the fault may be lost too; those messages are delivered again.
type Embedded struct {
	srv     *server.Server
	token   string // the credential clients must give
	dir     string
	lock    *os.File // held until Shutdown; nil where locking is unsupported
	log     *slog.Logger
	jsCfg   server.JetStreamConfig // the limits JetStream started with
	every   time.Duration
	minFree uint64

	faults chan string // causes seen in the server's log; never blocks the server

	mu    sync.Mutex
	fault error // non-nil from a storage fault until recovery

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
}

// StartEmbedded starts a server storing JetStream data under dir (created
// if needed) and locked against a second server. Restarting on the same dir
// keeps streams, consumers and their ack state. opts may be nil. It returns
// when the server accepts connections, or fails when ctx ends first (after
// 30s without a deadline).
func StartEmbedded(ctx context.Context, dir string, opts *EmbeddedOptions) (*Embedded, error) {
	if dir == "" {
		return nil, errors.New("natsqueue: start embedded server: empty store dir; pass the data dir's queue directory")
	}
	var o EmbeddedOptions
	if opts != nil {
		o = *opts
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.MinFree == 0 {
		o.MinFree = DefaultMinFree
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("natsqueue: start embedded server: %w", err)
	}
	e := &Embedded{
		token: rand.Text(), dir: dir, lock: lock, log: o.Logger, every: o.CheckInterval, minFree: o.MinFree,
		faults: make(chan string, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	if e.log == nil {
		e.log = slog.Default()
	}
	if err := e.startServer(ctx, o.Logger != nil); err != nil {
		if lock != nil {
			lock.Close()
		}
		return nil, err
	}
	go e.monitor()
	return e, nil
}

func (e *Embedded) startServer(ctx context.Context, notices bool) error {
	opts := &server.Options{
		ServerName: "sluice-embedded",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   e.dir,
		NoSigs:     true,
		// Authorization is the token every client must give.
		Authorization: e.token,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("natsqueue: configure embedded server on %s: %w", e.dir, err)
	}
	srv.SetLoggerV2(&logger{log: e.log, notices: notices, faults: e.faults}, false, false, false)
	srv.Start()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(startTimeout)
	}
	for !srv.ReadyForConnections(100 * time.Millisecond) {
		if ctx.Err() != nil || time.Now().After(deadline) {
			srv.Shutdown()
			srv.WaitForShutdown()
			return fmt.Errorf("natsqueue: embedded server on %s not ready before the deadline", e.dir)
		}
	}
	cfg := srv.JetStreamConfig()
	if !srv.JetStreamEnabled() || cfg == nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("natsqueue: embedded server on %s started without JetStream; check that the directory is writable and the disk not full", e.dir)
	}
	e.srv, e.jsCfg = srv, *cfg
	// EnableJetStream appends "jetstream" to StoreDir itself.
	e.jsCfg.StoreDir = e.dir
	return nil
}

// ClientURL is the address other processes connect to with the
// credential: nats://TOKEN@127.0.0.1:PORT. It is a secret: keep it in files
// only the owner reads, and never log it (Redacted drops the token).
func (e *Embedded) ClientURL() string {
	u, err := url.Parse(e.srv.ClientURL())
	if err != nil {
		return e.srv.ClientURL()
	}
	u.User = url.User(e.token)
	return u.String()
}

// Connect opens an in-process client connection (no TCP) to the server.
func (e *Embedded) Connect() (*nats.Conn, error) {
	nc, err := nats.Connect(e.srv.ClientURL(), nats.InProcessServer(e.srv), nats.Name("sluice"), nats.Token(e.token))
	if err != nil {
		return nil, fmt.Errorf("natsqueue: connect to the embedded server on %s: %w", e.dir, err)
	}
	return nc, nil
}

// StorageErr returns nil while the server can write its store, and during a
// storage fault an error naming the store directory and the condition,
// wrapping ErrDiskFull when the disk is full. Pass it as Options.StorageErr.
func (e *Embedded) StorageErr() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fault
}

// Shutdown stops the monitor and the server and waits until the server has
// written its state and released dir.
func (e *Embedded) Shutdown() {
	e.stopOnce.Do(func() { close(e.stop) })
	<-e.done
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	if e.lock != nil {
		e.lock.Close()
	}
}

// monitor notices storage faults and restarts JetStream once there is room
// again; see Embedded.
func (e *Embedded) monitor() {
	defer close(e.done)
	tick := time.NewTicker(e.every)
	defer tick.Stop()
	for {
		select {
		case <-e.stop:
			return
		case cause := <-e.faults:
			e.setFault(cause)
		case <-tick.C:
			if e.StorageErr() == nil {
				if !e.srv.JetStreamEnabled() {
					e.setFault("the server disabled JetStream")
				}
				continue
			}
			e.recover()
		}
	}
}

// setFault records a storage fault unless one is already recorded.
func (e *Embedded) setFault(cause string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fault != nil {
		return
	}
	free, ok := freeBytes(e.dir)
	room := "free space unknown"
	if ok {
		room = fmt.Sprintf("%d bytes free", free)
	}
	if strings.Contains(cause, "no space left") {
		e.fault = fmt.Errorf("natsqueue: the disk of the embedded queue's store %s is full (%s; %s): %w; free space there (the queue resumes by itself once %d bytes are free)",
			e.dir, room, cause, ErrDiskFull, e.minFree)
		e.log.Error("embedded queue: disk full, publishing stops until space is freed", "dir", e.dir, "free_bytes", free, "cause", cause)
		return
	}
	e.fault = fmt.Errorf("natsqueue: the embedded queue cannot write its store %s (%s; %s); check the disk and the directory's permissions (the queue retries by itself every %v)",
		e.dir, cause, room, e.every)
	e.log.Error("embedded queue: store not writable, publishing stops until it recovers", "dir", e.dir, "free_bytes", free, "cause", cause)
}

// recover restarts JetStream once the store's file system has MinFree
// bytes free, and clears the fault when it is back.
func (e *Embedded) recover() {
	if free, ok := freeBytes(e.dir); ok && free < e.minFree {
		return
	}
	if e.srv.JetStreamEnabled() {
		if err := e.srv.ShutdownJetStream(); err != nil {
			e.log.Warn("embedded queue: stop JetStream for recovery", "dir", e.dir, "err", err)
			return
		}
	}
	// Causes logged before the restart belong to the fault being cleared.
	select {
	case <-e.faults:
	default:
	}
	cfg := e.jsCfg
	if err := e.srv.EnableJetStream(&cfg); err != nil {
		e.log.Warn("embedded queue: restart JetStream after a storage fault; retrying", "dir", e.dir, "err", err)
		return
	}
	// Logged before the fault clears, so whoever sees StorageErr return nil
	// finds the recovery in the log.
	free, _ := freeBytes(e.dir)
	e.log.Info("embedded queue: storage fault cleared, JetStream restarted", "dir", e.dir, "free_bytes", free)
	e.mu.Lock()
	e.fault = nil
	e.mu.Unlock()
}

// logger adapts the server's logging to slog and reports storage faults to
// the monitor. The server calls it with its own locks held, so it never
// blocks.
type logger struct {
	log     *slog.Logger
	notices bool
	faults  chan<- string
}

// faultMarks are the fragments of the server's log lines that report a
// store it can no longer write.
var faultMarks = []string{"no space left on device", "critical write error", "disabling JetStream", "will be DISABLED"}

func (l *logger) report(msg string) {
	for _, mark := range faultMarks {
		if strings.Contains(msg, mark) {
			select {
			case l.faults <- msg:
			default: // one pending report is enough
			}
			return
		}
	}
}

func (l *logger) Noticef(format string, v ...any) {
	if l.notices {
		// The server's notices (start, shutdown, JetStream limits) are
		// routine for an embedded queue: debug, not the user's log.
		l.log.Debug("nats: " + fmt.Sprintf(format, v...))
	}
}

func (l *logger) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.report(msg)
	l.log.Warn("nats: " + msg)
}

func (l *logger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.report(msg)
	l.log.Error("nats: fatal: " + msg)
}

func (l *logger) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.report(msg)
	l.log.Error("nats: " + msg)
}

func (l *logger) Debugf(format string, v ...any) { l.log.Debug("nats: " + fmt.Sprintf(format, v...)) }
func (l *logger) Tracef(format string, v ...any) { l.log.Debug("nats: " + fmt.Sprintf(format, v...)) }
