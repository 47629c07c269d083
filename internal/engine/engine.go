// Package engine runs a pipeline spec in the process that owns the data dir:
// it opens the store, queue and warehouse the spec names (or the data dir's
// embedded defaults), emits an S3-format event for every object it lands or
// finds, runs the sources on their schedules and the loads as queue
// consumers.
//
// Delivery: a load acknowledges an event only after the object's rows and
// ledger row are committed (warehouse.Load), so a crash at any point means a
// redelivery, which the ledger turns into a no-op. Bad objects (malformed
// JSON, wrong types) are dead-lettered at once with a reason naming the
// object and the record; other failures (warehouse unreachable) are retried
// with backoff until the subscription's max deliveries, then dead-lettered.
//
// Cancellation: cancelling Run's ctx stops sources between requests and
// consumers between messages; an object being loaded is either committed
// or rolled back, never half-written.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluicehq/sluice/curate"
	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/internal/datadir"
	"github.com/sluicehq/sluice/internal/state"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/queue"
	"github.com/sluicehq/sluice/queue/memqueue"
	"github.com/sluicehq/sluice/queue/natsqueue"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/warehouse"
)

// Config configures an Engine.
type Config struct {
	Spec    *pipeline.Spec
	DataDir datadir.Dir
	// Lock is the data dir ownership the caller holds; the engine publishes
	// the embedded queue's URL through it. Nil when the caller does not own
	// the data dir (then an embedded queue cannot be started).
	Lock   *datadir.Lock
	Logger *slog.Logger
	Clock  func() time.Time
	// Workers is the number of concurrent consumers per load (default 1).
	Workers int
	// ScanInterval and Settle tune the local store watcher (defaults 1s, 2s).
	ScanInterval, Settle time.Duration
	// JobBinary is the sluice binary local job runs start ("" = this
	// executable; tests set the built binary).
	JobBinary string
}

// Stats counts what a run did.
type Stats struct {
	Landed        atomic.Int64 // objects written by sources
	Found         atomic.Int64 // objects found in the local store by the watcher
	Events        atomic.Int64 // events published
	ObjectsLoaded atomic.Int64 // object versions committed to the warehouse
	Duplicates    atomic.Int64 // deliveries that found their version already loaded
	Rows          atomic.Int64 // rows committed
	DeadLettered  atomic.Int64 // messages dead-lettered by this process
	Retried       atomic.Int64 // messages nacked for a retry
	JobsSucceeded atomic.Int64 // job runs that succeeded
	JobsFailed    atomic.Int64 // job runs that failed
}

// Engine is an opened pipeline.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	Store *store.Store
	Topic *queue.Topic
	WH    *warehouse.Warehouse
	State *state.DB
	Stats Stats
	qopts queue.SubscriptionOptions
	// storeURL is the store URL as configured (with credentials), for job
	// processes; Store.URL() is redacted.
	storeURL string
	closer   []func()

	mu       sync.Mutex
	failures []string // reasons of messages this process dead-lettered
}

// URLs resolves the store, queue and warehouse URLs of spec against the
// data dir's embedded defaults.
func URLs(spec *pipeline.Spec, dir datadir.Dir) (storeURL, queueURL, whURL string) {
	storeURL, queueURL, whURL = spec.Store, spec.Queue, spec.Warehouse
	if storeURL == "" {
		storeURL = dir.StoreURL()
	}
	if queueURL == "" {
		queueURL = "embedded"
	}
	if whURL == "" {
		whURL = dir.WarehouseURL()
	}
	return
}

// Open opens everything the spec needs. Close releases it.
func Open(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, now: cfg.Clock}
	ok := false
	defer func() {
		if !ok {
			e.Close()
		}
	}()
	if err := cfg.DataDir.Ensure(); err != nil {
		return nil, err
	}
	storeURL, queueURL, whURL := URLs(cfg.Spec, cfg.DataDir)
	var err error
	if e.State, err = state.Open(ctx, cfg.DataDir.State()); err != nil {
		return nil, err
	}
	e.closer = append(e.closer, func() { e.State.Close() })
	e.storeURL = storeURL
	if e.Store, err = store.Open(ctx, storeURL, &store.Options{Clock: cfg.Clock}); err != nil {
		return nil, err
	}
	e.closer = append(e.closer, func() { e.Store.Close() })
	if e.Topic, e.qopts, err = OpenQueue(ctx, queueURL, cfg.Spec.Name, cfg.DataDir, cfg.Lock); err != nil {
		return nil, err
	}
	e.closer = append(e.closer, func() { e.Topic.Close() })
	if e.WH, err = warehouse.Open(ctx, whURL); err != nil {
		return nil, err
	}
	e.closer = append(e.closer, func() { e.WH.Close() })
	_ = e.State.Set(ctx, "pipeline", cfg.Spec.Name)
	// Recorded for `dlq ls`, without a password (which comes from
	// SLUICE_QUEUE or -f when needed).
	_ = e.State.Set(ctx, "queue", redactURL(queueURL))
	ok = true
	return e, nil
}

// Close releases everything Open opened, in reverse order.
func (e *Engine) Close() {
	for i := len(e.closer) - 1; i >= 0; i-- {
		e.closer[i]()
	}
	e.closer = nil
}

var streamSafe = regexp.MustCompile(`[^A-Za-z0-9_]`)

// OpenQueue opens the queue named by rawURL for pipeline name:
//
//	embedded[?ack_wait=30s&max_deliveries=5]   JetStream in this process, stored in the data dir
//	nats://host:port[?ack_wait=..&max_deliveries=..]
//	mem://[?...]                                 in-memory (tests; nothing survives the process)
//
// For embedded, lock must be the data dir's ownership: the queue's client
// URL is published in owner.json so other commands (dlq ls) can reach it.
// Without a lock, an embedded queue is reached through the owner's URL.
func OpenQueue(ctx context.Context, rawURL, name string, dir datadir.Dir, lock *datadir.Lock) (*queue.Topic, queue.SubscriptionOptions, error) {
	var opts queue.SubscriptionOptions
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, opts, fmt.Errorf("queue URL %q does not parse; write embedded, nats://HOST:PORT or mem://", redactURL(rawURL))
	}
	shown := u.Redacted() // for messages: never a password
	q := u.Query()
	if v := q.Get("ack_wait"); v != "" {
		if opts.AckWait, err = time.ParseDuration(v); err != nil || opts.AckWait < 100*time.Millisecond {
			return nil, opts, fmt.Errorf("queue URL %q: ack_wait=%q: want a duration of at least 100ms, such as 30s", shown, v)
		}
	}
	if v := q.Get("max_deliveries"); v != "" {
		if opts.MaxDeliveries, err = strconv.Atoi(v); err != nil || opts.MaxDeliveries < 1 {
			return nil, opts, fmt.Errorf("queue URL %q: max_deliveries=%q: want a whole number ≥ 1", shown, v)
		}
	}
	nopts := natsqueue.Options{
		Stream:  "SLUICE_" + strings.ToUpper(streamSafe.ReplaceAllString(name, "_")),
		Subject: "sluice." + streamSafe.ReplaceAllString(name, "_") + ".events",
	}
	var nc *nats.Conn
	var cleanup func()
	switch {
	case u.Scheme == "mem":
		return queue.NewTopic(shown, memqueue.New()), opts, nil
	case IsEmbedded(rawURL):
		if lock == nil {
			o, owned := dir.Owned()
			if !owned || o.QueueURL == "" {
				return nil, opts, fmt.Errorf("the embedded queue of %s runs only inside the process that owns the data dir; none is running — start `sluice run`, or use a nats:// queue", dir.Path)
			}
			if nc, err = nats.Connect(o.QueueURL, nats.Name("sluice")); err != nil {
				return nil, opts, fmt.Errorf("connect to the embedded queue of pid %d at %s: %w", o.PID, o.QueueURL, err)
			}
			cleanup = nc.Close
			break
		}
		emb, err := natsqueue.StartEmbedded(ctx, dir.Queue(), nil)
		if err != nil {
			return nil, opts, fmt.Errorf("start embedded queue in %s: %w", dir.Queue(), err)
		}
		if nc, err = emb.Connect(); err != nil {
			emb.Shutdown()
			return nil, opts, fmt.Errorf("connect to embedded queue: %w", err)
		}
		cleanup = func() { nc.Close(); emb.Shutdown() }
		if err := lock.Publish(datadir.Owner{QueueURL: emb.ClientURL()}); err != nil {
			cleanup()
			return nil, opts, err
		}
	case u.Scheme == "nats":
		hostURL := (&url.URL{Scheme: "nats", User: u.User, Host: u.Host}).String()
		if nc, err = nats.Connect(hostURL, nats.Name("sluice"), nats.Timeout(5*time.Second)); err != nil {
			return nil, opts, fmt.Errorf("connect to NATS at %s: %w (is nats-server running with JetStream, -js?)", u.Redacted(), err)
		}
		cleanup = nc.Close
	default:
		return nil, opts, fmt.Errorf("queue URL %q: unsupported; write embedded, nats://HOST:PORT or mem://", shown)
	}
	t, err := natsqueue.Open(ctx, nc, nopts)
	if err != nil {
		cleanup()
		return nil, opts, err
	}
	return queue.NewTopic(shown, &closingTopic{Topic: t, after: cleanup}), opts, nil
}

// closingTopic closes the NATS connection (and embedded server) after the topic.
type closingTopic struct {
	*natsqueue.Topic
	after func()
}

func (c *closingTopic) Close() error {
	err := c.Topic.Close()
	c.after()
	return err
}

// Emit publishes an ObjectCreated event for o.
func (e *Engine) Emit(ctx context.Context, o store.Object) error {
	body, err := event.Marshal(event.New(e.Store.Bucket(), o.Key, o.Size, o.ETag, e.now()))
	if err != nil {
		return err
	}
	if err := e.Topic.Publish(ctx, body, nil); err != nil {
		return fmt.Errorf("emit event for %s: %w", o.Key, err)
	}
	e.Stats.Events.Add(1)
	e.log.Debug("event published", "key", o.Key, "etag", o.ETag)
	return nil
}

// emitFound is the watcher's emit: files that appeared by other means.
func (e *Engine) emitFound(ctx context.Context, o store.Object) error {
	if skipKey(o.Key) {
		return nil
	}
	if err := e.Emit(ctx, o); err != nil {
		return err
	}
	e.Stats.Found.Add(1)
	e.log.Info("found object", "key", o.Key, "size", o.Size)
	return nil
}

// skipKey reports keys that never produce events: staging areas of
// committing writers (a path segment beginning with "." or "_temporary")
// and sluice's own job logs.
func skipKey(key string) bool {
	return curate.IsStaging(key) || strings.HasPrefix(key, LogPrefix)
}

func (e *Engine) fail(reason string) {
	e.mu.Lock()
	e.failures = append(e.failures, reason)
	e.mu.Unlock()
}

// Failures returns the reasons of the messages this engine dead-lettered.
func (e *Engine) Failures() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.failures...)
}

// errPermanent marks failures a retry cannot fix.
type errPermanent struct{ error }

func permanent(err error) error { return errPermanent{err} }

func isPermanent(err error) bool {
	var p errPermanent
	return errors.As(err, &p)
}

// IsEmbedded reports whether a queue URL names the embedded queue.
func IsEmbedded(queueURL string) bool {
	u, err := url.Parse(queueURL)
	return err == nil && u.Scheme == "" && u.Path == "embedded"
}

// RaisesEvents reports whether an object at key produces events (staging
// areas and sluice's own job logs do not).
func RaisesEvents(key string) bool { return !skipKey(key) }

// redactURL hides a password in a URL that may not parse.
func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	if i := strings.Index(raw, "@"); i >= 0 {
		return "…" + raw[i:]
	}
	return raw
}
