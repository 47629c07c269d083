package main

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"
)

// result is one row of the table.
type result struct {
	id        string // stable name, e.g. "pg-merge-0"
	figure    string
	sluice    string
	reference string
	ratio     float64 // reference time / sluice time (or rates the other way round); 0: none
	// value is what the goal and floor are checked against: the ratio,
	// or a sluice figure in ms or MiB.
	value float64
	crit  *criterion // nil: no goal
	rows  int64      // rows (or objects) counted in what sluice wrote
}

// criterion is a figure's goal and floor from issue 9.
type criterion struct {
	atLeast     bool // value ≥ goal is good; else value < goal is
	goal, floor float64
	unit        string // "×", " ms", " MiB"
}

func ratioAtLeast(goal, floor float64) *criterion {
	return &criterion{atLeast: true, goal: goal, floor: floor, unit: "×"}
}

func below(goal, floor float64, unit string) *criterion {
	return &criterion{goal: goal, floor: floor, unit: unit}
}

func (c *criterion) text(v float64) string {
	if c.atLeast {
		return fmt.Sprintf("≥ %s%s", trimFloat(v), c.unit)
	}
	return fmt.Sprintf("< %s%s", trimFloat(v), c.unit)
}

func (c *criterion) ok(v, bound float64) bool {
	if c.atLeast {
		return v >= bound
	}
	return v < bound
}

// met says whether the goal holds, only the floor, or neither.
func (r result) met() string {
	switch {
	case r.crit == nil:
		return "—"
	case r.crit.ok(r.value, r.crit.goal):
		return "yes"
	case r.crit.ok(r.value, r.crit.floor):
		return "floor only"
	}
	return "**no**"
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// report is everything one run measured.
type report struct {
	results  []result
	started  time.Time
	took     time.Duration
	machine  string
	versions string
	commit   string
	// mergeRate is sluice's rows/s in the 0 %-conflict PostgreSQL merge,
	// which the seed figure compares against.
	mergeRate float64
}

// Markers around the generated block in docs/BENCHMARKS.md.
const (
	beginMarker = "<!-- bench:begin (written by `go run ./bench -out docs/BENCHMARKS.md`; do not edit by hand) -->"
	endMarker   = "<!-- bench:end -->"
)

// block is the table with what it was measured on and how.
func (rep *report) block(cfg config) string {
	var b strings.Builder
	cmd := "go run ./bench"
	if len(cfg.args) > 0 {
		cmd += " " + strings.Join(cfg.args, " ")
	}
	fmt.Fprintf(&b, "Measured %s, took %s. Machine: %s.  \n", rep.started.Format("2006-01-02 15:04 MST"), rep.took.Round(time.Second), rep.machine)
	fmt.Fprintf(&b, "Command: `%s` (medians of %d run(s)%s).  \n", cmd, cfg.runs, map[bool]string{true: "; -quick: small inputs, not comparable", false: ""}[cfg.quick])
	fmt.Fprintf(&b, "sluice %s; %s.\n\n", rep.commit, rep.versions)
	b.WriteString("| figure | sluice | reference | ratio | goal | floor | met? |\n|---|---|---|---|---|---|---|\n")
	for _, r := range rep.results {
		ratio, goal, floor := "—", "—", "—"
		if r.ratio > 0 {
			ratio = fmt.Sprintf("%.2f×", r.ratio)
		}
		if r.crit != nil {
			goal, floor = r.crit.text(r.crit.goal), r.crit.text(r.crit.floor)
		}
		ref := r.reference
		if ref == "" {
			ref = "—"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", r.figure, r.sluice, ref, ratio, goal, floor, r.met())
	}
	return b.String()
}

// writeDoc replaces what lies between the markers in path with block.
func writeDoc(path, block string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("-out %s: %w", path, err)
	}
	s := string(data)
	i, j := strings.Index(s, beginMarker), strings.Index(s, endMarker)
	if i < 0 || j < i {
		return fmt.Errorf("-out %s: the file has no %q … %q markers to write the table between", path, beginMarker, endMarker)
	}
	s = s[:i+len(beginMarker)] + "\n" + block + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}

// median of durations (the lower middle for an even count).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// percentile by nearest rank: the smallest value with at least p % of the
// values at or below it.
func percentile(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(k, len(s)-1))]
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond)) }

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// count formats n with thousands separators.
func count(n int64) string {
	s := fmt.Sprint(n)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// spread shows the runs behind a median, e.g. "7.1 s (6.9–7.4)".
func spread(ds []time.Duration) string {
	if len(ds) == 1 {
		return secs(ds[0])
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return fmt.Sprintf("%s (%.2f–%.2f)", secs(median(ds)), s[0].Seconds(), s[len(s)-1].Seconds())
}
