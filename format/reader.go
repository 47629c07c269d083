package format

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/schema"
)

// Input formats NewReader reads (besides InputJSON, InputNDJSON and
// InputAuto).
const (
	InputCSV     = "csv"     // a header row, then records (RFC 4180)
	InputParquet = "parquet" // a Parquet file, such as a curate job's output
)

// ErrRejected marks a record the mapper refused (a value that cannot be
// cast, a required field that is missing, an undeclared field with extra:
// error): NewReader's Next returns it, wrapped around a *RecordError, when
// ReadOptions.Quarantine is off. With Quarantine on such records become
// schema.Reject entries instead. Decode errors (syntax, limits, encoding)
// never match it: they stop the object whatever the options.
var ErrRejected = errors.New("record rejected")

// ReadOptions configure NewReader.
type ReadOptions struct {
	// Format is InputJSON, InputNDJSON, InputAuto, InputCSV or
	// InputParquet.
	Format string
	// Mapper maps records to the batch's columns (Mapper.Columns,
	// Mapper.Schema) under its policies.
	Mapper *Mapper
	// Limits bound the object; the zero value means the defaults.
	Limits Limits
	// Delimiter separates CSV fields; 0 means ','.
	Delimiter rune
	// Quarantine turns records the mapper refuses into schema.Reject
	// entries instead of an error: the reason is the *RecordError's
	// message (record, line, column, what is wrong) and Raw the record's
	// text as written.
	Quarantine bool
	// BatchRows bounds the rows of one batch; 0 means DefaultBatchRows.
	BatchRows int
	// Workers bounds the goroutines that decode one object (an NDJSON or
	// CSV object can be split at record boundaries); 0 means
	// runtime.GOMAXPROCS.
	Workers int

	// chunkBytes is the size of the chunks the NDJSON and CSV decoders
	// cut for parallel parsing (0: defaultChunk); tests make it small.
	chunkBytes int
}

// DefaultBatchRows is the default ReadOptions.BatchRows.
const DefaultBatchRows = 4096

// decodeFunc decodes one object into batches handed to s, in record
// order, and returns the mapper's report for the object.
type decodeFunc func(ctx context.Context, r io.Reader, o *ReadOptions, s *sink) (Report, error)

// decoders maps ReadOptions.Format to its decoder; each format's file
// registers its own in init.
var decoders = map[string]decodeFunc{}

// Reader streams an object's records as typed columnar batches
// (schema.Reader). Decoding runs ahead of the consumer in its own
// goroutine(s), so decoding and writing overlap; at most a few batches are
// in flight, so memory stays bounded whatever the object's size.
type Reader struct {
	cancel context.CancelFunc
	out    chan *schema.Batch
	pool   *batchPool
	done   chan struct{}
	err    error  // set before done is closed
	report Report // set before done is closed
	cur    *schema.Batch
	once   sync.Once
}

// NewReader starts decoding r (which must stay readable until Close) as
// o.Format. Next returns the batches; after io.EOF, Report says what the
// mapper found. Errors about the data are *RecordError naming the record,
// line and column (IsReadFailure tells a failing store from bad data);
// records the mapper refuses match ErrRejected unless o.Quarantine. The
// batches before an error are delivered first, so a consumer sees every
// record before the one at fault.
func NewReader(ctx context.Context, r io.Reader, o ReadOptions) (*Reader, error) {
	if o.Mapper == nil {
		return nil, errors.New("format: NewReader needs a Mapper")
	}
	dec, ok := decoders[o.Format]
	if !ok {
		return nil, fmt.Errorf("format: unknown input format %q (want json, ndjson, auto, csv or parquet)", o.Format)
	}
	if o.BatchRows <= 0 {
		o.BatchRows = DefaultBatchRows
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if err := o.Limits.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	rd := &Reader{cancel: cancel, out: make(chan *schema.Batch), pool: o.Mapper.batches, done: make(chan struct{})}
	s := &sink{ctx: ctx, out: rd.out, pool: rd.pool, rows: o.BatchRows}
	go func() {
		defer close(rd.done)
		rep, err := dec(ctx, r, &o, s)
		// Hand over the records before an error too, without the values
		// a decoder appended for the row at fault.
		if err != nil && s.cur != nil {
			for j := range s.cur.Vecs {
				s.cur.Vecs[j].Truncate(s.cur.Len())
			}
		}
		if ferr := s.flush(); err == nil {
			err = ferr
		}
		rd.report, rd.err = rep, err
	}()
	return rd, nil
}

// Next implements schema.Reader: the batch is valid until the next call.
func (rd *Reader) Next(ctx context.Context) (*schema.Batch, error) {
	if rd.cur != nil {
		rd.pool.put(rd.cur)
		rd.cur = nil
	}
	select {
	case b := <-rd.out:
		rd.cur = b
		return b, nil
	case <-rd.done:
		// The decoder may have sent its last batch just before finishing.
		select {
		case b := <-rd.out:
			rd.cur = b
			return b, nil
		default:
		}
		if rd.err != nil {
			return nil, rd.err
		}
		return nil, io.EOF
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Report returns the mapper's findings once Next has returned io.EOF;
// before that (a consumer that stopped early) it returns an empty Report
// rather than wait for a decoder that waits for the consumer.
func (rd *Reader) Report() Report {
	select {
	case <-rd.done:
		return rd.report
	default:
		return Report{}
	}
}

// Close stops the decoder and waits for it to return. The last batch Next
// returned is no longer valid.
func (rd *Reader) Close() error {
	rd.once.Do(rd.cancel)
	<-rd.done
	if rd.cur != nil {
		rd.pool.put(rd.cur)
		rd.cur = nil
	}
	return nil
}

// batchPool recycles the batches of one Mapper's columns, across the
// objects it maps (a load reads many objects with one Mapper), so that a
// batch's vectors are grown once, not per object. It does not bound them:
// the unbuffered hand-over does (a decoder waits for the consumer before it
// starts another batch).
type batchPool struct {
	cols []schema.Column
	p    sync.Pool
}

func newBatchPool(cols []schema.Column) *batchPool { return &batchPool{cols: cols} }

func (p *batchPool) get() *schema.Batch {
	if b, ok := p.p.Get().(*schema.Batch); ok {
		return b
	}
	return schema.NewBatch(p.cols)
}

func (p *batchPool) put(b *schema.Batch) {
	b.Reset()
	p.p.Put(b)
}

// sink hands batches from a decoder to its Reader.
type sink struct {
	ctx  context.Context
	out  chan<- *schema.Batch
	pool *batchPool
	rows int
	cur  *schema.Batch
}

// maxBatchBytes bounds the input bytes (schema.Batch.Bytes) of the
// records of one batch, besides ReadOptions.BatchRows: 4096 rows of long
// text would otherwise hold gigabytes. A batch holds at least one record.
const maxBatchBytes = 16 << 20

// full reports whether b takes no more records: rows records (rows and
// rejects) or maxBatchBytes of input.
func full(b *schema.Batch, rows int) bool {
	return b.Len()+len(b.Rejects) >= rows || b.Bytes >= maxBatchBytes
}

// Batch returns the batch to append the next row to, after handing over
// the current one when it is full.
func (s *sink) Batch() (*schema.Batch, error) {
	if s.cur != nil && !full(s.cur, s.rows) {
		return s.cur, nil
	}
	if err := s.flush(); err != nil {
		return nil, err
	}
	s.cur = s.pool.get()
	return s.cur, nil
}

// flush hands over the current batch, if it holds anything.
func (s *sink) flush() error {
	if s.cur == nil {
		return nil
	}
	if s.cur.Len() == 0 && len(s.cur.Rejects) == 0 {
		return nil
	}
	if err := s.send(s.cur); err != nil {
		return err
	}
	s.cur = nil
	return nil
}

// send hands over b, waiting for the consumer.
func (s *sink) send(b *schema.Batch) error {
	select {
	case s.out <- b:
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

// chunkBatches are the batches a parallel decoder fills for one chunk of
// an object before it knows where in the object the chunk is: record
// numbers count from the chunk's first record until renumber.
type chunkBatches struct {
	rows    int // ReadOptions.BatchRows
	pool    *batchPool
	batches []*schema.Batch
}

// Batch implements batcher.
func (c *chunkBatches) Batch() (*schema.Batch, error) {
	if n := len(c.batches); n > 0 && !full(c.batches[n-1], c.rows) {
		return c.batches[n-1], nil
	}
	b := c.pool.get()
	c.batches = append(c.batches, b)
	return b, nil
}

// dropEmpty recycles the last batch if it holds nothing.
func (c *chunkBatches) dropEmpty() {
	if n := len(c.batches); n > 0 && c.batches[n-1].Len()+len(c.batches[n-1].Rejects) == 0 {
		c.pool.put(c.batches[n-1])
		c.batches = c.batches[:n-1]
	}
}

// release recycles the batches, for a chunk parsed again.
func (c *chunkBatches) release() {
	for _, b := range c.batches {
		c.pool.put(b)
	}
	c.batches = c.batches[:0]
}

// sendTo hands the batches to s, in order.
func (c *chunkBatches) sendTo(s *sink) error {
	for _, b := range c.batches {
		if err := s.send(b); err != nil {
			return err
		}
	}
	c.batches = nil
	return nil
}

// renumber adds base to the record numbers of the batches and of err (a
// *RecordError, or a rejection wrapping one), which count from 1 at the
// chunk's first record.
func (c *chunkBatches) renumber(base int64, err error) {
	for _, b := range c.batches {
		for i := range b.N {
			b.N[i] += base
		}
		for i := range b.Rejects {
			rj := &b.Rejects[i]
			// A JSON reason leads with the record number (RecordError).
			if at := "record " + strconv.FormatInt(rj.N, 10); strings.HasPrefix(rj.Reason, at) {
				rj.Reason = "record " + strconv.FormatInt(rj.N+base, 10) + rj.Reason[len(at):]
			}
			rj.N += base
		}
	}
	var re *RecordError
	if err != nil && asRecordError(err, &re) && re.Record > 0 {
		re.Record += int(base)
	}
}

func asRecordError(err error, re **RecordError) bool {
	switch e := err.(type) {
	case *RecordError:
		*re = e
		return true
	case *rejectError:
		*re = e.e
		return true
	}
	return false
}

// ordered runs work on the items produce sends, in up to workers
// goroutines, and hands them to consume in the order they were sent. At
// most depth items wait between produce and consume, so memory stays
// bounded; produce blocks meanwhile. An error from consume (or ctx ending)
// stops it all: produce's send returns the error, and ordered returns it
// once every goroutine has ended.
func ordered[T any](ctx context.Context, workers, depth int, produce func(send func(T) error) error, work func(T), consume func(T) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type slot struct {
		v    T
		done chan struct{}
	}
	jobs := make(chan *slot)
	queue := make(chan *slot, depth)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range jobs {
				work(s.v)
				close(s.done)
			}
		}()
	}
	perr := make(chan error, 1)
	go func() {
		defer close(queue)
		defer close(jobs)
		perr <- produce(func(v T) error {
			s := &slot{v: v, done: make(chan struct{})}
			select {
			case queue <- s:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case jobs <- s:
				return nil
			case <-ctx.Done():
				close(s.done) // never worked on
				return ctx.Err()
			}
		})
	}()
	var err error
	for s := range queue {
		if err != nil {
			continue // drain
		}
		select {
		case <-s.done:
			if err = ctx.Err(); err == nil {
				err = consume(s.v)
			}
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			cancel()
		}
	}
	wg.Wait()
	if e := <-perr; err == nil && e != nil && !errors.Is(e, context.Canceled) {
		err = e
	}
	if err == nil {
		err = ctx.Err()
	}
	return err
}
