package pipeline

import (
	"sort"
	"strconv"
	"strings"
)

// Error is one problem in a spec: where it is, which key, and what to write
// instead. Line and Col are 1-based; 0 means unknown (Col is unknown for
// YAML syntax errors, Line for problems that come from the environment, such
// as SLUICE_QUEUE, when the file does not have the key).
type Error struct {
	File      string
	Line, Col int
	// Path is the dotted key path, like loads.posts.write; "" for the
	// document as a whole.
	Path string
	Msg  string
}

// Error formats e as "file:line:col: path: msg", leaving out unknown parts.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
		if e.Col > 0 {
			b.WriteString(":" + strconv.Itoa(e.Col))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem Parse found, sorted by position.
type ErrorList []*Error

// Error returns one error per line.
func (l ErrorList) Error() string {
	s := make([]string, len(l))
	for i, e := range l {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap returns the errors, for errors.As.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// sorted returns l sorted by line and column, without exact duplicates
// (an aliased node can be reported twice).
func (l ErrorList) sorted() ErrorList {
	sort.SliceStable(l, func(i, j int) bool {
		if l[i].Line != l[j].Line {
			return l[i].Line < l[j].Line
		}
		return l[i].Col < l[j].Col
	})
	out := l[:0]
	seen := map[Error]bool{}
	for _, e := range l {
		if !seen[*e] {
			seen[*e] = true
			out = append(out, e)
		}
	}
	return out
}
