package format

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sluicehq/sluice/schema"
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
	Type schema.Type
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
	// Path; for example Column{Name: "_extra", Type: schema.JSON}.
	ExtraColumn string
}

// Mapper says how records become the rows of typed columnar batches: which
// field or path feeds each column, the casts, and the policies for missing
// and undeclared fields. The decoders apply it while they parse (see
// mapping.go), so no record is ever held as a map. A Mapper is immutable
// once built and safe for concurrent use.
type Mapper struct {
	cols     []Column
	labels   []string // per column: the path joined with "." (for messages)
	extraCol int      // index of MapperOptions.ExtraColumn, or -1
	opts     MapperOptions
	tree     *pathNode // the declared paths
	nodes    int       // number of pathNodes
	batches  *batchPool
}

// pathNode is one key of the declared paths.
type pathNode struct {
	idx      int    // in 0..Mapper.nodes-1
	name     string // dotted path of the node ("" for the root)
	leaf     bool   // a column takes the whole value: nothing below is extra
	children map[string]*pathNode
	parent   *pathNode
	cols     []int // the columns that take this node's whole value
	sub      []int // every column at or below this node, in column order
	// few lists the children when there are few of them, for child.
	few []childKey
}

// childKey is a child of a node and its key, with the key's first eight
// bytes as a number to compare.
type childKey struct {
	key  string
	head uint64
	node *pathNode
}

// maxFew is the most children child scans instead of hashing the key.
const maxFew = 16

// keyHead returns the first (up to) eight bytes of k as a number.
func keyHead[S string | []byte](k S) uint64 {
	if len(k) >= 8 {
		return uint64(k[0]) | uint64(k[1])<<8 | uint64(k[2])<<16 | uint64(k[3])<<24 |
			uint64(k[4])<<32 | uint64(k[5])<<40 | uint64(k[6])<<48 | uint64(k[7])<<56
	}
	var h uint64
	for i := min(len(k), 8) - 1; i >= 0; i-- {
		h = h<<8 | uint64(k[i])
	}
	return h
}

// child returns the child of n at key k, or nil: a key is compared by
// length and first eight bytes before the rest, which costs less than
// hashing it when a node has a handful of children.
func (n *pathNode) child(k []byte) *pathNode {
	if len(n.children) > maxFew {
		return n.children[string(k)]
	}
	h := keyHead(k)
	for i := range n.few {
		c := &n.few[i]
		if c.head == h && len(c.key) == len(k) && (len(k) <= 8 || c.key[8:] == string(k[8:])) {
			return c.node
		}
	}
	return nil
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
			if c.Field != "" || len(c.Path) > 0 || c.Type != schema.JSON || c.Required {
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
		case schema.BigInt, schema.Integer, schema.Double, schema.Text, schema.Boolean, schema.Timestamp, schema.Date, schema.JSON:
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
			m.declare(c.Path, i)
		}
	}
	if m.opts.ExtraColumn != "" && m.extraCol < 0 {
		return nil, fmt.Errorf("format: extra column %q is not among the columns; declare it with type json", m.opts.ExtraColumn)
	}
	m.batches = newBatchPool(m.Schema())
	return m, nil
}

// declare adds path, the path of column col, to the tree of declared
// paths.
func (m *Mapper) declare(path []string, col int) {
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
			child = &pathNode{idx: m.nodes, name: name, parent: n}
			m.nodes++
			n.children[seg] = child
			n.few = append(n.few, childKey{key: seg, head: keyHead(seg), node: child})
		}
		n = child
		n.sub = append(n.sub, col)
	}
	n.leaf = true
	n.cols = append(n.cols, col)
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

// ExtraField is an undeclared field and where it first occurred.
type ExtraField struct {
	// Field is the field's path joined with ".", e.g. "address.zipcode".
	Field string
	// Record and Line locate the first record that had it.
	Record, Line int
}

// Report is what the mapper found in one object, for the caller to log and
// count (Reader.Report).
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
	// MoreExtra says the object had more undeclared fields than Extra
	// lists (MaxExtraListed).
	MoreExtra bool
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
			name := e.Field
			if len(name) > 200 {
				name = strings.ToValidUTF8(name[:200], "") + "…"
			}
			fs[i] = fmt.Sprintf("%s (first in record %d, line %d)", name, e.Record, e.Line)
		}
		where := "dropped"
		if r.ExtraColumn != "" {
			where = "kept in column " + r.ExtraColumn
		}
		more := ""
		if r.MoreExtra {
			more = fmt.Sprintf(", and more (only the first %d are listed)", MaxExtraListed)
		}
		parts = append(parts, "undeclared fields "+where+": "+strings.Join(fs, ", ")+more)
	}
	return strings.Join(parts, "; ")
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
