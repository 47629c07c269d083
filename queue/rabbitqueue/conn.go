package rabbitqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/queue"
)

// opTimeout bounds one round trip to the broker (a publish confirm, a queue
// declare, waiting for a reconnection) whose ctx has no deadline.
const opTimeout = 10 * time.Second

// Reconnect backoff bounds.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
)

// link owns one AMQP connection and replaces it after the broker closes it
// (a restart, a network failure): a goroutine waits on NotifyClose and dials
// again with capped exponential backoff. Users ask for the current connection
// with conn, which waits for a reconnection while ctx allows. Every new
// connection gets a higher generation, so channels opened on an older one
// are known to be dead.
type link struct {
	url    string // with the password, for dialing
	safe   string // without the password, for messages
	log    *slog.Logger
	onUp   func(*amqp.Connection) error // declares topology on each connection; may be nil
	done   chan struct{}
	closed sync.Once

	mu    sync.Mutex
	cur   *amqp.Connection // nil while reconnecting
	gen   uint64
	ready chan struct{} // closed once cur is set
}

// dialLink connects to rawURL, runs onUp (if not nil) on the connection and
// starts the reconnect watcher, which runs onUp on every new connection.
func dialLink(ctx context.Context, rawURL string, log *slog.Logger, onUp func(*amqp.Connection) error) (*link, error) {
	l := &link{url: rawURL, safe: redact(rawURL), log: log, onUp: onUp, done: make(chan struct{}), ready: make(chan struct{})}
	c, err := l.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("rabbitqueue: connect to %s: %w; start RabbitMQ (rabbitmq-server -detached) or fix the URL", l.safe, err)
	}
	if onUp != nil {
		if err := onUp(c); err != nil {
			_ = c.Close()
			return nil, err
		}
	}
	l.set(c)
	return l, nil
}

func (l *link) dial(ctx context.Context) (*amqp.Connection, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opTimeout)
		defer cancel()
	}
	type result struct {
		c   *amqp.Connection
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := amqp.DialConfig(l.url, amqp.Config{
			Heartbeat:  10 * time.Second,
			Locale:     "en_US",
			Properties: amqp.Table{"connection_name": "sluice"},
			Dial:       amqp.DefaultDial(opTimeout),
		})
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fault.Transient(r.err)
		}
		return r.c, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				_ = r.c.Close()
			}
		}()
		return nil, fault.Transient(ctx.Err())
	}
}

// set installs c as the current connection and watches it.
func (l *link) set(c *amqp.Connection) {
	closes := c.NotifyClose(make(chan *amqp.Error, 1))
	l.mu.Lock()
	l.cur = c
	l.gen++
	close(l.ready)
	l.mu.Unlock()
	go l.watch(c, closes)
}

// watch waits for c to close and, unless the link was closed, reconnects.
func (l *link) watch(c *amqp.Connection, closes chan *amqp.Error) {
	var reason *amqp.Error
	select {
	case reason = <-closes:
	case <-l.done:
		return
	}
	l.mu.Lock()
	if l.cur == c {
		l.cur = nil
		l.ready = make(chan struct{})
	}
	l.mu.Unlock()
	select {
	case <-l.done:
		return
	default:
	}
	l.log.Warn("rabbitqueue: connection to broker lost; reconnecting", "url", l.safe, "reason", fmt.Sprint(reason))
	backoff := minBackoff
	for {
		select {
		case <-l.done:
			return
		case <-time.After(backoff):
		}
		nc, err := l.dial(context.Background())
		if err == nil && l.onUp != nil {
			if err = l.onUp(nc); err != nil {
				_ = nc.Close()
			}
		}
		if err == nil {
			select {
			case <-l.done:
				_ = nc.Close()
				return
			default:
			}
			l.log.Info("rabbitqueue: reconnected to broker", "url", l.safe)
			l.set(nc)
			return
		}
		l.log.Debug("rabbitqueue: reconnect failed", "url", l.safe, "err", err, "retry_in", backoff)
		backoff = min(2*backoff, maxBackoff)
	}
}

// conn returns the current connection and its generation, waiting for a
// reconnection until ctx's deadline, or opTimeout when it has none. The
// error is marked transient.
func (l *link) conn(ctx context.Context) (*amqp.Connection, uint64, error) {
	var timeout <-chan time.Time
	if _, ok := ctx.Deadline(); !ok {
		t := time.NewTimer(opTimeout)
		defer t.Stop()
		timeout = t.C
	}
	for {
		l.mu.Lock()
		c, gen, ready := l.cur, l.gen, l.ready
		l.mu.Unlock()
		select {
		case <-l.done:
			return nil, 0, fmt.Errorf("rabbitqueue: broker %s: %w", l.safe, queue.ErrClosed)
		default:
		}
		if c != nil && !c.IsClosed() {
			return c, gen, nil
		}
		select {
		case <-ready:
		case <-l.done:
		case <-ctx.Done():
			return nil, 0, fault.Transient(fmt.Errorf("rabbitqueue: not connected to broker %s (reconnecting): %w", l.safe, ctx.Err()))
		case <-timeout:
			return nil, 0, fault.Transient(fmt.Errorf("rabbitqueue: not connected to broker %s: still reconnecting after %v; check that RabbitMQ is running", l.safe, opTimeout))
		}
	}
}

// channel opens a channel on the current connection, in confirm mode.
func (l *link) channel(ctx context.Context) (*amqp.Channel, uint64, error) {
	c, gen, err := l.conn(ctx)
	if err != nil {
		return nil, 0, err
	}
	ch, err := c.Channel()
	if err != nil {
		return nil, 0, fault.Transient(fmt.Errorf("rabbitqueue: open channel on %s: %w", l.safe, err))
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, 0, fault.Transient(fmt.Errorf("rabbitqueue: put channel on %s in confirm mode: %w", l.safe, err))
	}
	return ch, gen, nil
}

// generation is the current connection's generation (0 while reconnecting).
func (l *link) generation() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == nil {
		return 0
	}
	return l.gen
}

func (l *link) close() {
	l.closed.Do(func() {
		close(l.done)
		l.mu.Lock()
		c := l.cur
		l.cur = nil
		l.mu.Unlock()
		if c != nil {
			_ = c.Close()
		}
	})
}

// connectionLost reports whether err means the channel or connection went
// away (so the operation may succeed after a reconnection).
func connectionLost(err error) bool {
	if errors.Is(err, amqp.ErrClosed) {
		return true
	}
	var ae *amqp.Error
	if errors.As(err, &ae) {
		return ae.Code == amqp.ConnectionForced || ae.Code == amqp.ChannelError || ae.Recover
	}
	return false
}

// redact drops the password from an AMQP URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable AMQP URL)"
	}
	return u.Redacted()
}

// withTimeout gives ctx a deadline of opTimeout when it has none.
func withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, opTimeout)
}
