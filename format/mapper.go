package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/warehouse/driver"
)

// Column maps a record field to a warehouse column.
type Column struct {
	// Field is the record's field name (exact, case-sensitive).
	Field string
	// Name is the column name; empty means Field.
	Name string
	// Type is the column type.
	Type driver.Type
	// Required makes a missing field or a JSON null an error instead of
	// NULL.
	Required bool
}

// Mapper converts records to warehouse rows. It is safe for concurrent
// use.
type Mapper struct {
	cols []Column
}

// NewMapper checks cols (a field for every column, known types, unique
// column names) and returns a Mapper for them.
func NewMapper(cols []Column) (*Mapper, error) {
	if len(cols) == 0 {
		return nil, errors.New("format: no columns to map")
	}
	m := &Mapper{cols: make([]Column, len(cols))}
	seen := make(map[string]int, len(cols))
	for i, c := range cols {
		if c.Field == "" {
			return nil, fmt.Errorf("format: column %d (%q) has no field", i+1, c.Name)
		}
		if c.Name == "" {
			c.Name = c.Field
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
	}
	return m, nil
}

// Columns returns the mapper's columns, with empty names filled in.
func (m *Mapper) Columns() []Column { return append([]Column(nil), m.cols...) }

// Row converts rec to one value per column, in column order, as
// warehouse/driver expects them: int64 for bigint and integer, float64 for
// double, string for text and json, bool for boolean, time.Time (UTC) for
// timestamp and date (midnight UTC). A missing field or a JSON null is nil
// (an error when the column is Required). Fields without a column are
// ignored.
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
// from rec and Column set to the field name, for example
// `record 5 (line 30): column userId: want bigint, got string "abc"`.
func (m *Mapper) Row(rec Record) ([]any, error) {
	row := make([]any, len(m.cols))
	for i, c := range m.cols {
		v, present := rec.Fields[c.Field]
		if v == nil {
			if c.Required {
				what := "missing"
				if present {
					what = "null"
				}
				return nil, &RecordError{Record: rec.N, Line: rec.Line, Column: c.Field, Err: fmt.Errorf("required field is %s", what)}
			}
			continue
		}
		out, err := castValue(c.Type, v)
		if err != nil {
			return nil, &RecordError{Record: rec.N, Line: rec.Line, Column: c.Field, Err: err}
		}
		row[i] = out
	}
	return row, nil
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
