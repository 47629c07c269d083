package state

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// jobsSchema holds the job runs and the pending run requests. Times are
// stored as fixed-width UTC text (timeFormat), so they read well in a shell
// and sort lexically; a zero time is NULL.
const jobsSchema = `
CREATE TABLE IF NOT EXISTS job_runs (
	id TEXT PRIMARY KEY,
	rule TEXT NOT NULL,
	grp TEXT NOT NULL,
	state TEXT NOT NULL,
	inputs_json TEXT NOT NULL DEFAULT '[]',
	outputs_json TEXT NOT NULL DEFAULT '[]',
	exit_code INTEGER NOT NULL DEFAULT 0,
	error TEXT NOT NULL DEFAULT '',
	created TEXT NOT NULL,
	started TEXT,
	ended TEXT,
	terminated TEXT,
	compute_seconds REAL NOT NULL DEFAULT 0,
	log_key TEXT NOT NULL DEFAULT '',
	pid INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS job_runs_rule_grp ON job_runs(rule, grp, created);
CREATE INDEX IF NOT EXISTS job_runs_state ON job_runs(state);
CREATE TABLE IF NOT EXISTS job_requests (
	rule TEXT NOT NULL,
	grp TEXT NOT NULL,
	first_at TEXT NOT NULL,
	last_at TEXT NOT NULL,
	PRIMARY KEY (rule, grp)
);
`

// timeFormat is fixed-width so that text order is time order.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

// RunState is a run's lifecycle state, as stored. TERMINATED is not a
// state: it is JobRun.Terminated, set once the run's compute is gone.
type RunState string

// Run states.
const (
	RunStarting  RunState = "STARTING"
	RunRunning   RunState = "RUNNING"
	RunSucceeded RunState = "SUCCEEDED"
	RunFailed    RunState = "FAILED"
)

// ErrRunNotFound is returned for a run id that has no record.
var ErrRunNotFound = errors.New("no such job run")

// ErrBadTransition is returned by UpdateRun for a state change the run
// lifecycle does not allow (for example SUCCEEDED back to RUNNING).
var ErrBadTransition = errors.New("job run state change not allowed")

// RunInput is one input object version of a run.
type RunInput struct {
	Key  string `json:"key"`
	ETag string `json:"etag"`
}

// JobRun is one job run's record.
type JobRun struct {
	ID, Rule, Group string
	State           RunState
	Inputs          []RunInput
	Outputs         []string
	ExitCode        int
	Error           string
	Created         time.Time
	Started         time.Time
	Ended           time.Time
	Terminated      time.Time
	ComputeSeconds  float64
	LogKey          string
	PID             int
}

// RunFilter selects runs for ListRuns; zero fields select everything.
type RunFilter struct {
	Rule, Group string
	States      []RunState
	Limit       int // 0 means no limit
}

// RunRequest is a pending request for a run of (Rule, Group): events
// arrived between FirstAt and LastAt and no run has taken them yet.
type RunRequest struct {
	Rule, Group     string
	FirstAt, LastAt time.Time
	// NotBefore delays a retry after a transient failure (zero: none).
	NotBefore time.Time
	// Attempts counts the runs of this request that failed transiently,
	// the first of them at FirstFailure.
	Attempts     int
	FirstFailure time.Time
}

// transitions lists the allowed state changes; a state may always be
// rewritten to itself (to add Terminated, a log key, ...).
var transitions = map[RunState][]RunState{
	RunStarting:  {RunRunning, RunSucceeded, RunFailed},
	RunRunning:   {RunSucceeded, RunFailed},
	RunSucceeded: nil,
	RunFailed:    nil,
}

func validState(s RunState) bool { _, ok := transitions[s]; return ok }

func fmtTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(timeFormat)
}

func parseTime(s sql.NullString) (time.Time, error) {
	if !s.Valid || s.String == "" {
		return time.Time{}, nil
	}
	return time.Parse(timeFormat, s.String)
}

// CreateRun inserts a new run. Its ID must be new.
func (s *DB) CreateRun(ctx context.Context, r JobRun) error {
	if r.ID == "" || r.Rule == "" {
		return fmt.Errorf("state: create job run: id and rule are required (got id %q, rule %q)", r.ID, r.Rule)
	}
	if !validState(r.State) {
		return fmt.Errorf("state: create job run %s: unknown state %q", r.ID, r.State)
	}
	in, out, err := encodeIO(r)
	if err != nil {
		return fmt.Errorf("state: create job run %s: %w", r.ID, err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO job_runs(id, rule, grp, state, inputs_json, outputs_json, exit_code, error,
		created, started, ended, terminated, compute_seconds, log_key, pid) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		r.ID, r.Rule, r.Group, r.State, in, out, r.ExitCode, r.Error,
		fmtTime(r.Created), fmtTime(r.Started), fmtTime(r.Ended), fmtTime(r.Terminated), r.ComputeSeconds, r.LogKey, r.PID)
	if err != nil {
		return fmt.Errorf("state: create job run %s (rule %s, group %s): %w", r.ID, r.Rule, r.Group, err)
	}
	return nil
}

func encodeIO(r JobRun) (string, string, error) {
	if r.Inputs == nil {
		r.Inputs = []RunInput{}
	}
	if r.Outputs == nil {
		r.Outputs = []string{}
	}
	in, err := json.Marshal(r.Inputs)
	if err != nil {
		return "", "", fmt.Errorf("encode inputs: %w", err)
	}
	out, err := json.Marshal(r.Outputs)
	if err != nil {
		return "", "", fmt.Errorf("encode outputs: %w", err)
	}
	return string(in), string(out), nil
}

// UpdateRun rewrites a run's mutable fields (state, outputs, exit code,
// error, times, compute seconds, log key, pid) from r, in one transaction
// that checks the state change: STARTING → RUNNING → SUCCEEDED | FAILED
// (STARTING may also end directly). It returns ErrRunNotFound or
// ErrBadTransition (wrapped) when it changes nothing. Rule, group, inputs
// and the created time are fixed at CreateRun.
func (s *DB) UpdateRun(ctx context.Context, r JobRun) error {
	if !validState(r.State) {
		return fmt.Errorf("state: update job run %s: unknown state %q", r.ID, r.State)
	}
	_, out, err := encodeIO(r)
	if err != nil {
		return fmt.Errorf("state: update job run %s: %w", r.ID, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("state: update job run %s: %w", r.ID, err)
	}
	defer tx.Rollback()
	var cur RunState
	err = tx.QueryRowContext(ctx, `SELECT state FROM job_runs WHERE id = ?`, r.ID).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("state: update job run %s: %w", r.ID, ErrRunNotFound)
	}
	if err != nil {
		return fmt.Errorf("state: update job run %s: %w", r.ID, err)
	}
	if cur != r.State && !allowed(cur, r.State) {
		return fmt.Errorf("state: update job run %s from %s to %s: %w", r.ID, cur, r.State, ErrBadTransition)
	}
	_, err = tx.ExecContext(ctx, `UPDATE job_runs SET state=?, outputs_json=?, exit_code=?, error=?, started=?, ended=?,
		terminated=?, compute_seconds=?, log_key=?, pid=? WHERE id=?`,
		r.State, out, r.ExitCode, r.Error, fmtTime(r.Started), fmtTime(r.Ended), fmtTime(r.Terminated),
		r.ComputeSeconds, r.LogKey, r.PID, r.ID)
	if err != nil {
		return fmt.Errorf("state: update job run %s: %w", r.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("state: update job run %s: %w", r.ID, err)
	}
	return nil
}

func allowed(from, to RunState) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

const runColumns = `id, rule, grp, state, inputs_json, outputs_json, exit_code, error, created, started, ended, terminated, compute_seconds, log_key, pid`

func scanRun(sc interface{ Scan(...any) error }) (JobRun, error) {
	var r JobRun
	var in, out string
	var created, started, ended, terminated sql.NullString
	if err := sc.Scan(&r.ID, &r.Rule, &r.Group, &r.State, &in, &out, &r.ExitCode, &r.Error,
		&created, &started, &ended, &terminated, &r.ComputeSeconds, &r.LogKey, &r.PID); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(in), &r.Inputs); err != nil {
		return r, fmt.Errorf("job run %s: inputs: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(out), &r.Outputs); err != nil {
		return r, fmt.Errorf("job run %s: outputs: %w", r.ID, err)
	}
	var err error
	for _, p := range []struct {
		dst *time.Time
		src sql.NullString
	}{{&r.Created, created}, {&r.Started, started}, {&r.Ended, ended}, {&r.Terminated, terminated}} {
		if *p.dst, err = parseTime(p.src); err != nil {
			return r, fmt.Errorf("job run %s: %w", r.ID, err)
		}
	}
	return r, nil
}

// GetRun returns one run, or an error wrapping ErrRunNotFound.
func (s *DB) GetRun(ctx context.Context, id string) (JobRun, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM job_runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return JobRun{}, fmt.Errorf("state: get job run %s: %w", id, ErrRunNotFound)
	}
	if err != nil {
		return JobRun{}, fmt.Errorf("state: get job run %s: %w", id, err)
	}
	return r, nil
}

// ListRuns returns the runs f selects, newest first.
func (s *DB) ListRuns(ctx context.Context, f RunFilter) ([]JobRun, error) {
	var where []string
	var args []any
	if f.Rule != "" {
		where, args = append(where, "rule = ?"), append(args, f.Rule)
	}
	if f.Group != "" {
		where, args = append(where, "grp = ?"), append(args, f.Group)
	}
	if len(f.States) > 0 {
		where = append(where, "state IN (?"+strings.Repeat(",?", len(f.States)-1)+")")
		for _, st := range f.States {
			args = append(args, st)
		}
	}
	q := `SELECT ` + runColumns + ` FROM job_runs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created DESC, id DESC`
	if f.Limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("state: list job runs: %w", err)
	}
	defer rows.Close()
	var out []JobRun
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, fmt.Errorf("state: list job runs: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: list job runs: %w", err)
	}
	return out, nil
}

// RequestRun records durably that an event asks for a run of (rule, grp)
// at time at: it inserts the request or moves its last_at forward (never
// back). When it returns nil the request is committed, so the event that
// caused it may be acknowledged.
func (s *DB) RequestRun(ctx context.Context, rule, grp string, at time.Time) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO job_requests(rule, grp, first_at, last_at) VALUES(?, ?, ?, ?)
		ON CONFLICT(rule, grp) DO UPDATE SET last_at = max(last_at, excluded.last_at)`,
		rule, grp, fmtTime(at), fmtTime(at))
	if err != nil {
		return fmt.Errorf("state: request run of job %s for group %s: %w", rule, grp, err)
	}
	return nil
}

// PendingRequests returns every pending run request, oldest last_at first.
func (s *DB) PendingRequests(ctx context.Context) ([]RunRequest, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT rule, grp, first_at, last_at, not_before, attempts, first_failure FROM job_requests ORDER BY last_at, rule, grp`)
	if err != nil {
		return nil, fmt.Errorf("state: list pending run requests: %w", err)
	}
	defer rows.Close()
	var out []RunRequest
	for rows.Next() {
		var r RunRequest
		var first, last, notBefore, firstFailure sql.NullString
		if err := rows.Scan(&r.Rule, &r.Group, &first, &last, &notBefore, &r.Attempts, &firstFailure); err != nil {
			return nil, fmt.Errorf("state: list pending run requests: %w", err)
		}
		if r.FirstAt, err = parseTime(first); err == nil {
			if r.LastAt, err = parseTime(last); err == nil {
				if r.NotBefore, err = parseTime(notBefore); err == nil {
					r.FirstFailure, err = parseTime(firstFailure)
				}
			}
		}
		if err != nil {
			return nil, fmt.Errorf("state: run request %s/%s: %w", r.Rule, r.Group, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: list pending run requests: %w", err)
	}
	return out, nil
}

// RetryRequest records that a run of (rule, grp) failed transiently: the
// request is kept (or put back) with its attempts, first failure and the
// time before which it must not run again. Events that refresh the
// request meanwhile keep it.
func (s *DB) RetryRequest(ctx context.Context, rule, grp string, lastAt, notBefore, firstFailure time.Time, attempts int) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO job_requests(rule, grp, first_at, last_at, not_before, attempts, first_failure) VALUES(?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(rule, grp) DO UPDATE SET not_before = excluded.not_before, attempts = excluded.attempts, first_failure = excluded.first_failure`,
		rule, grp, fmtTime(lastAt), fmtTime(lastAt), fmtTime(notBefore), attempts, fmtTime(firstFailure))
	if err != nil {
		return fmt.Errorf("state: retry run of job %s for group %s: %w", rule, grp, err)
	}
	return nil
}

// ResetRetry forgets the retries of (rule, grp)'s request, if one is still
// pending (an event refreshed it during a run that then succeeded).
func (s *DB) ResetRetry(ctx context.Context, rule, grp string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE job_requests SET not_before = NULL, attempts = 0, first_failure = NULL WHERE rule = ? AND grp = ?`, rule, grp); err != nil {
		return fmt.Errorf("state: reset retries of job %s for group %s: %w", rule, grp, err)
	}
	return nil
}

// ClearRequest deletes the request for (rule, grp) if its last_at is not
// after upTo, and reports whether it did. A request refreshed by an event
// after upTo (one that arrived while its run was being set up or running)
// survives, so that event gets exactly one follow-up run.
func (s *DB) ClearRequest(ctx context.Context, rule, grp string, upTo time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM job_requests WHERE rule = ? AND grp = ? AND last_at <= ?`,
		rule, grp, fmtTime(upTo))
	if err != nil {
		return false, fmt.Errorf("state: clear run request of job %s for group %s: %w", rule, grp, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("state: clear run request of job %s for group %s: %w", rule, grp, err)
	}
	return n > 0, nil
}
