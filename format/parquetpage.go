package format

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"

	"github.com/klauspost/compress/snappy"
	"github.com/parquet-go/parquet-go"
	pformat "github.com/parquet-go/parquet-go/format"
)

// This file checks what a page's encoded bytes claim, before parquet-go
// decodes them. The page header's sizes are checked in checkChunk, but the
// encodings inside a page state counts of their own, and parquet-go
// allocates (and fills) what they state before it finds that the page
// holds less:
//
//   - an RLE run of the RLE/bit-packed hybrid — definition levels,
//     dictionary indexes, RLE booleans — states up to 2^31 values in six
//     bytes: 2 GiB of levels, 8 GiB of indexes, per run;
//   - a DELTA_BINARY_PACKED header states its number of values (8 bytes of
//     memory each), and so do the length streams of DELTA_LENGTH_BYTE_ARRAY
//     and DELTA_BYTE_ARRAY;
//   - DELTA_BYTE_ARRAY values repeat a prefix of the previous value, so a
//     page of a few KiB can decode to gigabytes;
//   - a FIXED_LEN_BYTE_ARRAY column's schema states the size of a value,
//     and a dictionary page is decoded into values × size bytes (a 2^30-byte
//     DECIMAL makes the Go runtime abort: a fatal error, not a panic).
//
// So a page whose encoding needs it is decompressed (a second time:
// parquet-go decompresses it again when it decodes it) and its runs,
// delta headers and lengths are walked without decoding the values, each
// checked against the page's num_values and the page limit. Pages of
// PLAIN and BYTE_STREAM_SPLIT values of a required column hold no counts
// and are not read twice.

// hybridMost is how many values an RLE/bit-packed stream of a page of nv
// values may state: writers pad their last bit-packed run (DuckDB to 256
// values, stating 2,085 levels for 2,048), and what parquet-go allocates
// for twice the page stays near the page limit.
func hybridMost(nv int64) int64 { return 2*nv + 1024 }

// checkPage checks the encoded contents of the page at byte data, whose
// header is h, of leaf l's column chunk of codec codec; limit bounds one
// page. It returns the decoded bytes DELTA_BYTE_ARRAY values take beyond
// the page's uncompressed size (0 for other pages), for the object's sum.
func (pl *parquetLoad) checkPage(codec pformat.CompressionCodec, l *pqLeaf, h *pformat.PageHeader, data, limit int64) (extra int64, err error) {
	kind := l.col.Type().Kind()
	var (
		nv      int64            // values (levels) the page holds
		enc     pformat.Encoding // of the values
		levels  int64            // V2: bytes of levels before the values, not compressed
		defs    []byte           // V2: definition levels, as stored
		v1      bool             // the levels, if any, are compressed with the values
		defEnc  pformat.Encoding // V1: encoding of the definition levels
		nulls   int64            // V2: null values
		dict    = h.Type == pformat.DictionaryPage
		packed  = true // the values are compressed with codec
		scanDef bool
	)
	switch h.Type {
	case pformat.DataPage:
		v := &h.DataPageHeader.V
		nv, enc, v1, defEnc = int64(v.NumValues), v.Encoding, true, v.DefinitionLevelEncoding
		scanDef = l.maxDef > 0 && defEnc == pformat.RLE
	case pformat.DataPageV2:
		v := &h.DataPageHeaderV2.V
		nv, enc, nulls = int64(v.NumValues), v.Encoding, max(int64(v.NumNulls), 0)
		levels = int64(v.RepetitionLevelsByteLength) + int64(v.DefinitionLevelsByteLength)
		packed = !v.IsCompressed.Valid || v.IsCompressed.V
		scanDef = l.maxDef > 0 && v.DefinitionLevelsByteLength > 0
	case pformat.DictionaryPage:
		nv, enc = int64(h.DictionaryPageHeader.V.NumValues), h.DictionaryPageHeader.V.Encoding
		if enc == pformat.PlainDictionary {
			enc = pformat.Plain // how parquet-go reads a dictionary page
		}
	default:
		return 0, nil // parquet-go refuses it
	}
	if codec == pformat.Uncompressed {
		packed = false
	}
	dictIdx := !dict && (enc == pformat.PlainDictionary || enc == pformat.RLEDictionary)
	if kind == parquet.FixedLenByteArray && (dict || !(enc == pformat.Plain || dictIdx)) {
		// Decoded into values × size bytes (not in place).
		if size := int64(l.col.Type().Length()); (nv-nulls)*size > limit {
			return 0, &pageLimitError{fmt.Sprintf("%d values of %d bytes", nv-nulls, size), limit}
		}
	}
	scanValues := dictIdx || enc == pformat.RLEDictionary || enc == pformat.RLE ||
		enc == pformat.DeltaBinaryPacked || enc == pformat.DeltaLengthByteArray || enc == pformat.DeltaByteArray
	if !scanValues && !scanDef {
		if packed {
			sec := io.NewSectionReader(pl.ra, data+levels, int64(h.CompressedPageSize)-levels)
			return 0, checkPageSize(codec, sec, int64(h.UncompressedPageSize)-levels)
		}
		return 0, nil
	}

	// The page's bytes as stored.
	size := int64(h.CompressedPageSize)
	pl.raw = grow(pl.raw, size)
	raw := pl.raw[:size]
	if _, err := pl.ra.ReadAt(raw, data); err != nil && err != io.EOF {
		return 0, &readError{err: err}
	}
	if scanDef && !v1 {
		r := int64(h.DataPageHeaderV2.V.RepetitionLevelsByteLength)
		defs = raw[r:levels] // checkChunk checked levels <= size
	}
	vals := raw[levels:]
	if packed {
		if !scanValues && !v1 {
			// Only the levels are needed: count what the values expand to.
			if err := checkPageSize(codec, io.NewSectionReader(bytes.NewReader(vals), 0, int64(len(vals))), int64(h.UncompressedPageSize)-levels); err != nil {
				return 0, err
			}
		} else if vals, err = pl.decompress(codec, vals, int64(h.UncompressedPageSize)-levels); err != nil {
			return 0, err
		}
	}
	if v1 && l.maxDef > 0 {
		// parquet-go reads a 4-byte length, then the levels, whatever
		// their encoding.
		if len(vals) < 4 || uint64(binary.LittleEndian.Uint32(vals)) > uint64(len(vals)-4) {
			return 0, nil // parquet-go refuses the page before decoding it
		}
		n := binary.LittleEndian.Uint32(vals)
		defs, vals = vals[4:4+n], vals[4+n:]
	}
	if scanDef {
		width := bits.Len8(l.maxDef)
		if most := hybridMost(nv); hybridValues(defs, width, most) > most {
			return 0, fmt.Errorf("its definition levels state more than %d values; the page holds %d", most, nv)
		}
	}
	if !scanValues {
		return 0, nil
	}
	return checkValues(kind, enc, dictIdx, vals, nv, limit, h.UncompressedPageSize, &pl.lens)
}

// checkValues checks the encoded values vals of a page of nv values
// (levels) in encoding enc; dictIdx says they are dictionary indexes.
func checkValues(kind parquet.Kind, enc pformat.Encoding, dictIdx bool, vals []byte, nv, limit int64, uncompressed int32, lens *[]int32) (extra int64, err error) {
	most := hybridMost(nv)
	switch {
	case dictIdx || enc == pformat.RLEDictionary:
		// A byte of bit width, then the indexes.
		if len(vals) == 0 || vals[0] > 32 {
			return 0, nil // parquet-go refuses the page before decoding it
		}
		if hybridValues(vals[1:], int(vals[0]), most) > most {
			return 0, fmt.Errorf("its dictionary indexes state more than %d values; the page holds %d", most, nv)
		}
	case enc == pformat.RLE:
		width := 0 // parquet-go's RLE encoding of values has no bit width
		switch kind {
		case parquet.Boolean: // a 4-byte length, then bits
			if len(vals) < 4 || uint64(binary.LittleEndian.Uint32(vals)) > uint64(len(vals)-4) {
				return 0, nil
			}
			vals, width = vals[4:4+binary.LittleEndian.Uint32(vals)], 1
		case parquet.Int32:
		default:
			return 0, nil // parquet-go does not decode it
		}
		if hybridValues(vals, width, most) > most {
			return 0, fmt.Errorf("its RLE values state more than %d values; the page holds %d", most, nv)
		}
	case enc == pformat.DeltaBinaryPacked:
		h, err := deltaHeader(vals)
		if err != nil {
			return 0, nil // parquet-go refuses the header before allocating
		}
		if h.total > nv {
			return 0, fmt.Errorf("its %s values state %d values; the page holds %d", enc, h.total, nv)
		}
	case enc == pformat.DeltaLengthByteArray:
		if kind != parquet.ByteArray {
			return 0, nil
		}
		// A dictionary page's buffer is sized by the sum of the lengths.
		lengths, _, err := deltaInt32s(vals, nv, (*lens)[:0])
		*lens = lengths[:0]
		if err != nil {
			if h, herr := deltaHeader(vals); herr == nil && h.total > nv {
				return 0, fmt.Errorf("its %s values state %d values; the page holds %d", enc, h.total, nv)
			}
			return 0, fmt.Errorf("its %s lengths: %v", enc, err)
		}
		var total int64
		for i, n := range lengths {
			if n < 0 {
				return 0, fmt.Errorf("its %s value %d has length %d", enc, i+1, n)
			}
			if total += int64(n); total > min(limit, math.MaxInt32) {
				return 0, &pageLimitError{fmt.Sprintf("%s values of more than %d bytes", enc, min(limit, math.MaxInt32)), limit}
			}
		}
	case enc == pformat.DeltaByteArray:
		if kind != parquet.ByteArray && kind != parquet.FixedLenByteArray {
			return 0, nil
		}
		// parquet-go sums the prefix and suffix lengths to size its buffer
		// before it checks them: decode both length streams and check that
		// they are whole, agree and build values within the limit.
		prefix, rest, err := deltaInt32s(vals, nv, (*lens)[:0])
		if err != nil {
			return 0, fmt.Errorf("its DELTA_BYTE_ARRAY prefix lengths: %v", err)
		}
		k := len(prefix)
		all, _, err := deltaInt32s(rest, nv, prefix)
		*lens = all[:0]
		if err != nil {
			return 0, fmt.Errorf("its DELTA_BYTE_ARRAY suffix lengths: %v", err)
		}
		prefix, suffix := all[:k], all[k:]
		if len(suffix) != len(prefix) {
			return 0, fmt.Errorf("its DELTA_BYTE_ARRAY values have %d prefix lengths and %d suffix lengths", len(prefix), len(suffix))
		}
		var total, last int64
		for i, p := range prefix {
			s := suffix[i]
			if p < 0 || s < 0 || int64(p) > last {
				return 0, fmt.Errorf("its DELTA_BYTE_ARRAY value %d has prefix %d and suffix %d after a value of %d bytes", i+1, p, s, last)
			}
			last = int64(p) + int64(s)
			if total += last; total > min(limit, math.MaxInt32) {
				return 0, &pageLimitError{fmt.Sprintf("DELTA_BYTE_ARRAY values of more than %d bytes", min(limit, math.MaxInt32)), limit}
			}
		}
		return max(total-int64(uncompressed), 0), nil
	}
	return 0, nil
}

// pageLimitError says that a page decodes to more than MaxRecordBytes.
type pageLimitError struct {
	what  string
	limit int64
}

func (e *pageLimitError) Error() string { return e.what }

// hybridValues returns how many values the runs of the RLE/bit-packed
// hybrid stream src (of values width bits wide) state, as parquet-go's rle
// decoders read it, stopping as soon as the count passes max or the stream
// ends or breaks (where parquet-go stops too, having allocated for the
// runs before).
func hybridValues(src []byte, width int, max int64) int64 {
	var n int64
	for i := 0; i < len(src) && n <= max; {
		u, k := binary.Uvarint(src[i:])
		if k <= 0 {
			break
		}
		i += k
		count := u >> 1
		if count > math.MaxInt32 {
			break // refused before allocating
		}
		if u&1 != 0 { // bit-packed: count groups of 8 values
			n += 8 * int64(count)
			i += int(count) * width // count*width bytes
			continue
		}
		n += int64(count) // a run of one value, (width+7)/8 bytes
		i += (width + 7) / 8
	}
	return n
}

// deltaHead is the header of a DELTA_BINARY_PACKED stream.
type deltaHead struct {
	blockSize, miniBlocks int
	total                 int64
	first                 int64
	rest                  []byte // after the header
}

var errDeltaHeader = errors.New("invalid DELTA_BINARY_PACKED header")

// deltaHeader reads a DELTA_BINARY_PACKED header and refuses it where
// parquet-go does, before it allocates for the values the header states.
func deltaHeader(src []byte) (deltaHead, error) {
	var h deltaHead
	var u [3]uint64
	for i := range u {
		v, k := binary.Uvarint(src)
		if k <= 0 {
			return h, errDeltaHeader
		}
		u[i], src = v, src[k:]
	}
	first, k := binary.Varint(src)
	if k <= 0 {
		return h, errDeltaHeader
	}
	// Exactly what parquet-go refuses (it takes more mini-blocks than
	// values in a block: none of their values is ever decoded).
	if u[0] == 0 || u[0]%128 != 0 || u[0] > 65536 || u[1] == 0 || u[1] > math.MaxInt64 || (u[0]/u[1])%32 != 0 || u[2] > math.MaxInt32 {
		return h, errDeltaHeader
	}
	return deltaHead{blockSize: int(u[0]), miniBlocks: int(u[1]), total: int64(u[2]), first: first, rest: src[k:]}, nil
}

// deltaInt32s decodes the DELTA_BINARY_PACKED stream of int32 at the start
// of src as parquet-go does, appending its values to dst, and returns the
// bytes after it; an error when the stream states more than most values
// or does not hold as many as it states.
func deltaInt32s(src []byte, most int64, dst []int32) ([]int32, []byte, error) {
	h, err := deltaHeader(src)
	if err != nil {
		return dst, src, err
	}
	if h.total > most {
		return dst, src, fmt.Errorf("%d values stated, the page holds %d", h.total, most)
	}
	if h.total == 0 {
		return dst, h.rest, nil
	}
	if h.first < math.MinInt32 || h.first > math.MaxInt32 {
		return dst, src, fmt.Errorf("first value %d out of range", h.first)
	}
	src = h.rest
	left := h.total - 1
	last := int32(h.first)
	dst = append(dst, last)
	per := h.blockSize / h.miniBlocks
	for left > 0 && len(src) > 0 {
		minDelta, k := binary.Varint(src)
		if k <= 0 {
			return dst, src, errDeltaHeader
		}
		src = src[k:]
		widths := src[:min(h.miniBlocks, len(src))]
		src = src[len(widths):]
		for _, w := range widths {
			n := int(min(int64(per), left))
			if w > 32 {
				return dst, src, fmt.Errorf("a mini-block of bit width %d, past 32", w)
			}
			var mb []byte
			if w != 0 {
				size := per * int(w) / 8
				mb = src[:min(size, len(src))]
				src = src[len(mb):]
			}
			for j := range n {
				v := unpackBits(mb, j, uint(w)) + int32(minDelta) + last
				dst, last = append(dst, v), v
			}
			if left -= int64(n); left == 0 {
				break
			}
		}
	}
	if left > 0 {
		return dst, src, fmt.Errorf("%d values missing", left)
	}
	return dst, src, nil
}

// unpackBits returns value j of the little-endian bit-packed values of
// width w in b (missing bytes read as zeros).
func unpackBits(b []byte, j int, w uint) int32 {
	if w == 0 {
		return 0
	}
	bit := j * int(w)
	var v uint64
	for i := range 5 { // w <= 32 bits span at most 5 bytes
		if at := bit/8 + i; at < len(b) {
			v |= uint64(b[at]) << (8 * i)
		}
	}
	return int32(uint32(v >> (bit % 8) & (1<<w - 1)))
}

// decompress returns the decompressed bytes of the page data src, which
// its header says expand to want bytes (an error when they expand to
// more), in a buffer of pl reused for every page.
func (pl *parquetLoad) decompress(codec pformat.CompressionCodec, src []byte, want int64) ([]byte, error) {
	if codec == pformat.Snappy {
		n, err := snappy.DecodedLen(src)
		if err != nil {
			return nil, errors.New("the snappy block has no valid length")
		}
		if int64(n) > want {
			return nil, fmt.Errorf("the %s data expands to more than the %d bytes the page header says", codec, want)
		}
		pl.plain = grow(pl.plain, int64(n))
		out, err := snappy.Decode(pl.plain[:n], src)
		if err != nil {
			return nil, fmt.Errorf("decompressing %s: %v", codec, err)
		}
		return out, nil
	}
	r, done, err := decompressor(codec, bytes.NewReader(src))
	if err != nil {
		return nil, fmt.Errorf("decompressing %s: %v", codec, err)
	}
	defer done()
	pl.plain = grow(pl.plain, want+1)
	n, err := io.ReadFull(r, pl.plain[:want+1])
	switch {
	case n > int(want):
		return nil, fmt.Errorf("the %s data expands to more than the %d bytes the page header says", codec, want)
	case err != nil && err != io.ErrUnexpectedEOF && err != io.EOF:
		return nil, fmt.Errorf("decompressing %s: %v", codec, err)
	}
	return pl.plain[:n], nil
}

// grow returns b with room for n bytes (b itself when it has).
func grow(b []byte, n int64) []byte {
	if int64(cap(b)) >= n {
		return b[:cap(b)]
	}
	return make([]byte, n)
}
