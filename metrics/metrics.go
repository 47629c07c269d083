// Package metrics is what a sluice process tells Prometheus: one registry
// per process, served at /metrics by package console, with the process's
// own counters (objects and rows loaded, bytes read, rows quarantined, dead
// letters, redeliveries, job runs by state and their compute seconds,
// source fetches, HTTP responses and retries, limits hit), load and job
// durations as histograms, and queue depths read at scrape time.
//
// Every series is labelled by pipeline, and by the load, job or source it
// concerns. Counters count what this process did since it started, as
// Prometheus counters do: with several `sluice run` or `sluice worker`
// processes, sum them across instances (sum by (pipeline, load)
// (sluice_rows_loaded_total)).
//
// A nil *Metrics is valid and records nothing, so the engine never checks.
package metrics

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds one process's metrics.
type Metrics struct {
	reg prometheus.Registerer
	gat prometheus.Gatherer

	objects, rows, bytes, quarantined *prometheus.CounterVec // load
	duplicates                        *prometheus.CounterVec // load
	loadSeconds                       *prometheus.HistogramVec
	deadLetters                       *prometheus.CounterVec // kind, name
	redeliveries                      *prometheus.CounterVec // subscription
	jobRuns                           *prometheus.CounterVec // job, state
	jobSeconds                        *prometheus.HistogramVec
	computeSeconds                    *prometheus.CounterVec // job
	fetches                           *prometheus.CounterVec // source, outcome
	responses                         *prometheus.CounterVec // source, code
	retries                           *prometheus.CounterVec // source
	limits                            *prometheus.CounterVec // limit
	events                            prometheus.Counter
}

// New returns the metrics of a process running pipeline, with Go's and the
// process's own collectors beside them.
func New(pipeline string) *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r := prometheus.WrapRegistererWith(prometheus.Labels{"pipeline": pipeline}, reg)
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "sluice", Name: name, Help: help}, labels)
		r.MustRegister(c)
		return c
	}
	hist := func(name, help string, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "sluice", Name: name, Help: help,
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}}, labels)
		r.MustRegister(h)
		return h
	}
	m := &Metrics{reg: r, gat: reg}
	m.objects = counter("objects_loaded_total", "Object versions committed to the warehouse.", "load")
	m.rows = counter("rows_loaded_total", "Rows committed to the warehouse (quarantined rows not included).", "load")
	m.bytes = counter("bytes_read_total", "Bytes of objects read from the store by committed loads, as stored (compressed).", "load")
	m.quarantined = counter("rows_quarantined_total", "Bad rows kept in <table>__rejected instead of the table.", "load")
	m.duplicates = counter("duplicate_deliveries_total", "Deliveries whose object version the ledger already held (nothing written).", "load")
	m.loadSeconds = hist("load_duration_seconds", "Time to load one object version, from opening it to the commit.", "load")
	m.deadLetters = counter("dead_letters_total", "Times work was given up on and recorded as a dead letter (again, when a replay fails again).", "kind", "name")
	m.redeliveries = counter("redeliveries_total", "Messages delivered again (a crash, an expired ack deadline).", "subscription")
	m.jobRuns = counter("job_runs_total", "Job runs this process followed to their end, by final state.", "job", "state")
	m.jobSeconds = hist("job_duration_seconds", "Job run durations, STARTING to TERMINATED.", "job", "state")
	m.computeSeconds = counter("compute_seconds_total", "Compute seconds of ended job runs: (TERMINATED - STARTING) x instances, as `sluice jobs` shows.", "job")
	m.fetches = counter("source_fetches_total", "Source runs by outcome: landed, unchanged (nothing landed: 304 or skip_unchanged), empty (no page to land) or failed.", "source", "outcome")
	m.responses = counter("http_responses_total", "HTTP responses sources received, by status code.", "source", "code")
	m.retries = counter("http_retries_total", "HTTP requests of sources retried (429, 5xx, cut transfers).", "source")
	m.limits = counter("limits_hit_total", "Inputs refused by a limit (max_object_bytes, max_record_bytes, max_field_bytes, max_records, http.max_bytes).", "limit")
	m.events = prometheus.NewCounter(prometheus.CounterOpts{Namespace: "sluice", Name: "events_published_total", Help: "Object events published on the queue."})
	r.MustRegister(m.events)
	return m
}

// Known creates the series of the pipeline's loads, jobs and sources at
// zero, so that alerts on their increase see the first event.
func (m *Metrics) Known(loads, jobs, sources []string) {
	if m == nil {
		return
	}
	for _, l := range loads {
		m.objects.WithLabelValues(l)
		m.rows.WithLabelValues(l)
		m.quarantined.WithLabelValues(l)
		m.deadLetters.WithLabelValues("load", l)
	}
	for _, j := range jobs {
		m.computeSeconds.WithLabelValues(j)
		m.deadLetters.WithLabelValues("job", j)
		for _, st := range []string{"SUCCEEDED", "FAILED"} {
			m.jobRuns.WithLabelValues(j, st)
		}
	}
	for _, s := range sources {
		m.retries.WithLabelValues(s)
		for _, o := range []string{"landed", "unchanged", "empty", "failed"} {
			m.fetches.WithLabelValues(s, o)
		}
	}
}

// OpenDeadLetters registers a gauge of the dead letters waiting in the
// state, read by count at each scrape (2 s bound; a failed read leaves it
// out).
func (m *Metrics) OpenDeadLetters(count func(ctx context.Context) (int, error)) {
	if m == nil {
		return
	}
	_ = m.reg.Register(&depth{
		desc:    prometheus.NewDesc("sluice_dead_letters_open", "Dead letters in the state, waiting for a replay (all processes).", nil, nil),
		pending: count,
	})
}

// Handler serves the metrics in Prometheus' exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.gat, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Gatherer is the registry, for tests and linters.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.gat }

// Loaded counts one committed object version of load.
func (m *Metrics) Loaded(load string, rows, quarantined, bytes int64, took time.Duration) {
	if m == nil {
		return
	}
	m.objects.WithLabelValues(load).Inc()
	m.rows.WithLabelValues(load).Add(float64(rows))
	m.quarantined.WithLabelValues(load).Add(float64(quarantined))
	m.bytes.WithLabelValues(load).Add(float64(bytes))
	m.loadSeconds.WithLabelValues(load).Observe(took.Seconds())
}

// Duplicate counts a delivery of an already loaded version.
func (m *Metrics) Duplicate(load string) {
	if m == nil {
		return
	}
	m.duplicates.WithLabelValues(load).Inc()
}

// DeadLettered counts one dead letter of a load or job (kind "load" or
// "job") called name.
func (m *Metrics) DeadLettered(kind, name string) {
	if m == nil {
		return
	}
	m.deadLetters.WithLabelValues(kind, name).Inc()
}

// Redelivered counts a message delivered more than once.
func (m *Metrics) Redelivered(subscription string) {
	if m == nil {
		return
	}
	m.redeliveries.WithLabelValues(subscription).Inc()
}

// JobEnded counts a job run's end: its final state, duration and compute
// seconds.
func (m *Metrics) JobEnded(job, state string, took time.Duration, computeSeconds float64) {
	if m == nil {
		return
	}
	m.jobRuns.WithLabelValues(job, state).Inc()
	m.jobSeconds.WithLabelValues(job, state).Observe(took.Seconds())
	m.computeSeconds.WithLabelValues(job).Add(computeSeconds)
}

// Fetched counts one source request by outcome ("landed", "unchanged",
// "failed").
func (m *Metrics) Fetched(source, outcome string) {
	if m == nil {
		return
	}
	m.fetches.WithLabelValues(source, outcome).Inc()
}

// Response counts an HTTP response a source received.
func (m *Metrics) Response(source string, status int) {
	if m == nil {
		return
	}
	m.responses.WithLabelValues(source, strconv.Itoa(status)).Inc()
}

// Retry counts a source's HTTP retry.
func (m *Metrics) Retry(source string) {
	if m == nil {
		return
	}
	m.retries.WithLabelValues(source).Inc()
}

// LimitHit counts an input refused by limit (its spec key, such as
// "max_record_bytes").
func (m *Metrics) LimitHit(limit string) {
	if m == nil {
		return
	}
	m.limits.WithLabelValues(limit).Inc()
}

// Published counts an event published.
func (m *Metrics) Published() {
	if m == nil {
		return
	}
	m.events.Inc()
}

// QueueDepth registers a gauge of a subscription's pending messages, read
// by pending at each scrape (with a 2 s bound, so a slow broker cannot hang
// a scrape; a failed read leaves the series out).
func (m *Metrics) QueueDepth(subscription string, pending func(ctx context.Context) (int, error)) {
	if m == nil {
		return
	}
	// Register, not MustRegister: a second Run of one engine (a replay
	// after `demo --serve`) registers the same subscriptions again, and
	// the first registration's pending (which looks the subscription up
	// when scraped) serves both.
	_ = m.reg.Register(&depth{
		desc: prometheus.NewDesc("sluice_queue_pending", "Messages of a subscription not yet acknowledged.", nil,
			prometheus.Labels{"subscription": subscription}),
		pending: pending,
	})
}

type depth struct {
	desc    *prometheus.Desc
	pending func(ctx context.Context) (int, error)
}

func (d *depth) Describe(ch chan<- *prometheus.Desc) { ch <- d.desc }

func (d *depth) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := d.pending(ctx)
	if err != nil {
		return // left out: a scrape must not fail because a broker is away
	}
	ch <- prometheus.MustNewConstMetric(d.desc, prometheus.GaugeValue, float64(n))
}
