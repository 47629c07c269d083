package httpsource

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
)

// LandFields are the fields of the Land template.
type LandFields struct {
	Source string // Config.Name
	Date   string // the import's tick (its start when unscheduled), UTC, 2006-01-02
	Time   string // the import's tick, UTC, 20060102T150405Z
	Unique string // 8 hex characters, different for every page, derived from the source, tick and page
	Page   int    // 1-based number of the page (pages found unchanged, and not landed, count too)
}

// maxKeyLen is the longest key, in bytes, a Land template may give (the
// longest object key S3 accepts).
const maxKeyLen = 1024

// errKeyTooLong is the write error of a key past maxKeyLen bytes.
var errKeyTooLong = fmt.Errorf("the key is longer than %d bytes", maxKeyLen)

// sampleStart is the import start CheckLand renders templates with.
var sampleStart = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// newLandFields returns the fields of page for an import of source that
// started at start.
func newLandFields(source string, start time.Time, unique string, page int) LandFields {
	u := start.UTC()
	return LandFields{Source: source, Date: u.Format("2006-01-02"), Time: u.Format("20060102T150405Z"), Unique: unique, Page: page}
}

// CheckLand reports why land is not a usable Land template for the source
// named source, or nil. The template must parse; it may use the fields of
// LandFields, functions such as printf, and if, but not range, with,
// define, block or template (which could make a key without bound); it must
// give a key of at most 1024 bytes that is relative (no leading /),
// names a file (no trailing /) and has no empty, . or .. segment, backslash,
// NUL or line break. With paginated, it must also give different keys to
// different pages. An empty land is refused: New, not CheckLand, replaces
// it by DefaultLand. New runs the same check; the error says what to write
// instead.
func CheckLand(source, land string, paginated bool) error {
	_, err := compileLand(source, land, paginated)
	return err
}

// LandPrefix returns the fixed folder every key of the source's land
// template starts with: the text up to the last "/" before the first
// character that varies with the tick, the page or .Unique (so
// "raw/posts/" for the default template and source posts), or "" when the
// keys differ from their first folder on. Retention walks it. An empty land
// means DefaultLand.
func LandPrefix(source, land string) (string, error) {
	if land == "" {
		land = DefaultLand
	}
	t, err := parseLand(land)
	if err != nil {
		return "", err
	}
	// Two imports that share nothing but the source: every field differs
	// from its first character on.
	early := newLandFields(source, time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC), "00000000", 1)
	late := newLandFields(source, time.Date(2088, 12, 31, 23, 59, 59, 0, time.UTC), "ffffffff", 9999)
	k1, err := renderLand(t, early)
	if err != nil {
		return "", err
	}
	k2, err := renderLand(t, late)
	if err != nil {
		return "", err
	}
	n := 0
	for n < len(k1) && n < len(k2) && k1[n] == k2[n] {
		n++
	}
	return k1[:strings.LastIndex(k1[:n], "/")+1], nil
}

// compileLand parses land and checks it as CheckLand says by rendering the
// keys of pages 1 and 2 of a sample import.
func compileLand(source, land string, paginated bool) (*template.Template, error) {
	t, err := parseLand(land)
	if err != nil {
		return nil, err
	}
	k1, err := renderLand(t, newLandFields(source, sampleStart, "u1", 1))
	if err != nil {
		return nil, err
	}
	if paginated {
		k2, err := renderLand(t, newLandFields(source, sampleStart, "u2", 2))
		if err != nil {
			return nil, err
		}
		if k1 == k2 {
			return nil, fmt.Errorf("land template gives the same key (%q) for every page, so pages would overwrite each other: add {{.Page}} or {{.Unique}}", k1)
		}
	}
	return t, nil
}

const landHint = "use fields such as {{.Date}}, functions such as printf, and if"

// parseLand parses a land template and refuses the actions that could make
// a key without bound.
func parseLand(land string) (*template.Template, error) {
	t, err := template.New("land").Option("missingkey=error").Parse(land)
	if err != nil {
		return nil, fmt.Errorf("land template does not parse (%v): write a Go text/template such as %q", err, DefaultLand)
	}
	if len(t.Templates()) > 1 {
		return nil, fmt.Errorf("land template: define and block are not allowed: %s", landHint)
	}
	if t.Tree != nil {
		if err := checkNodes(t.Tree.Root); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// checkNodes refuses range, with, template, break and continue anywhere in
// the tree under n.
func checkNodes(n parse.Node) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkNodes(c); err != nil {
				return err
			}
		}
	case *parse.IfNode:
		if err := checkNodes(n.List); err != nil {
			return err
		}
		return checkNodes(n.ElseList)
	case *parse.RangeNode, *parse.WithNode, *parse.TemplateNode, *parse.BreakNode, *parse.ContinueNode:
		return fmt.Errorf("land template: %s is not allowed: %s", n, landHint)
	}
	return nil
}

// renderLand executes a parsed land template for f and checks the key.
func renderLand(t *template.Template, f LandFields) (string, error) {
	var b limitBuffer
	if err := t.Execute(&b, f); err != nil {
		if errors.Is(err, errKeyTooLong) {
			return "", fmt.Errorf("land template gives a key longer than %d bytes: shorten it", maxKeyLen)
		}
		return "", fmt.Errorf("land template fails (%v): use only {{.Source}}, {{.Date}}, {{.Time}}, {{.Unique}} and {{.Page}}", err)
	}
	key := b.String()
	if msg := checkKey(key); msg != "" {
		return "", fmt.Errorf("land template gives key %q, which %s", key, msg)
	}
	return key, nil
}

// limitBuffer fails writes past maxKeyLen bytes.
type limitBuffer struct{ bytes.Buffer }

func (b *limitBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxKeyLen {
		return 0, errKeyTooLong
	}
	return b.Buffer.Write(p)
}

// checkKey returns why key is not a usable object key, or "".
func checkKey(key string) string {
	switch {
	case strings.TrimSpace(key) == "":
		return fmt.Sprintf("is empty: write a template that names a file, like %q", DefaultLand)
	case strings.HasPrefix(key, "/"):
		return "starts with /: keys are relative to the store, remove the leading /"
	case strings.HasSuffix(key, "/"):
		return "ends with /: name a file, not a folder, like {{.Unique}}.json"
	case strings.ContainsAny(key, "\\\x00\r\n"):
		return "contains a backslash, NUL or line break: remove it"
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Sprintf("has an empty, . or .. path segment: write the clean form (%q)", path.Clean(key))
		}
	}
	return ""
}
