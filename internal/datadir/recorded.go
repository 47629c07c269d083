package datadir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
)

// RecordFile is the file in the data dir that holds Recorded.
const RecordFile = "pipeline.json"

// Recorded is what the data dir's last owner ran on, for the commands
// that read it later without a spec (sql, jobs, dlq, replay): its
// warehouse and state URLs, "" for the data dir's own (warehouse.db,
// state.db), and its spec file, "" when it had none on disk (the demo).
//
// URLs are recorded without passwords: a reading command takes
// PostgreSQL's from PGPASSWORD or ~/.pgpass (pgx reads both when the
// URL has none), or the whole URL from SLUICE_WAREHOUSE / SLUICE_STATE.
type Recorded struct {
	Warehouse string `json:"warehouse,omitempty"`
	State     string `json:"state,omitempty"`
	Spec      string `json:"spec,omitempty"`
}

// Record writes r into the data dir, passwords stripped, for the owner's
// later readers; it replaces the previous owner's record. The file is the
// owner's alone (0600) and replaced atomically, so a reader sees the old
// record or the new one.
func (l *Lock) Record(r Recorded) error {
	r.Warehouse, r.State = StripPassword(r.Warehouse), StripPassword(r.State)
	b, _ := json.MarshalIndent(r, "", "  ")
	tmp := filepath.Join(l.dir.Path, "."+RecordFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("record the pipeline's URLs: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(l.dir.Path, RecordFile)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("record the pipeline's URLs: %w", err)
	}
	return nil
}

// Recorded returns what the data dir's last owner recorded; ok is false
// when nothing was (a data dir from before sluice recorded, or one no
// pipeline has run in).
func (d Dir) Recorded() (r Recorded, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(d.Path, RecordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("read %s: %w", RecordFile, err)
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, false, fmt.Errorf("read %s: %w", filepath.Join(d.Path, RecordFile), err)
	}
	return r, true, nil
}

// StripPassword returns rawURL without a password: the userinfo's, and the
// password and sslpassword query parameters PostgreSQL URLs may carry. A
// URL that does not parse is returned as "", never as it is: a password
// could hide anywhere in it.
func StripPassword(rawURL string) string {
	if rawURL == "" {
		return ""
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.User(u.User.Username())
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		if q.Has("password") || q.Has("sslpassword") {
			q.Del("password")
			q.Del("sslpassword")
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}
