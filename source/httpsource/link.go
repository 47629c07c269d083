package httpsource

import (
	"fmt"
	"sort"
	"strings"
)

// Link is one link-value of an RFC 8288 Link header.
type Link struct {
	// URL is the target as written between < and >, white space trimmed;
	// it may be relative.
	URL string
	// Params holds the link parameters by lower-cased name; a parameter
	// without a value maps to "". When a name repeats, the first wins.
	Params map[string]string
}

// Rels returns the link's relation types, lower-cased.
func (l Link) Rels() []string { return strings.Fields(strings.ToLower(l.Params["rel"])) }

// HasRel reports whether rel is one of the link's relation types.
func (l Link) HasRel(rel string) bool {
	for _, r := range l.Rels() {
		if r == strings.ToLower(rel) {
			return true
		}
	}
	return false
}

// String formats the link as a Link header value, parameters sorted by name
// and values quoted.
func (l Link) String() string {
	var b strings.Builder
	b.WriteString("<" + l.URL + ">")
	names := make([]string, 0, len(l.Params))
	for n := range l.Params {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b.WriteString("; " + n)
		if v := l.Params[n]; v != "" {
			b.WriteString(`="`)
			for i := 0; i < len(v); i++ {
				if v[i] == '"' || v[i] == '\\' {
					b.WriteByte('\\')
				}
				b.WriteByte(v[i])
			}
			b.WriteByte('"')
		}
	}
	return b.String()
}

// ParseLink parses one Link header value (RFC 8288): a comma-separated list
// of <URI-reference> followed by ";"-separated parameters whose values are
// tokens or quoted strings. It is strict: anything else is an error naming
// the byte offset.
func ParseLink(h string) ([]Link, error) {
	var links []Link
	i := 0
	skipWS := func() {
		for i < len(h) && (h[i] == ' ' || h[i] == '\t') {
			i++
		}
	}
	for {
		for i < len(h) && (h[i] == ' ' || h[i] == '\t' || h[i] == ',') {
			i++
		}
		if i == len(h) {
			return links, nil
		}
		if h[i] != '<' {
			return nil, fmt.Errorf("expected '<' at byte %d", i)
		}
		end := strings.IndexByte(h[i+1:], '>')
		if end < 0 {
			return nil, fmt.Errorf("'<' at byte %d is not closed by '>'", i)
		}
		l := Link{URL: strings.TrimSpace(h[i+1 : i+1+end]), Params: map[string]string{}}
		i += end + 2
		for {
			skipWS()
			if i == len(h) || h[i] == ',' {
				break
			}
			if h[i] != ';' {
				return nil, fmt.Errorf("expected ';' or ',' at byte %d", i)
			}
			i++
			skipWS()
			start := i
			for i < len(h) && isTokenChar(h[i]) {
				i++
			}
			if start == i {
				return nil, fmt.Errorf("expected a parameter name at byte %d", i)
			}
			name := strings.ToLower(h[start:i])
			skipWS()
			val := ""
			if i < len(h) && h[i] == '=' {
				i++
				skipWS()
				if i < len(h) && h[i] == '"' {
					open := i
					i++
					var b strings.Builder
					closed := false
					for i < len(h) {
						c := h[i]
						if c == '\\' && i+1 < len(h) {
							b.WriteByte(h[i+1])
							i += 2
							continue
						}
						i++
						if c == '"' {
							closed = true
							break
						}
						b.WriteByte(c)
					}
					if !closed {
						return nil, fmt.Errorf("quoted string at byte %d is not closed", open)
					}
					val = b.String()
				} else {
					start := i
					for i < len(h) && isTokenChar(h[i]) {
						i++
					}
					if start == i {
						return nil, fmt.Errorf("parameter %q has no value at byte %d", name, i)
					}
					val = h[start:i]
				}
			}
			if _, dup := l.Params[name]; !dup {
				l.Params[name] = val
			}
		}
		links = append(links, l)
	}
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
