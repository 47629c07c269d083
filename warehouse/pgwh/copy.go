package pgwh

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sluicehq/sluice/schema"
	"github.com/sluicehq/sluice/warehouse/driver"
)

// copyStream is the binary COPY stream (PostgreSQL's "binary" COPY file
// format) of the rows of a batch stream, encoded straight from the typed
// vectors, for pgconn.PgConn.CopyFrom, which reads it in chunks of 64 KiB.
//
// Why by hand: pgx's CopyFrom takes rows as []any from a CopyFromSource,
// so every value of a batch would be boxed and then encoded through pgx's
// type map, and it asks the server to describe the table before each COPY
// (a round trip per batch where merge COPYs batch by batch). Encoding from
// the vectors appends fixed-width integers and the text arena's bytes with
// no per-value allocation. BenchmarkCopy (bench_test.go), 1,000,000
// posts-shaped rows (bigint, bigint, text, text; ~330 bytes of values a
// row) into a table without indexes, the three in turn on this shared
// 2-core machine:
//
//	                                            rows/s    client CPU/row
//	pgx CopyFrom, a CopyFromSource boxing       424,000   402 ns
//	this encoder through pgconn.CopyFrom        493,000   187 ns
//	psql \copy of the rows as CSV (reference)   328,000
//
// The server does most of the work, so wall time varies with the
// machine's load (in a busier run pgx was 15 % ahead, 93,000 against
// 81,000 rows/s); the client CPU, which a 2-core machine shares with the
// decoder and the server, was 2.1-2.7 times lower in every run.
// BenchmarkEncode: the encoder alone, 0.23 µs a row.
//
// The format: an 11-byte signature, a 32-bit flags field and a 32-bit
// header extension length (both 0); per row a 16-bit field count and per
// field a 32-bit length (-1 for NULL) and the value in the type's binary
// send format; a 16-bit -1 as trailer. All integers are big-endian.
type copyStream struct {
	ctx   context.Context
	src   schema.Reader
	types []schema.Type // the columns' types, in order
	// tail is appended to every row after the columns: the encoded
	// constant fields (hidden columns) of the load.
	tail    []byte
	ordinal bool // end every row with its record number (int8): merge staging
	// sel, when set, picks a batch's rows: only those with sel[i] !=
	// selNot are encoded (merge splits one batch between the table and
	// staging).
	sel    []bool
	selNot bool
	fields int16

	// pause, when set, ends the COPY at the end of a batch when it
	// returns true (the caller then writes the rejects pending in its
	// rejectTap, and starts another COPY for the rows that follow).
	pause func() bool

	// mu is held by Read: pgconn reads in its own goroutine, which it
	// does not always wait for when the COPY fails (a broken connection,
	// a cancelled ctx); abandon takes mu, so it waits for a Read under
	// way, and stops later ones from touching the source.
	mu        sync.Mutex
	abandoned bool

	buf     []byte
	off     int
	started bool // the header is written
	ended   bool // the trailer is written: Read returns io.EOF
	eof     bool // src is exhausted
	b       *schema.Batch
	i       int   // next row of b
	err     error // src's error
	rows    int64 // rows encoded
}

const copyChunk = 64 << 10

// copySignature starts the binary COPY format: the signature, flags and
// header extension length.
var copySignature = []byte("PGCOPY\n\xff\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

// newCopyStream returns the stream of src's rows with columns of types.
func newCopyStream(ctx context.Context, src schema.Reader, types []schema.Type) *copyStream {
	return &copyStream{ctx: ctx, src: src, types: types, fields: int16(len(types))}
}

// withText appends a constant text field to every row.
func (s *copyStream) withText(v string) {
	s.tail = binary.BigEndian.AppendUint32(s.tail, uint32(len(v)))
	s.tail = append(s.tail, v...)
	s.fields++
}

// withOrdinal ends every row with its record number.
func (s *copyStream) withOrdinal() {
	s.ordinal = true
	s.fields++
}

// abandon waits for a Read under way and makes later ones end at once.
func (s *copyStream) abandon() {
	s.mu.Lock()
	s.abandoned = true
	s.mu.Unlock()
}

// restart prepares the stream for another COPY of the rows that follow.
func (s *copyStream) restart() {
	s.started, s.ended = false, false
	s.buf, s.off = s.buf[:0], 0
}

// done reports whether every row of the source was encoded.
func (s *copyStream) done() bool { return s.eof }

// Read implements io.Reader for pgconn's CopyFrom.
func (s *copyStream) Read(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.abandoned {
		return 0, io.EOF
	}
	for s.off == len(s.buf) {
		if s.ended {
			return 0, io.EOF
		}
		if s.err != nil {
			return 0, s.err
		}
		s.buf, s.off = s.buf[:0], 0
		s.fill()
	}
	n := copy(p, s.buf[s.off:])
	s.off += n
	return n, nil
}

// fill encodes rows into s.buf until it holds about copyChunk bytes, the
// COPY ends, or the source fails.
func (s *copyStream) fill() {
	if !s.started {
		s.buf = append(s.buf, copySignature...)
		s.started = true
	}
	for len(s.buf) < copyChunk {
		if s.b != nil && s.i == s.b.Len() {
			s.b = nil
			if s.pause != nil && s.pause() {
				s.end()
				return
			}
		}
		if s.b == nil {
			if !s.next() {
				return
			}
			continue
		}
		s.encode()
	}
}

// next reads the next batch: false when the stream ended or failed.
func (s *copyStream) next() bool {
	b, err := s.src.Next(s.ctx)
	if errors.Is(err, io.EOF) {
		s.eof = true
		s.end()
		return false
	}
	if err != nil {
		s.err = err
		return false
	}
	s.b, s.i = b, 0
	return true
}

func (s *copyStream) end() {
	s.buf = append(s.buf, 0xff, 0xff)
	s.ended = true
}

// PostgreSQL's date and timestamp epoch, 2000-01-01 UTC, in Unix time.
const (
	pgEpochSeconds = 946_684_800
	pgEpochMicros  = pgEpochSeconds * 1_000_000
)

// encode appends rows of s.b from s.i on until the buffer is full or the
// batch ends.
func (s *copyStream) encode() {
	b, buf := s.b, s.buf
	n := b.Len()
	i := s.i
	be := binary.BigEndian
	for ; i < n && len(buf) < copyChunk; i++ {
		if s.sel != nil && s.sel[i] == s.selNot {
			continue
		}
		s.rows++
		buf = be.AppendUint16(buf, uint16(s.fields))
		for j, t := range s.types {
			v := &b.Vecs[j]
			if v.Null[i] {
				buf = be.AppendUint32(buf, math.MaxUint32) // -1
				continue
			}
			switch t {
			case schema.BigInt:
				buf = be.AppendUint32(buf, 8)
				buf = be.AppendUint64(buf, uint64(v.Int[i]))
			case schema.Integer:
				buf = be.AppendUint32(buf, 4)
				buf = be.AppendUint32(buf, uint32(int32(v.Int[i])))
			case schema.Double:
				buf = be.AppendUint32(buf, 8)
				buf = be.AppendUint64(buf, math.Float64bits(v.Float[i]))
			case schema.Real:
				buf = be.AppendUint32(buf, 4)
				buf = be.AppendUint32(buf, math.Float32bits(float32(v.Float[i])))
			case schema.Text:
				x := v.Bytes[v.Off[i]:v.Off[i+1]]
				buf = be.AppendUint32(buf, uint32(len(x)))
				buf = append(buf, x...)
			case schema.JSON: // jsonb: a version byte (1), then the text
				x := v.Bytes[v.Off[i]:v.Off[i+1]]
				buf = be.AppendUint32(buf, uint32(len(x)+1))
				buf = append(buf, 1)
				buf = append(buf, x...)
			case schema.Boolean:
				var x byte
				if v.Bool[i] {
					x = 1
				}
				buf = be.AppendUint32(buf, 1)
				buf = append(buf, x)
			case schema.Timestamp: // microseconds since pgEpoch
				buf = be.AppendUint32(buf, 8)
				buf = be.AppendUint64(buf, uint64(v.Time[i].UnixMicro()-pgEpochMicros))
			case schema.Date: // days since pgEpoch
				y, m, d := v.Time[i].UTC().Date()
				days := (time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() - pgEpochSeconds) / 86400
				buf = be.AppendUint32(buf, 4)
				buf = be.AppendUint32(buf, uint32(int32(days)))
			}
		}
		buf = append(buf, s.tail...)
		if s.ordinal {
			buf = be.AppendUint32(buf, 8)
			buf = be.AppendUint64(buf, uint64(b.N[i]))
		}
	}
	s.i, s.buf = i, buf
}

// copyInto runs one COPY of s into table (columns cols) on conn and
// returns the rows it wrote. When the source fails, its
// error is returned as it is, rather than the server's complaint about the
// aborted COPY.
func copyInto(ctx context.Context, conn *pgconn.PgConn, table pgx.Identifier, cols []string, s *copyStream) (int64, error) {
	if s.ended {
		s.restart()
	}
	tag, err := conn.CopyFrom(ctx, s, "COPY "+table.Sanitize()+" ("+identList(cols)+") FROM STDIN (FORMAT binary)")
	if err != nil {
		s.abandon()
	}
	if s.err != nil {
		return 0, s.err
	}
	if err != nil {
		return 0, fmt.Errorf("copy rows into %s: %w", table.Sanitize(), err)
	}
	return tag.RowsAffected(), nil
}

// rejectTap passes the batches of src on, keeping (copies of) their
// rejects for the quarantine table, or failing the stream at the first
// reject without quarantine.
type rejectTap struct {
	src        schema.Reader
	quarantine bool
	rejects    []schema.Reject // not yet written
	written    int64           // rejects written
}

func (t *rejectTap) Next(ctx context.Context) (*schema.Batch, error) {
	if t.src == nil {
		return nil, io.EOF
	}
	b, err := t.src.Next(ctx)
	if err != nil {
		return nil, err
	}
	if r, ok := driver.FirstReject(b); ok {
		if !t.quarantine {
			return nil, driver.RejectError(r)
		}
		for _, r := range b.Rejects {
			t.rejects = append(t.rejects, driver.Kept(r))
		}
	}
	return b, nil
}

func (t *rejectTap) Close() error { return nil }

// full reports whether maxPendingRejects rejects wait to be written.
func (t *rejectTap) full() bool { return len(t.rejects) >= maxPendingRejects }

// maxPendingRejects is how many rejected rows a load collects before it
// writes them (ending a COPY at the end of a batch to do so), so that
// memory stays bounded.
const maxPendingRejects = 1000

// single is a schema.Reader of one batch (then, when rest is set, of the
// batches of rest).
type single struct {
	b    *schema.Batch
	rest schema.Reader
}

func (s *single) Next(ctx context.Context) (*schema.Batch, error) {
	if b := s.b; b != nil {
		s.b = nil
		return b, nil
	}
	if s.rest == nil {
		return nil, io.EOF
	}
	return s.rest.Next(ctx)
}

func (s *single) Close() error { return nil }
