package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/schema"
	"github.com/sluicehq/sluice/warehouse/driver"
)

// Column maps a record field — top-level, or nested at a path — to a
// warehouse column.
type Column struct {
	// Field is the record's top-level field name (exact,
	// case-sensitive). Set Field or Path.
	Field string
	// Path is the field's path through nested objects: [address, city]
	// is the "city" key of the object in the "address" field (spec
	// "address.city"; see ParsePath). A path of one segment is the same as
	// Field. NewMapper fills it from Field.
	Path []string
	// Name is the column name; empty means the path's segments joined
	// with "_" (so Field for a top-level field).
	Name string
	// Type is the column type.
	Type driver.Type
	// Required makes a missing field or a JSON null an error instead of
	// NULL.
	Required bool
}

// ParsePath splits a field path spelled with dots, "address.city", into
// its segments. For keys that contain dots, specs give the segments as a
// list instead. Empty segments are an error.
func ParsePath(s string) ([]string, error) {
	segs := strings.Split(s, ".")
	for i, seg := range segs {
		if seg == "" {
			return nil, fmt.Errorf("format: field path %q has an empty segment %d; write the path as a list of keys if a key contains dots", s, i+1)
		}
	}
	return segs, nil
}

// OnMissing says what to do with a declared field that no record of an
// object has (its key is absent from every record): usually a misspelt
// field, or a path that does not match the data.
type OnMissing string

// OnMissing policies.
const (
	MissingWarn  OnMissing = "warn"  // report it (the default)
	MissingError OnMissing = "error" // fail the object
)

// OnExtra says what to do with undeclared fields: top-level fields that
// no column's path starts with, and keys inside a declared parent object
// that no column takes (address.zipcode when address.city is declared).
type OnExtra string

// OnExtra policies.
const (
	ExtraIgnore OnExtra = "ignore" // drop them silently
	ExtraWarn   OnExtra = "warn"   // drop them and report them (the default)
	ExtraError  OnExtra = "error"  // fail the object at the first record that has one
	ExtraJSON   OnExtra = "json"   // keep them in MapperOptions.ExtraColumn
)

// ParseOnMissing returns the policy spelled s; "" is MissingWarn.
func ParseOnMissing(s string) (OnMissing, error) {
	switch OnMissing(s) {
	case "":
		return MissingWarn, nil
	case MissingWarn, MissingError:
		return OnMissing(s), nil
	}
	return "", fmt.Errorf("format: unknown on_missing policy %q (want %q or %q)", s, MissingWarn, MissingError)
}

// ParseOnExtra returns the policy spelled s; "" is ExtraWarn.
func ParseOnExtra(s string) (OnExtra, error) {
	switch OnExtra(s) {
	case "":
		return ExtraWarn, nil
	case ExtraIgnore, ExtraWarn, ExtraError, ExtraJSON:
		return OnExtra(s), nil
	}
	return "", fmt.Errorf("format: unknown extra policy %q (want %q, %q, %q or %q)", s, ExtraIgnore, ExtraWarn, ExtraError, ExtraJSON)
}

// MapperOptions are the policies of a Mapper; nil or zero fields mean the
// defaults (warn and warn).
type MapperOptions struct {
	// OnMissing applies, at the end of an object, to declared fields that
	// no record had.
	OnMissing OnMissing
	// Extra applies to undeclared fields.
	Extra OnExtra
	// ExtraColumn, required with Extra "json", names the column that
	// receives each record's undeclared fields as one JSON object (nested
	// ones under their parents: {"address":{"zipcode":"x"}}), or NULL
	// when the record has none. That column has type json and no Field or
	// Path; for example Column{Name: "_extra", Type: driver.JSON}.
	ExtraColumn string
}

// Mapper converts records to warehouse rows. It is safe for concurrent
// use; per-object bookkeeping lives in an ObjectMapper (Mapper.Object).
type Mapper struct {
	cols     []Column
	labels   []string // per column: the path joined with "." (for messages)
	extraCol int      // index of MapperOptions.ExtraColumn, or -1
	opts     MapperOptions
	tree     *pathNode // the declared paths
	nodes    int       // number of pathNodes
}

// pathNode is one key of the declared paths.
type pathNode struct {
	idx      int    // in 0..Mapper.nodes-1
	name     string // dotted path of the node ("" for the root)
	leaf     bool   // a column takes the whole value: nothing below is extra
	children map[string]*pathNode
}

// NewMapper checks cols (a field or path for every column, known types,
// unique column names) and opts (nil means the defaults), and returns a
// Mapper for them.
func NewMapper(cols []Column, opts *MapperOptions) (*Mapper, error) {
	if len(cols) == 0 {
		return nil, errors.New("format: no columns to map")
	}
	m := &Mapper{cols: make([]Column, len(cols)), labels: make([]string, len(cols)), extraCol: -1}
	if opts != nil {
		m.opts = *opts
	}
	var err error
	if m.opts.OnMissing, err = ParseOnMissing(string(m.opts.OnMissing)); err != nil {
		return nil, err
	}
	if m.opts.Extra, err = ParseOnExtra(string(m.opts.Extra)); err != nil {
		return nil, err
	}
	switch {
	case m.opts.Extra == ExtraJSON && m.opts.ExtraColumn == "":
		return nil, errors.New("format: extra policy \"json\" needs an extra column to hold the undeclared fields; declare one of type json, e.g. \"_extra\"")
	case m.opts.Extra != ExtraJSON && m.opts.ExtraColumn != "":
		return nil, fmt.Errorf("format: extra column %q is set but the extra policy is %q, not \"json\"", m.opts.ExtraColumn, m.opts.Extra)
	}
	m.tree = &pathNode{}
	m.nodes = 1
	seen := make(map[string]int, len(cols))
	for i, c := range cols {
		isExtra := m.opts.ExtraColumn != "" && c.Name == m.opts.ExtraColumn
		switch {
		case isExtra:
			if c.Field != "" || len(c.Path) > 0 || c.Type != driver.JSON || c.Required {
				return nil, fmt.Errorf("format: extra column %q must have type json and no field, path or required", c.Name)
			}
			m.extraCol = i
		case c.Field == "" && len(c.Path) == 0:
			return nil, fmt.Errorf("format: column %d (%q) has no field", i+1, c.Name)
		case len(c.Path) == 0:
			c.Path = []string{c.Field}
		case c.Field != "" && (len(c.Path) != 1 || c.Path[0] != c.Field):
			return nil, fmt.Errorf("format: column %d (%q) sets both field %q and path %q; set one", i+1, c.Name, c.Field, strings.Join(c.Path, "."))
		}
		for _, seg := range c.Path {
			if seg == "" {
				return nil, fmt.Errorf("format: column %d (%q) has an empty key in its path %q", i+1, c.Name, c.Path)
			}
		}
		c.Path = slices.Clone(c.Path)
		if len(c.Path) == 1 {
			c.Field = c.Path[0]
		}
		if c.Name == "" {
			c.Name = strings.Join(c.Path, "_")
		}
		switch c.Type {
		case driver.BigInt, driver.Integer, driver.Double, driver.Text, driver.Boolean, driver.Timestamp, driver.Date, driver.JSON:
		default:
			return nil, fmt.Errorf("format: column %q has unknown type %q (want bigint, integer, double, text, boolean, timestamp, date or json)", c.Name, c.Type)
		}
		if j, dup := seen[c.Name]; dup {
			return nil, fmt.Errorf("format: column name %q is used by columns %d and %d", c.Name, j+1, i+1)
		}
		seen[c.Name] = i
		m.cols[i] = c
		m.labels[i] = strings.Join(c.Path, ".")
		if !isExtra {
			m.declare(c.Path)
		}
	}
	if m.opts.ExtraColumn != "" && m.extraCol < 0 {
		return nil, fmt.Errorf("format: extra column %q is not among the columns; declare it with type json", m.opts.ExtraColumn)
	}
	return m, nil
}

// declare adds path to the tree of declared paths.
func (m *Mapper) declare(path []string) {
	n := m.tree
	for _, seg := range path {
		child := n.children[seg]
		if child == nil {
			if n.children == nil {
				n.children = map[string]*pathNode{}
			}
			name := seg
			if n.name != "" {
				name = n.name + "." + seg
			}
			child = &pathNode{idx: m.nodes, name: name}
			m.nodes++
			n.children[seg] = child
		}
		n = child
	}
	n.leaf = true
}

// Columns returns the mapper's columns, with empty names and paths filled
// in.
func (m *Mapper) Columns() []Column {
	out := append([]Column(nil), m.cols...)
	for i := range out {
		out[i].Path = slices.Clone(out[i].Path)
	}
	return out
}

// Row converts rec to one value per column, in column order, as
// warehouse/driver expects them: int64 for bigint and integer, float64 for
// double, string for text and json, bool for boolean, time.Time (UTC) for
// timestamp and date (midnight UTC). A missing field, a JSON null, or a
// path through a missing or null object is nil (an error when the column
// is Required); a path through a value that is not an object is an error.
// Undeclared fields follow MapperOptions.Extra: "error" fails the record,
// "json" fills the extra column, "warn" and "ignore" drop them (Row keeps
// no state, so only an ObjectMapper reports them).
//
// Casts (anything else is an error):
//   - bigint: a JSON number that is a whole number (1, 1.0, 1e3) or a
//     string holding a base-10 integer, within int64; integer: the same,
//     within int32.
//   - double: a JSON number or a string holding a finite decimal number.
//   - text: a string; a number as written in the JSON (1.50 stays "1.50");
//     a boolean as "true" or "false". Objects and arrays are rejected (use
//     a json column), and so is a string with a NUL character (\u0000),
//     which PostgreSQL cannot store.
//   - boolean: true, false, or the strings "true" and "false".
//   - timestamp: an RFC 3339 string (2006-01-02T15:04:05Z07:00, fraction
//     optional) or a number of seconds since the Unix epoch (fraction
//     allowed), years 0001 to 9999; the result is in UTC.
//   - date: a "YYYY-MM-DD" string, at midnight UTC.
//   - json: any value, as compact JSON text (object keys sorted, no HTML
//     escaping), without NUL characters in its strings and keys.
//
// A value that cannot be cast gives a *RecordError with Record and Line
// from rec and Column set to the field's path (joined with "."), for
// example `record 5 (line 30): column userId: want bigint, got string
// "abc"`.
func (m *Mapper) Row(rec Record) ([]any, error) {
	return m.row(rec, nil)
}

// row is Row, with the bookkeeping of o when o is not nil.
func (m *Mapper) row(rec Record, o *ObjectMapper) ([]any, error) {
	row := make([]any, len(m.cols))
	for i, c := range m.cols {
		if i == m.extraCol {
			continue
		}
		v, present, err := lookup(rec.Fields, c.Path)
		if err != nil {
			return nil, &RecordError{Record: rec.N, Line: rec.Line, Column: m.labels[i], Err: err}
		}
		if present && o != nil && !o.present[i] {
			o.present[i] = true
		}
		if v == nil {
			if c.Required {
				what := "missing"
				if present {
					what = "null"
				}
				return nil, &RecordError{Record: rec.N, Line: rec.Line, Column: m.labels[i], Err: fmt.Errorf("required field is %s", what)}
			}
			continue
		}
		out, err := castValue(c.Type, v)
		if err != nil {
			return nil, &RecordError{Record: rec.N, Line: rec.Line, Column: m.labels[i], Err: err}
		}
		row[i] = out
	}
	switch {
	case m.opts.Extra == ExtraIgnore, m.opts.Extra == ExtraWarn && o == nil:
		return row, nil
	}
	extra, err := m.extras(rec, m.tree, rec.Fields, o)
	if err != nil {
		return nil, err
	}
	if m.extraCol >= 0 && extra != nil {
		out, err := castValue(driver.JSON, extra)
		if err != nil {
			return nil, &RecordError{Record: rec.N, Line: rec.Line, Column: m.cols[m.extraCol].Name, Err: err}
		}
		row[m.extraCol] = out
	}
	return row, nil
}

// lookup walks path through nested objects. A missing key, or a null on
// the way, is a missing value (present false); a non-object on the way is
// an error.
func lookup(fields map[string]any, path []string) (v any, present bool, err error) {
	cur := fields
	for j, seg := range path {
		v, ok := cur[seg]
		if !ok {
			return nil, false, nil
		}
		if j == len(path)-1 {
			return v, true, nil
		}
		switch x := v.(type) {
		case map[string]any:
			cur = x
		case nil:
			return nil, false, nil
		default:
			return nil, false, fmt.Errorf("want an object at %s, got %s", strings.Join(path[:j+1], "."), describe(v))
		}
	}
	return nil, false, nil
}

// extras finds the undeclared keys of fields, the object at node n of the
// declared paths: it records them in o (when not nil), fails on the first
// with Extra "error", and with Extra "json" returns them as a nested map
// (nil when there are none).
func (m *Mapper) extras(rec Record, n *pathNode, fields map[string]any, o *ObjectMapper) (map[string]any, error) {
	var out map[string]any
	for k, v := range fields {
		child := n.children[k]
		if child != nil {
			if child.leaf {
				continue
			}
			sub, ok := v.(map[string]any)
			if !ok {
				continue // null (missing) or a non-object (an error of the column)
			}
			got, err := m.extras(rec, child, sub, o)
			if err != nil {
				return nil, err
			}
			if got != nil {
				if out == nil {
					out = map[string]any{}
				}
				out[k] = got
			}
			continue
		}
		switch m.opts.Extra {
		case ExtraError:
			// Name the first undeclared field in sorted order, not in
			// the map's random one.
			var names []string
			m.undeclared(n, fields, &names)
			slices.Sort(names)
			return nil, &RecordError{Record: rec.N, Line: rec.Line, Column: names[0],
				Err: errors.New("the field is not declared; declare it as a column, or set extra to ignore, warn or json")}
		case ExtraJSON:
			if out == nil {
				out = map[string]any{}
			}
			out[k] = v
		}
		if o != nil {
			o.sawExtra(rec, n, k)
		}
	}
	return out, nil
}

// undeclared appends the names of the undeclared keys of fields, the
// object at node n, to names.
func (m *Mapper) undeclared(n *pathNode, fields map[string]any, names *[]string) {
	for k, v := range fields {
		switch child := n.children[k]; {
		case child == nil:
			*names = append(*names, dotted(n, k))
		case !child.leaf:
			if sub, ok := v.(map[string]any); ok {
				m.undeclared(child, sub, names)
			}
		}
	}
}

// dotted names key k of the object at node n.
func dotted(n *pathNode, k string) string {
	if n.name == "" {
		return k
	}
	return n.name + "." + k
}

// ObjectMapper maps the records of one object with a Mapper and keeps the
// object's bookkeeping: which declared fields never occurred and which
// undeclared ones did. Use one per object, from one goroutine; Finish
// applies the OnMissing policy and returns the report.
type ObjectMapper struct {
	m       *Mapper
	records int
	present []bool                // per column: some record had the key
	seen    []map[string]struct{} // per path node: undeclared keys seen
	extra   []ExtraField          // in order of first appearance
}

// ExtraField is an undeclared field and where it first occurred.
type ExtraField struct {
	// Field is the field's path joined with ".", e.g. "address.zipcode".
	Field string
	// Record and Line locate the first record that had it.
	Record, Line int
}

// Report is what an ObjectMapper found in one object, for the caller to
// log and count.
type Report struct {
	// Records is the number of records mapped.
	Records int
	// Missing are the declared fields (paths joined with ".") that no
	// record had, in column order. Empty for an object without records.
	Missing []string
	// Extra are the undeclared fields, in order of first appearance (none
	// with Extra "ignore").
	Extra []ExtraField
	// ExtraColumn is the column that kept them (Extra "json"), or "" when
	// they were dropped.
	ExtraColumn string
}

// Warning describes the report's findings in one sentence for a log
// line, or returns "" when there are none.
func (r Report) Warning() string {
	var parts []string
	if len(r.Missing) > 0 {
		parts = append(parts, fmt.Sprintf("declared fields absent from all %d records (misspelt, or a path that does not match the data?): %s", r.Records, strings.Join(r.Missing, ", ")))
	}
	if len(r.Extra) > 0 {
		fs := make([]string, len(r.Extra))
		for i, e := range r.Extra {
			fs[i] = fmt.Sprintf("%s (first in record %d, line %d)", e.Field, e.Record, e.Line)
		}
		where := "dropped"
		if r.ExtraColumn != "" {
			where = "kept in column " + r.ExtraColumn
		}
		parts = append(parts, "undeclared fields "+where+": "+strings.Join(fs, ", "))
	}
	return strings.Join(parts, "; ")
}

// Object returns an ObjectMapper for one object.
func (m *Mapper) Object() *ObjectMapper {
	o := &ObjectMapper{m: m, present: make([]bool, len(m.cols))}
	if m.opts.Extra != ExtraIgnore {
		o.seen = make([]map[string]struct{}, m.nodes)
	}
	return o
}

// Row is Mapper.Row, keeping the object's bookkeeping.
func (o *ObjectMapper) Row(rec Record) ([]any, error) {
	o.records++
	return o.m.row(rec, o)
}

// sawExtra records undeclared key k of the object at node n in rec.
func (o *ObjectMapper) sawExtra(rec Record, n *pathNode, k string) {
	s := o.seen[n.idx]
	if _, ok := s[k]; ok {
		return
	}
	if s == nil {
		s = map[string]struct{}{}
		o.seen[n.idx] = s
	}
	s[k] = struct{}{}
	o.extra = append(o.extra, ExtraField{Field: dotted(n, k), Record: rec.N, Line: rec.Line})
}

// Finish ends the object and returns its report. With OnMissing "error"
// and a declared field that no record had, it also returns a *RecordError
// naming the first such field. An object without records reports nothing
// missing.
func (o *ObjectMapper) Finish() (Report, error) {
	r := Report{Records: o.records, Extra: slices.Clone(o.extra)}
	if o.m.extraCol >= 0 {
		r.ExtraColumn = o.m.cols[o.m.extraCol].Name
	}
	// Fields first seen in the same record were found in map order.
	slices.SortStableFunc(r.Extra, func(a, b ExtraField) int {
		if a.Record != b.Record {
			return a.Record - b.Record
		}
		return strings.Compare(a.Field, b.Field)
	})
	if o.records > 0 {
		for i, ok := range o.present {
			if !ok && i != o.m.extraCol {
				r.Missing = append(r.Missing, o.m.labels[i])
			}
		}
	}
	if len(r.Missing) > 0 && o.m.opts.OnMissing == MissingError {
		return r, &RecordError{Column: r.Missing[0], Err: fmt.Errorf("the declared field occurs in none of the object's %d records; check its spelling and path in the spec, or set on_missing to warn", o.records)}
	}
	return r, nil
}

// castValue casts a decoded JSON (or CSV) value to the Go value of t.
func castValue(t driver.Type, v any) (any, error) {
	switch t {
	case driver.BigInt:
		return castInt(t, v, math.MinInt64, math.MaxInt64)
	case driver.Integer:
		return castInt(t, v, math.MinInt32, math.MaxInt32)
	case driver.Double:
		return castDouble(v)
	case driver.Text:
		if s, ok := v.(string); ok && strings.IndexByte(s, 0) >= 0 {
			return nil, fmt.Errorf("text %w", errNUL)
		}
		return castText(v)
	case driver.Boolean:
		switch v := v.(type) {
		case bool:
			return v, nil
		case string:
			switch v {
			case "true":
				return true, nil
			case "false":
				return false, nil
			}
		}
		return nil, wantGot(t, v, "")
	case driver.Timestamp:
		return castTimestamp(v)
	case driver.Date:
		if s, ok := v.(string); ok {
			if d, err := time.Parse(time.DateOnly, s); err == nil {
				return d, nil
			}
			return nil, wantGot(t, v, "want YYYY-MM-DD")
		}
		return nil, wantGot(t, v, "")
	case driver.JSON:
		out, err := compactJSON(v)
		// The encoder spells NUL as \u0000; look closer only then.
		if err == nil && strings.Contains(out.(string), `\u0000`) && hasNUL(v) {
			return nil, fmt.Errorf("json %w", errNUL)
		}
		return out, err
	}
	return nil, fmt.Errorf("unknown column type %q", t)
}

// errNUL refuses NUL characters in text and json values: PostgreSQL cannot
// store them (SQLite can), so the same data would load into one warehouse
// and not into the other.
var errNUL = errors.New("contains a NUL character (\\u0000), which PostgreSQL cannot store")

// hasNUL reports whether a decoded JSON value holds a string or object key
// with a NUL character.
func hasNUL(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.IndexByte(v, 0) >= 0
	case []any:
		for _, x := range v {
			if hasNUL(x) {
				return true
			}
		}
	case map[string]any:
		for k, x := range v {
			if hasNUL(k) || hasNUL(x) {
				return true
			}
		}
	}
	return false
}

// castInt casts v to an int64 within [lo, hi].
func castInt(t driver.Type, v any, lo, hi int64) (any, error) {
	var n int64
	switch v := v.(type) {
	case int64:
		n = v
	case int:
		n = int64(v)
	case string:
		var err error
		if n, err = strconv.ParseInt(v, 10, 64); err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return nil, wantGot(t, v, "out of range")
			}
			return nil, wantGot(t, v, "")
		}
	case json.Number, float64:
		var s string
		if f, ok := v.(float64); ok {
			if math.IsInf(f, 0) || math.IsNaN(f) {
				return nil, wantGot(t, v, "")
			}
			s = strconv.FormatFloat(f, 'g', -1, 64)
		} else {
			s = v.(json.Number).String()
		}
		d, ok := parseDecimal(s)
		if !ok {
			return nil, wantGot(t, v, "")
		}
		whole, frac, ok := d.split(19)
		switch {
		case !ok:
			return nil, wantGot(t, v, "out of range")
		case frac != "":
			return nil, wantGot(t, v, "not a whole number")
		}
		var err error
		if n, err = strconv.ParseInt(d.sign()+whole, 10, 64); err != nil {
			return nil, wantGot(t, v, "out of range")
		}
	default:
		return nil, wantGot(t, v, "")
	}
	if n < lo || n > hi {
		return nil, wantGot(t, v, "out of range")
	}
	return n, nil
}

// decimal is a number split into sign, significant digits and a power of
// ten: value = ±digits × 10^exp. Zero has no digits.
type decimal struct {
	neg    bool
	digits string
	exp    int64
}

// maxExp bounds exponents, so that "1e999999999" costs nothing: any
// larger exponent is out of every range here.
const maxExp = 1 << 20

// parseDecimal parses [+-]digits[.digits][(e|E)[+-]digits].
func parseDecimal(s string) (decimal, bool) {
	var d decimal
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		d.neg = s[i] == '-'
		i++
	}
	intStart := i
	for i < len(s) && '0' <= s[i] && s[i] <= '9' {
		i++
	}
	intPart := s[intStart:i]
	var fracPart string
	if i < len(s) && s[i] == '.' {
		i++
		fracStart := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		fracPart = s[fracStart:i]
	}
	if intPart == "" && fracPart == "" {
		return d, false
	}
	var exp int64
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		neg := false
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			neg = s[i] == '-'
			i++
		}
		if i == len(s) {
			return d, false
		}
		for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
			if exp < maxExp {
				exp = exp*10 + int64(s[i]-'0')
			}
		}
		if neg {
			exp = -exp
		}
	}
	if i != len(s) {
		return d, false
	}
	digits := strings.TrimLeft(intPart+fracPart, "0")
	exp -= int64(len(fracPart))
	trimmed := strings.TrimRight(digits, "0")
	exp += int64(len(digits) - len(trimmed))
	if trimmed == "" {
		return decimal{}, true
	}
	d.digits, d.exp = trimmed, exp
	return d, true
}

// sign is "-" for negative numbers.
func (d decimal) sign() string {
	if d.neg {
		return "-"
	}
	return ""
}

// split returns the whole and fractional digits of |d|; false when the
// whole part has more than maxWhole digits.
func (d decimal) split(maxWhole int) (whole, frac string, ok bool) {
	if d.digits == "" {
		return "0", "", true
	}
	k := int64(len(d.digits)) + d.exp // digits before the point
	switch {
	case k > int64(maxWhole):
		return "", "", false
	case d.exp >= 0:
		return d.digits + strings.Repeat("0", int(d.exp)), "", true
	case k <= 0:
		if k < -10 { // only the first nine fractional digits matter
			k = -10
		}
		return "0", strings.Repeat("0", int(-k)) + d.digits, true
	default:
		return d.digits[:k], d.digits[k:], true
	}
}

// castDouble casts v to a finite float64.
func castDouble(v any) (any, error) {
	var s string
	switch v := v.(type) {
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, wantGot(driver.Double, v, "not finite")
		}
		return v, nil
	case int64:
		return float64(v), nil
	case int:
		return float64(v), nil
	case json.Number:
		s = v.String()
	case string:
		s = v
	default:
		return nil, wantGot(driver.Double, v, "")
	}
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return nil, wantGot(driver.Double, v, "out of range")
	case err != nil:
		return nil, wantGot(driver.Double, v, "")
	case math.IsInf(f, 0) || math.IsNaN(f):
		return nil, wantGot(driver.Double, v, "not finite")
	}
	return f, nil
}

// castText casts a scalar to its text.
func castText(v any) (any, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	case bool:
		return strconv.FormatBool(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case int:
		return strconv.Itoa(v), nil
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, wantGot(driver.Text, v, "")
		}
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	}
	return nil, wantGot(driver.Text, v, "use a json column for objects and arrays")
}

// castTimestamp casts an RFC 3339 string or Unix seconds to a UTC time.
func castTimestamp(v any) (any, error) {
	var s string
	switch v := v.(type) {
	case string:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return nil, wantGot(driver.Timestamp, v, "want RFC 3339, e.g. 2006-01-02T15:04:05Z")
		}
		return t.UTC(), nil
	case json.Number:
		s = v.String()
	case int64:
		s = strconv.FormatInt(v, 10)
	case int:
		s = strconv.Itoa(v)
	case float64:
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return nil, wantGot(driver.Timestamp, v, "")
		}
		s = strconv.FormatFloat(v, 'g', -1, 64)
	default:
		return nil, wantGot(driver.Timestamp, v, "")
	}
	d, ok := parseDecimal(s)
	if !ok {
		return nil, wantGot(driver.Timestamp, v, "")
	}
	whole, frac, ok := d.split(12)
	if !ok {
		return nil, wantGot(driver.Timestamp, v, "out of range: years 0001 to 9999")
	}
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return nil, wantGot(driver.Timestamp, v, "")
	}
	frac = (frac + "000000000")[:9] // truncated to nanoseconds
	nsec, _ := strconv.ParseInt(frac, 10, 64)
	if d.neg {
		sec, nsec = -sec, -nsec
	}
	ts := time.Unix(sec, nsec).UTC()
	if y := ts.Year(); y < 1 || y > 9999 {
		return nil, wantGot(driver.Timestamp, v, "out of range: years 0001 to 9999")
	}
	return ts, nil
}

// compactJSON encodes v as compact JSON without HTML escaping.
func compactJSON(v any) (any, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("want json, cannot encode %s: %w", describe(v), err)
	}
	return string(bytes.TrimSuffix(b.Bytes(), newline)), nil
}

// wantGot reports a failed cast of v to t, with an optional detail.
func wantGot(t any, v any, detail string) error {
	if detail != "" {
		return fmt.Errorf("want %s, got %s (%s)", t, describe(v), detail)
	}
	return fmt.Errorf("want %s, got %s", t, describe(v))
}

// describe names a decoded value's JSON type and shows short scalars.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return "string " + quoteShort(v)
	case json.Number:
		return "number " + shorten(v.String())
	case float64, int64, int:
		return fmt.Sprintf("number %v", v)
	case bool:
		return fmt.Sprintf("boolean %t", v)
	case map[string]any:
		return "object"
	case []any:
		return "array"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// quoteShort quotes s, cut to 40 runes.
func quoteShort(s string) string {
	return strconv.Quote(shorten(s))
}

func shorten(s string) string {
	const limit = 40
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	n := 0
	for i := range s {
		if n == limit {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// Schema returns the columns of the batches the mapper produces, in order.
func (m *Mapper) Schema() []schema.Column {
	out := make([]schema.Column, len(m.cols))
	for i, c := range m.cols {
		out[i] = schema.Column{Name: c.Name, Type: c.Type}
	}
	return out
}

// Options returns the mapper's policies, with defaults filled in.
func (m *Mapper) Options() MapperOptions { return m.opts }
