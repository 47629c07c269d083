package curate

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sluicehq/sluice/schema"

	"github.com/sluicehq/sluice/format"
)

// Filter is a compiled row filter: a conjunction of comparisons between an
// output column and a literal. The zero Filter keeps every row.
//
// The language, complete:
//
//	filter     = comparison { "and" comparison }
//	comparison = column op literal
//	column     = identifier | "`" any text without backquote "`"
//	identifier = letter or "_", then letters, digits or "_"
//	op         = "==" | "!=" | "<" | "<=" | ">" | ">="
//	literal    = number | string | "null" | "true" | "false"
//	string     = a double-quoted Go string literal ("Norway", "a\"b")
//	number     = an optional "-" or "+", then digits, ".", "e", "E" and signs
//
// Keywords (and, null, true, false) are case-insensitive. Examples:
//
//	Year >= 2000
//	Code != null and Entity == "Norway"
//	`Hydropower (Terawatt-hours)` > 1.5
//
// Columns are output names (after Spec.Rename) and the comparison is made on
// the cast value. Each literal is cast to the column's kind with the same
// rules as the CSV values (format.CastString), so a date column compares with
// "2020-08-07" and an int32 column rejects 2.5 when the filter is compiled.
// "== null" keeps rows where the column is null and "!= null" rows where it
// is not; any other comparison with a null value is false, as in SQL. bool
// columns support only == and !=.
type Filter struct {
	conds []cond
}

type cond struct {
	column string // output column name
	op     string
	lit    literal
	index  int         // column index, set by bind
	kind   schema.Type // set by bind
	value  any         // literal cast to kind, set by bind; nil for null
	// value by kind, for eval: integers, floats, booleans, times, text.
	class valueClass // which of them, decided once (a Type is a string)
	ival  int64
	fval  float64
	bval  bool
	tval  time.Time
	sval  string
}

type literalKind int

const (
	litNumber literalKind = iota
	litString
	litNull
	litBool
)

type literal struct {
	kind literalKind
	text string // number text, unquoted string, "true"/"false"
}

// ParseFilter parses expr and checks it against cols: every column must be
// declared and every literal must cast to its column's kind. An empty or
// all-blank expr returns the zero Filter, which keeps every row. Errors name
// the byte offset in expr and what was expected.
func ParseFilter(expr string, cols []Column) (Filter, error) {
	f, err := parseFilter(expr)
	if err != nil {
		return Filter{}, err
	}
	if err := f.bind(cols); err != nil {
		return Filter{}, err
	}
	return f, nil
}

// String returns the filter in canonical form; parsing it gives the same
// filter.
func (f Filter) String() string {
	var b strings.Builder
	for i, c := range f.conds {
		if i > 0 {
			b.WriteString(" and ")
		}
		if isIdent(c.column) {
			b.WriteString(c.column)
		} else {
			b.WriteString("`" + c.column + "`")
		}
		b.WriteString(" " + c.op + " ")
		switch c.lit.kind {
		case litString:
			b.WriteString(strconv.Quote(c.lit.text))
		default:
			b.WriteString(c.lit.text)
		}
	}
	return b.String()
}

// Keep reports whether a row of values (in Spec.Columns order, as cast:
// nil, int32, int64, float32, float64, bool, time.Time or string) passes
// the filter. It is for tests and single rows; Run evaluates keepRow on
// typed vectors.
func (f Filter) Keep(row []any) bool {
	vecs := make([]schema.Vector, len(row))
	for i := range f.conds {
		j := f.conds[i].index
		vecs[j].Reset(f.conds[i].kind)
		if err := vecs[j].AppendValue(row[j]); err != nil {
			return false
		}
	}
	return f.keepRow(vecs, 0)
}

// keepRow reports whether row i of vecs (one vector per Spec.Columns
// entry, of the columns' types) passes the filter.
func (f *Filter) keepRow(vecs []schema.Vector, i int) bool {
	for k := range f.conds {
		if !f.conds[k].eval(&vecs[f.conds[k].index], i) {
			return false
		}
	}
	return true
}

func (c *cond) eval(v *schema.Vector, i int) bool {
	isNull := v.Null[i]
	if c.value == nil || isNull {
		switch c.op {
		case "==":
			return c.value == nil && isNull
		case "!=":
			return (c.value == nil) != isNull
		default:
			return false
		}
	}
	var n int
	switch c.class {
	case classInt:
		n = cmp3(v.Int[i], c.ival)
	case classFloat:
		x := v.Float[i]
		if x != x || c.fval != c.fval {
			return false // NaN compares with nothing
		}
		n = cmp3(x, c.fval)
	case classBool:
		if v.Bool[i] != c.bval {
			n = 1
		}
	case classTime:
		n = v.Time[i].Compare(c.tval)
	default:
		n = strings.Compare(v.TextString(i), c.sval)
	}
	switch c.op {
	case "==":
		return n == 0
	case "!=":
		return n != 0
	case "<":
		return n < 0
	case "<=":
		return n <= 0
	case ">":
		return n > 0
	case ">=":
		return n >= 0
	}
	return false
}

func cmp3[T int64 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// valueClass says which Vector field holds a column's values.
type valueClass uint8

const (
	classText valueClass = iota
	classInt
	classFloat
	classBool
	classTime
)

func classOf(t schema.Type) valueClass {
	switch {
	case t.IsInt():
		return classInt
	case t.IsFloat():
		return classFloat
	case t == schema.Boolean:
		return classBool
	case t.IsTime():
		return classTime
	}
	return classText
}

// setValue keeps the cast literal in the field eval reads for its kind.
func (c *cond) setValue(v any) {
	c.value = v
	switch x := v.(type) {
	case int32:
		c.ival = int64(x)
	case int64:
		c.ival = x
	case float32:
		c.fval = float64(x)
	case float64:
		c.fval = x
	case bool:
		c.bval = x
	case time.Time:
		c.tval = x
	case string:
		c.sval = x
	}
}

func (f *Filter) bind(cols []Column) error {
	for i := range f.conds {
		c := &f.conds[i]
		c.index = -1
		for j, col := range cols {
			if col.Name == c.column {
				c.index, c.kind = j, col.Type.Canonical()
				c.class = classOf(c.kind)
				break
			}
		}
		if c.index < 0 {
			names := make([]string, len(cols))
			for j, col := range cols {
				names[j] = col.Name
			}
			return fmt.Errorf("filter: unknown column %q in %q (declared columns: %s)", c.column, c.text(), strings.Join(names, ", "))
		}
		if c.lit.kind == litNull {
			if c.op != "==" && c.op != "!=" {
				return fmt.Errorf("filter: %q: only == and != compare with null", c.text())
			}
			continue
		}
		if c.kind == schema.Boolean && c.op != "==" && c.op != "!=" {
			return fmt.Errorf("filter: %q: boolean column %q supports only == and !=", c.text(), c.column)
		}
		switch {
		case c.lit.kind == litBool && c.kind != schema.Boolean,
			c.lit.kind != litBool && c.kind == schema.Boolean,
			c.lit.kind == litNumber && (c.kind == schema.Text || c.kind == schema.Date || c.kind == schema.Timestamp),
			c.lit.kind == litString && (c.kind == schema.Integer || c.kind == schema.BigInt || c.kind == schema.Real || c.kind == schema.Double):
			return fmt.Errorf("filter: %q: a %s literal cannot be compared with %s column %q", c.text(), c.lit.kindName(), c.kind, c.column)
		}
		if c.lit.text == "" {
			// "" casts to null for every kind; comparing with it would silently
			// mean null, so ask for null explicitly.
			if c.kind != schema.Text {
				return fmt.Errorf("filter: %q: empty literal; write null to test for missing values", c.text())
			}
			c.setValue("")
			continue
		}
		v, err := format.CastString(c.kind, c.lit.text)
		if err != nil {
			return fmt.Errorf("filter: %q: literal is not a valid %s for column %q: %w", c.text(), c.kind, c.column, err)
		}
		c.setValue(v)
	}
	return nil
}

func (c *cond) text() string { return Filter{conds: []cond{*c}}.String() }

func (l literal) kindName() string {
	switch l.kind {
	case litNumber:
		return "number"
	case litString:
		return "string"
	case litBool:
		return "bool"
	}
	return "null"
}

// parseFilter parses without checking columns.
func parseFilter(expr string) (Filter, error) {
	p := &filterParser{src: expr}
	var f Filter
	p.skipSpace()
	if p.pos == len(p.src) {
		return Filter{}, nil
	}
	for {
		c, err := p.comparison()
		if err != nil {
			return Filter{}, err
		}
		f.conds = append(f.conds, c)
		p.skipSpace()
		if p.pos == len(p.src) {
			return f, nil
		}
		start := p.pos
		w := p.word()
		if !strings.EqualFold(w, "and") {
			return Filter{}, p.errorf(start, "expected \"and\" or end of filter, found %s", p.found(start))
		}
	}
}

type filterParser struct {
	src string
	pos int
}

func (p *filterParser) errorf(at int, format string, args ...any) error {
	return fmt.Errorf("filter %q: at offset %d: %s", p.src, at, fmt.Sprintf(format, args...))
}

func (p *filterParser) found(at int) string {
	if at >= len(p.src) {
		return "end of filter"
	}
	rest := p.src[at:]
	if len(rest) > 20 {
		rest = rest[:20] + "…"
	}
	return strconv.Quote(rest)
}

func (p *filterParser) skipSpace() {
	for p.pos < len(p.src) {
		r, n := utf8.DecodeRuneInString(p.src[p.pos:])
		if !unicode.IsSpace(r) {
			return
		}
		p.pos += n
	}
}

// word reads an identifier-like word (possibly empty).
func (p *filterParser) word() string {
	start := p.pos
	for p.pos < len(p.src) {
		r, n := utf8.DecodeRuneInString(p.src[p.pos:])
		if r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			break
		}
		p.pos += n
	}
	return p.src[start:p.pos]
}

func (p *filterParser) comparison() (cond, error) {
	var c cond
	p.skipSpace()
	start := p.pos
	switch {
	case p.pos < len(p.src) && p.src[p.pos] == '`':
		end := strings.IndexByte(p.src[p.pos+1:], '`')
		if end < 0 {
			return c, p.errorf(start, "unterminated `quoted column`")
		}
		c.column = p.src[p.pos+1 : p.pos+1+end]
		p.pos += end + 2
		if c.column == "" || !utf8.ValidString(c.column) {
			return c, p.errorf(start, "empty or invalid `quoted column`")
		}
	default:
		w := p.word()
		if !isIdent(w) || isKeyword(w) {
			return c, p.errorf(start, "expected a column name, found %s", p.found(start))
		}
		c.column = w
	}
	p.skipSpace()
	opStart := p.pos
	for _, op := range []string{"==", "!=", "<=", ">=", "<", ">"} {
		if strings.HasPrefix(p.src[p.pos:], op) {
			c.op = op
			p.pos += len(op)
			break
		}
	}
	if c.op == "" {
		return c, p.errorf(opStart, "expected an operator (== != < <= > >=) after %q, found %s", c.column, p.found(opStart))
	}
	p.skipSpace()
	litStart := p.pos
	if p.pos >= len(p.src) {
		return c, p.errorf(litStart, "expected a literal (number, \"string\", null, true, false), found end of filter")
	}
	switch ch := p.src[p.pos]; {
	case ch == '"':
		s, err := p.quoted()
		if err != nil {
			return c, err
		}
		c.lit = literal{kind: litString, text: s}
	case ch == '-' || ch == '+' || ch == '.' || (ch >= '0' && ch <= '9'):
		p.pos++
		for p.pos < len(p.src) {
			ch := p.src[p.pos]
			prev := p.src[p.pos-1]
			if (ch >= '0' && ch <= '9') || ch == '.' || ch == 'e' || ch == 'E' ||
				((ch == '-' || ch == '+') && (prev == 'e' || prev == 'E')) {
				p.pos++
				continue
			}
			break
		}
		text := p.src[litStart:p.pos]
		if _, err := strconv.ParseFloat(text, 64); err != nil && !isRangeErr(err) {
			return c, p.errorf(litStart, "invalid number %q", text)
		}
		c.lit = literal{kind: litNumber, text: text}
	default:
		w := p.word()
		switch strings.ToLower(w) {
		case "null":
			c.lit = literal{kind: litNull, text: "null"}
		case "true", "false":
			c.lit = literal{kind: litBool, text: strings.ToLower(w)}
		default:
			return c, p.errorf(litStart, "expected a literal (number, \"string\", null, true, false), found %s; quote strings with \"", p.found(litStart))
		}
	}
	return c, nil
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// quoted reads a double-quoted Go string literal at p.pos.
func (p *filterParser) quoted() (string, error) {
	start := p.pos
	i := p.pos + 1
	for i < len(p.src) {
		switch p.src[i] {
		case '\\':
			i += 2
			continue
		case '"':
			s, err := strconv.Unquote(p.src[start : i+1])
			if err != nil || !utf8.ValidString(s) {
				return "", p.errorf(start, "invalid string literal %s", p.src[start:i+1])
			}
			p.pos = i + 1
			return s, nil
		}
		i++
	}
	return "", p.errorf(start, "unterminated string literal")
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if r == '_' || unicode.IsLetter(r) || (i > 0 && unicode.IsDigit(r)) {
			continue
		}
		return false
	}
	return !isKeyword(s)
}

func isKeyword(s string) bool {
	switch strings.ToLower(s) {
	case "and", "null", "true", "false":
		return true
	}
	return false
}
