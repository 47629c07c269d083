package httpsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// memLander is an in-memory Lander that keeps a copy of every object.
type memLander struct {
	mu      sync.Mutex
	objects []landed
	fail    error // returned by Land when set
}

type landed struct {
	key, contentType string
	body             []byte
}

var _ Lander = (*memLander)(nil)

func (m *memLander) Land(ctx context.Context, key string, r io.Reader, contentType string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	body, err := io.ReadAll(r) // test bodies are small
	if err != nil {
		return err // nothing is kept
	}
	for _, o := range m.objects {
		if o.key == key {
			return fmt.Errorf("memLander: %q already exists", key)
		}
	}
	m.objects = append(m.objects, landed{key: key, contentType: contentType, body: append([]byte(nil), body...)})
	return nil
}

func (m *memLander) bodies() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, o := range m.objects {
		out = append(out, string(o.body))
	}
	return out
}

// harness records what an Importer asked of its injected dependencies.
type harness struct {
	mu     sync.Mutex
	sleeps []time.Duration
	logs   []string
	env    map[string]string
	now    time.Time
}

func newHarness() *harness {
	return &harness{now: time.Date(2020, 8, 7, 14, 5, 9, 0, time.FixedZone("CEST", 2*3600)), env: map[string]string{}}
}

func (h *harness) options() *Options {
	n := 0
	return &Options{
		Clock: func() time.Time { h.mu.Lock(); defer h.mu.Unlock(); return h.now },
		Sleep: func(ctx context.Context, d time.Duration) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.sleeps = append(h.sleeps, d)
			return ctx.Err()
		},
		Rand:   func() float64 { return 0.5 },
		Getenv: func(k string) string { h.mu.Lock(); defer h.mu.Unlock(); return h.env[k] },
		Logger: slog.New(logCapture{h}),
		Unique: func() string { h.mu.Lock(); defer h.mu.Unlock(); n++; return fmt.Sprintf("%08x", n) },
	}
}

func (h *harness) sleepsSeen() []time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Duration(nil), h.sleeps...)
}

func (h *harness) allLogs() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.logs, "\n")
}

func mustNew(t *testing.T, cfg Config, opts *Options) *Importer {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "posts"
	}
	im, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return im
}

// server starts an httptest server whose handler also counts requests.
func server(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int)) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var count atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(w, r, int(count.Add(1)))
	}))
	t.Cleanup(srv.Close)
	return srv, &count
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func TestRunWithoutPaginationLandsTheRawBytesUnchangedInOneObject(t *testing.T) {
	// Odd spacing, escapes, non-ASCII, a BOM-less trailing newline: none of it may change.
	body := "[ {\"id\":1, \"title\":\"caf\u00e9 \\u00e9\\n\"},\n\t{\"id\": 2.50e1} ]\r\n"
	srv, count := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, body)
	})
	h := newHarness()
	im := mustNew(t, Config{URL: srv.URL + "/posts"}, h.options())
	var l memLander
	res, err := im.Run(context.Background(), &l)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := count.Load(); got != 1 {
		t.Errorf("requests = %d, want exactly 1", got)
	}
	if len(l.objects) != 1 {
		t.Fatalf("landed %d objects, want 1", len(l.objects))
	}
	if got := l.objects[0].body; string(got) != body {
		t.Errorf("landed body differs from the response:\n got %q\nwant %q", got, body)
	}
	if ct := l.objects[0].contentType; ct != "application/json; charset=utf-8" {
		t.Errorf("content type passed to Land = %q, want the response's", ct)
	}
	if len(res.Pages) != 1 || res.Pages[0].Bytes != len(body) || res.Bytes != int64(len(body)) ||
		res.Pages[0].Status != 200 || res.Pages[0].Attempts != 1 || res.Pages[0].Key != l.objects[0].key {
		t.Errorf("result = %+v, want one page of %d bytes, status 200, 1 attempt, key %q", res, len(body), l.objects[0].key)
	}
}

func TestRunWithoutPaginationLandsAnEmptyArray(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 200, "[]") })
	im := mustNew(t, Config{URL: srv.URL}, newHarness().options())
	var l memLander
	if _, err := im.Run(context.Background(), &l); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := l.bodies(); len(got) != 1 || got[0] != "[]" {
		t.Errorf("landed %q, want one object []", got)
	}
}

func TestDefaultLandKeyHasSourceDateTimeAndUniqueInUTC(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 200, "[1]") })
	h := newHarness()
	opts := h.options()
	opts.Unique = nil // the real generator
	im := mustNew(t, Config{URL: srv.URL}, opts)
	var l memLander
	if _, err := im.Run(context.Background(), &l); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// The clock says 14:05:09 at +02:00, which is 12:05:09 UTC.
	re := regexp.MustCompile(`^raw/posts/dt=2020-08-07/posts_20200807T120509Z_[0-9a-f]{8}\.json$`)
	if k := l.objects[0].key; !re.MatchString(k) {
		t.Errorf("key = %q, want it to match %s", k, re)
	}
}

func TestLandTemplateFieldsAreFilledPerPage(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Query().Get("page") == "3" {
			writeJSON(w, 200, "[]")
			return
		}
		writeJSON(w, 200, "[1]")
	})
	h := newHarness()
	im := mustNew(t, Config{
		URL:        srv.URL,
		Pagination: &Pagination{Type: "page"},
		Land:       "{{.Source}}|{{.Date}}|{{.Time}}|{{.Unique}}|{{.Page}}",
	}, h.options())
	var l memLander
	if _, err := im.Run(context.Background(), &l); err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := []string{
		"posts|2020-08-07|20200807T120509Z|00000001|1",
		"posts|2020-08-07|20200807T120509Z|00000002|2",
	}
	if len(l.objects) != len(want) {
		t.Fatalf("landed %d objects, want %d", len(l.objects), len(want))
	}
	for i, w := range want {
		if l.objects[i].key != w {
			t.Errorf("key %d = %q, want %q", i, l.objects[i].key, w)
		}
	}
}

func TestLandTemplateThatRepeatsAKeyFailsTheImport(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n > 2 {
			writeJSON(w, 200, "[]")
			return
		}
		writeJSON(w, 200, "[1]")
	})
	// New refuses a template that gives every page the same key, so the
	// repeat comes from a Unique source that repeats itself.
	opts := newHarness().options()
	opts.Unique = func() string { return "same" }
	im := mustNew(t, Config{URL: srv.URL, Pagination: &Pagination{Type: "page"}, Land: "raw/{{.Source}}/{{.Unique}}.json"}, opts)
	var l memLander
	res, err := im.Run(context.Background(), &l)
	if err == nil || !strings.Contains(err.Error(), "again") || !strings.Contains(err.Error(), "{{.Unique}}") {
		t.Fatalf("err = %v, want a repeated-key error suggesting {{.Unique}}", err)
	}
	if len(res.Pages) != 1 || len(l.objects) != 1 {
		t.Errorf("landed %d objects (result %d pages), want the first page only", len(l.objects), len(res.Pages))
	}
}

func TestPagePaginationStopsOnTheFirstEmptyPageWithoutLandingIt(t *testing.T) {
	var pages []string
	var mu sync.Mutex
	srv, count := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		mu.Lock()
		pages = append(pages, r.URL.RawQuery)
		mu.Unlock()
		p, _ := strconv.Atoi(r.URL.Query().Get("pg"))
		if p > 4 {
			writeJSON(w, 200, " [ ]\n")
			return
		}
		writeJSON(w, 200, fmt.Sprintf(`[{"page":%d}]`, p))
	})
	im := mustNew(t, Config{URL: srv.URL + "/posts?lang=en", Pagination: &Pagination{Type: "page", Param: "pg", Start: 2}}, newHarness().options())
	var l memLander
	res, err := im.Run(context.Background(), &l)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	wantBodies := []string{`[{"page":2}]`, `[{"page":3}]`, `[{"page":4}]`}
	if got := l.bodies(); strings.Join(got, ",") != strings.Join(wantBodies, ",") {
		t.Errorf("landed %q, want %q", got, wantBodies)
	}
	if count.Load() != 4 {
		t.Errorf("requests = %d, want 4 (three pages and the empty one)", count.Load())
	}
	if pages[0] != "lang=en&pg=2" || pages[3] != "lang=en&pg=5" {
		t.Errorf("queries = %q, want the existing parameter kept and pg counting from 2", pages)
	}
	for i, p := range res.Pages {
		if p.N != i+1 {
			t.Errorf("page %d has N = %d", i, p.N)
		}
	}
}

func TestPagePaginationStopsAfterAShortPageWhenSizeIsSet(t *testing.T) {
	srv, count := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Query().Get("per_page") != "2" {
			writeJSON(w, 400, `{"error":"per_page missing"}`)
			return
		}
		switch r.URL.Query().Get("page") {
		case "1", "2":
			writeJSON(w, 200, `[1,2]`)
		case "3":
			writeJSON(w, 200, `[3]`)
		default:
			t.Errorf("unexpected request %s", r.URL)
			writeJSON(w, 200, `[]`)
		}
	})
	im := mustNew(t, Config{URL: srv.URL, Pagination: &Pagination{Type: "page", SizeParam: "per_page", Size: 2}}, newHarness().options())
	var l memLander
	res, err := im.Run(context.Background(), &l)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(res.Pages) != 3 || count.Load() != 3 {
		t.Errorf("landed %d pages in %d requests, want 3 in 3 (the short page ends it)", len(res.Pages), count.Load())
	}
}

func TestOffsetPaginationStepsBySizeAndCountsItemsAtItemsPath(t *testing.T) {
	var offsets []string
	var mu sync.Mutex
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		q := r.URL.Query()
		mu.Lock()
		offsets = append(offsets, q.Get("offset")+"/"+q.Get("limit"))
		mu.Unlock()
		switch q.Get("offset") {
		case "0", "10":
			writeJSON(w, 200, `{"data":[`+strings.Repeat(`{},`, 9)+`{}],"total":25}`)
		case "20":
			writeJSON(w, 200, `{"data":[{},{},{},{},{}],"total":25}`)
		default:
			writeJSON(w, 200, `{"data":[],"total":25}`)
		}
	})
	im := mustNew(t, Config{URL: srv.URL, Pagination: &Pagination{Type: "offset", SizeParam: "limit", Size: 10, ItemsPath: "data"}}, newHarness().options())
	var l memLander
	res, err := im.Run(context.Background(), &l)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := strings.Join(offsets, " "); got != "0/10 10/10 20/10" {
		t.Errorf("offset/limit sent = %s, want 0/10 10/10 20/10", got)
	}
	if len(res.Pages) != 3 {
		t.Errorf("landed %d pages, want 3", len(res.Pages))
	}
}

func TestOffsetPaginationSkipsAnEmptyItemsArrayAtTheEnd(t *testing.T) {
	srv, count := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Query().Get("offset") == "0" {
			writeJSON(w, 200, `{"data":[1,2]}`)
			return
		}
		writeJSON(w, 200, `{"data":[]}`)
	})
	im := mustNew(t, Config{URL: srv.URL, Pagination: &Pagination{Type: "offset", Size: 2, ItemsPath: "data"}}, newHarness().options())
	var l memLander
	if _, err := im.Run(context.Background(), &l); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := l.bodies(); len(got) != 1 || got[0] != `{"data":[1,2]}` || count.Load() != 2 {
		t.Errorf("landed %q in %d requests, want only the first page in 2 requests", got, count.Load())
	}
}

func TestCursorPaginationFollowsTheCursorAtANestedPathUntilNull(t *testing.T) {
	bodies := map[string]string{
		"":                     `{"items":[1],"meta":{"next":"c2"}}`,
		"c2":                   `{"items":[2],"meta":{"next":12345678901234567890}}`,
		"12345678901234567890": `{"items":[3],"meta":{"next":null}}`,
	}
	var got []string
	var mu sync.Mutex
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		c := r.URL.Query().Get("after")
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
		b, ok := bodies[c]
		if !ok {
			writeJSON(w, 400, `{"error":"bad cursor"}`)
			return
		}
		writeJSON(w, 200, b)
	})
	im := mustNew(t, Config{URL: srv.URL, Pagination: &Pagination{Type: "cursor", Param: "after", CursorPath: "meta.next"}}, newHarness().options())
	var l memLander
	res, err := im.Run(context.Background(), &l)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if strings.Join(got, ",") != ",c2,12345678901234567890" {
		t.Errorf("cursors sent = %q, want none, c2, then the number as written", got)
	}
	if len(res.Pages) != 3 || len(l.objects) != 3 || l.objects[2].key == l.objects[1].key {
		t.Errorf("landed %d objects with keys %v, want 3 distinct", len(l.objects), res.Pages)
	}
}

func TestCursorPaginationStopsWhenTheCursorIsAbsentOrEmpty(t *testing.T) {
	for _, last := range []string{`{"items":[2]}`, `{"items":[2],"meta":{}}`, `{"items":[2],"meta":{"next":""}}`} {
		srv, count := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				writeJSON(w, 200, `{"items":[1],"meta":{"next":"x"}}`)
				return
			}
			writeJSON(w, 200, last)
		})
		im := mustNew(t, Config{URL: srv.URL, Pagination: &Pagination{Type: "cursor", CursorPath: "meta.next"}}, newHarness().options())
		var l memLander
		if _, err := im.Run(context.Background(), &l); err != nil {
			t.Fatalf("last page %s: Run: %v", last, err)
		}
		if count.Load() != 2 || len(l.objects) != 2 {
			t.Errorf("last page %s: %d requests, %d objects; want 2 and 2", last, count.Load(), len(l.objects))
		}
	}
}

func TestCursorPaginationRefusesARepeatedCursor(t *testing.T) {
	srv, count := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, `{"items":[1],"next":"same"}`)
	})
	im := mustNew(t, Config{URL: srv.URL, Pagination: &Pagination{Type: "cursor", CursorPath: "next"}}, newHarness().options())
	_, err := im.Run(context.Background(), &memLander{})
	if err == nil || !strings.Contains(err.Error(), `cursor "same" again`) {
		t.Fatalf("err = %v, want a repeated-cursor error", err)
	}
	if count.Load() != 2 {
		t.Errorf("requests = %d, want 2", count.Load())
	}
}

func TestLinkPaginationFollowsRelativeAndAbsoluteNextLinks(t *testing.T) {
	var srvURL string
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch r.URL.RequestURI() {
		case "/v1/posts":
			w.Header().Add("Link", `<https://example.com/docs>; rel="help"`)
			w.Header().Add("Link", `<posts?page=2>; rel="next last", <posts>; rel=first`)
			writeJSON(w, 200, `[1]`)
		case "/v1/posts?page=2":
			w.Header().Set("Link", fmt.Sprintf(`<%s/v2/more?page=3&signature=s3cr3t#frag>; rel="next"`, srvURL))
			writeJSON(w, 200, `[2]`)
		case "/v2/more?page=3&signature=s3cr3t":
			w.Header().Set("Link", `</v1/posts>; rel="first"`)
			writeJSON(w, 200, `[3]`)
		default:
			t.Errorf("unexpected request %s", r.URL.RequestURI())
			writeJSON(w, 404, `{}`)
		}
	})
	srvURL = srv.URL
	im := mustNew(t, Config{URL: srv.URL + "/v1/posts", Pagination: &Pagination{Type: "link"}}, newHarness().options())
	var l memLander
	res, err := im.Run(context.Background(), &l)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := l.bodies(); strings.Join(got, "") != "[1][2][3]" {
		t.Errorf("landed %q, want [1] [2] [3]", got)
	}
	// Followed links follow the one redaction rule: the page number shows,
	// a signature does not.
	if res.Pages[2].URL != srv.URL+"/v2/more?page=3&signature=REDACTED" {
		t.Errorf("page 3 URL = %q, want it resolved, without fragment, the signature redacted", res.Pages[2].URL)
	}
}

func TestLinkPaginationWithAuthRefusesAnotherOrigin(t *testing.T) {
	other, otherCount := server(t, func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 200, `[2]`) })
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Link", "<"+other.URL+"/steal>; rel=next")
		writeJSON(w, 200, `[1]`)
	})
	h := newHarness()
	h.env["API_TOKEN"] = "tok-123456"
	im := mustNew(t, Config{URL: srv.URL, Auth: &Auth{Env: "API_TOKEN", Scheme: "Bearer"}, Pagination: &Pagination{Type: "link"}}, h.options())
	_, err := im.Run(context.Background(), &memLander{})
	if err == nil || !strings.Contains(err.Error(), "another origin") {
		t.Fatalf("err = %v, want a refusal to follow the link to another origin", err)
	}
	if otherCount.Load() != 0 {
		t.Errorf("the other origin got %d requests, want 0", otherCount.Load())
	}
}

func TestMaxPagesBoundsEachPaginationType(t *testing.T) {
	for _, typ := range []string{"page", "offset", "cursor", "link"} {
		t.Run(typ, func(t *testing.T) {
			srv, count := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Link", fmt.Sprintf("</p%d>; rel=next", n+1))
				writeJSON(w, 200, fmt.Sprintf(`[{"n":%d}]`, n))
			})
			p := &Pagination{Type: typ, MaxPages: 3}
			switch typ {
			case "offset":
				p.Size = 1
			case "cursor":
				p.CursorPath = "0.n"
			}
			im := mustNew(t, Config{URL: srv.URL + "/p1", Pagination: p}, newHarness().options())
			var l memLander
			res, err := im.Run(context.Background(), &l)
			if !errors.Is(err, ErrTooManyPages) || !strings.Contains(err.Error(), "pagination did not end after 3 pages; raise max_pages") {
				t.Fatalf("err = %v, want ErrTooManyPages with advice", err)
			}
			if len(res.Pages) != 3 || len(l.objects) != 3 {
				t.Errorf("landed %d pages (%d objects), want 3", len(res.Pages), len(l.objects))
			}
			if max := int32(4); count.Load() > max {
				t.Errorf("requests = %d, want at most %d", count.Load(), max)
			}
		})
	}
}

func TestMaxPagesIsNotAnErrorWhenThePageAfterTheLastIsEmpty(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n > 2 {
			writeJSON(w, 200, `{}`)
			return
		}
		writeJSON(w, 200, `[1]`)
	})
	im := mustNew(t, Config{URL: srv.URL, Pagination: &Pagination{Type: "page", MaxPages: 2}}, newHarness().options())
	res, err := im.Run(context.Background(), &memLander{})
	if err != nil || len(res.Pages) != 2 {
		t.Fatalf("Run = %d pages, %v; want 2 pages and no error", len(res.Pages), err)
	}
}

func TestServerErrorsAreRetriedWithExponentialJitteredBackoff(t *testing.T) {
	srv, count := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n <= 3 {
			writeJSON(w, 500+n-1, `{"error":"busy"}`)
			return
		}
		writeJSON(w, 200, `[1]`)
	})
	h := newHarness()
	im := mustNew(t, Config{URL: srv.URL, Backoff: time.Second, MaxBackoff: 3 * time.Second}, h.options())
	var l memLander
	res, err := im.Run(context.Background(), &l)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if count.Load() != 4 || res.Pages[0].Attempts != 4 {
		t.Errorf("requests = %d, attempts = %d; want 4 and 4", count.Load(), res.Pages[0].Attempts)
	}
	// Rand is 0.5: half of 1s, 2s, then 4s capped at 3s.
	want := []time.Duration{500 * time.Millisecond, time.Second, 1500 * time.Millisecond}
	if got := h.sleepsSeen(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("sleeps = %v, want %v", got, want)
	}
	if logs := h.allLogs(); strings.Count(logs, "retrying in") != 3 {
		t.Errorf("logs should have one line per retry:\n%s", logs)
	}
}

func TestTooManyRequestsHonoursRetryAfterSeconds(t *testing.T) {
	srv, count := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			w.Header().Set("Retry-After", "7")
			writeJSON(w, 429, `{"error":"slow down"}`)
			return
		}
		writeJSON(w, 200, `[1]`)
	})
	h := newHarness()
	im := mustNew(t, Config{URL: srv.URL}, h.options())
	if _, err := im.Run(context.Background(), &memLander{}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := h.sleepsSeen(); len(got) != 1 || got[0] != 7*time.Second || count.Load() != 2 {
		t.Errorf("sleeps = %v after %d requests, want [7s] and 2", got, count.Load())
	}
}

func TestServiceUnavailableHonoursRetryAfterDateAndCapsIt(t *testing.T) {
	h := newHarness()
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{
		{h.now.Add(42 * time.Second).UTC().Format(http.TimeFormat), 42 * time.Second},
		{h.now.Add(time.Hour).UTC().Format(http.TimeFormat), MaxRetryAfter},
		{"0", 250 * time.Millisecond}, // smaller than the backoff: the backoff wins
	} {
		srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
			if n == 1 {
				w.Header().Set("Retry-After", tc.header)
				writeJSON(w, 503, `{}`)
				return
			}
			writeJSON(w, 200, `[1]`)
		})
		h.sleeps = nil
		im := mustNew(t, Config{URL: srv.URL}, h.options())
		if _, err := im.Run(context.Background(), &memLander{}); err != nil {
			t.Fatalf("Retry-After %q: Run: %v", tc.header, err)
		}
		if got := h.sleepsSeen(); len(got) != 1 || got[0] != tc.want {
			t.Errorf("Retry-After %q: sleeps = %v, want [%s]", tc.header, got, tc.want)
		}
	}
}

func TestNotFoundFailsAtOnceNamingURLStatusAndBody(t *testing.T) {
	srv, count := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 404, `{"message": "no such   route"}`)
	})
	h := newHarness()
	im := mustNew(t, Config{URL: srv.URL + "/nope?api_key=hunter2&page=1"}, h.options())
	res, err := im.Run(context.Background(), &memLander{})
	if err == nil {
		t.Fatal("Run succeeded on a 404")
	}
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 404 {
		t.Fatalf("err = %v, want a *StatusError with status 404", err)
	}
	msg := err.Error()
	for _, want := range []string{`source "posts"`, srv.URL + "/nope?api_key=REDACTED", "404 Not Found", `no such route`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not contain %q", msg, want)
		}
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("error %q contains the query secret", msg)
	}
	if count.Load() != 1 || len(h.sleepsSeen()) != 0 || len(res.Pages) != 0 {
		t.Errorf("requests = %d, sleeps = %v, pages = %d; want 1, none, 0", count.Load(), h.sleepsSeen(), len(res.Pages))
	}
}

func TestExhaustedRetriesReportAttemptsAndTheLastCause(t *testing.T) {
	srv, count := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 502, fmt.Sprintf(`{"error":"bad gateway %d"}`, n))
	})
	h := newHarness()
	im := mustNew(t, Config{URL: srv.URL, Retries: 2}, h.options())
	_, err := im.Run(context.Background(), &memLander{})
	if err == nil || !strings.Contains(err.Error(), "giving up after 3 attempts") || !strings.Contains(err.Error(), "bad gateway 3") {
		t.Fatalf("err = %v, want giving up after 3 attempts with the last body", err)
	}
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 502 {
		t.Errorf("err does not wrap the last *StatusError")
	}
	if count.Load() != 3 || len(h.sleepsSeen()) != 2 {
		t.Errorf("requests = %d, sleeps = %d; want 3 and 2", count.Load(), len(h.sleepsSeen()))
	}
}

func TestNewGivesTheSameConfigWhenGivenItsOwnConfig(t *testing.T) {
	for _, cfg := range []Config{
		{Name: "a", URL: "https://x", Retries: -1},
		{Name: "b", URL: "https://x", Headers: map[string]string{"X-A": "1"}, Auth: &Auth{Env: "T"}, ExpectContentType: "*",
			Pagination: &Pagination{Type: "page", SizeParam: "n", Size: 5}},
	} {
		c1 := mustNew(t, cfg, nil).Config()
		c2 := mustNew(t, c1, nil).Config()
		if !reflect.DeepEqual(c1, c2) {
			t.Errorf("New(Config()) changed the config:\n got %+v\nwant %+v", c2, c1)
		}
		if cfg.Retries < 0 && c1.Retries >= 0 {
			t.Errorf("Config().Retries = %d for no retries; a second New would apply the default", c1.Retries)
		}
	}
}

func TestSizeParamGoesWithEveryCursorRequestAndTheFirstLinkRequest(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		mu.Lock()
		got = append(got, r.URL.RawQuery)
		mu.Unlock()
		switch {
		case r.URL.Path == "/cursor" && n == 1:
			writeJSON(w, 200, `{"items":[1],"next":"c2"}`)
		case r.URL.Path == "/cursor":
			writeJSON(w, 200, `{"items":[2],"next":null}`)
		case n == 3:
			w.Header().Set("Link", `</link?page=2&per_page=10>; rel="next"`)
			writeJSON(w, 200, `[1]`)
		default:
			writeJSON(w, 200, `[2]`)
		}
	})
	im := mustNew(t, Config{URL: srv.URL + "/cursor", Pagination: &Pagination{Type: "cursor", CursorPath: "next", SizeParam: "limit", Size: 10}}, newHarness().options())
	if _, err := im.Run(context.Background(), &memLander{}); err != nil {
		t.Fatalf("cursor: Run: %v", err)
	}
	im = mustNew(t, Config{URL: srv.URL + "/link", Pagination: &Pagination{Type: "link", SizeParam: "per_page", Size: 10}}, newHarness().options())
	if _, err := im.Run(context.Background(), &memLander{}); err != nil {
		t.Fatalf("link: Run: %v", err)
	}
	want := []string{"limit=10", "cursor=c2&limit=10", "per_page=10", "page=2&per_page=10"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("queries = %q, want %q", got, want)
	}
}

func TestNegativeRetriesMeansASingleTry(t *testing.T) {
	srv, count := server(t, func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 500, `{}`) })
	im := mustNew(t, Config{URL: srv.URL, Retries: -1}, newHarness().options())
	if _, err := im.Run(context.Background(), &memLander{}); err == nil || count.Load() != 1 {
		t.Errorf("err = %v after %d requests; want an error after 1", err, count.Load())
	}
}

func TestARequestThatTimesOutIsRetried(t *testing.T) {
	srv, count := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			select { // hang until the client gives up
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
			return
		}
		writeJSON(w, 200, `[1]`)
	})
	h := newHarness()
	im := mustNew(t, Config{URL: srv.URL, Timeout: 100 * time.Millisecond}, h.options())
	res, err := im.Run(context.Background(), &memLander{})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if count.Load() != 2 || res.Pages[0].Attempts != 2 || len(h.sleepsSeen()) != 1 {
		t.Errorf("requests = %d, attempts = %d, sleeps = %v; want 2, 2, one sleep", count.Load(), res.Pages[0].Attempts, h.sleepsSeen())
	}
	if logs := h.allLogs(); !strings.Contains(logs, "timed out after 100ms") {
		t.Errorf("logs do not mention the timeout:\n%s", logs)
	}
}

func TestCancellingTheContextStopsRetrying(t *testing.T) {
	srv, count := server(t, func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 500, `{}`) })
	ctx, cancel := context.WithCancel(context.Background())
	opts := newHarness().options()
	opts.Sleep = func(ctx context.Context, d time.Duration) error { cancel(); return ctx.Err() }
	im := mustNew(t, Config{URL: srv.URL}, opts)
	_, err := im.Run(ctx, &memLander{})
	if !errors.Is(err, context.Canceled) || count.Load() != 1 {
		t.Errorf("err = %v after %d requests; want context.Canceled after 1", err, count.Load())
	}
}

func TestContentTypeMismatchFailsNamingTheExpectedType(t *testing.T) {
	srv, count := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<html>login</html>"))
	})
	im := mustNew(t, Config{URL: srv.URL}, newHarness().options())
	var l memLander
	_, err := im.Run(context.Background(), &l)
	if err == nil || !strings.Contains(err.Error(), `expected "application/json"`) || !strings.Contains(err.Error(), `text/html`) {
		t.Fatalf("err = %v, want a content type error naming both types", err)
	}
	if count.Load() != 1 || len(l.objects) != 0 {
		t.Errorf("requests = %d, objects = %d; want 1 and 0 (not retried, not landed)", count.Load(), len(l.objects))
	}

	anyType := mustNew(t, Config{URL: srv.URL, ExpectContentType: "*"}, newHarness().options())
	if _, err := anyType.Run(context.Background(), &l); err != nil || len(l.objects) != 1 {
		t.Errorf(`with "*": err = %v, objects = %d; want the page landed`, err, len(l.objects))
	}
	html := mustNew(t, Config{URL: srv.URL, ExpectContentType: "Text/HTML"}, newHarness().options())
	if _, err := html.Run(context.Background(), &memLander{}); err != nil {
		t.Errorf("expecting Text/HTML: %v, want the charset parameter and case ignored", err)
	}
}

func TestHeadersUserAgentAndAcceptAreSent(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.Header.Get("User-Agent") != "sluice/"+Version || r.Header.Get("Accept") != "application/json" || r.Header.Get("X-Tenant") != "acme" {
			writeJSON(w, 400, fmt.Sprintf(`{"headers":%q}`, r.Header))
			return
		}
		writeJSON(w, 200, `[]`)
	})
	im := mustNew(t, Config{URL: srv.URL, Headers: map[string]string{"X-Tenant": "acme"}}, newHarness().options())
	if _, err := im.Run(context.Background(), &memLander{}); err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestAuthHeaderIsSentButNeverAppearsInLogsOrErrors(t *testing.T) {
	const secret = "s3cr3t-Value-9f8e7d"
	srv, count := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		got := r.Header.Get("X-Api-Key")
		if got != "Token "+secret {
			writeJSON(w, 400, `{"error":"wrong or missing key"}`)
			return
		}
		switch n {
		case 1: // a server that echoes the credential back in an error body
			writeJSON(w, 500, `{"error":"internal","you_sent":"`+got+`"}`)
		case 2:
			w.Header().Set("Link", "</page2?token="+secret+">; rel=next")
			writeJSON(w, 200, `[1]`)
		default:
			writeJSON(w, 401, `{"error":"key `+secret+` revoked"}`)
		}
	})
	h := newHarness()
	h.env["SRC_KEY"] = secret
	im := mustNew(t, Config{
		URL:        srv.URL,
		Auth:       &Auth{Header: "X-Api-Key", Env: "SRC_KEY", Scheme: "Token"},
		Pagination: &Pagination{Type: "link"},
	}, h.options())
	res, err := im.Run(context.Background(), &memLander{})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v, want the 401 of the second page", err)
	}
	if count.Load() != 3 || len(res.Pages) != 1 {
		t.Fatalf("requests = %d, pages = %d; want 3 and 1 (the header was not accepted)", count.Load(), len(res.Pages))
	}
	var se *StatusError
	errors.As(err, &se)
	everything := h.allLogs() + "\n" + err.Error() + "\n" + fmt.Sprint(res) + "\n" + se.Body + se.URL
	if strings.Contains(everything, secret) {
		t.Errorf("the secret leaked:\n%s", everything)
	}
	if !strings.Contains(everything, "[REDACTED]") && !strings.Contains(everything, "REDACTED") {
		t.Errorf("expected a redaction marker where the secret was:\n%s", everything)
	}
}

func TestAuthReadsTheEnvironmentAtRequestTime(t *testing.T) {
	var seen []string
	var mu sync.Mutex
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		writeJSON(w, 200, `[]`)
	})
	h := newHarness()
	im := mustNew(t, Config{URL: srv.URL, Auth: &Auth{Env: "TOKEN"}}, h.options()) // not set yet: New must not care
	for _, tok := range []string{"first", "second"} {
		h.mu.Lock()
		h.env["TOKEN"] = tok
		h.mu.Unlock()
		if _, err := im.Run(context.Background(), &memLander{}); err != nil {
			t.Fatalf("Run: %v", err)
		}
	}
	if strings.Join(seen, ",") != "first,second" {
		t.Errorf("Authorization headers = %q, want the raw secret read per request", seen)
	}
}

func TestMissingAuthEnvironmentVariableFailsNamingIt(t *testing.T) {
	srv, count := server(t, func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 200, `[]`) })
	h := newHarness()
	im := mustNew(t, Config{URL: srv.URL, Auth: &Auth{Env: "POSTS_TOKEN", Scheme: "Bearer"}}, h.options())
	_, err := im.Run(context.Background(), &memLander{})
	if err == nil || !strings.Contains(err.Error(), "POSTS_TOKEN is not set") {
		t.Fatalf("err = %v, want it to name POSTS_TOKEN", err)
	}
	if count.Load() != 0 || len(h.sleepsSeen()) != 0 {
		t.Errorf("requests = %d, sleeps = %d; want none", count.Load(), len(h.sleepsSeen()))
	}
}

func TestRedirectToAnotherHostDropsTheAuthHeader(t *testing.T) {
	other, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if v := r.Header.Get("X-Key"); v != "" {
			writeJSON(w, 400, `{"error":"auth header leaked"}`)
			return
		}
		writeJSON(w, 200, `[1]`)
	})
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		// Another port on the same IP is another host for this purpose;
		// use the name localhost to make the host differ even by string.
		http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+"/x", http.StatusFound)
	})
	h := newHarness()
	h.env["K"] = "key-abc"
	im := mustNew(t, Config{URL: srv.URL, Auth: &Auth{Header: "X-Key", Env: "K"}}, h.options())
	var l memLander
	if _, err := im.Run(context.Background(), &l); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := l.bodies(); len(got) != 1 || got[0] != "[1]" {
		t.Errorf("landed %q, want the redirected body", got)
	}
}

func TestALanderErrorStopsTheImport(t *testing.T) {
	srv, count := server(t, func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 200, `[1]`) })
	im := mustNew(t, Config{URL: srv.URL, Pagination: &Pagination{Type: "page"}}, newHarness().options())
	boom := errors.New("disk full")
	res, err := im.Run(context.Background(), &memLander{fail: boom})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "page 1: landing 3 bytes at") {
		t.Fatalf("err = %v, want the lander's error wrapped with page and key", err)
	}
	if count.Load() != 1 || len(res.Pages) != 0 {
		t.Errorf("requests = %d, pages = %d; want 1 and 0", count.Load(), len(res.Pages))
	}
}

func TestABodyOverMaxBytesFails(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 200, `[1,2,3,4,5]`) })
	im := mustNew(t, Config{URL: srv.URL, MaxBytes: 5}, newHarness().options())
	if _, err := im.Run(context.Background(), &memLander{}); err == nil || !strings.Contains(err.Error(), "larger than http.max_bytes (5 bytes); raise sources.posts.http.max_bytes") {
		t.Errorf("err = %v, want a size limit error", err)
	}
}

func TestResultDurationUsesTheInjectedClock(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 200, `[1]`) })
	h := newHarness()
	opts := h.options()
	opts.Clock = func() time.Time { h.now = h.now.Add(2 * time.Second); return h.now }
	im := mustNew(t, Config{URL: srv.URL}, opts)
	res, err := im.Run(context.Background(), &memLander{})
	if err != nil || res.Duration != 2*time.Second {
		t.Errorf("Duration = %s, err = %v; want 2s", res.Duration, err)
	}
}

func TestNewAppliesDefaults(t *testing.T) {
	im := mustNew(t, Config{URL: "https://api.example.com/posts", Pagination: &Pagination{Type: "page"}, Auth: &Auth{Env: "X"}}, nil)
	c := im.Config()
	if c.Timeout != 30*time.Second || c.Retries != 5 || c.Backoff != 500*time.Millisecond || c.MaxBackoff != 30*time.Second ||
		c.ExpectContentType != "application/json" || c.Land != DefaultLand || c.Pagination.Param != "page" ||
		c.Pagination.Start != 1 || c.Pagination.MaxPages != 1000 || c.Auth.Header != "Authorization" || c.MaxBytes != DefaultMaxBytes {
		t.Errorf("defaults not applied: %+v %+v %+v", c, *c.Pagination, *c.Auth)
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	ok := Config{Name: "posts", URL: "https://api.example.com/posts"}
	with := func(f func(*Config)) Config { c := ok; f(&c); return c }
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no name", with(func(c *Config) { c.Name = "" }), "no name"},
		{"slash in name", with(func(c *Config) { c.Name = "a/b" }), "slashes"},
		{"ftp scheme", with(func(c *Config) { c.URL = "ftp://x/y" }), `scheme is "ftp"`},
		{"no host", with(func(c *Config) { c.URL = "http:///y" }), "no host"},
		{"bad url", with(func(c *Config) { c.URL = "http://x/%zz?key=s3kr1t" }), "does not parse"},
		{"negative timeout", with(func(c *Config) { c.Timeout = -1 }), "timeout is negative"},
		{"max backoff below backoff", with(func(c *Config) { c.Backoff = time.Minute; c.MaxBackoff = time.Second }), "shorter than backoff"},
		{"bad content type", with(func(c *Config) { c.ExpectContentType = "json; ;" }), "not a media type"},
		{"bad header name", with(func(c *Config) { c.Headers = map[string]string{"X Bad": "1"} }), "not a valid HTTP header name"},
		{"header with newline", with(func(c *Config) { c.Headers = map[string]string{"X-A": "1\r\nX-B: 2"} }), "line break"},
		{"auth without env", with(func(c *Config) { c.Auth = &Auth{} }), "auth has no env"},
		{"auth header twice", with(func(c *Config) {
			c.Auth = &Auth{Env: "T"}
			c.Headers = map[string]string{"authorization": "x"}
		}), "both in headers and by auth"},
		{"auth scheme with space", with(func(c *Config) { c.Auth = &Auth{Env: "T", Scheme: "Bear er"} }), "single word"},
		{"unknown pagination", with(func(c *Config) { c.Pagination = &Pagination{Type: "scroll"} }), `unknown type "scroll"`},
		{"no pagination type", with(func(c *Config) { c.Pagination = &Pagination{} }), "type is missing"},
		{"offset without size", with(func(c *Config) { c.Pagination = &Pagination{Type: "offset"} }), "needs a size"},
		{"cursor without path", with(func(c *Config) { c.Pagination = &Pagination{Type: "cursor"} }), "needs a cursor path"},
		{"cursor path empty segment", with(func(c *Config) { c.Pagination = &Pagination{Type: "cursor", CursorPath: "a..b"} }), "empty segment"},
		{"cursor path on page", with(func(c *Config) { c.Pagination = &Pagination{Type: "page", CursorPath: "a"} }), "not cursor"},
		{"size param without size", with(func(c *Config) { c.Pagination = &Pagination{Type: "page", SizeParam: "n"} }), "size is 0"},
		{"link with param", with(func(c *Config) { c.Pagination = &Pagination{Type: "link", Param: "p"} }), "takes no param"},
		{"negative max pages", with(func(c *Config) { c.Pagination = &Pagination{Type: "page", MaxPages: -1} }), "max pages is negative"},
		{"template does not parse", with(func(c *Config) { c.Land = "raw/{{.Source" }), "does not parse"},
		{"template unknown field", with(func(c *Config) { c.Land = "raw/{{.Nope}}" }), "Nope"},
		{"template absolute key", with(func(c *Config) { c.Land = "/raw/{{.Source}}" }), "starts with /"},
		{"template with range", with(func(c *Config) { c.Land = "raw/{{range .Source}}x{{end}}" }), "{{range .Source}}x{{end}} is not allowed"},
		{"paginated template with one key", with(func(c *Config) {
			c.Pagination = &Pagination{Type: "link"}
			c.Land = "raw/{{.Date}}.json"
		}), "same key"},
		{"template dot-dot", with(func(c *Config) { c.Land = "raw/../{{.Source}}" }), ".. path segment"},
		{"negative max bytes", with(func(c *Config) { c.MaxBytes = -1 }), "max bytes is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3kr1t") {
				t.Errorf("error %q repeats a query value of the URL", err)
			}
		})
	}
}

// logCapture is a slog.Handler keeping each message (with its level when
// above info) in the harness.
type logCapture struct{ h *harness }

func (c logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (c logCapture) Handle(_ context.Context, r slog.Record) error {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	msg := r.Message
	if r.Level > slog.LevelInfo {
		msg = r.Level.String() + " " + msg
	}
	c.h.logs = append(c.h.logs, msg)
	return nil
}

func (c logCapture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c logCapture) WithGroup(string) slog.Handler      { return c }
