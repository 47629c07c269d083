package httpsource

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
)

// memo is what an import remembers of the page it last landed (or found
// unchanged) at one request position; see "Conditional requests and
// unchanged pages". It is stored as JSON under memoKey.
type memo struct {
	// URL is the hex SHA-256 of the request URL: validators and the body
	// hash apply only to a request for the same URL, and the memory holds
	// no URL (which may carry an API key) in clear.
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	// SHA256 is the hex SHA-256 of the body.
	SHA256 string `json:"sha256"`
	// What the pagination read from the body and its headers, for going
	// on after a 304 without a body.
	Items     int      `json:"items,omitempty"`
	Counted   bool     `json:"counted,omitempty"`
	Cursor    string   `json:"cursor,omitempty"`
	CursorOK  bool     `json:"cursor_ok,omitempty"`
	CursorErr string   `json:"cursor_err,omitempty"`
	Links     []string `json:"links,omitempty"`
}

// memoKey is the Memory key of request position n of source.
func memoKey(source string, n int) string { return "httpsource/" + source + "/" + strconv.Itoa(n) }

func hashHex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// recall returns the memo of request position n for reqURL, if the memory
// has one for that URL. A memory that fails is logged, once per import,
// and treated as empty.
func (r *run) recall(ctx context.Context, n int, reqURL string) (memo, bool) {
	if r.im.memory == nil {
		return memo{}, false
	}
	v, err := r.im.memory.Setting(ctx, memoKey(r.im.cfg.Name, n))
	if err != nil {
		r.memoryFailed("reading", err)
		return memo{}, false
	}
	if v == "" {
		return memo{}, false
	}
	var m memo
	if err := json.Unmarshal([]byte(v), &m); err != nil || m.URL != hashHex([]byte(reqURL)) {
		return memo{}, false // unreadable (another version's), or another URL's
	}
	return m, true
}

// remember stores the memo of request position n; a failure is logged
// and costs the next import a full fetch.
func (r *run) remember(ctx context.Context, n int, m memo) {
	if r.im.memory == nil {
		return
	}
	b, err := json.Marshal(m)
	if err == nil {
		err = r.im.memory.SetSetting(ctx, memoKey(r.im.cfg.Name, n), string(b))
	}
	if err != nil {
		r.memoryFailed("writing", err)
	}
}

func (r *run) memoryFailed(doing string, err error) {
	if r.memoryErr {
		return
	}
	r.memoryErr = true
	r.logf("source %q: %s what the last import landed failed (%v); fetching and landing in full", r.im.cfg.Name, doing, err)
}

// conditional returns the validator headers for a request with memo m.
func (m memo) conditional() http.Header {
	h := http.Header{}
	if m.ETag != "" {
		h.Set("If-None-Match", m.ETag)
	}
	if m.LastModified != "" {
		h.Set("If-Modified-Since", m.LastModified)
	}
	return h
}

// newMemo returns the memo of a page fetched from reqURL whose body has
// the hex SHA-256 sum.
func newMemo(reqURL string, header http.Header, sum string, info pageInfo) memo {
	m := memo{
		URL:          hashHex([]byte(reqURL)),
		ETag:         header.Get("ETag"),
		LastModified: header.Get("Last-Modified"),
		SHA256:       sum,
		Items:        info.shape.items,
		Counted:      info.shape.counted,
		Cursor:       info.cursor,
		CursorOK:     info.cursorOK,
		Links:        header.Values("Link"),
	}
	if info.cursorErr != nil {
		m.CursorErr = info.cursorErr.Error()
	}
	return m
}

// info returns what the pagination read from the page m remembers: a
// landed page is never empty.
func (m memo) info() (pageInfo, http.Header) {
	info := pageInfo{shape: shape{items: m.Items, counted: m.Counted}, cursor: m.Cursor, cursorOK: m.CursorOK}
	if m.CursorErr != "" {
		info.cursorErr = errors.New(m.CursorErr)
	}
	h := http.Header{}
	for _, l := range m.Links {
		h.Add("Link", l)
	}
	return info, h
}

// errNotModified is the failure of a 304 answer to a request that sent no
// validators: there is nothing it could refer to.
var errNotModified = fmt.Errorf("HTTP 304 Not Modified to a request without If-None-Match or If-Modified-Since")
