// Package progress reports how far long work has got (done of total
// items) on a writer, usually stderr.
//
// On a terminal it keeps one line, redrawn in place (a carriage return and
// an erase to the end of the line) at most ten times a second: a bar,
// done/total, the percentage, the rate and the time left. Anywhere else (a
// pipe, a file, a CI log) it writes plain lines, one whenever another 10%
// is done or 5 s have passed since the last, so a log gets a few lines,
// not one per item. Both always show the last update (done == total).
//
// A Reporter is for one goroutine: Update and End are not safe for
// concurrent use.
package progress

import (
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/term"
)

// Options tunes New; nil means defaults.
type Options struct {
	// Clock is the time source (default time.Now); tests set it.
	Clock func() time.Time
}

const (
	redraw    = 100 * time.Millisecond // terminal: at most ten redraws a second
	lineEvery = 5 * time.Second        // elsewhere: a line at least this often…
	stepPct   = 10                     // …or every 10%
	barWidth  = 20
)

// Reporter reports one piece of work's progress.
type Reporter struct {
	w        io.Writer
	what     string
	now      func() time.Time
	tty      bool
	start    time.Time
	printed  bool      // something was written
	last     time.Time // when it last was
	lastDone int       // done at the last output
	open     bool      // a terminal line is drawn and not ended
}

// New returns a Reporter writing to w, each line led by what ("replay").
// It draws in place when w is a terminal (a file descriptor x/term calls
// a terminal).
func New(w io.Writer, what string, opts *Options) *Reporter {
	if opts == nil {
		opts = &Options{}
	}
	now := opts.Clock
	if now == nil {
		now = time.Now
	}
	return &Reporter{w: w, what: what, now: now, tty: IsTerminal(w), start: now()}
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// Update reports that done of total items are done. Its signature fits
// the progress callbacks of engine.ReplayObjects and ReplayDeadLetters.
func (r *Reporter) Update(done, total int) {
	t := r.now()
	final := done >= total
	if r.tty {
		if !final && r.printed && t.Sub(r.last) < redraw {
			return
		}
		fmt.Fprintf(r.w, "\r%s\x1b[K", r.line(done, total, t, true))
		r.open = !final
		if final {
			fmt.Fprintln(r.w)
		}
	} else {
		if r.printed && done == r.lastDone {
			return // nothing new
		}
		since := r.start
		if r.printed {
			since = r.last
		}
		due := final || t.Sub(since) >= lineEvery || total > 0 && (done-r.lastDone)*100 >= stepPct*total
		if !due {
			return
		}
		fmt.Fprintln(r.w, r.line(done, total, t, false))
	}
	r.last, r.lastDone, r.printed = t, done, true
}

// End ends a line left drawn on a terminal, for when the work stops before
// its last item (an error, a cancellation), so what is printed next starts
// on a line of its own. It does nothing otherwise.
func (r *Reporter) End() {
	if r.open {
		fmt.Fprintln(r.w)
		r.open = false
	}
}

// line is the report of done of total at t: "replay: 40/120 (33%), 12.5/s, 6s left".
func (r *Reporter) line(done, total int, t time.Time, bar bool) string {
	var b strings.Builder
	b.WriteString(r.what)
	b.WriteString(": ")
	pct := 100
	if total > 0 {
		pct = min(100*done/total, 100)
	}
	if bar {
		fill := barWidth * pct / 100
		b.WriteString("[" + strings.Repeat("#", fill) + strings.Repeat(".", barWidth-fill) + "] ")
	}
	fmt.Fprintf(&b, "%d/%d (%d%%)", done, total, pct)
	el := t.Sub(r.start)
	if el <= 0 || done <= 0 {
		return b.String()
	}
	rate := float64(done) / el.Seconds()
	fmt.Fprintf(&b, ", %s/s", rateString(rate))
	if done < total {
		left := time.Duration(float64(total-done) / rate * float64(time.Second))
		fmt.Fprintf(&b, ", %s left", roundLeft(left))
	} else {
		fmt.Fprintf(&b, ", took %s", roundLeft(el))
	}
	return b.String()
}

func rateString(r float64) string {
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f", r)
	case r >= 10:
		return fmt.Sprintf("%.1f", r)
	}
	return fmt.Sprintf("%.2f", r)
}

// roundLeft rounds a duration for reading: seconds, or 100 ms below 10 s.
func roundLeft(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}
