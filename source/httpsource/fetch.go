package httpsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// StatusError is a non-2xx answer. Run's error wraps it (use errors.As), both
// for an answer that failed at once and for the last answer of exhausted
// retries.
type StatusError struct {
	URL    string // request URL with secrets redacted
	Status int    // HTTP status code
	Body   string // short excerpt of the response body, secrets scrubbed
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("GET %s: HTTP %d %s", e.URL, e.Status, http.StatusText(e.Status))
	if e.Body != "" {
		msg += fmt.Sprintf(": body %q", e.Body)
	}
	return msg
}

// response is one successful answer while its body is being read, or a
// 304 Not Modified to a conditional request (notModified; body is then
// empty and need not be read).
type response struct {
	body        *bodyReader
	status      int
	header      http.Header
	contentType string
	notModified bool
}

// TooLargeError is the error of a response body longer than Config.MaxBytes.
// It is permanent: the import fails at once, and nothing of that response is
// landed. errors.Is(err, ErrTooLarge) reports it.
type TooLargeError struct {
	URL    string // request URL with secrets redacted
	Source string // Config.Name
	Limit  int64  // Config.MaxBytes
}

// ErrTooLarge is matched by every *TooLargeError.
var ErrTooLarge = errors.New("response body too large")

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("response body of GET %s is larger than http.max_bytes (%d bytes); raise sources.%s.http.max_bytes",
		e.URL, e.Limit, e.Source)
}

// Is reports whether target is ErrTooLarge.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// bodyReader reads a response body, fails once it passes the limit, and
// remembers the first error and whether it reached the end, so that a failed
// consumer can be told apart from a failed body.
type bodyReader struct {
	r     io.Reader
	limit int64
	n     int64
	err   error // first read error other than io.EOF, or the *TooLargeError
	eof   bool
	large func() error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.eof {
		return 0, io.EOF
	}
	// Read at most one byte past the limit, to tell "exactly the limit"
	// from "more".
	if rest := b.limit + 1 - b.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > b.limit {
		b.err = b.large()
		return 0, b.err
	}
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		b.err = err
	}
	return n, err
}

// attemptError is the failure of one try.
type attemptError struct {
	err        error
	retry      bool          // worth trying again
	retryAfter time.Duration // server-requested wait, 0 if none
}

// consumer reads a successful response's body to its end: it spools or
// lands it. An error it returns fails the attempt; when the body itself
// failed (a network error, a timeout, the size limit) the attempt fails with
// that error instead, so a cut connection is retried whatever the consumer
// made of it.
type consumer func(resp *response) error

// fetch GETs rawURL with the extra headers cond (validators; nil for
// none) and hands each successful response, and a 304 when cond is set, to
// consume, retrying as configured; a retry GETs the URL again and calls
// consume again. It returns the number of attempts made.
func (r *run) fetch(ctx context.Context, rawURL string, cond http.Header, consume consumer) (int, error) {
	cfg := &r.im.cfg
	shown := r.redactURL(rawURL)
	for attempt := 0; ; attempt++ {
		aerr := r.try(ctx, rawURL, shown, cond, consume)
		if aerr == nil {
			return attempt + 1, nil
		}
		if errors.Is(aerr.err, ErrTooLarge) {
			r.limitHit(LimitMaxBytes)
		}
		if !aerr.retry || ctx.Err() != nil {
			return attempt + 1, aerr.err
		}
		if retries := max(cfg.Retries, 0); attempt >= retries {
			r.limitHit(LimitRetries)
			return attempt + 1, fmt.Errorf("giving up after %d attempts (retries: %d); last error: %w",
				attempt+1, retries, aerr.err)
		}
		r.retries++
		if o := r.im.observer; o != nil {
			o.Retry(cfg.Name)
		}
		wait := r.im.backoff(attempt)
		if aerr.retryAfter > wait {
			wait = aerr.retryAfter
		}
		r.logf("source %q: attempt %d failed: %v; retrying in %s", cfg.Name, attempt+1, aerr.err, wait)
		if err := r.im.sleep(ctx, wait); err != nil {
			return attempt + 1, fmt.Errorf("waiting to retry %s after %d attempts: %w (last error: %v)", shown, attempt+1, err, aerr.err)
		}
	}
}

// try makes one request and consumes its body.
func (r *run) try(ctx context.Context, rawURL, shown string, cond http.Header, consume consumer) *attemptError {
	cfg := &r.im.cfg
	permanent := func(format string, args ...any) *attemptError {
		return &attemptError{err: fmt.Errorf("GET "+shown+": "+format, args...)}
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, rawURL, nil)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return permanent("building the request: %v", err)
	}
	req.Header.Set("User-Agent", "sluice/"+Version)
	if r.im.mediaType != "" {
		req.Header.Set("Accept", r.im.mediaType)
	}
	for k, v := range cfg.Headers {
		req.Header.Set(k, v)
	}
	for k, v := range cond {
		req.Header[k] = v
	}
	if a := cfg.Auth; a != nil {
		secret := r.im.getenv(a.Env)
		if secret == "" {
			return permanent("auth: environment variable %s is not set or empty; export it with the secret", a.Env)
		}
		value := secret
		if a.Scheme != "" {
			value = a.Scheme + " " + secret
		}
		r.addSecret(secret)
		r.addSecret(value)
		req.Header.Set(a.Header, value)
	}

	resp, err := r.im.client.Do(req)
	if err != nil {
		return r.transportError(ctx, rctx, shown, "request failed", err)
	}
	defer resp.Body.Close()
	if o := r.im.observer; o != nil {
		o.Response(cfg.Name, resp.StatusCode)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		r.limitHit(LimitRateLimited)
	}

	if resp.StatusCode == http.StatusNotModified {
		if len(cond) == 0 {
			return permanent("%w", errNotModified)
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096)) // a 304 has no body; let the connection be reused
		if err := consume(&response{body: &bodyReader{eof: true}, status: resp.StatusCode, header: resp.Header, notModified: true}); err != nil {
			return &attemptError{err: err}
		}
		return nil
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		excerpt := r.excerpt(resp.Body)
		serr := &StatusError{URL: shown, Status: resp.StatusCode, Body: excerpt}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			ae := &attemptError{err: serr, retry: true}
			if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
				if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), r.im.now()); ok {
					ae.retryAfter = d
				}
			}
			return ae
		}
		return &attemptError{err: serr}
	}

	ct := resp.Header.Get("Content-Type")
	if r.im.mediaType != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if ct == "" || err != nil || mt != r.im.mediaType {
			got := "no Content-Type"
			if ct != "" {
				got = fmt.Sprintf("Content-Type %q", ct)
			}
			return permanent("HTTP %d with %s, expected %q; check the URL, or set the expected content type (\"*\" accepts any)",
				resp.StatusCode, got, r.im.mediaType)
		}
	}

	tooLarge := func() error { return &TooLargeError{URL: shown, Source: cfg.Name, Limit: cfg.MaxBytes} }
	if resp.ContentLength > cfg.MaxBytes {
		return &attemptError{err: tooLarge()} // announced: no need to start
	}
	b := &bodyReader{r: resp.Body, limit: cfg.MaxBytes, large: tooLarge}
	err = consume(&response{body: b, status: resp.StatusCode, header: resp.Header, contentType: ct})
	switch {
	case errors.Is(b.err, ErrTooLarge):
		return &attemptError{err: b.err}
	case b.err != nil:
		return r.transportError(ctx, rctx, shown, fmt.Sprintf("reading the body after %d bytes", b.n), b.err)
	case err != nil:
		return &attemptError{err: err}
	case !b.eof:
		return permanent("the body was not read to its end (a Lander must read its reader until io.EOF)")
	}
	return nil
}

// transportError classifies a network error: retryable unless the caller's
// context ended.
func (r *run) transportError(ctx, rctx context.Context, shown, doing string, err error) *attemptError {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // its message repeats the URL, secrets included
	}
	if ctx.Err() != nil {
		return &attemptError{err: fmt.Errorf("GET %s: %s: %w", shown, doing, ctx.Err())}
	}
	if errors.Is(rctx.Err(), context.DeadlineExceeded) {
		return &attemptError{err: fmt.Errorf("GET %s: %s: timed out after %s", shown, doing, r.im.cfg.Timeout), retry: true}
	}
	return &attemptError{err: fmt.Errorf("GET %s: %s: %w", shown, doing, err), retry: true}
}

// excerpt reads the start of an error body as one printable line.
func (r *run) excerpt(body io.Reader) string {
	const max = 200
	b, _ := io.ReadAll(io.LimitReader(body, 4096))
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.Join(strings.FieldsFunc(s, func(c rune) bool {
		return unicode.IsSpace(c) || !unicode.IsPrint(c)
	}), " ")
	s = r.scrub(s)
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

// limitHit tells the observer, if any, that the import ran into limit.
func (r *run) limitHit(limit string) {
	if o := r.im.observer; o != nil {
		o.LimitHit(r.im.cfg.Name, limit)
	}
}

// backoff returns the wait before retry number attempt (0-based): a random
// fraction of min(MaxBackoff, Backoff*2^attempt).
func (im *Importer) backoff(attempt int) time.Duration {
	d := im.cfg.Backoff
	for i := 0; i < attempt && d < im.cfg.MaxBackoff; i++ {
		d *= 2
	}
	if d > im.cfg.MaxBackoff {
		d = im.cfg.MaxBackoff
	}
	f := im.rand()
	if f < 0 || f != f {
		f = 0
	}
	if f > 1 {
		f = 1
	}
	return time.Duration(float64(d) * f)
}

// parseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
// The wait is capped by MaxRetryAfter; a date in the past means no wait.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if v[0] >= '0' && v[0] <= '9' {
		secs, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			if len(strings.Trim(v, "0123456789")) != 0 {
				return 0, false
			}
			secs = uint64(MaxRetryAfter / time.Second) // overflowed: very large
		}
		if secs > uint64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter, true
		}
		d = time.Duration(secs) * time.Second
	} else {
		t, err := http.ParseTime(v)
		if err != nil {
			return 0, false
		}
		d = t.Sub(now)
		if d < 0 {
			d = 0
		}
	}
	if d > MaxRetryAfter {
		d = MaxRetryAfter
	}
	return d, true
}

// withParam returns rawURL with query parameter name set to value, keeping
// the other parameters in their order and encoding.
func withParam(rawURL, name, value string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	var parts []string
	if u.RawQuery != "" {
		for _, part := range strings.Split(u.RawQuery, "&") {
			k, _, _ := strings.Cut(part, "=")
			if n, err := url.QueryUnescape(k); err == nil && n == name {
				continue
			}
			parts = append(parts, part)
		}
	}
	parts = append(parts, url.QueryEscape(name)+"="+url.QueryEscape(value))
	u.RawQuery = strings.Join(parts, "&")
	return u.String(), nil
}
