package curate

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/parquet-go/parquet-go"

	"github.com/sluicehq/sluice/format"
	"github.com/sluicehq/sluice/schema"
)

// The staging pipeline. Run's goroutine only commits; the work runs in
// stages joined by ordered queues of futures, so that every stage but the
// first runs on all cores while rows keep their input order:
//
//	read    one goroutine: opens the inputs in key order and cuts each into
//	        chunks of whole CSV records (format.CSVSplitter), handing every
//	        chunk to the parse workers and, in order, to assemble;
//	parse   GOMAXPROCS workers: parse a chunk (format.CSVParser), cast each
//	        field straight into a typed vector (format.AppendCast; no value
//	        is boxed) and apply the filter;
//	assemble one goroutine: takes the parsed chunks in order, checks the
//	        record limit, and copies their rows into row groups of
//	        rowGroupRows (fewer at the end of a part), handing each to the
//	        encode workers and, in order, to Run;
//	encode  GOMAXPROCS workers: encode a row group's columns into pages
//	        (dictionary, snappy) in a parquet-go ConcurrentRowGroupWriter;
//	commit  Run's goroutine: commits the row groups in order to their part
//	        file, closes each part when its last row group is in, and calls
//	        Options.AfterPart.
//
// The queues are short (a few chunks and row groups), so memory stays
// bounded whatever the input's size: about queue length × (chunk size +
// one row group's values). The first error in input order wins: it
// travels down the queues in place of the data it concerns, and stop
// cancels and joins every stage, also when Run's goroutine panics.

// chunkBytes is the size of the chunks CSV objects are cut into.
const chunkBytes = 1 << 20

// parsed is one chunk of an input object, parsed: its kept rows, or err.
type parsed struct {
	done     chan struct{} // closed when the fields below are set
	obj      *object
	chunk    format.CSVChunk
	cols     []schema.Vector
	rows     int   // kept rows in cols
	recs     int64 // records read
	filtered int64 // records the filter dropped
	err      error
	// endOfObject marks the item after an object's last chunk.
	endOfObject bool
}

// object is one input object being read.
type object struct {
	key      string
	split    *format.CSVSplitter
	header   []string
	sources  []int // header index of each output column
	base     int64 // records before the chunk being assembled
	read     int64
	filtered int64
}

// group is one row group to encode, or an error, or a part without rows.
type group struct {
	done  chan struct{}
	part  *part
	cols  []schema.Vector
	rows  int
	last  bool // the part's last row group
	empty bool // a part without row groups (no row at all was kept)
	rg    *parquet.ConcurrentRowGroupWriter
	err   error
	log   string // a line to log once the groups before it are committed
}

type pipeline struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	st     Store
	spec   Spec
	filter Filter
	inputs []Object
	sch    *parquet.Schema
	dir    string
	id     string

	parseJobs  chan *parsed
	parsedQ    chan *parsed
	encodeJobs chan *group
	groups     chan *group

	// Pools, apart because their sizes differ: chunk buffers, the
	// vectors of a parsed chunk, the vectors of a row group.
	casts []func(*schema.Vector, []byte) error // format.Caster of each column

	chunkBufs sync.Pool // []byte
	chunkCols sync.Pool // []schema.Vector
	groupCols sync.Pool // []schema.Vector
}

func startPipeline(ctx context.Context, st Store, spec Spec, filter Filter, inputs []Object, sch *parquet.Schema, dir, id string) *pipeline {
	workers := runtime.GOMAXPROCS(0)
	ctx, cancel := context.WithCancel(ctx)
	p := &pipeline{
		ctx: ctx, cancel: cancel, st: st, spec: spec, filter: filter, inputs: inputs, sch: sch, dir: dir, id: id,
		parseJobs:  make(chan *parsed, workers+2),
		parsedQ:    make(chan *parsed, workers+2),
		encodeJobs: make(chan *group, workers),
		groups:     make(chan *group, workers),
	}
	newCols := func() any {
		cols := make([]schema.Vector, len(spec.Columns))
		for j, c := range spec.Columns {
			cols[j].Reset(c.Type)
		}
		return cols
	}
	p.chunkCols.New, p.groupCols.New = newCols, newCols
	for _, c := range spec.Columns {
		p.casts = append(p.casts, format.Caster(c.Type))
	}
	p.wg.Add(2 + 2*workers)
	go func() { defer p.wg.Done(); p.read() }()
	for range workers {
		go func() { defer p.wg.Done(); p.parseWorker() }()
		go func() { defer p.wg.Done(); p.encodeWorker() }()
	}
	go func() { defer p.wg.Done(); p.assemble() }()
	return p
}

// stop cancels every stage and waits for them to return.
func (p *pipeline) stop() {
	p.cancel()
	p.wg.Wait()
}

// send puts v on ch unless the pipeline is stopped.
func send[T any](ctx context.Context, ch chan<- T, v T) bool {
	select {
	case ch <- v:
		return true
	case <-ctx.Done():
		return false
	}
}

// wait waits for done unless the pipeline is stopped.
func wait(ctx context.Context, done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// read is the first stage.
func (p *pipeline) read() {
	defer close(p.parsedQ)
	defer close(p.parseJobs)
	for _, in := range p.inputs {
		if !p.readObject(in.Key) {
			return
		}
	}
}

// readObject cuts one input into chunks; false stops the stage (after an
// error, which it queued, or when the pipeline stops).
func (p *pipeline) readObject(key string) bool {
	fail := func(err error) bool {
		it := &parsed{done: make(chan struct{}), err: err}
		close(it.done)
		send(p.ctx, p.parsedQ, it)
		return false
	}
	rc, err := p.st.Open(p.ctx, key)
	if err != nil {
		return fail(fmt.Errorf("curate: object %q: open: %w", key, err))
	}
	defer rc.Close()
	ob := &object{key: key}
	opts := format.CSVOptions{Delimiter: p.spec.Delimiter, Limits: p.spec.Limits, OnHeader: func(header []string) (err error) {
		ob.header = header
		ob.sources, err = mapHeader(p.spec, header)
		return err
	}}
	ob.split, err = format.NewCSVSplitter(rc, opts, chunkBytes)
	if err != nil {
		return fail(fmt.Errorf("curate: object %q: %w", key, err))
	}
	for {
		if err := p.ctx.Err(); err != nil {
			return false
		}
		buf, _ := p.chunkBufs.Get().([]byte)
		c, err := ob.split.Next(buf)
		if err != nil { // io.EOF: the object is done
			it := &parsed{done: make(chan struct{}), obj: ob, endOfObject: true}
			close(it.done)
			return send(p.ctx, p.parsedQ, it)
		}
		it := &parsed{done: make(chan struct{}), obj: ob, chunk: c}
		if !send(p.ctx, p.parsedQ, it) || !send(p.ctx, p.parseJobs, it) {
			return false
		}
		if c.Err != nil {
			// The input stopped (a read failure or a limit): its chunk
			// reports it; nothing follows.
			return false
		}
	}
}

// parseWorker is the second stage.
func (p *pipeline) parseWorker() {
	for it := range p.parseJobs {
		if p.ctx.Err() != nil {
			close(it.done)
			continue
		}
		it.cols = p.chunkCols.Get().([]schema.Vector)
		it.recs, it.rows, it.filtered, it.err = p.parse(it, -1, it.cols)
		close(it.done)
	}
}

// parse parses it's chunk into cols (base: see format.CSVParser.Parse)
// and returns the records read, the rows kept and the rows filtered out.
func (p *pipeline) parse(it *parsed, base int64, cols []schema.Vector) (int64, int, int64, error) {
	ob := it.obj
	rows, filtered := 0, int64(0)
	n, err := ob.split.NewParser().Parse(it.chunk, base, func(line int, fields [][]byte) error {
		for j, src := range ob.sources {
			if err := p.casts[j](&cols[j], fields[src]); err != nil {
				for k := range j {
					cols[k].Truncate(rows)
				}
				return &format.RecordError{Line: line, Column: ob.header[src], Err: err}
			}
		}
		if !p.filter.keepRow(cols, rows) {
			for j := range cols {
				cols[j].Truncate(rows)
			}
			filtered++
			return nil
		}
		rows++
		return nil
	})
	if err != nil {
		err = fmt.Errorf("curate: object %q: %w", ob.key, err)
	}
	return n, rows, filtered, err
}

// assemble is the third stage.
func (p *pipeline) assemble() {
	defer close(p.encodeJobs)
	defer close(p.groups)
	maxPart := p.spec.MaxRowsPerFile
	var (
		cur      *group
		curPart  *part
		partRows int // rows in curPart, cur included
		nparts   int
		textSize int
	)
	emit := func(g *group) bool {
		if !send(p.ctx, p.groups, g) {
			return false
		}
		if g.cols != nil {
			return send(p.ctx, p.encodeJobs, g)
		}
		return true
	}
	fail := func(err error) {
		g := &group{done: make(chan struct{}), err: err}
		close(g.done)
		emit(g)
	}
	flush := func(last bool) bool {
		g := cur
		cur = nil
		g.last = last
		if last {
			curPart = nil
		}
		return emit(g)
	}
	for it := range p.parsedQ {
		if !wait(p.ctx, it.done) {
			return
		}
		if it.err != nil && it.obj == nil {
			fail(it.err) // the object could not be opened or its header is wrong
			return
		}
		ob := it.obj
		if it.endOfObject {
			g := &group{done: make(chan struct{}), log: fmt.Sprintf("curate: read %s: %d rows, %d filtered out", ob.key, ob.read, ob.filtered)}
			close(g.done)
			if !emit(g) {
				return
			}
			continue
		}
		err := it.err
		if ob.split.NewParser().NeedsBase(ob.base, it.recs, err) {
			// The record limit may be passed in this chunk: parse it
			// again knowing how many records came before.
			cols := p.chunkCols.Get().([]schema.Vector)
			_, _, _, err = p.parse(it, ob.base, cols)
			putCols(&p.chunkCols, cols)
		}
		if err != nil {
			fail(err)
			return
		}
		ob.base += it.recs
		ob.read += it.recs
		ob.filtered += it.filtered
		for lo := 0; lo < it.rows; {
			if cur == nil {
				if curPart == nil {
					curPart = newPart(p.dir, p.id, nparts, p.sch)
					nparts++
					partRows = 0
				}
				cur = &group{done: make(chan struct{}), part: curPart, cols: p.groupCols.Get().([]schema.Vector)}
				textSize = 0
			}
			k := min(it.rows-lo, rowGroupRows-cur.rows, maxPart-partRows)
			textSize += appendRows(cur.cols, it.cols, lo, lo+k)
			cur.rows += k
			partRows += k
			lo += k
			switch {
			case partRows >= maxPart:
				if !flush(true) {
					return
				}
			case cur.rows >= rowGroupRows || textSize >= rowGroupBytes:
				if !flush(false) {
					return
				}
			}
		}
		putCols(&p.chunkCols, it.cols)
		p.chunkBufs.Put(it.chunk.Data[:0])
	}
	if p.ctx.Err() != nil {
		return
	}
	switch {
	case cur != nil:
		flush(true)
	case curPart != nil:
		// The last part's rows ended exactly at a row group boundary.
		g := &group{done: make(chan struct{}), part: curPart, last: true, empty: true}
		close(g.done)
		emit(g)
	case nparts == 0:
		// No row kept at all: one part without rows, so readers still see
		// the schema, as Spark writes it.
		g := &group{done: make(chan struct{}), part: newPart(p.dir, p.id, 0, p.sch), last: true, empty: true}
		close(g.done)
		emit(g)
	}
}

func putCols(pool *sync.Pool, cols []schema.Vector) {
	for j := range cols {
		cols[j].Reset(cols[j].Type)
	}
	pool.Put(cols)
}

// appendRows appends rows lo..hi of src to dst and returns the text bytes
// it appended.
func appendRows(dst, src []schema.Vector, lo, hi int) int {
	text := 0
	for j := range dst {
		d, s := &dst[j], &src[j]
		d.Null = append(d.Null, s.Null[lo:hi]...)
		switch {
		case d.Type.IsInt():
			d.Int = append(d.Int, s.Int[lo:hi]...)
		case d.Type.IsFloat():
			d.Float = append(d.Float, s.Float[lo:hi]...)
		case d.Type == schema.Boolean:
			d.Bool = append(d.Bool, s.Bool[lo:hi]...)
		case d.Type.IsTime():
			d.Time = append(d.Time, s.Time[lo:hi]...)
		default:
			shift := int32(len(d.Bytes)) - s.Off[lo]
			d.Bytes = append(d.Bytes, s.Bytes[s.Off[lo]:s.Off[hi]]...)
			for _, o := range s.Off[lo+1 : hi+1] {
				d.Off = append(d.Off, o+shift)
			}
			text += int(s.Off[hi] - s.Off[lo])
		}
	}
	return text
}

// encodeWorker is the fourth stage.
func (p *pipeline) encodeWorker() {
	var vals []parquet.Value
	for g := range p.encodeJobs {
		if p.ctx.Err() == nil {
			var err error
			g.rg, vals, err = encodeRowGroup(g.part, g.cols, g.rows, vals)
			if err != nil {
				g.err = fmt.Errorf("curate: stage part %s: %w", g.part.name, err)
			}
		}
		putCols(&p.groupCols, g.cols)
		g.cols = nil
		close(g.done)
	}
}

// commit is the last stage, on Run's goroutine: it commits the row groups
// in order and closes the parts; it returns the part names.
func (p *pipeline) commit(logf func(string, ...any), afterPart func(int)) (names []string, rows int64, err error) {
	var open *part
	// A part whose file is open when commit returns with an error is
	// closed; the caller removes the staging directory.
	defer func() {
		if open != nil {
			open.file.close()
		}
	}()
	for {
		var g *group
		var ok bool
		select {
		case g, ok = <-p.groups:
		case <-p.ctx.Done():
			return names, rows, p.ctx.Err()
		}
		if !ok {
			if err := p.ctx.Err(); err != nil {
				return names, rows, err
			}
			return names, rows, nil
		}
		if !wait(p.ctx, g.done) {
			return names, rows, p.ctx.Err()
		}
		if g.err != nil {
			return names, rows, g.err
		}
		if g.log != "" {
			logf("%s", g.log)
			continue
		}
		if g.part != open {
			open = g.part
			names = append(names, open.name)
		}
		if !g.empty {
			n, err := g.rg.Commit()
			if err != nil {
				return names, rows, fmt.Errorf("curate: stage part %s: %w", open.name, err)
			}
			rows += n
		}
		if g.last {
			err := open.close()
			open = nil
			if err != nil {
				return names, rows, fmt.Errorf("curate: %w", err)
			}
			if afterPart != nil {
				afterPart(len(names) - 1)
			}
		}
	}
}
