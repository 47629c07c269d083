package lineage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// APIKeyEnv names the environment variable whose value, when set, Open
// sends to an http(s) endpoint as "Authorization: Bearer <value>" (the
// variable OpenLineage's own clients read).
const APIKeyEnv = "OPENLINEAGE_API_KEY"

// httpTimeout bounds one POST, whatever the caller's context allows.
const httpTimeout = 10 * time.Second

// An Emitter sends run events to one destination. It is safe for
// concurrent use. A nil *Emitter is valid: Emit and Close do nothing, so
// callers with lineage turned off need no checks.
type Emitter struct {
	url  string // redacted, for messages
	sink sink
	log  *slog.Logger
}

// sink is a destination: one encoded event in, sent or failed.
type sink interface {
	send(ctx context.Context, event []byte) error
	close() error
}

// Open returns an Emitter for rawURL:
//
//	file:///abs/path.ndjson   appends one JSON event per line (file and
//	                          directories created when missing)
//	http://… or https://…     POSTs each event as application/json to the
//	                          URL as given, e.g. http://marquez:5000/api/v1/lineage
//
// An empty rawURL returns a nil *Emitter and no error: lineage off. For
// http(s), the value of $OPENLINEAGE_API_KEY, when set, is sent as a
// bearer token; each POST times out after 10s. Open contacts no server; a
// nil logger discards. ctx is checked but not kept.
func Open(ctx context.Context, rawURL string, logger *slog.Logger) (*Emitter, error) {
	if rawURL == "" {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("lineage: invalid URL %s: %v", redactRaw(rawURL), urlReason(err))
	}
	e := &Emitter{url: redact(u), log: logger}
	switch strings.ToLower(u.Scheme) {
	case "file":
		e.sink, err = openFile(u)
	case "http", "https":
		if u.Host == "" {
			return nil, fmt.Errorf("lineage: URL %s has no host", e.url)
		}
		token := os.Getenv(APIKeyEnv)
		if token != "" && strings.EqualFold(u.Scheme, "http") {
			logger.Warn("lineage: sending the API key over plain HTTP", "url", e.url, "env", APIKeyEnv)
		}
		e.sink = &httpSink{
			url:    rawURL,
			shown:  e.url,
			token:  token,
			client: &http.Client{Timeout: httpTimeout},
		}
	default:
		err = errors.New("unsupported scheme; write file:///abs/path.ndjson, http://… or https://…")
	}
	if err != nil {
		return nil, fmt.Errorf("lineage: %s: %w", e.url, err)
	}
	return e, nil
}

// URL returns the destination's URL with secrets hidden ("" for nil).
func (e *Emitter) URL() string {
	if e == nil {
		return ""
	}
	return e.url
}

// Emit checks ev against what the spec requires, encodes it and sends it.
// Cancelling ctx abandons a POST in flight. A nil *Emitter does nothing.
//
// Lineage is a side channel: a failed Emit must never fail the pipeline
// step it reports on. Callers log the returned error (it names the
// destination, without secrets) and carry on; the event is not retried.
func (e *Emitter) Emit(ctx context.Context, ev RunEvent) error {
	if e == nil {
		return nil
	}
	if err := ev.validate(); err != nil {
		return fmt.Errorf("lineage: invalid %s event for job %s/%s: %w", ev.EventType, ev.Job.Namespace, ev.Job.Name, err)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("lineage: encode %s event: %w", ev.EventType, err)
	}
	if err := e.sink.send(ctx, b); err != nil {
		return fmt.Errorf("lineage: emit %s event for job %s/%s to %s: %w", ev.EventType, ev.Job.Namespace, ev.Job.Name, e.url, err)
	}
	e.log.Debug("lineage event emitted", "type", ev.EventType, "job", ev.Job.Namespace+"/"+ev.Job.Name, "run", ev.Run.RunID, "to", e.url)
	return nil
}

// Close releases the destination (the file, idle connections). Emit after
// Close returns an error. A nil *Emitter does nothing.
func (e *Emitter) Close() error {
	if e == nil {
		return nil
	}
	if err := e.sink.close(); err != nil {
		return fmt.Errorf("lineage: close %s: %w", e.url, err)
	}
	return nil
}

var errClosed = errors.New("emitter closed")

// fileSink appends events as lines. One write per event on an O_APPEND
// file keeps lines whole, also against other processes appending to it;
// the mutex orders writers within this process.
type fileSink struct {
	mu sync.Mutex
	f  *os.File
}

func openFile(u *url.URL) (*fileSink, error) {
	if h := u.Hostname(); h != "" && h != "localhost" {
		return nil, fmt.Errorf("file URL has host %q; write file:///abs/path.ndjson", u.Host)
	}
	if u.Path == "" || !filepath.IsAbs(u.Path) || strings.HasSuffix(u.Path, "/") {
		return nil, errors.New("file URL needs an absolute file path, like file:///abs/path.ndjson")
	}
	if u.RawQuery != "" {
		return nil, errors.New("file URL takes no query parameters")
	}
	p := filepath.Clean(u.Path)
	if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o666)
	if err != nil {
		return nil, err
	}
	return &fileSink{f: f}, nil
}

func (s *fileSink) send(ctx context.Context, event []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	line := append(event[:len(event):len(event)], '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return errClosed
	}
	_, err := s.f.Write(line)
	return err
}

func (s *fileSink) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// httpSink POSTs events to an OpenLineage HTTP endpoint.
type httpSink struct {
	url, shown string
	token      string
	client     *http.Client

	mu     sync.Mutex
	closed bool
}

func (s *httpSink) send(ctx context.Context, event []byte) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return errClosed
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(event))
	if err != nil {
		return fmt.Errorf("POST %s: %v", s.shown, urlReason(err))
	}
	req.Header.Set("Content-Type", "application/json")
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// net/http's error repeats the URL with query tokens: keep the reason.
		return fmt.Errorf("POST %s: %w", s.shown, urlReason(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode/100 != 2 {
		msg := fmt.Sprintf("POST %s: HTTP %s", s.shown, resp.Status)
		if b := strings.TrimSpace(string(body)); b != "" {
			msg += ": " + b
		}
		return errors.New(msg)
	}
	return nil
}

func (s *httpSink) close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.client.CloseIdleConnections()
	return nil
}

// urlReason strips the URL a *url.Error repeats (it may hold secrets),
// keeping the reason.
func urlReason(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// redact returns u without its password and with secret-looking query
// values ("token", "key", "secret", "password", …) replaced.
func redact(u *url.URL) string {
	c := *u
	if q := c.Query(); len(q) > 0 {
		changed := false
		for k := range q {
			if secretParam(k) {
				q.Set(k, "xxxxx")
				changed = true
			}
		}
		if changed {
			c.RawQuery = q.Encode()
		}
	}
	return c.Redacted()
}

func secretParam(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"password", "passwd", "secret", "token", "key", "credential", "signature", "auth"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// redactRaw hides the user info and the query of a URL that does not
// parse: neither can be split from the rest safely, so everything from
// "//" to the last "@", and from the first "?" or "#", goes.
func redactRaw(raw string) string {
	if j := strings.Index(raw, "//"); j >= 0 {
		if at := strings.LastIndexByte(raw, '@'); at > j {
			raw = raw[:j+2] + "xxxxx" + raw[at:]
		}
	}
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i] + "?…"
	}
	return raw
}
