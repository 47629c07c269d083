package httpsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/store/storetest"
)

// storeLander lands into a real file:// store, the way the engine does.
type storeLander struct{ s *store.Store }

func (l storeLander) Land(ctx context.Context, key string, body io.Reader, contentType string) error {
	_, err := l.s.Write(ctx, key, body, contentType)
	return err
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), "file://"+t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// heapProbe records the largest live heap seen at its checkpoints.
type heapProbe struct {
	mu   sync.Mutex
	base uint64
	peak uint64
}

func newHeapProbe() *heapProbe {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return &heapProbe{base: ms.HeapAlloc}
}

// check collects garbage and records the live heap.
func (p *heapProbe) check() {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.peak = max(p.peak, ms.HeapAlloc)
}

func (p *heapProbe) growth() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.peak < p.base {
		return 0
	}
	return p.peak - p.base
}

// streamJSON writes a JSON array of about size bytes, generated on the fly,
// and calls probe after every probeEvery bytes up to probeUntil. The server
// cannot get ahead of the client by more than the socket buffers, so at each
// probe the client has read nearly all the bytes written so far.
func streamJSON(w http.ResponseWriter, size, probeEvery, probeUntil int64, probe func()) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	rec := `{"id":1234567,"title":"` + strings.Repeat("x", 100) + `"},`
	chunk := []byte(strings.Repeat(rec, 64<<10/len(rec)))
	if _, err := w.Write([]byte("[")); err != nil {
		return
	}
	var n, nextProbe int64 = 1, probeEvery
	for n < size {
		if _, err := w.Write(chunk); err != nil {
			return // the client gave up
		}
		n += int64(len(chunk))
		if n >= nextProbe && n <= probeUntil {
			probe()
			nextProbe += probeEvery
		}
	}
	_, _ = w.Write([]byte(`{"id":0}]`))
}

func TestAResponseOverMaxBytesFailsNamingTheKeyLandsNothingAndKeepsTheHeapSmall(t *testing.T) {
	// Without -race: the default limit (1 GiB) and a 1.5 GiB body. Under
	// -race, which makes every byte slower: a 64 MiB limit and a 200 MiB body.
	limit, size := int64(DefaultMaxBytes), int64(3<<29)
	if raceEnabled {
		limit, size = 64<<20, 200<<20
	}
	for _, paginated := range []bool{false, true} {
		name := "unpaginated"
		if paginated {
			name = "paginated"
		}
		t.Run(name, func(t *testing.T) {
			probe := newHeapProbe()
			srv, count := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
				streamJSON(w, size, limit/8, limit-limit/16, probe.check)
			})
			st := openStore(t)
			cfg := Config{Name: "dump", URL: srv.URL + "/dump"}
			if limit != DefaultMaxBytes {
				cfg.MaxBytes = limit
			}
			if paginated {
				cfg.Pagination = &Pagination{Type: "page"}
			}
			im := mustNew(t, cfg, newHarness().options())
			res, err := im.Run(context.Background(), storeLander{st})
			if err == nil {
				t.Fatal("Run succeeded, want the size limit error")
			}
			for _, want := range []string{
				"response body of GET " + cfg.URL + map[bool]string{true: "?page=1"}[paginated] + " is larger than http.max_bytes",
				"raise sources.dump.http.max_bytes",
			} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %v\nwant it to contain %q", err, want)
				}
			}
			if !errors.Is(err, ErrTooLarge) {
				t.Errorf("err = %v, want it to wrap ErrTooLarge", err)
			}
			if count.Load() != 1 {
				t.Errorf("requests = %d, want 1: a body over the limit is not retried", count.Load())
			}
			objs, lerr := st.List(context.Background(), "")
			if lerr != nil || len(objs) != 0 || len(res.Pages) != 0 {
				t.Errorf("store holds %v (err %v), Result.Pages %v; want nothing landed", objs, lerr, res.Pages)
			}
			if g := probe.growth(); g > 16<<20 {
				t.Errorf("live heap grew by %d MiB while the body streamed, want under 16 MiB", g>>20)
			}
		})
	}
}

// bigPage returns a JSON array of n records of about 1 KiB each, numbered
// from first.
func bigPage(first, n int) string {
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, `{"id":%d,"text":"%s"}`, first+i, strings.Repeat("abc\u00e9", 250))
	}
	b.WriteString("]")
	return b.String()
}

// storeObjects returns every object of s by key, with its bytes.
func storeObjects(t *testing.T, s *store.Store) map[string]string {
	t.Helper()
	ctx := context.Background()
	objs, err := s.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, o := range objs {
		b, _, err := s.ReadAll(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		out[o.Key] = string(b)
	}
	return out
}

func TestPaginatedPagesLargerThanTheMemorySpoolLandUnchangedAndTheEmptyPageStops(t *testing.T) {
	// Pages of about 3 MiB go through a spool file; the fourth page is
	// empty and ends the import without being landed.
	pages := []string{bigPage(0, 3000), bigPage(3000, 3000), bigPage(6000, 10), " [ ]\n"}
	srv, count := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		p, _ := strconv.Atoi(r.URL.Query().Get("page"))
		if p < 1 || p > len(pages) {
			writeJSON(w, 404, "no such page")
			return
		}
		writeJSON(w, 200, pages[p-1])
	})
	st := openStore(t)
	spoolDir := t.TempDir()
	opts := newHarness().options()
	opts.SpoolDir = spoolDir
	im := mustNew(t, Config{URL: srv.URL, Pagination: &Pagination{Type: "page"}}, opts)
	res, err := im.Run(context.Background(), storeLander{st})
	if err != nil {
		t.Fatal(err)
	}
	if count.Load() != 4 || len(res.Pages) != 3 {
		t.Fatalf("requests = %d, pages = %d; want 4 requests and 3 landed pages", count.Load(), len(res.Pages))
	}
	objs := storeObjects(t, st)
	if len(objs) != 3 {
		t.Fatalf("store holds %d objects, want 3", len(objs))
	}
	var total int64
	for i, pg := range res.Pages {
		if objs[pg.Key] != pages[i] {
			t.Errorf("page %d at %s: %d bytes landed, want the %d bytes served, unchanged", i+1, pg.Key, len(objs[pg.Key]), len(pages[i]))
		}
		if pg.Bytes != len(pages[i]) {
			t.Errorf("page %d: Result says %d bytes, want %d", i+1, pg.Bytes, len(pages[i]))
		}
		total += int64(len(pages[i]))
	}
	if res.Bytes != total {
		t.Errorf("Result.Bytes = %d, want %d", res.Bytes, total)
	}
	if left, err := os.ReadDir(spoolDir); err != nil || len(left) != 0 {
		t.Errorf("spool dir holds %v (err %v), want nothing left", left, err)
	}
}

func TestAPageHoldingOneHugeStringKeepsTheHeapSmall(t *testing.T) {
	// The scanner must not buffer a token: a 48 MiB string (24 MiB under
	// -race) next to the cursor.
	size := int64(48 << 20)
	if raceEnabled {
		size = 24 << 20
	}
	probe := newHeapProbe()
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Get("cursor") != "" {
			_, _ = w.Write([]byte(`{"data":[],"next":null}`))
			return
		}
		_, _ = w.Write([]byte(`{"data":[1],"blob":"`))
		chunk := []byte(strings.Repeat("x", 64<<10))
		for n := int64(0); n < size; n += int64(len(chunk)) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			if n%(size/8) == 0 {
				probe.check()
			}
		}
		_, _ = w.Write([]byte(`","next":"c2"}`))
	})
	st := openStore(t)
	im := mustNew(t, Config{URL: srv.URL, Pagination: &Pagination{Type: "cursor", CursorPath: "next", ItemsPath: "data"}}, newHarness().options())
	res, err := im.Run(context.Background(), storeLander{st})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pages) != 1 || res.Pages[0].Bytes < int(size) {
		t.Errorf("pages = %+v, want one page of more than %d bytes (the second is empty)", res.Pages, size)
	}
	if g := probe.growth(); g > 16<<20 {
		t.Errorf("live heap grew by %d MiB while the body streamed, want under 16 MiB", g>>20)
	}
}

// cutServer serves body, but on the requests listed in cut it sends only
// the first half and then breaks the connection.
func cutServer(t *testing.T, body func(r *http.Request) string, cut map[int]bool) (*httptest.Server, *atomic.Int32) {
	return server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		b := body(r)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		w.WriteHeader(200)
		if !cut[n] {
			_, _ = w.Write([]byte(b))
			return
		}
		_, _ = w.Write([]byte(b[:len(b)/2]))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // closes the connection mid-body
	})
}

func TestABodyCutMidStreamLandsNothingAndIsRetried(t *testing.T) {
	body := bigPage(0, 2000) // 2 MiB: the store has started writing when the cut comes
	t.Run("unpaginated", func(t *testing.T) {
		srv, count := cutServer(t, func(*http.Request) string { return body }, map[int]bool{1: true})
		st := openStore(t)
		h := newHarness()
		im := mustNew(t, Config{URL: srv.URL}, h.options())
		res, err := im.Run(context.Background(), storeLander{st})
		if err != nil {
			t.Fatal(err)
		}
		if count.Load() != 2 || len(res.Pages) != 1 || res.Pages[0].Attempts != 2 || len(h.sleepsSeen()) != 1 {
			t.Fatalf("requests = %d, pages = %+v, sleeps %v; want 2 requests, one page after 2 attempts, one backoff", count.Load(), res.Pages, h.sleepsSeen())
		}
		objs := storeObjects(t, st)
		if len(objs) != 1 || objs[res.Pages[0].Key] != body {
			t.Errorf("store holds %d objects; want exactly the complete body at %s", len(objs), res.Pages[0].Key)
		}
		if logs := h.allLogs(); !strings.Contains(logs, "reading the body after") {
			t.Errorf("logs = %q, want the retry to say the body broke", logs)
		}
	})
	t.Run("unpaginated without retries", func(t *testing.T) {
		srv, count := cutServer(t, func(*http.Request) string { return body }, map[int]bool{1: true})
		st := openStore(t)
		im := mustNew(t, Config{URL: srv.URL, Retries: -1}, newHarness().options())
		res, err := im.Run(context.Background(), storeLander{st})
		if err == nil || !strings.Contains(err.Error(), "page 1: ") || !strings.Contains(err.Error(), "GET "+srv.URL+": reading the body after") {
			t.Fatalf("err = %v, want the broken body named with page and URL", err)
		}
		if count.Load() != 1 || len(res.Pages) != 0 {
			t.Errorf("requests = %d, pages = %d; want 1 and 0", count.Load(), len(res.Pages))
		}
		if objs := storeObjects(t, st); len(objs) != 0 {
			t.Errorf("store holds %d objects after a cut body, want none (no partial object)", len(objs))
		}
	})
	t.Run("paginated", func(t *testing.T) {
		pages := []string{bigPage(0, 10), body, "[]"}
		srv, count := cutServer(t, func(r *http.Request) string {
			p, _ := strconv.Atoi(r.URL.Query().Get("page"))
			return pages[min(max(p, 1), len(pages))-1]
		}, map[int]bool{2: true})
		st := openStore(t)
		im := mustNew(t, Config{URL: srv.URL, Pagination: &Pagination{Type: "page"}}, newHarness().options())
		res, err := im.Run(context.Background(), storeLander{st})
		if err != nil {
			t.Fatal(err)
		}
		if count.Load() != 4 || len(res.Pages) != 2 || res.Pages[1].Attempts != 2 {
			t.Fatalf("requests = %d, pages = %+v; want 4 requests and 2 pages, the second after 2 attempts", count.Load(), res.Pages)
		}
		objs := storeObjects(t, st)
		if len(objs) != 2 || objs[res.Pages[0].Key] != pages[0] || objs[res.Pages[1].Key] != pages[1] {
			t.Errorf("store holds %d objects; want the two complete pages", len(objs))
		}
	})
}

func TestALanderThatStopsReadingEarlyFailsTheImport(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 200, `[1,2,3]`) })
	im := mustNew(t, Config{URL: srv.URL}, newHarness().options())
	lazy := LanderFunc(func(ctx context.Context, key string, body io.Reader, contentType string) error {
		_, err := body.Read(make([]byte, 2))
		return err
	})
	if _, err := im.Run(context.Background(), lazy); err == nil || !strings.Contains(err.Error(), "not read to its end") {
		t.Errorf("err = %v, want the unread body reported", err)
	}
}

func TestAnAnnouncedContentLengthOverMaxBytesFailsBeforeLanding(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		writeJSON(w, 200, `[1,2,3,4,5,6,7,8,9,10,11]`) // Content-Length: 26
	})
	im := mustNew(t, Config{URL: srv.URL, MaxBytes: 10}, newHarness().options())
	called := false
	res, err := im.Run(context.Background(), LanderFunc(func(ctx context.Context, key string, body io.Reader, contentType string) error {
		called = true
		_, err := io.Copy(io.Discard, body)
		return err
	}))
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Limit != 10 || tl.Source != "posts" {
		t.Fatalf("err = %v, want a *TooLargeError for 10 bytes of source posts", err)
	}
	if called || len(res.Pages) != 0 {
		t.Errorf("Land called = %v, pages = %d; want no landing at all", called, len(res.Pages))
	}
}

func TestABodyCutMidStreamLeavesNoObjectAndNoUploadInS3(t *testing.T) {
	// 12 MiB, cut after 6: past the first 5 MiB part of a multipart upload.
	body := bigPage(0, 12000)
	v := storetest.StartVersitygw(t)
	t.Setenv("AWS_ACCESS_KEY_ID", storetest.S3Access)
	t.Setenv("AWS_SECRET_ACCESS_KEY", storetest.S3Secret)
	t.Setenv("AWS_REGION", storetest.S3Region)
	st, err := store.Open(context.Background(), v.Bucket(t, "lake"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })

	srv, _ := cutServer(t, func(*http.Request) string { return body }, map[int]bool{1: true})
	im := mustNew(t, Config{URL: srv.URL, Retries: -1}, newHarness().options())
	if _, err := im.Run(context.Background(), storeLander{st}); err == nil || !strings.Contains(err.Error(), "reading the body after") {
		t.Fatalf("err = %v, want the broken body", err)
	}
	if objs := storeObjects(t, st); len(objs) != 0 {
		t.Errorf("bucket holds %d objects after a cut body, want none", len(objs))
	}
	ups, err := v.Client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String("lake")})
	if err != nil {
		t.Fatal(err)
	}
	if len(ups.Uploads) != 0 {
		t.Errorf("%d multipart uploads left open, want the cut one aborted", len(ups.Uploads))
	}

	// Served whole this time, the same source lands the complete body.
	im = mustNew(t, Config{URL: srv.URL}, newHarness().options())
	res, err := im.Run(context.Background(), storeLander{st})
	if err != nil {
		t.Fatal(err)
	}
	if objs := storeObjects(t, st); len(objs) != 1 || objs[res.Pages[0].Key] != body {
		t.Errorf("bucket holds %d objects, want exactly the complete body", len(objs))
	}
}
