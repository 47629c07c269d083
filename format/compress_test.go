package format

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/klauspost/compress/zstd"
	"github.com/sluicehq/sluice/schema"
)

func TestZstdInputIsDecompressedForJSONAndCSV(t *testing.T) {
	// Two frames back to back, as zstd writes concatenated files.
	ndjson := append(zstded(t, []byte("{\"a\":1}\n")), zstded(t, []byte("{\"a\":2}\n"))...)
	d := readAll(t, bytes.NewReader(ndjson), ReadOptions{Format: InputNDJSON, Mapper: mustMapper(t, []Column{{Field: "a", Type: schema.BigInt}}, nil)})
	if d.err != nil || len(d.rows) != 2 || d.rows[1][0] != int64(2) {
		t.Fatalf("NDJSON in two zstd frames: %v, rows %v", d.err, d.rows)
	}
	d = loadCSV(t, zstded(t, []byte("\ufeffa\n1\n2\n")), textCols("a"), nil, ReadOptions{})
	if d.err != nil || fmt.Sprint(d.rows) != "[[1] [2]]" {
		t.Fatalf("zstd CSV with a byte order mark: %v, rows %v", d.err, d.rows)
	}
}

func TestZstdBombStopsAtMaxObjectBytes(t *testing.T) {
	// 256 MiB of zeros compress to a few KiB.
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, 1<<20)
	for range 256 {
		zw.Write(zero)
	}
	zw.Close()
	if buf.Len() > 1<<20 {
		t.Fatalf("the bomb is %d bytes compressed", buf.Len())
	}
	in, _, err := openInput(bytes.NewReader(buf.Bytes()), 8<<20)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, in)
	var le *LimitError
	if !errors.As(err, &le) || le.Key != KeyMaxObjectBytes || n != 8<<20 {
		t.Fatalf("read %d bytes, then %v; want exactly 8 MiB and a LimitError for %s", n, err, KeyMaxObjectBytes)
	}
}

func TestZstdErrorsAreDataErrorsUnlessTheStoreFails(t *testing.T) {
	var text strings.Builder // numbers that compress poorly
	text.WriteString("a\n")
	x := uint32(1)
	for range 5000 {
		x = x*1664525 + 1013904223
		fmt.Fprintf(&text, "%d\n", x)
	}
	csv := []byte(text.String())
	good := zstded(t, csv)
	corrupt := bytes.Clone(good)
	for i := 20; i < len(corrupt)-20; i += 7 {
		corrupt[i] ^= 0x5a
	}
	for name, in := range map[string][]byte{"corrupt": corrupt, "truncated": good[:len(good)/2], "magic only": zstdMagic} {
		err := loadCSV(t, in, textCols("a"), nil, ReadOptions{}).err
		var re *RecordError
		if !errors.As(err, &re) || IsReadFailure(err) || !strings.Contains(err.Error(), "zstd") {
			t.Errorf("%s zstd: got %v; want a RecordError about zstd that is not a read failure", name, err)
		}
	}

	// The store fails mid-object: a read failure, to retry.
	failing := io.MultiReader(bytes.NewReader(good[:len(good)/2]), iotest.ErrReader(errors.New("connection reset")))
	err := readAll(t, failing, ReadOptions{Format: InputCSV, Mapper: mustMapper(t, textCols("a"), nil)}).err
	if !IsReadFailure(err) || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("a store failing mid-zstd gave %v; want a read failure", err)
	}
}

func TestZstdRefusesAWindowLargerThanItsLimit(t *testing.T) {
	// A frame by hand: no content size, not single-segment, window
	// descriptor 2^(10+18) = 256 MiB, then one raw last block of 4 bytes.
	frame := append(bytes.Clone(zstdMagic), 0x00, 18<<3, 1|4<<3, 0, 0, 'a', '\n', '1', '\n')
	if got, err := io.ReadAll(mustZstdReader(t, frame, 512<<20)); err != nil || string(got) != "a\n1\n" {
		t.Fatalf("the hand-made frame does not decode with a large window: %q, %v", got, err)
	}
	err := loadCSV(t, frame, textCols("a"), nil, ReadOptions{}).err
	var re *RecordError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "window") {
		t.Fatalf("a frame asking for a 256 MiB window gave %v; want a RecordError about the window", err)
	}
}

func mustZstdReader(t *testing.T, b []byte, window uint64) io.Reader {
	t.Helper()
	zr, err := zstd.NewReader(bytes.NewReader(b), zstd.WithDecoderMaxWindow(window), zstd.WithDecoderMaxMemory(window))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(zr.Close)
	return zr
}

func zstded(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
