// Package schema is sluice's one vocabulary of column types, columns and
// typed, columnar record batches. Decoders (package format) produce
// Batches, the curate job reads and writes them, warehouses (package
// warehouse and its drivers) consume them, and pipeline specs name their
// columns with these Types.
//
// Types are spelled as in SQL — integer, bigint, real, double, text,
// boolean, date, timestamp, json — and Parse also accepts the spellings
// curate specs used before this package existed (int32, int64, float32,
// float64, string, bool), so existing specs keep validating.
//
// A Batch holds up to a few thousand rows column by column, each column in
// a Vector of its Go type (int64, float64, bool, time.Time or text bytes
// in one arena), so that no value is boxed in an interface on the way from
// the decoder to the database.
package schema

import (
	"fmt"
	"slices"
	"strings"
)

// Type is a column type.
type Type string

// The column types and the Vector field that holds their values.
const (
	Integer   Type = "integer"   // 32-bit signed integer; Vector.Int
	BigInt    Type = "bigint"    // 64-bit signed integer; Vector.Int
	Real      Type = "real"      // 32-bit float; Vector.Float (rounded to float32 when cast)
	Double    Type = "double"    // 64-bit float; Vector.Float
	Text      Type = "text"      // UTF-8 text without NUL; Vector text arena
	Boolean   Type = "boolean"   // Vector.Bool
	Date      Type = "date"      // a calendar day; Vector.Time at midnight UTC
	Timestamp Type = "timestamp" // an instant; Vector.Time in UTC
	JSON      Type = "json"      // JSON text; Vector text arena
)

// Types lists every Type in a stable order (for messages).
var Types = []Type{Integer, BigInt, Real, Double, Text, Boolean, Date, Timestamp, JSON}

// aliases are the other accepted spellings: those of curate specs before
// this package (Parquet's physical names). They parse to the canonical Type.
var aliases = map[string]Type{
	"int32": Integer, "int64": BigInt, "float32": Real, "float64": Double,
	"string": Text, "bool": Boolean,
}

// Aliases returns the accepted spellings that are not canonical names,
// mapped to their Type.
func Aliases() map[string]Type {
	out := make(map[string]Type, len(aliases))
	for k, v := range aliases {
		out[k] = v
	}
	return out
}

// Names returns the canonical spellings, in Types order.
func Names() []string {
	out := make([]string, len(Types))
	for i, t := range Types {
		out[i] = string(t)
	}
	return out
}

// Parse returns the Type spelled s: a canonical name or an alias, exactly
// (case-sensitive, as specs are).
func Parse(s string) (Type, error) {
	if t := Type(s); t.Valid() {
		return t, nil
	}
	if t, ok := aliases[s]; ok {
		return t, nil
	}
	return "", fmt.Errorf("unknown column type %q (want one of %s)", s, strings.Join(Names(), ", "))
}

// Valid reports whether t is a canonical Type.
func (t Type) Valid() bool { return slices.Contains(Types, t) }

// IsInt reports whether values of t live in Vector.Int.
func (t Type) IsInt() bool { return t == Integer || t == BigInt }

// IsFloat reports whether values of t live in Vector.Float.
func (t Type) IsFloat() bool { return t == Real || t == Double }

// IsText reports whether values of t live in the Vector's text arena.
func (t Type) IsText() bool { return t == Text || t == JSON }

// IsTime reports whether values of t live in Vector.Time.
func (t Type) IsTime() bool { return t == Date || t == Timestamp }

// Column is a named, typed column.
type Column struct {
	Name string
	Type Type
}

// Canonical returns the canonical Type of t when t is an alias
// ("int32" → integer), and t itself otherwise.
func (t Type) Canonical() Type {
	if c, ok := aliases[string(t)]; ok {
		return c
	}
	return t
}
