package pipeline

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sluicehq/sluice/event"
)

// The re-trigger check. sluice emits an ObjectCreated:Put event for every
// object a job writes, so a job whose output matches its own trigger would
// run forever, and so would jobs that trigger each other in a ring. The
// check models the keys a job can write as
//
//	lit + free + tail
//
// where lit is the output template's text before its first {{, free is any
// text (present when the template has an action, or for a command job,
// which may write anything under its output), and tail is fixed: for a
// curate job "part-NNNNN-<uuid>-c000.snappy.parquet" or "_SUCCESS" after
// the template's literal text following its last }}. Job B is triggered by
// job A when B's events accept ObjectCreated:Put and some key of A's model
// starts with B's prefix and ends with B's suffix. The answer is exact for
// the model; the model over-approximates only what a template's actions
// can produce.

// outputModel is the set of keys a job may write: lit, then any text when
// free, then one of tails (each a sequence of allowed bytes per position).
type outputModel struct {
	lit   string
	free  bool
	tails [][]string
}

const (
	digits = "0123456789"
	hexLow = "0123456789abcdef"
)

// curateTails are the object names curate writes in its output folder.
var curateTails = func() [][]string {
	var part []string
	lit := func(s string) {
		for i := range len(s) {
			part = append(part, s[i:i+1])
		}
	}
	rep := func(class string, n int) {
		for range n {
			part = append(part, class)
		}
	}
	lit("part-")
	rep(digits, 5)
	lit("-")
	for i, n := range []int{8, 4, 4, 4, 12} { // a version 4 UUID
		if i > 0 {
			lit("-")
		}
		rep(hexLow, n)
	}
	lit("-c000.snappy.parquet")
	var success []string
	for i := range len("_SUCCESS") {
		success = append(success, "_SUCCESS"[i:i+1])
	}
	return [][]string{part, success}
}()

// modelOf returns the keys job j may write, or false when it declares no
// output.
func modelOf(j Job) (outputModel, bool) {
	o := j.Output
	if o == "" {
		return outputModel{}, false
	}
	m := outputModel{lit: o}
	tailLit := ""
	if i := strings.Index(o, "{{"); i >= 0 {
		m.lit, m.free = o[:i], true
		if strings.HasPrefix(o[i:], "{{- ") {
			m.lit = strings.TrimRight(m.lit, " \t\r\n")
		}
		if k := strings.LastIndex(o, "}}"); k >= i+2 {
			tailLit = o[k+2:]
			if strings.HasSuffix(o[:k], " -") {
				tailLit = strings.TrimLeft(tailLit, " \t\r\n")
			}
		}
	}
	if j.Curate == nil {
		// A command job may write anything under its output.
		m.free, m.tails = true, [][]string{nil}
		return m, true
	}
	for _, t := range curateTails {
		var pat []string
		for i := range len(tailLit) {
			pat = append(pat, tailLit[i:i+1])
		}
		m.tails = append(m.tails, append(pat, t...))
	}
	return m, true
}

// canMatch reports whether some key of m starts with prefix and ends with
// suffix.
func (m outputModel) canMatch(prefix, suffix string) bool {
	for _, t := range m.tails {
		if m.free {
			if (strings.HasPrefix(m.lit, prefix) || strings.HasPrefix(prefix, m.lit)) && tailEndsWith(t, suffix) {
				return true
			}
			continue
		}
		// A fixed-length pattern: lit then t, position by position.
		pat := make([]string, 0, len(m.lit)+len(t))
		for i := range len(m.lit) {
			pat = append(pat, m.lit[i:i+1])
		}
		pat = append(pat, t...)
		if fixedMatch(pat, prefix, suffix) {
			return true
		}
	}
	return false
}

// tailEndsWith reports whether some text ending in pattern t (after any
// free text) ends with suffix.
func tailEndsWith(t []string, suffix string) bool {
	n := min(len(t), len(suffix))
	for k := 1; k <= n; k++ {
		if !strings.Contains(t[len(t)-k], suffix[len(suffix)-k:len(suffix)-k+1]) {
			return false
		}
	}
	return true
}

// fixedMatch reports whether some string of the fixed-length pattern pat
// starts with prefix and ends with suffix.
func fixedMatch(pat []string, prefix, suffix string) bool {
	if len(prefix) > len(pat) || len(suffix) > len(pat) {
		return false
	}
	allowed := append([]string(nil), pat...)
	for i := range len(prefix) {
		c := prefix[i : i+1]
		if !strings.Contains(allowed[i], c) {
			return false
		}
		allowed[i] = c
	}
	off := len(pat) - len(suffix)
	for i := range len(suffix) {
		if !strings.Contains(allowed[off+i], suffix[i:i+1]) {
			return false
		}
	}
	return true
}

// acceptsPut reports whether on's events include ObjectCreated:Put, the
// event sluice emits for job outputs.
func acceptsPut(on On) bool {
	return event.Filter{Events: on.Events}.Match(event.New("", "k", 0, "", time.Time{}))
}

// describeOn names a trigger's key filter for messages.
func describeOn(o On) string {
	switch {
	case o.Prefix == "" && o.Suffix == "":
		return "every key"
	case o.Suffix == "":
		return fmt.Sprintf("prefix %q", o.Prefix)
	case o.Prefix == "":
		return fmt.Sprintf("suffix %q", o.Suffix)
	}
	return fmt.Sprintf("prefix %q, suffix %q", o.Prefix, o.Suffix)
}

// checkRetrigger reports every job whose output triggers itself and every
// cycle of jobs that trigger each other, once, at the output of the cycle's
// first job in file order. Jobs with other errors are left out.
func (p *parser) checkRetrigger(jobs []Job, infos []jobInfo) {
	n := len(jobs)
	models := make([]outputModel, n)
	has := make([]bool, n)
	for i, j := range jobs {
		if i < len(infos) && infos[i].ok && infos[i].outNode != nil {
			models[i], has[i] = modelOf(j)
		}
	}
	// Jobs whose events take Put, and without other errors, can be triggered.
	var targets []int
	for b, j := range jobs {
		if infos[b].ok && acceptsPut(j.On) {
			targets = append(targets, b)
		}
	}
	edges := make([][]int, n)
	for a := range jobs {
		if !has[a] {
			continue
		}
		for _, b := range targets {
			if !models[a].canMatch(jobs[b].On.Prefix, jobs[b].On.Suffix) {
				continue
			}
			if a == b {
				j := jobs[a]
				p.errorf(infos[a].outNode, infos[a].outPath, "the output %q matches this job's own trigger (%s): each run would start another; %s", j.Output, describeOn(j.On), selfFix(j.On))
				continue
			}
			edges[a] = append(edges[a], b)
		}
	}
	for _, comp := range components(edges) {
		if len(comp) < 2 {
			continue
		}
		start := comp[0] // components are sorted: the first job in file order
		cycle := shortestCycle(edges, comp, start)
		names := make([]string, 0, len(cycle)+1)
		var parts []string
		for k, a := range cycle {
			b := cycle[(k+1)%len(cycle)]
			names = append(names, jobs[a].Name)
			part := fmt.Sprintf("%s's output %q triggers %s (%s)", jobs[a].Name, jobs[a].Output, jobs[b].Name, describeOn(jobs[b].On))
			if k == len(cycle)-1 {
				part = "and " + part
			}
			parts = append(parts, part)
		}
		names = append(names, jobs[start].Name)
		sep := ", "
		if len(parts) == 2 {
			sep = " "
			parts[0] += ","
		}
		p.errorf(infos[start].outNode, infos[start].outPath, "jobs %s form a cycle: %s; break it by moving one output", strings.Join(names, " → "), strings.Join(parts, sep))
	}
}

// selfFix says how to stop a job from triggering itself.
func selfFix(o On) string {
	if o.Prefix != "" {
		return fmt.Sprintf("write the output outside %q", o.Prefix)
	}
	return "set on.prefix to the folder the inputs arrive in, and write the output outside it"
}

// components returns the strongly connected components of the graph, each
// sorted ascending, in no particular order (Tarjan's algorithm).
func components(edges [][]int) [][]int {
	n := len(edges)
	index := make([]int, n)
	low := make([]int, n)
	on := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int
	var out [][]int
	next := 0
	var visit func(v int)
	visit = func(v int) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		on[v] = true
		for _, w := range edges[v] {
			if index[w] < 0 {
				visit(w)
				low[v] = min(low[v], low[w])
			} else if on[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			var comp []int
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				on[w] = false
				comp = append(comp, w)
				if w == v {
					break
				}
			}
			slices.Sort(comp)
			out = append(out, comp)
		}
	}
	for v := range n {
		if index[v] < 0 {
			visit(v)
		}
	}
	return out
}

// shortestCycle returns the shortest cycle through start within comp, as
// the list of its jobs starting with start (breadth-first search).
func shortestCycle(edges [][]int, comp []int, start int) []int {
	in := map[int]bool{}
	for _, v := range comp {
		in[v] = true
	}
	prev := map[int]int{}
	queue := []int{start}
	seen := map[int]bool{start: true}
	for len(queue) > 0 {
		v := queue[0]
		queue = queue[1:]
		for _, w := range edges[v] {
			if !in[w] {
				continue
			}
			if w == start {
				var path []int
				for u := v; u != start; u = prev[u] {
					path = append(path, u)
				}
				path = append(path, start)
				for i, k := 0, len(path)-1; i < k; i, k = i+1, k-1 {
					path[i], path[k] = path[k], path[i]
				}
				return path
			}
			if !seen[w] {
				seen[w] = true
				prev[w] = v
				queue = append(queue, w)
			}
		}
	}
	return []int{start} // unreachable for a component of two or more
}
