package curate

import (
	"strings"
	"testing"
	"time"
)

var filterCols = []Column{
	{Name: "Entity", Type: "string"}, {Name: "Code", Type: "string"}, {Name: "Year", Type: "int32"}, {Name: "consumption", Type: "float32"},
	{Name: "big", Type: "int64"}, {Name: "d", Type: "float64"}, {Name: "ok", Type: "bool"}, {Name: "day", Type: "date"}, {Name: "ts", Type: "timestamp"},
	{Name: "Hydro power", Type: "string"},
}

// row builds a row for filterCols.
func filterRow(entity, code any, year any, cons any) []any {
	return []any{entity, code, year, cons, int64(5), 2.5, true,
		time.Date(2020, 8, 7, 0, 0, 0, 0, time.UTC), time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC), "x"}
}

func TestFilterKeepsRowsThatMatchEveryComparison(t *testing.T) {
	norway := filterRow("Norway", "NOR", int32(2005), float32(120.5))
	africa := filterRow("Africa", nil, int32(1965), float32(14.2))
	cases := []struct {
		expr         string
		norway, afr  bool
		canonicalOut string
	}{
		{"", true, true, ""},
		{"   ", true, true, ""},
		{"Year >= 2000", true, false, "Year >= 2000"},
		{"Year>=2000", true, false, "Year >= 2000"},
		{"Year < 2000", false, true, "Year < 2000"},
		{"Year <= 1965", false, true, "Year <= 1965"},
		{"Year > 1965", true, false, "Year > 1965"},
		{"Year == 1965", false, true, "Year == 1965"},
		{"Year != 1965", true, false, "Year != 1965"},
		{"Code != null", true, false, "Code != null"},
		{"Code == NULL", false, true, "Code == null"},
		{`Entity == "Norway"`, true, false, `Entity == "Norway"`},
		{`Entity > "B"`, true, false, `Entity > "B"`},
		{`Code == "NOR"`, true, false, `Code == "NOR"`},
		{`Code != "NOR"`, false, true, `Code != "NOR"`}, // null != "NOR" keeps the null row (not equal)
		{`Code < "ZZZ"`, true, false, `Code < "ZZZ"`},   // ordering with null is false
		{"consumption > 100 and Year >= 2000", true, false, "consumption > 100 and Year >= 2000"},
		{"consumption > 1e1 AND Year >= 1900", true, true, "consumption > 1e1 and Year >= 1900"},
		{"consumption > -1.5", true, true, "consumption > -1.5"},
		{"big == 5 and d <= 2.5 and ok == true", true, true, "big == 5 and d <= 2.5 and ok == true"},
		{"ok != TRUE", false, false, "ok != true"},
		{`day == "2020-08-07" and ts > "2020-08-07T13:59:59Z"`, true, true, `day == "2020-08-07" and ts > "2020-08-07T13:59:59Z"`},
		{"`Hydro power` == \"x\"", true, true, "`Hydro power` == \"x\""},
		{"`Year` == 2005", true, false, "Year == 2005"},
		{`Entity == "No\"rway"`, false, false, `Entity == "No\"rway"`},
		{`Entity == ""`, false, false, `Entity == ""`},
	}
	for _, tc := range cases {
		f, err := ParseFilter(tc.expr, filterCols)
		if err != nil {
			t.Errorf("ParseFilter(%q): %v", tc.expr, err)
			continue
		}
		if got := f.Keep(norway); got != tc.norway {
			t.Errorf("%q keeps Norway = %v, want %v", tc.expr, got, tc.norway)
		}
		if got := f.Keep(africa); got != tc.afr {
			t.Errorf("%q keeps Africa = %v, want %v", tc.expr, got, tc.afr)
		}
		if got := f.String(); got != tc.canonicalOut {
			t.Errorf("%q canonical form = %q, want %q", tc.expr, got, tc.canonicalOut)
		}
	}
}

func TestFilterParseErrorsSayWhatAndWhere(t *testing.T) {
	cases := []struct{ expr, want string }{
		{"Year", `at offset 4: expected an operator`},
		{"Year >=", `at offset 7: expected a literal`},
		{"Year >= 2000 or Year < 10", `at offset 13: expected "and" or end of filter, found "or Year < 10"`},
		{"Year = 2000", `expected an operator`},
		{"Year >= abc", `quote strings with "`},
		{`Entity == "Norway`, `unterminated string literal`},
		{"`Year == 1", "unterminated `quoted column`"},
		{"and == 1", `expected a column name`},
		{"Year >= 1.2.3", `invalid number "1.2.3"`},
		{"Year >= 2000 and", `expected a column name, found end of filter`},
		{"Nope == 1", `unknown column "Nope"`},
		{"Year >= 2.5", `not a valid integer for column "Year"`},
		{"Year >= 99999999999", `not a valid integer for column "Year"`},
		{`Year == "2000"`, `a string literal cannot be compared with integer column "Year"`},
		{"Entity == 5", `a number literal cannot be compared with text column "Entity"`},
		{"Code < null", `only == and != compare with null`},
		{"ok > true", `supports only == and !=`},
		{"ok == 1", `cannot be compared with boolean column "ok"`},
		{`day >= "yesterday"`, `not a valid date for column "day"`},
		{`Year == ""`, `cannot be compared`},
		{`day == ""`, `write null`},
	}
	for _, tc := range cases {
		_, err := ParseFilter(tc.expr, filterCols)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseFilter(%q) error = %v, want it to contain %q", tc.expr, err, tc.want)
		}
	}
}

// FuzzParseFilter checks that any text parses or fails without panicking,
// and that a parsed filter's canonical form parses back to itself.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"", "Year >= 2000", "Code != null", `Entity == "Norway" and Year < 1990`,
		"`Hydro power` == \"x\"", "consumption > -1.5e3", "ok == TRUE", `Entity == "a\"b\\c"`,
		"Year >=", "and", "`", `"`, "Year == 1 and", "ä == 1", "Year==1AND Code!=null",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		p, err := parseFilter(expr)
		if err != nil {
			return
		}
		canon := p.String()
		q, err := parseFilter(canon)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, expr, err)
		}
		if q.String() != canon {
			t.Fatalf("canonical form not stable: %q → %q", canon, q.String())
		}
		// Binding must not panic either.
		ParseFilter(expr, filterCols)
	})
}
