package format

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// gzipMagic starts every gzip stream (RFC 1952).
var gzipMagic = []byte{0x1f, 0x8b}

// utf8BOM is the UTF-8 byte order mark some editors write first.
var utf8BOM = []byte{0xef, 0xbb, 0xbf}

// readError is a failure of the underlying reader (or of gzip), as
// opposed to a problem with the data's syntax.
type readError struct {
	gzip bool
	err  error
}

func (e *readError) Error() string {
	if e.gzip {
		return "decompressing gzip input: " + e.err.Error()
	}
	return "reading input: " + e.err.Error()
}

func (e *readError) Unwrap() error { return e.err }

// IsReadFailure reports whether err (a *RecordError from a decoder, or any
// error wrapping one) is a failure of the underlying reader — the store or
// the network failing mid-object — rather than a problem with the data. A
// corrupt gzip stream is data, so it is not a read failure. Callers retry
// read failures; they dead-letter data problems.
func IsReadFailure(err error) bool {
	var re *readError
	return errors.As(err, &re) && !re.gzip
}

// errReader marks every error except io.EOF as a readError, so that an
// io.ErrUnexpectedEOF from a truncated gzip stream is not mistaken for
// truncated JSON, and repeats the first error it saw on every later call
// (bufio.Reader.Peek consumes errors; not every reader repeats them).
type errReader struct {
	r    io.Reader
	gzip bool
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.r.Read(p)
	if err != nil {
		if err != io.EOF {
			err = &readError{gzip: r.gzip, err: err}
		}
		r.err = err
	}
	return n, err
}

// openInput returns the decompressed stream of r and the number of bytes
// of byte order mark it skipped (so positions still count from the start
// of the decompressed input). The stream fails with a *LimitError once it
// would return more than maxObject bytes (byte order mark included).
func openInput(r io.Reader, maxObject int64) (io.Reader, int64, error) {
	br := bufio.NewReader(&errReader{r: r}) // for peeking; large reads bypass it
	if head, _ := br.Peek(len(gzipMagic)); bytes.Equal(head, gzipMagic) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, 0, &RecordError{Err: fmt.Errorf("reading gzip header: %w", err)}
		}
		br = bufio.NewReader(&errReader{r: zr, gzip: true})
	}
	br, err := zstdInput(br) // zstd magic: see compress.go
	if err != nil {
		return nil, 0, err
	}
	lr := &objectLimitReader{r: br, max: maxObject}
	if head, _ := br.Peek(len(utf8BOM)); bytes.Equal(head, utf8BOM) {
		_, _ = br.Discard(len(utf8BOM))
		lr.n = int64(len(utf8BOM))
		return lr, int64(len(utf8BOM)), nil
	}
	return lr, 0, nil
}
