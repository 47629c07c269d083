package format

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"
)

// bomb is a gzip stream made on the fly: head, then unit repeated until
// bodyBytes bytes of it, then tail — all decompressed. To make gigabytes
// cheaply it concatenates gzip members (RFC 1952 allows several; Go's
// gzip.Reader reads them as one stream): each of head, a 1 MiB block of
// body and tail is compressed once with BestSpeed, and the block's member
// is written again and again into an io.Pipe, so the test neither stores
// the input nor spends its time compressing.
type bomb struct {
	head, tail string
	unit       string // what the body repeats; its length divides 1 MiB
	bodyBytes  int64  // decompressed size of the body, a multiple of 1 MiB
}

// stream starts writing b into a pipe and returns its reader. The writer
// stops when the reader is closed — or with an error once it has written
// more than stopAfter decompressed bytes (so a decoder that never stops
// fails instead of running for minutes). written reports the decompressed
// bytes handed to the pipe so far.
func (b bomb) stream(t *testing.T, stopAfter int64) (r *io.PipeReader, written func() int64) {
	t.Helper()
	const block = 1 << 20
	if b.bodyBytes%block != 0 || block%len(b.unit) != 0 {
		t.Fatalf("bodyBytes %d is not a multiple of 1 MiB or unit length %d does not divide it", b.bodyBytes, len(b.unit))
	}
	head, tail := gzipLevel(t, []byte(b.head), gzip.BestSpeed), gzipLevel(t, []byte(b.tail), gzip.BestSpeed)
	body := gzipLevel(t, []byte(strings.Repeat(b.unit, block/len(b.unit))), gzip.BestSpeed)
	pr, pw := io.Pipe()
	var mu sync.Mutex
	var n int64
	add := func(k int64) {
		mu.Lock()
		n += k
		mu.Unlock()
	}
	go func() {
		if _, err := pw.Write(head); err != nil {
			return
		}
		add(int64(len(b.head)))
		for done := int64(0); done < b.bodyBytes; done += block {
			if done > stopAfter {
				pw.CloseWithError(fmt.Errorf("the decoder read %d decompressed bytes without stopping", done))
				return
			}
			if _, err := pw.Write(body); err != nil {
				return
			}
			add(block)
		}
		if _, err := pw.Write(tail); err != nil {
			return
		}
		add(int64(len(b.tail)))
		pw.Close()
	}()
	t.Cleanup(func() { pr.Close() })
	return pr, func() int64 { mu.Lock(); defer mu.Unlock(); return n }
}

// heapWatch samples the live heap (runtime/metrics, which does not stop
// the world) every millisecond while a decoder runs and records the peak.
// Above abortAt it closes the input with an error, so that a decoder that
// holds its input fails the test instead of exhausting the machine.
type heapWatch struct {
	peak uint64
	sys0 uint64
	stop chan struct{}
	done chan struct{}
}

const heapMetric = "/memory/classes/heap/objects:bytes"

func watchHeap(in *io.PipeReader, abortAt uint64) *heapWatch {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w := &heapWatch{sys0: ms.Sys, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		s := []metrics.Sample{{Name: heapMetric}}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > w.peak {
				w.peak = v
				if v > abortAt {
					in.CloseWithError(fmt.Errorf("test aborted the input: the heap reached %d MiB", v>>20))
				}
			}
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// finish stops sampling and returns the peak live heap and how much the
// memory obtained from the OS (MemStats.Sys, which does not shrink) grew
// while the decoder ran.
func (w *heapWatch) finish() (peak, sysGrowth uint64) {
	close(w.stop)
	<-w.done
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return w.peak, ms.Sys - w.sys0
}

func TestHugeOrEndlessInputIsRefusedWithBoundedMemory(t *testing.T) {
	const (
		gib      = int64(1) << 30
		memBound = 256 << 20 // bytes of heap and of Sys growth a decoder may use
	)
	// The 10 GB inputs are consumed only until max_object_bytes trips,
	// which these cases lower to 256 MiB (the default is 4 GiB) — and to
	// 32 MiB under -race, which makes decompressing and scanning ten times
	// slower — to keep each case to seconds on a shared 2-core machine.
	objLimit := int64(256 << 20)
	if raceEnabled {
		objLimit = 32 << 20
	}
	cases := []struct {
		name    string
		csv     bool
		in      bomb
		lim     Limits
		wantKey string
		want    []string
	}{
		{name: "json object holding a 2 GiB string", in: bomb{head: `{"id":1,"body":"`, unit: "a", bodyBytes: 2 * gib, tail: `"}`},
			wantKey: KeyMaxFieldBytes, want: []string{"record 1", "column body"}},
		{name: "json of 10 GB of spaces", in: bomb{head: "[", unit: " ", bodyBytes: 10 * gib},
			lim: Limits{MaxObjectBytes: objLimit}, wantKey: KeyMaxObjectBytes},
		{name: "ndjson of 10 GB of spaces", in: bomb{unit: " ", bodyBytes: 10 * gib},
			lim: Limits{MaxObjectBytes: objLimit}, wantKey: KeyMaxObjectBytes},
		{name: "csv of 10 GB of spaces", csv: true, in: bomb{unit: " ", bodyBytes: 10 * gib},
			lim: Limits{MaxObjectBytes: objLimit}, wantKey: KeyMaxRecordBytes, want: []string{"line 1"}},
		{name: "csv of 10 GB of 1 MiB rows of spaces", csv: true, in: bomb{head: "a\n", unit: strings.Repeat(" ", 1<<20-1) + "\n", bodyBytes: 10 * gib},
			lim: Limits{MaxObjectBytes: objLimit}, wantKey: KeyMaxObjectBytes, want: []string{fmt.Sprintf("line %d", objLimit>>20+1)}}, // "a\n" and 1 MiB rows: the last row is cut,
		{name: "csv with one 1 GiB field", csv: true, in: bomb{head: "Entity,Year\n\"", unit: "x", bodyBytes: gib, tail: "\",2000\n"},
			wantKey: KeyMaxRecordBytes, want: []string{"line 2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lim := tc.lim
			// A decoder that does not stop is failed after 512 MiB (or
			// twice the object limit): enough to show it holding the
			// input, if it does (the heap watch aborts it at 1 GiB).
			stopAfter := max(512<<20, 2*lim.MaxObjectBytes)
			in, written := tc.in.stream(t, stopAfter)
			w := watchHeap(in, 1<<30)
			var err error
			records := 0
			if tc.csv {
				records, err = decodeCSVLimited(t, in, &lim, 0)
			} else {
				records, err = decodeJSONLimited(t, in, InputAuto, &lim, 0)
			}
			peak, sys := w.finish()
			t.Logf("%s: %d records, %d MiB decompressed into the pipe, peak heap %d MiB, Sys grew %d MiB; err: %.200v",
				tc.name, records, written()>>20, peak>>20, sys>>20, err)
			if peak > memBound {
				t.Errorf("peak live heap %d MiB, want < %d MiB", peak>>20, memBound>>20)
			}
			if sys > memBound {
				t.Errorf("memory from the OS grew by %d MiB, want < %d MiB", sys>>20, memBound>>20)
			}
			var le *LimitError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v, want a *LimitError for %s", err, tc.wantKey)
			}
			if le.Key != tc.wantKey {
				t.Errorf("limit = %s, want %s", le.Key, tc.wantKey)
			}
			var re *RecordError
			if !errors.As(err, &re) {
				t.Errorf("err = %v (%T), want a *RecordError", err, err)
			}
			for _, s := range append([]string{tc.wantKey}, tc.want...) {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %.300q does not contain %q", err, s)
				}
			}
		})
	}
}
