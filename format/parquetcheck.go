package format

import (
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	pformat "github.com/parquet-go/parquet-go/format"
)

// This file checks a Parquet file against the Limits before parquet-go
// decodes it. parquet-go trusts the sizes a file states — a footer list
// of 2^31 elements, a page of 2 GiB, a corrupt LZ4 page (its decoder
// doubles its buffer until memory runs out) — and sluice reads files
// from outside, so the footer's thrift encoding and every page header
// are walked first, and every compressed page is shown to expand to no
// more than it claims. LZ4_RAW pages are refused: see checkPageSize.

// footerBudget is how many times MaxRecordBytes decoding the footer may
// allocate, by the estimate of checkFooter: a genuine footer costs about
// five times its size once decoded.
const footerBudget = 16

// checkFooter walks the thrift compact encoding of a Parquet footer and
// refuses it when a list or string claims more than the bytes left, when
// it nests too deep, or when decoding it would allocate more than budget
// bytes (estimating 1 KiB per struct in a list, more than any Parquet
// metadata struct takes). Once it passes, parquet-go's decoder allocates
// in proportion to the footer's real size.
func checkFooter(buf []byte, budget int64) error {
	w := &thriftWalker{buf: buf, budget: budget}
	if err := w.structure(0); err != nil {
		return err
	}
	if w.pos != len(buf) {
		return fmt.Errorf("%d bytes follow the file metadata", len(buf)-w.pos)
	}
	return nil
}

// checkShape reads, from a footer checkFooter passed, what parquet-go
// sizes its column tree by before it checks it — the schema's nesting,
// its leaf columns, the column chunks and rows of each row group — and
// refuses what parquet-go would refuse only after allocating for it: it
// makes leaves × row groups chunk pointers first (a footer of 8,000
// leaves and 8,000 empty row groups, 170 KB, costs 500 MB; at the default
// limits, a fatal out-of-memory), and a path per schema element and
// ancestor. Row groups must also hold the rows the footer says the file
// has: sluice reads as many rows as a row group says, and a row group
// whose columns the load does not read can claim any number.
func checkShape(buf []byte) error {
	w := &thriftWalker{buf: buf, budget: math.MaxInt64}
	var (
		fileRows       int64
		leaves, chunks int64
		maxDepth       int
		groupRows      []int64
		groupChunks    []int64
	)
	schema := func() error {
		leaves, maxDepth = 0, 0
		var open []int64 // children left of each open group
		return w.list(func(w *thriftWalker) error {
			if len(open) > maxDepth {
				maxDepth = len(open)
			}
			leaf, children := false, int64(0)
			err := w.fields(func(id int16, t byte) (bool, error) {
				switch id {
				case 1: // type: the element is a leaf
					leaf = true
					return false, nil
				case 5: // num_children
					v, err := w.integer(t)
					children = int64(int32(v))
					return true, err
				}
				return false, nil
			})
			if leaf {
				leaves++
			}
			// As parquet-go's columnLoader.reserve walks the schema.
			if children > 0 {
				open = append(open, children)
			} else {
				for len(open) > 0 {
					if open[len(open)-1]--; open[len(open)-1] > 0 {
						break
					}
					open = open[:len(open)-1]
				}
			}
			return err
		})
	}
	rowGroups := func() error {
		groupRows, groupChunks = groupRows[:0], groupChunks[:0]
		return w.list(func(w *thriftWalker) error {
			var rows, n int64
			err := w.fields(func(id int16, t byte) (bool, error) {
				switch id {
				case 1: // columns
					if t != 9 && t != 10 {
						return false, nil
					}
					n = 0
					return true, w.list(func(w *thriftWalker) error { n++; return w.structure(1) })
				case 3: // num_rows
					v, err := w.integer(t)
					rows = v
					return true, err
				}
				return false, nil
			})
			groupRows, groupChunks = append(groupRows, rows), append(groupChunks, n)
			return err
		})
	}
	err := w.fields(func(id int16, t byte) (bool, error) {
		switch {
		case id == 2 && (t == 9 || t == 10):
			return true, schema()
		case id == 3:
			v, err := w.integer(t)
			fileRows = v
			return true, err
		case id == 4 && (t == 9 || t == 10):
			return true, rowGroups()
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	if maxDepth > parquet.MaxColumnDepth {
		return fmt.Errorf("its schema nests more than %d levels deep", parquet.MaxColumnDepth)
	}
	if leaves > parquet.MaxColumnIndex+1 {
		return fmt.Errorf("its schema has %d columns, more than %d", leaves, parquet.MaxColumnIndex+1)
	}
	var sum int64
	for g, rows := range groupRows {
		if groupChunks[g] != leaves {
			return fmt.Errorf("row group %d has %d column chunks for the schema's %d columns", g+1, groupChunks[g], leaves)
		}
		chunks += groupChunks[g]
		if rows < 0 || sum+rows < sum {
			return fmt.Errorf("row group %d has %d rows", g+1, rows)
		}
		sum += rows
	}
	if sum != fileRows {
		return fmt.Errorf("its row groups hold %d rows, its footer says the file has %d", sum, fileRows)
	}
	return nil
}

// fields walks the fields of a struct up to its stop byte, calling f with
// each field's id and compact type; f reads the value and returns true,
// or returns false to have it skipped.
func (w *thriftWalker) fields(f func(id int16, t byte) (bool, error)) error {
	var id int16
	for {
		b, err := w.byte()
		if err != nil || b == 0 {
			return err
		}
		if d := b >> 4; d != 0 {
			id += int16(d)
		} else {
			v, err := w.uvarint()
			if err != nil {
				return err
			}
			id = int16(int64(v>>1) ^ -int64(v&1))
		}
		t := b & 0x0f
		read, err := f(id, t)
		if err != nil {
			return err
		}
		if !read {
			if err := w.value(t, 1); err != nil {
				return err
			}
		}
	}
}

// listHeader reads a list (or set) header: its size and element type.
func (w *thriftWalker) listHeader() (n uint64, elem byte, err error) {
	h, err := w.byte()
	if err != nil {
		return 0, 0, err
	}
	n = uint64(h >> 4)
	if n == 15 {
		if n, err = w.uvarint(); err != nil {
			return 0, 0, err
		}
	}
	return n, h & 0x0f, nil
}

// list walks a list (or set) header, then calls f for each struct
// element, which reads it to its stop byte; elements of another type are
// skipped.
func (w *thriftWalker) list(f func(w *thriftWalker) error) error {
	n, et, err := w.listHeader()
	if err != nil {
		return err
	}
	for range n {
		if et != 12 {
			if err := w.value(et, 1); err != nil {
				return err
			}
			continue
		}
		if err := f(w); err != nil {
			return err
		}
	}
	return nil
}

// integer reads an integer value of compact type t (0 for another type,
// which is skipped).
func (w *thriftWalker) integer(t byte) (int64, error) {
	switch t {
	case 3:
		b, err := w.byte()
		return int64(int8(b)), err
	case 4, 5, 6:
		v, err := w.uvarint()
		return int64(v>>1) ^ -int64(v&1), err
	}
	return 0, w.value(t, 1)
}

// thriftWalker skips thrift compact values, checking their sizes.
type thriftWalker struct {
	buf    []byte
	pos    int
	budget int64 // bytes the decoder may still allocate
}

var errThriftEOF = errors.New("the metadata ends in the middle of a value")

func (w *thriftWalker) byte() (byte, error) {
	if w.pos >= len(w.buf) {
		return 0, errThriftEOF
	}
	w.pos++
	return w.buf[w.pos-1], nil
}

func (w *thriftWalker) uvarint() (uint64, error) {
	v, n := binary.Uvarint(w.buf[w.pos:])
	if n <= 0 {
		return 0, errThriftEOF
	}
	w.pos += n
	return v, nil
}

func (w *thriftWalker) spend(n int64) error {
	w.budget -= n
	if w.budget < 0 {
		return errFooterBudget
	}
	return nil
}

var errFooterBudget = errors.New("decoding the metadata would take too much memory")

// maxThriftDepth bounds nesting (Parquet metadata nests about 6 deep).
const maxThriftDepth = 64

// structure skips a struct's fields up to its stop byte.
func (w *thriftWalker) structure(depth int) error {
	if depth > maxThriftDepth {
		return errors.New("the metadata nests too deep")
	}
	for {
		b, err := w.byte()
		if err != nil {
			return err
		}
		if b == 0 {
			return nil
		}
		if b>>4 == 0 { // long form: the field id follows
			if _, err := w.uvarint(); err != nil {
				return err
			}
		}
		if err := w.value(b&0x0f, depth+1); err != nil {
			return err
		}
	}
}

// value skips one value of compact type t.
func (w *thriftWalker) value(t byte, depth int) error {
	switch t {
	case 1, 2: // boolean in a field header: no bytes
		return nil
	case 3: // byte
		_, err := w.byte()
		return err
	case 4, 5, 6: // i16, i32, i64
		_, err := w.uvarint()
		return err
	case 7: // double
		if len(w.buf)-w.pos < 8 {
			return errThriftEOF
		}
		w.pos += 8
		return nil
	case 8: // binary
		n, err := w.uvarint()
		if err != nil {
			return err
		}
		if n > uint64(len(w.buf)-w.pos) {
			return fmt.Errorf("a string claims %d bytes, %d are left: %w", n, len(w.buf)-w.pos, errThriftEOF)
		}
		w.pos += int(n)
		return w.spend(int64(n))
	case 9, 10: // list, set
		n, et, err := w.listHeader()
		if err != nil {
			return err
		}
		if n > uint64(len(w.buf)-w.pos) { // every element takes a byte at least
			return fmt.Errorf("a list claims %d elements, %d bytes are left: %w", n, len(w.buf)-w.pos, errThriftEOF)
		}
		per := int64(24)
		if et == 12 {
			per = 1 << 10
		}
		if err := w.spend(int64(n) * per); err != nil {
			return err
		}
		for range n {
			if et == 1 || et == 2 { // booleans in a list take a byte each
				if _, err := w.byte(); err != nil {
					return err
				}
				continue
			}
			if err := w.value(et, depth+1); err != nil {
				return err
			}
		}
		return nil
	case 11: // map
		n, err := w.uvarint()
		if err != nil || n == 0 {
			return err
		}
		kv, err := w.byte()
		if err != nil {
			return err
		}
		if 2*n > uint64(len(w.buf)-w.pos) {
			return fmt.Errorf("a map claims %d entries, %d bytes are left: %w", n, len(w.buf)-w.pos, errThriftEOF)
		}
		if err := w.spend(int64(n) * 64); err != nil {
			return err
		}
		for range n {
			if err := w.value(kv>>4, depth+1); err != nil {
				return err
			}
			if err := w.value(kv&0x0f, depth+1); err != nil {
				return err
			}
		}
		return nil
	case 12: // struct
		return w.structure(depth)
	}
	return fmt.Errorf("unknown thrift type %d in the metadata", t)
}

// checkChunk reads the page headers of leaf l's chunk in row group g
// (of rows rows) and checks them against the limits before parquet-go
// decodes a byte of it.
func (pl *parquetLoad) checkChunk(cm *pformat.ColumnMetaData, l *pqLeaf, g int, rows int64) error {
	corrupt := func(format string, args ...any) error {
		return &RecordError{Column: l.label, Err: fmt.Errorf("corrupt Parquet file: row group %d: "+format, append([]any{g + 1}, args...)...)}
	}
	// Where parquet-go starts reading the chunk: at the dictionary page
	// whenever the footer names one.
	start := cm.DataPageOffset
	if cm.DictionaryPageOffset != 0 {
		start = cm.DictionaryPageOffset
	}
	end := start + cm.TotalCompressedSize
	if start < 4 || cm.TotalCompressedSize < 0 || end > pl.size-8 || end < start {
		return corrupt("the column chunk lies outside the file (bytes %d to %d of %d)", start, end, pl.size)
	}
	if cm.NumValues != rows {
		return corrupt("the column chunk has %d values for %d rows", cm.NumValues, rows)
	}
	if err := checkCodec(cm.Codec); err != nil {
		return &RecordError{Column: l.label, Err: err}
	}
	pageLimit := pl.lim.MaxRecordBytes
	var values int64
	for off := start; off < end; {
		h, hlen, err := readPageHeader(pl.ra, off, end, pageLimit)
		if err != nil {
			return corrupt("page header at byte %d: %v", off, err)
		}
		data := off + int64(hlen)
		if h.CompressedPageSize < 0 || h.UncompressedPageSize < 0 || data+int64(h.CompressedPageSize) > end {
			return corrupt("a page at byte %d claims %d bytes past the column chunk's end", off, h.CompressedPageSize)
		}
		// parquet-go reads a page's stored bytes whole: they may exceed
		// what they decode to only by what a codec adds to data it cannot
		// compress (snappy, the worst, adds a sixth).
		if c, u := int64(h.CompressedPageSize), int64(h.UncompressedPageSize); c > u+u/4+4096 {
			return corrupt("a page at byte %d stores %d bytes that it says decode to %d", off, c, u)
		}
		var nv int32
		levels := int64(0)
		switch h.Type {
		case pformat.DataPage:
			if !h.DataPageHeader.Valid {
				return corrupt("a data page at byte %d has no data page header", off)
			}
			nv = h.DataPageHeader.V.NumValues
			values += int64(nv)
		case pformat.DataPageV2:
			if !h.DataPageHeaderV2.Valid {
				return corrupt("a data page at byte %d has no data page header", off)
			}
			v2 := h.DataPageHeaderV2.V
			nv = v2.NumValues
			values += int64(nv)
			levels = int64(v2.DefinitionLevelsByteLength) + int64(v2.RepetitionLevelsByteLength)
			if v2.DefinitionLevelsByteLength < 0 || v2.RepetitionLevelsByteLength < 0 || levels > int64(h.CompressedPageSize) || levels > int64(h.UncompressedPageSize) {
				return corrupt("a page at byte %d has %d bytes of levels in %d bytes", off, levels, h.CompressedPageSize)
			}
		case pformat.DictionaryPage:
			if !h.DictionaryPageHeader.Valid {
				return corrupt("a dictionary page at byte %d has no dictionary page header", off)
			}
			nv = h.DictionaryPageHeader.V.NumValues
		}
		if int64(h.UncompressedPageSize) > pageLimit || nv < 0 || int64(nv) > pageLimit/8 {
			return &RecordError{Column: l.label, Err: fmt.Errorf("row group %d: a page of %d bytes and %d values decoded; for Parquet %s bounds one page (a writer's pages hold about 1 MiB): %w",
				g+1, h.UncompressedPageSize, nv, KeyMaxRecordBytes, &LimitError{Key: KeyMaxRecordBytes, Limit: pageLimit})}
		}
		pl.decoded += int64(h.UncompressedPageSize)
		if pl.decoded > pl.lim.MaxObjectBytes {
			return &RecordError{Column: l.label, Err: &LimitError{Key: KeyMaxObjectBytes, Limit: pl.lim.MaxObjectBytes}}
		}
		extra, err := pl.checkPage(cm.Codec, l, h, data, pageLimit)
		if err != nil {
			var re *readError
			var pe *pageLimitError
			switch {
			case errors.As(err, &re):
				return &RecordError{Column: l.label, Err: err}
			case errors.As(err, &pe):
				return &RecordError{Column: l.label, Err: fmt.Errorf("row group %d: a page at byte %d decodes to %s; for Parquet %s bounds one page: %w",
					g+1, off, pe.what, KeyMaxRecordBytes, &LimitError{Key: KeyMaxRecordBytes, Limit: pageLimit})}
			}
			return corrupt("the page at byte %d: %v", off, err)
		}
		if extra > 0 {
			if pl.decoded += extra; pl.decoded > pl.lim.MaxObjectBytes {
				return &RecordError{Column: l.label, Err: &LimitError{Key: KeyMaxObjectBytes, Limit: pl.lim.MaxObjectBytes}}
			}
		}
		off = data + int64(h.CompressedPageSize)
	}
	if values != rows {
		return corrupt("the column chunk's pages hold %d values for %d rows", values, rows)
	}
	return nil
}

// readPageHeader decodes the page header at off (before end), reading at
// most about max bytes for it.
func readPageHeader(ra io.ReaderAt, off, end, max int64) (*pformat.PageHeader, int, error) {
	var proto thrift.CompactProtocol
	for size := int64(1 << 10); ; size *= 8 {
		n := min(size, end-off)
		buf := make([]byte, n)
		if _, err := ra.ReadAt(buf, off); err != nil && err != io.EOF {
			return nil, 0, &readError{err: err}
		}
		// The walker refuses sizes past the buffer before the decoder
		// could allocate for them.
		w := &thriftWalker{buf: buf, budget: max}
		err := w.structure(0)
		if err == nil {
			h := new(pformat.PageHeader)
			r := proto.NewReaderFromBytes(buf[:w.pos])
			if err := thrift.NewDecoder(r).Decode(h); err != nil {
				return nil, 0, err
			}
			return h, w.pos, nil
		}
		if !errors.Is(err, errThriftEOF) || n == end-off || size > max {
			return nil, 0, err
		}
	}
}

// checkPageSize checks that the compressed page data in sec expands to
// no more than want bytes, without holding what it expands to.
func checkPageSize(codec pformat.CompressionCodec, sec *io.SectionReader, want int64) error {
	var got int64
	var err error
	switch codec {
	case pformat.Snappy: // the block starts with its decoded length
		var head [10]byte
		n, _ := sec.ReadAt(head[:], 0)
		v, k := binary.Uvarint(head[:n])
		if k <= 0 {
			return errors.New("the snappy block has no valid length")
		}
		got = int64(min(v, 1<<62))
	case pformat.Gzip, pformat.Zstd, pformat.Brotli:
		var r io.Reader
		var done func()
		if r, done, err = decompressor(codec, sec); err == nil {
			got, err = io.Copy(io.Discard, io.LimitReader(r, want+1))
			done()
		}
	case pformat.Uncompressed:
		return nil
	default:
		return checkCodec(codec)
	}
	if err != nil {
		var re *readError
		if errors.As(err, &re) {
			return err
		}
		return fmt.Errorf("decompressing %s: %v", codec, err)
	}
	if got > want {
		return fmt.Errorf("the %s data expands to more than the %d bytes the page header says", codec, want)
	}
	return nil
}

// decompressor returns a reader of what r decompresses to with codec
// (GZIP, ZSTD or BROTLI) and a function that releases it.
func decompressor(codec pformat.CompressionCodec, r io.Reader) (io.Reader, func(), error) {
	switch codec {
	case pformat.Gzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return zr, func() {}, nil
	case pformat.Zstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderMaxMemory(zstdMaxWindow))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	case pformat.Brotli:
		return brotli.NewReader(r), func() {}, nil
	}
	return nil, nil, checkCodec(codec)
}

// checkCodec refuses the compression codecs sluice does not read.
func checkCodec(codec pformat.CompressionCodec) error {
	switch codec {
	case pformat.Uncompressed, pformat.Snappy, pformat.Gzip, pformat.Zstd, pformat.Brotli:
		return nil
	case pformat.Lz4Raw:
		// parquet-go v0.32 decodes an LZ4_RAW page into a buffer of three
		// times its compressed size and keeps that buffer only when the
		// page expands past its declared size; otherwise it reads the
		// page's own, undecoded buffer: wrong values, or an error at best.
		// (And a corrupt block makes it double its buffer without end.)
		return errors.New("the column is LZ4_RAW-compressed, which the Parquet library sluice uses (parquet-go) misreads; write the file with SNAPPY, ZSTD or GZIP (DuckDB: COMPRESSION zstd)")
	}
	return fmt.Errorf("the column is compressed with codec %d (%s), which sluice does not read; write the file with SNAPPY, ZSTD, GZIP, BROTLI or uncompressed", int32(codec), codec)
}
