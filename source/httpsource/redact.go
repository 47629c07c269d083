package httpsource

import (
	"net/url"
	"strings"
)

// pagingNames are the query parameters, besides the configured Param and
// SizeParam, whose values messages show: the names APIs use for paging,
// which is what the next links of link pagination carry. Compared after
// normalizeParam.
var pagingNames = map[string]bool{
	"page": true, "per_page": true, "perpage": true, "page_size": true, "pagesize": true,
	"page_number": true, "pagenumber": true, "limit": true, "offset": true, "start": true,
	"size": true, "count": true, "skip": true, "top": true, "cursor": true,
	"after": true, "before": true, "since": true,
}

// secretWords make a query parameter's value secret when its name contains
// one of them, whatever else is true of it: an API key, an access token, a
// signature (pre-signed URLs), a password, a session.
var secretWords = []string{"token", "key", "secret", "pass", "pwd", "sig", "auth", "cred", "session"}

// normalizeParam lower-cases a parameter name, drops a leading _ or $
// (JSONPlaceholder's _page, OData's $top) and spells - as _.
func normalizeParam(name string) string {
	return strings.ReplaceAll(strings.TrimLeft(strings.ToLower(name), "_$"), "-", "_")
}

// shownQueryValue is the one rule that decides, for every pagination type,
// whether messages may show the value of query parameter name: only a
// pagination parameter's (the configured Param or SizeParam, or a common
// paging name such as page, per_page, offset or cursor), and never one
// whose name looks secret (see secretWords). Everything else is redacted:
// an unknown parameter may be an API key under any name.
func (im *Importer) shownQueryValue(name string) bool {
	n := normalizeParam(name)
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return false
		}
	}
	if p := im.cfg.Pagination; p != nil && ((p.Param != "" && name == p.Param) || (p.SizeParam != "" && name == p.SizeParam)) {
		return true
	}
	return pagingNames[n]
}

// showCursor returns a cursor for messages: as it is when its parameter's
// values are shown (shownQueryValue), else REDACTED.
func (r *run) showCursor(cursor string) string {
	if p := r.im.cfg.Pagination; p != nil && r.im.shownQueryValue(p.Param) {
		return r.scrub(cursor)
	}
	return "REDACTED"
}

// redactURL returns rawURL fit for messages: the user's password and every
// query value that shownQueryValue does not allow are replaced by
// REDACTED, and the fragment is dropped.
func (r *run) redactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		}
	}
	u.Fragment, u.RawFragment = "", ""
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		for i, part := range parts {
			k, v, found := strings.Cut(part, "=")
			if !found || v == "" {
				continue
			}
			if name, err := url.QueryUnescape(k); err == nil && r.im.shownQueryValue(name) {
				continue
			}
			parts[i] = k + "=REDACTED"
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return r.scrub(u.String())
}
