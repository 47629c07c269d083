package sqlitewh

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// readPragmas are the pragmas taking an argument in parentheses that only
// read (PRAGMA table_info(t)); any other pragma given a value sets it.
var readPragmas = map[string]bool{
	"table_info": true, "table_xinfo": true, "table_list": true, "index_list": true, "index_info": true,
	"index_xinfo": true, "foreign_key_list": true, "foreign_key_check": true, "integrity_check": true, "quick_check": true,
}

// refuseWrites refuses, with what to do instead, the statements of a query
// that would reach beyond the warehouse or change the connection: ATTACH
// and DETACH, VACUUM (INTO writes a new file anywhere) and a pragma given a
// value. Every statement of the query is looked at, as SQLite runs them
// all. Writes to the warehouse's tables are refused by SQLite itself
// (query_only, mode=ro), with its own error.
func refuseWrites(query string) error {
	toks := sqlTokens(query)
	for len(toks) > 0 {
		end := 0
		for end < len(toks) && toks[end] != ";" {
			end++
		}
		stmt := toks[:end]
		toks = toks[min(end+1, len(toks)):]
		if len(stmt) == 0 {
			continue
		}
		switch kw := strings.ToUpper(stmt[0]); kw {
		case "ATTACH", "DETACH":
			return fmt.Errorf("queries here only read the warehouse: %s is refused (it opens or closes another database file); query the warehouse's own tables", kw)
		case "VACUUM":
			return fmt.Errorf("queries here only read the warehouse: VACUUM is refused (VACUUM INTO writes a new file); copy the warehouse file instead")
		case "PRAGMA":
			name := ""
			if len(stmt) > 1 {
				name = strings.ToLower(stmt[1])
			}
			rest := stmt[min(2, len(stmt)):]
			if len(rest) >= 2 && rest[0] == "." {
				name, rest = strings.ToLower(rest[1]), rest[2:]
			}
			if len(rest) > 0 && (rest[0] == "=" || rest[0] == "(" && !readPragmas[name]) {
				return fmt.Errorf("queries here only read the warehouse: PRAGMA %s given a value would change a setting; ask for its value (PRAGMA %s) instead", name, name)
			}
		}
	}
	return nil
}

// sqlTokens cuts SQL into the tokens refuseWrites looks at: words
// (keywords and identifiers, quoted ones unquoted) and one-character
// punctuation. Strings and comments are dropped; a ';' inside either or
// inside a quoted identifier does not end a statement.
func sqlTokens(q string) []string {
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
