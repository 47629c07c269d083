package httpsource

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// run is the state of one import.
type run struct {
	im      *Importer
	fields  LandFields // Source, Date and Time fixed for the run
	keys    map[string]int
	secrets []string
}

// Run performs one import: it fetches every page and lands each non-empty
// page's body, unchanged, as one object through l before fetching the next.
// Without pagination it makes exactly one request and lands its body even
// when it is empty. The Result lists the pages landed, also when Run fails
// part-way. Errors name the source and page and never contain the Auth
// secret. Cancelling ctx stops the request or retry wait in progress.
func (im *Importer) Run(ctx context.Context, l Lander) (Result, error) {
	start := im.now()
	r := &run{im: im, fields: newLandFields(im.cfg.Name, start, "", 0), keys: map[string]int{}}
	var res Result
	err := r.pages(ctx, l, &res)
	res.Duration = im.now().Sub(start)
	if err != nil {
		return res, &scrubbedError{msg: r.scrub(fmt.Sprintf("httpsource: source %q: %v", im.cfg.Name, err)), err: err}
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
		n := len(res.Pages) + 1 // number the page would get when landed
		reqURL, err := r.requestURL(p, base, next, req)
		if err != nil {
			return fmt.Errorf("page %d: building the URL: %v", n, err)
		}
		resp, err := r.fetch(ctx, reqURL)
		if err != nil {
			return fmt.Errorf("page %d: %w", n, err)
		}
		if p == nil {
			return r.landPage(ctx, l, res, reqURL, resp)
		}

		sh, err := inspect(resp.body, p.ItemsPath)
		if err != nil {
			return fmt.Errorf("page %d (%s): %v", n, r.redactURL(reqURL), err)
		}
		switch p.Type {
		case PageNumber, PageOffset:
			if sh.empty {
				r.logf("source %q: %s is empty; pagination ended after %d pages", r.im.cfg.Name, r.redactURL(reqURL), len(res.Pages))
				return nil
			}
			if len(res.Pages) == p.MaxPages {
				return r.tooMany(p)
			}
			if err := r.landPage(ctx, l, res, reqURL, resp); err != nil {
				return err
			}
			if p.Size > 0 && sh.counted && sh.items < p.Size {
				return nil // a short page is the last one
			}

		case PageCursor, PageLink:
			if !sh.empty {
				if err := r.landPage(ctx, l, res, reqURL, resp); err != nil {
					return err
				}
			}
			var more bool
			if p.Type == PageCursor {
				cursor, ok, err := cursorAt(resp.body, p.CursorPath)
				if err != nil {
					return fmt.Errorf("page %d (%s): next cursor: %v", n, r.redactURL(reqURL), err)
				}
				if ok {
					if seen[cursor] {
						return fmt.Errorf("page %d (%s): the API returned cursor %q again; stopping to avoid a loop",
							n, r.redactURL(reqURL), r.scrub(cursor))
					}
					seen[cursor] = true
					if next, err = withParam(base, p.Param, cursor); err != nil {
						return fmt.Errorf("page %d: building the next URL: %v", n, err)
					}
					more = true
				}
			} else {
				seen[reqURL] = true
				link, ok, err := r.nextLink(reqURL, resp)
				if err != nil {
					return fmt.Errorf("page %d (%s): %v", n, r.redactURL(reqURL), err)
				}
				if ok {
					if seen[link] {
						return fmt.Errorf("page %d (%s): Link rel=\"next\" points back to %s; stopping to avoid a loop",
							n, r.redactURL(reqURL), r.redactURL(link))
					}
					next, more = link, true
				}
			}
			if !more {
				return nil
			}
			if req == p.MaxPages {
				return r.tooMany(p)
			}
		}
	}
}

func (r *run) tooMany(p *Pagination) error {
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
func (r *run) nextLink(reqURL string, resp *response) (string, bool, error) {
	var target string
	for _, h := range resp.header.Values("Link") {
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

// landPage lands one response as the next page.
func (r *run) landPage(ctx context.Context, l Lander, res *Result, reqURL string, resp *response) error {
	n := len(res.Pages) + 1
	key, err := r.key(n)
	if err != nil {
		return fmt.Errorf("page %d: %v", n, err)
	}
	if err := l.Land(ctx, key, resp.body, resp.contentType); err != nil {
		return fmt.Errorf("page %d: landing %d bytes at %q: %w", n, len(resp.body), key, err)
	}
	pg := Page{N: n, URL: r.redactURL(reqURL), Key: key, Bytes: len(resp.body), Status: resp.status, Attempts: resp.attempts}
	res.Pages = append(res.Pages, pg)
	res.Bytes += int64(len(resp.body))
	r.logf("source %q: page %d: %d bytes from %s landed at %s (%d attempts)",
		r.im.cfg.Name, n, pg.Bytes, pg.URL, key, pg.Attempts)
	return nil
}

// key renders the key of page n, drawing a new Unique value until the key is
// new in this run.
func (r *run) key(n int) (string, error) {
	const tries = 5
	var key string
	for try := 0; try < tries; try++ {
		f := r.fields
		f.Unique, f.Page = r.im.unique(), n
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

func (r *run) logf(format string, args ...any) {
	r.im.logf("%s", r.scrub(fmt.Sprintf(format, args...)))
}

// scrubbedError carries a message with secrets removed while keeping the
// cause for errors.Is and errors.As.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
