package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sluicehq/sluice/curate"
	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/store"
	"github.com/sluicehq/sluice/trigger"
)

// remoteJob wraps a job's remote runner with what sluice does around any
// remote run: before a spark run it writes the run's input manifest and
// appends sluice's arguments; after a run that succeeded it lists what
// the job committed under its output folder as the run's outputs (their
// events are emitted when the run is recorded, once). A spark run that
// succeeded without a _SUCCESS under its output did not commit: it fails.
type remoteJob struct {
	job.Remote
	e *Engine
	j pipeline.Job
}

// manifestKey is where the input manifest of run id is kept: under
// LogPrefix, so it raises no events.
func manifestKey(runID string) string { return LogPrefix + runID + ".inputs.jsonl" }

// s3URI returns key's s3:// URI in the store's bucket (a URI stays as is).
func (e *Engine) s3URI(key string) string {
	if strings.HasPrefix(key, "s3://") {
		return key
	}
	return "s3://" + e.Store.Bucket() + "/" + strings.TrimPrefix(key, "/")
}

// manifestLine is one input of a spark run's manifest.
type manifestLine struct {
	Key  string `json:"key"`
	ETag string `json:"etag"`
	URI  string `json:"uri"`
}

func (r *remoteJob) Run(ctx context.Context, t job.Task) (job.Outcome, error) {
	out, err := trigger.Expand(r.j.Output, t.Group)
	if r.j.Output != "" && err != nil {
		return job.Outcome{}, fault.Permanent(fmt.Errorf("job %s: output of group %s: %w", r.j.Name, t.Group, err))
	}
	if t.Kind == job.KindSpark && t.Spark != nil {
		if t.Remote == "" {
			if err := r.firstSubmission(ctx, t, out); err != nil {
				return job.Outcome{}, err
			}
			// Written before every submission attempt (the same bytes for
			// the same run), so an adopted or retried submission finds it.
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			for _, in := range t.Inputs {
				if err := enc.Encode(manifestLine{Key: in.Key, ETag: in.ETag, URI: r.e.s3URI(in.Key)}); err != nil {
					return job.Outcome{}, err
				}
			}
			if _, err := r.e.Store.Put(ctx, manifestKey(t.RunID), b.Bytes(), "application/x-ndjson"); err != nil {
				return job.Outcome{}, fmt.Errorf("job %s run %s: write the input manifest: %w", r.j.Name, t.RunID, err)
			}
		}
		sp := *t.Spark
		sp.Args = append(slices.Clone(sp.Args), "--run-id", t.RunID, "--group", t.Group,
			"--inputs", r.e.s3URI(manifestKey(t.RunID)), "--output", r.e.s3URI(out))
		t.Spark = &sp
	}
	o, err := r.Remote.Run(ctx, t)
	if err != nil || o.Err != "" || o.ExitCode != 0 || out == "" {
		return o, err
	}
	keys, err := r.committed(context.WithoutCancel(ctx), out) // the compute is gone: record what it did, even while stopping
	if err != nil {
		// The compute is gone and its output committed; only the listing
		// failed. Failing transiently runs the job again, which the
		// output's overwrite makes safe.
		return o, fmt.Errorf("job %s run %s: list the outputs under %s: %w", r.j.Name, t.RunID, out, err)
	}
	if t.Kind == job.KindSpark && !slices.Contains(keys, out+"_SUCCESS") {
		o.ExitCode = 1
		o.Err = fmt.Sprintf("the Spark application succeeded but left no _SUCCESS under %s: it did not commit its output (write it the Spark way, e.g. df.write.mode(\"overwrite\").parquet(output))", r.e.s3URI(out))
		return o, nil
	}
	o.Outputs = keys
	return o, nil
}

// firstSubmission prepares the first submission of spark run t (no input
// manifest yet): it deletes the _SUCCESS an earlier run left under the
// output, so that only this run's commit can make the run succeed. A
// later submission of the same run (a retry, an adoption before the
// compute was recorded) leaves the output alone: the compute may have
// committed already.
func (r *remoteJob) firstSubmission(ctx context.Context, t job.Task, out string) error {
	if _, err := r.e.Store.Stat(ctx, manifestKey(t.RunID)); !errors.Is(err, store.ErrNotFound) {
		return err // nil: submitted before
	}
	if err := r.e.Store.Delete(ctx, out+"_SUCCESS"); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("job %s run %s: remove the earlier run's %s_SUCCESS: %w", r.j.Name, t.RunID, out, err)
	}
	return nil
}

// committed lists the objects under prefix that are outputs (not staging).
func (r *remoteJob) committed(ctx context.Context, prefix string) ([]string, error) {
	objs, err := r.e.Store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, o := range objs {
		if !curate.IsStaging(strings.TrimPrefix(o.Key, prefix)) {
			keys = append(keys, o.Key)
		}
	}
	return keys, nil
}

// sparkTask is the task of a spark job for group: the application with its
// own arguments (remoteJob adds sluice's at run time).
func (e *Engine) sparkTask(j pipeline.Job, t job.Task) job.Task {
	s := j.Spark
	t.Kind = job.KindSpark
	t.Spark = &job.Spark{EntryPoint: e.s3URI(s.EntryPoint), Class: s.Class, Args: slices.Clone(s.Args), Conf: s.Conf}
	return t
}

// checkRemote refuses a remote runner whose compute could not reach the
// store or the state: a local store is on this machine's disk, and a
// Kubernetes pod checks its run's claim in the state before it commits.
func (e *Engine) checkRemote(j pipeline.Job) error {
	if j.Runner == pipeline.RunnerLocal {
		return nil
	}
	if e.Store.LocalDir() != "" {
		return fault.Permanent(fmt.Errorf("job %s: runner %s needs a store its compute can reach, and %s is a local folder: set store: s3://bucket (or SLUICE_STORE)", j.Name, j.Runner, e.Store.URL()))
	}
	if j.Runner == pipeline.RunnerKubernetes && !strings.HasPrefix(e.stateURL(), "postgres") {
		return fault.Permanent(fmt.Errorf("job %s: runner kubernetes needs a state the pod can reach to check its claim before it commits: set state: postgres://… (or SLUICE_STATE)", j.Name))
	}
	return nil
}
