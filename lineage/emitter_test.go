package lineage

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/lineage/lineagetest"
)

func startEvent(id uuid.UUID) RunEvent {
	return RunEvent{EventType: Start, EventTime: time.Now(), Run: Run{RunID: id}, Job: testJob}
}

func TestANilEmitterDoesNothing(t *testing.T) {
	e, err := Open(context.Background(), "", nil)
	if err != nil || e != nil {
		t.Fatalf(`Open("") = %v, %v; want nil, nil`, e, err)
	}
	if err := e.Emit(context.Background(), RunEvent{}); err != nil {
		t.Errorf("nil Emit: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("nil Close: %v", err)
	}
	if e.URL() != "" {
		t.Errorf("nil URL: %q", e.URL())
	}
}

func TestTheFileEmitterAppendsOneParsableLinePerEvent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lineage", "events.ndjson")
	fileURL := (&url.URL{Scheme: "file", Path: path}).String()
	e, err := Open(context.Background(), fileURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 64
	ids := map[uuid.UUID]bool{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range n {
		id := NewRunID()
		ids[id] = true
		wg.Go(func() {
			if err := e.Emit(context.Background(), startEvent(id)); err != nil {
				mu.Lock()
				t.Errorf("Emit: %v", err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Emit(context.Background(), startEvent(NewRunID())); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Emit after Close: %v, want an error saying closed", err)
	}

	// A second emitter on the same file appends.
	e2, err := Open(context.Background(), fileURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	last := NewRunID()
	ids[last] = true
	if err := e2.Emit(context.Background(), startEvent(last)); err != nil {
		t.Fatal(err)
	}
	e2.Close()

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[uuid.UUID]bool{}
	sc := bufio.NewScanner(f)
	lines := 0
	for sc.Scan() {
		lines++
		var ev RunEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d does not parse: %v\n%s", lines, err, sc.Bytes())
		}
		if ev.EventType != Start || ev.Job.Name != testJob.Name || ev.EventTime.IsZero() || ev.Producer != Producer {
			t.Errorf("line %d: %+v", lines, ev)
		}
		seen[ev.Run.RunID] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if lines != n+1 || len(seen) != n+1 {
		t.Errorf("%d lines, %d distinct runs; want %d of each", lines, len(seen), n+1)
	}
	for id := range ids {
		if !seen[id] {
			t.Errorf("run %s not in the file", id)
		}
	}
	events, problems := lineagetest.CheckFile(path)
	for _, p := range problems {
		t.Error(p)
	}
	if len(events) != n+1 {
		t.Errorf("CheckFile read %d events, want %d", len(events), n+1)
	}
}

func TestAnInvalidEventIsNotWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.ndjson")
	e, err := Open(context.Background(), "file://"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	err = e.Emit(context.Background(), RunEvent{EventType: Start, EventTime: time.Now(), Job: testJob})
	if err == nil || !strings.Contains(err.Error(), "runId") {
		t.Errorf("Emit without a run id: %v", err)
	}
	if b, _ := os.ReadFile(path); len(b) != 0 {
		t.Errorf("file holds %q", b)
	}
}

func TestOpenRefusesURLsItCannotServe(t *testing.T) {
	for _, tc := range []struct{ url, wantErr string }{
		{"kafka://broker:9092/lineage", "unsupported scheme"},
		{"file://relative/events.ndjson", "file URL has host"},
		{"file:///tmp/dir/", "absolute file path"},
		{"file:///tmp/x.ndjson?mode=600", "no query parameters"},
		{"http:///api/v1/lineage", "no host"},
		{"https://user:hunter2secret@%zz", "invalid URL"},
	} {
		e, err := Open(context.Background(), tc.url, nil)
		if err == nil {
			e.Close()
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("Open(%q): %v, want an error saying %q", tc.url, err, tc.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2secret") {
			t.Errorf("Open(%q): error shows the password: %v", tc.url, err)
		}
	}
}

func TestTheHTTPEmitterPostsEachEventAsJSON(t *testing.T) {
	t.Setenv(APIKeyEnv, "tok-123")
	var got atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/lineage" {
			t.Errorf("%s %s, want POST /api/v1/lineage", r.Method, r.URL.Path)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		if a := r.Header.Get("Authorization"); a != "Bearer tok-123" {
			t.Errorf("Authorization %q", a)
		}
		body, _ := io.ReadAll(r.Body)
		for _, p := range lineagetest.CheckEvent(body) {
			t.Error(p)
		}
		var ev map[string]any
		if err := json.Unmarshal(body, &ev); err != nil {
			t.Errorf("body is not JSON: %v\n%s", err, body)
		}
		run, _ := ev["run"].(map[string]any)
		if _, err := uuid.Parse(run["runId"].(string)); err != nil || ev["eventType"] != "COMPLETE" || ev["schemaURL"] != runEventSchemaURL {
			t.Errorf("body: %s", body)
		}
		outs, _ := ev["outputs"].([]any)
		if len(outs) != 1 || outs[0].(map[string]any)["name"] != "lake.curated.hydropower" {
			t.Errorf("outputs: %v", outs)
		}
		got.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()

	e, err := Open(context.Background(), srv.URL+"/api/v1/lineage", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ev := testEvents(t)[Complete]
	for range 3 {
		if err := e.Emit(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	if got.Load() != 3 {
		t.Errorf("server got %d events, want 3", got.Load())
	}
}

func TestAFailingServerIsAnErrorNamingTheURLWithoutSecrets(t *testing.T) {
	t.Setenv(APIKeyEnv, "")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The URL's user info is sent as basic auth (net/http does that);
		// no bearer token without the variable.
		if a := r.Header.Get("Authorization"); !strings.HasPrefix(a, "Basic ") {
			t.Errorf("Authorization %q, want the URL's basic auth", a)
		}
		http.Error(w, "marquez is down", http.StatusInternalServerError)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/api/v1/lineage?api_key=tok-secret-9&tenant=t1")
	u.User = url.UserPassword("ol", "hunter2secret")

	e, err := Open(context.Background(), u.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	err = e.Emit(context.Background(), startEvent(NewRunID()))
	if err == nil {
		t.Fatal("Emit succeeded against a 500")
	}
	msg := err.Error()
	host := strings.TrimPrefix(srv.URL, "http://")
	for _, want := range []string{host + "/api/v1/lineage", "500", "marquez is down", "START", "tenant=t1"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	for _, secret := range []string{"hunter2secret", "tok-secret-9"} {
		if strings.Contains(msg, secret) || strings.Contains(e.URL(), secret) {
			t.Errorf("error %q or URL %q shows %s", msg, e.URL(), secret)
		}
	}

	// Unreachable: the error still names the URL, without secrets.
	srv.Close()
	err = e.Emit(context.Background(), startEvent(NewRunID()))
	if err == nil || !strings.Contains(err.Error(), host+"/api/v1/lineage") || strings.Contains(err.Error(), "tok-secret-9") || strings.Contains(err.Error(), "hunter2secret") {
		t.Errorf("Emit to a closed server: %v", err)
	}
}

func TestCancellingTheContextAbandonsAPost(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	e, err := Open(context.Background(), srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = e.Emit(ctx, startEvent(NewRunID()))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Emit: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Emit returned after %v", d)
	}
}
