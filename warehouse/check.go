package warehouse

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/sluicehq/sluice/schema"
	"github.com/sluicehq/sluice/warehouse/driver"
)

// checker is the schema.Reader Load hands the backend: it checks the
// batches of b.Rows as they stream by (see Load), column by column over
// the typed vectors, never boxing a value on the way. A batch whose rows
// all pass goes through untouched; with Quarantine, one with bad rows is
// copied without them (into memory the checker reuses) and the bad rows
// join its Rejects; otherwise the first bad row (by record number, among
// the checks' and the decoder's rejects) ends the stream with an error
// wrapping ErrInvalidData.
type checker struct {
	src        schema.Reader
	t          Table
	notNull    []bool // primary key and (merge) OrderBy columns
	quarantine bool
	err        error // the error that refused the stream, once returned

	reasons []string      // per row of the current batch: why it is bad ("": good)
	bad     int           // rows of the current batch with a reason
	own     *schema.Batch // the copy of a batch without its bad rows
}

func newChecker(b Batch) *checker {
	c := &checker{src: b.Rows, t: b.Table, quarantine: b.OnBadRow == Quarantine}
	c.notNull = make([]bool, len(b.Table.Columns))
	for j, col := range b.Table.Columns {
		c.notNull[j] = slices.Contains(b.Table.PrimaryKey, col.Name) || col.Name == b.Table.OrderBy && b.Mode == Merge
	}
	return c
}

// Next implements schema.Reader.
func (c *checker) Next(ctx context.Context) (*schema.Batch, error) {
	if c.err != nil {
		return nil, c.err
	}
	if c.src == nil {
		return nil, io.EOF
	}
	b, err := c.src.Next(ctx)
	if err != nil {
		return nil, err
	}
	if err := c.shape(b); err != nil {
		c.err = err
		return nil, err
	}
	c.check(b)
	if !c.quarantine {
		first, ok := driver.FirstReject(b)
		if c.bad > 0 {
			i := slices.IndexFunc(c.reasons, func(s string) bool { return s != "" })
			if r := (schema.Reject{N: b.N[i], Line: b.Line[i], Reason: c.reasons[i]}); !ok || r.N < first.N {
				first, ok = r, true
			}
		}
		if ok {
			c.err = fmt.Errorf("%w: %s (set on_bad_record: quarantine in the load's spec to load the good rows and keep the bad ones in %s%s)",
				ErrInvalidData, driver.RejectReason(first), c.t.Name, RejectedSuffix)
			return nil, c.err
		}
		return b, nil
	}
	if c.bad == 0 {
		return b, nil
	}
	return c.without(b), nil
}

// Close implements schema.Reader; the caller closes b.Rows itself.
func (c *checker) Close() error { return nil }

// shape checks that b has the table's columns and consistent vectors, so
// that the checks and the backend can index without checking again.
func (c *checker) shape(b *schema.Batch) error {
	where := "a batch"
	if n := b.Len(); n > 0 {
		where = fmt.Sprintf("the batch of rows %d to %d", b.N[0], b.N[n-1])
	}
	if len(b.Columns) != len(c.t.Columns) {
		return fmt.Errorf("%w: %s has %d columns, the table %s has %d (the decoder's columns must be the table's)", ErrInvalidData, where, len(b.Columns), c.t.Name, len(c.t.Columns))
	}
	for j, col := range c.t.Columns {
		if got := b.Columns[j].Type.Canonical(); got != col.Type {
			return fmt.Errorf("%w: %s: column %d (%s) is %s, but %s in table %s", ErrInvalidData, where, j+1, col.Name, got, col.Type, c.t.Name)
		}
	}
	if err := b.Check(); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalidData, where, err)
	}
	return nil
}

// errNUL explains why text with a NUL character is refused on every backend.
var errNUL = errors.New("contains a NUL character (\\u0000), which PostgreSQL cannot store; remove it from the data")

// check sets c.reasons (and c.bad) for the rows of b that fail Load's
// checks; the first failing column of a row gives its reason.
func (c *checker) check(b *schema.Batch) {
	c.bad = 0
	n := b.Len()
	for j, col := range c.t.Columns {
		v := &b.Vecs[j]
		mark := func(i int, format string, args ...any) {
			if c.bad == 0 {
				c.reasons = slices.Grow(c.reasons[:0], n)[:n]
				clear(c.reasons)
			}
			if c.reasons[i] == "" {
				c.reasons[i] = fmt.Sprintf("column %s (%s): ", col.Name, col.Type) + fmt.Sprintf(format, args...)
				c.bad++
			}
		}
		if c.notNull[j] && slices.Contains(v.Null, true) {
			what := "primary key column is null"
			if col.Name == c.t.OrderBy && !slices.Contains(c.t.PrimaryKey, col.Name) {
				what = "order_by column is null"
			}
			for i, null := range v.Null {
				if null {
					mark(i, "%s", what)
				}
			}
		}
		switch col.Type {
		case schema.Integer:
			for i, x := range v.Int {
				if x < math.MinInt32 || x > math.MaxInt32 {
					mark(i, "%d does not fit a 32-bit integer (use bigint)", x)
				}
			}
		case schema.Real:
			for i, f := range v.Float {
				if (f > math.MaxFloat32 || f < -math.MaxFloat32) && !math.IsInf(f, 0) {
					mark(i, "%g does not fit a 32-bit float (use double)", f)
				}
			}
		case schema.Text:
			checkText(v, n, mark)
		case schema.JSON:
			for i := range n {
				if v.Null[i] {
					continue
				}
				s := v.TextBytes(i)
				switch {
				case !json.Valid(s):
					mark(i, "invalid JSON %.40q", s)
				case !utf8.Valid(s):
					mark(i, "JSON %.40q is not valid UTF-8", s)
				case jsonHasNUL(s):
					mark(i, "JSON %v", errNUL)
				}
			}
		}
	}
}

// checkText marks the values of a text vector that hold a NUL character
// or are not valid UTF-8. It looks at the whole arena at once: a NUL is
// found with one IndexByte and mapped to its row; if the arena is valid
// UTF-8 and no value starts inside a character (with a continuation byte),
// every value is valid, so only an invalid arena is checked value by value.
func checkText(v *schema.Vector, n int, mark func(int, string, ...any)) {
	data := v.Bytes
	for from := 0; ; {
		k := bytes.IndexByte(data[from:], 0)
		if k < 0 {
			break
		}
		pos := from + k
		i := sort.Search(n, func(i int) bool { return int(v.Off[i+1]) > pos })
		mark(i, "text %v", errNUL)
		from = int(v.Off[i+1])
	}
	valid := utf8.Valid(data)
	for i := 1; valid && i < n; i++ {
		if o := int(v.Off[i]); o < len(data) && !utf8.RuneStart(data[o]) {
			valid = false
		}
	}
	if valid {
		return
	}
	for i := range n {
		if s := v.TextBytes(i); !utf8.Valid(s) {
			mark(i, "text %.40q is not valid UTF-8", s)
		}
	}
}

// jsonHasNUL reports whether valid JSON text s has a string (or object key)
// holding a NUL character, which JSON can only spell as the escape \u0000.
func jsonHasNUL(s []byte) bool {
	if !bytes.Contains(s, []byte(`\u0000`)) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(s))
	for {
		tok, err := dec.Token()
		if err != nil { // io.EOF: s was checked to be valid JSON
			return false
		}
		if str, ok := tok.(string); ok && strings.IndexByte(str, 0) >= 0 {
			return true
		}
	}
}

// without returns a copy of b without its bad rows, which join its
// Rejects (with their values as JSON for the raw record).
func (c *checker) without(b *schema.Batch) *schema.Batch {
	if c.own == nil {
		c.own = schema.NewBatch(c.t.Columns)
	}
	o := c.own
	o.Reset()
	o.Columns = b.Columns
	o.Bytes = b.Bytes
	o.Rejects = append(o.Rejects, b.Rejects...)
	for i := range b.Len() {
		if c.reasons[i] != "" {
			o.Rejects = append(o.Rejects, schema.Reject{N: b.N[i], Line: b.Line[i], Reason: c.reasons[i], Raw: rawRow(b, i)})
			continue
		}
		for j := range b.Vecs {
			copyValue(&o.Vecs[j], &b.Vecs[j], i)
		}
		o.EndRow(b.N[i], b.Line[i])
	}
	return o
}

// copyValue appends value i of src to dst (of the same type).
func copyValue(dst, src *schema.Vector, i int) {
	switch t := src.Type; {
	case src.Null[i]:
		dst.AppendNull()
	case t.IsInt():
		dst.AppendInt(src.Int[i])
	case t.IsFloat():
		dst.AppendFloat(src.Float[i])
	case t == schema.Boolean:
		dst.AppendBool(src.Bool[i])
	case t.IsTime():
		dst.AppendTime(src.Time[i])
	default:
		dst.AppendText(src.TextBytes(i))
	}
}

// rawRow is row i of b as a JSON array, for the quarantine table's raw
// record of a row the checks refused.
func rawRow(b *schema.Batch, i int) string {
	row := b.Row(i)
	if out, err := json.Marshal(row); err == nil {
		return string(out)
	}
	return fmt.Sprint(row)
}
