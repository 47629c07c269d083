package pipeline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/schema"
	"gopkg.in/yaml.v3"
)

// Limits that keep a hostile spec (alias bombs, deep merges) cheap.
const (
	maxAliasUses  = 10000
	maxMergeDepth = 16
)

// parser walks the yaml.Node tree and collects every error it meets.
type parser struct {
	file      string
	getenv    func(string) string
	errs      ErrorList
	warns     ErrorList
	aliasUses int
	overused  bool
	// retention is where each source's retention is written.
	retention map[string]*yaml.Node
}

// warnf records a warning (Spec.Warnings) at n.
func (p *parser) warnf(n *yaml.Node, path, format string, args ...any) {
	e := &Error{File: p.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	p.warns = append(p.warns, e)
}

func (p *parser) errorf(n *yaml.Node, path, format string, args ...any) {
	e := &Error{File: p.file, Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	p.errs = append(p.errs, e)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// decode parses data as one YAML document and returns its root node, or nil
// after reporting why it cannot.
func (p *parser) decode(data []byte) (root *yaml.Node) {
	defer func() {
		if r := recover(); r != nil {
			p.errorf(nil, "", "invalid YAML: the YAML parser failed (%v): check the file is well-formed YAML", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorf(nil, "", "the spec is empty: start it with name: my-pipeline")
		} else {
			p.yamlError(err, data)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		p.yamlError(err, data)
		return nil
	default:
		p.errorf(&extra, "", "a second YAML document starts here: a spec is one document; remove the --- line and what follows, or move it to its own file")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || isNull(doc.Content[0]) {
		p.errorf(nil, "", "the spec is empty: start it with name: my-pipeline")
		return nil
	}
	return doc.Content[0]
}

// yamlParserProblems are the messages of yaml.v3's parser (as opposed to
// its scanner). yaml.v3 reports their line 0-based, and leaves it out on
// the first line.
var yamlParserProblems = []string{
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"did not find expected '-' indicator", "did not find expected <document start>",
	"did not find expected <stream-start>", "did not find expected key",
	"did not find expected node content", "found duplicate %TAG directive",
	"found duplicate %YAML directive", "found incompatible YAML document",
	"found undefined tag handle",
}

// yamlError reports a yaml.v3 syntax error with a 1-based line when it can
// be known (0 otherwise).
func (p *parser) yamlError(err error, data []byte) {
	msg, line := strings.TrimPrefix(err.Error(), "yaml: "), 0
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	hint := "check the indentation (spaces only), the colon after each key, and quote values that start with a special character such as { [ * & ! | > ' \" % @ or `"
	switch {
	case contains(yamlParserProblems, msg):
		line = problemLine(data, line+1, msg)
	case strings.HasPrefix(msg, "unknown anchor '"):
		name := strings.TrimSuffix(strings.TrimPrefix(msg, "unknown anchor '"), "' referenced")
		line = lineOf(data, "*"+name)
		hint = fmt.Sprintf("define the anchor with &%s before the alias *%s that uses it", name, name)
	case strings.Contains(msg, "UTF-8") || strings.Contains(msg, "Unicode") || strings.Contains(msg, "control characters") || strings.Contains(msg, "input error"):
		hint = "save the file as UTF-8 text without control characters"
	case line == 0:
		line = 1
	}
	if strings.Contains(msg, "cannot start any token") || strings.Contains(msg, "tab character") {
		hint = "YAML does not allow tabs for indentation, nor an unquoted value starting with @ or `: indent with spaces, or quote the value"
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: fmt.Sprintf("invalid YAML: %s: %s", msg, hint)})
}

// problemLine finds the line of a yaml.v3 parser error. yaml.v3 reports
// where the enclosing block or flow collection starts (from), which can be
// far above the mistake; the mistake is on the first line k ≥ from such
// that the first k lines alone fail with the same message.
func problemLine(data []byte, from int, msg string) int {
	lines := splitLines(data)
	if from < 1 {
		from = 1
	}
	for k := from; k <= len(lines) && k < from+2000; k++ {
		var n yaml.Node
		err := safeUnmarshal(bytes.Join(lines[:k], nil), &n)
		if err != nil && strings.HasSuffix(err.Error(), msg) {
			return k
		}
	}
	return min(from, len(lines)+1)
}

// splitLines splits data after each line break as YAML counts them: \r\n,
// \r, \n, NEL, LS and PS. A final line without a break is included.
func splitLines(data []byte) [][]byte {
	var out [][]byte
	start := 0
	for i := 0; i < len(data); {
		n := 0
		switch {
		case data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n':
			n = 2
		case data[i] == '\r' || data[i] == '\n':
			n = 1
		case bytes.HasPrefix(data[i:], []byte("\u0085")):
			n = 2
		case bytes.HasPrefix(data[i:], []byte("\u2028")), bytes.HasPrefix(data[i:], []byte("\u2029")):
			n = 3
		}
		if n == 0 {
			i++
			continue
		}
		i += n
		out = append(out, data[start:i])
		start = i
	}
	if start < len(data) {
		out = append(out, data[start:])
	}
	return out
}

func safeUnmarshal(data []byte, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: parser failed: %v", r)
		}
	}()
	return yaml.Unmarshal(data, n)
}

// lineOf returns the 1-based line of the first occurrence of s, or 0.
func lineOf(data []byte, s string) int {
	for i, l := range splitLines(data) {
		if bytes.Contains(l, []byte(s)) {
			return i + 1
		}
	}
	return 0
}

// resolve follows aliases. It returns nil (after one report) when the spec
// uses aliases more than maxAliasUses times.
func (p *parser) resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		p.aliasUses++
		if p.aliasUses > maxAliasUses {
			if !p.overused {
				p.overused = true
				p.errorf(n, "", "aliases (*name) are used more than %d times: write the repeated parts out, or use fewer aliases", maxAliasUses)
			}
			return nil
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return fmt.Sprintf("the value %q", n.Value)
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return "a YAML document"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func posOf(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

// entry is one key: value pair of a mapping.
type entry struct {
	name     string
	key, val *yaml.Node
}

type mapping struct {
	node    *yaml.Node
	entries []entry
}

func (m *mapping) get(name string) *entry {
	for i := range m.entries {
		if m.entries[i].name == name {
			return &m.entries[i]
		}
	}
	return nil
}

// mapping checks that n is a mapping and returns its entries in order with
// merge keys (<<: *alias) expanded. When allowed is non-nil, other keys are
// reported (with hints[key] when there is one). Null is an empty mapping.
// It returns nil when n is not a mapping; want says what to write instead.
func (p *parser) mapping(n *yaml.Node, path, want string, allowed []string, hints map[string]string) *mapping {
	n = p.resolve(n)
	if n == nil {
		return nil
	}
	if isNull(n) {
		return &mapping{node: n}
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, path, "expected a mapping (key: value), found %s: %s", kindName(n), want)
		return nil
	}
	m := &mapping{node: n, entries: p.entries(n, path, 0)}
	if allowed != nil {
		for _, e := range m.entries {
			if !contains(allowed, e.name) {
				p.unknownKey(e, path, allowed, hints)
			}
		}
	}
	return m
}

func (p *parser) entries(n *yaml.Node, path string, depth int) []entry {
	if depth > maxMergeDepth {
		p.errorf(n, path, "merge keys (<<) are nested more than %d deep: write the keys out", maxMergeDepth)
		return nil
	}
	type item struct {
		e     entry
		merge *yaml.Node
	}
	var items []item
	explicit := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		rk := p.resolve(k)
		if rk == nil {
			continue
		}
		if rk.Kind != yaml.ScalarNode {
			p.errorf(k, path, "a key must be a plain name, found %s as a key: write name: value", kindName(rk))
			continue
		}
		if rk.Value == "<<" && rk.ShortTag() == "!!merge" {
			items = append(items, item{merge: v})
			continue
		}
		if prev, dup := explicit[rk.Value]; dup {
			p.errorf(k, join(path, rk.Value), "key %q is already defined at line %d: keep only one of them", rk.Value, prev.Line)
			continue
		}
		explicit[rk.Value] = k
		items = append(items, item{e: entry{name: rk.Value, key: k, val: v}})
	}
	var out []entry
	have := map[string]bool{}
	for _, it := range items {
		if it.merge == nil {
			out = append(out, it.e)
			have[it.e.name] = true
			continue
		}
		for _, src := range p.mergeSources(it.merge, path) {
			for _, e := range p.entries(src, path, depth+1) {
				if !have[e.name] && explicit[e.name] == nil {
					have[e.name] = true
					out = append(out, e)
				}
			}
		}
	}
	return out
}

func (p *parser) mergeSources(v *yaml.Node, path string) []*yaml.Node {
	const want = "a merge key takes an alias of a mapping, like <<: *defaults, or a list of them"
	r := p.resolve(v)
	if r == nil {
		return nil
	}
	switch r.Kind {
	case yaml.MappingNode:
		return []*yaml.Node{r}
	case yaml.SequenceNode:
		var out []*yaml.Node
		for _, c := range r.Content {
			rc := p.resolve(c)
			if rc == nil {
				continue
			}
			if rc.Kind != yaml.MappingNode {
				p.errorf(c, path, "found %s in a merge list: %s", kindName(rc), want)
				continue
			}
			out = append(out, rc)
		}
		return out
	}
	p.errorf(v, path, "found %s after <<: %s", kindName(r), want)
	return nil
}

func (p *parser) unknownKey(e entry, path string, allowed []string, hints map[string]string) {
	kp := join(path, e.name)
	if h, ok := hints[e.name]; ok {
		p.errorf(e.key, kp, "unknown key %q: %s", e.name, h)
		return
	}
	if s := suggest(e.name, allowed); s != "" {
		p.errorf(e.key, kp, "unknown key %q: did you mean %q?", e.name, s)
		return
	}
	p.errorf(e.key, kp, "unknown key %q: allowed keys here are %s", e.name, strings.Join(allowed, ", "))
}

// scalar returns a scalar's text, env-expanded when expandEnv is set.
func (p *parser) scalar(n *yaml.Node, path string, expandEnv bool) (string, bool) {
	r := p.resolve(n)
	if r == nil {
		return "", false
	}
	if r.Kind != yaml.ScalarNode {
		key := path[strings.LastIndex(path, ".")+1:]
		p.errorf(r, path, "expected a single value, found %s: write %s: VALUE on one line", kindName(r), key)
		return "", false
	}
	if isNull(r) {
		p.errorf(n, path, "has no value: write one, or remove the key if it is optional (write \"\" for an empty string)")
		return "", false
	}
	if !expandEnv {
		return r.Value, true
	}
	v, err := expand(r.Value, p.getenv)
	if err != nil {
		p.errorf(n, path, "%v", err)
		return "", false
	}
	return v, true
}

func (p *parser) duration(n *yaml.Node, path string, min time.Duration) (time.Duration, bool) {
	s, ok := p.scalar(n, path, true)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		if _, ferr := strconv.ParseFloat(s, 64); ferr == nil {
			p.errorf(n, path, "%q has no unit: write a duration like %ss, %sms or %sm", s, s, s, s)
		} else {
			p.errorf(n, path, "%q is not a duration: write a number with a unit, like 500ms, 30s, 5m or 1h", s)
		}
		return 0, false
	}
	if d < min {
		p.errorf(n, path, "%s is too short: write at least %s", s, min)
		return 0, false
	}
	return d, true
}

func (p *parser) integer(n *yaml.Node, path string, min, max int) (int, bool) {
	s, ok := p.scalar(n, path, true)
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		p.errorf(n, path, "%q is not a whole number: write a number between %d and %d", s, min, max)
		return 0, false
	}
	if v < min || v > max {
		p.errorf(n, path, "%d is out of range: write a number between %d and %d", v, min, max)
		return 0, false
	}
	return v, true
}

func (p *parser) boolean(n *yaml.Node, path string) (bool, bool) {
	s, ok := p.scalar(n, path, true)
	if !ok {
		return false, false
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	p.errorf(n, path, "%q is not a boolean: write true or false", s)
	return false, false
}

// item is one element of a list of scalars, with its node for messages.
type item struct {
	val  string
	node *yaml.Node
}

// strList reads a list of scalars; example is how to write it.
func (p *parser) strList(n *yaml.Node, path, example string) ([]item, bool) {
	r := p.resolve(n)
	if r == nil {
		return nil, false
	}
	if r.Kind != yaml.SequenceNode {
		if r.Kind == yaml.ScalarNode && !isNull(r) {
			p.errorf(n, path, "expected a list, found %s: write a list, like %s: [%s]", kindName(r), path[strings.LastIndex(path, ".")+1:], r.Value)
		} else {
			p.errorf(n, path, "expected a list, found %s: write a list, like %s", kindName(r), example)
		}
		return nil, false
	}
	var out []item
	ok := true
	for i, c := range r.Content {
		v, good := p.scalar(c, fmt.Sprintf("%s[%d]", path, i), true)
		if !good {
			ok = false
			continue
		}
		out = append(out, item{val: v, node: c})
	}
	return out, ok
}

// enum reads a scalar that must be one of options; aliases map common
// mistakes (lower-case) to the option to suggest.
func (p *parser) enum(n *yaml.Node, path, what string, options []string, aliases map[string]string) (string, bool) {
	v, ok := p.scalar(n, path, true)
	if !ok {
		return "", false
	}
	if contains(options, v) {
		return v, true
	}
	msg := fmt.Sprintf("unknown %s %q", what, v)
	if a, ok := aliases[strings.ToLower(v)]; ok {
		msg += fmt.Sprintf(": did you mean %q?", a)
	} else if s := suggest(v, options); s != "" {
		msg += fmt.Sprintf(": did you mean %q?", s)
	}
	p.errorf(n, path, "%s (allowed: %s)", msg, strings.Join(options, ", "))
	return "", false
}

// columnType reads a column type: one of names, or an alias schema.Parse
// takes for one of them (int32 for integer, string for text); otherwise it
// reports the error as enum does.
func (p *parser) columnType(n *yaml.Node, path, what string, names []string, aliases map[string]string) (schema.Type, bool) {
	if r := p.resolve(n); r != nil && r.Kind == yaml.ScalarNode {
		if t, err := schema.Parse(r.Value); err == nil && contains(names, string(t)) {
			return t, true
		}
	}
	v, ok := p.enum(n, path, what, names, aliases)
	return schema.Type(v), ok
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// suggest returns the option closest to word (case-insensitively) when it
// is within edit distance 2 (1 for words of up to 3 letters), else "".
func suggest(word string, options []string) string {
	limit := 2
	if len(word) <= 3 {
		limit = 1
	}
	best, bestD := "", limit+1
	lw := strings.ToLower(word)
	for _, o := range options {
		if d := editDistance(lw, strings.ToLower(o)); d < bestD {
			best, bestD = o, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		if a == b {
			return 0
		}
		return 1 << 20
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
