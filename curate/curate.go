package curate

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sluicehq/sluice/schema"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/format"
)

// Object is one object in a Store.
type Object struct {
	Key  string
	Size int64
	ETag string
}

// Store is the part of sluice's object store that curate needs; the caller
// adapts its store to it.
type Store interface {
	// List returns every object whose key starts with prefix, recursively,
	// sorted by key.
	List(ctx context.Context, prefix string) ([]Object, error)
	// Open opens an object for reading.
	Open(ctx context.Context, key string) (io.ReadCloser, error)
	// Write stores r as key; readers never see a partial object.
	Write(ctx context.Context, key string, r io.Reader, contentType string) error
	// Delete removes an object.
	Delete(ctx context.Context, key string) error
	// LocalDir is the absolute root directory of a local file store, in which
	// key k is the file LocalDir()/k; "" for S3 and memory stores.
	LocalDir() string
}

// Column is one output column: its name after Spec.Rename and its type.
type Column = schema.Column

// Spec says what one curate run reads and writes.
type Spec struct {
	// Input is a key prefix such as "data/2020-08-07_2PM/"; every object
	// under it (recursively) whose key ends in ".csv", case-insensitively, is
	// read, in key order. Keys with a path segment starting with "." or "_"
	// (staging files, _SUCCESS, Hadoop's hidden files) are ignored.
	Input string
	// Output is a key prefix such as "curated/2020-08-07_2PM/"; a trailing
	// "/" is added if missing. It must not overlap Input.
	Output string
	// Rename maps a CSV header to its output column name. Headers not in the
	// map keep their name.
	Rename map[string]string
	// Columns are the output columns, in order. Every header column of every
	// input file must be declared (after renaming), and every declared
	// column must be present in every file's header.
	Columns []Column
	// Filter is an optional row filter such as `Year >= 2000 and Code !=
	// null`; see Filter for the language.
	Filter string
	// Mode is "overwrite" (the default; replaces everything under Output) or
	// "error-if-exists" (fails before writing if any object exists under
	// Output).
	Mode string
	// MaxRowsPerFile bounds the rows of one part file; default 1_000_000.
	MaxRowsPerFile int
	// Delimiter is the CSV field delimiter; default ','.
	Delimiter rune
	// Limits bound each input object while it is read (decompressed
	// bytes, bytes per row and per field, rows); the zero value means
	// format's defaults. An input over a limit fails the run before its
	// oversized row reaches the Parquet writer, naming the object, the
	// line and the spec key to raise (limits.max_field_bytes, …).
	Limits format.Limits
}

// Modes of Spec.Mode.
const (
	ModeOverwrite     = "overwrite"
	ModeErrorIfExists = "error-if-exists"
)

// maxRecordBytes is the largest Spec.Limits.MaxRecordBytes curate takes.
const maxRecordBytes = 1 << 30

// DefaultMaxRowsPerFile is used when Spec.MaxRowsPerFile is 0.
const DefaultMaxRowsPerFile = 1_000_000

// Result describes a committed run.
type Result struct {
	Inputs  []Object // the CSV objects read, in order
	Outputs []Object // the part files in order, then _SUCCESS, as listed after commit
	Rows    int64    // rows written (after the filter)
	Files   int      // part files written
}

// Options are optional settings of Run; nil means all defaults.
type Options struct {
	// Clock returns the time (for logged durations); default time.Now.
	Clock func() time.Time
	// UUID returns the run's uuid used in part names. It must be non-empty
	// and contain no "/". The default is RunID of the spec and the listed
	// inputs, so a rerun over the same input versions writes the same keys
	// with the same bytes (see RunID).
	UUID func() string
	// Logf logs progress; default discards.
	Logf func(format string, args ...any)
	// AfterPart, if set, is called after part n (0-based) is completely
	// written to staging and before anything is committed. It is a failpoint
	// for tests: it may cancel the run's ctx or panic to emulate a crash.
	AfterPart func(n int)
	// BeforeCommit, if set, is called once every part is staged, right
	// before the commit; an error aborts the run with nothing committed
	// (the job runner checks here that its run's claim still holds). On
	// stores without rename it is called again before each destructive
	// step of the commit (deleting the previous parts, writing _SUCCESS),
	// so a writer that lost its claim while uploading stops before it
	// removes another run's output or marks a mix complete.
	BeforeCommit func(ctx context.Context) error
	// TempDir is where parts are staged for stores without LocalDir
	// (S3, memory); default os.TempDir(). Local stores stage beside the
	// output so the commit is a rename.
	TempDir string
}

func (o *Options) withDefaults() Options {
	var r Options
	if o != nil {
		r = *o
	}
	if r.Clock == nil {
		r.Clock = time.Now
	}
	if r.Logf == nil {
		r.Logf = func(string, ...any) {}
	}
	if r.TempDir == "" {
		r.TempDir = os.TempDir()
	}
	return r
}

// outputVersion names how this code encodes its output; change it whenever
// the same spec and inputs would encode to different bytes, so that RunID
// names the new encoding's parts differently.
const outputVersion = "sluice-curate-1"

// runIDSpace is the namespace of RunID's name-based uuids.
var runIDSpace = uuid.MustParse("6f1c2b8e-5a1d-4c1e-9b7a-3d0e8f5a2c41")

// RunID is the default uuid of a run's part names: a name-based (version 5)
// uuid of the normalized spec and the input versions (key, size, ETag) it
// lists. Output bytes are a function of those, so a rerun over unchanged
// inputs — a retry after a crash between the commit and its record, or a
// second trigger of a group nothing new arrived in — writes the same keys
// with the same bytes and the same ETags: a load of the output prefix sees
// object versions it already committed, and its ledger skips them. A run
// over changed inputs gets new names.
func RunID(spec Spec, inputs []Object) string {
	h := sha256.New()
	specJSON, err := json.Marshal(spec) // map keys sorted: deterministic
	if err != nil {
		panic(fmt.Sprintf("curate: RunID: encode spec: %v", err)) // only plain fields: cannot fail
	}
	fmt.Fprintf(h, "%s\n%s\n", outputVersion, specJSON)
	for _, in := range inputs {
		fmt.Fprintf(h, "%q %d %q\n", in.Key, in.Size, in.ETag)
	}
	return uuid.NewSHA1(runIDSpace, h.Sum(nil)).String()
}

// ErrOutputExists is returned (wrapped) by Run in error-if-exists mode when
// the output prefix already holds objects.
var ErrOutputExists = errors.New("output already exists")

// ErrNoInput is returned (wrapped) by Run when no CSV object exists under the
// input prefix.
var ErrNoInput = errors.New("no input")

const successName = "_SUCCESS"

// ParquetContentType is the media type of the part files.
const ParquetContentType = "application/vnd.apache.parquet"

// Run curates spec.Input into spec.Output and commits atomically (see the
// package doc). It first calls Recover on the output. When Run returns nil
// the output is durable (files and directories are fsynced on a local store),
// so the caller may ack the triggering events. On any error the output is
// left as it was before the run, except for an S3 commit that fails after it
// started (then _SUCCESS is absent). Cancelling ctx stops the run.
func Run(ctx context.Context, st Store, spec Spec, opts *Options) (res Result, err error) {
	o := opts.withDefaults()
	start := o.Clock()
	spec, err = spec.normalize()
	if err != nil {
		return Result{}, fault.Permanent(err) // the spec is wrong: no retry helps
	}
	filter, err := ParseFilter(spec.Filter, spec.Columns)
	if err != nil {
		return Result{}, fault.Permanent(fmt.Errorf("curate: spec for %q: %w", spec.Output, err))
	}
	if err := Recover(ctx, st, spec.Output); err != nil {
		return Result{}, err
	}

	inputs, err := listInputs(ctx, st, spec.Input)
	if err != nil {
		return Result{}, err
	}
	var id string
	if o.UUID != nil {
		id = o.UUID()
	} else {
		id = RunID(spec, inputs)
	}
	if id == "" || strings.ContainsAny(id, `/\`) || strings.HasPrefix(id, ".") {
		return Result{}, fmt.Errorf("curate: invalid run uuid %q from Options.UUID", id)
	}
	existing, err := st.List(ctx, spec.Output)
	if err != nil {
		return Result{}, fmt.Errorf("curate: list output %q: %w", spec.Output, err)
	}
	existing = visible(existing)
	if spec.Mode == ModeErrorIfExists && len(existing) > 0 {
		return Result{}, fmt.Errorf("curate: output %q holds %d objects (first %q): %w; delete it or use mode %q",
			spec.Output, len(existing), existing[0].Key, ErrOutputExists, ModeOverwrite)
	}

	// Stage.
	local := st.LocalDir()
	var stageDir string
	if local != "" {
		parent, base := splitOutput(local, spec.Output)
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return Result{}, fmt.Errorf("curate: create parent of output %q: %w", spec.Output, err)
		}
		stageDir = path.Join(parent, stagingName(base, id))
		if err := os.Mkdir(stageDir, 0o755); err != nil {
			return Result{}, fmt.Errorf("curate: create staging dir for output %q: %w", spec.Output, err)
		}
	} else {
		stageDir, err = os.MkdirTemp(o.TempDir, "sluice-curate-"+id+"-")
		if err != nil {
			return Result{}, fmt.Errorf("curate: create local staging dir for output %q in %q: %w (set Options.TempDir)", spec.Output, o.TempDir, err)
		}
	}
	// On an error return, remove the staging dir. A panic (an emulated
	// crash) skips this on purpose: err is still nil while panicking, so the
	// leftovers stay for Recover, as after kill -9.
	committed := false
	defer func() {
		if err != nil && !committed {
			if rmErr := os.RemoveAll(stageDir); rmErr != nil {
				o.Logf("curate: remove staging dir %s: %v", stageDir, rmErr)
			}
		}
	}()

	sch, err := parquetSchema(spec.Columns)
	if err != nil {
		return Result{}, err
	}
	pl := startPipeline(ctx, st, spec, filter, inputs, sch, stageDir, id)
	// Stopped on every return, and while a panic (an emulated crash in
	// AfterPart) unwinds, so that no stage outlives Run.
	defer pl.stop()
	names, rows, err := pl.commit(o.Logf, o.AfterPart)
	pl.stop()
	if err != nil {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("curate: %q cancelled before commit: %w", spec.Output, err)
	}

	if o.BeforeCommit != nil {
		if err := o.BeforeCommit(ctx); err != nil {
			return Result{}, fmt.Errorf("curate: %q not committed: %w", spec.Output, err)
		}
	}

	// Commit.
	if local != "" {
		if err := writeFileSync(path.Join(stageDir, successName), nil); err != nil {
			return Result{}, fmt.Errorf("curate: stage _SUCCESS for %q: %w", spec.Output, err)
		}
		if err := syncDir(stageDir); err != nil {
			return Result{}, fmt.Errorf("curate: sync staging dir for %q: %w", spec.Output, err)
		}
		committed = true // from here on the staging dir is the commit's business
		if err := commitLocal(local, spec.Output, id); err != nil {
			return Result{}, err
		}
	} else {
		if err := commitRemote(ctx, st, spec.Output, stageDir, names, o.BeforeCommit); err != nil {
			return Result{}, err
		}
		committed = true
		if rmErr := os.RemoveAll(stageDir); rmErr != nil {
			o.Logf("curate: remove staging dir %s: %v", stageDir, rmErr)
		}
	}

	outs, err := st.List(ctx, spec.Output)
	if err != nil {
		return Result{}, fmt.Errorf("curate: committed %q but could not list it: %w", spec.Output, err)
	}
	byKey := map[string]Object{}
	for _, ob := range outs {
		byKey[ob.Key] = ob
	}
	for _, name := range append(slices.Clone(names), successName) {
		ob, ok := byKey[spec.Output+name]
		if !ok {
			return Result{}, fmt.Errorf("curate: committed %q but %q is not listed by the store", spec.Output, spec.Output+name)
		}
		res.Outputs = append(res.Outputs, ob)
	}
	res.Inputs, res.Rows, res.Files = inputs, rows, len(names)
	o.Logf("curate: committed %s: %d rows in %d parts from %d inputs in %s",
		spec.Output, res.Rows, res.Files, len(inputs), o.Clock().Sub(start))
	return res, nil
}

func (s Spec) normalize() (Spec, error) {
	if s.Output != "" && !strings.HasSuffix(s.Output, "/") {
		s.Output += "/"
	}
	if err := checkPrefix("output", s.Output); err != nil {
		return s, err
	}
	if err := checkPrefix("input", s.Input); err != nil {
		return s, err
	}
	if strings.HasPrefix(s.Output, s.Input) || strings.HasPrefix(s.Input, s.Output) {
		return s, fmt.Errorf("curate: input %q and output %q overlap; write the output elsewhere", s.Input, s.Output)
	}
	switch s.Mode {
	case "":
		s.Mode = ModeOverwrite
	case ModeOverwrite, ModeErrorIfExists:
	default:
		return s, fmt.Errorf("curate: unknown mode %q for output %q (use %q or %q)", s.Mode, s.Output, ModeOverwrite, ModeErrorIfExists)
	}
	if s.MaxRowsPerFile == 0 {
		s.MaxRowsPerFile = DefaultMaxRowsPerFile
	}
	if s.MaxRowsPerFile < 0 {
		return s, fmt.Errorf("curate: MaxRowsPerFile %d for output %q is negative", s.MaxRowsPerFile, s.Output)
	}
	if s.Delimiter == 0 {
		s.Delimiter = ','
	}
	if err := s.Limits.Validate(); err != nil {
		return s, fmt.Errorf("curate: spec for output %q: %w", s.Output, err)
	}
	// Values are held in vectors with 32-bit offsets (schema.Vector), a
	// chunk of records at a time; parquet-go caps a dictionary at 1 GiB.
	if s.Limits.MaxRecordBytes > maxRecordBytes {
		return s, fmt.Errorf("curate: spec for output %q: %s is %d; curate reads records of at most %d bytes (1 GiB)",
			s.Output, format.KeyMaxRecordBytes, s.Limits.MaxRecordBytes, int64(maxRecordBytes))
	}
	if len(s.Columns) == 0 {
		return s, fmt.Errorf("curate: no columns declared for output %q", s.Output)
	}
	seen := map[string]bool{}
	s.Columns = slices.Clone(s.Columns) // normalised below: aliases become canonical types
	for i, c := range s.Columns {
		if c.Name == "" {
			return s, fmt.Errorf("curate: an output column of %q has an empty name", s.Output)
		}
		if seen[c.Name] {
			return s, fmt.Errorf("curate: column %q declared twice for output %q", c.Name, s.Output)
		}
		seen[c.Name] = true
		t, err := schema.Parse(string(c.Type))
		if err != nil {
			return s, fmt.Errorf("curate: column %q of output %q: %w", c.Name, s.Output, err)
		}
		s.Columns[i].Type = t
	}
	return s, nil
}

// checkPrefix rejects prefixes that could make a commit touch more than the
// intended directory.
func checkPrefix(what, p string) error {
	if p == "" || p == "/" {
		return fmt.Errorf("curate: %s prefix is empty; name a folder such as \"data/2020-08-07_2PM/\"", what)
	}
	if strings.HasPrefix(p, "/") || strings.Contains(p, `\`) {
		return fmt.Errorf("curate: %s prefix %q must be a relative key prefix with \"/\" separators", what, p)
	}
	for _, seg := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("curate: %s prefix %q has an empty, \".\" or \"..\" segment", what, p)
		}
		if what == "output" && (strings.HasPrefix(seg, ".") || strings.HasPrefix(seg, "_")) {
			return fmt.Errorf("curate: output prefix %q has a hidden segment %q (starting with \".\" or \"_\"); readers would ignore it", p, seg)
		}
	}
	return nil
}

// Hidden reports whether key has a path segment that Spark and Hadoop treat
// as hidden: it starts with "." or "_". Jobs never take such keys as inputs.
func Hidden(key string) bool {
	for _, seg := range strings.Split(key, "/") {
		if strings.HasPrefix(seg, ".") || strings.HasPrefix(seg, "_") {
			return true
		}
	}
	return false
}

// IsInput reports whether key, listed under the input prefix, is an input
// curate reads: a .csv object without a hidden segment below the prefix.
// The engine records exactly these as a run's inputs.
func IsInput(prefix, key string) bool {
	return strings.HasPrefix(key, prefix) && strings.HasSuffix(strings.ToLower(key), ".csv") && !Hidden(strings.TrimPrefix(key, prefix))
}

// IsStaging reports whether key lies in a committer's staging area (a path
// segment starting with "." or "_temporary"): such keys are never outputs
// and raise no events. _SUCCESS is an output.
func IsStaging(key string) bool {
	for _, seg := range strings.Split(key, "/") {
		if strings.HasPrefix(seg, ".") || strings.HasPrefix(seg, "_temporary") {
			return true
		}
	}
	return false
}

// visible drops staging leftovers a store might list.
func visible(objs []Object) []Object {
	var out []Object
	for _, ob := range objs {
		if !IsStaging(ob.Key) {
			out = append(out, ob)
		}
	}
	return out
}

func listInputs(ctx context.Context, st Store, prefix string) ([]Object, error) {
	objs, err := st.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("curate: list input %q: %w", prefix, err)
	}
	var in []Object
	for _, ob := range objs {
		if IsInput(prefix, ob.Key) {
			in = append(in, ob)
		}
	}
	if len(in) == 0 {
		return nil, fmt.Errorf("%w: no .csv objects under %q in the store — upload the files first", ErrNoInput, prefix)
	}
	sort.Slice(in, func(i, j int) bool { return in[i].Key < in[j].Key })
	return in, nil
}

// mapHeader checks a file's header (in file order) against the declared
// columns and returns, for each output column, the index of the header
// column it comes from.
func mapHeader(spec Spec, headers []string) ([]int, error) {
	declared := map[string]int{}
	for i, c := range spec.Columns {
		declared[c.Name] = i
	}
	sources := make([]int, len(spec.Columns))
	found := make([]bool, len(spec.Columns))
	for j, h := range headers {
		name := h
		if r, ok := spec.Rename[h]; ok {
			name = r
		}
		i, ok := declared[name]
		if !ok {
			msg := fmt.Sprintf("header column %q", h)
			if name != h {
				msg += fmt.Sprintf(" (renamed to %q)", name)
			}
			return nil, &format.RecordError{Line: 1, Err: fmt.Errorf("%s is not a declared column; declare it in columns or rename it", msg)}
		}
		if found[i] {
			return nil, &format.RecordError{Line: 1, Err: fmt.Errorf("header columns %q and %q both map to column %q", headers[sources[i]], h, name)}
		}
		sources[i], found[i] = j, true
	}
	for i, c := range spec.Columns {
		if !found[i] {
			return nil, &format.RecordError{Line: 1, Err: fmt.Errorf("declared column %q is missing from the header (%s)", c.Name, strings.Join(headers, ", "))}
		}
	}
	return sources, nil
}
