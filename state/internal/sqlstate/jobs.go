package sqlstate

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/lease"
)

// CreateRun inserts a new run (job.Store).
func (s *DB) CreateRun(ctx context.Context, r job.Run) error {
	if r.ID == "" || r.Rule == "" {
		return fmt.Errorf("state: create job run: id and rule are required (got id %q, rule %q)", r.ID, r.Rule)
	}
	if !job.ValidState(r.State) {
		return fmt.Errorf("state: create job run %s: unknown state %q", r.ID, r.State)
	}
	in, out, err := encodeIO(r)
	if err != nil {
		return fmt.Errorf("state: create job run %s: %w", r.ID, err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.checkClaim(ctx, tx, r); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `INSERT INTO job_runs(id, rule, grp, state, inputs_json, outputs_json, exit_code, error,
		created, started, ended, terminated, compute_seconds, log_key, pid, claimer, epoch, remote, instances) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			r.ID, r.Rule, r.Group, string(r.State), in, out, r.ExitCode, r.Error,
			FmtTime(r.Created), FmtTime(r.Started), FmtTime(r.Ended), FmtTime(r.Terminated), r.ComputeSeconds, r.LogKey, r.PID, r.Claimer, r.Epoch, r.Remote, r.Instances)
		return err
	})
	if err != nil {
		return fmt.Errorf("state: create job run %s (rule %s, group %s): %w", r.ID, r.Rule, r.Group, err)
	}
	return nil
}

// checkClaim returns an error wrapping lease.ErrLost unless r is unfenced
// (Epoch 0) or its claim is current; on PostgreSQL it locks the lease row
// against changes until tx ends.
func (s *DB) checkClaim(ctx context.Context, tx *sql.Tx, r job.Run) error {
	if r.Epoch == 0 {
		return nil
	}
	return s.checkLease(ctx, tx, lease.Lease{Name: job.LeaseName(r.Rule, r.Group), Holder: r.Claimer, Epoch: r.Epoch}, true)
}

func encodeIO(r job.Run) (string, string, error) {
	if r.Inputs == nil {
		r.Inputs = []job.Input{}
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

// UpdateRun rewrites a run's mutable fields (job.Store).
func (s *DB) UpdateRun(ctx context.Context, r job.Run) error {
	if !job.ValidState(r.State) {
		return fmt.Errorf("state: update job run %s: unknown state %q", r.ID, r.State)
	}
	_, out, err := encodeIO(r)
	if err != nil {
		return fmt.Errorf("state: update job run %s: %w", r.ID, err)
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		var cur, rule, grp string
		err := s.queryRow(ctx, tx, `SELECT state, rule, grp FROM job_runs WHERE id = ?`+s.forUpdate(), r.ID).Scan(&cur, &rule, &grp)
		if errors.Is(err, sql.ErrNoRows) {
			return job.ErrRunNotFound
		}
		if err != nil {
			return err
		}
		r.Rule, r.Group = rule, grp // the claim is on the stored run's group
		if err := s.checkClaim(ctx, tx, r); err != nil {
			return err
		}
		if !job.CanTransition(job.State(cur), r.State) {
			return fmt.Errorf("from %s to %s: %w", cur, r.State, job.ErrBadTransition)
		}
		_, err = s.exec(ctx, tx, `UPDATE job_runs SET state=?, outputs_json=?, exit_code=?, error=?, started=?, ended=?,
		terminated=?, compute_seconds=?, log_key=?, pid=?, claimer=?, epoch=?, remote=?, instances=? WHERE id=?`,
			string(r.State), out, r.ExitCode, r.Error, FmtTime(r.Started), FmtTime(r.Ended), FmtTime(r.Terminated),
			r.ComputeSeconds, r.LogKey, r.PID, r.Claimer, r.Epoch, r.Remote, r.Instances, r.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("state: update job run %s: %w", r.ID, err)
	}
	return nil
}

const runColumns = `id, rule, grp, state, inputs_json, outputs_json, exit_code, error, created, started, ended, terminated, compute_seconds, log_key, pid, claimer, epoch, remote, instances`

func scanRun(sc interface{ Scan(...any) error }) (job.Run, error) {
	var r job.Run
	var in, out, st string
	var created, started, ended, terminated sql.NullString
	if err := sc.Scan(&r.ID, &r.Rule, &r.Group, &st, &in, &out, &r.ExitCode, &r.Error,
		&created, &started, &ended, &terminated, &r.ComputeSeconds, &r.LogKey, &r.PID, &r.Claimer, &r.Epoch, &r.Remote, &r.Instances); err != nil {
		return r, err
	}
	r.State = job.State(st)
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

// GetRun returns one run, or an error wrapping job.ErrRunNotFound.
func (s *DB) GetRun(ctx context.Context, id string) (job.Run, error) {
	r, err := scanRun(s.queryRow(ctx, s.reads(), `SELECT `+runColumns+` FROM job_runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return job.Run{}, fmt.Errorf("state: get job run %s: %w", id, job.ErrRunNotFound)
	}
	if err != nil {
		return job.Run{}, fmt.Errorf("state: get job run %s: %w", id, err)
	}
	return r, nil
}

// ListRuns returns the runs f selects, newest first.
// CountRuns counts rule's runs by state ("" = all).
func (s *DB) CountRuns(ctx context.Context, rule string) (map[job.State]int, error) {
	q, args := `SELECT state, count(*) FROM job_runs`, []any{}
	if rule != "" {
		q, args = q+` WHERE rule = ?`, append(args, rule)
	}
	rows, err := s.reads().QueryContext(ctx, s.q(q+` GROUP BY state`), args...)
	if err != nil {
		return nil, fmt.Errorf("state: count job runs: %w", err)
	}
	defer rows.Close()
	out := map[job.State]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, fmt.Errorf("state: count job runs: %w", err)
		}
		out[job.State(st)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("state: count job runs: %w", err)
	}
	return out, nil
}

func (s *DB) ListRuns(ctx context.Context, f job.RunFilter) ([]job.Run, error) {
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
			args = append(args, string(st))
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
	rows, err := s.reads().QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("state: list job runs: %w", err)
	}
	defer rows.Close()
	var out []job.Run
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

// RequestRun records durably that an event asks for a run of (rule, grp).
func (s *DB) RequestRun(ctx context.Context, rule, grp string, at time.Time) error {
	_, err := s.exec(ctx, s.DB, `INSERT INTO job_requests(rule, grp, first_at, last_at) VALUES(?, ?, ?, ?)
		ON CONFLICT(rule, grp) DO UPDATE SET last_at = `+s.greatest()+`(job_requests.last_at, excluded.last_at)`,
		rule, grp, FmtTime(at), FmtTime(at))
	if err != nil {
		return fmt.Errorf("state: request run of job %s for group %s: %w", rule, grp, err)
	}
	return nil
}

// PendingRequests returns every pending run request, oldest last_at first.
func (s *DB) PendingRequests(ctx context.Context) ([]job.RunRequest, error) {
	rows, err := s.reads().QueryContext(ctx, `SELECT rule, grp, first_at, last_at, not_before, attempts, first_failure FROM job_requests ORDER BY last_at, rule, grp`)
	if err != nil {
		return nil, fmt.Errorf("state: list pending run requests: %w", err)
	}
	defer rows.Close()
	var out []job.RunRequest
	for rows.Next() {
		var r job.RunRequest
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

// RetryRequest records that a run of (rule, grp) failed transiently.
func (s *DB) RetryRequest(ctx context.Context, rule, grp string, lastAt, notBefore, firstFailure time.Time, attempts int) error {
	_, err := s.exec(ctx, s.DB, `INSERT INTO job_requests(rule, grp, first_at, last_at, not_before, attempts, first_failure) VALUES(?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(rule, grp) DO UPDATE SET not_before = excluded.not_before, attempts = excluded.attempts, first_failure = excluded.first_failure`,
		rule, grp, FmtTime(lastAt), FmtTime(lastAt), FmtTime(notBefore), attempts, FmtTime(firstFailure))
	if err != nil {
		return fmt.Errorf("state: retry run of job %s for group %s: %w", rule, grp, err)
	}
	return nil
}

// ResetRetry forgets the retries of (rule, grp)'s request, if pending.
func (s *DB) ResetRetry(ctx context.Context, rule, grp string) error {
	if _, err := s.exec(ctx, s.DB, `UPDATE job_requests SET not_before = NULL, attempts = 0, first_failure = NULL WHERE rule = ? AND grp = ?`, rule, grp); err != nil {
		return fmt.Errorf("state: reset retries of job %s for group %s: %w", rule, grp, err)
	}
	return nil
}

// ClearRequest deletes the request for (rule, grp) if its last_at is not
// after upTo, and reports whether it did.
func (s *DB) ClearRequest(ctx context.Context, rule, grp string, upTo time.Time) (bool, error) {
	res, err := s.exec(ctx, s.DB, `DELETE FROM job_requests WHERE rule = ? AND grp = ? AND last_at <= ?`,
		rule, grp, FmtTime(upTo))
	if err != nil {
		return false, fmt.Errorf("state: clear run request of job %s for group %s: %w", rule, grp, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("state: clear run request of job %s for group %s: %w", rule, grp, err)
	}
	return n > 0, nil
}
