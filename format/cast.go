package format

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Kind is the type of a curated (Parquet) column, spelled as in pipeline
// specs.
type Kind string

// Kinds and the Go values CastString returns for them.
const (
	String    Kind = "string"    // string
	Int32     Kind = "int32"     // int32
	Int64     Kind = "int64"     // int64
	Float32   Kind = "float32"   // float32
	Float64   Kind = "float64"   // float64
	Bool      Kind = "bool"      // bool
	Date      Kind = "date"      // time.Time, midnight UTC
	Timestamp Kind = "timestamp" // time.Time, UTC
)

var kinds = []Kind{String, Int32, Int64, Float32, Float64, Bool, Date, Timestamp}

// ParseKind returns the Kind spelled s (exactly, e.g. "int32").
func ParseKind(s string) (Kind, error) {
	for _, k := range kinds {
		if string(k) == s {
			return k, nil
		}
	}
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k)
	}
	return "", fmt.Errorf("format: unknown column kind %q (want one of %s)", s, strings.Join(names, ", "))
}

// CastString converts a CSV value to kind k.
//
// The empty string is nil (null) for every kind, string included: CSV
// cannot tell an empty value from a missing one, and the reference
// hydropower pipeline writes an empty Code as null.
//
// Other values: int32 and int64 are base-10 integers within range (a
// leading + or - allowed); float32 and float64 are finite decimal numbers
// (strconv.ParseFloat with bit size 32 or 64; NaN, Inf and out-of-range
// values are errors); bool is anything strconv.ParseBool accepts (true,
// TRUE, True, t, 1 and their false forms); date is YYYY-MM-DD; timestamp
// is RFC 3339 (2006-01-02T15:04:05Z07:00), or 2006-01-02T15:04:05 /
// 2006-01-02 15:04:05 (fraction optional) read as UTC. Surrounding spaces
// are not trimmed: " 1" is not an int32.
//
// Errors name the kind and quote the value: `want int32, got "abc"`.
// Callers add the line and column (a *RecordError).
func CastString(k Kind, s string) (any, error) {
	if s == "" {
		return nil, nil
	}
	switch k {
	case String:
		return s, nil
	case Int32:
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil {
			return nil, castErr(k, s, err)
		}
		return int32(n), nil
	case Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, castErr(k, s, err)
		}
		return n, nil
	case Float32:
		f, err := parseFinite(s, 32)
		if err != nil {
			return nil, castErr(k, s, err)
		}
		return float32(f), nil
	case Float64:
		f, err := parseFinite(s, 64)
		if err != nil {
			return nil, castErr(k, s, err)
		}
		return f, nil
	case Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, castErr(k, s, nil)
		}
		return b, nil
	case Date:
		d, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return nil, fmt.Errorf("want date (YYYY-MM-DD), got %s", quoteShort(s))
		}
		return d, nil
	case Timestamp:
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
func castErr(k Kind, s string, err error) error {
	switch {
	case errors.Is(err, strconv.ErrRange):
		return fmt.Errorf("want %s, got %s (out of range)", k, quoteShort(s))
	case errors.Is(err, errNotFinite):
		return fmt.Errorf("want %s, got %s (not finite)", k, quoteShort(s))
	}
	return fmt.Errorf("want %s, got %s", k, quoteShort(s))
}
