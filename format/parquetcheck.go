package format

import (
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
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
		h, err := w.byte()
		if err != nil {
			return err
		}
		n := uint64(h >> 4)
		if n == 15 {
			if n, err = w.uvarint(); err != nil {
				return err
			}
		}
		et := h & 0x0f
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
	start := cm.DataPageOffset
	if cm.DictionaryPageOffset > 0 && cm.DictionaryPageOffset < start {
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
			if levels < 0 || levels > int64(h.CompressedPageSize) || levels > int64(h.UncompressedPageSize) {
				return corrupt("a page at byte %d has %d bytes of levels in %d bytes", off, levels, h.CompressedPageSize)
			}
			if v2.IsCompressed.Valid && !v2.IsCompressed.V {
				levels = -1 // not compressed: nothing to check
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
		if levels >= 0 && cm.Codec != pformat.Uncompressed && (h.Type == pformat.DataPage || h.Type == pformat.DataPageV2 || h.Type == pformat.DictionaryPage) {
			sec := io.NewSectionReader(pl.ra, data+levels, int64(h.CompressedPageSize)-levels)
			if err := checkPageSize(cm.Codec, sec, int64(h.UncompressedPageSize)-levels); err != nil {
				return corrupt("the page at byte %d: %v", off, err)
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
	case pformat.Gzip:
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(sec); err == nil {
			got, err = io.Copy(io.Discard, io.LimitReader(zr, want+1))
		}
	case pformat.Zstd:
		var zr *zstd.Decoder
		zr, err = zstd.NewReader(sec, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow), zstd.WithDecoderMaxMemory(zstdMaxWindow))
		if err == nil {
			got, err = io.Copy(io.Discard, io.LimitReader(zr, want+1))
			zr.Close()
		}
	case pformat.Brotli:
		got, err = io.Copy(io.Discard, io.LimitReader(brotli.NewReader(sec), want+1))
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
