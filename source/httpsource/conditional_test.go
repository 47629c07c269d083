package httpsource

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// memMemory is an in-memory Memory.
type memMemory struct {
	mu   sync.Mutex
	kv   map[string]string
	fail error // returned by every call when set
}

var _ Memory = (*memMemory)(nil)

func newMemMemory() *memMemory { return &memMemory{kv: map[string]string{}} }

func (m *memMemory) Setting(ctx context.Context, k string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return "", m.fail
	}
	return m.kv[k], nil
}

func (m *memMemory) SetSetting(ctx context.Context, k, v string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.kv[k] = v
	return nil
}

// recordingObserver records what an Importer told its Observer.
type recordingObserver struct {
	mu       sync.Mutex
	statuses []int
	retries  int
	limits   []string
}

var _ Observer = (*recordingObserver)(nil)

func (o *recordingObserver) Response(source string, status int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.statuses = append(o.statuses, status)
}

func (o *recordingObserver) Retry(source string) { o.mu.Lock(); defer o.mu.Unlock(); o.retries++ }

func (o *recordingObserver) LimitHit(source, limit string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.limits = append(o.limits, limit)
}

// etagServer serves body (changed by set) with a strong ETag and a
// Last-Modified date, and answers 304 to a matching If-None-Match. It
// records the validators each request carried.
type etagServer struct {
	mu     sync.Mutex
	body   map[string]string // by request URI
	links  map[string]string // next link by request URI, sent with 200s only
	sent   []string          // If-None-Match|If-Modified-Since of each request
	honour bool              // answer 304 when the ETag matches
}

func (s *etagServer) etag(uri string) string {
	return `"` + hashHex([]byte(s.body[uri]))[:16] + `"`
}

func (s *etagServer) handle(w http.ResponseWriter, r *http.Request, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	uri := r.URL.RequestURI()
	s.sent = append(s.sent, r.Header.Get("If-None-Match")+"|"+r.Header.Get("If-Modified-Since"))
	body, ok := s.body[uri]
	if !ok {
		body = "[]"
	}
	tag := s.etag(uri)
	w.Header().Set("ETag", tag)
	w.Header().Set("Last-Modified", "Fri, 07 Aug 2020 12:00:00 GMT")
	if s.honour && r.Header.Get("If-None-Match") == tag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if next, ok := s.links[uri]; ok {
		w.Header().Set("Link", "<"+next+">; rel=next")
	}
	writeJSON(w, 200, body)
}

func (s *etagServer) validators() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.sent...)
}

func (s *etagServer) set(uri, body string) { s.mu.Lock(); defer s.mu.Unlock(); s.body[uri] = body }

func TestAnUnpaginatedSourceSendsItsValidatorsAndA304LandsNothing(t *testing.T) {
	es := &etagServer{body: map[string]string{"/posts": `[{"id":1}]`}, honour: true}
	srv, _ := server(t, es.handle)
	mem := newMemMemory()
	h := newHarness()
	opts := h.options()
	opts.Memory = mem
	im := mustNew(t, Config{URL: srv.URL + "/posts"}, opts)

	var l memLander
	res, err := im.Run(context.Background(), &l)
	if err != nil || len(res.Pages) != 1 || res.Unchanged != 0 {
		t.Fatalf("first import = %+v, %v; want one page landed", res, err)
	}
	res, err = im.Run(context.Background(), &l)
	if err != nil {
		t.Fatalf("second import: %v", err)
	}
	if len(res.Pages) != 0 || res.Unchanged != 1 || len(l.objects) != 1 {
		t.Errorf("second import landed %d pages (%d unchanged), %d objects in all; want nothing landed, 1 unchanged", len(res.Pages), res.Unchanged, len(l.objects))
	}
	sent := es.validators()
	if want := es.etag("/posts") + "|Fri, 07 Aug 2020 12:00:00 GMT"; len(sent) != 2 || sent[0] != "|" || sent[1] != want {
		t.Errorf("validators sent = %q, want none, then %q", sent, want)
	}
	if logs := h.allLogs(); !strings.Contains(logs, `source "posts": unchanged, nothing landed`) {
		t.Errorf("logs do not say the import was unchanged:\n%s", logs)
	}

	es.set("/posts", `[{"id":1},{"id":2}]`)
	res, err = im.Run(context.Background(), &l)
	if err != nil || len(res.Pages) != 1 || res.Unchanged != 0 {
		t.Fatalf("import after a change = %+v, %v; want one page landed", res, err)
	}
	if got := l.bodies(); len(got) != 2 || got[1] != `[{"id":1},{"id":2}]` {
		t.Errorf("landed %q, want the first body, then the changed one", got)
	}
}

func TestSkipUnchangedLandsNothingWhenTheServerIgnoresValidators(t *testing.T) {
	for _, paginated := range []bool{false, true} {
		t.Run(fmt.Sprintf("paginated=%v", paginated), func(t *testing.T) {
			es := &etagServer{body: map[string]string{"/a": `[1]`, "/a?page=1": `[1]`, "/a?page=2": `[2]`}}
			srv, _ := server(t, es.handle)
			opts := newHarness().options()
			opts.Memory = newMemMemory()
			cfg := Config{URL: srv.URL + "/a", SkipUnchanged: true}
			if paginated {
				cfg.Pagination = &Pagination{Type: "page"}
			}
			im := mustNew(t, cfg, opts)
			var l memLander
			first, err := im.Run(context.Background(), &l)
			if err != nil {
				t.Fatal(err)
			}
			firstRequests := len(es.validators())
			second, err := im.Run(context.Background(), &l)
			if err != nil {
				t.Fatal(err)
			}
			if len(second.Pages) != 0 || second.Unchanged != len(first.Pages) {
				t.Errorf("second import landed %d pages, %d unchanged; want 0 landed, %d unchanged", len(second.Pages), second.Unchanged, len(first.Pages))
			}
			// The server ignored If-None-Match, so the second import got 200s.
			if sent := es.validators(); !strings.HasPrefix(sent[firstRequests], `"`) {
				t.Errorf("the second import's first request sent no validators: %q", sent)
			}
			uri := "/a"
			if paginated {
				uri = "/a?page=2"
			}
			es.set(uri, `[22]`)
			third, err := im.Run(context.Background(), &l)
			if err != nil {
				t.Fatal(err)
			}
			if len(third.Pages) != 1 || third.Unchanged != len(first.Pages)-1 {
				t.Errorf("third import landed %d pages, %d unchanged; want only the changed page landed", len(third.Pages), third.Unchanged)
			}
			if got := l.bodies(); got[len(got)-1] != `[22]` {
				t.Errorf("last landed %q, want the changed page", got[len(got)-1])
			}
		})
	}
}

func TestWithoutSkipUnchangedTheSameBytesLandAgain(t *testing.T) {
	es := &etagServer{body: map[string]string{"/a": `[1]`}} // ignores If-None-Match
	srv, _ := server(t, es.handle)
	opts := newHarness().options()
	opts.Memory = newMemMemory()
	im := mustNew(t, Config{URL: srv.URL + "/a"}, opts)
	var l memLander
	for i := 0; i < 2; i++ {
		if _, err := im.Run(context.Background(), &l); err != nil {
			t.Fatal(err)
		}
	}
	if len(l.objects) != 2 {
		t.Errorf("landed %d objects, want 2 (skip_unchanged is opt-in)", len(l.objects))
	}
}

// A 304 has no body, so the pagination goes on from what the memory
// remembers of the page: the short-page rule, the next cursor, the Link.
func TestA304PageLandsNothingAndPaginationGoesOnFromTheMemory(t *testing.T) {
	for _, typ := range []string{"page", "offset", "cursor", "link"} {
		t.Run(typ, func(t *testing.T) {
			es := &etagServer{honour: true, body: map[string]string{}}
			p := &Pagination{Type: typ}
			var uris []string
			switch typ {
			case "page":
				p.Size = 2
				uris = []string{"/a?page=1", "/a?page=2", "/a?page=3"}
			case "offset":
				p.Size = 2
				uris = []string{"/a?offset=0", "/a?offset=2", "/a?offset=4"}
			case "cursor":
				p.CursorPath = "next"
				p.ItemsPath = "data"
				uris = []string{"/a", "/a?cursor=c2", "/a?cursor=c3"}
			case "link":
				uris = []string{"/a", "/a?page=2", "/a?page=3"}
			}
			for i, u := range uris {
				switch typ {
				case "page", "offset":
					body := `[1,2]`
					if i == 2 {
						body = `[5]` // short: the last page
					}
					es.body[u] = body
				case "cursor":
					next := fmt.Sprintf(`"c%d"`, i+2)
					if i == 2 {
						next = "null"
					}
					es.body[u] = fmt.Sprintf(`{"data":[%d],"next":%s}`, i, next)
				case "link":
					es.body[u] = fmt.Sprintf(`[%d]`, i)
				}
			}
			if typ == "link" {
				// A 304 carries no Link: the memory must supply it.
				es.links = map[string]string{"/a": "/a?page=2", "/a?page=2": "/a?page=3"}
			}
			srv, count := server(t, es.handle)
			opts := newHarness().options()
			opts.Memory = newMemMemory()
			im := mustNew(t, Config{URL: srv.URL + "/a", Pagination: p}, opts)
			var l memLander
			first, err := im.Run(context.Background(), &l)
			if err != nil || len(first.Pages) != 3 {
				t.Fatalf("first import = %d pages, %v; want 3", len(first.Pages), err)
			}
			requests := count.Load()
			// Page 2 changes; pages 1 and 3 answer 304.
			es.set(uris[1], strings.Replace(es.body[uris[1]], "1", "9", 1))
			second, err := im.Run(context.Background(), &l)
			if err != nil {
				t.Fatalf("second import: %v", err)
			}
			if len(second.Pages) != 1 || second.Unchanged != 2 || second.Pages[0].N != 2 {
				t.Errorf("second import landed %+v, %d unchanged; want page 2 only, 2 unchanged", second.Pages, second.Unchanged)
			}
			if got := count.Load() - requests; got != 3 {
				t.Errorf("second import made %d requests, want 3 (no request past the last page)", got)
			}
		})
	}
}

func TestValidatorsAreSentOnlyForTheSameURL(t *testing.T) {
	es := &etagServer{honour: true, body: map[string]string{"/a?v=1": `[1]`, "/a?v=2": `[1]`}}
	srv, _ := server(t, es.handle)
	mem := newMemMemory()
	opts := newHarness().options()
	opts.Memory = mem
	var l memLander
	if _, err := mustNew(t, Config{URL: srv.URL + "/a?v=1"}, opts).Run(context.Background(), &l); err != nil {
		t.Fatal(err)
	}
	res, err := mustNew(t, Config{URL: srv.URL + "/a?v=2"}, opts).Run(context.Background(), &l)
	if err != nil {
		t.Fatal(err)
	}
	if sent := es.validators(); sent[1] != "|" || len(res.Pages) != 1 {
		t.Errorf("a new URL sent validators %q and landed %d pages; want none sent and its page landed", sent[1], len(res.Pages))
	}
	for k, v := range mem.kv {
		if strings.Contains(v, "/a?v=") || strings.Contains(v, srv.URL) {
			t.Errorf("memory %s holds the URL in clear: %s", k, v)
		}
	}
}

func TestAFailingMemoryCostsOnlyAFullFetch(t *testing.T) {
	es := &etagServer{honour: true, body: map[string]string{"/a": `[1]`}}
	srv, _ := server(t, es.handle)
	mem := newMemMemory()
	mem.fail = errors.New("state unavailable")
	h := newHarness()
	opts := h.options()
	opts.Memory = mem
	im := mustNew(t, Config{URL: srv.URL + "/a", SkipUnchanged: true}, opts)
	var l memLander
	for i := 0; i < 2; i++ {
		if _, err := im.Run(context.Background(), &l); err != nil {
			t.Fatalf("import %d: %v", i+1, err)
		}
	}
	if len(l.objects) != 2 {
		t.Errorf("landed %d objects, want 2", len(l.objects))
	}
	if logs := h.allLogs(); strings.Count(logs, "state unavailable") != 2 {
		t.Errorf("want one memory failure logged per import:\n%s", logs)
	}
}

func TestA304ToARequestWithoutValidatorsFails(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) { w.WriteHeader(http.StatusNotModified) })
	im := mustNew(t, Config{URL: srv.URL}, newHarness().options())
	_, err := im.Run(context.Background(), &memLander{})
	if !errors.Is(err, errNotModified) {
		t.Errorf("err = %v, want the 304 without validators refused", err)
	}
}

func TestTheObserverSeesResponsesRetriesAndLimits(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		switch r.URL.Path {
		case "/flaky":
			switch n {
			case 1:
				writeJSON(w, 429, `{}`)
			case 2:
				writeJSON(w, 503, `{}`)
			default:
				writeJSON(w, 200, `[1]`)
			}
		case "/down":
			writeJSON(w, 500, `{}`)
		case "/big":
			writeJSON(w, 200, `[1,2,3,4,5,6,7,8,9]`)
		case "/pages":
			writeJSON(w, 200, fmt.Sprintf(`[%d]`, n))
		}
	})
	run := func(cfg Config) (*recordingObserver, Result) {
		cfg.Name = "s"
		obs := &recordingObserver{}
		opts := newHarness().options()
		opts.Observer = obs
		res, _ := mustNew(t, cfg, opts).Run(context.Background(), &memLander{})
		return obs, res
	}
	obs, res := run(Config{URL: srv.URL + "/flaky"})
	if fmt.Sprint(obs.statuses) != "[429 503 200]" || obs.retries != 2 || res.Retries != 2 || fmt.Sprint(obs.limits) != "[rate_limited]" {
		t.Errorf("flaky: statuses %v, retries %d (result %d), limits %v; want [429 503 200], 2, 2, [rate_limited]", obs.statuses, obs.retries, res.Retries, obs.limits)
	}
	obs, _ = run(Config{URL: srv.URL + "/down", Retries: 1})
	if fmt.Sprint(obs.limits) != "[retries]" || obs.retries != 1 {
		t.Errorf("down: limits %v, retries %d; want [retries], 1", obs.limits, obs.retries)
	}
	obs, _ = run(Config{URL: srv.URL + "/big", MaxBytes: 4})
	if fmt.Sprint(obs.limits) != "[max_bytes]" {
		t.Errorf("big: limits %v, want [max_bytes]", obs.limits)
	}
	obs, _ = run(Config{URL: srv.URL + "/pages", Pagination: &Pagination{Type: "link", MaxPages: 1}})
	if fmt.Sprint(obs.limits) != "[]" {
		t.Errorf("one page without a next link: limits %v, want none", obs.limits)
	}
	obs, _ = run(Config{URL: srv.URL + "/pages", Pagination: &Pagination{Type: "page", MaxPages: 2}})
	if fmt.Sprint(obs.limits) != "[max_pages]" {
		t.Errorf("pages: limits %v, want [max_pages]", obs.limits)
	}
	// A nil Observer is fine: every other test runs without one.
}

// One redaction rule for every pagination type: pagination parameters
// show, anything else in a query — an API key, a signature, an unknown
// parameter — does not, in page URLs, log lines and errors alike.
func TestEveryPaginationTypeRedactsQueryValuesByTheSameRule(t *testing.T) {
	for _, typ := range []string{"page", "offset", "cursor", "link"} {
		t.Run(typ, func(t *testing.T) {
			srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
				q := r.URL.Query()
				switch {
				case typ == "link" && q.Get("page") == "":
					w.Header().Set("Link", "</a?page=2&per_page=1&api_key=S3CRET-LINK&sig=S3CRET-SIG>; rel=next")
					writeJSON(w, 200, `[1]`)
				case typ == "cursor" && q.Get("cursor") == "":
					writeJSON(w, 200, `{"items":[1],"next":"CURSOR-2"}`)
				case n == 2:
					writeJSON(w, 500, `{"error":"boom"}`) // a retry: logged with the URL
				case n == 3:
					writeJSON(w, 404, `{"error":"gone"}`) // an error: reported with the URL
				default:
					writeJSON(w, 200, `[1]`)
				}
			})
			p := &Pagination{Type: typ, SizeParam: "limit", Size: 1}
			if typ == "cursor" {
				p.CursorPath, p.ItemsPath = "next", "items"
			}
			if typ == "link" {
				p.SizeParam, p.Size = "", 0
			}
			h := newHarness()
			im := mustNew(t, Config{URL: srv.URL + "/a?api_key=S3CRET-KEY&format=json", Pagination: p}, h.options())
			res, err := im.Run(context.Background(), &memLander{})
			if err == nil {
				t.Fatal("want the 404 to fail the import")
			}
			var urls []string
			for _, pg := range res.Pages {
				urls = append(urls, pg.URL)
			}
			everything := strings.Join(urls, "\n") + "\n" + h.allLogs() + "\n" + err.Error()
			if strings.Contains(everything, "S3CRET") {
				t.Errorf("a secret query value leaked:\n%s", everything)
			}
			if !strings.Contains(everything, "api_key=REDACTED") || !strings.Contains(everything, "format=REDACTED") {
				t.Errorf("want api_key and format redacted:\n%s", everything)
			}
			var shown string
			switch typ {
			case "page":
				shown = "page=2&limit=1"
			case "offset":
				shown = "offset=1&limit=1"
			case "cursor":
				shown = "cursor=CURSOR-2&limit=1"
			case "link":
				shown = "page=2&per_page=1&api_key=REDACTED&sig=REDACTED"
			}
			if !strings.Contains(everything, shown) {
				t.Errorf("want %q shown:\n%s", shown, everything)
			}
		})
	}
}

func TestShownQueryValueDecidesOneRuleForEveryParameter(t *testing.T) {
	im := mustNew(t, Config{URL: "http://x", Pagination: &Pagination{Type: "cursor", Param: "pos", CursorPath: "n", SizeParam: "n_items", Size: 5}}, nil)
	for name, want := range map[string]bool{
		"pos": true, "n_items": true, // configured
		"page": true, "_page": true, "per_page": true, "$top": true, "Page-Size": true, "cursor": true, "offset": true, "limit": true,
		"api_key": false, "apikey": false, "access_token": false, "pageToken": false, "next_token": false,
		"signature": false, "X-Amz-Signature": false, "X-Amz-Credential": false, "password": false, "client_secret": false,
		"session_id": false, "auth": false, "format": false, "q": false, "": false,
	} {
		if got := im.shownQueryValue(name); got != want {
			t.Errorf("shownQueryValue(%q) = %v, want %v", name, got, want)
		}
	}
	secret := mustNew(t, Config{URL: "http://x", Pagination: &Pagination{Type: "cursor", Param: "page_token", CursorPath: "n"}}, nil)
	if secret.shownQueryValue("page_token") {
		t.Error("a configured param whose name looks secret is shown")
	}
	if got := (&run{im: secret}).showCursor("abc"); got != "REDACTED" {
		t.Errorf("showCursor = %q, want REDACTED for a secret-looking param", got)
	}
}

func TestAFullLastPageWithoutALinkIsWarnedAbout(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		limit, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
		items := make([]string, limit)
		for i := range items {
			items[i] = strconv.Itoa(i)
		}
		writeJSON(w, 200, "["+strings.Join(items, ",")+"]") // no Link header
	})
	h := newHarness()
	im := mustNew(t, Config{URL: srv.URL, Pagination: &Pagination{Type: "link", SizeParam: "per_page", Size: 3}}, h.options())
	res, err := im.Run(context.Background(), &memLander{})
	if err != nil || len(res.Pages) != 1 {
		t.Fatalf("Run = %d pages, %v", len(res.Pages), err)
	}
	if logs := h.allLogs(); !strings.Contains(logs, `WARN source "`) || !strings.Contains(logs, `no Link rel="next" header`) {
		t.Errorf("want a warning, logged at level WARN, that the full page had no next link:\n%s", logs)
	}
}
