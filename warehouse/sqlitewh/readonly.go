package sqlitewh

import (
	"fmt"
	"strings"

	"github.com/sluicehq/sluice/warehouse/driver"
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
	toks := driver.SQLTokens(query)
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
