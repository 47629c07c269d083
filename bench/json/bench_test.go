package jsonbench

import (
	"bytes"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/schema"
)

// shapes are the inputs: 20,000 posts (7.6 MB) and the hydropower rows
// repeated to 20,880 (1.9 MB).
func shapes(t testing.TB) []Shape {
	h, err := Hydropower(20_000)
	if err != nil {
		t.Fatal(err)
	}
	return []Shape{Posts(20_000), h}
}

// cpuTime is the CPU time of the process so far (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDecode measures every candidate on every shape: MB/s of wall
// time (what a load sees on an idle machine) and MB/cpu-s (input bytes per
// second of CPU the process used, garbage collection included — steady on
// a busy machine, and the figure that says which code is faster). Each
// candidate's batches are checked once against sluice's (checksum of every
// value) before the timed loop, which counts the rows.
//
//	cd bench/json && go test -run '^$' -bench . -count 6 | tee new.txt
func BenchmarkDecode(b *testing.B) {
	for _, sh := range shapes(b) {
		var want Sum
		if err := Candidates[0].Decode(&sh, want.Add); err != nil {
			b.Fatal(err)
		}
		for _, c := range Candidates {
			b.Run(sh.Name+"/"+c.Name, func(b *testing.B) {
				var got Sum
				if err := c.Decode(&sh, got.Add); err != nil {
					b.Fatal(err)
				}
				if got != want {
					b.Fatalf("checksum %+v, want %+v", got, want)
				}
				b.SetBytes(int64(len(sh.Data)))
				b.ReportAllocs()
				cpu0 := cpuTime()
				for b.Loop() {
					rows := 0
					if err := c.Decode(&sh, func(b *schema.Batch) { rows += b.Len() }); err != nil {
						b.Fatal(err)
					}
					if rows != sh.Rows {
						b.Fatalf("%d rows, want %d", rows, sh.Rows)
					}
				}
				cpu := cpuTime() - cpu0
				b.ReportMetric(float64(len(sh.Data))*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
			})
		}
	}
}

// TestEveryCandidateMakesTheSameBatches guards the benchmark: the
// checksums agree, and they count every row.
func TestEveryCandidateMakesTheSameBatches(t *testing.T) {
	for _, sh := range shapes(t) {
		var want Sum
		if err := Candidates[0].Decode(&sh, want.Add); err != nil {
			t.Fatal(err)
		}
		if want.Rows != int64(sh.Rows) || want.TextBytes == 0 {
			t.Fatalf("%s: sluice made %+v for %d rows", sh.Name, want, sh.Rows)
		}
		for _, c := range Candidates[1:] {
			var got Sum
			if err := c.Decode(&sh, got.Add); err != nil {
				t.Errorf("%s/%s: %v", sh.Name, c.Name, err)
				continue
			}
			if got != want {
				t.Errorf("%s/%s: checksum %+v, want %+v", sh.Name, c.Name, got, want)
			}
		}
	}
}

func TestSumSeesADifferentValue(t *testing.T) {
	sh := Posts(10)
	var a, b Sum
	if err := Candidates[0].Decode(&sh, a.Add); err != nil {
		t.Fatal(err)
	}
	i := bytes.LastIndex(sh.Data, []byte("alles"))
	sh.Data = append(append(append([]byte(nil), sh.Data[:i]...), "allez"...), sh.Data[i+5:]...)
	if err := Candidates[0].Decode(&sh, b.Add); err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Error("a changed letter leaves the checksum alone")
	}
}
