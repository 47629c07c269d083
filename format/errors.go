package format

import (
	"strconv"
	"strings"
)

// RecordError is an error about the data at one place in a decoded input.
// Unknown positions are zero. Its message leads with the position, for
// example
//
//	record 37 (line 412, byte 20481): unexpected end of JSON input: the object is truncated
//	line 12: 3 fields, header has 4
//	record 5 (line 30): column userId: want bigint, got string "abc"
type RecordError struct {
	// Record is the 1-based record number (JSON: element of the array or
	// object of the stream; CSV: data row, 1 = first row after the
	// header), or 0 when the error is not inside one record or the
	// record is not counted (a CSV syntax error or limit; CSVParser
	// locates errors by Line only).
	Record int
	// Line is the 1-based line of the offending byte (or of the record,
	// for cast errors), or 0 when unknown.
	Line int
	// Offset is the 1-based position of the offending byte in the
	// decompressed input, as encoding/json.SyntaxError.Offset counts it
	// (for truncated input: the input's length), or 0 when unknown.
	Offset int64
	// Column is the field (JSON) or header name (CSV) of the offending
	// value, when the error concerns one value.
	Column string
	// Err says what is wrong.
	Err error
}

// Error implements error.
func (e *RecordError) Error() string {
	var b strings.Builder
	switch {
	case e.Record > 0:
		b.WriteString("record ")
		b.WriteString(strconv.Itoa(e.Record))
		switch {
		case e.Line > 0 && e.Offset > 0:
			b.WriteString(" (line " + strconv.Itoa(e.Line) + ", byte " + strconv.FormatInt(e.Offset, 10) + ")")
		case e.Line > 0:
			b.WriteString(" (line " + strconv.Itoa(e.Line) + ")")
		case e.Offset > 0:
			b.WriteString(" (byte " + strconv.FormatInt(e.Offset, 10) + ")")
		}
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line))
		if e.Offset > 0 {
			b.WriteString(", byte " + strconv.FormatInt(e.Offset, 10))
		}
	case e.Offset > 0:
		b.WriteString("byte " + strconv.FormatInt(e.Offset, 10))
	}
	if e.Column != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString("column " + e.Column)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("invalid data")
	}
	return b.String()
}

// Unwrap returns Err.
func (e *RecordError) Unwrap() error { return e.Err }
