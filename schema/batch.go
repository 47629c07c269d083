package schema

import (
	"context"
	"fmt"
	"io"
	"time"
	"unsafe"
)

// Vector holds the values of one column of a Batch. Exactly one of the
// value slices is used, by the column's Type (see the Type constants); it
// and Null have one entry per row of the batch. A NULL row's value slot
// holds the zero value (text: an empty string).
type Vector struct {
	Type  Type
	Null  []bool
	Int   []int64
	Float []float64
	Bool  []bool
	Time  []time.Time
	// Text and JSON values: value i is Bytes[Off[i]:Off[i+1]]; Off has
	// one entry more than the batch has rows (Off[0] == 0).
	Bytes []byte
	Off   []int32
}

// Reset empties v, keeping its memory, for a column of type t.
func (v *Vector) Reset(t Type) {
	v.Type = t
	v.Null = v.Null[:0]
	v.Int = v.Int[:0]
	v.Float = v.Float[:0]
	v.Bool = v.Bool[:0]
	v.Time = v.Time[:0]
	v.Bytes = v.Bytes[:0]
	v.Off = append(v.Off[:0], 0)
}

// Len returns the number of values.
func (v *Vector) Len() int { return len(v.Null) }

// AppendNull appends a NULL.
func (v *Vector) AppendNull() {
	v.Null = append(v.Null, true)
	v.appendZero()
}

func (v *Vector) appendZero() {
	switch {
	case v.Type.IsInt():
		v.Int = append(v.Int, 0)
	case v.Type.IsFloat():
		v.Float = append(v.Float, 0)
	case v.Type == Boolean:
		v.Bool = append(v.Bool, false)
	case v.Type.IsTime():
		v.Time = append(v.Time, time.Time{})
	default:
		v.Off = append(v.Off, int32(len(v.Bytes)))
	}
}

// AppendInt appends an integer (Integer, BigInt).
func (v *Vector) AppendInt(n int64) {
	v.Null = append(v.Null, false)
	v.Int = append(v.Int, n)
}

// AppendFloat appends a float (Real, Double).
func (v *Vector) AppendFloat(f float64) {
	v.Null = append(v.Null, false)
	v.Float = append(v.Float, f)
}

// AppendBool appends a boolean.
func (v *Vector) AppendBool(b bool) {
	v.Null = append(v.Null, false)
	v.Bool = append(v.Bool, b)
}

// AppendTime appends a date or timestamp (UTC).
func (v *Vector) AppendTime(t time.Time) {
	v.Null = append(v.Null, false)
	v.Time = append(v.Time, t)
}

// AppendText appends text or JSON bytes (copied into the arena).
func (v *Vector) AppendText(b []byte) {
	v.Null = append(v.Null, false)
	v.Bytes = append(v.Bytes, b...)
	v.Off = append(v.Off, int32(len(v.Bytes)))
}

// AppendString appends text or JSON (copied into the arena).
func (v *Vector) AppendString(s string) {
	v.Null = append(v.Null, false)
	v.Bytes = append(v.Bytes, s...)
	v.Off = append(v.Off, int32(len(v.Bytes)))
}

// TextBytes returns text value i; it aliases the arena.
func (v *Vector) TextBytes(i int) []byte { return v.Bytes[v.Off[i]:v.Off[i+1]] }

// TextString returns text value i as a string that aliases the arena: it
// is valid only until the vector is reset or appended to. Copy it
// (strings.Clone) to keep it.
func (v *Vector) TextString(i int) string {
	b := v.TextBytes(i)
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// Truncate drops the values from row n on (n <= Len), for a decoder that
// set aside a half-appended row.
func (v *Vector) Truncate(n int) {
	v.Null = v.Null[:n]
	switch {
	case v.Type.IsInt():
		v.Int = v.Int[:n]
	case v.Type.IsFloat():
		v.Float = v.Float[:n]
	case v.Type == Boolean:
		v.Bool = v.Bool[:n]
	case v.Type.IsTime():
		v.Time = v.Time[:n]
	default:
		v.Off = v.Off[:n+1]
		v.Bytes = v.Bytes[:v.Off[n]]
	}
}

// Value returns value i boxed (nil for NULL; int64, float64, bool,
// time.Time, or a copied string), for tests, messages and slow paths —
// never for the hot path.
func (v *Vector) Value(i int) any {
	if v.Null[i] {
		return nil
	}
	switch {
	case v.Type.IsInt():
		return v.Int[i]
	case v.Type.IsFloat():
		return v.Float[i]
	case v.Type == Boolean:
		return v.Bool[i]
	case v.Type.IsTime():
		return v.Time[i]
	}
	return string(v.TextBytes(i))
}

// Reject is a record a decoder set aside: it is not among the Batch's
// rows. Quarantine stores it; otherwise it fails the load.
type Reject struct {
	N, Line int64  // record number (1-based) and line (0: unknown)
	Reason  string // what is wrong, naming the column: "column id (bigint): want an integer, got \"x\""
	Raw     string // the record as written (JSON) or as values, for quarantine
}

// Batch is a block of consecutive records of one object, column by column.
type Batch struct {
	Columns []Column // the columns, shared by every batch of a stream; not modified
	Vecs    []Vector // one per column
	// N and Line are, per row, the record number in the object (1-based;
	// they increase within a stream) and its line (0: unknown).
	N, Line []int64
	// Rejects are records of this stretch of the object that were set
	// aside instead of becoming rows.
	Rejects []Reject
	// Bytes is how many bytes of input the batch's records took, for
	// progress and throughput figures.
	Bytes int64
}

// NewBatch returns an empty batch for cols.
func NewBatch(cols []Column) *Batch {
	b := &Batch{Columns: cols, Vecs: make([]Vector, len(cols))}
	b.Reset()
	return b
}

// Reset empties b, keeping its memory.
func (b *Batch) Reset() {
	for j := range b.Vecs {
		b.Vecs[j].Reset(b.Columns[j].Type)
	}
	b.N, b.Line, b.Rejects, b.Bytes = b.N[:0], b.Line[:0], b.Rejects[:0], 0
}

// Len returns the number of rows.
func (b *Batch) Len() int { return len(b.N) }

// EndRow records the row whose values were just appended to every vector.
func (b *Batch) EndRow(n, line int64) {
	b.N = append(b.N, n)
	b.Line = append(b.Line, line)
}

// Row returns row i boxed (see Vector.Value); for tests and slow paths.
func (b *Batch) Row(i int) []any {
	out := make([]any, len(b.Vecs))
	for j := range b.Vecs {
		out[j] = b.Vecs[j].Value(i)
	}
	return out
}

// Check verifies that every vector has one value per row and the type of
// its column, so that a consumer can index without checking again.
func (b *Batch) Check() error {
	if len(b.Vecs) != len(b.Columns) {
		return fmt.Errorf("batch has %d vectors for %d columns", len(b.Vecs), len(b.Columns))
	}
	n := len(b.N)
	if len(b.Line) != n {
		return fmt.Errorf("batch has %d line numbers for %d rows", len(b.Line), n)
	}
	for j := range b.Vecs {
		v, c := &b.Vecs[j], b.Columns[j]
		if v.Type != c.Type {
			return fmt.Errorf("column %s (%s): vector holds %s", c.Name, c.Type, v.Type)
		}
		got := -1
		switch {
		case c.Type.IsInt():
			got = len(v.Int)
		case c.Type.IsFloat():
			got = len(v.Float)
		case c.Type == Boolean:
			got = len(v.Bool)
		case c.Type.IsTime():
			got = len(v.Time)
		case c.Type.IsText():
			got = len(v.Off) - 1
		}
		if len(v.Null) != n || got != n {
			return fmt.Errorf("column %s (%s): %d values and %d null flags for %d rows", c.Name, c.Type, got, len(v.Null), n)
		}
	}
	return nil
}

// Reader streams the batches of one object. Next returns io.EOF after the
// last batch. The batch it returns is valid until the next call to Next (a
// reader reuses its memory); a consumer that needs rows longer copies them.
// Close releases the reader (and stops a decoder that runs ahead); it is
// safe to call after an error or before the end.
type Reader interface {
	Next(ctx context.Context) (*Batch, error)
	Close() error
}

// AppendValue appends a Go value — nil, an integer, a float, a bool, a
// time.Time, a string or []byte — converting it to v's type, or returns
// an error naming what it got. It is for tests and slow paths.
func (v *Vector) AppendValue(x any) error {
	if x == nil {
		v.AppendNull()
		return nil
	}
	switch {
	case v.Type.IsInt():
		switch n := x.(type) {
		case int64:
			v.AppendInt(n)
		case int:
			v.AppendInt(int64(n))
		case int32:
			v.AppendInt(int64(n))
		default:
			return fmt.Errorf("want an integer, got %T", x)
		}
	case v.Type.IsFloat():
		switch f := x.(type) {
		case float64:
			v.AppendFloat(f)
		case float32:
			v.AppendFloat(float64(f))
		default:
			return fmt.Errorf("want a float, got %T", x)
		}
	case v.Type == Boolean:
		b, ok := x.(bool)
		if !ok {
			return fmt.Errorf("want a bool, got %T", x)
		}
		v.AppendBool(b)
	case v.Type.IsTime():
		t, ok := x.(time.Time)
		if !ok {
			return fmt.Errorf("want a time.Time, got %T", x)
		}
		v.AppendTime(t.UTC())
	case v.Type.IsText():
		switch s := x.(type) {
		case string:
			v.AppendString(s)
		case []byte:
			v.AppendText(s)
		default:
			return fmt.Errorf("want a string, got %T", x)
		}
	default:
		return fmt.Errorf("unknown column type %q", v.Type)
	}
	return nil
}

// FromRows returns a Reader of rows held in memory (numbered from 1), in
// batches of at most size rows (0: 1024). It is for tests and small loads.
func FromRows(cols []Column, rows [][]any, size int) (Reader, error) {
	if size <= 0 {
		size = 1024
	}
	var batches []*Batch
	for i := 0; i < len(rows); i += size {
		b := NewBatch(cols)
		for k, r := range rows[i:min(i+size, len(rows))] {
			if len(r) != len(cols) {
				return nil, fmt.Errorf("row %d has %d values for %d columns", i+k+1, len(r), len(cols))
			}
			for j, x := range r {
				if err := b.Vecs[j].AppendValue(x); err != nil {
					return nil, fmt.Errorf("row %d, column %s (%s): %w", i+k+1, cols[j].Name, cols[j].Type, err)
				}
			}
			b.EndRow(int64(i+k+1), 0)
		}
		batches = append(batches, b)
	}
	return &sliceReader{batches: batches}, nil
}

type sliceReader struct {
	batches []*Batch
	i       int
}

func (r *sliceReader) Next(ctx context.Context) (*Batch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if r.i >= len(r.batches) {
		return nil, io.EOF
	}
	r.i++
	return r.batches[r.i-1], nil
}

func (r *sliceReader) Close() error { return nil }
