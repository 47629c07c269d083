package pipeline

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// MinRetention is the shortest retention a source may ask for.
const MinRetention = time.Hour

// maxRetentionDays bounds a retention written in days (about 270 years;
// time.Duration holds 292).
const maxRetentionDays = 100000

// parseRetention reads a retention: a Go duration (36h, 90m), a number of
// days (30d), or days followed by a duration (1d12h). It must be at least
// MinRetention. On failure it returns a message saying what to write.
func parseRetention(s string) (time.Duration, string) {
	t := strings.TrimSpace(s)
	want := fmt.Sprintf("%q is not a retention: write a number of days like 30d, or a duration like 36h (at least %s)", s, MinRetention)
	var d time.Duration
	if days, rest, ok := strings.Cut(t, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || strings.HasPrefix(days, "+") {
			return 0, want
		}
		if n > maxRetentionDays {
			return 0, fmt.Sprintf("%q is too long: write at most %dd", s, maxRetentionDays)
		}
		d = time.Duration(n) * 24 * time.Hour
		if rest != "" {
			r, err := time.ParseDuration(rest)
			if err != nil || r < 0 {
				return 0, want
			}
			d += r
		}
	} else {
		var err error
		if d, err = time.ParseDuration(t); err != nil {
			return 0, want
		}
	}
	if d < MinRetention {
		return 0, fmt.Sprintf("%q is too short: write at least %s (retention deletes raw data), or remove retention to keep everything", s, MinRetention)
	}
	return d, ""
}

// checkRetention refuses a retention that could delete what is not the
// source's: its land folder must be fixed (not the whole store), must not
// hold or lie in another source's land folder, and must not hold or lie in
// a job's output folder.
func (p *parser) checkRetention(sources []Source, jobs []Job) {
	for _, s := range sources {
		n := p.retention[s.Name]
		if n == nil || s.Retention <= 0 {
			continue
		}
		path := "sources." + s.Name + ".retention"
		prefix := s.LandPrefix()
		if prefix == "" {
			p.errorf(n, path, "retention deletes the old objects under the source's land folder, but its land template has no fixed folder (its keys vary from the first one on): start land with a folder of its own, like raw/{{.Source}}/")
			continue
		}
		overlaps := func(other string) bool {
			return strings.HasPrefix(other, prefix) || strings.HasPrefix(prefix, other)
		}
		for _, o := range sources {
			if o.Name == s.Name {
				continue
			}
			if op := o.LandPrefix(); overlaps(op) {
				p.errorf(n, path, "retention would delete objects of source %s too: its land folder %q and this source's %q overlap; give each source a land folder of its own, like raw/{{.Source}}/", o.Name, op, prefix)
			}
		}
		for _, j := range jobs {
			if j.Output == "" {
				continue
			}
			out, _, _ := strings.Cut(j.Output, "{{")
			if overlaps(out) {
				p.errorf(n, path, "retention would delete the outputs of job %s too: its output %q and this source's land folder %q overlap; write the job's output elsewhere", j.Name, j.Output, prefix)
			}
		}
	}
}
