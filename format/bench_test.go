package format

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/schema"
)

// postsInput builds n JSONPlaceholder-style posts as a pretty-printed array.
func postsInput(n int) []byte {
	var b bytes.Buffer
	b.WriteString("[\n")
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, "  {\n    \"userId\": %d,\n    \"id\": %d,\n    \"title\": \"title of post %d\",\n    \"body\": \"quia et suscipit\\nsuscipit recusandae consequuntur expedita et cum\\nreprehenderit molestiae ut ut quas totam\"\n  }", i%10+1, i, i)
	}
	b.WriteString("\n]\n")
	return b.Bytes()
}

// postsNDJSON builds n posts-shaped NDJSON lines (~370 bytes each, with
// escapes), as bench/json and the load benchmark use.
func postsNDJSON(n int) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `{"userId":%d,"id":%d,"title":"title of post %d: sunt aut facere repellat provident occaecati","body":"quia et suscipit\nsuscipit recusandae consequuntur expedita et cum\nreprehenderit molestiae ut ut quas totam\nnostrum rerum est autem sunt rem eveniet architecto \"%d\" ü"}`+"\n", i%10+1, i, i, i)
	}
	return b.Bytes()
}

// BenchmarkReadJSON measures decoding 10,000 posts into batches through
// NewReader — the load path — against the baseline of loading the whole
// array with encoding/json (UseNumber) into maps, in the same run.
// Reproduce with
//
//	go test -run '^$' -bench ReadJSON -benchmem ./format/
func BenchmarkReadJSON(b *testing.B) {
	const n = 10_000
	array, nd := postsInput(n), postsNDJSON(n)
	mapper, err := NewMapper([]Column{
		{Field: "id", Type: schema.BigInt, Required: true},
		{Field: "userId", Name: "userid", Type: schema.BigInt},
		{Field: "title", Type: schema.Text},
		{Field: "body", Type: schema.Text},
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, in []byte, decode func() (int, error)) {
		b.SetBytes(int64(len(in)))
		cpu0 := cpuTime()
		b.ReportAllocs()
		total := 0
		for b.Loop() {
			got, err := decode()
			if err != nil {
				b.Fatal(err)
			}
			if got != n {
				b.Fatalf("decoded %d records, want %d", got, n)
			}
			total += got
		}
		b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "records/s")
		b.ReportMetric(float64(len(in))*float64(b.N)/1e6/(cpuTime()-cpu0).Seconds(), "MB/cpu-s")
	}
	read := func(in []byte, format string, workers int) func() (int, error) {
		return func() (int, error) {
			rd, err := NewReader(context.Background(), bytes.NewReader(in), ReadOptions{Format: format, Mapper: mapper, Workers: workers})
			if err != nil {
				return 0, err
			}
			defer rd.Close()
			count := 0
			for {
				batch, err := rd.Next(context.Background())
				if err == io.EOF {
					if w := rd.Report().Warning(); w != "" {
						return count, fmt.Errorf("unexpected findings: %s", w)
					}
					return count, nil
				}
				if err != nil {
					return count, err
				}
				count += batch.Len()
			}
		}
	}
	b.Run("array", func(b *testing.B) { run(b, array, read(array, InputJSON, 1)) })
	b.Run("ndjson/workers=1", func(b *testing.B) { run(b, nd, read(nd, InputNDJSON, 1)) })
	b.Run("ndjson/workers=2", func(b *testing.B) { run(b, nd, read(nd, InputNDJSON, 2)) })
	b.Run("baseline-encoding-json-whole-array", func(b *testing.B) {
		run(b, array, func() (int, error) {
			dec := json.NewDecoder(bytes.NewReader(array))
			dec.UseNumber()
			var all []map[string]any
			err := dec.Decode(&all)
			return len(all), err
		})
	})
}

// cpuTime is the CPU time of the process so far: MB/cpu-s (input bytes per
// second of CPU, garbage collection included) stays steady on a machine
// busy with other work, where MB/s does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
