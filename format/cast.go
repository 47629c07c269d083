package format

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unsafe"

	"github.com/sluicehq/sluice/schema"
)

// CastString converts a CSV value to kind k.
//
// The empty string is nil (null) for every kind, string included: CSV
// cannot tell an empty value from a missing one, and the reference
// hydropower pipeline writes an empty Code as null.
//
// Other values (Go types in brackets): integer (int32) and bigint (int64)
// are base-10 integers within range (a leading + or - allowed); real
// (float32) and double (float64) are finite decimal numbers
// (strconv.ParseFloat with bit size 32 or 64; NaN, Inf and out-of-range
// values are errors); boolean (bool) is anything strconv.ParseBool accepts
// (true, TRUE, True, t, 1 and their false forms); date is YYYY-MM-DD;
// timestamp is RFC 3339 (2006-01-02T15:04:05Z07:00), or
// 2006-01-02T15:04:05 / 2006-01-02 15:04:05 (fraction optional) read as
// UTC; json (string) is valid JSON text. Surrounding spaces are not
// trimmed: " 1" is not an integer. Aliases (int32, ...) are taken for
// their canonical types.
//
// Errors name the type and quote the value: `want integer, got "abc"`.
// Callers add the line and column (a *RecordError).
func CastString(k schema.Type, s string) (any, error) {
	k = k.Canonical()
	if s == "" {
		return nil, nil
	}
	switch k {
	case schema.Text:
		return s, nil
	case schema.Integer:
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return nil, castErr(k, s, err)
		}
		return int32(n), nil
	case schema.BigInt:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, castErr(k, s, err)
		}
		return n, nil
	case schema.Real:
		f, err := parseFinite(s, 32)
		if err != nil {
			return nil, castErr(k, s, err)
		}
		return float32(f), nil
	case schema.Double:
		f, err := parseFinite(s, 64)
		if err != nil {
			return nil, castErr(k, s, err)
		}
		return f, nil
	case schema.Boolean:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, castErr(k, s, nil)
		}
		return b, nil
	case schema.Date:
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return nil, fmt.Errorf("want date (YYYY-MM-DD), got %s", quoteShort(s))
		}
		return d, nil
	case schema.JSON:
		if !json.Valid([]byte(s)) {
			return nil, fmt.Errorf("want json, got %s (not valid JSON)", quoteShort(s))
		}
		return s, nil
	case schema.Timestamp:
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.UTC(), nil
		}
		for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t, nil
			}
		}
		return nil, fmt.Errorf("want timestamp (RFC 3339, e.g. 2006-01-02T15:04:05Z), got %s", quoteShort(s))
	}
	return nil, fmt.Errorf("unknown column kind %q", k)
}

var errNotFinite = errors.New("not finite")

// parseFinite parses a finite float of the given bit size.
func parseFinite(s string, bits int) (float64, error) {
	f, err := strconv.ParseFloat(s, bits)
	if err != nil {
		return 0, err
	}
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, errNotFinite
	}
	return f, nil
}

// castErr reports a failed cast of s to k; err adds "out of range" or
// "not finite" when that is the reason.
func castErr(k schema.Type, s string, err error) error {
	switch {
	case errors.Is(err, strconv.ErrRange):
		return fmt.Errorf("want %s, got %s (out of range)", k, quoteShort(s))
	case errors.Is(err, errNotFinite):
		return fmt.Errorf("want %s, got %s (not finite)", k, quoteShort(s))
	}
	return fmt.Errorf("want %s, got %s", k, quoteShort(s))
}

// AppendCast casts b, a CSV value, to v's type exactly as CastString does
// (the empty value is NULL; the errors are the same) and appends it to v,
// without allocating: numbers are parsed from the bytes in place (integers
// by hand, common decimals by parseFloatFast, the rest by strconv, so
// every float has the bits strconv.ParseFloat gives it) and text is copied
// into v's arena. On error v is unchanged. Callers casting many values of
// one type take the function from Caster once instead.
func AppendCast(v *schema.Vector, b []byte) error { return Caster(v.Type)(v, b) }

// Caster returns AppendCast for vectors of type t, chosen once (a Type is a
// string: comparing it per value costs more than some casts).
func Caster(t schema.Type) func(v *schema.Vector, b []byte) error {
	switch t.Canonical() {
	case schema.Text:
		return vecText
	case schema.Integer:
		return vecInt32
	case schema.BigInt:
		return vecInt64
	case schema.Real:
		return vecReal
	case schema.Double:
		return vecDouble
	}
	return vecOther
}

func vecText(v *schema.Vector, b []byte) error {
	if len(b) == 0 {
		v.AppendNull()
		return nil
	}
	v.AppendText(b)
	return nil
}

func vecInt32(v *schema.Vector, b []byte) error { return vecInt(v, b, 32) }
func vecInt64(v *schema.Vector, b []byte) error { return vecInt(v, b, 64) }

func vecInt(v *schema.Vector, b []byte, bits int) error {
	if len(b) == 0 {
		v.AppendNull()
		return nil
	}
	n, ok := parseDigits(b, bits)
	if !ok {
		s := unsafe.String(&b[0], len(b)) // read only, and not kept
		var err error
		if n, err = strconv.ParseInt(s, 10, bits); err != nil {
			return castErr(v.Type.Canonical(), s, err)
		}
	}
	v.AppendInt(n)
	return nil
}

func vecReal(v *schema.Vector, b []byte) error   { return vecFloat(v, b, 32) }
func vecDouble(v *schema.Vector, b []byte) error { return vecFloat(v, b, 64) }

func vecFloat(v *schema.Vector, b []byte, bits int) error {
	if len(b) == 0 {
		v.AppendNull()
		return nil
	}
	if f, ok := parseFloatFast(b, bits == 32); ok {
		v.AppendFloat(f)
		return nil
	}
	s := unsafe.String(&b[0], len(b))
	f, err := parseFinite(s, bits)
	if err != nil {
		return castErr(v.Type.Canonical(), s, err)
	}
	v.AppendFloat(f)
	return nil
}

// loadCaster is Caster for a load into a warehouse: it also refuses a NUL
// character in text and json values, as the JSON mapper does (errNUL),
// because PostgreSQL cannot store one. A curated Parquet file can, so the
// curate job's casts (Caster) keep it.
func loadCaster(t schema.Type) func(v *schema.Vector, b []byte) error {
	switch t.Canonical() {
	case schema.Text:
		return loadText
	case schema.JSON:
		return loadJSON
	}
	return Caster(t)
}

func loadText(v *schema.Vector, b []byte) error {
	if bytes.IndexByte(b, 0) >= 0 {
		return fmt.Errorf("text %w", errNUL)
	}
	return vecText(v, b)
}

// loadJSON refuses the escape \u0000 in valid JSON text (a raw NUL
// byte is not valid JSON).
func loadJSON(v *schema.Vector, b []byte) error {
	if err := vecOther(v, b); err != nil {
		return err
	}
	if bytes.Contains(b, []byte(`\u0000`)) {
		v.Truncate(v.Len() - 1)
		return fmt.Errorf("json %w", errNUL)
	}
	return nil
}

// vecOther casts the rarer types through CastString.
func vecOther(v *schema.Vector, b []byte) error {
	if len(b) == 0 {
		v.AppendNull()
		return nil
	}
	x, err := CastString(v.Type, unsafe.String(&b[0], len(b)))
	if err != nil {
		return err
	}
	switch x := x.(type) {
	case bool:
		v.AppendBool(x)
	case time.Time:
		v.AppendTime(x)
	case string: // json, valid
		v.AppendText(b)
	default:
		return fmt.Errorf("unknown column kind %q", v.Type)
	}
	return nil
}

// parseDigits parses an optionally signed run of at most 18 decimal
// digits that fits in bits; ok is false for anything else, which
// strconv.ParseInt then decides (and reports).
func parseDigits(b []byte, bits int) (n int64, ok bool) {
	neg := false
	switch b[0] {
	case '-':
		neg = true
		b = b[1:]
	case '+':
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	if bits == 32 && (n < math.MinInt32 || n > math.MaxInt32) {
		return 0, false
	}
	return n, true
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// parseFloatFast parses the common decimal forms ([+-]digits[.digits]
// [e[+-]digits], at most 19 significant digits, a power of ten within
// ±22) and returns exactly what strconv.ParseFloat returns for them, or
// ok == false for strconv to decide. It exists because strconv spends most
// of its time on the general syntax (profile of the hydropower curate run:
// 13 % of the CPU in ParseFloat, most of it in readFloat).
//
// Exactness: m × 10^e with m < 2^64 and |e| <= 22 is computed in float64
// with two roundings, so it is within 4 units in the last place (ulp) of
// the true value. For a float64 result (f32 false) that is exact only
// when m <= 2^53 (Clinger's fast path: one rounding, as strconv does).
// For a float32 result, rounding to float32 keeps the top 24 of float64's
// 53 bits; the true value and the approximation round the same way unless
// a float32 rounding midpoint lies between them, that is unless the
// approximation's 29 dropped bits are within 4 ulp of the midpoint. Those
// (within 16, one in 2^24 values) go to strconv.
func parseFloatFast(b []byte, f32 bool) (float64, bool) {
	i, neg := 0, false
	switch b[0] {
	case '-':
		neg, i = true, 1
	case '+':
		i = 1
	}
	var m uint64
	nd, exp := 0, 0
	digits, dot := false, false
digits:
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case c >= '0' && c <= '9':
			digits = true
			if dot {
				exp--
			}
			if c == '0' && nd == 0 {
				continue // a leading zero
			}
			if nd == 19 {
				return 0, false
			}
			m = m*10 + uint64(c-'0')
			nd++
		case c == '.' && !dot:
			dot = true
		default:
			break digits
		}
	}
	if !digits {
		return 0, false
	}
	if i < len(b) {
		if b[i] != 'e' && b[i] != 'E' {
			return 0, false
		}
		i++
		eneg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			eneg = b[i] == '-'
			i++
		}
		if i == len(b) {
			return 0, false
		}
		e := 0
		for ; i < len(b); i++ {
			c := b[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			if e < 1000 {
				e = e*10 + int(c-'0')
			}
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	x := 0.0
	if m != 0 {
		if exp < -22 || exp > 22 {
			return 0, false
		}
		if !f32 && m > 1<<53 {
			return 0, false
		}
		x = float64(m)
		if exp < 0 {
			x /= pow10[-exp]
		} else {
			x *= pow10[exp]
		}
		if f32 {
			const mid = 1 << 28
			if low := math.Float64bits(x) & (1<<29 - 1); low > mid-16 && low < mid+16 {
				return 0, false
			}
			r := float32(x)
			if math.IsInf(float64(r), 0) {
				return 0, false // strconv reports the range error
			}
			x = float64(r)
		}
	}
	if neg {
		x = -x
	}
	return x, true
}
