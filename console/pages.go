package console

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/deadletter"
	"github.com/sluicehq/sluice/job"
	"github.com/sluicehq/sluice/pipeline"
	"github.com/sluicehq/sluice/warehouse"
)

//go:embed templates/*.html templates/style.css
var files embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"when":  when,
	"since": func(t time.Time) string { return ago(time.Since(t)) },
	"dur":   func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"secs":  func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) },
	"pct":   func(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" },
	"lower": strings.ToLower,
	"add":   func(a, b int) int { return a + b },
}).ParseFS(files, "templates/*.html"))

// MaxLog bounds the job log a run page shows (its tail is shown).
const MaxLog = 1 << 20

// MaxListed bounds the dead letters and runs a page lists (the newest);
// the CLI lists them all.
const MaxListed = 500

// maxCostRuns bounds the runs the cost page sums (the newest).
const maxCostRuns = 20000

func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05.000Z")
}

func ago(d time.Duration) string {
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + " s ago"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " min ago"
	default:
		return d.Round(time.Minute).String() + " ago"
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// page is what every template gets.
type page struct {
	Title    string
	Pipeline string
	Role     string
	Admin    bool // the request carries the admin token
	Actions  bool // the console has an admin token at all
	Data     any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	p := page{Title: name, Role: c.cfg.Role, Admin: c.isAdmin(r), Actions: c.cfg.AdminToken != "", Data: data}
	if c.cfg.Spec != nil {
		p.Pipeline = c.cfg.Spec.Name
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, name+".html", p); err != nil {
		c.log.Error("console page failed", "page", name, "err", err)
	}
}

// fail shows an error page with status code.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, code int, err error, hint string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	c.render(w, r, "error", map[string]any{"Code": code, "Status": http.StatusText(code), "Err": err.Error(), "Hint": hint})
}

func (c *Console) style(w http.ResponseWriter, _ *http.Request) {
	b, _ := files.ReadFile("templates/style.css")
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Write(b)
}

// sourceView is one source on the overview.
type sourceView struct {
	Name, URL, Every string
	Last, Next       time.Time
	Status           SourceStatus
}

// SourceStatus is a source's last run, as the engine records it in the
// state (setting "source-status/NAME").
type SourceStatus struct {
	At     time.Time `json:"at"`
	Pages  int       `json:"pages"`
	Bytes  int64     `json:"bytes"`
	Landed int       `json:"landed"`
	// Unchanged pages were not landed (304, or skip_unchanged); Retries
	// counts retried requests.
	Unchanged int    `json:"unchanged"`
	Retries   int    `json:"retries"`
	Err       string `json:"error,omitempty"`
}

// SourceStatusKey is the setting holding source name's SourceStatus.
func SourceStatusKey(name string) string { return "source-status/" + name }

type loadView struct {
	Name, Table, Prefix string
	Summary             warehouse.TableSummary
}

type jobView struct {
	Name, Kind string
	Counts     map[string]int // by run state
	Last       *job.Run
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var errs []string
	var sources []sourceView
	var loads []loadView
	var jobs []jobView
	if sp := c.cfg.Spec; sp != nil {
		for _, s := range sp.Sources {
			v := sourceView{Name: s.Name, URL: shownURL(s.HTTP.URL)}
			if s.Every > 0 {
				v.Every = s.Every.String()
				if last, ok, err := c.cfg.State.Value(ctx, "source-tick/"+s.Name); err == nil && ok {
					if ns, err := strconv.ParseInt(last, 10, 64); err == nil {
						v.Last = time.Unix(0, ns).UTC()
						v.Next = v.Last.Add(s.Every)
					}
				}
			}
			if raw, err := c.cfg.State.Setting(ctx, SourceStatusKey(s.Name)); err == nil && raw != "" {
				_ = json.Unmarshal([]byte(raw), &v.Status)
			}
			sources = append(sources, v)
		}
		sums := map[string]warehouse.TableSummary{}
		if c.cfg.Warehouse != nil && len(sp.Loads) > 0 {
			all, err := c.cfg.Warehouse.LedgerSummary(ctx)
			if err != nil {
				errs = append(errs, err.Error())
			}
			for _, s := range all {
				sums[s.Table] = s
			}
		}
		for _, l := range sp.Loads {
			loads = append(loads, loadView{Name: l.Name, Table: l.Table, Prefix: l.On.Prefix, Summary: sums[l.Table]})
		}
		for _, j := range sp.Jobs {
			v := jobView{Name: j.Name, Kind: jobKind(j), Counts: map[string]int{}}
			counts, err := c.cfg.State.CountRuns(ctx, j.Name)
			if err != nil {
				errs = append(errs, err.Error())
			}
			for st, n := range counts {
				v.Counts[string(st)] = n
			}
			runs, err := c.cfg.State.ListRuns(ctx, job.RunFilter{Rule: j.Name, Limit: 1})
			if err != nil {
				errs = append(errs, err.Error())
			}
			if len(runs) > 0 {
				v.Last = &runs[0]
			}
			jobs = append(jobs, v)
		}
	}
	if c.cfg.Spec == nil && c.cfg.Warehouse != nil {
		// No spec (serve over a demo's data dir): the tables the ledger
		// knows stand for the loads.
		all, err := c.cfg.Warehouse.LedgerSummary(ctx)
		if err != nil {
			errs = append(errs, err.Error())
		}
		for _, s := range all {
			loads = append(loads, loadView{Name: s.Table, Table: s.Table, Summary: s})
		}
	}
	_, dls, err := c.cfg.State.RecentDeadLetters(ctx, 1)
	if err != nil {
		errs = append(errs, err.Error())
	}
	c.render(w, r, "overview", map[string]any{"Sources": sources, "Loads": loads, "Jobs": jobs, "DeadLetters": dls, "Errors": errs})
}

// jobKind names what a job runs, and where.
func jobKind(j pipeline.Job) string {
	kind := "command"
	switch {
	case j.Curate != nil:
		kind = "curate"
	case j.Spark != nil:
		kind = "spark"
	}
	if j.Runner != "" {
		kind += " on " + j.Runner
	}
	return kind
}

// shownURL is a source URL without its query string and credentials.
func shownURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

type objectView struct {
	warehouse.LedgerEntry
	Lag time.Duration // commit time − event time
}

// eventTime reads the event time that leads a ledger version (see the
// engine's objectVersion: 20 decimal digits of nanoseconds).
func eventTime(version string) (time.Time, bool) {
	if len(version) < 20 {
		return time.Time{}, false
	}
	ns, err := strconv.ParseInt(version[:20], 10, 64)
	if err != nil || ns <= 0 {
		return time.Time{}, false
	}
	return time.Unix(0, ns), true
}

func objectViews(l []warehouse.LedgerEntry) []objectView {
	out := make([]objectView, len(l))
	for i, e := range l {
		out[i].LedgerEntry = e
		if at, ok := eventTime(e.Version); ok {
			out[i].Lag = e.LoadedAt.Sub(at)
		}
	}
	return out
}

func (c *Console) load(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if c.cfg.Warehouse == nil {
		c.fail(w, r, http.StatusNotFound, errors.New("no loads here"), "This process has no warehouse.")
		return
	}
	loads := []pipeline.Load{{Name: name, Table: name}} // no spec: a table of the ledger
	if c.cfg.Spec != nil {
		loads = c.cfg.Spec.Loads
	}
	for _, l := range loads {
		if l.Name != name {
			continue
		}
		recent, err := c.cfg.Warehouse.LedgerRecent(r.Context(), warehouse.LedgerFilter{Table: l.Table, Limit: 100})
		if err != nil {
			c.fail(w, r, http.StatusServiceUnavailable, err, "The warehouse did not answer; try again.")
			return
		}
		var sum warehouse.TableSummary
		if all, err := c.cfg.Warehouse.LedgerSummary(r.Context()); err == nil {
			for _, s := range all {
				if s.Table == l.Table {
					sum = s
				}
			}
		}
		c.render(w, r, "load", map[string]any{"Name": l.Name, "Table": l.Table, "Write": string(l.Write), "Prefix": l.On.Prefix,
			"Summary": sum, "Objects": objectViews(recent)})
		return
	}
	c.fail(w, r, http.StatusNotFound, errors.New("no load "+strconv.Quote(name)), "See the overview for this pipeline's loads.")
}

func (c *Console) runs(w http.ResponseWriter, r *http.Request) {
	f := job.RunFilter{Rule: r.URL.Query().Get("job"), Limit: MaxListed}
	runs, err := c.cfg.State.ListRuns(r.Context(), f)
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err, "The state did not answer; try again.")
		return
	}
	c.render(w, r, "runs", map[string]any{"Job": f.Rule, "Runs": runs})
}

// phase is one bar of a run's lifecycle timeline.
type phase struct {
	Name          string
	From, To      time.Time
	Offset, Width float64 // percent of the run's span
}

func timeline(run job.Run) []phase {
	marks := []struct {
		name string
		at   time.Time
	}{{"requested → STARTING", run.Created}, {"RUNNING", run.Started}, {"ended (" + string(run.State) + ")", run.Ended}, {"TERMINATED", run.Terminated}}
	var ps []phase
	for i := 0; i+1 < len(marks); i++ {
		if marks[i].at.IsZero() || marks[i+1].at.IsZero() {
			continue
		}
		ps = append(ps, phase{Name: marks[i].name, From: marks[i].at, To: marks[i+1].at})
	}
	if len(ps) == 0 {
		return nil
	}
	start, span := ps[0].From, ps[len(ps)-1].To.Sub(ps[0].From)
	for i := range ps {
		if span > 0 {
			ps[i].Offset = 100 * float64(ps[i].From.Sub(start)) / float64(span)
			ps[i].Width = max(0.5, 100*float64(ps[i].To.Sub(ps[i].From))/float64(span))
		} else {
			ps[i].Width = 100
		}
	}
	return ps
}

func (c *Console) run(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	run, err := c.cfg.State.GetRun(ctx, r.PathValue("id"))
	if errors.Is(err, job.ErrRunNotFound) {
		c.fail(w, r, http.StatusNotFound, err, "See the runs page for the runs this state holds.")
		return
	}
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err, "The state did not answer; try again.")
		return
	}
	var logText, logErr string
	if run.LogKey != "" && c.cfg.Store != nil {
		logText, logErr = c.readLog(ctx, run.LogKey)
	}
	active := run.State == job.Starting || run.State == job.Running
	c.render(w, r, "run", map[string]any{"Run": run, "Timeline": timeline(run), "Log": logText, "LogErr": logErr, "Active": active})
}

// readLog returns the last MaxLog bytes of a job log.
func (c *Console) readLog(ctx context.Context, key string) (string, string) {
	rc, o, err := c.cfg.Store.Open(ctx, key)
	if err != nil {
		return "", err.Error()
	}
	defer rc.Close()
	if o.Size > MaxLog {
		if _, err := io.CopyN(io.Discard, rc, o.Size-MaxLog); err != nil {
			return "", err.Error()
		}
	}
	b, err := io.ReadAll(io.LimitReader(rc, MaxLog))
	if err != nil {
		return "", err.Error()
	}
	return strings.ToValidUTF8(string(b), "\uFFFD"), ""
}

func (c *Console) deadLetters(w http.ResponseWriter, r *http.Request) {
	dls, total, err := c.cfg.State.RecentDeadLetters(r.Context(), MaxListed)
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err, "The state did not answer; try again.")
		return
	}
	done := ""
	if id, err := strconv.ParseInt(r.URL.Query().Get("replayed"), 10, 64); err == nil {
		done = strconv.FormatInt(id, 10)
	}
	c.render(w, r, "dlq", map[string]any{"DeadLetters": dls, "Total": total, "CanReplay": c.cfg.Replay != nil, "Done": done})
}

func (c *Console) replay(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		c.fail(w, r, http.StatusBadRequest, fmt.Errorf("%q is not a dead letter id", r.PathValue("id")), "A dead letter id is a whole number, as `sluice dlq ls` lists them.")
		return
	}
	if c.cfg.Replay == nil {
		c.fail(w, r, http.StatusConflict, errors.New("no pipeline runs in this process"), "Replay with `sluice dlq replay "+strconv.FormatInt(id, 10)+"`, or from the console of `sluice run`.")
		return
	}
	if err := c.cfg.Replay(r.Context(), id); err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, deadletter.ErrNotFound) {
			code = http.StatusNotFound
		}
		c.fail(w, r, code, err, "")
		return
	}
	c.log.Info("dead letter replayed from the console", "id", id, "remote", r.RemoteAddr)
	http.Redirect(w, r, "/dlq?replayed="+strconv.FormatInt(id, 10), http.StatusSeeOther)
}

func (c *Console) cancel(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	run, err := c.cfg.State.GetRun(ctx, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, http.StatusNotFound, err, "")
		return
	}
	if run.State != job.Starting && run.State != job.Running {
		c.fail(w, r, http.StatusConflict, errors.New("run "+run.ID+" is "+string(run.State)), "Only a STARTING or RUNNING run can be cancelled.")
		return
	}
	if err := c.cfg.State.SetSetting(ctx, job.CancelKey(run.ID), c.now().UTC().Format(time.RFC3339)); err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err, "")
		return
	}
	c.log.Info("job run cancellation requested from the console", "run", run.ID, "remote", r.RemoteAddr)
	http.Redirect(w, r, "/runs/"+url.PathEscape(run.ID), http.StatusSeeOther)
}

// lineageView is what one object version produced.
type lineageView struct {
	Key     string
	Rows    []warehouse.LedgerEntry // loads of it, per table
	Runs    []job.Run               // job runs that read it
	Outputs []lineageView           // what those runs' outputs produced in turn
}

// maxLineageRuns bounds the runs a lineage lookup reads.
const maxLineageRuns = 2000

func (c *Console) lineage(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("key")
	data := map[string]any{"Key": key}
	if key != "" {
		ctx := r.Context()
		runs, err := c.cfg.State.ListRuns(ctx, job.RunFilter{Limit: maxLineageRuns})
		if err != nil {
			c.fail(w, r, http.StatusServiceUnavailable, err, "")
			return
		}
		v, err := c.trace(ctx, key, runs, 3)
		if err != nil {
			c.fail(w, r, http.StatusServiceUnavailable, err, "")
			return
		}
		data["Lineage"] = v
	}
	if c.cfg.Warehouse != nil {
		if recent, err := c.cfg.Warehouse.LedgerRecent(r.Context(), warehouse.LedgerFilter{Limit: 20}); err == nil {
			data["Recent"] = recent
		}
	}
	c.render(w, r, "lineage", data)
}

// trace follows key through the ledger and the runs that read it, depth
// levels deep (a curated output loaded into a table is level 2).
func (c *Console) trace(ctx context.Context, key string, runs []job.Run, depth int) (lineageView, error) {
	v := lineageView{Key: key}
	if c.cfg.Warehouse != nil {
		l, err := c.cfg.Warehouse.LedgerRecent(ctx, warehouse.LedgerFilter{Key: key, Limit: 100})
		if err != nil {
			return v, err
		}
		v.Rows = l
	}
	for _, run := range runs {
		for _, in := range run.Inputs {
			if in.Key == key {
				v.Runs = append(v.Runs, run)
				break
			}
		}
	}
	if depth > 1 {
		for _, run := range v.Runs {
			if run.State != job.Succeeded {
				continue
			}
			for _, out := range run.Outputs {
				o, err := c.trace(ctx, out, runs, depth-1)
				if err != nil {
					return v, err
				}
				v.Outputs = append(v.Outputs, o)
			}
		}
	}
	return v, nil
}

func (c *Console) cost(w http.ResponseWriter, r *http.Request) {
	runs, err := c.cfg.State.ListRuns(r.Context(), job.RunFilter{Limit: maxCostRuns})
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, err, "")
		return
	}
	jobs, total := job.Usages(runs, time.Time{}, time.Time{})
	c.render(w, r, "cost", map[string]any{"Jobs": jobs, "Total": total, "Capped": len(runs) == maxCostRuns, "Max": maxCostRuns})
}
