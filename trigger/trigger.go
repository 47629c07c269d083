// Package trigger matches object-created events against job rules and
// derives the group a matching event belongs to.
//
// A rule is shaped like an S3 notification configuration (event names, a
// key prefix and a key suffix; see event.Filter) plus a group template: a
// text/template evaluated over the event's key that names the unit of work
// (for the hydropower reference, the key's parent folder, JOB_DATE). Every
// file of one group feeds one run; the job package does the debouncing and
// deduplication.
//
// Template data for a group: .Key.Path (the full key), .Key.Dir (the parent
// path without a trailing slash, "data/2020-08-07_2PM"), .Key.Parent (the
// base name of the parent folder, "2020-08-07_2PM"), .Key.Base (the file
// name) and .Key.Ext (the file extension with its dot, ".csv"). Templates
// for job inputs and outputs (Expand) see .Group.
//
// A group must be a usable path fragment, because it is substituted into
// object prefixes: it may not be empty, contain control characters, start
// with "/", or contain a "." or ".." path element. A key that yields such a
// group is an error naming the key, never a silent skip.
//
// Compiled rules are immutable and safe for concurrent use.
package trigger

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"
	"text/template"
	"unicode"

	"github.com/sluicehq/sluice/event"
)

// DefaultGroup is the group template used when a rule names none: the
// parent folder of the key.
const DefaultGroup = "{{.Key.Parent}}"

// Rule is a job trigger as written in a pipeline spec.
type Rule struct {
	// Name names the rule (the job) in errors and records.
	Name string
	// Filter selects the events (event names, prefix, suffix).
	Filter event.Filter
	// Group is a text/template over the key; "" means DefaultGroup.
	Group string
}

// Compiled is a validated rule ready to match events.
type Compiled struct {
	rule  Rule
	group *template.Template
}

// Key is the template view of an object key.
type Key struct {
	Path   string // full key: "data/2020-08-07_2PM/hydropower.csv"
	Dir    string // parent path without trailing slash: "data/2020-08-07_2PM"
	Parent string // base name of the parent folder: "2020-08-07_2PM"
	Base   string // file name: "hydropower.csv"
	Ext    string // extension with its dot: ".csv"
}

// keyData is what a group template sees.
type keyData struct{ Key Key }

// groupData is what an input or output template sees.
type groupData struct{ Group string }

// SplitKey returns the template view of key.
func SplitKey(key string) Key {
	k := Key{Path: key}
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		k.Dir, k.Base = key[:i], key[i+1:]
	} else {
		k.Base = key
	}
	k.Dir = strings.TrimRight(k.Dir, "/")
	if i := strings.LastIndexByte(k.Dir, '/'); i >= 0 {
		k.Parent = k.Dir[i+1:]
	} else {
		k.Parent = k.Dir
	}
	k.Ext = path.Ext(k.Base)
	return k
}

// Compile validates r: its name, event patterns and group template.
func Compile(r Rule) (*Compiled, error) {
	if strings.TrimSpace(r.Name) == "" {
		return nil, errors.New("trigger: rule has no name: give every job rule a name")
	}
	for _, p := range r.Filter.Events {
		if !event.ValidEventPattern(p) {
			return nil, fmt.Errorf("trigger: rule %s: unknown event %q: use s3:ObjectCreated:* or one of :Put, :Post, :Copy, :CompleteMultipartUpload", r.Name, p)
		}
	}
	if r.Group == "" {
		r.Group = DefaultGroup
	}
	t, err := template.New(r.Name).Option("missingkey=error").Parse(r.Group)
	if err != nil {
		return nil, fmt.Errorf("trigger: rule %s: group template %q: %w", r.Name, r.Group, err)
	}
	// Parsing does not check field names; executing on a sample key does.
	if err := t.Execute(new(bytes.Buffer), keyData{SplitKey("a/b/c.csv")}); err != nil {
		return nil, fmt.Errorf("trigger: rule %s: group template %q: %w (fields: .Key.Path, .Key.Dir, .Key.Parent, .Key.Base, .Key.Ext)", r.Name, r.Group, err)
	}
	return &Compiled{rule: r, group: t}, nil
}

// Rule returns the rule as compiled (with the default group filled in).
func (c *Compiled) Rule() Rule { return c.rule }

// Name returns the rule's name.
func (c *Compiled) Name() string { return c.rule.Name }

// Match reports whether rec passes the rule's filter and, if so, the group
// it belongs to. A matching record whose key yields an unusable group is an
// error naming the rule and the key.
func (c *Compiled) Match(rec event.Record) (group string, ok bool, err error) {
	if !c.rule.Filter.Match(rec) {
		return "", false, nil
	}
	key := rec.S3.Object.Key
	var b bytes.Buffer
	if err := c.group.Execute(&b, keyData{SplitKey(key)}); err != nil {
		return "", false, fmt.Errorf("trigger: rule %s: group of key %q: %w", c.rule.Name, key, err)
	}
	group = b.String()
	if err := CheckGroup(group); err != nil {
		return "", false, fmt.Errorf("trigger: rule %s: key %q gives group %q (template %q): %w", c.rule.Name, key, group, c.rule.Group, err)
	}
	return group, true, nil
}

// CheckGroup reports why group cannot be used as a path fragment, or nil.
func CheckGroup(group string) error {
	if group == "" {
		return errors.New("the group is empty (a key without a parent folder? write a group template that fits these keys)")
	}
	if strings.HasPrefix(group, "/") {
		return errors.New("the group starts with /")
	}
	for _, r := range group {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return fmt.Errorf("the group contains the character %U", r)
		}
	}
	for _, el := range strings.Split(group, "/") {
		if el == "." || el == ".." {
			return fmt.Errorf("the group contains the path element %q", el)
		}
	}
	return nil
}

// Expand evaluates an input or output template such as "data/{{.Group}}/"
// for group. An empty result is an error.
func Expand(tmpl, group string) (string, error) {
	t, err := template.New("path").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", fmt.Errorf("trigger: template %q: %w", tmpl, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, groupData{Group: group}); err != nil {
		return "", fmt.Errorf("trigger: template %q for group %q: %w (the only field is .Group)", tmpl, group, err)
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("trigger: template %q for group %q expands to an empty path", tmpl, group)
	}
	return b.String(), nil
}
