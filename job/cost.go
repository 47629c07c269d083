package job

import (
	"sort"
	"time"
)

// Usage is the compute one job's runs used, set against what an always-on
// cluster would have used: the thesis of transient jobs is that compute
// exists only while it works, so nothing idles between arrivals.
//
// ComputeSeconds is the sum of the counted runs' Run.ComputeSeconds, the
// figure `sluice jobs RUN` shows for each. AlwaysOnSeconds is a cluster of
// the largest run's size (Instances) kept up over the whole window: from
// the first counted run's creation (STARTING) to the last one's
// TERMINATED, or over the window the caller gave.
type Usage struct {
	Job string // "" for a total
	// Runs is the number of runs counted: those whose compute is gone
	// (TERMINATED), inside the window. InFlight is the window's runs
	// whose compute is still there, left out of both figures.
	Runs, InFlight int
	// Instances is the always-on cluster's size: the largest Instances
	// among the counted runs (at least 1). For a total it is the sum of
	// the jobs' sizes (one cluster per job).
	Instances int
	// From and To are the always-on window.
	From, To        time.Time
	ComputeSeconds  float64
	AlwaysOnSeconds float64
}

// Percent is ComputeSeconds as a percentage of AlwaysOnSeconds (0 when the
// always-on figure is 0). The saving of transient compute is 100 − Percent.
func (u Usage) Percent() float64 {
	if u.AlwaysOnSeconds <= 0 {
		return 0
	}
	return 100 * u.ComputeSeconds / u.AlwaysOnSeconds
}

// Usages sums runs per job, ordered by job name, and their total. A run
// counts when its compute is gone (Terminated set), it was created at or
// after since and terminated at or before until (a zero since or until is
// open). With since and until both set the always-on window is [since,
// until]; an open end is taken from the runs (the first creation, the
// last termination). A run created inside the window whose compute is not
// gone yet, or outlived until, is counted in InFlight only.
func Usages(runs []Run, since, until time.Time) (jobs []Usage, total Usage) {
	by := map[string]*Usage{}
	for _, r := range runs {
		if !since.IsZero() && r.Created.Before(since) {
			continue
		}
		if !until.IsZero() && !r.Created.Before(until) {
			continue
		}
		u := by[r.Rule]
		if u == nil {
			u = &Usage{Job: r.Rule}
			by[r.Rule] = u
		}
		if r.Terminated.IsZero() {
			u.InFlight++
			continue
		}
		if !until.IsZero() && r.Terminated.After(until) {
			u.InFlight++ // its compute outlived the window
			continue
		}
		u.Runs++
		u.ComputeSeconds += r.ComputeSeconds
		u.Instances = max(u.Instances, r.Instances, 1)
		if u.From.IsZero() || r.Created.Before(u.From) {
			u.From = r.Created
		}
		if r.Terminated.After(u.To) {
			u.To = r.Terminated
		}
	}
	for _, u := range by {
		if !since.IsZero() {
			u.From = since
		}
		if !until.IsZero() {
			u.To = until
		}
		if u.Runs > 0 {
			u.AlwaysOnSeconds = u.To.Sub(u.From).Seconds() * float64(u.Instances)
		}
		jobs = append(jobs, *u)
		total.Runs += u.Runs
		total.InFlight += u.InFlight
		total.Instances += u.Instances
		total.ComputeSeconds += u.ComputeSeconds
		total.AlwaysOnSeconds += u.AlwaysOnSeconds
		if u.Runs > 0 && (total.From.IsZero() || u.From.Before(total.From)) {
			total.From = u.From
		}
		if u.Runs > 0 && u.To.After(total.To) {
			total.To = u.To
		}
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].Job < jobs[j].Job })
	return jobs, total
}
