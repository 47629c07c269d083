package format

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
)

// zstdMagic starts every Zstandard frame (RFC 8878, section 3.1.1).
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// zstdMaxWindow bounds the window a zstd frame may ask the decoder to
// keep: 128 MiB, the zstd command line tool's own default limit for
// decompression (--memory=128MB, window log 27). Frames written with
// every standard level, --ultra -22 and --long included, fit; a frame
// that asks for more (up to 3.75 TB is legal) is refused before its
// window is allocated.
const zstdMaxWindow = 128 << 20

// zstdInput returns br unchanged unless it starts with the zstd magic
// bytes; then it returns the decompressed stream, read as it is consumed
// (one frame after another, skippable frames skipped). Decompression is
// synchronous (no goroutines to stop) and its memory is bounded by
// zstdMaxWindow; openInput's limit on decompressed bytes applies after
// it, so a small zstd bomb stops at Limits.MaxObjectBytes.
//
// Errors of the stream are *zstdError: a corrupt stream is a problem of
// the data (IsReadFailure is false), while a failure of the reader under
// it keeps its *readError in the chain (IsReadFailure is true).
func zstdInput(br *bufio.Reader) (*bufio.Reader, error) {
	if head, _ := br.Peek(len(zstdMagic)); !bytes.Equal(head, zstdMagic) {
		return br, nil
	}
	zr, err := zstd.NewReader(br,
		zstd.WithDecoderConcurrency(1), // synchronous: nothing to leak when the caller stops reading
		zstd.WithDecoderMaxWindow(zstdMaxWindow),
		zstd.WithDecoderMaxMemory(zstdMaxWindow),
		zstd.WithDecoderLowmem(true),
	)
	if err != nil {
		return nil, &RecordError{Err: fmt.Errorf("reading zstd header: %w", err)}
	}
	return bufio.NewReader(&zstdReader{zr: zr}), nil
}

// zstdReader marks every error of the decoder except io.EOF as a
// *zstdError (so that a truncated stream's io.ErrUnexpectedEOF is not
// mistaken for truncated JSON or CSV), repeats it on later calls, and
// releases the decoder's buffers once the stream ends or fails.
type zstdReader struct {
	zr  *zstd.Decoder
	err error
}

func (r *zstdReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.zr.Read(p)
	if err != nil {
		if err != io.EOF {
			err = &zstdError{err: err}
		}
		r.err = err
		r.zr.Close()
	}
	return n, err
}

// zstdError is a failure while decompressing zstd input.
type zstdError struct{ err error }

func (e *zstdError) Error() string {
	var re *readError
	if errors.As(e.err, &re) {
		return e.err.Error() // the store failed, not the stream
	}
	if errors.Is(e.err, zstd.ErrWindowSizeExceeded) || errors.Is(e.err, zstd.ErrDecoderSizeExceeded) {
		return fmt.Sprintf("decompressing zstd input: the stream needs a window larger than %d MiB (written with --long or --ultra?) or is corrupt; recompress it with a smaller window", zstdMaxWindow>>20)
	}
	return "decompressing zstd input: " + e.err.Error() + "; the object is not a valid zstd stream (truncated or corrupt)"
}

func (e *zstdError) Unwrap() error { return e.err }
