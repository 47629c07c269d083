package metrics

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

func TestANilMetricsRecordsNothingAndDoesNotPanic(t *testing.T) {
	var m *Metrics
	m.Loaded("l", 1, 0, 1, time.Second)
	m.Duplicate("l")
	m.DeadLettered("load", "l")
	m.Redelivered("s")
	m.JobEnded("j", "SUCCEEDED", time.Second, 1)
	m.Fetched("s", "landed")
	m.Response("s", 200)
	m.Retry("s")
	m.LimitHit("max_records")
	m.Published()
	m.QueueDepth("s", nil)
}

func TestCountersCarryThePipelineAndPassTheLinter(t *testing.T) {
	m := New("blog")
	m.Loaded("posts", 100, 2, 27520, 40*time.Millisecond)
	m.Loaded("posts", 5, 0, 100, time.Millisecond)
	m.JobEnded("hydro", "SUCCEEDED", 3*time.Second, 2.5)
	m.JobEnded("hydro", "FAILED", time.Second, 1)
	m.Response("api", 200)
	m.Response("api", 503)
	m.Retry("api")
	m.Fetched("api", "unchanged")
	m.LimitHit("max_record_bytes")
	m.DeadLettered("load", "posts")
	m.QueueDepth("load-posts", func(context.Context) (int, error) { return 7, nil })
	m.QueueDepth("job-hydro", func(context.Context) (int, error) { return 0, errors.New("broker away") })
	m.OpenDeadLetters(func(context.Context) (int, error) { return 3, nil })
	m.Known([]string{"posts", "comments"}, []string{"hydro"}, []string{"api"})

	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	text := string(body)
	for _, want := range []string{
		`sluice_rows_loaded_total{load="posts",pipeline="blog"} 105`,
		`sluice_objects_loaded_total{load="posts",pipeline="blog"} 2`,
		`sluice_rows_quarantined_total{load="posts",pipeline="blog"} 2`,
		`sluice_bytes_read_total{load="posts",pipeline="blog"} 27620`,
		`sluice_compute_seconds_total{job="hydro",pipeline="blog"} 3.5`,
		`sluice_job_runs_total{job="hydro",pipeline="blog",state="FAILED"} 1`,
		`sluice_http_responses_total{code="503",pipeline="blog",source="api"} 1`,
		`sluice_http_retries_total{pipeline="blog",source="api"} 1`,
		`sluice_source_fetches_total{outcome="unchanged",pipeline="blog",source="api"} 1`,
		`sluice_limits_hit_total{limit="max_record_bytes",pipeline="blog"} 1`,
		`sluice_dead_letters_total{kind="load",name="posts",pipeline="blog"} 1`,
		`sluice_queue_pending{pipeline="blog",subscription="load-posts"} 7`,
		`sluice_load_duration_seconds_count{load="posts",pipeline="blog"} 2`,
		`go_goroutines `,
		`sluice_dead_letters_open{pipeline="blog"} 3`,
		`sluice_rows_loaded_total{load="comments",pipeline="blog"} 0`,
		`sluice_source_fetches_total{outcome="failed",pipeline="blog",source="api"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(text, `subscription="job-hydro"`) {
		t.Error("a queue depth that could not be read was reported")
	}
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	if n, err := testutil.GatherAndCount(m.Gatherer(), "sluice_rows_loaded_total"); err != nil || n != 2 {
		t.Errorf("rows series = %d, %v; want 2 (posts, and comments at 0)", n, err)
	}
}
