// Package state opens sluice's shared state by URL: job runs and run
// requests (job.Store), leases and fenced claims (lease.Store), dead
// letters (deadletter.Store), the files the watcher has seen
// (store.SeenSet) and settings. Backends:
//
//	""                       embedded SQLite, <data dir>/state.db (one machine)
//	sqlite:///abs/path.db    SQLite at that path
//	postgres://USER@HOST:PORT/DB?schema=S
//	                         PostgreSQL, every table in schema S (default
//	                         "sluice"), for processes on several machines
//
// Each backend is a small driver over the same SQL (state/sqlitestate,
// state/pgstate); state/statetest is the conformance suite both pass.
package state

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluicehq/sluice/deadletter"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/lease"
	"github.com/sluicehq/sluice/state/pgstate"
	"github.com/sluicehq/sluice/state/sqlitestate"
	"github.com/sluicehq/sluice/store"
)

// Settings are small named values sluice records for other commands (the
// pipeline's name, its spec file, its queue URL without password).
type Settings interface {
	SetSetting(ctx context.Context, k, v string) error
	// Setting returns "" for an unset k.
	Setting(ctx context.Context, k string) (string, error)
}

// Store is an opened state: everything sluice keeps besides the lake.
type Store interface {
	job.Store
	lease.Store
	deadletter.Store
	store.SeenSet
	Settings
	Close() error
}

var (
	_ Store = (*sqlitestate.DB)(nil)
	_ Store = (*pgstate.DB)(nil)
)

// Options tunes Open.
type Options struct {
	// Clock is the lease clock of SQLite states (default time.Now);
	// PostgreSQL always uses the database's clock.
	Clock func() time.Time
}

const forms = `write nothing (the data dir's state.db), sqlite:///ABS/PATH.db or postgres://USER@HOST:PORT/DB?schema=SCHEMA`

// Path returns the SQLite file rawURL names ("" for a PostgreSQL URL):
// dataDir/state.db for "".
func Path(rawURL, dataDir string) (string, error) {
	if rawURL == "" {
		return filepath.Join(dataDir, "state.db"), nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("state URL %q does not parse: %s", Redact(rawURL), forms)
	}
	switch u.Scheme {
	case "sqlite":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") || u.RawQuery != "" {
			return "", fmt.Errorf("state URL %q: a SQLite state is sqlite:///ABS/PATH.db (three slashes, an absolute path, no parameters)", Redact(rawURL))
		}
		return u.Path, nil
	case "postgres", "postgresql":
		return "", nil
	}
	return "", fmt.Errorf("state URL %q: unknown scheme %q: %s", Redact(rawURL), u.Scheme, forms)
}

// Open opens (creating and migrating) the state rawURL names; "" is
// dataDir/state.db.
func Open(ctx context.Context, rawURL, dataDir string) (Store, error) {
	return OpenWith(ctx, rawURL, dataDir, nil)
}

// OpenWith is Open with options; opts may be nil.
func OpenWith(ctx context.Context, rawURL, dataDir string, opts *Options) (Store, error) {
	if opts == nil {
		opts = &Options{}
	}
	path, err := Path(rawURL, dataDir)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return pgstate.Open(ctx, rawURL)
	}
	return sqlitestate.Open(ctx, path, &sqlitestate.Options{Clock: opts.Clock})
}

// OpenReadOnly opens an existing state for reading only, for commands that
// must work while another process runs the pipeline (and, for SQLite, on a
// full disk). It creates and migrates nothing.
func OpenReadOnly(ctx context.Context, rawURL, dataDir string) (Store, error) {
	path, err := Path(rawURL, dataDir)
	if err != nil {
		return nil, err
	}
	if path == "" {
		return pgstate.OpenReadOnly(ctx, rawURL)
	}
	return sqlitestate.OpenReadOnly(ctx, path)
}

// Redact returns rawURL without its password, for messages.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		if i := strings.LastIndex(rawURL, "@"); i >= 0 {
			if j := strings.Index(rawURL, "://"); j >= 0 && j < i {
				return rawURL[:j+3] + "…" + rawURL[i:]
			}
		}
		return rawURL
	}
	return u.Redacted()
}
