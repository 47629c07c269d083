package format

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/big"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	pformat "github.com/parquet-go/parquet-go/format"

	"github.com/sluicehq/sluice/schema"
)

func init() { decoders[InputParquet] = decodeParquetBatches }

// decodeParquetBatches loads a Parquet file — such as a curate job's
// output, the curated zone — into typed batches.
//
// Random access: a Parquet file's footer is at its end, so the decoder
// reads the object through io.ReaderAt. When r is one (an *os.File, a
// *bytes.Reader, an *io.SectionReader: anything with ReadAt and a Size
// method or a Stat method) it is read in place; otherwise it is copied to
// an unlinked temporary file, never into memory, bounded by
// Limits.MaxObjectBytes, and the file is gone when decoding ends.
//
// Columns: each declared column takes the Parquet column at its Field,
// or at its Path through nested groups (a null group is a NULL value);
// repeated columns (lists, maps) are refused. Values are converted from
// the Parquet type to the declared type, column chunk by column chunk,
// page by page, straight into the batch's vectors (parquet-go's decoded
// pages, without boxing a value):
//
//	Parquet column                          loads into
//	BOOLEAN                                 boolean, text, json
//	INT32, INT64, INT(8..64, signed or not) bigint, integer (range
//	                                        checked), double and real (when
//	                                        exact), text, json
//	FLOAT, DOUBLE                           double, real, text, json
//	                                        (NaN and infinities are
//	                                        refused, as the mapper does)
//	DATE                                    date, timestamp, text, json
//	TIMESTAMP(MILLIS|MICROS|NANOS), INT96   timestamp, text, json
//	DECIMAL                                 double, real, text, json;
//	                                        bigint and integer at scale 0
//	STRING, ENUM, JSON, BYTE_ARRAY          text, json, and every other
//	                                        type cast as a CSV value is
//	                                        (loadCaster; "" is NULL)
//	UUID                                    text
//
// Timestamps are read as UTC whether or not the file marks them
// adjusted to UTC; years outside 0001–9999 are refused, as the mapper
// refuses them. A column whose type cannot load into the declared one
// fails the object up front, naming the column and both types.
//
// Policies as for CSV (decodeCSVBatches), the Parquet schema standing in
// for the header: OnMissing for declared columns the file lacks, Extra
// for columns (top-level, or inside a declared group) no declared column
// takes — with json, kept per row as one JSON object of their values,
// nested by group, nulls left out, or NULL when all are null. A value
// that does not convert, or a NULL in a Required column, rejects the row
// (schema.Reject with Raw the row's declared values as a JSON object,
// under Quarantine; otherwise an error matching ErrRejected).
//
// Limits (parquetcheck.go): a Parquet file is outside input, and
// parquet-go trusts the sizes in it, so before a column chunk is decoded
// its page headers are read and checked: a page may hold at most
// Limits.MaxRecordBytes decoded (and MaxRecordBytes/8 values), the
// compressed data of a page must expand to no more than its declared
// size (SNAPPY states its size; GZIP, ZSTD and BROTLI pages are
// decompressed into a counter first, which costs a second decompression
// of those pages), and the decoded bytes of the columns read, summed, may
// not exceed MaxObjectBytes (a compression bomb). The footer may hold at
// most MaxRecordBytes and decoding it may take at most 16 times that; the
// file at most MaxRecords rows, a text value at most MaxFieldBytes. The
// counts parquet-go allocates by before it checks them are checked first:
// the footer's leaves, row groups and nesting (checkShape; and the row
// groups must hold the rows the footer says the file has), and inside
// each page the RLE runs of levels and dictionary indexes, DELTA headers
// and DELTA_BYTE_ARRAY lengths, which may state at most about twice the
// page's values or decode to at most MaxRecordBytes (checkPage; pages
// with such contents are decompressed a second time for it). A batch
// holds about 16 MiB of text at most, however few bytes of the file it
// took (fitBlock), and a DECIMAL at most 1 KiB. So memory stays near one
// page per column read plus one batch, whatever the file claims; a
// corrupt count is a *RecordError naming the column, the row group and
// the page's byte offset. LZ4_RAW columns are refused, because
// parquet-go misreads them (see checkCodec). A corrupt file that makes
// parquet-go panic is reported as a *RecordError, not a crash.
//
// One goroutine decodes a file, row group after row group
// (ReadOptions.Workers is not used yet); undeclared columns are read
// only with extra: json.
func decodeParquetBatches(ctx context.Context, r io.Reader, o *ReadOptions, s *sink) (rep Report, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &RecordError{Err: fmt.Errorf("corrupt Parquet file: the reader failed with %v", p)}
		}
	}()
	lim, err := o.Limits.withDefaults()
	if err != nil {
		return Report{}, err
	}
	ra, size, done, err := parquetSource(ctx, r, lim)
	if err != nil {
		return Report{}, err
	}
	defer done()
	f, err := openParquet(ra, size, lim)
	if err != nil {
		return Report{}, err
	}
	pl, err := newParquetLoad(f, ra, size, lim, o)
	if err != nil {
		return Report{}, err
	}
	defer pl.close()
	return pl.run(ctx, s)
}

// parquetSource returns random access to r: r itself when it has ReadAt
// and a size, otherwise an unlinked temporary file holding a copy. done
// releases the copy.
func parquetSource(ctx context.Context, r io.Reader, lim Limits) (ra io.ReaderAt, size int64, done func(), err error) {
	done = func() {}
	if at, ok := r.(io.ReaderAt); ok {
		size = -1
		switch x := r.(type) {
		case interface{ Size() int64 }:
			size = x.Size()
		case interface{ Stat() (fs.FileInfo, error) }:
			if fi, err := x.Stat(); err == nil && fi.Mode().IsRegular() {
				size = fi.Size()
			}
		}
		if size >= 0 {
			if size > lim.MaxObjectBytes {
				return nil, 0, done, &RecordError{Err: &LimitError{Key: KeyMaxObjectBytes, Limit: lim.MaxObjectBytes}}
			}
			return at, size, done, nil
		}
	}
	tmp, err := os.CreateTemp("", "sluice-parquet-*.parquet")
	if err != nil {
		return nil, 0, done, fmt.Errorf("format: spooling the Parquet object to a temporary file (it needs random access): %w", err)
	}
	// Unlinked at once where the system allows it, so that nothing is
	// left behind even by a crash; removed after closing elsewhere.
	unlinked := os.Remove(tmp.Name()) == nil
	done = func() {
		tmp.Close()
		if !unlinked {
			os.Remove(tmp.Name())
		}
	}
	src := &objectLimitReader{r: &errReader{r: ctxReaderOf(ctx, r)}, max: lim.MaxObjectBytes}
	n, err := io.Copy(spoolWriter{tmp}, src)
	if err != nil {
		done()
		var we spoolWriteError
		if errors.As(err, &we) {
			return nil, 0, func() {}, fmt.Errorf("format: spooling the Parquet object to a temporary file (it needs random access): %w", we.err)
		}
		if ctx.Err() != nil {
			return nil, 0, func() {}, ctx.Err()
		}
		return nil, 0, func() {}, &RecordError{Offset: n, Err: err}
	}
	return tmp, n, done, nil
}

// ctxReaderOf stops a copy once ctx is done.
func ctxReaderOf(ctx context.Context, r io.Reader) io.Reader {
	return readerFunc(func(p []byte) (int, error) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return r.Read(p)
	})
}

type readerFunc func(p []byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// spoolWriter tells the temporary file's errors (the machine's) from the
// object's.
type spoolWriter struct{ f *os.File }

type spoolWriteError struct{ err error }

func (e spoolWriteError) Error() string { return e.err.Error() }

func (w spoolWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		err = spoolWriteError{err}
	}
	return n, err
}

// parquetMagic starts and ends a Parquet file.
var parquetMagic = []byte("PAR1")

// openParquet checks the file's frame and footer size and opens it.
func openParquet(ra io.ReaderAt, size int64, lim Limits) (*parquet.File, error) {
	if size < 12 {
		return nil, &RecordError{Err: fmt.Errorf("not a Parquet file: %d bytes, too short for one", size)}
	}
	var head, tail [8]byte
	if _, err := ra.ReadAt(head[:4], 0); err != nil {
		return nil, &RecordError{Err: &readError{err: err}}
	}
	if _, err := ra.ReadAt(tail[:], size-8); err != nil {
		return nil, &RecordError{Err: &readError{err: err}}
	}
	switch {
	case bytes.HasPrefix(head[:], gzipMagic):
		return nil, &RecordError{Err: errors.New("not a Parquet file: it is gzip-compressed; Parquet compresses its pages itself, so store the file as written")}
	case bytes.Equal(head[:4], zstdMagic):
		return nil, &RecordError{Err: errors.New("not a Parquet file: it is zstd-compressed; Parquet compresses its pages itself, so store the file as written")}
	case !bytes.Equal(head[:4], parquetMagic):
		return nil, &RecordError{Err: fmt.Errorf("not a Parquet file: it starts with %q, not \"PAR1\"", head[:4])}
	case string(tail[4:]) == "PARE":
		return nil, &RecordError{Err: errors.New("the Parquet file is encrypted; sluice reads plaintext Parquet")}
	case !bytes.Equal(tail[4:], parquetMagic):
		return nil, &RecordError{Err: fmt.Errorf("not a complete Parquet file: it ends with %q, not \"PAR1\" (truncated?)", tail[4:])}
	}
	footer := int64(binary.LittleEndian.Uint32(tail[:4]))
	if footer > size-12 {
		return nil, &RecordError{Err: fmt.Errorf("corrupt Parquet file: its footer claims %d bytes of a %d-byte file", footer, size)}
	}
	if footer > lim.MaxRecordBytes {
		return nil, &RecordError{Err: fmt.Errorf("the Parquet footer (the schema and metadata) is %d bytes; for Parquet %s bounds it: %w", footer, KeyMaxRecordBytes, &LimitError{Key: KeyMaxRecordBytes, Limit: lim.MaxRecordBytes})}
	}
	buf := make([]byte, footer)
	if _, err := ra.ReadAt(buf, size-8-footer); err != nil {
		return nil, &RecordError{Err: &readError{err: err}}
	}
	if err := checkFooter(buf, footerBudget*lim.MaxRecordBytes); err != nil {
		if errors.Is(err, errFooterBudget) {
			return nil, &RecordError{Err: fmt.Errorf("the Parquet footer (the schema and metadata, %d bytes) would take more than %d bytes of memory to decode; for Parquet %s bounds it: %w",
				footer, footerBudget*lim.MaxRecordBytes, KeyMaxRecordBytes, &LimitError{Key: KeyMaxRecordBytes, Limit: lim.MaxRecordBytes})}
		}
		return nil, &RecordError{Err: fmt.Errorf("corrupt Parquet file: its footer: %w", err)}
	}
	if err := checkShape(buf); err != nil {
		return nil, &RecordError{Err: fmt.Errorf("corrupt Parquet file: %w", err)}
	}
	f, err := parquet.OpenFile(ra, size, parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return nil, &RecordError{Err: fmt.Errorf("corrupt Parquet file: %w", err)}
	}
	if n := f.NumRows(); n > lim.MaxRecords {
		return nil, &RecordError{Err: fmt.Errorf("the file has %d rows: %w", n, &LimitError{Key: KeyMaxRecords, Limit: lim.MaxRecords})}
	}
	return f, nil
}

// srcKind says how a leaf's physical values become its natural type.
type srcKind int

const (
	srcBool srcKind = iota
	srcInt32
	srcUint32
	srcInt64
	srcUint64
	srcFloat
	srcDouble
	srcDate
	srcTimestamp // INT64 in unit
	srcInt96
	srcBytes // UTF-8 text (or JSON, by nat)
	srcDecimal
	srcUUID
)

// pqLeaf is one Parquet leaf column being read: a declared column's
// source or an undeclared one kept by extra: json.
type pqLeaf struct {
	col    *parquet.Column
	label  string   // dotted path
	path   []string // for nesting extras
	maxDef byte
	src    srcKind
	nat    schema.Type // the natural type the values decode to
	unit   int64       // srcTimestamp: nanoseconds per unit
	scale  int32       // srcDecimal
	f32    bool        // a FLOAT column: format with 32 bits
	min    int64       // srcTimestamp, srcDate: the range allowed
	max    int64

	// Column (batch index) and type it loads into; -1 for an extra.
	j      int
	target schema.Type
	req    bool
	// direct: the values decode straight into the target's vector (the
	// natural type, or one whose values the vector holds alike and that
	// needs no check); otherwise they decode into nat2 and convert.
	direct bool
	nat2   schema.Vector // natural values of the block when converting (or an extra)

	// Reading.
	pages parquet.Pages
	page  parquet.Page
	defs  []byte // definition levels of the page; nil for a required leaf
	n     int    // levels in the page
	pos   int    // next level
	vpos  int    // next non-null value
	dict  parquet.Dictionary

	bools  []bool
	i32    []int32
	i64    []int64
	i96    []deprecated.Int96
	f32s   []float32
	f64s   []float64
	data   []byte   // BYTE_ARRAY bytes, or FIXED_LEN_BYTE_ARRAY values
	off    []uint32 // BYTE_ARRAY offsets
	size   int      // FIXED_LEN_BYTE_ARRAY size
	idx    []int32  // BYTE_ARRAY dictionary indexes (nil: plain)
	nvals  int      // non-null values the page holds
	maxLen int      // BYTE_ARRAY: the longest value of the page (or its dictionary)

	// Dictionary values, decoded once per column chunk.
	dBools []bool
	dI32   []int32
	dI64   []int64
	dI96   []deprecated.Int96
	dF32   []float32
	dF64   []float64
	dData  []byte
	dOff   []uint32
	dMax   int      // the longest BYTE_ARRAY dictionary value
	dBad   []string // BYTE_ARRAY text: per dictionary value, why it is refused ("": valid); nil when all are
	// Expanded dictionary values of the page.
	xBools []bool
	xI32   []int32
	xI64   []int64
	xI96   []deprecated.Int96
	xF32   []float32
	xF64   []float64
}

// parquetLoad reads one file's row groups into batches.
type parquetLoad struct {
	f      *parquet.File
	ra     io.ReaderAt
	size   int64
	lim    Limits
	o      *ReadOptions
	cols   []Column
	types  []schema.Column
	leaves []*pqLeaf // declared columns' sources, then extras (json)
	absent []int     // declared columns the file lacks
	extras []*pqLeaf // undeclared leaves kept as JSON (json policy)
	extraJ int       // the extra column, or -1
	undecl []string  // undeclared columns (dotted)
	rep    Report

	// Per row of the block: why it is rejected ("": kept), the column
	// and the error.
	bad      []string
	badCol   []string
	badErr   []error
	badCount int
	stack    []string // appendExtras' open groups
	first    []bool
	buf      []byte
	decoded  int64 // decoded bytes of the pages checked so far

	// checkPage's buffers, reused page after page: a page as stored, as
	// decompressed, and DELTA_BYTE_ARRAY lengths.
	raw, plain []byte
	lens       []int32
}

func newParquetLoad(f *parquet.File, ra io.ReaderAt, size int64, lim Limits, o *ReadOptions) (*parquetLoad, error) {
	pl := &parquetLoad{f: f, ra: ra, size: size, lim: lim, o: o, cols: o.Mapper.Columns(), types: o.Mapper.Schema(), extraJ: -1}
	opts := o.Mapper.Options()
	// The declared paths: full paths are taken, their prefixes are groups
	// whose other children are undeclared.
	taken := map[string]bool{}
	groups := map[string]bool{}
	var missing []string
	for j, c := range pl.cols {
		if opts.ExtraColumn != "" && c.Name == opts.ExtraColumn {
			pl.extraJ = j
			continue
		}
		label := strings.Join(c.Path, ".")
		taken[label] = true
		for k := 1; k < len(c.Path); k++ {
			groups[strings.Join(c.Path[:k], ".")] = true
		}
		col, err := findColumn(f.Root(), c.Path)
		if err != nil {
			return nil, &RecordError{Column: label, Err: err}
		}
		if col == nil {
			missing = append(missing, label)
			pl.absent = append(pl.absent, j)
			continue
		}
		l, err := newLeaf(col, label, lim)
		if err != nil {
			return nil, &RecordError{Column: label, Err: err}
		}
		l.j, l.target, l.req = j, pl.types[j].Type, c.Required
		if err := l.canLoad(l.target); err != nil {
			return nil, &RecordError{Column: label, Err: err}
		}
		t := l.target
		l.direct = l.nat == t || (l.src == srcInt32 && t == schema.Integer) || (l.src == srcFloat && t == schema.Real) ||
			(l.src == srcDate && t == schema.Timestamp) || (l.nat == schema.JSON && t == schema.Text)
		pl.leaves = append(pl.leaves, l)
	}
	if len(missing) > 0 && opts.OnMissing == MissingError && f.NumRows() > 0 {
		return nil, &RecordError{Column: missing[0], Err: errors.New("the declared column is not in the Parquet file; check its spelling and path in the spec, or set on_missing to warn")}
	}
	// Undeclared columns, in schema order.
	var walk func(c *parquet.Column, prefix string) error
	walk = func(c *parquet.Column, prefix string) error {
		for _, ch := range c.Columns() {
			name := ch.Name()
			if prefix != "" {
				name = prefix + "." + ch.Name()
			}
			switch {
			case taken[name]:
			case groups[name] && !ch.Leaf() && !ch.Repeated():
				if err := walk(ch, name); err != nil {
					return err
				}
			default:
				pl.undecl = append(pl.undecl, name)
				if opts.Extra == ExtraJSON {
					if err := pl.keepExtra(ch, name); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	if opts.Extra != ExtraIgnore {
		if err := walk(f.Root(), ""); err != nil {
			return nil, err
		}
	}
	if f.NumRows() > 0 {
		pl.rep.Missing = missing
		for _, name := range pl.undecl {
			pl.rep.Extra = append(pl.rep.Extra, ExtraField{Field: name, Record: 1})
		}
	}
	if opts.Extra == ExtraIgnore {
		pl.rep.Extra = nil
	}
	if pl.extraJ >= 0 {
		pl.rep.ExtraColumn = pl.cols[pl.extraJ].Name
	}
	return pl, nil
}

// keepExtra adds the leaves of the undeclared column c, named name, to
// the ones kept as JSON.
func (pl *parquetLoad) keepExtra(c *parquet.Column, name string) error {
	if hasRepeated(c) {
		return &RecordError{Column: name, Err: errors.New("the undeclared column is repeated (a list or map), which the extra column cannot keep; declare the columns to load, or set extra to ignore or warn")}
	}
	if !c.Leaf() {
		for _, ch := range c.Columns() {
			if err := pl.keepExtra(ch, name+"."+ch.Name()); err != nil {
				return err
			}
		}
		return nil
	}
	l, err := newLeaf(c, name, pl.lim)
	if err != nil {
		return &RecordError{Column: name, Err: fmt.Errorf("%w; the extra column cannot keep it: declare it, or set extra to ignore or warn", err)}
	}
	l.j, l.path = -1, strings.Split(name, ".")
	pl.extras = append(pl.extras, l)
	return nil
}

// findColumn returns the leaf at path, nil when the file lacks it, or an
// error when the path meets a repeated or group column.
func findColumn(root *parquet.Column, path []string) (*parquet.Column, error) {
	c := root
	for i, seg := range path {
		c = c.Column(seg)
		if c == nil {
			return nil, nil
		}
		at := strings.Join(path[:i+1], ".")
		if c.Repeated() {
			return nil, fmt.Errorf("the Parquet column %s is repeated (a list or map); sluice loads flat columns", at)
		}
		if i < len(path)-1 && c.Leaf() {
			return nil, fmt.Errorf("the Parquet column %s is not a group, so it has no field %s", at, path[i+1])
		}
	}
	if !c.Leaf() {
		if hasRepeated(c) {
			return nil, errors.New("the Parquet column is a list or map; sluice loads flat columns")
		}
		return nil, errors.New("the Parquet column is a group; declare its fields (group.field) instead")
	}
	return c, nil
}

// hasRepeated reports whether c is repeated or holds a repeated column
// (a list or a map).
func hasRepeated(c *parquet.Column) bool {
	if c.Repeated() {
		return true
	}
	for _, ch := range c.Columns() {
		if hasRepeated(ch) {
			return true
		}
	}
	return false
}

// DECIMAL values load up to maxDecimalBytes bytes (a FIXED_LEN_BYTE_ARRAY
// column's length, a BYTE_ARRAY value) and maxDecimalDigits of precision:
// far past any writer's (DECIMAL256 has 76 digits), and near where
// formatting one costs more per byte than decoding it (a big.Int's
// decimal text costs about 35 ns a byte at 1 KiB, 830 at 1 MiB).
const (
	maxDecimalBytes  = 1 << 10
	maxDecimalDigits = 2466 // digits of 2^8192
)

// Timestamps and dates are refused outside the years 0001–9999.
var (
	minTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

// newLeaf plans how the leaf column c decodes to its natural type.
func newLeaf(c *parquet.Column, label string, lim Limits) (*pqLeaf, error) {
	l := &pqLeaf{col: c, label: label, maxDef: byte(c.MaxDefinitionLevel())}
	if c.MaxRepetitionLevel() > 0 {
		return nil, errors.New("the Parquet column is repeated (inside a list or map); sluice loads flat columns")
	}
	t := c.Type()
	kind := t.Kind()
	var lt pformat.LogicalTypeValue
	if x := t.LogicalType(); x != nil {
		lt = x.Value
	}
	unsupported := func() (*pqLeaf, error) {
		return nil, fmt.Errorf("the Parquet column has type %s, which sluice does not load", parquetTypeName(c))
	}
	if d, ok := lt.(*pformat.DecimalType); ok {
		if kind == parquet.Boolean || kind == parquet.Float || kind == parquet.Double || kind == parquet.Int96 {
			return unsupported()
		}
		// The scale and the value's bytes bound the text a value becomes
		// and the time it takes (a 1 MiB decimal takes a second).
		if d.Scale < 0 || d.Scale > d.Precision || d.Precision > maxDecimalDigits {
			return nil, fmt.Errorf("the Parquet column has type %s, which sluice does not load: it loads decimals of 0 <= scale <= precision <= %d", parquetTypeName(c), maxDecimalDigits)
		}
		l.src, l.nat, l.scale = srcDecimal, schema.Text, d.Scale
		if kind == parquet.FixedLenByteArray {
			l.size = t.Length()
			if l.size < 1 || l.size > maxDecimalBytes {
				return nil, fmt.Errorf("the Parquet column has type %s of %d bytes, which sluice does not load: it loads decimals of 1 to %d bytes", parquetTypeName(c), l.size, maxDecimalBytes)
			}
		}
		return l, nil
	}
	switch kind {
	case parquet.Boolean:
		l.src, l.nat = srcBool, schema.Boolean
	case parquet.Int32:
		switch x := lt.(type) {
		case nil:
			l.src, l.nat = srcInt32, schema.BigInt
		case *pformat.IntType:
			l.src, l.nat = srcInt32, schema.BigInt
			if !x.IsSigned {
				l.src = srcUint32
			}
		case *pformat.DateType:
			l.src, l.nat = srcDate, schema.Date
			l.min, l.max = minTime.Unix()/86400, maxTime.Unix()/86400
		default:
			return unsupported()
		}
	case parquet.Int64:
		switch x := lt.(type) {
		case nil:
			l.src, l.nat = srcInt64, schema.BigInt
		case *pformat.IntType:
			l.src, l.nat = srcInt64, schema.BigInt
			if !x.IsSigned {
				l.src = srcUint64
			}
		case *pformat.TimestampType:
			l.src, l.nat = srcTimestamp, schema.Timestamp
			switch x.Unit.Value.(type) {
			case *pformat.MilliSeconds:
				l.unit = int64(time.Millisecond)
			case *pformat.MicroSeconds:
				l.unit = int64(time.Microsecond)
			case *pformat.NanoSeconds:
				l.unit = 1
			default:
				return unsupported()
			}
			per := int64(time.Second) / l.unit
			l.min, l.max = minTime.Unix()*per, (maxTime.Unix()+1)*per-1
			if l.unit == 1 { // nanoseconds reach only 1677–2262: all allowed
				l.min, l.max = math.MinInt64, math.MaxInt64
			}
		default:
			return unsupported()
		}
	case parquet.Int96:
		l.src, l.nat = srcInt96, schema.Timestamp
	case parquet.Float:
		l.src, l.nat, l.f32 = srcFloat, schema.Double, true
	case parquet.Double:
		l.src, l.nat = srcDouble, schema.Double
	case parquet.ByteArray:
		switch lt.(type) {
		case nil, *pformat.StringType, *pformat.EnumType:
			l.src, l.nat = srcBytes, schema.Text
		case *pformat.JsonType:
			l.src, l.nat = srcBytes, schema.JSON
		default:
			return unsupported()
		}
	case parquet.FixedLenByteArray:
		if _, ok := lt.(*pformat.UUIDType); ok && t.Length() == 16 {
			l.src, l.nat, l.size = srcUUID, schema.Text, 16
			break
		}
		return unsupported()
	default:
		return unsupported()
	}
	return l, nil
}

// parquetTypeName names c's type for messages: the physical type and
// its annotation, e.g. "INT64 TIMESTAMP(isAdjustedToUTC=true,unit=MICROS)".
func parquetTypeName(c *parquet.Column) string {
	t := c.Type()
	name := t.Kind().String()
	if lt := t.LogicalType(); lt != nil && lt.Value != nil {
		name += " " + lt.String()
	}
	return name
}

// loadsInto reports whether the leaf's values load into a t column.
func (l *pqLeaf) loadsInto(t schema.Type) bool {
	switch {
	case l.nat == t:
		return true
	case l.src == srcDecimal:
		return t.IsFloat() || t == schema.JSON || (t.IsInt() && l.scale == 0)
	case l.src == srcUUID:
		return false
	case l.nat == schema.BigInt:
		return t == schema.Integer || t.IsFloat() || t.IsText()
	case l.nat == schema.Double:
		return t == schema.Real || t.IsText()
	case l.nat == schema.Boolean, l.nat == schema.Timestamp:
		return t.IsText()
	case l.nat == schema.Date:
		return t == schema.Timestamp || t.IsText()
	case l.nat == schema.Text:
		return true // cast as a CSV value
	case l.nat == schema.JSON:
		return t == schema.Text
	}
	return false
}

// canLoad is loadsInto as an error that names both types and the types
// the column does load into.
func (l *pqLeaf) canLoad(t schema.Type) error {
	if l.loadsInto(t) {
		return nil
	}
	var can []string
	for _, u := range schema.Types {
		if l.loadsInto(u) {
			can = append(can, string(u))
		}
	}
	return fmt.Errorf("the Parquet column has type %s, which does not load into a %s column (it loads into %s); declare one of those types or convert the file", parquetTypeName(l.col), t, strings.Join(can, ", "))
}

func (pl *parquetLoad) close() {
	for _, l := range append(slices.Clone(pl.leaves), pl.extras...) {
		l.closeChunk()
	}
}

// run reads the row groups in order.
func (pl *parquetLoad) run(ctx context.Context, s *sink) (Report, error) {
	opts := pl.o.Mapper.Options()
	all := append(slices.Clone(pl.leaves), pl.extras...)
	meta := pl.f.Metadata()
	rowGroups := pl.f.RowGroups()
	var n int64 // rows read so far
	for g, rg := range rowGroups {
		rows := rg.NumRows()
		if rows == 0 {
			continue
		}
		chunks := rg.ColumnChunks()
		var groupBytes int64
		for _, l := range all {
			i := l.col.Index()
			if g >= len(meta.RowGroups) || i >= len(meta.RowGroups[g].Columns) || i >= len(chunks) {
				return pl.rep, &RecordError{Column: l.label, Err: fmt.Errorf("corrupt Parquet file: row group %d has no chunk for the column", g+1)}
			}
			cm := &meta.RowGroups[g].Columns[i].MetaData
			if err := pl.checkChunk(cm, l, g, rows); err != nil {
				return pl.rep, err
			}
			groupBytes += cm.TotalCompressedSize
			l.closeChunk()
			l.pages = chunks[i].Pages()
		}
		for done := int64(0); done < rows; {
			if err := ctx.Err(); err != nil {
				return pl.rep, err
			}
			b, err := s.Batch()
			if err != nil {
				return pl.rep, err
			}
			k := min(rows-done, int64(pl.o.BatchRows-b.Len()-len(b.Rejects)))
			if k <= 0 {
				k = 1 // the sink hands out batches with room; be safe
			}
			if k, err = pl.fitBlock(all, b, k, n+1); err != nil {
				return pl.rep, err
			}
			if err := pl.block(b, int(k), n+1, opts); err != nil {
				return pl.rep, err
			}
			b.Bytes += groupBytes * k / rows
			done += k
			n += k
			if heldBytes(b) >= maxBatchBytes {
				if err := s.flush(); err != nil {
					return pl.rep, err
				}
			}
		}
		for _, l := range all {
			l.closeChunk()
		}
	}
	pl.rep.Records = int(n)
	return pl.rep, nil
}

// fitBlock returns how many of the next k rows (the first numbered first)
// to decode into b so that the text they add keeps b within
// maxBatchBytes. The sink bounds a batch by its input bytes, and a
// Parquet page's bytes say little of its text: a dictionary value of 1 MiB
// repeats for every row that an index of a few bits names. So the rows of
// a block stay within the current page of every leaf that makes text,
// where the longest value is known (its page's, or its dictionary's), and
// that bounds what a row adds.
func (pl *parquetLoad) fitBlock(all []*pqLeaf, b *schema.Batch, k, first int64) (int64, error) {
	var per int64
	for _, l := range all {
		if !l.makesText() {
			continue
		}
		for l.pos == l.n {
			if err := l.nextPage(); err != nil {
				return 0, &RecordError{Record: int(first), Column: l.label, Err: err}
			}
		}
		k = min(k, int64(l.n-l.pos))
		per += l.rowText()
	}
	if per == 0 {
		return k, nil
	}
	return max(1, min(k, (maxBatchBytes-heldBytes(b))/per)), nil
}

// makesText reports whether l's values take text bytes (in the batch's
// vector, or in l's own when it converts or is an extra).
func (l *pqLeaf) makesText() bool {
	return l.src == srcBytes || l.src == srcDecimal || l.src == srcUUID || l.target.IsText() || l.j < 0
}

// rowText bounds the text bytes one row of l adds, in its current page
// (makesText leaves).
func (l *pqLeaf) rowText() int64 {
	w := int64(64) // a number, a boolean or a time as text
	switch l.src {
	case srcBytes:
		w = int64(l.maxLen)
	case srcDecimal:
		w = 3*int64(max(min(l.maxLen, maxDecimalBytes), l.size)) + 64 // digits, sign, point
	case srcUUID:
		w = 36
	}
	if l.j < 0 { // an extra: a JSON member, escaped
		w = 6*w + int64(len(l.label)) + 8
	}
	return w
}

// heldBytes is the text b holds.
func heldBytes(b *schema.Batch) int64 {
	var n int64
	for j := range b.Vecs {
		n += int64(len(b.Vecs[j].Bytes))
	}
	return n
}

// maxSpan is the longest value of BYTE_ARRAY offsets off.
func maxSpan(off []uint32) int {
	m := uint32(0)
	for i := 1; i < len(off); i++ {
		m = max(m, off[i]-off[i-1])
	}
	return int(m)
}

// block appends rows first .. first+k-1 (record numbers) to b.
func (pl *parquetLoad) block(b *schema.Batch, k int, first int64, opts MapperOptions) error {
	base := b.Len()
	pl.bad = slices.Grow(pl.bad[:0], k)[:k]
	pl.badCol = slices.Grow(pl.badCol[:0], k)[:k]
	pl.badErr = slices.Grow(pl.badErr[:0], k)[:k]
	clear(pl.bad)
	pl.badCount = 0
	mark := func(row int, label string, t schema.Type, err error) {
		if pl.bad[row] != "" {
			return
		}
		pl.badCol[row], pl.badErr[row] = label, err
		if t != "" {
			pl.bad[row] = fmt.Sprintf("column %s (%s): %v", label, t, err)
		} else {
			pl.bad[row] = fmt.Sprintf("column %s: %v", label, err)
		}
		pl.badCount++
	}
	for _, l := range pl.leaves {
		dst := &b.Vecs[l.j]
		if !l.direct {
			l.nat2.Reset(l.nat)
			dst = &l.nat2
		}
		if err := l.read(dst, k, first, pl.lim, func(row int, err error) { mark(row, l.label, l.target, err) }); err != nil {
			return err
		}
		if dst != &b.Vecs[l.j] {
			l.convert(&b.Vecs[l.j], k, func(row int, err error) { mark(row, l.label, l.target, err) })
		}
		if l.req {
			v := &b.Vecs[l.j]
			for i := range k {
				if v.Null[base+i] && pl.bad[i] == "" {
					mark(i, l.label, l.target, errors.New("required field is null"))
				}
			}
		}
	}
	for _, j := range pl.absent {
		v := &b.Vecs[j]
		for i := range k {
			v.AppendNull()
			if pl.cols[j].Required {
				mark(i, strings.Join(pl.cols[j].Path, "."), pl.types[j].Type, errors.New("required field is missing"))
			}
		}
	}
	for _, l := range pl.extras {
		l.nat2.Reset(l.nat)
		if err := l.read(&l.nat2, k, first, pl.lim, func(row int, err error) { mark(row, l.label, "", err) }); err != nil {
			return err
		}
	}
	if pl.extraJ >= 0 {
		v := &b.Vecs[pl.extraJ]
		for i := range k {
			if !pl.appendExtras(v, i) {
				v.AppendNull()
			}
		}
	}
	if opts.Extra == ExtraError && len(pl.undecl) > 0 {
		for i := range k {
			mark(i, pl.undecl[0], "", errors.New("the column is not declared; declare it, or set extra to ignore, warn or json"))
		}
	}
	if pl.badCount == 0 {
		for i := range k {
			b.EndRow(first+int64(i), 0)
		}
		return nil
	}
	for i := range k {
		if pl.bad[i] == "" {
			b.EndRow(first+int64(i), 0)
			continue
		}
		if !pl.o.Quarantine {
			return &rejectError{&RecordError{Record: int(first) + i, Column: pl.badCol[i], Err: pl.badErr[i]}}
		}
		b.Rejects = append(b.Rejects, schema.Reject{N: first + int64(i), Reason: pl.bad[i], Raw: pl.rawRow(b, base+i, i)})
	}
	for j := range b.Vecs {
		compactVector(&b.Vecs[j], base, pl.bad)
	}
	return nil
}

// rawRow is the Raw of a rejected row: its declared columns' values as
// one JSON object (the natural values where a column converts them).
func (pl *parquetLoad) rawRow(b *schema.Batch, row, i int) string {
	buf := append(pl.buf[:0], '{')
	for k, l := range pl.leaves {
		if k > 0 {
			buf = append(buf, ',')
		}
		buf = appendJSONString(buf, l.label)
		buf = append(buf, ':')
		if !l.direct {
			buf = appendNaturalJSON(buf, &l.nat2, i, l.f32)
		} else {
			buf = appendNaturalJSON(buf, &b.Vecs[l.j], row, l.f32)
		}
	}
	buf = append(buf, '}')
	pl.buf = buf
	return string(buf)
}

// appendExtras appends row i's undeclared values as one JSON object to
// v; false when they are all null.
func (pl *parquetLoad) appendExtras(v *schema.Vector, i int) bool {
	buf := append(pl.buf[:0], '{')
	stack, first := pl.stack[:0], append(pl.first[:0], true)
	defer func() { pl.stack, pl.first = stack, first }()
	comma := func() {
		if !first[len(first)-1] {
			buf = append(buf, ',')
		}
		first[len(first)-1] = false
	}
	any := false
	for _, l := range pl.extras {
		if l.nat2.Null[i] {
			continue
		}
		any = true
		parents := l.path[:len(l.path)-1]
		c := 0
		for c < len(stack) && c < len(parents) && stack[c] == parents[c] {
			c++
		}
		for len(stack) > c {
			buf = append(buf, '}')
			stack, first = stack[:len(stack)-1], first[:len(first)-1]
		}
		for len(stack) < len(parents) {
			comma()
			buf = appendJSONString(buf, parents[len(stack)])
			buf = append(buf, ':', '{')
			stack, first = append(stack, parents[len(stack)]), append(first, true)
		}
		comma()
		buf = appendJSONString(buf, l.path[len(l.path)-1])
		buf = append(buf, ':')
		buf = appendNaturalJSON(buf, &l.nat2, i, l.f32)
	}
	for range stack {
		buf = append(buf, '}')
	}
	buf = append(buf, '}')
	pl.buf = buf
	if !any {
		return false
	}
	v.AppendText(buf)
	return true
}

// appendNaturalJSON appends value i of v (a natural type) as JSON.
func appendNaturalJSON(dst []byte, v *schema.Vector, i int, f32 bool) []byte {
	if v.Null[i] {
		return append(dst, "null"...)
	}
	switch v.Type {
	case schema.BigInt, schema.Integer:
		return strconv.AppendInt(dst, v.Int[i], 10)
	case schema.Double, schema.Real:
		return appendFloat(dst, v.Float[i], f32)
	case schema.Boolean:
		return strconv.AppendBool(dst, v.Bool[i])
	case schema.Date:
		return append(v.Time[i].AppendFormat(append(dst, '"'), time.DateOnly), '"')
	case schema.Timestamp:
		return append(v.Time[i].AppendFormat(append(dst, '"'), time.RFC3339Nano), '"')
	case schema.JSON:
		return append(dst, v.TextBytes(i)...)
	}
	return appendJSONString(dst, v.TextString(i))
}

// appendFloat formats f as the shortest decimal that reads back as the
// same float64, or float32 for a FLOAT column.
func appendFloat(dst []byte, f float64, f32 bool) []byte {
	if f32 {
		return strconv.AppendFloat(dst, f, 'g', -1, 32)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

// compactVector removes the rows base+i with bad[i] != "" from v.
func compactVector(v *schema.Vector, base int, bad []string) {
	w := base
	for i, why := range bad {
		r := base + i
		if why != "" {
			continue
		}
		if w != r {
			v.Null[w] = v.Null[r]
			switch {
			case v.Type.IsInt():
				v.Int[w] = v.Int[r]
			case v.Type.IsFloat():
				v.Float[w] = v.Float[r]
			case v.Type == schema.Boolean:
				v.Bool[w] = v.Bool[r]
			case v.Type.IsTime():
				v.Time[w] = v.Time[r]
			default:
				from, to := v.Off[r], v.Off[r+1]
				n := copy(v.Bytes[v.Off[w]:], v.Bytes[from:to])
				v.Off[w+1] = v.Off[w] + int32(n)
			}
		}
		w++
	}
	v.Truncate(w)
}

// convert converts the block's k natural values in l.nat2 to l.target,
// appending them to dst.
func (l *pqLeaf) convert(dst *schema.Vector, k int, bad func(row int, err error)) {
	src := &l.nat2
	for i := range k {
		if src.Null[i] {
			dst.AppendNull()
			continue
		}
		if err := convertValue(dst, l.target, src, i, l.f32); err != nil {
			dst.AppendNull()
			bad(i, err)
		}
	}
}

// twoTo53 bounds the integers a float64 holds exactly.
const twoTo53 = 1 << 53

// convertValue appends value i of src, a natural type, converted to t.
func convertValue(dst *schema.Vector, t schema.Type, src *schema.Vector, i int, f32 bool) error {
	switch src.Type {
	case schema.BigInt:
		n := src.Int[i]
		switch {
		case t == schema.Integer:
			if n < math.MinInt32 || n > math.MaxInt32 {
				return fmt.Errorf("want integer, got %d (out of range)", n)
			}
			dst.AppendInt(n)
		case t.IsFloat():
			if n < -twoTo53 || n > twoTo53 || (t == schema.Real && (n < -(1<<24) || n > 1<<24)) {
				return fmt.Errorf("want %s, got %d (not exactly representable)", t, n)
			}
			dst.AppendFloat(float64(n))
		default: // text, json
			dst.AppendText(strconv.AppendInt(dst.Bytes[len(dst.Bytes):], n, 10))
		}
	case schema.Double:
		f := src.Float[i]
		if t == schema.Real {
			if math.Abs(f) > math.MaxFloat32 {
				return fmt.Errorf("want real, got %g (out of range)", f)
			}
			dst.AppendFloat(float64(float32(f)))
			return nil
		}
		dst.AppendText(appendFloat(dst.Bytes[len(dst.Bytes):], f, f32))
	case schema.Boolean:
		dst.AppendText(strconv.AppendBool(dst.Bytes[len(dst.Bytes):], src.Bool[i]))
	case schema.Date, schema.Timestamp:
		tm := src.Time[i]
		switch {
		case t == schema.Timestamp:
			dst.AppendTime(tm)
		case t == schema.JSON:
			dst.AppendText(appendNaturalJSON(dst.Bytes[len(dst.Bytes):], src, i, false))
		case src.Type == schema.Date:
			dst.AppendText(tm.AppendFormat(dst.Bytes[len(dst.Bytes):], time.DateOnly))
		default:
			dst.AppendText(tm.AppendFormat(dst.Bytes[len(dst.Bytes):], time.RFC3339Nano))
		}
	case schema.Text, schema.JSON:
		if t == schema.Text {
			dst.AppendText(src.TextBytes(i))
			return nil
		}
		return loadCaster(t)(dst, src.TextBytes(i)) // as a CSV value: "" is NULL
	default:
		return fmt.Errorf("cannot convert %s to %s", src.Type, t)
	}
	return nil
}

// formatDecimal appends the decimal whose unscaled value is n (or, when b
// is not nil, the big-endian two's complement integer b) and whose scale
// is scale.
func formatDecimal(dst []byte, n int64, b []byte, scale int32) []byte {
	var tmp [20]byte
	var digits []byte
	neg := false
	if b == nil {
		if n < 0 {
			neg = true
			digits = strconv.AppendUint(tmp[:0], uint64(-(n+1))+1, 10)
		} else {
			digits = strconv.AppendUint(tmp[:0], uint64(n), 10)
		}
	} else {
		var x big.Int
		x.SetBytes(b)
		if len(b) > 0 && b[0]&0x80 != 0 {
			x.Sub(&x, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
		}
		neg = x.Sign() < 0
		digits = x.Abs(&x).Append(nil, 10)
	}
	if neg {
		dst = append(dst, '-')
	}
	if scale <= 0 {
		dst = append(dst, digits...)
		for range -scale {
			dst = append(dst, '0')
		}
		return dst
	}
	if int(scale) >= len(digits) {
		dst = append(dst, '0', '.')
		for range int(scale) - len(digits) {
			dst = append(dst, '0')
		}
		return append(dst, digits...)
	}
	k := len(digits) - int(scale)
	dst = append(dst, digits[:k]...)
	dst = append(dst, '.')
	return append(dst, digits[k:]...)
}

// closeChunk releases the leaf's page and column chunk.
func (l *pqLeaf) closeChunk() {
	if l.page != nil {
		parquet.Release(l.page)
		l.page = nil
	}
	if l.pages != nil {
		l.pages.Close()
		l.pages = nil
	}
	l.dict = nil
	l.n, l.pos = 0, 0
}

// nextPage moves to the chunk's next data page.
func (l *pqLeaf) nextPage() error {
	if l.page != nil {
		parquet.Release(l.page)
		l.page = nil
	}
	p, err := l.pages.ReadPage()
	if err == io.EOF {
		return errors.New("corrupt Parquet file: the column chunk ends before its row group")
	}
	if err != nil {
		return fmt.Errorf("cannot decode the Parquet page (corrupt, or written in a way parquet-go does not read): %w", err)
	}
	l.page = p
	l.n, l.pos, l.vpos = int(p.NumValues()), 0, 0
	l.defs = nil
	nonNull := l.n
	if l.maxDef > 0 {
		l.defs = p.DefinitionLevels()
		if len(l.defs) != l.n {
			return fmt.Errorf("corrupt Parquet file: a page has %d definition levels for %d values", len(l.defs), l.n)
		}
		nonNull = 0
		for _, d := range l.defs {
			if d == l.maxDef {
				nonNull++
			}
		}
	}
	l.nvals = nonNull
	data := p.Data()
	d := p.Dictionary()
	if d != nil && d != l.dict {
		l.loadDict(d)
	}
	l.dict = d
	kind := l.col.Type().Kind()
	var have int
	l.idx = nil
	if d != nil {
		idx := data.Int32()
		n := d.Len()
		for _, i := range idx {
			if uint32(i) >= uint32(n) {
				return fmt.Errorf("corrupt Parquet file: a dictionary index %d is out of the dictionary's %d values", i, n)
			}
		}
		have = len(idx)
		switch kind {
		case parquet.Boolean:
			l.xBools = gather(l.xBools, l.dBools, idx)
			l.bools = l.xBools
		case parquet.Int32:
			l.xI32 = gather(l.xI32, l.dI32, idx)
			l.i32 = l.xI32
		case parquet.Int64:
			l.xI64 = gather(l.xI64, l.dI64, idx)
			l.i64 = l.xI64
		case parquet.Int96:
			l.xI96 = gather(l.xI96, l.dI96, idx)
			l.i96 = l.xI96
		case parquet.Float:
			l.xF32 = gather(l.xF32, l.dF32, idx)
			l.f32s = l.xF32
		case parquet.Double:
			l.xF64 = gather(l.xF64, l.dF64, idx)
			l.f64s = l.xF64
		case parquet.ByteArray:
			l.idx, l.data, l.off = idx, l.dData, l.dOff
			l.maxLen = l.dMax
		case parquet.FixedLenByteArray:
			// Indexes into the dictionary's values, not the values
			// copied out: a page holds many more indexes than it would
			// values of a long DECIMAL.
			l.idx, l.data = idx, l.dData
		}
	} else {
		switch kind {
		case parquet.Boolean:
			bits := data.Boolean()
			have = len(bits) * 8
			l.xBools = l.xBools[:0]
			for i := range min(nonNull, have) {
				l.xBools = append(l.xBools, bits[i>>3]>>(i&7)&1 != 0)
			}
			l.bools = l.xBools
		case parquet.Int32:
			l.i32 = data.Int32()
			have = len(l.i32)
		case parquet.Int64:
			l.i64 = data.Int64()
			have = len(l.i64)
		case parquet.Int96:
			l.i96 = data.Int96()
			have = len(l.i96)
		case parquet.Float:
			l.f32s = data.Float()
			have = len(l.f32s)
		case parquet.Double:
			l.f64s = data.Double()
			have = len(l.f64s)
		case parquet.ByteArray:
			l.data, l.off = data.ByteArray()
			have = len(l.off) - 1
			if have > 0 && int(l.off[have]) > len(l.data) {
				return errors.New("corrupt Parquet file: a page's values overrun its data")
			}
			l.maxLen = maxSpan(l.off)
		case parquet.FixedLenByteArray:
			l.data, l.size = data.FixedLenByteArray()
			if l.size > 0 {
				have = len(l.data) / l.size
			}
		}
	}
	if have < nonNull {
		return fmt.Errorf("corrupt Parquet file: a page has %d values for %d non-null rows", have, nonNull)
	}
	return nil
}

// loadDict decodes the dictionary of a column chunk.
func (l *pqLeaf) loadDict(d parquet.Dictionary) {
	data := d.Page().Data()
	switch l.col.Type().Kind() {
	case parquet.Boolean:
		bits := data.Boolean()
		l.dBools = l.dBools[:0]
		for i := range min(d.Len(), len(bits)*8) {
			l.dBools = append(l.dBools, bits[i>>3]>>(i&7)&1 != 0)
		}
	case parquet.Int32:
		l.dI32 = data.Int32()
	case parquet.Int64:
		l.dI64 = data.Int64()
	case parquet.Int96:
		l.dI96 = data.Int96()
	case parquet.Float:
		l.dF32 = data.Float()
	case parquet.Double:
		l.dF64 = data.Double()
	case parquet.ByteArray:
		l.dData, l.dOff = data.ByteArray()
		l.dMax = maxSpan(l.dOff)
		// Text is checked once per dictionary value, not per row.
		l.dBad = l.dBad[:0]
		if l.src == srcBytes {
			for i := range len(l.dOff) - 1 {
				if why := l.checkText(l.dData[l.dOff[i]:l.dOff[i+1]]); why != "" {
					if len(l.dBad) == 0 {
						l.dBad = make([]string, len(l.dOff)-1)
					}
					l.dBad[i] = why
				}
			}
		}
	case parquet.FixedLenByteArray:
		l.dData, _ = data.FixedLenByteArray()
	}
}

// checkText says why the text value b is refused, or "".
func (l *pqLeaf) checkText(b []byte) string {
	switch {
	case !utf8.Valid(b):
		return "not valid UTF-8"
	case bytes.IndexByte(b, 0) >= 0:
		return "text " + errNUL.Error()
	case l.nat == schema.JSON && !json.Valid(b):
		return fmt.Sprintf("want json, got %s (not valid JSON)", quoteShort(string(b)))
	}
	return ""
}

// read appends k rows of the leaf's natural values to dst (of type
// l.nat), rows first.. (record numbers); a value that does not decode is
// NULL and reported to bad with its row in the block.
func (l *pqLeaf) read(dst *schema.Vector, k int, first int64, lim Limits, bad func(row int, err error)) error {
	for row := 0; row < k; {
		if l.pos == l.n {
			if err := l.nextPage(); err != nil {
				return &RecordError{Record: int(first) + row, Column: l.label, Err: err}
			}
			continue
		}
		run := min(k-row, l.n-l.pos)
		if err := l.decodeRun(dst, run, row, lim, bad); err != nil {
			return &RecordError{Record: int(first) + row, Column: l.label, Err: err}
		}
		row += run
	}
	return nil
}

// decodeRun appends the next run values of the page (levels l.pos..)
// to dst; row is the block row of the first.
func (l *pqLeaf) decodeRun(dst *schema.Vector, run, row int, lim Limits, bad func(row int, err error)) error {
	defs, maxDef := l.defs, l.maxDef
	if defs != nil {
		defs = defs[l.pos : l.pos+run]
	}
	l.pos += run
	null := func(i int) bool { return defs != nil && defs[i] != maxDef }
	switch l.src {
	case srcInt64:
		vals := l.i64
		if defs == nil {
			dst.Int = append(dst.Int, vals[l.vpos:l.vpos+run]...)
			dst.Null = appendFalse(dst.Null, run)
			l.vpos += run
			return nil
		}
		for i := range run {
			if null(i) {
				dst.AppendNull()
				continue
			}
			dst.AppendInt(vals[l.vpos])
			l.vpos++
		}
	case srcInt32, srcUint32:
		vals := l.i32
		for i := range run {
			if null(i) {
				dst.AppendNull()
				continue
			}
			v := int64(vals[l.vpos])
			if l.src == srcUint32 {
				v = int64(uint32(vals[l.vpos]))
			}
			dst.AppendInt(v)
			l.vpos++
		}
	case srcUint64:
		vals := l.i64
		for i := range run {
			if null(i) {
				dst.AppendNull()
				continue
			}
			u := uint64(vals[l.vpos])
			l.vpos++
			if u > math.MaxInt64 {
				dst.AppendNull()
				bad(row+i, fmt.Errorf("want bigint, got %d (out of range)", u))
				continue
			}
			dst.AppendInt(int64(u))
		}
	case srcFloat, srcDouble:
		for i := range run {
			if null(i) {
				dst.AppendNull()
				continue
			}
			var f float64
			if l.src == srcFloat {
				f = float64(l.f32s[l.vpos])
			} else {
				f = l.f64s[l.vpos]
			}
			l.vpos++
			if math.IsInf(f, 0) || math.IsNaN(f) {
				dst.AppendNull()
				bad(row+i, fmt.Errorf("want double, got %g (not finite)", f))
				continue
			}
			dst.AppendFloat(f)
		}
	case srcBool:
		for i := range run {
			if null(i) {
				dst.AppendNull()
				continue
			}
			dst.AppendBool(l.bools[l.vpos])
			l.vpos++
		}
	case srcDate:
		for i := range run {
			if null(i) {
				dst.AppendNull()
				continue
			}
			d := int64(l.i32[l.vpos])
			l.vpos++
			if d < l.min || d > l.max {
				dst.AppendNull()
				bad(row+i, fmt.Errorf("date %d days from 1970-01-01 is out of range: years 0001 to 9999", d))
				continue
			}
			dst.AppendTime(time.Unix(d*86400, 0).UTC())
		}
	case srcTimestamp:
		unit := l.unit
		per := int64(time.Second) / unit
		for i := range run {
			if null(i) {
				dst.AppendNull()
				continue
			}
			v := l.i64[l.vpos]
			l.vpos++
			if v < l.min || v > l.max {
				dst.AppendNull()
				bad(row+i, fmt.Errorf("timestamp %d (%s since 1970) is out of range: years 0001 to 9999", v, time.Duration(unit)))
				continue
			}
			sec, frac := v/per, v%per
			if frac < 0 {
				sec, frac = sec-1, frac+per
			}
			dst.AppendTime(time.Unix(sec, frac*unit).UTC())
		}
	case srcInt96:
		for i := range run {
			if null(i) {
				dst.AppendNull()
				continue
			}
			x := l.i96[l.vpos]
			l.vpos++
			nanos := int64(uint64(x[1])<<32 | uint64(x[0]))
			day := int64(x[2]) - 2440588 // the Julian day of 1970-01-01
			t := time.Unix(day*86400, nanos).UTC()
			if t.Before(minTime) || t.After(maxTime) {
				dst.AppendNull()
				bad(row+i, errors.New("INT96 timestamp is out of range: years 0001 to 9999"))
				continue
			}
			dst.AppendTime(t)
		}
	case srcBytes:
		for i := range run {
			if null(i) {
				dst.AppendNull()
				continue
			}
			v := l.vpos
			l.vpos++
			why := ""
			if l.idx != nil {
				v = int(l.idx[v])
				if len(l.dBad) > 0 {
					why = l.dBad[v]
				}
			}
			b := l.data[l.off[v]:l.off[v+1]]
			if int64(len(b)) > lim.MaxFieldBytes {
				return &LimitError{Key: KeyMaxFieldBytes, Limit: lim.MaxFieldBytes}
			}
			if l.idx == nil {
				why = l.checkText(b)
			}
			if why != "" {
				dst.AppendNull()
				bad(row+i, errors.New(why))
				continue
			}
			dst.AppendText(b)
		}
	case srcDecimal:
		kind := l.col.Type().Kind()
		for i := range run {
			if null(i) {
				dst.AppendNull()
				continue
			}
			v := l.vpos
			l.vpos++
			buf := dst.Bytes[len(dst.Bytes):]
			switch kind {
			case parquet.Int32:
				buf = formatDecimal(buf, int64(l.i32[v]), nil, l.scale)
			case parquet.Int64:
				buf = formatDecimal(buf, l.i64[v], nil, l.scale)
			case parquet.FixedLenByteArray:
				if l.idx != nil {
					v = int(l.idx[v])
				}
				buf = formatDecimal(buf, 0, l.data[v*l.size:(v+1)*l.size], l.scale)
			default: // BYTE_ARRAY
				if l.idx != nil {
					v = int(l.idx[v])
				}
				b := l.data[l.off[v]:l.off[v+1]]
				if int64(len(b)) > lim.MaxFieldBytes {
					return &LimitError{Key: KeyMaxFieldBytes, Limit: lim.MaxFieldBytes}
				}
				if len(b) > maxDecimalBytes {
					dst.AppendNull()
					bad(row+i, fmt.Errorf("want a DECIMAL of at most %d bytes, got %d bytes", maxDecimalBytes, len(b)))
					continue
				}
				buf = formatDecimal(buf, 0, b, l.scale)
			}
			dst.AppendText(buf)
		}
	case srcUUID:
		for i := range run {
			if null(i) {
				dst.AppendNull()
				continue
			}
			v := l.vpos
			l.vpos++
			if l.idx != nil {
				v = int(l.idx[v])
			}
			u := l.data[v*16 : v*16+16]
			var s [36]byte
			const hex = "0123456789abcdef"
			p := 0
			for k, c := range u {
				if k == 4 || k == 6 || k == 8 || k == 10 {
					s[p] = '-'
					p++
				}
				s[p], s[p+1] = hex[c>>4], hex[c&0xf]
				p += 2
			}
			dst.AppendText(s[:])
		}
	default:
		return fmt.Errorf("unknown source kind %d", l.src)
	}
	return nil
}

// gather returns dst (emptied) with dict[i] for each i of idx: a page's
// dictionary indexes as values.
func gather[T any](dst, dict []T, idx []int32) []T {
	dst = dst[:0]
	for _, i := range idx {
		dst = append(dst, dict[i])
	}
	return dst
}

// appendFalse appends n false values.
func appendFalse(b []bool, n int) []bool {
	b = slices.Grow(b, n)[:len(b)+n]
	clear(b[len(b)-n:])
	return b
}
