// Package console is sluice's HTTP face: the web console, /metrics,
// /healthz and /readyz, served by every long-running process (`sluice
// run`, `sluice worker`, `sluice serve`, `sluice demo --serve`).
//
// The console is server-rendered HTML (html/template, one stylesheet, no
// JavaScript, nothing fetched from elsewhere, so it works offline and
// behind any proxy). It shows the pipeline and its parts; sources with
// their last and next tick and last error; loads with their recent object
// versions, rows and lag; job runs with their lifecycle, inputs (key +
// ETag), outputs and log; dead letters with their reasons; lineage from a
// raw object to the table rows and curated files it produced (the ledger
// and the run records); and the cost of transient compute against an
// always-on cluster.
//
// It is read-only unless started with an admin token (SLUICE_ADMIN_TOKEN):
// actions (replay a dead letter, cancel a run) then need the token, either
// as `Authorization: Bearer TOKEN` or through the login form, which sets
// an HttpOnly, SameSite=Strict session cookie holding its expiry (12 hours)
// and an HMAC of it keyed by the token (never the token: it changes when the
// token does). Without a token every action is refused with 403.
// Listen refuses a non-loopback address without a token.
//
// /healthz is liveness only: it never checks a dependency, so an outage the
// pipeline rides out (it retries in place) does not get its pod restarted.
// /readyz checks the store, queue, warehouse and state and answers 503
// naming what failed.
package console

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/metrics"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/state"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/warehouse"
)

// TokenEnv is the environment variable holding the admin token.
const TokenEnv = "SLUICE_ADMIN_TOKEN"

// Config is what a console shows and may act on.
type Config struct {
	// Spec is the pipeline (nil: its parts are not shown).
	Spec *pipeline.Spec
	// State is the shared state: runs, dead letters, source ticks.
	State state.Store
	// Warehouse and Store may be nil (a worker of jobs only, say).
	Warehouse *warehouse.Warehouse
	Store     *store.Store
	// Metrics is served at /metrics (nil: 404).
	Metrics *metrics.Metrics
	// AdminToken enables actions ("" = read-only console).
	AdminToken string
	// Replay re-drives dead letter id through the normal path (nil: this
	// process cannot; the page says how to).
	Replay func(ctx context.Context, id int64) error
	// Ready are the readiness checks by name ("store", "queue", …).
	Ready map[string]func(ctx context.Context) error
	// Exposed says the console listens beyond loopback: every page but
	// /healthz, /readyz and /metrics then needs the admin token. A console
	// on loopback instead refuses requests whose Host is not a loopback
	// name, so that a web page cannot reach it by DNS rebinding.
	Exposed bool
	// Role names the process on the pages ("sluice run", …).
	Role   string
	Logger *slog.Logger
	Clock  func() time.Time
}

// Console is an http.Handler.
type Console struct {
	cfg Config
	mux *http.ServeMux
	log *slog.Logger
	now func() time.Time
}

// New returns the console of cfg.
func New(cfg Config) *Console {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	c := &Console{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger, now: cfg.Clock}
	c.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	c.mux.HandleFunc("GET /readyz", c.readyz)
	if cfg.Metrics != nil {
		c.mux.Handle("GET /metrics", cfg.Metrics.Handler())
	}
	c.mux.HandleFunc("GET /style.css", c.style)
	c.mux.HandleFunc("GET /{$}", c.overview)
	c.mux.HandleFunc("GET /loads/{name}", c.load)
	c.mux.HandleFunc("GET /runs", c.runs)
	c.mux.HandleFunc("GET /runs/{id}", c.run)
	c.mux.HandleFunc("GET /dlq", c.deadLetters)
	c.mux.HandleFunc("GET /lineage", c.lineage)
	c.mux.HandleFunc("GET /cost", c.cost)
	c.mux.HandleFunc("GET /login", c.loginForm)
	c.mux.HandleFunc("POST /login", c.login)
	c.mux.HandleFunc("POST /logout", c.logout)
	c.mux.HandleFunc("POST /dlq/{id}/replay", c.admin(c.replay))
	c.mux.HandleFunc("POST /runs/{id}/cancel", c.admin(c.cancel))
	return c
}

func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !c.cfg.Exposed && !loopbackHost(r.Host) {
		http.Error(w, "misdirected request: this console answers only to loopback names (localhost, 127.0.0.1, [::1])", http.StatusMisdirectedRequest)
		return
	}
	if c.cfg.Exposed && !open[r.URL.Path] && !c.isAdmin(r) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		http.Error(w, "this console needs the admin token: log in, or send Authorization: Bearer TOKEN", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.Header().Set("Referrer-Policy", "no-referrer")
	c.mux.ServeHTTP(w, r)
}

// readyCheckTimeout bounds each readiness check; they run at once, so a
// slow one delays the answer by at most this and fails only itself.
const readyCheckTimeout = 5 * time.Second

func (c *Console) readyz(w http.ResponseWriter, r *http.Request) {
	names := sortedKeys(c.cfg.Ready)
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(r.Context(), readyCheckTimeout)
			defer cancel()
			errs[i] = c.cfg.Ready[name](ctx)
		}()
	}
	wg.Wait()
	lines := make([]string, len(names))
	ready := true
	for i, name := range names {
		lines[i] = name + ": ok"
		if errs[i] != nil {
			ready = false
			lines[i] = fmt.Sprintf("%s: %v", name, errs[i])
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintln(w, strings.Join(lines, "\n"))
}

// open are the paths an exposed console serves without the token: health
// for orchestrators, metrics for Prometheus (counts, no data), the login
// form and its stylesheet.
var open = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true, "/login": true, "/style.css": true}

// loopbackHost reports whether a request's Host names this machine's
// loopback.
func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return IsLoopback(host)
}

const sessionCookie = "sluice_session"

// session is the cookie value of a logged-in admin until expires: the
// expiry and an HMAC of it keyed by the token, so the cookie never holds
// the token, ends, and is worthless once the token changes.
func (c *Console) session(expires time.Time) string {
	exp := strconv.FormatInt(expires.Unix(), 10)
	m := hmac.New(sha256.New, []byte(c.cfg.AdminToken))
	m.Write([]byte("sluice console session v2 " + exp))
	return exp + "." + hex.EncodeToString(m.Sum(nil))
}

// sessionValid reports whether v is a session this console made and that
// has not expired.
func (c *Console) sessionValid(v string) bool {
	exp, _, ok := strings.Cut(v, ".")
	sec, err := strconv.ParseInt(exp, 10, 64)
	if !ok || err != nil || c.now().After(time.Unix(sec, 0)) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(v), []byte(c.session(time.Unix(sec, 0)))) == 1
}

// sessionTTL is how long a console login lasts.
const sessionTTL = 12 * time.Hour

// isAdmin reports whether r carries the admin token or its session.
func (c *Console) isAdmin(r *http.Request) bool {
	if c.cfg.AdminToken == "" {
		return false
	}
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		return subtle.ConstantTimeCompare([]byte(strings.TrimPrefix(h, "Bearer ")), []byte(c.cfg.AdminToken)) == 1
	}
	ck, err := r.Cookie(sessionCookie)
	return err == nil && c.sessionValid(ck.Value)
}

// errForbidden explains a refused action.
var errForbidden = errors.New("forbidden")

// admin wraps an action: it needs the admin token, and a form post must
// come from this console (Origin, where the browser sends it, names this
// host; the session cookie is SameSite=Strict besides).
func (c *Console) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c.cfg.AdminToken == "" {
			c.fail(w, r, http.StatusForbidden, errForbidden, "This console is read-only: it was started without an admin token. Restart it with "+TokenEnv+" set to allow actions.")
			return
		}
		if !c.isAdmin(r) {
			c.fail(w, r, http.StatusForbidden, errForbidden, "Actions need the admin token: log in (top right) or send Authorization: Bearer TOKEN.")
			return
		}
		if o := r.Header.Get("Origin"); o != "" && o != "null" {
			if u, err := url.Parse(o); err != nil || u.Host != r.Host {
				c.fail(w, r, http.StatusForbidden, errForbidden, "Cross-site request refused: the form must be posted from this console.")
				return
			}
		}
		h(w, r)
	}
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, "login", map[string]any{"Enabled": c.cfg.AdminToken != "", "Failed": r.URL.Query().Get("failed") != ""})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	if c.cfg.AdminToken == "" {
		c.fail(w, r, http.StatusForbidden, errForbidden, "This console is read-only: it was started without an admin token.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("token")), []byte(c.cfg.AdminToken)) != 1 {
		c.log.Warn("console login refused", "remote", r.RemoteAddr)
		http.Redirect(w, r, "/login?failed=1", http.StatusSeeOther)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: c.session(c.now().Add(sessionTTL)), Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int(sessionTTL / time.Second)})
	c.log.Info("console login", "remote", r.RemoteAddr)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
