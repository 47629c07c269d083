package jsonbench

import (
	"bufio"
	"context"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/format"
)

// peakRSS is the process's peak resident set (VmHWM), in bytes.
func peakRSS(tb testing.TB) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			return kb << 10
		}
	}
	tb.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// BenchmarkLoad1GB reads one 1 GiB posts-shaped NDJSON object (written
// into a pipe as it is read, never held) through format.NewReader with the
// default workers (GOMAXPROCS) and reports the process's peak RSS. Issue 9
// asks for under 512 MB (goal 256 MB).
//
//	cd bench/json && go test -run '^$' -bench Load1GB -benchtime 1x
func BenchmarkLoad1GB(b *testing.B) {
	block := Posts(10_000).Data // 3.6 MiB
	const size = 1 << 30
	sh := Posts(1)
	for b.Loop() {
		pr, pw := io.Pipe()
		go func() {
			for n := 0; n < size; n += len(block) {
				if _, err := pw.Write(block); err != nil {
					return
				}
			}
			pw.Close()
		}()
		var rows int64
		m, err := mapperFor(&sh)
		if err != nil {
			b.Fatal(err)
		}
		rd, err := format.NewReader(context.Background(), pr, format.ReadOptions{Format: format.InputNDJSON, Mapper: m})
		if err != nil {
			b.Fatal(err)
		}
		for {
			batch, err := rd.Next(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			rows += int64(batch.Len())
		}
		rd.Close()
		want := int64((size + len(block) - 1) / len(block) * 10_000)
		if rows != want {
			b.Fatalf("%d rows, want %d", rows, want)
		}
		b.SetBytes(int64(want / 10_000 * int64(len(block))))
	}
	b.ReportMetric(float64(peakRSS(b))/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(float64(runtime.GOMAXPROCS(0)), "workers")
}
