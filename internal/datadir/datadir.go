// Package datadir resolves and locks sluice's data directory: one directory
// per installation holding the local store (lake/), the embedded warehouse
// (warehouse.db), the embedded queue (queue/), the state database (state.db)
// and the local job runs (jobs/). One process owns it at a time — the one that runs the
// embedded queue and emits events for files it finds — and records how to
// reach it in owner.json; other commands read the store and warehouse
// directly.
package datadir

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Default is the data dir used when neither --data-dir nor $SLUICE_DATA is set.
const Default = "./sluice-data"

// Dir is a resolved, absolute data directory.
type Dir struct{ Path string }

// Resolve picks the data dir: flag, else $SLUICE_DATA (via getenv), else
// Default; the result is absolute. It does not create the directory.
func Resolve(flag string, getenv func(string) string) (Dir, error) {
	p := flag
	if p == "" && getenv != nil {
		p = getenv("SLUICE_DATA")
	}
	if p == "" {
		p = Default
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return Dir{}, fmt.Errorf("data dir %q: %w", p, err)
	}
	return Dir{Path: abs}, nil
}

// Ensure creates the data dir and its lake, for the owner alone (0700):
// it holds the warehouse, the state, the queue and the landed objects. A
// data dir group or others can enter is made 0700, with a warning.
func (d Dir) Ensure() error {
	for _, p := range []string{d.Path, d.Lake(), d.Jobs()} {
		if err := os.MkdirAll(p, 0o700); err != nil {
			return fmt.Errorf("create data dir: %w", err)
		}
	}
	fi, err := os.Stat(d.Path)
	if err != nil {
		return fmt.Errorf("data dir %s: %w", d.Path, err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(d.Path, 0o700); err != nil {
			return fmt.Errorf("data dir %s is open to other users (mode %04o) and cannot be made 0700: %w", d.Path, perm, err)
		}
		slog.Warn("the data dir was open to other users; it is now the owner's alone", "dir", d.Path, "was", fmt.Sprintf("%04o", perm), "now", "0700")
	}
	return nil
}

// Lake is the local object store's root.
func (d Dir) Lake() string { return filepath.Join(d.Path, "lake") }

// StoreURL is the default store URL.
func (d Dir) StoreURL() string { return FileURL("file", d.Lake()) }

// WarehouseURL is the default warehouse URL (embedded SQLite).
func (d Dir) WarehouseURL() string { return FileURL("sqlite", filepath.Join(d.Path, "warehouse.db")) }

// StateURL is the default state URL (SQLite).
func (d Dir) StateURL() string { return FileURL("sqlite", d.State()) }

// FileURL is scheme:///abs/path for an absolute path, escaped: a data dir
// like /tmp/x%2Fy or /srv/a#b names that directory, not /tmp/x/y or /srv/a.
func FileURL(scheme, abs string) string {
	return (&url.URL{Scheme: scheme, Path: filepath.ToSlash(abs)}).String()
}

// Queue is the embedded queue's storage directory.
func (d Dir) Queue() string { return filepath.Join(d.Path, "queue") }

// State is the state database file.
func (d Dir) State() string { return filepath.Join(d.Path, "state.db") }

// Jobs holds one directory per local job run (task, log, result).
func (d Dir) Jobs() string { return filepath.Join(d.Path, "jobs") }

// Owner describes the process owning the data dir.
type Owner struct {
	PID      int       `json:"pid"`
	Command  string    `json:"command"`
	QueueURL string    `json:"queue_url,omitempty"` // client URL of the embedded queue
	Started  time.Time `json:"started"`
}

// Lock is held by the owning process.
type Lock struct {
	f       *os.File
	dir     Dir
	command string
}

// ErrOwned means another live process owns the data dir.
var ErrOwned = errors.New("data dir is owned by another sluice process")

// Acquire takes ownership of the data dir without waiting. If another
// process holds it, the error names that process and what to do.
func (d Dir) Acquire(command string) (*Lock, error) {
	if err := d.Ensure(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(d.Path, "owner.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir %s: %w", d.Path, err)
	}
	// Owned probes the lock for an instant, and `dlq ls` owns the dir for
	// the second it takes to read the embedded queue: retries for up to 2 s
	// keep either from looking like a long-lived owner.
	var err2 error
	for try := 0; try < 100; try++ {
		if err2 = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err2 == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err2 != nil {
		f.Close()
		who := "another process"
		if o, err := d.ReadOwner(); err == nil {
			who = fmt.Sprintf("pid %d (sluice %s, since %s)", o.PID, o.Command, o.Started.Format(time.RFC3339))
		}
		return nil, fmt.Errorf("data dir %s is in use by %s: stop it, or pass another --data-dir: %w", d.Path, who, ErrOwned)
	}
	l := &Lock{f: f, dir: d, command: command}
	if err := l.Publish(Owner{Command: command}); err != nil {
		l.Release()
		return nil, err
	}
	return l, nil
}

// Publish records how to reach the owner (PID, start and, when empty, the
// command given to Acquire are filled in).
func (l *Lock) Publish(o Owner) error {
	o.PID = os.Getpid()
	if o.Command == "" {
		o.Command = l.command
	}
	if o.Started.IsZero() {
		o.Started = time.Now().UTC()
	}
	b, _ := json.MarshalIndent(o, "", "  ")
	tmp := filepath.Join(l.dir.Path, ".owner.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write owner file: %w", err)
	}
	return os.Rename(tmp, filepath.Join(l.dir.Path, "owner.json"))
}

// Release gives up ownership.
func (l *Lock) Release() {
	if l == nil || l.f == nil {
		return
	}
	os.Remove(filepath.Join(l.dir.Path, "owner.json"))
	syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	l.f.Close()
	l.f = nil
}

// ReadOwner returns the recorded owner. It may be stale; Owned tells
// whether a live process holds the lock.
func (d Dir) ReadOwner() (Owner, error) {
	var o Owner
	b, err := os.ReadFile(filepath.Join(d.Path, "owner.json"))
	if err != nil {
		return o, err
	}
	return o, json.Unmarshal(b, &o)
}

// Owned reports whether a live process holds the data dir, and if so who.
func (d Dir) Owned() (Owner, bool) {
	f, err := os.OpenFile(filepath.Join(d.Path, "owner.lock"), os.O_RDWR, 0o644)
	if err != nil {
		return Owner{}, false
	}
	defer f.Close()
	// A shared probe: it fails only while an owner holds the exclusive lock.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err == nil {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return Owner{}, false
	}
	o, _ := d.ReadOwner()
	return o, true
}
