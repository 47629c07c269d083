package httpsource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// run is the state of one import.
type run struct {
	im      *Importer
	start   time.Time  // the tick the run lands under (RunAt)
	fields  LandFields // Source, Date and Time fixed for the run
	keys    map[string]int
	secrets []string

	numbered   int    // pages landed or found unchanged so far: the last page's number
	retries    int    // retries made, over all requests
	prevSum    string // hex SHA-256 of the previous page's body (page, offset)
	warnedSame bool   // the same-bytes warning was logged
	memoryErr  bool   // the memory failed once already (logged)
}

// Run performs one import: it fetches every page and lands each non-empty
// page's body, unchanged, as one object through l before fetching the next.
// Without pagination it makes exactly one request and lands its body even
// when it is empty. A page that has not changed since the last import (see
// "Conditional requests and unchanged pages") is not landed. The Result
// lists the pages landed, also when Run fails part-way. Errors name the
// source and page and never contain the Auth secret. Cancelling ctx stops
// the request or retry wait in progress.
func (im *Importer) Run(ctx context.Context, l Lander) (Result, error) {
	return im.RunAt(ctx, l, im.now())
}

// RunAt is Run for the schedule tick at: the keys' .Date and .Time are the
// tick's, and the default .Unique is derived from the source, the tick and
// the page (see Options.Unique), so two processes importing the same tick
// land the same keys — one object, not two — and a scheduler can make a
// tick's import idempotent.
func (im *Importer) RunAt(ctx context.Context, l Lander, at time.Time) (Result, error) {
	began := im.now()
	r := &run{im: im, start: at, fields: newLandFields(im.cfg.Name, at, "", 0), keys: map[string]int{}}
	var res Result
	err := r.pages(ctx, l, &res)
	res.Duration = im.now().Sub(began)
	res.Retries = r.retries
	if err != nil {
		return res, &scrubbedError{msg: r.scrub(fmt.Sprintf("httpsource: source %q: %v", im.cfg.Name, err)), err: err}
	}
	if len(res.Pages) == 0 && res.Unchanged > 0 {
		r.logf("source %q: unchanged, nothing landed (pages unchanged: %d)", im.cfg.Name, res.Unchanged)
	}
	return res, nil
}

// pages walks the pagination.
func (r *run) pages(ctx context.Context, l Lander, res *Result) error {
	p := r.im.cfg.Pagination
	base := r.im.cfg.URL
	next := base              // URL of the next request (cursor and link)
	seen := map[string]bool{} // cursors sent or link URLs requested
	for req := 1; ; req++ {
		n := r.numbered + 1 // number the page would get
		reqURL, err := r.requestURL(p, base, next, req)
		if err != nil {
			return fmt.Errorf("page %d: building the URL: %v", n, err)
		}
		m, known := r.recall(ctx, req, reqURL)
		var cond http.Header
		if known {
			cond = m.conditional()
		}
		if p == nil && !r.im.cfg.SkipUnchanged {
			return r.landDirect(ctx, l, res, reqURL, cond)
		}
		pg, err := r.fetchPage(ctx, reqURL, p, cond)
		if err != nil {
			return fmt.Errorf("page %d: %w", n, err)
		}
		if pg.notModified {
			pg.info, pg.header = m.info()
			pg.sum = m.SHA256
		}
		if p == nil {
			err = r.settle(ctx, l, res, req, reqURL, pg, m, known)
			_ = pg.spool.Close()
			return err
		}
		more, err := r.step(ctx, l, res, p, pg, reqURL, req, base, &next, seen, m, known)
		_ = pg.spool.Close()
		if err != nil || !more {
			return err
		}
	}
}

// step handles one fetched page of a paginated source: it lands it unless
// it is empty or unchanged, and decides whether to go on; next gets the
// URL of the next request for cursor and link pagination. m is what the
// last import remembered of this request position (known: whether there
// is one).
func (r *run) step(ctx context.Context, l Lander, res *Result, p *Pagination, pg *page, reqURL string, req int,
	base string, next *string, seen map[string]bool, m memo, known bool) (more bool, err error) {
	n := r.numbered + 1
	sh := pg.info.shape
	if err := pg.info.shapeErr; err != nil {
		return false, fmt.Errorf("page %d (%s): %v", n, r.redactURL(reqURL), err)
	}
	switch p.Type {
	case PageNumber, PageOffset:
		if sh.empty {
			r.logf("source %q: %s is empty; pagination ended after %d pages", r.im.cfg.Name, r.redactURL(reqURL), r.numbered)
			return false, nil
		}
		if r.numbered == p.MaxPages {
			return false, r.tooMany(p)
		}
		if r.prevSum != "" && pg.sum == r.prevSum && !r.warnedSame {
			// Most likely the API ignores the parameter (page 2 is page 1
			// again) and the import lands the same bytes until max_pages.
			// Identical pages can be legitimate, so this only warns.
			r.warnedSame = true
			r.logf("source %q: warning: %s has the same bytes as page %d: does the API page by %q? (check pagination.param)",
				r.im.cfg.Name, r.redactURL(reqURL), r.numbered, p.Param)
		}
		r.prevSum = pg.sum
		if err := r.settle(ctx, l, res, req, reqURL, pg, m, known); err != nil {
			return false, err
		}
		if p.Size > 0 && sh.counted && sh.items < p.Size {
			return false, nil // a short page is the last one
		}
		return true, nil
	}

	// cursor, link
	if !sh.empty {
		if err := r.settle(ctx, l, res, req, reqURL, pg, m, known); err != nil {
			return false, err
		}
	}
	full := p.Size > 0 && sh.counted && sh.items >= p.Size
	if p.Type == PageCursor {
		if err := pg.info.cursorErr; err != nil {
			return false, fmt.Errorf("page %d (%s): next cursor: %v", n, r.redactURL(reqURL), err)
		}
		if !pg.info.cursorOK {
			if full {
				r.fullLastPage(p, reqURL, "no next cursor at "+p.CursorPath)
			}
			return false, nil
		}
		cursor := pg.info.cursor
		if seen[cursor] {
			return false, fmt.Errorf("page %d (%s): the API returned cursor %q again; stopping to avoid a loop",
				n, r.redactURL(reqURL), r.showCursor(cursor))
		}
		seen[cursor] = true
		if *next, err = withParam(base, p.Param, cursor); err != nil {
			return false, fmt.Errorf("page %d: building the next URL: %v", n, err)
		}
	} else {
		seen[reqURL] = true
		link, ok, err := r.nextLink(reqURL, pg.header)
		if err != nil {
			return false, fmt.Errorf("page %d (%s): %v", n, r.redactURL(reqURL), err)
		}
		if !ok {
			if full {
				r.fullLastPage(p, reqURL, `no Link rel="next" header`)
			}
			return false, nil
		}
		if seen[link] {
			return false, fmt.Errorf("page %d (%s): Link rel=\"next\" points back to %s; stopping to avoid a loop",
				n, r.redactURL(reqURL), r.redactURL(link))
		}
		*next = link
	}
	if req == p.MaxPages {
		return false, r.tooMany(p)
	}
	return true, nil
}

// fullLastPage warns that cursor or link pagination ended after a page
// that held a full Size items: the API may have more that it did not say
// how to fetch (it pages by a parameter, not by cursor or Link).
func (r *run) fullLastPage(p *Pagination, reqURL, why string) {
	r.logf("source %q: warning: %s held %d items, a full page of size %d, but has %s; pagination ended there (if the API pages by a page number or offset instead, use type page or offset)",
		r.im.cfg.Name, r.redactURL(reqURL), p.Size, p.Size, why)
}

func (r *run) tooMany(p *Pagination) error {
	r.limitHit(LimitMaxPages)
	return fmt.Errorf("pagination did not end after %d pages; raise max_pages (%w)", p.MaxPages, ErrTooManyPages)
}

// requestURL returns the URL of request number req (1-based).
func (r *run) requestURL(p *Pagination, base, next string, req int) (string, error) {
	if p == nil {
		return base, nil
	}
	u := next // cursor, link
	var err error
	switch p.Type {
	case PageNumber:
		u, err = withParam(base, p.Param, strconv.Itoa(p.Start+req-1))
	case PageOffset:
		u, err = withParam(base, p.Param, strconv.Itoa(p.Start+(req-1)*p.Size))
	case PageLink:
		if req > 1 {
			return next, nil // the server's link carries its own query
		}
	}
	if err == nil && p.SizeParam != "" {
		u, err = withParam(u, p.SizeParam, strconv.Itoa(p.Size))
	}
	return u, err
}

// nextLink returns the absolute rel="next" URL of a response, if any.
func (r *run) nextLink(reqURL string, header http.Header) (string, bool, error) {
	var target string
	for _, h := range header.Values("Link") {
		links, err := ParseLink(h)
		if err != nil {
			return "", false, fmt.Errorf("malformed Link header: %v", err)
		}
		for _, l := range links {
			if l.HasRel("next") {
				target = l.URL
				break
			}
		}
		if target != "" {
			break
		}
	}
	if target == "" {
		return "", false, nil
	}
	cur, err := url.Parse(reqURL)
	if err != nil {
		return "", false, err
	}
	ref, err := url.Parse(target)
	if err != nil {
		return "", false, errors.New("Link rel=\"next\" is not a valid URL")
	}
	abs := cur.ResolveReference(ref)
	if abs.Scheme != "http" && abs.Scheme != "https" {
		return "", false, fmt.Errorf("Link rel=\"next\" has scheme %q; only http and https are followed", abs.Scheme)
	}
	if r.im.authName != "" && (abs.Scheme != r.im.base.Scheme || !strings.EqualFold(abs.Host, r.im.base.Host)) {
		return "", false, fmt.Errorf("Link rel=\"next\" leads to another origin (%s://%s); not following it, because the auth header would go there too",
			abs.Scheme, abs.Host)
	}
	abs.Fragment, abs.RawFragment = "", ""
	return abs.String(), true, nil
}

// page is one fetched page, spooled; or, after a 304, what the memory
// remembers of it.
type page struct {
	spool       *spool
	info        pageInfo
	sum         string // hex SHA-256 of the body
	status      int
	header      http.Header
	contentType string
	attempts    int
	notModified bool // answered 304: spool is empty, info and sum are remembered
}

// fetchPage GETs one page into a spool, sending the validators cond (nil
// for none), and with p set scans the body for the stop rules as it
// streams by. The caller closes the spool.
func (r *run) fetchPage(ctx context.Context, reqURL string, p *Pagination, cond http.Header) (*page, error) {
	var pg *page
	attempts, err := r.fetch(ctx, reqURL, cond, func(resp *response) error {
		if pg != nil {
			_ = pg.spool.Close() // an earlier attempt's
		}
		pg = &page{spool: &spool{dir: r.im.spoolDir}, status: resp.status, header: resp.header, contentType: resp.contentType,
			notModified: resp.notModified}
		if resp.notModified {
			return nil
		}
		h := sha256.New()
		tee := io.TeeReader(resp.body, io.MultiWriter(pg.spool, h))
		if p != nil {
			info, err := scanPage(tee, p.ItemsPath, p.CursorPath)
			if err != nil {
				return err
			}
			pg.info = info
		}
		if _, err := io.Copy(io.Discard, tee); err != nil {
			return err
		}
		pg.sum = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	if err != nil {
		if pg != nil {
			_ = pg.spool.Close()
		}
		return nil, err
	}
	pg.attempts = attempts
	return pg, nil
}

// settle takes a fetched, non-empty page as the next page: it lands it,
// unless it has not changed since the last import (a 304, or with
// SkipUnchanged the same bytes as last landed from this URL at request
// position req), and remembers it.
func (r *run) settle(ctx context.Context, l Lander, res *Result, req int, reqURL string, pg *page, m memo, known bool) error {
	r.numbered++
	n := r.numbered
	why := ""
	switch {
	case pg.notModified:
		why = "HTTP 304 Not Modified"
	case r.im.cfg.SkipUnchanged && known && m.SHA256 == pg.sum:
		why = "the same bytes as last landed"
	}
	if why == "" {
		if err := r.landPage(ctx, l, res, n, reqURL, pg); err != nil {
			return err
		}
	} else {
		res.Unchanged++
		r.logf("source %q: page %d from %s unchanged (%s), nothing landed", r.im.cfg.Name, n, r.redactURL(reqURL), why)
		if pg.notModified {
			return nil // the memo stays as it is
		}
	}
	r.remember(ctx, req, newMemo(reqURL, pg.header, pg.sum, pg.info))
	return nil
}

// landPage lands a spooled page as page n.
func (r *run) landPage(ctx context.Context, l Lander, res *Result, n int, reqURL string, pg *page) error {
	key, err := r.key(n)
	if err != nil {
		return fmt.Errorf("page %d: %v", n, err)
	}
	if err := l.Land(ctx, key, pg.spool.reader(), pg.contentType); err != nil {
		return fmt.Errorf("page %d: landing %d bytes at %q: %w", n, pg.spool.n, key, err)
	}
	r.landed(res, Page{N: n, URL: r.redactURL(reqURL), Key: key, Bytes: int(pg.spool.n), Status: pg.status, Attempts: pg.attempts})
	return nil
}

// landDirect fetches the only page of an unpaginated source (sending the
// validators cond, nil for none) and streams its body straight into l,
// which discards it if the body fails part-way; a retry lands the next
// attempt's body at the same key. A 304 lands nothing.
func (r *run) landDirect(ctx context.Context, l Lander, res *Result, reqURL string, cond http.Header) error {
	const req = 1
	n := r.numbered + 1
	key, err := r.key(n)
	if err != nil {
		return fmt.Errorf("page %d: %v", n, err)
	}
	var pg Page
	var header http.Header
	var sum string
	notModified := false
	attempts, err := r.fetch(ctx, reqURL, cond, func(resp *response) error {
		if notModified = resp.notModified; notModified {
			return nil
		}
		h := sha256.New()
		if err := l.Land(ctx, key, io.TeeReader(resp.body, h), resp.contentType); err != nil {
			return fmt.Errorf("landing at %q: %w", key, err)
		}
		pg = Page{N: n, URL: r.redactURL(reqURL), Key: key, Bytes: int(resp.body.n), Status: resp.status}
		header, sum = resp.header, hex.EncodeToString(h.Sum(nil))
		return nil
	})
	if err != nil {
		return fmt.Errorf("page %d: %w", n, err)
	}
	r.numbered++
	if notModified {
		res.Unchanged++
		r.logf("source %q: page %d from %s unchanged (HTTP 304 Not Modified), nothing landed", r.im.cfg.Name, n, r.redactURL(reqURL))
		return nil
	}
	pg.Attempts = attempts
	r.landed(res, pg)
	r.remember(ctx, req, newMemo(reqURL, header, sum, pageInfo{}))
	return nil
}

// landed records a landed page.
func (r *run) landed(res *Result, pg Page) {
	res.Pages = append(res.Pages, pg)
	res.Bytes += int64(pg.Bytes)
	r.logf("source %q: page %d: %d bytes from %s landed at %s (%d attempts)",
		r.im.cfg.Name, pg.N, pg.Bytes, pg.URL, pg.Key, pg.Attempts)
}

// key renders the key of page n, drawing a new Unique value until the key is
// new in this run.
func (r *run) key(n int) (string, error) {
	const tries = 5
	var key string
	for try := 0; try < tries; try++ {
		f := r.fields
		f.Unique, f.Page = r.unique(n, try), n
		var err error
		if key, err = renderLand(r.im.land, f); err != nil {
			return "", err
		}
		if _, dup := r.keys[key]; !dup {
			r.keys[key] = n
			return key, nil
		}
	}
	return "", fmt.Errorf("land template gives key %q again (page %d had it); include {{.Unique}} or {{.Page}} in it", key, r.keys[key])
}

// unique is the {{.Unique}} value of page n's key at the try-th attempt to
// find a key not yet used in this run: Options.Unique when set, else 8 hex
// characters of SHA-256(source, tick, page, try), the same for every
// process that imports this tick.
func (r *run) unique(n, try int) string {
	if r.im.unique != nil {
		return r.im.unique()
	}
	h := sha256.Sum256(fmt.Appendf(nil, "%s\x00%d\x00%d\x00%d", r.im.cfg.Name, r.start.UnixNano(), n, try))
	return hex.EncodeToString(h[:4])
}

// addSecret remembers a value that must never appear in messages.
func (r *run) addSecret(s string) {
	if s == "" {
		return
	}
	for _, have := range r.secrets {
		if have == s {
			return
		}
	}
	r.secrets = append(r.secrets, s)
	// Longest first, so a header value is replaced whole before its secret.
	for i := len(r.secrets) - 1; i > 0 && len(r.secrets[i]) > len(r.secrets[i-1]); i-- {
		r.secrets[i], r.secrets[i-1] = r.secrets[i-1], r.secrets[i]
	}
}

// scrub replaces every known secret in s.
func (r *run) scrub(s string) string {
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, "[REDACTED]")
	}
	return s
}

// logf logs an info line, secrets scrubbed; one whose text starts with
// "warning:" after the source's name is logged as a warning.
func (r *run) logf(format string, args ...any) {
	msg := r.scrub(fmt.Sprintf(format, args...))
	if strings.Contains(format, ": warning: ") {
		r.im.log.Warn(msg)
		return
	}
	r.im.log.Info(msg)
}

// scrubbedError carries a message with secrets removed while keeping the
// cause for errors.Is and errors.As.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
