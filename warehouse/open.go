package warehouse

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/warehouse/driver"
)

const supportedURLs = "sqlite:///abs/path.db, sqlite://./relative.db, postgres://user@host:5432/db or postgresql://..."

// Backend opens one kind of warehouse; a backend package registers it
// (Register) in its init.
type Backend struct {
	// Open opens the warehouse at target: a file path (sqlite) or the
	// URL as given (postgres).
	Open func(ctx context.Context, target string) (driver.Warehouse, error)
	// ReadOnly opens it for queries only; nil means Open.
	ReadOnly func(ctx context.Context, target string) (driver.Warehouse, error)
}

var (
	backendsMu sync.RWMutex
	backends   = map[string]Backend{}
	// backendPkg names the package that registers each kind, for the
	// error when it is not linked in.
	backendPkg = map[string]string{"sqlite": "sqlitewh", "postgres": "pgwh"}
)

// Register makes a backend available to Open for URLs of kind "sqlite"
// (sqlite://) or "postgres" (postgres://, postgresql://). Backend packages
// call it in their init; registering a kind twice panics.
func Register(kind string, b Backend) {
	backendsMu.Lock()
	defer backendsMu.Unlock()
	if _, dup := backends[kind]; dup {
		panic("warehouse: backend " + kind + " registered twice")
	}
	if _, ok := backendPkg[kind]; !ok || b.Open == nil {
		panic("warehouse: cannot register backend " + kind)
	}
	backends[kind] = b
}

func backend(kind, shown string) (Backend, error) {
	backendsMu.RLock()
	defer backendsMu.RUnlock()
	b, ok := backends[kind]
	if !ok {
		return b, fmt.Errorf("open warehouse %s: this program was built without the %s backend (import _ \"github.com/sluicehq/sluice/warehouse/%s\")", shown, kind, backendPkg[kind])
	}
	return b, nil
}

// Open opens the warehouse a URL names and checks that it is reachable:
//
//	sqlite:///abs/path.db, sqlite://./relative.db   sqlitewh (file and directory created when missing)
//	postgres://... or postgresql://...               pgwh (see pgwh for the schema parameter)
//
// The backend's package must be linked in (see Register). Percent escapes
// in a sqlite path are decoded. URL() of the result hides any password.
func Open(ctx context.Context, rawURL string) (*Warehouse, error) {
	return open(ctx, rawURL, false)
}

// OpenReadOnly opens the warehouse a URL names for queries only: SQLite
// files are opened read-only without creating or migrating anything
// (sqlitewh.OpenReadOnly), so a read works while another process writes
// and on a full disk; PostgreSQL is opened as by Open (its queries run in
// READ ONLY transactions).
func OpenReadOnly(ctx context.Context, rawURL string) (*Warehouse, error) {
	return open(ctx, rawURL, true)
}

func open(ctx context.Context, rawURL string, readOnly bool) (*Warehouse, error) {
	kind, target, shown, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	b, err := backend(kind, shown)
	if err != nil {
		return nil, err
	}
	opener := b.Open
	if readOnly && b.ReadOnly != nil {
		opener = b.ReadOnly
	}
	d, err := opener(ctx, target)
	if err != nil {
		return nil, fmt.Errorf("open warehouse %s: %w", shown, err)
	}
	return New(shown, d), nil
}

// parseURL splits a warehouse URL into the backend kind ("sqlite" or
// "postgres"), what to hand that backend (a file path, or the URL) and the
// URL to show (password hidden).
func parseURL(raw string) (kind, target, shown string, err error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		if strings.HasPrefix(strings.ToLower(raw), "sqlite:") {
			return "", "", "", fmt.Errorf("invalid warehouse URL %q: write sqlite:///abs/path.db or sqlite://./relative.db", raw)
		}
		return "", "", "", fmt.Errorf("invalid warehouse URL: no scheme; supported: %s", supportedURLs)
	}
	switch strings.ToLower(scheme) {
	case "sqlite":
		path, query, hasQuery := strings.Cut(rest, "?")
		if hasQuery {
			return "", "", "", fmt.Errorf("invalid warehouse URL %q: sqlite takes no parameters (?%s)", raw, query)
		}
		if path, err = url.PathUnescape(path); err != nil {
			return "", "", "", fmt.Errorf("invalid warehouse URL %q: %v", raw, err)
		}
		if path == "" || path == "/" {
			return "", "", "", fmt.Errorf("invalid warehouse URL %q: no file path; write sqlite:///abs/path.db or sqlite://./relative.db", raw)
		}
		return "sqlite", path, raw, nil
	case "postgres", "postgresql":
		u, err := url.Parse(raw)
		if err != nil {
			// url.Error repeats the URL, password included: keep only the reason.
			var reason error = err
			if ue, ok := err.(*url.Error); ok {
				reason = ue.Err
			}
			return "", "", "", fmt.Errorf("invalid PostgreSQL warehouse URL: %v", reason)
		}
		return "postgres", raw, redact(u), nil
	}
	return "", "", "", fmt.Errorf("unknown warehouse URL scheme %q; supported: %s", scheme, supportedURLs)
}

// redact hides the password in u's user info and in a password parameter.
func redact(u *url.URL) string {
	c := *u
	if q := c.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		c.RawQuery = q.Encode()
	}
	return c.Redacted()
}
