package pipeline

import (
	"fmt"
	"regexp"
	"strings"
)

var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expand replaces ${VAR} and ${VAR:-default} using getenv and $$ with $.
// Any other $ is kept as it is. A variable that getenv returns as "" is
// unset: without a default that is an error naming it. The default is
// literal text (not expanded again) up to the first "}".
func expand(s string, getenv func(string) string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("unterminated ${ in %q: close it as ${VAR}, or write $$ for a literal $", s)
			}
			inner := s[i+2 : i+2+end]
			name, def, hasDef := strings.Cut(inner, ":-")
			if !envNameRE.MatchString(name) {
				return "", fmt.Errorf("${%s} is not a variable reference: write ${VAR} or ${VAR:-default} (letters, digits and _), or $$ for a literal $", inner)
			}
			v := getenv(name)
			if v == "" {
				if !hasDef {
					return "", fmt.Errorf("environment variable %s is not set: set it, or write ${%s:-default}", name, name)
				}
				v = def
			}
			b.WriteString(v)
			i += 2 + end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}
