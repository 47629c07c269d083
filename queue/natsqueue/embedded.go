package natsqueue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// startTimeout bounds StartEmbedded when ctx has no deadline.
const startTimeout = 30 * time.Second

// Embedded is a NATS server with JetStream running inside this process, for
// the data dir's owner. It listens on 127.0.0.1 on a free port, so other
// local processes (sluice worker, the nats CLI) can connect to ClientURL.
type Embedded struct {
	srv  *server.Server
	dir  string
	lock *os.File // held until Shutdown; nil where locking is unsupported
}

// StartEmbedded starts a server storing JetStream data under dir (created if
// needed) and locked against a second server. Restarting on the same dir keeps streams, consumers and their ack
// state. logf, if not nil, receives the server's notices, warnings and
// errors; otherwise the server logs nothing. It returns when the server
// accepts connections, or fails when ctx ends first (after 30s without a
// deadline).
func StartEmbedded(ctx context.Context, dir string, logf func(string, ...any)) (*Embedded, error) {
	if dir == "" {
		return nil, errors.New("natsqueue: start embedded server: empty store dir; pass the data dir's queue directory")
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("natsqueue: start embedded server: %w", err)
	}
	e, err := startServer(ctx, dir, logf)
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		return nil, err
	}
	e.lock = lock
	return e, nil
}

func startServer(ctx context.Context, dir string, logf func(string, ...any)) (*Embedded, error) {
	opts := &server.Options{
		ServerName: "sluice-embedded",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      logf == nil,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("natsqueue: configure embedded server on %s: %w", dir, err)
	}
	if logf != nil {
		srv.SetLoggerV2(logger(logf), false, false, false)
	}
	srv.Start()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(startTimeout)
	}
	for !srv.ReadyForConnections(100 * time.Millisecond) {
		if ctx.Err() != nil || time.Now().After(deadline) {
			srv.Shutdown()
			srv.WaitForShutdown()
			return nil, fmt.Errorf("natsqueue: embedded server on %s not ready before the deadline", dir)
		}
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("natsqueue: embedded server on %s started without JetStream; check that the directory is writable and the disk not full", dir)
	}
	return &Embedded{srv: srv, dir: dir}, nil
}

// ClientURL is the address other processes connect to, nats://127.0.0.1:PORT.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Connect opens an in-process client connection (no TCP) to the server.
func (e *Embedded) Connect() (*nats.Conn, error) {
	nc, err := nats.Connect(e.srv.ClientURL(), nats.InProcessServer(e.srv), nats.Name("sluice"))
	if err != nil {
		return nil, fmt.Errorf("natsqueue: connect to the embedded server on %s: %w", e.dir, err)
	}
	return nc, nil
}

// Shutdown stops the server and waits until it has written its state and
// released dir.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
	if e.lock != nil {
		e.lock.Close()
	}
}

// logger adapts a printf-style function to the server's Logger.
type logger func(string, ...any)

func (l logger) Noticef(format string, v ...any) { l("nats: "+format, v...) }
func (l logger) Warnf(format string, v ...any)   { l("nats: warning: "+format, v...) }
func (l logger) Fatalf(format string, v ...any)  { l("nats: fatal: "+format, v...) }
func (l logger) Errorf(format string, v ...any)  { l("nats: error: "+format, v...) }
func (l logger) Debugf(format string, v ...any)  { l("nats: debug: "+format, v...) }
func (l logger) Tracef(format string, v ...any)  { l("nats: trace: "+format, v...) }
