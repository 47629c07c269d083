package httpsource

import (
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/store"
)

// storeLander lands into a real file:// store, the way the engine does.
type storeLander struct{ s *store.Store }

func (l storeLander) Land(ctx context.Context, key string, body io.Reader, contentType string) error {
	_, err := l.s.Write(ctx, key, body, contentType)
	return err
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), "file://"+t.TempDir(), &store.Options{Logf: t.Logf})
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
