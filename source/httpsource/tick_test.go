package httpsource

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// Two processes that import the same schedule tick land the same keys (one
// object per page, not two), and different ticks land different keys.
func TestRunAtLandsTheSameKeysForTheSameTick(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if r.URL.Query().Get("page") == "3" {
			writeJSON(w, 200, "[]")
			return
		}
		writeJSON(w, 200, `[{"id":1}]`)
	})
	cfg := Config{URL: srv.URL, Pagination: &Pagination{Type: "page", Param: "page"}}
	keys := func(at time.Time) []string {
		opts := newHarness().options()
		opts.Unique = nil // the real generator
		im := mustNew(t, cfg, opts)
		var l memLander
		if _, err := im.RunAt(context.Background(), &l, at); err != nil {
			t.Fatalf("RunAt: %v", err)
		}
		var out []string
		for _, o := range l.objects {
			out = append(out, o.key)
		}
		return out
	}
	tick := time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)
	a, b := keys(tick), keys(tick)
	if len(a) != 2 || a[0] == a[1] {
		t.Fatalf("keys of one import = %q, want two different keys", a)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("page %d: the same tick landed at %q and %q, want one key", i+1, a[i], b[i])
		}
	}
	if want := "raw/posts/dt=2026-12-01/posts_20261201T180000Z_"; len(a[0]) < len(want) || a[0][:len(want)] != want {
		t.Errorf("key %q does not carry the tick's date and time (%s…)", a[0], want)
	}
	c := keys(tick.Add(time.Hour))
	if c[0] == a[0] {
		t.Errorf("the next tick landed at the same key %q as the previous one", c[0])
	}
}
