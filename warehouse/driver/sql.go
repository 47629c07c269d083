package driver

import (
	"strings"
	"unicode/utf8"
)

// SQLTokens cuts SQL into the tokens the backends look at before they run
// a query someone typed (sluice sql): words (keywords and identifiers,
// quoted ones unquoted), one-character punctuation, and "'" for each string
// literal. Comments are dropped; a ';' inside a string, a comment or a
// quoted identifier does not end a statement.
func SQLTokens(q string) []string {
	var toks []string
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			i++
		case c == '-' && strings.HasPrefix(q[i:], "--"):
			if j := strings.IndexByte(q[i:], '\n'); j >= 0 {
				i += j + 1
			} else {
				i = len(q)
			}
		case c == '/' && strings.HasPrefix(q[i:], "/*"):
			if j := strings.Index(q[i+2:], "*/"); j >= 0 {
				i += j + 4
			} else {
				i = len(q)
			}
		case c == '\'' || c == '"' || c == '`' || c == '[':
			closer := c
			if c == '[' {
				closer = ']'
			}
			var b strings.Builder
			j := i + 1
			for j < len(q) {
				if q[j] == closer {
					if closer != ']' && j+1 < len(q) && q[j+1] == closer { // doubled: an escaped quote
						b.WriteByte(closer)
						j += 2
						continue
					}
					break
				}
				b.WriteByte(q[j])
				j++
			}
			if c != '\'' {
				toks = append(toks, b.String())
			} else {
				toks = append(toks, "'")
			}
			i = j + 1
		case c == '_' || c == '$' || c >= 0x80 || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9':
			j := i
			for j < len(q) {
				d := q[j]
				if d == '_' || d == '$' || d >= 0x80 || 'a' <= d && d <= 'z' || 'A' <= d && d <= 'Z' || '0' <= d && d <= '9' {
					j++
					continue
				}
				break
			}
			toks = append(toks, q[i:j])
			i = j
		default:
			_, n := utf8.DecodeRuneInString(q[i:])
			toks = append(toks, q[i:i+n])
			i += n
		}
	}
	return toks
}
