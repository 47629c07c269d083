package format

import (
	"bytes"
	"context"
	"io"
	"math"
	"slices"
)

// defaultChunk is the size of the chunks an NDJSON object is cut into for
// parallel parsing: big enough that handing one over costs nothing next to
// parsing it, small enough that the chunks in flight stay a few MiB.
const defaultChunk = serialBuffer

// chunkSize is the size of the chunks a parallel decoder cuts.
func (o *ReadOptions) chunkSize() int {
	if o.chunkBytes > 0 {
		return o.chunkBytes
	}
	return defaultChunk
}

// ndChunk is a stretch of an NDJSON object that starts at a line start,
// and what parsing it gave.
type ndChunk struct {
	buf  []byte // owns data
	data []byte
	off  int64 // input offset of data[0]
	line int64 // line of data[0]
	last bool  // the input ends after data
	rerr error // with last: why the input ended (nil: it simply did)

	chunkBatches
	t        *tally
	records  int   // records parsed (rows and rejects)
	err      error // what stopped the parse
	tail     int   // >= 0: data[tail:] is a record the chunk cuts
	tailLine int64
}

// parse parses the chunk with its records numbered from base+1, at most
// maxRecords in the object.
func (c *ndChunk) parse(o *ReadOptions, lim Limits, base int64, maxRecords int64) {
	m := o.Mapper
	c.t = m.newTally()
	lim.MaxRecords = maxRecords
	d := newJSONDecoder(o, lim, m, c.t, c)
	d.kind = InputNDJSON
	d.buf, d.end, d.base, d.line, d.lastEnd = c.data, len(c.data), c.off, c.line, c.off
	d.n = base
	d.cut = !c.last
	if c.last {
		d.rerr = c.rerr
		if d.rerr == nil {
			d.rerr = io.EOF
		}
	}
	c.tail = -1
	err := d.objects()
	if err == errCut {
		c.tail, c.tailLine, err = d.pos, d.line, nil
	}
	c.records, c.err = c.t.records, err
	c.dropEmpty()
}

// decodeNDJSONParallel decodes the objects of d's input from d's position
// on: a splitter cuts the input into chunks at line ends, o.Workers
// goroutines parse them, and the batches are handed to s in order.
func decodeNDJSONParallel(ctx context.Context, d *jsonDecoder, o *ReadOptions, lim Limits, t *tally, s *sink) (Report, error) {
	size := o.chunkSize()
	getBuf := func(n int) []byte {
		if size == defaultChunk && n <= size {
			return getReadBuf()
		}
		return make([]byte, max(n, size))
	}
	pending := slices.Clone(d.buf[d.pos:d.end])
	off, line := d.off(), d.line
	src, rerr := d.src, d.rerr
	produce := func(send func(*ndChunk) error) error {
		for {
			c := &ndChunk{off: off, line: line, chunkBatches: chunkBatches{rows: o.BatchRows, pool: s.pool}}
			c.buf = getBuf(len(pending))
			n := copy(c.buf, pending)
			for empty := 0; n < len(c.buf) && rerr == nil; {
				k, err := src.Read(c.buf[n:])
				n += k
				if err != nil {
					rerr = err
				} else if k == 0 {
					if empty++; empty == 100 {
						rerr = io.ErrNoProgress
					}
				}
			}
			c.data = c.buf[:n]
			pending = pending[:0]
			if rerr == nil {
				if k := bytes.LastIndexByte(c.data, '\n'); k >= 0 {
					pending = append(pending, c.data[k+1:]...)
					c.data = c.data[:k+1]
				}
			} else {
				c.last = true
				if rerr != io.EOF {
					c.rerr = rerr
				}
			}
			off += int64(len(c.data))
			line += int64(bytes.Count(c.data, newline))
			if err := send(c); err != nil {
				return err
			}
			if c.last {
				return nil
			}
		}
	}
	work := func(c *ndChunk) { c.parse(o, lim, 0, math.MaxInt64) }

	var base int64
	var carry []byte
	var carryOff, carryLine int64
	consume := func(c *ndChunk) error {
		if carry != nil || base+int64(c.records) > lim.MaxRecords || c.err != nil && base+int64(c.records) >= lim.MaxRecords {
			// The speculative parse is void: the chunk continues a record
			// of the one before, or holds the record over the limit (or
			// stopped at an error where the limit may come first, as a
			// serial read checks the limit before parsing a record).
			c.release()
			j := &ndChunk{off: c.off, line: c.line, last: c.last, rerr: c.rerr, chunkBatches: chunkBatches{rows: c.rows, pool: c.pool}}
			if carry != nil {
				j.data = append(carry, c.data...)
				j.off, j.line = carryOff, carryLine
			} else {
				j.data = c.data
			}
			j.buf = c.buf
			j.parse(o, lim, base, lim.MaxRecords)
			t.merge(j.t, 0)
			c = j
		} else {
			c.renumber(base, c.err)
			t.merge(c.t, int(base))
		}
		if err := c.sendTo(s); err != nil {
			return err
		}
		base += int64(c.records)
		if c.err != nil {
			return c.err
		}
		carry = nil
		if c.tail >= 0 {
			carry = slices.Clone(c.data[c.tail:])
			carryOff, carryLine = c.off+int64(c.tail), c.tailLine
		}
		putReadBuf(c.buf)
		return nil
	}
	if err := ordered(ctx, o.Workers, o.Workers+1, produce, work, consume); err != nil {
		return Report{}, err
	}
	return o.Mapper.finish(t)
}
