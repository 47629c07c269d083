// Package httpsource imports data from an HTTP API into the raw zone of an
// object store.
//
// An Importer is built once from a Config (New validates it) and performs one
// import per call to Run: it GETs the configured URL, follows the configured
// pagination (page number, offset, cursor or RFC 8288 Link header), and lands
// the raw bytes of each page's response, unchanged, as one object through a
// Lander (the store). A page is landed before the next one is fetched, so an
// import that fails half-way leaves the pages it had already landed, and Run
// reports them in its Result next to the error.
//
// # Streaming
//
// No response is ever held in memory whole. Run's own buffers come to about
// 100 KiB plus at most 1 MiB of spool for the page in flight, whatever the
// size of the responses; the Lander's (an S3 upload's part buffers, say)
// come on top.
//
//   - Without pagination, the body streams from the connection straight
//     into Lander.Land. Nothing needs to look at it first — unless
//     Config.SkipUnchanged is set: then its hash decides whether to land
//     it, and it is spooled as a page is.
//   - With pagination, the stop rules need to look at the body (is it
//     empty, how many items, where is the next cursor) before deciding
//     whether to land it, and an empty page must never be landed. Each
//     page is therefore spooled, 1 MiB in memory and the rest in a
//     temporary file in Options.SpoolDir, while a streaming JSON scanner
//     reads the same bytes as they pass; then the page is landed from the
//     spool, or dropped when it is empty. The alternative, landing first
//     and deleting an empty page again, would announce an object (its
//     ObjectCreated event) that then disappears; the price of the spool
//     is writing each page twice to local disk, which is cheap next to
//     the network and the store. The scanner validates the JSON and keeps
//     only what the rules need: object keys on the way to ItemsPath and
//     CursorPath, and the cursor itself (at most 64 KiB); a huge string or
//     array costs it nothing.
//
// A body longer than Config.MaxBytes (default 1 GiB, spec key
// http.max_bytes) fails the import as soon as the limit is passed, with a
// *TooLargeError that names the request and the spec key to raise; it is
// not retried, and nothing of that response is landed (the Lander sees its
// reader fail and discards the object, as store.Store.Write does).
//
// Requests are retried on network errors, per-request timeouts, 429 and 5xx
// answers, with exponential backoff and full jitter, honouring Retry-After on
// 429 and 503. Other 4xx answers fail at once. A body that breaks part-way
// (a connection reset, a timeout) is a network error like any other: the
// Lander discards what it had received, and the retry GETs the page again
// and lands it from the start. Config.Timeout covers each request until its
// body is read to the end, which for an unpaginated source includes
// streaming it into the store.
//
// # Conditional requests and unchanged pages
//
// With Options.Memory set, an import remembers, for each request position
// (the n-th request of an import: page n, or the only request of an
// unpaginated source), what it last landed from there: a SHA-256 of the
// request URL, the response's ETag and Last-Modified, a SHA-256 of the
// body, and what the pagination read from the body (the item count, the
// next cursor, the Link headers). The next import sends If-None-Match and
// If-Modified-Since with the request at that position when its URL is the
// same, and a 304 Not Modified lands nothing: the page counts as unchanged
// (Result.Unchanged) and the pagination goes on from what was remembered.
// Positions rather than URLs keep the memory bounded (one entry per
// position ever reached, at most MaxPages per source) even when cursors
// change every import. An entry is written only after its page has been
// landed (or found unchanged), so a crash at worst lands a page again.
// Failing to read or write the memory is logged and costs only that: the
// page is fetched and landed in full.
//
// With Config.SkipUnchanged, a page whose bytes equal those last landed
// from the same URL at the same position is not landed either: this works
// against servers that ignore conditional requests (or send no
// validators). Such a source spools even its unpaginated response, to hash
// it before deciding. When a whole import lands nothing for these reasons
// it logs "unchanged, nothing landed".
//
// # Secrets
//
// The Auth header value is read from the environment when each request is
// built, and is never written to log lines or error messages; it is
// scrubbed even from response bodies that echo it. In every URL the package
// reports (log lines, errors, Page.URL), one rule (shownQueryValue) decides
// which query values are shown, whatever the pagination type: a value is
// shown only when its parameter is a pagination parameter — the
// configured Param or SizeParam, or one of the common names that next
// links carry (page, per_page, page_size, limit, offset, start, size,
// count, skip, top, cursor, after, before, since; a leading _ or $
// ignored) — and its name does not look like a secret (it contains token,
// key, secret, pass, pwd, sig, auth, cred or session). Every other value
// is replaced by REDACTED, and so is a password in the URL's user
// information. A cursor is shown in messages by the same rule as its
// parameter. When Auth is set, pagination never follows a Link to another
// origin, and redirects to another host drop the Auth header. The memory
// holds no URL in clear (only a hash), but it does hold the last cursor
// and Link headers, as the server sent them.
//
// # Observing
//
// Options.Observer, when set, is told of every HTTP response (its status,
// 304 included), every retry, and every limit an import ran into
// (LimitMaxBytes, LimitMaxPages, LimitRetries, LimitRateLimited), for
// metrics. Result.Retries and Result.Unchanged count the same per import.
//
// Concurrency: an Importer does not change after New and is safe for
// concurrent use; each Run keeps its own state. Time, sleeping, randomness,
// the environment and logging are injected through Options, so retry and
// backoff behaviour is testable without sleeping.
//
// Cancellation: cancelling the context passed to Run aborts the request,
// body transfer or backoff wait in progress, and Run returns the context's
// error (wrapped); pages landed before that stay landed, and the page in
// transfer is not landed.
package httpsource

import (
	"context"
	"errors"
	"fmt"
	"github.com/sluicehq/sluice/fault"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/template"
	"time"

	mrand "math/rand/v2"
)

// Version is sent in the User-Agent header as "sluice/<Version>". The build
// sets it; it is "dev" otherwise.
var Version = "dev"

// Defaults applied by New to zero-valued Config fields.
const (
	DefaultTimeout     = 30 * time.Second
	DefaultRetries     = 5
	DefaultBackoff     = 500 * time.Millisecond
	DefaultMaxBackoff  = 30 * time.Second
	DefaultContentType = "application/json"
	DefaultLand        = "raw/{{.Source}}/dt={{.Date}}/{{.Source}}_{{.Time}}_{{.Unique}}.json"
	DefaultMaxPages    = 1000
	DefaultMaxBytes    = 1 << 30 // 1 GiB per response

	// MaxRetryAfter caps how long a server's Retry-After can make a retry wait.
	MaxRetryAfter = 5 * time.Minute
)

// Pagination types.
const (
	PageNumber = "page"
	PageOffset = "offset"
	PageCursor = "cursor"
	PageLink   = "link"
)

// ErrTooManyPages is wrapped by the error Run returns when pagination did not
// end within Pagination.MaxPages pages.
var ErrTooManyPages = errors.New("too many pages")

// Config describes one HTTP source. The zero value of every optional field
// means its default.
type Config struct {
	// Name names the source in object keys ({{.Source}}) and in messages.
	// Required; it may not contain a slash, a backslash or white space.
	Name string
	// URL is the http or https URL of the first request.
	URL string
	// Timeout bounds each request, including reading the body to its end
	// (without pagination that is streaming it into the Lander); default
	// 30s.
	Timeout time.Duration
	// Headers are sent as they are with every request. They may override
	// User-Agent and Accept but not the Auth header.
	Headers map[string]string
	// Auth, when set, adds a header whose secret value comes from the
	// environment at request time.
	Auth *Auth
	// Retries is the number of retries after the first try; 0 means the
	// default (5) and a negative value means no retries (Config keeps it
	// negative, so that New(im.Config()) behaves as im).
	Retries int
	// Backoff is the base of the exponential backoff (default 500ms) and
	// MaxBackoff its cap (default 30s). The wait before retry number n
	// (0-based) is a uniformly random fraction of min(MaxBackoff,
	// Backoff*2^n) ("full jitter"), or the server's Retry-After when that
	// is longer.
	Backoff, MaxBackoff time.Duration
	// ExpectContentType is the media type a successful response must have;
	// parameters such as charset are ignored. Default "application/json";
	// "*" accepts anything. It is also sent as the Accept header.
	ExpectContentType string
	// Pagination, when set, makes one import fetch several pages.
	Pagination *Pagination
	// Land is a text/template for the key of each landed page; default
	// DefaultLand. Its fields are those of LandFields; CheckLand says what
	// it may contain.
	Land string
	// MaxBytes bounds the size of one response body (spec key
	// http.max_bytes); default 1 GiB. A larger body fails the import with
	// a *TooLargeError as soon as the limit is passed; it is not retried
	// and nothing of it is landed.
	MaxBytes int64
	// SkipUnchanged (spec key skip_unchanged) lands nothing for a page
	// whose bytes equal those last landed from the same request URL at the
	// same position (see "Conditional requests and unchanged pages"). It
	// needs Options.Memory; without one it changes nothing.
	SkipUnchanged bool
}

// Auth describes a secret header. Its value is Scheme + " " + $Env, or just
// $Env when Scheme is empty.
type Auth struct {
	// Header is the header name; default "Authorization".
	Header string
	// Env names the environment variable that holds the secret. Required.
	// It is read when each request is built; a missing or empty variable
	// fails the import with an error naming the variable.
	Env string
	// Scheme is an optional prefix such as "Bearer" or "Token".
	Scheme string
}

// Pagination describes how one import walks through pages.
//
// An empty page is a body that is empty or white space, "[]", "{}", a JSON
// array of length 0, or an object whose ItemsPath array is empty, null or
// absent. Empty pages are never landed.
type Pagination struct {
	// Type is one of:
	//   - "page": sends Param=Start, Start+1, ... and stops on an empty page,
	//     or after a page with fewer than Size items when Size is set;
	//   - "offset": sends Param=Start, Start+Size, ... with the same stop rule;
	//   - "cursor": reads the next cursor from the JSON body at CursorPath
	//     and sends it as Param; stops when it is absent, null or "";
	//   - "link": follows the RFC 8288 Link header with rel="next"
	//     (absolute or relative to the request URL); stops when there is none.
	Type string
	// Param is the query parameter that carries the page number, offset or
	// cursor; defaults "page", "offset" and "cursor". Unused by "link".
	Param string
	// SizeParam, when set, sends Size under this query parameter: in every
	// request for "page", "offset" and "cursor", and in the first request
	// for "link" (the next links carry their own query).
	SizeParam string
	// Size is the page size. Required by "offset" (it is the step); for
	// "page" it is optional and enables the short-page stop rule.
	Size int
	// Start is the first page number ("page"; 0 means 1) or the first
	// offset ("offset"; default 0). A zero-based page API can be walked as
	// "offset" with Size 1 and no SizeParam.
	Start int
	// CursorPath is the dotted path of the next cursor in the JSON body,
	// such as "meta.next_cursor"; a numeric segment indexes an array.
	// Required by "cursor". The cursor may be a JSON string or number.
	CursorPath string
	// ItemsPath is the dotted path of the array of records when the body
	// is a JSON object, such as "data". It lets the stop rules count items;
	// without it only a bare JSON array is counted.
	ItemsPath string
	// MaxPages bounds one import; default 1000. For "page" and "offset" it
	// counts landed pages (the request that finds the end is extra); for
	// "cursor" and "link" it counts requests. Pagination that would go on
	// past it fails the import with ErrTooManyPages.
	MaxPages int
}

// Lander stores one page. It is the store's write side (store.Store.Write
// fits it). Land must read body until io.EOF and store what it read as the
// object key; when body returns any other error, Land must return an error
// and store nothing, leaving no partial object behind (the body failed: the
// network broke, or the response passed Config.MaxBytes). Land must be
// atomic (readers never see a partial object), must not hold the whole body
// in memory, and must not use body after it returns.
type Lander interface {
	Land(ctx context.Context, key string, body io.Reader, contentType string) error
}

// LanderFunc adapts a function to Lander.
type LanderFunc func(ctx context.Context, key string, body io.Reader, contentType string) error

// Land calls f.
func (f LanderFunc) Land(ctx context.Context, key string, body io.Reader, contentType string) error {
	return f(ctx, key, body, contentType)
}

// Page reports one landed page.
type Page struct {
	N        int    // 1-based page number (pages found unchanged count too)
	URL      string // request URL with secrets redacted
	Key      string // object key it landed at
	Bytes    int    // body size
	Status   int    // HTTP status
	Attempts int    // requests made for it (1 when no retry was needed)
}

// Result reports one import.
type Result struct {
	Pages    []Page        // landed pages, in order
	Bytes    int64         // total landed bytes
	Duration time.Duration // from start to end of Run, by Options.Clock
	// Unchanged counts the pages not landed because they had not changed:
	// answered 304 Not Modified, or (Config.SkipUnchanged) the same bytes
	// as last landed from there.
	Unchanged int
	// Retries counts the requests that were retries (after a network
	// error, a timeout, a 429 or a 5xx), over all pages.
	Retries int
}

// Observer is told what an import's requests met, for metrics. Every
// method must be safe for concurrent use and return quickly; a nil
// Options.Observer means none.
type Observer interface {
	// Response is called for every HTTP response received, with its
	// status code (304 and error statuses included; not for requests that
	// got no response).
	Response(source string, status int)
	// Retry is called before every retry of a request.
	Retry(source string)
	// LimitHit is called when an import runs into a limit: one of
	// LimitMaxBytes, LimitMaxPages, LimitRetries and LimitRateLimited.
	LimitHit(source, limit string)
}

// Limits an Observer is told about (Observer.LimitHit).
const (
	LimitMaxBytes    = "max_bytes"    // a body passed Config.MaxBytes
	LimitMaxPages    = "max_pages"    // pagination did not end within Pagination.MaxPages
	LimitRetries     = "retries"      // a request failed after Config.Retries retries
	LimitRateLimited = "rate_limited" // the server answered 429 Too Many Requests
)

// Memory keeps what a source remembers between imports (see "Conditional
// requests and unchanged pages"): a few small values by key, shared by
// every process that may import the source. state.Settings fits it. The
// Importer's keys are "httpsource/SOURCE/N" for request position N.
type Memory interface {
	// Setting returns the value stored under key, "" when there is none.
	Setting(ctx context.Context, key string) (string, error)
	// SetSetting stores value under key.
	SetSetting(ctx context.Context, key, value string) error
}

// Options injects the Importer's dependencies. A nil *Options, and every nil
// field, means the default.
type Options struct {
	// Client sends the requests; default a new http.Client. The Importer
	// uses a shallow copy whose CheckRedirect drops the Auth header on
	// redirects to another host; the client's own Timeout, if any, applies
	// in addition to Config.Timeout.
	Client *http.Client
	// Clock gives the time for keys, Retry-After dates and durations;
	// default time.Now.
	Clock func() time.Time
	// Sleep waits between retries; it must return ctx.Err() when ctx ends
	// first. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a number in [0, 1) for the backoff jitter; default
	// math/rand/v2.Float64.
	Rand func() float64
	// Getenv reads the Auth secret; default os.Getenv.
	Getenv func(string) string
	// Logger receives one line per landed page and per retry (info) and
	// the pagination warnings (warn); default: discard.
	Logger *slog.Logger
	// Unique returns the {{.Unique}} value of a key; default 8 hex
	// characters derived from the source, the import's tick (RunAt; Run's
	// is its start time), the page number and the attempt, so a tick lands
	// at the same keys whichever process imports it.
	Unique func() string
	// SpoolDir is where pages of a paginated source larger than 1 MiB wait
	// between download and landing; default os.TempDir(). Spool files are
	// unlinked as soon as they are created (where the system allows) and
	// closed when the page is landed, so a crash leaves none behind.
	SpoolDir string
	// Memory, when set, keeps validators and body hashes between imports:
	// it turns on conditional requests and makes Config.SkipUnchanged
	// work. Default: none (every import fetches and lands everything).
	Memory Memory
	// Observer, when set, is told of responses, retries and limits.
	Observer Observer
}

// Importer imports one HTTP source. Create it with New.
type Importer struct {
	cfg       Config
	base      *url.URL
	land      *template.Template
	mediaType string // expected media type, "" when any is accepted
	authName  string // canonical Auth header name, "" without Auth

	client *http.Client
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	rand   func() float64
	getenv func(string) string
	log    *slog.Logger
	unique func() string

	spoolDir string
	memory   Memory
	observer Observer
}

// New validates cfg, applies defaults and returns an Importer. Errors name
// the source and the field at fault.
func New(cfg Config, opts *Options) (*Importer, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("httpsource: source %q: "+format, append([]any{cfg.Name}, args...)...)
	}
	if cfg.Name == "" {
		return nil, fail("the source has no name; give it one (it is used in object keys)")
	}
	if strings.ContainsAny(cfg.Name, "/\\ \t\r\n") {
		return nil, fail("the source name may not contain slashes or white space")
	}
	base, err := url.Parse(cfg.URL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fail("url does not parse: %v", err)
	}
	if base.Scheme != "http" && base.Scheme != "https" {
		return nil, fail("url scheme is %q; use http or https", base.Scheme)
	}
	if base.Host == "" {
		return nil, fail("url has no host")
	}
	if cfg.Timeout < 0 {
		return nil, fail("timeout is negative (%s)", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	switch {
	case cfg.Retries == 0:
		cfg.Retries = DefaultRetries
	case cfg.Retries < 0:
		cfg.Retries = -1
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MaxBackoff < cfg.Backoff {
		return nil, fail("max backoff %s is shorter than backoff %s", cfg.MaxBackoff, cfg.Backoff)
	}
	var mediaType string
	switch cfg.ExpectContentType {
	case "":
		cfg.ExpectContentType = DefaultContentType
		mediaType = DefaultContentType
	case "*":
	default:
		mt, _, err := mime.ParseMediaType(cfg.ExpectContentType)
		if err != nil {
			return nil, fail("expected content type %q is not a media type: %v", cfg.ExpectContentType, err)
		}
		mediaType = mt // lower-cased by ParseMediaType
	}
	if cfg.MaxBytes < 0 {
		return nil, fail("max bytes is negative (%d)", cfg.MaxBytes)
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}

	var headers map[string]string // nil when there are none
	if len(cfg.Headers) > 0 {
		headers = make(map[string]string, len(cfg.Headers))
	}
	for k, v := range cfg.Headers {
		if !isToken(k) {
			return nil, fail("header name %q is not a valid HTTP header name", k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return nil, fail("header %q has a line break or NUL in its value", k)
		}
		headers[k] = v
	}
	cfg.Headers = headers

	var authName string
	if cfg.Auth != nil {
		a := *cfg.Auth
		if a.Env == "" {
			return nil, fail("auth has no env: name the environment variable that holds the secret")
		}
		if a.Header == "" {
			a.Header = "Authorization"
		}
		if !isToken(a.Header) {
			return nil, fail("auth header %q is not a valid HTTP header name", a.Header)
		}
		if a.Scheme != "" && !isToken(a.Scheme) {
			return nil, fail("auth scheme %q must be a single word such as Bearer", a.Scheme)
		}
		authName = http.CanonicalHeaderKey(a.Header)
		for k := range cfg.Headers {
			if http.CanonicalHeaderKey(k) == authName {
				return nil, fail("header %q is set both in headers and by auth; keep only auth", k)
			}
		}
		cfg.Auth = &a
	}

	if cfg.Pagination != nil {
		p := *cfg.Pagination
		if err := normalizePagination(&p); err != nil {
			return nil, fail("pagination: %v", err)
		}
		cfg.Pagination = &p
	}

	if cfg.Land == "" {
		cfg.Land = DefaultLand
	}
	land, err := compileLand(cfg.Name, cfg.Land, cfg.Pagination != nil)
	if err != nil {
		return nil, fail("%v", err)
	}

	im := &Importer{cfg: cfg, base: base, land: land, mediaType: mediaType, authName: authName}
	if opts == nil {
		opts = &Options{}
	}
	client := &http.Client{}
	if opts.Client != nil {
		c := *opts.Client
		client = &c
	}
	client.CheckRedirect = im.checkRedirect(client.CheckRedirect)
	im.client = client
	im.now, im.sleep, im.rand = time.Now, fault.Sleep, mrand.Float64
	im.getenv, im.log = os.Getenv, slog.New(slog.DiscardHandler)
	if opts.Clock != nil {
		im.now = opts.Clock
	}
	if opts.Sleep != nil {
		im.sleep = opts.Sleep
	}
	if opts.Rand != nil {
		im.rand = opts.Rand
	}
	if opts.Getenv != nil {
		im.getenv = opts.Getenv
	}
	if opts.Logger != nil {
		im.log = opts.Logger
	}
	if opts.Unique != nil {
		im.unique = opts.Unique
	}
	im.spoolDir = opts.SpoolDir
	im.memory, im.observer = opts.Memory, opts.Observer
	return im, nil
}

// Config returns a copy of the configuration with its defaults applied.
func (im *Importer) Config() Config {
	c := im.cfg
	c.Headers = maps.Clone(im.cfg.Headers)
	if c.Auth != nil {
		a := *c.Auth
		c.Auth = &a
	}
	if c.Pagination != nil {
		p := *c.Pagination
		c.Pagination = &p
	}
	return c
}

func normalizePagination(p *Pagination) error {
	p.Type = strings.ToLower(strings.TrimSpace(p.Type))
	if p.MaxPages < 0 {
		return fmt.Errorf("max pages is negative (%d)", p.MaxPages)
	}
	if p.MaxPages == 0 {
		p.MaxPages = DefaultMaxPages
	}
	if p.Size < 0 {
		return fmt.Errorf("size is negative (%d)", p.Size)
	}
	if p.SizeParam != "" && p.Size == 0 {
		return fmt.Errorf("size param %q is set but size is 0", p.SizeParam)
	}
	if p.ItemsPath != "" {
		if err := checkPath(p.ItemsPath); err != nil {
			return fmt.Errorf("items path: %v", err)
		}
	}
	if p.CursorPath != "" && p.Type != PageCursor {
		return fmt.Errorf("cursor path is set but type is %q, not cursor", p.Type)
	}
	switch p.Type {
	case PageNumber:
		if p.Param == "" {
			p.Param = "page"
		}
		if p.Start == 0 {
			p.Start = 1
		}
	case PageOffset:
		if p.Param == "" {
			p.Param = "offset"
		}
		if p.Size == 0 {
			return errors.New("offset pagination needs a size (the step between offsets)")
		}
		if p.Start < 0 {
			return fmt.Errorf("start offset is negative (%d)", p.Start)
		}
	case PageCursor:
		if p.Param == "" {
			p.Param = "cursor"
		}
		if p.CursorPath == "" {
			return errors.New("cursor pagination needs a cursor path (where the next cursor is in the body)")
		}
		if err := checkPath(p.CursorPath); err != nil {
			return fmt.Errorf("cursor path: %v", err)
		}
	case PageLink:
		if p.Param != "" {
			return errors.New("link pagination takes no param (it follows the Link header); remove it")
		}
	case "":
		return errors.New("type is missing; use page, offset, cursor or link")
	default:
		return fmt.Errorf("unknown type %q; use page, offset, cursor or link", p.Type)
	}
	if p.Param != "" && p.Param == p.SizeParam {
		return fmt.Errorf("param and size param are both %q", p.Param)
	}
	return nil
}

// checkRedirect wraps a client's CheckRedirect so that redirects to another
// host drop the Auth header (net/http already drops Authorization and
// cookies, but not custom header names).
func (im *Importer) checkRedirect(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if im.authName != "" && len(via) > 0 && !strings.EqualFold(req.URL.Host, via[0].URL.Host) {
			req.Header.Del(im.authName)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}

// isToken reports whether s is an RFC 9110 token (a valid header name).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return s != ""
}
