package job_test

import (
	"testing"
	"time"

	"github.com/sluicehq/sluice/job"
)

func TestUsagesSetTransientComputeAgainstAnAlwaysOnClusterOfTheSameSize(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	at := func(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }
	runs := []job.Run{
		// hydropower on EMR: three 3-instance clusters of 10 minutes over a day.
		{ID: "h1", Rule: "hydropower", Created: at(0), Terminated: at(1.0 / 6), ComputeSeconds: 600 * 3, Instances: 3},
		{ID: "h2", Rule: "hydropower", Created: at(12), Terminated: at(12 + 1.0/6), ComputeSeconds: 600 * 3, Instances: 3},
		{ID: "h3", Rule: "hydropower", Created: at(23 + 5.0/6), Terminated: at(24), ComputeSeconds: 600 * 3, Instances: 3},
		// a local job: one process, two runs an hour apart, 30 s each;
		// a third still running is left out.
		{ID: "l1", Rule: "local", Created: at(1), Terminated: at(1).Add(30 * time.Second), ComputeSeconds: 30},
		{ID: "l2", Rule: "local", Created: at(2), Terminated: at(2).Add(30 * time.Second), ComputeSeconds: 30, Instances: 1},
		{ID: "l3", Rule: "local", Created: at(2.5), ComputeSeconds: 0},
	}
	jobs, total := job.Usages(runs, time.Time{}, time.Time{})
	if len(jobs) != 2 || jobs[0].Job != "hydropower" || jobs[1].Job != "local" {
		t.Fatalf("jobs = %+v", jobs)
	}
	h, l := jobs[0], jobs[1]
	if h.Runs != 3 || h.InFlight != 0 || h.Instances != 3 || h.ComputeSeconds != 5400 || h.AlwaysOnSeconds != 24*3600*3 ||
		!h.From.Equal(at(0)) || !h.To.Equal(at(24)) {
		t.Errorf("hydropower = %+v; want 3 runs, 5400 s against 24 h × 3 instances", h)
	}
	if got, want := h.Percent(), 100*5400.0/(24*3600*3); got != want {
		t.Errorf("hydropower percent = %v, want %v", got, want)
	}
	// A run recorded before sluice kept Instances (0) counts as one machine.
	if l.Runs != 2 || l.InFlight != 1 || l.Instances != 1 || l.ComputeSeconds != 60 || l.AlwaysOnSeconds != 3630 {
		t.Errorf("local = %+v; want 2 runs (1 in flight), 60 s against 3630 s × 1", l)
	}
	if total.Runs != 5 || total.InFlight != 1 || total.Instances != 4 || total.ComputeSeconds != 5460 || total.AlwaysOnSeconds != 24*3600*3+3630 ||
		!total.From.Equal(at(0)) || !total.To.Equal(at(24)) {
		t.Errorf("total = %+v", total)
	}

	// A window: only runs created and terminated inside it count, and the
	// always-on cluster runs over the whole window.
	jobs, total = job.Usages(runs, at(11), at(23+5.0/6+0.01))
	if len(jobs) != 1 || jobs[0].Job != "hydropower" {
		t.Fatalf("window jobs = %+v", jobs)
	}
	h = jobs[0]
	if h.Runs != 1 || h.InFlight != 1 || h.ComputeSeconds != 1800 || !h.From.Equal(at(11)) || !h.To.Equal(at(23+5.0/6+0.01)) ||
		h.AlwaysOnSeconds != at(23+5.0/6+0.01).Sub(at(11)).Seconds()*3 {
		t.Errorf("window hydropower = %+v; want h2 counted, h3 in flight past --until", h)
	}
	if total.ComputeSeconds != 1800 || total.AlwaysOnSeconds != h.AlwaysOnSeconds {
		t.Errorf("window total = %+v", total)
	}

	if jobs, total := job.Usages(nil, time.Time{}, time.Time{}); len(jobs) != 0 || total.Percent() != 0 {
		t.Errorf("no runs: %+v %+v", jobs, total)
	}
}
