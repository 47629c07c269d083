// Package engine runs a pipeline spec in the process that owns the data dir:
// it opens the store, queue and warehouse the spec names (or the data dir's
// embedded defaults), emits an S3-format event for every object it lands or
// finds, runs the sources on their schedules and the loads as queue
// consumers.
//
// Delivery: a load acknowledges an event only after the object's rows and
// ledger row are committed (warehouse.Load), so a crash at any point means a
// redelivery, which the ledger turns into a no-op.
//
// Failure (package fault decides which kind): bad objects (malformed JSON,
// wrong types, limits, rows the warehouse rejects, a missing table) are
// dead-lettered at once with a reason naming the object and the record;
// transient failures (warehouse, store, queue or disk unavailable) are
// retried in place with capped exponential backoff for as long as
// Config.Retry allows — the worker holds its message and keeps its ack
// deadline fresh, so consumption pauses during an outage instead of burning
// deliveries — and are dead-lettered only after that. Dead letters are
// sluice's own: records in the state database (deadletter.DeadLetter), written
// before the message is acked, listable and replayable on every queue. A
// load's dead letter is resolved (deleted) when its object version is
// loaded, or when a replay finds that version superseded by a newer one of
// the same key: nothing is left to do for it then, and the store no longer
// holds it. A dead letter's reason leads with the cause (which table, row
// or column), since `sluice dlq ls` shows its first 200 characters.
//
// Event time, which orders the versions a merge or replace keeps (see
// objectVersion): for objects sluice writes, the engine clock when the write
// completed; for files found in the store (written by another program, or
// while sluice was down), the file's modification time, as for a replay —
// never the time sluice found them, since one scan finds many files and
// emits them in key order. A file copied in with an old modification time
// (cp -p) is therefore an old version.
//
// Cancellation: cancelling Run's ctx stops sources between requests and
// consumers between messages; an object being loaded is either committed
// or rolled back, never half-written.
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluicehq/sluice/curate"
	"github.com/sluicehq/sluice/deadletter"
	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/internal/datadir"
	"github.com/sluicehq/sluice/lease"
	"github.com/sluicehq/sluice/lineage"
	"github.com/sluicehq/sluice/metrics"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/queue"
	"github.com/sluicehq/sluice/queue/driver"
	"github.com/sluicehq/sluice/queue/memqueue"
	"github.com/sluicehq/sluice/queue/natsqueue"
	"github.com/sluicehq/sluice/queue/rabbitqueue"
	"github.com/sluicehq/sluice/queue/sqsqueue"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/warehouse"
	_ "github.com/sluicehq/sluice/warehouse/pgwh"     // registers postgres:// warehouses
	_ "github.com/sluicehq/sluice/warehouse/sqlitewh" // registers sqlite:// warehouses
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
	// Workers is the number of objects each load loads at once (default
	// DefaultWorkers). Merge and replace order rows by object version, not
	// by commit order, so concurrent loads give the same table.
	Workers int
	// ScanInterval and Settle tune the local store watcher (0: the spec's
	// watch: settings; 0 there too: a scan a second where it polls, and the
	// automatic settle window — none where Linux can tell that a file is
	// complete, store.DefaultSettle elsewhere; see store.WatchOptions).
	ScanInterval, Settle time.Duration
	// JobBinary is the sluice binary local job runs start ("" = this
	// executable; tests set the built binary).
	JobBinary string
	// Retry is the retry policy for transient failures of loads and jobs
	// (zero: fault's defaults, six hours).
	Retry fault.Retry
	// LeaseTTL is how long the leases of this process's duties and job runs
	// outlive its last heartbeat (default DefaultLeaseTTL).
	LeaseTTL time.Duration
	// Metrics receives what the engine does (nil: nothing is recorded).
	Metrics *metrics.Metrics
	// Lineage receives OpenLineage run events for loads and job runs (nil:
	// none are sent). The engine sends them in the background and closes
	// it.
	Lineage *lineage.Emitter
	// WriteOnly opens only what writing objects and announcing them needs
	// — the state, the store and the queue — for `sluice put`: no
	// warehouse, no notifications inbox, and no settings are recorded. Such
	// an Engine can Put and Announce, not Run.
	WriteOnly bool
}

// DefaultMaxDeliveries is the crash-loop guard when the queue URL sets no
// max_deliveries: a message delivered this many times without being acked
// (each time the process died or its ack deadline passed while working on
// it) is dead-lettered. Transient failures do not count: they are retried
// within one delivery.
const DefaultMaxDeliveries = 50

// HeaderTarget is the message header of a replayed event: the one
// subscription ("load-NAME" or "job-NAME") that should process it. Other
// subscriptions acknowledge it without doing anything.
const HeaderTarget = "Sluice-Target"

// Stats counts what a run did.
type Stats struct {
	Landed        atomic.Int64 // objects written by sources
	Found         atomic.Int64 // objects found in the local store by the watcher
	Events        atomic.Int64 // events published
	ObjectsLoaded atomic.Int64 // object versions committed to the warehouse
	Duplicates    atomic.Int64 // deliveries that found their version already loaded
	Rows          atomic.Int64 // rows committed
	DeadLettered  atomic.Int64 // messages dead-lettered by this process
	Retried       atomic.Int64 // retries after transient failures
	Rejected      atomic.Int64 // rows quarantined
	Warnings      atomic.Int64 // objects loaded with a warning (fields missing or undeclared)
	JobsSucceeded atomic.Int64 // job runs that succeeded
	JobsFailed    atomic.Int64 // job runs that failed
	OutputEvents  atomic.Int64 // events published for job runs' outputs
	LimitsHit     atomic.Int64 // objects refused by a limit (limits:, http.max_bytes)
	HTTPRetries   atomic.Int64 // HTTP requests of sources retried
	Unchanged     atomic.Int64 // source fetches that landed nothing: the page had not changed
}

// Engine is an opened pipeline.
type Engine struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	Store *store.Store
	Topic *queue.Topic
	WH    *warehouse.Warehouse
	State state.Store
	Stats Stats
	qopts queue.SubscriptionOptions
	// maxDeliveries is the crash-loop guard: a message delivered more often
	// than this without being settled is dead-lettered.
	maxDeliveries int
	// storeURL is the store URL as configured (with credentials), for job
	// processes; Store.URL() is redacted.
	storeURL string
	// holder is this process's identity in leases and run claims.
	holder   string
	leaseTTL time.Duration
	// inbox is the notifications inbox (nil without notifications:).
	inbox  driver.Subscription
	closer []func()

	mu       sync.Mutex
	failures []string              // reasons of work this process dead-lettered
	stalled  map[string]time.Time  // work being retried → its first failure
	subs     []*queue.Subscription // what Run consumes (watchSubscriptions)
	lineage  *lineageSender        // nil: no OpenLineage events
	whURL    string                // the warehouse URL as configured, for lineage dataset names
	unacked  []string              // work a shutdown interrupted (leftUnacked)
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
		cfg.Workers = DefaultWorkers()
	}
	if cfg.Retry == (fault.Retry{}) {
		cfg.Retry = cfg.Spec.Retry
	}
	if cfg.Settle <= 0 {
		cfg.Settle = cfg.Spec.Watch.Settle
	}
	if cfg.ScanInterval <= 0 {
		cfg.ScanInterval = cfg.Spec.Watch.Interval
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	e := &Engine{cfg: cfg, log: cfg.Logger, now: cfg.Clock, holder: lease.NewHolder(), leaseTTL: cfg.LeaseTTL}
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
	if e.State, err = state.Open(ctx, cfg.Spec.State, cfg.DataDir.Path); err != nil {
		return nil, err
	}
	e.closer = append(e.closer, func() { e.State.Close() })
	e.storeURL = storeURL
	if e.Store, err = store.Open(ctx, storeURL, &store.Options{Clock: cfg.Clock, Logger: cfg.Logger}); err != nil {
		return nil, err
	}
	e.closer = append(e.closer, func() { e.Store.Close() })
	if e.Topic, e.qopts, err = OpenQueue(ctx, queueURL, cfg.Spec, cfg.DataDir, cfg.Lock, cfg.Logger); err != nil {
		return nil, err
	}
	// sluice owns dead letters: the queue must never give up on a message
	// by itself. max_deliveries becomes the engine's crash-loop guard (see
	// consume).
	e.maxDeliveries = e.qopts.MaxDeliveries
	if e.maxDeliveries <= 0 {
		e.maxDeliveries = DefaultMaxDeliveries
	}
	e.qopts.MaxDeliveries = math.MaxInt32
	e.closer = append(e.closer, func() { e.Topic.Close() })
	if cfg.WriteOnly {
		ok = true
		return e, nil
	}
	if cfg.Spec.Notifications != nil {
		var closeInbox func()
		if e.inbox, closeInbox, err = e.openInbox(ctx); err != nil {
			return nil, err
		}
		e.closer = append(e.closer, closeInbox)
	}
	if e.WH, err = warehouse.Open(ctx, whURL); err != nil {
		return nil, err
	}
	e.closer = append(e.closer, func() { e.WH.Close() })
	e.whURL = whURL
	e.startLineage(cfg.Lineage)
	e.knownToMetrics()
	_ = e.State.SetSetting(ctx, "pipeline", cfg.Spec.Name)
	if abs, err := filepath.Abs(cfg.Spec.File); err == nil && fileExists(abs) {
		_ = e.State.SetSetting(ctx, "spec_file", abs) // for replay commands without -f
	}
	// Recorded for `dlq ls`, without a password (which comes from
	// SLUICE_QUEUE or -f when needed).
	_ = e.State.SetSetting(ctx, "queue", redactURL(queueURL))
	if cfg.Lock != nil {
		// The owner records its warehouse and state (passwords stripped)
		// and spec in the data dir: sql, jobs, dlq and replay read them
		// without -f or SLUICE_WAREHOUSE / SLUICE_STATE.
		rec := datadir.Recorded{Warehouse: cfg.Spec.Warehouse, State: cfg.Spec.State}
		if abs, err := filepath.Abs(cfg.Spec.File); err == nil && fileExists(abs) {
			rec.Spec = abs
		}
		if err := cfg.Lock.Record(rec); err != nil {
			e.log.Warn("sql, jobs and dlq will not find this pipeline's warehouse and state without SLUICE_WAREHOUSE / SLUICE_STATE", "err", err)
		}
	}
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
func OpenQueue(ctx context.Context, rawURL string, spec *pipeline.Spec, dir datadir.Dir, lock *datadir.Lock, logger *slog.Logger) (*queue.Topic, queue.SubscriptionOptions, error) {
	name := spec.Name
	if logger == nil {
		logger = slog.Default()
	}
	var opts queue.SubscriptionOptions
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, opts, fault.Permanent(fmt.Errorf("queue URL %q does not parse; write embedded, nats://HOST:PORT, amqp://USER:PASSWORD@HOST:5672/VHOST, sqs://PREFIX?region=REGION or mem://", redactURL(rawURL)))
	}
	shown := redacted(u) // for messages: never a password or token
	q := u.Query()
	if v := q.Get("ack_wait"); v != "" {
		if opts.AckWait, err = time.ParseDuration(v); err != nil || opts.AckWait < 100*time.Millisecond {
			return nil, opts, fault.Permanent(fmt.Errorf("queue URL %q: ack_wait=%q: want a duration of at least 100ms, such as 30s", shown, v))
		}
	}
	if v := q.Get("max_deliveries"); v != "" {
		if opts.MaxDeliveries, err = strconv.Atoi(v); err != nil || opts.MaxDeliveries < 1 {
			return nil, opts, fault.Permanent(fmt.Errorf("queue URL %q: max_deliveries=%q: want a whole number ≥ 1", shown, v))
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
	case u.Scheme == "amqp" || u.Scheme == "amqps":
		bare := *u
		bare.RawQuery = "" // ack_wait and max_deliveries are sluice's, not the broker's
		t, err := rabbitqueue.Open(ctx, bare.String(), rabbitqueue.Options{Exchange: "sluice." + streamSafe.ReplaceAllString(name, "_"), Logger: logger})
		if err != nil {
			return nil, opts, fmt.Errorf("open RabbitMQ queue %s: %w", shown, err)
		}
		return queue.NewTopic(shown, t), opts, nil
	case u.Scheme == "sqs":
		t, err := sqsqueue.Open(ctx, rawURL, &sqsqueue.Options{Prefix: "sluice-" + name, Subscriptions: Subscriptions(spec), Logger: logger})
		if err != nil {
			return nil, opts, fmt.Errorf("open SQS queue %s: %w", shown, err)
		}
		return queue.NewTopic(shown, t), opts, nil
	case IsEmbedded(rawURL):
		if lock == nil {
			o, owned := dir.Owned()
			if !owned || o.QueueURL == "" {
				return nil, opts, fmt.Errorf("the embedded queue of %s runs only inside the process that owns the data dir; none is running — start `sluice run`, or use a nats:// queue", dir.Path)
			}
			if nc, err = nats.Connect(o.QueueURL, nats.Name("sluice")); err != nil {
				return nil, opts, fmt.Errorf("connect to the embedded queue of pid %d at %s: %w", o.PID, redactURL(o.QueueURL), err)
			}
			cleanup = nc.Close
			break
		}
		emb, err := natsqueue.StartEmbedded(ctx, dir.Queue(), &natsqueue.EmbeddedOptions{Logger: logger})
		if err != nil {
			return nil, opts, fmt.Errorf("start embedded queue in %s: %w", dir.Queue(), err)
		}
		nopts.StorageErr = emb.StorageErr
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
			return nil, opts, fmt.Errorf("connect to NATS at %s: %w (is nats-server running with JetStream, -js?)", redacted(u), err)
		}
		cleanup = nc.Close
	default:
		return nil, opts, fault.Permanent(fmt.Errorf("queue URL %q: unsupported; write embedded, nats://HOST:PORT, amqp://USER:PASSWORD@HOST:5672/VHOST, sqs://PREFIX?region=REGION or mem://", shown))
	}
	t, err := natsqueue.Open(ctx, nc, nopts)
	if err != nil {
		cleanup()
		return nil, opts, err
	}
	return queue.NewTopic(shown, &closingTopic{Topic: t, after: cleanup}), opts, nil
}

// Subscriptions lists the bus subscriptions of spec: one per load
// ("load-NAME") and one per job ("job-NAME").
func Subscriptions(spec *pipeline.Spec) []string {
	var subs []string
	for _, l := range spec.Loads {
		subs = append(subs, "load-"+l.Name)
	}
	for _, j := range spec.Jobs {
		subs = append(subs, "job-"+j.Name)
	}
	return subs
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

// Emit publishes an ObjectCreated event for o, an object sluice has just
// written; the event time is now (the engine's clock).
func (e *Engine) Emit(ctx context.Context, o store.Object) error {
	return e.emit(ctx, o, e.now())
}

// emit publishes an ObjectCreated event for o with event time at, which
// orders o's version against other versions of the same rows (see
// objectVersion).
func (e *Engine) emit(ctx context.Context, o store.Object, at time.Time) error {
	body, err := event.Marshal(event.New(e.Store.Bucket(), o.Key, o.Size, o.ETag, at))
	if err != nil {
		return err
	}
	if err := e.Topic.Publish(ctx, body, nil); err != nil {
		return fmt.Errorf("emit event for %s: %w", o.Key, err)
	}
	e.Stats.Events.Add(1)
	e.cfg.Metrics.Published()
	e.log.Debug("event published", "key", o.Key, "etag", o.ETag)
	return nil
}

// emitFound is the watcher's emit: files that appeared by other means. The
// event time is the file's modification time, when the store reports one:
// that is when the version was written, as a replay's event says too. The
// time sluice found it is no order of versions: it comes at least the settle
// window later, and one scan finds many files (all of those written while
// sluice was down, or within one scan interval) and emits them in key order,
// so a merge would keep the file with the greatest key rather than the one
// written last.
func (e *Engine) emitFound(ctx context.Context, o store.Object) error {
	if skipKey(o.Key) {
		return nil
	}
	at := o.ModTime
	if at.IsZero() {
		at = e.now()
	}
	if err := e.emit(ctx, o, at); err != nil {
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
		return redacted(u)
	}
	if i := strings.Index(raw, "@"); i >= 0 {
		return "…" + raw[i:]
	}
	return raw
}

// redacted is u for messages: without a password, and without a user
// given alone, which NATS reads as a token (nats://TOKEN@HOST:PORT).
func redacted(u *url.URL) string {
	if u.User != nil {
		if _, ok := u.User.Password(); !ok {
			c := *u
			c.User = url.User("REDACTED")
			return c.String()
		}
	}
	return u.Redacted()
}

// retrying runs do until it succeeds, fails permanently, fails
// transiently past the retry budget, or ctx ends; between transient
// failures it waits with capped exponential backoff, and the work counts as
// stalled (see Stalled). key names the work in logs. It returns nil on
// success, ctx.Err() on shutdown, else the last error — marked permanent
// when the retry budget ran out — with the number of attempts and the time
// of the first failure.
func (e *Engine) retrying(ctx context.Context, key string, log *slog.Logger, do func() error) (err error, attempts int, first time.Time) {
	retry := e.cfg.Retry
	stalled := false
	defer func() {
		if stalled {
			e.mu.Lock()
			delete(e.stalled, key)
			e.mu.Unlock()
		}
	}()
	for attempt := 1; ; attempt++ {
		err := do()
		if err == nil {
			if attempt > 1 {
				log.Info("succeeded after retries", "key", key, "attempts", attempt)
			}
			return nil, attempt, first
		}
		if ctx.Err() != nil {
			return ctx.Err(), attempt, first
		}
		now := e.now()
		if attempt == 1 {
			first = now
		}
		if fault.IsPermanent(err) {
			return err, attempt, first
		}
		if retry.GiveUp(first, now) {
			return fault.Permanent(fmt.Errorf("still failing after %d attempts over %s (retry_for %s): %w",
				attempt, now.Sub(first).Round(time.Second), retry.Budget(), err)), attempt, first
		}
		if !stalled {
			stalled = true
			e.mu.Lock()
			if e.stalled == nil {
				e.stalled = map[string]time.Time{}
			}
			e.stalled[key] = first
			e.mu.Unlock()
		}
		delay := retry.Delay(attempt)
		e.Stats.Retried.Add(1)
		log.Warn("failed; retrying (a service it needs is unavailable)", "key", key, "attempt", attempt, "in", delay.Round(time.Millisecond), "err", err)
		if fault.Sleep(ctx, delay) != nil {
			return ctx.Err(), attempt, first
		}
	}
}

// Stalled returns the work being retried after a transient failure, and
// when the oldest of it first failed (zero when none is).
func (e *Engine) Stalled() (keys []string, since time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, t := range e.stalled {
		keys = append(keys, k)
		if since.IsZero() || t.Before(since) {
			since = t
		}
	}
	sort.Strings(keys)
	return keys, since
}

// ack acknowledges m, which may then never be delivered again.
func (e *Engine) ack(ctx context.Context, m *queue.Message, log *slog.Logger) {
	if err := m.Ack(ctx); err != nil && ctx.Err() == nil {
		log.Warn("ack failed; the message will be redelivered and skipped by the ledger", "err", err)
	}
}

// deadLetter records d in sluice's dead letters and reports whether it is
// committed (then the message that carried the work may be acked). When it
// cannot be recorded, the work must stay unacknowledged: it is redelivered
// later and fails, or succeeds, again.
func (e *Engine) deadLetter(ctx context.Context, d deadletter.DeadLetter) bool {
	now := e.now()
	if d.LastFailure.IsZero() {
		d.LastFailure = now
	}
	id, err := e.State.AddDeadLetter(ctx, d)
	if err != nil {
		e.log.Error("could not record a dead letter; the work will be retried", "target", d.Target, "key", d.Key, "err", err)
		return false
	}
	e.log.Error("dead-lettered", "id", id, "target", d.Target, "key", d.Key, "etag", d.ETag, "attempts", d.Attempts, "reason", d.Reason)
	e.Stats.DeadLettered.Add(1)
	e.cfg.Metrics.DeadLettered(string(d.Kind), d.Name)
	e.fail(fmt.Sprintf("dead letter %d (%s): %s", id, d.Target, d.Reason))
	return true
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// DefaultWorkers is how many objects a load loads at once unless told
// otherwise: one per CPU, at least 2, so that one object's decoding
// overlaps another's commit.
func DefaultWorkers() int { return max(2, runtime.GOMAXPROCS(0)) }
