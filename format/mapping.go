package format

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/sluicehq/sluice/schema"
)

// This file applies a Mapper while a record is parsed: the parser (json.go)
// hands each value of a declared field to recMap as a token — its bytes as
// written — and recMap casts it straight into the column's vector of the
// batch. Nothing is boxed and no record is held as a map.
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
//   - json: any value, as compact JSON text (object keys sorted, duplicate
//     keys resolved to the last, no HTML escaping — what encoding/json
//     makes of the value decoded into an any), without NUL characters in
//     its strings and keys.
//
// A missing field, a JSON null, or a path through a missing or null object
// is NULL (an error when the column is Required); a path through a value
// that is not an object is an error. When a key occurs twice in an object,
// the last occurrence counts, as when encoding/json decodes into a map.
// When a record has several problems, the first column in column order
// names it; undeclared fields (extra: error) come after every column.
//
// The report: every record counts in Report.Records, refused ones too, and
// a declared field is present when any record has its key (null
// included); undeclared fields are reported from the records that map.

// token is one JSON value as written, for a cast.
type token struct {
	kind byte   // '"' string, '0' number, 't' true, 'f' false, '{' object, '[' array
	raw  []byte // the value as written (a string with its quotes)
	esc  bool   // a string with escapes
	nul  bool   // a string with a \u0000 escape
}

// column states within one record.
const (
	stAbsent    = iota // no key (yet)
	stNull             // the key with null
	stValue            // a value, appended to the vector
	stErrParent        // a non-object on the way (errs holds why)
	stErrCast          // a value that cannot be cast (errs holds why)
)

// tally is the bookkeeping of an object (or of a stretch of it, merged in
// order): which declared fields occurred and which undeclared ones did.
type tally struct {
	records int
	present []bool                // per column: some record had the key
	seen    []map[string]struct{} // per path node: undeclared keys seen
	extra   []seenExtra           // in order of first appearance
	more    bool                  // undeclared keys past MaxExtraListed were not kept
}

// MaxExtraListed bounds the undeclared fields an object's report names:
// past it they are counted as "more", so that an object whose every record
// has a key of its own costs no memory per record.
const MaxExtraListed = 100

// seenExtra is an undeclared key k of the object at node n, first seen as
// f says.
type seenExtra struct {
	n *pathNode
	k string
	f ExtraField
}

func (m *Mapper) newTally() *tally {
	return &tally{present: make([]bool, len(m.cols)), seen: make([]map[string]struct{}, m.nodes)}
}

// merge adds u, the tally of the records after t's, whose record numbers
// count from base+1 in t's numbering.
func (t *tally) merge(u *tally, base int) {
	t.records += u.records
	for i, p := range u.present {
		t.present[i] = t.present[i] || p
	}
	t.more = t.more || u.more
	for _, e := range u.extra {
		if t.saw(e.n, e.k) {
			e.f.Record += base
			t.extra = append(t.extra, e)
		}
	}
}

// saw records key k of the object at node n; false when it was seen
// before.
func (t *tally) saw(n *pathNode, k string) bool {
	s := t.seen[n.idx]
	if _, ok := s[k]; ok {
		return false
	}
	if len(t.extra) >= MaxExtraListed {
		t.more = true
		return false
	}
	if s == nil {
		s = map[string]struct{}{}
		t.seen[n.idx] = s
	}
	s[k] = struct{}{}
	return true
}

// finish returns the report of an object from its tally, and with
// OnMissing "error" and a declared field that no record had a *RecordError
// naming the first such field. An object without records reports nothing
// missing.
func (m *Mapper) finish(t *tally) (Report, error) {
	r := Report{Records: t.records, MoreExtra: t.more}
	for _, e := range t.extra {
		r.Extra = append(r.Extra, e.f)
	}
	if m.extraCol >= 0 {
		r.ExtraColumn = m.cols[m.extraCol].Name
	}
	if t.records > 0 {
		for i, ok := range t.present {
			if !ok && i != m.extraCol {
				r.Missing = append(r.Missing, m.labels[i])
			}
		}
	}
	if len(r.Missing) > 0 && m.opts.OnMissing == MissingError {
		return r, &RecordError{Column: r.Missing[0], Err: fmt.Errorf("the declared field occurs in none of the object's %d records; check its spelling and path in the spec, or set on_missing to warn", t.records)}
	}
	return r, nil
}

// extraRef is an undeclared key of one record: key keys[k0:k1] of the
// object at node, with its value raw[v0:v1] of the record.
type extraRef struct {
	node           *pathNode
	k0, k1, v0, v1 int
}

// recMap maps the values of one record at a time into a batch.
type recMap struct {
	m      *Mapper
	b      *schema.Batch
	row    int
	st     []uint8
	errs   []error
	nseen  []uint32 // per node: gen when its key occurred in this record
	gen    uint32
	extras []extraRef
	keys   []byte // decoded keys of extras
	tmp    []byte // scratch: a decoded string
	t      *tally
}

func (m *Mapper) newRecMap(t *tally) *recMap {
	return &recMap{m: m, st: make([]uint8, len(m.cols)), errs: make([]error, len(m.cols)), nseen: make([]uint32, m.nodes), t: t}
}

// begin starts a record as row b.Len() of b; it may be called again for
// the same record (after the parser needed more input).
func (r *recMap) begin(b *schema.Batch) {
	r.b, r.row = b, b.Len()
	r.abort()
	clear(r.st)
	r.gen++
	if r.gen == 0 {
		clear(r.nseen)
		r.gen = 1
	}
	r.extras, r.keys = r.extras[:0], r.keys[:0]
}

// abort drops what the current record appended.
func (r *recMap) abort() {
	if r.b == nil {
		return
	}
	for j := range r.b.Vecs {
		if v := &r.b.Vecs[j]; v.Len() > r.row {
			v.Truncate(r.row)
		}
	}
}

// enter notes that the key of node n occurs; a second occurrence in the
// record replaces the first, so what the first set is dropped.
func (r *recMap) enter(n *pathNode) {
	if r.nseen[n.idx] != r.gen {
		r.nseen[n.idx] = r.gen
		return
	}
	for _, j := range n.sub {
		r.unset(j)
	}
	r.extras = slices.DeleteFunc(r.extras, func(e extraRef) bool {
		for p := e.node; p != nil; p = p.parent {
			if p == n {
				return true
			}
		}
		return false
	})
}

// unset forgets column j's value in this record.
func (r *recMap) unset(j int) {
	if v := &r.b.Vecs[j]; v.Len() > r.row {
		v.Truncate(r.row)
	}
	r.st[j] = stAbsent
}

// null sets the columns of n to NULL.
func (r *recMap) null(n *pathNode) {
	for _, j := range n.cols {
		r.st[j] = stNull
	}
}

// value casts t into the columns of n.
func (r *recMap) value(n *pathNode, t *token) {
	for _, j := range n.cols {
		if err := r.cast(j, t); err != nil {
			r.unset(j)
			r.st[j], r.errs[j] = stErrCast, err
			continue
		}
		r.st[j] = stValue
	}
}

// notObject fails the columns below n, whose value t is not an object.
func (r *recMap) notObject(n *pathNode, t *token) {
	if len(n.children) == 0 {
		return
	}
	err := fmt.Errorf("want an object at %s, got %s", n.name, r.describe(t))
	for _, j := range n.sub {
		if slices.Contains(n.cols, j) {
			continue
		}
		r.unset(j)
		r.st[j], r.errs[j] = stErrParent, err
	}
}

// extra notes undeclared key raw[k0:k1] (as written, with quotes) of the
// object at node n, with its value raw[v0:v1].
func (r *recMap) extra(n *pathNode, raw []byte, k0, k1, v0, v1 int) {
	kk := len(r.keys)
	r.keys = appendUnquoted(r.keys, raw[k0:k1])
	r.extras = append(r.extras, extraRef{node: n, k0: kk, k1: len(r.keys), v0: v0, v1: v1})
}

// end finishes the record, whose text is raw, as record n on line line: it
// appends the row, or returns why the mapper refuses the record (a
// *RecordError naming the column) and appends nothing.
func (r *recMap) end(raw []byte, n, line int64) *RecordError {
	m := r.m
	r.t.records++
	var rej *RecordError
	for j, c := range m.cols {
		if j == m.extraCol {
			continue
		}
		st := r.st[j]
		if st == stNull || st == stValue || st == stErrCast {
			r.t.present[j] = true
		}
		if rej != nil {
			continue
		}
		switch {
		case st == stErrParent || st == stErrCast:
			rej = &RecordError{Record: int(n), Line: int(line), Column: m.labels[j], Err: r.errs[j]}
		case c.Required && (st == stAbsent || st == stNull):
			what := "missing"
			if st == stNull {
				what = "null"
			}
			rej = &RecordError{Record: int(n), Line: int(line), Column: m.labels[j], Err: fmt.Errorf("required field is %s", what)}
		}
	}
	if rej == nil && len(r.extras) > 0 {
		rej = r.endExtras(raw, n, line)
	}
	if rej != nil {
		r.abort()
		return rej
	}
	for j := range r.b.Vecs {
		if v := &r.b.Vecs[j]; v.Len() == r.row {
			v.AppendNull()
		}
	}
	r.b.EndRow(n, line)
	return nil
}

// endExtras applies the Extra policy to the record's undeclared fields.
func (r *recMap) endExtras(raw []byte, n, line int64) *RecordError {
	m := r.m
	switch m.opts.Extra {
	case ExtraIgnore:
		return nil
	case ExtraError:
		names := make([]string, len(r.extras))
		for i, e := range r.extras {
			names[i] = dotted(e.node, string(r.keys[e.k0:e.k1]))
		}
		slices.Sort(names)
		return &RecordError{Record: int(n), Line: int(line), Column: names[0],
			Err: errors.New("the field is not declared; declare it as a column, or set extra to ignore, warn or json")}
	}
	// Report them in sorted order: fields first seen in the same record
	// are listed by name.
	fresh := 0
	for _, e := range r.extras {
		if _, ok := r.t.seen[e.node.idx][string(r.keys[e.k0:e.k1])]; !ok {
			fresh++
		}
	}
	if fresh > 0 {
		var found []seenExtra
		for _, e := range r.extras {
			k := string(r.keys[e.k0:e.k1])
			if r.t.saw(e.node, k) {
				found = append(found, seenExtra{e.node, k, ExtraField{Field: dotted(e.node, k), Record: int(n), Line: int(line)}})
			}
		}
		slices.SortFunc(found, func(a, b seenExtra) int { return strings.Compare(a.f.Field, b.f.Field) })
		r.t.extra = append(r.t.extra, found...)
	}
	if m.extraCol < 0 {
		return nil
	}
	v := &r.b.Vecs[m.extraCol]
	start := len(v.Bytes)
	var nul bool
	v.Bytes, nul = r.appendExtras(v.Bytes, raw, m.tree)
	if nul {
		v.Bytes = v.Bytes[:start]
		return &RecordError{Record: int(n), Line: int(line), Column: m.cols[m.extraCol].Name, Err: fmt.Errorf("json %w", errNUL)}
	}
	v.Null = append(v.Null, false)
	v.Off = append(v.Off, int32(len(v.Bytes)))
	return nil
}

// appendExtras appends the undeclared fields at node n and below as one
// JSON object with sorted keys (the last of duplicate keys counts).
func (r *recMap) appendExtras(dst, raw []byte, n *pathNode) ([]byte, bool) {
	type item struct {
		key   string
		e     *extraRef
		child *pathNode
	}
	var items []item
	for i := range r.extras {
		e := &r.extras[i]
		if e.node == n {
			items = append(items, item{key: string(r.keys[e.k0:e.k1]), e: e})
		}
	}
	for seg, c := range n.children {
		if r.hasExtras(c) {
			items = append(items, item{key: seg, child: c})
		}
	}
	slices.SortStableFunc(items, func(a, b item) int { return strings.Compare(a.key, b.key) })
	dst = append(dst, '{')
	nul := false
	first := true
	for i, it := range items {
		if i+1 < len(items) && items[i+1].key == it.key {
			continue // a later duplicate wins
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		nul = nul || strings.IndexByte(it.key, 0) >= 0
		dst = appendJSONString(dst, it.key)
		dst = append(dst, ':')
		var bad bool
		if it.child != nil {
			dst, bad = r.appendExtras(dst, raw, it.child)
		} else {
			dst, _, bad = appendCanonical(dst, raw[:it.e.v1], it.e.v0)
		}
		nul = nul || bad
	}
	return append(dst, '}'), nul
}

func (r *recMap) hasExtras(n *pathNode) bool {
	for _, e := range r.extras {
		for p := e.node; p != nil; p = p.parent {
			if p == n {
				return true
			}
		}
	}
	return false
}

// dotted names key k of the object at node n.
func dotted(n *pathNode, k string) string {
	if n.name == "" {
		return k
	}
	return n.name + "." + k
}

// text returns the contents of string token t, decoded (valid until the
// next call).
func (r *recMap) text(t *token) []byte {
	in := t.raw[1 : len(t.raw)-1]
	if !t.esc {
		return in
	}
	r.tmp = appendUnescaped(r.tmp[:0], in)
	return r.tmp
}

// describe names a token's JSON type and shows short scalars.
func (r *recMap) describe(t *token) string {
	switch t.kind {
	case '"':
		return "string " + quoteShort(string(r.text(t)))
	case '0':
		return "number " + shorten(string(t.raw))
	case 't':
		return "boolean true"
	case 'f':
		return "boolean false"
	case '{':
		return "object"
	}
	return "array"
}

// wantGot reports a failed cast to typ of the value described by got, with
// an optional detail.
func wantGot(typ schema.Type, got, detail string) error {
	if detail != "" {
		return fmt.Errorf("want %s, got %s (%s)", typ, got, detail)
	}
	return fmt.Errorf("want %s, got %s", typ, got)
}

// view returns b as a string without copying; it must not outlive b's
// contents.
func view(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// cast appends t, cast to column j's type, to column j's vector.
func (r *recMap) cast(j int, t *token) error {
	c := &r.m.cols[j]
	v := &r.b.Vecs[j]
	switch c.Type {
	case schema.BigInt:
		n, err := r.castInt(c.Type, t, math.MinInt64, math.MaxInt64)
		if err != nil {
			return err
		}
		v.AppendInt(n)
	case schema.Integer:
		n, err := r.castInt(c.Type, t, math.MinInt32, math.MaxInt32)
		if err != nil {
			return err
		}
		v.AppendInt(n)
	case schema.Double:
		f, err := r.castDouble(t)
		if err != nil {
			return err
		}
		v.AppendFloat(f)
	case schema.Text:
		switch t.kind {
		case '"':
			if t.nul {
				return fmt.Errorf("text %w", errNUL)
			}
			in := t.raw[1 : len(t.raw)-1]
			if t.esc {
				v.Bytes = appendUnescaped(v.Bytes, in)
			} else {
				v.Bytes = append(v.Bytes, in...)
			}
			v.Null = append(v.Null, false)
			v.Off = append(v.Off, int32(len(v.Bytes)))
		case '0':
			v.AppendText(t.raw)
		case 't':
			v.AppendString("true")
		case 'f':
			v.AppendString("false")
		default:
			return wantGot(c.Type, r.describe(t), "use a json column for objects and arrays")
		}
	case schema.Boolean:
		switch t.kind {
		case 't':
			v.AppendBool(true)
		case 'f':
			v.AppendBool(false)
		case '"':
			switch string(r.text(t)) {
			case "true":
				v.AppendBool(true)
			case "false":
				v.AppendBool(false)
			default:
				return wantGot(c.Type, r.describe(t), "")
			}
		default:
			return wantGot(c.Type, r.describe(t), "")
		}
	case schema.Timestamp:
		ts, err := r.castTimestamp(t)
		if err != nil {
			return err
		}
		v.AppendTime(ts)
	case schema.Date:
		if t.kind != '"' {
			return wantGot(c.Type, r.describe(t), "")
		}
		d, err := time.Parse(time.DateOnly, view(r.text(t)))
		if err != nil {
			return wantGot(c.Type, r.describe(t), "want YYYY-MM-DD")
		}
		v.AppendTime(d)
	case schema.JSON:
		start := len(v.Bytes)
		var nul bool
		v.Bytes, _, nul = appendCanonical(v.Bytes, t.raw, 0)
		if nul {
			v.Bytes = v.Bytes[:start]
			return fmt.Errorf("json %w", errNUL)
		}
		v.Null = append(v.Null, false)
		v.Off = append(v.Off, int32(len(v.Bytes)))
	default:
		return fmt.Errorf("unknown column type %q", c.Type)
	}
	return nil
}

// castInt casts t to an integer within [lo, hi].
func (r *recMap) castInt(typ schema.Type, t *token, lo, hi int64) (int64, error) {
	var n int64
	switch t.kind {
	case '0':
		if n, ok := parseDigits(t.raw, 64); ok { // a JSON integer of at most 18 digits
			if n < lo || n > hi {
				return 0, wantGot(typ, r.describe(t), "out of range")
			}
			return n, nil
		}
		d, ok := parseDecimal(view(t.raw))
		if !ok {
			return 0, wantGot(typ, r.describe(t), "")
		}
		whole, frac, ok := d.split(19)
		switch {
		case !ok:
			return 0, wantGot(typ, r.describe(t), "out of range")
		case frac != "":
			return 0, wantGot(typ, r.describe(t), "not a whole number")
		}
		var err error
		if n, err = strconv.ParseInt(d.sign()+whole, 10, 64); err != nil {
			return 0, wantGot(typ, r.describe(t), "out of range")
		}
	case '"':
		var err error
		if n, err = strconv.ParseInt(view(r.text(t)), 10, 64); err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return 0, wantGot(typ, r.describe(t), "out of range")
			}
			return 0, wantGot(typ, r.describe(t), "")
		}
	default:
		return 0, wantGot(typ, r.describe(t), "")
	}
	if n < lo || n > hi {
		return 0, wantGot(typ, r.describe(t), "out of range")
	}
	return n, nil
}

// castDouble casts t to a finite float64.
func (r *recMap) castDouble(t *token) (float64, error) {
	var s string
	switch t.kind {
	case '0':
		if f, ok := parseFloatFast(t.raw, false); ok {
			return f, nil
		}
		s = view(t.raw)
	case '"':
		s = view(r.text(t))
	default:
		return 0, wantGot(schema.Double, r.describe(t), "")
	}
	f, err := strconv.ParseFloat(s, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return 0, wantGot(schema.Double, r.describe(t), "out of range")
	case err != nil:
		return 0, wantGot(schema.Double, r.describe(t), "")
	case math.IsInf(f, 0) || math.IsNaN(f):
		return 0, wantGot(schema.Double, r.describe(t), "not finite")
	}
	return f, nil
}

// castTimestamp casts an RFC 3339 string or Unix seconds to a UTC time.
func (r *recMap) castTimestamp(t *token) (time.Time, error) {
	switch t.kind {
	case '"':
		ts, err := time.Parse(time.RFC3339Nano, view(r.text(t)))
		if err != nil {
			return time.Time{}, wantGot(schema.Timestamp, r.describe(t), "want RFC 3339, e.g. 2006-01-02T15:04:05Z")
		}
		return ts.UTC(), nil
	case '0':
	default:
		return time.Time{}, wantGot(schema.Timestamp, r.describe(t), "")
	}
	d, ok := parseDecimal(view(t.raw))
	if !ok {
		return time.Time{}, wantGot(schema.Timestamp, r.describe(t), "")
	}
	whole, frac, ok := d.split(12)
	if !ok {
		return time.Time{}, wantGot(schema.Timestamp, r.describe(t), "out of range: years 0001 to 9999")
	}
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return time.Time{}, wantGot(schema.Timestamp, r.describe(t), "")
	}
	frac = (frac + "000000000")[:9] // truncated to nanoseconds
	nsec, _ := strconv.ParseInt(frac, 10, 64)
	if d.neg {
		sec, nsec = -sec, -nsec
	}
	ts := time.Unix(sec, nsec).UTC()
	if y := ts.Year(); y < 1 || y > 9999 {
		return time.Time{}, wantGot(schema.Timestamp, r.describe(t), "out of range: years 0001 to 9999")
	}
	return ts, nil
}

// errNUL refuses NUL characters in text and json values: PostgreSQL cannot
// store them (SQLite can), so the same data would load into one warehouse
// and not into the other.
var errNUL = errors.New("contains a NUL character (\\u0000), which PostgreSQL cannot store")

// appendUnquoted appends the decoded contents of the JSON string s (with
// its quotes).
func appendUnquoted(dst, s []byte) []byte {
	in := s[1 : len(s)-1]
	if bytes.IndexByte(in, '\\') < 0 {
		return append(dst, in...)
	}
	return appendUnescaped(dst, in)
}

// appendUnescaped appends the decoded form of in, the contents of a valid
// JSON string, as encoding/json decodes it: escapes resolved, a \u escape
// of a lone or broken surrogate becomes U+FFFD.
func appendUnescaped(dst, in []byte) []byte {
	for len(in) > 0 {
		i := bytes.IndexByte(in, '\\')
		if i < 0 {
			return append(dst, in...)
		}
		dst = append(dst, in[:i]...)
		in = in[i:]
		switch c := in[1]; c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(in[2:6])
			in = in[6:]
			if utf16IsSurrogate(r) {
				if len(in) >= 6 && in[0] == '\\' && in[1] == 'u' {
					if r2 := hex4(in[2:6]); 0xd800 <= r && r < 0xdc00 && 0xdc00 <= r2 && r2 < 0xe000 {
						dst = utf8.AppendRune(dst, (r-0xd800)<<10|(r2-0xdc00)+0x10000)
						in = in[6:]
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
		in = in[2:]
	}
	return dst
}

func utf16IsSurrogate(r rune) bool { return 0xd800 <= r && r < 0xe000 }

// hex4 decodes four (valid) hexadecimal digits.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json writes
// one without HTML escaping.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendCanonical appends the valid JSON value at b[i] in the form
// encoding/json gives it once decoded into an any (UseNumber) and encoded
// without HTML escaping: compact, object keys sorted and deduplicated (the
// last wins), strings re-escaped, numbers as written. It returns the
// index after the value and whether a string or key holds a NUL.
func appendCanonical(dst, b []byte, i int) ([]byte, int, bool) {
	i = skipSpace(b, i)
	switch b[i] {
	case '{':
		type member struct {
			key        string
			val0, val1 int
		}
		var ms []member
		i = skipSpace(b, i+1)
		if b[i] == '}' {
			return append(dst, '{', '}'), i + 1, false
		}
		nul := false
		for {
			k0 := i
			i = skipString(b, i)
			key := string(appendUnquoted(nil, b[k0:i]))
			nul = nul || strings.IndexByte(key, 0) >= 0
			i = skipSpace(b, i) + 1 // ':'
			v0 := skipSpace(b, i)
			i = skipValue(b, v0)
			ms = append(ms, member{key, v0, i})
			i = skipSpace(b, i)
			if b[i] == '}' {
				i++
				break
			}
			i = skipSpace(b, i+1)
		}
		slices.SortStableFunc(ms, func(x, y member) int { return strings.Compare(x.key, y.key) })
		dst = append(dst, '{')
		first := true
		for k, mb := range ms {
			if k+1 < len(ms) && ms[k+1].key == mb.key {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = appendJSONString(dst, mb.key)
			dst = append(dst, ':')
			var bad bool
			dst, _, bad = appendCanonical(dst, b[:mb.val1], mb.val0)
			nul = nul || bad
		}
		return append(dst, '}'), i, nul
	case '[':
		dst = append(dst, '[')
		i = skipSpace(b, i+1)
		if b[i] == ']' {
			return append(dst, ']'), i + 1, false
		}
		nul := false
		for {
			var bad bool
			dst, i, bad = appendCanonical(dst, b, i)
			nul = nul || bad
			i = skipSpace(b, i)
			if b[i] == ']' {
				return append(dst, ']'), i + 1, nul
			}
			dst = append(dst, ',')
			i = skipSpace(b, i+1)
		}
	case '"':
		end := skipString(b, i)
		s := b[i:end]
		if bytes.IndexByte(s, '\\') < 0 && plainJSONString(s) {
			return append(dst, s...), end, false
		}
		u := appendUnquoted(nil, s)
		return appendJSONString(dst, view(u)), end, bytes.IndexByte(u, 0) >= 0
	default:
		end := skipValue(b, i)
		return append(dst, b[i:end]...), end, false
	}
}

// plainJSONString reports whether the string s (quotes included, no
// escapes) is written as encoding/json would write it: no U+2028 or
// U+2029.
func plainJSONString(s []byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0xe2 && i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xa8 || s[i+2] == 0xa9) {
			return false
		}
	}
	return true
}

// skipSpace, skipString and skipValue walk valid JSON (already checked by
// the parser).
func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

func skipString(b []byte, i int) int {
	for i++; ; i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
}

func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; ; i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\n', '\t', '\r':
			return i
		}
		i++
	}
	return i
}
