package format

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/sluicehq/sluice/warehouse/driver"
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

// BenchmarkDecodeJSON measures streaming decoding of 10,000 posts against
// the baseline of loading the whole array with encoding/json (UseNumber),
// in the same run. Reproduce with
//
//	go test -run '^$' -bench DecodeJSON -benchmem ./format/
func BenchmarkDecodeJSON(b *testing.B) {
	const n = 10_000
	in := postsInput(n)
	mapper, err := NewMapper([]Column{
		{Field: "id", Type: driver.BigInt, Required: true},
		{Field: "userId", Name: "userid", Type: driver.BigInt},
		{Field: "title", Type: driver.Text},
		{Field: "body", Type: driver.Text},
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, decode func() (int, error)) {
		b.SetBytes(int64(len(in)))
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
	}
	b.Run("DecodeJSON", func(b *testing.B) {
		run(b, func() (int, error) {
			count := 0
			err := DecodeJSON(bytes.NewReader(in), InputJSON, nil, func(Record) error { count++; return nil })
			return count, err
		})
	})
	b.Run("DecodeJSON+Row", func(b *testing.B) {
		run(b, func() (int, error) {
			count := 0
			err := DecodeJSON(bytes.NewReader(in), InputJSON, nil, func(r Record) error {
				_, err := mapper.Row(r)
				count++
				return err
			})
			return count, err
		})
	})
	b.Run("DecodeJSON+ObjectRow", func(b *testing.B) {
		// The loader's path: per-object bookkeeping of missing and
		// undeclared fields (extra: warn, the default).
		run(b, func() (int, error) {
			count := 0
			om := mapper.Object()
			err := DecodeJSON(bytes.NewReader(in), InputJSON, nil, func(r Record) error {
				_, err := om.Row(r)
				count++
				return err
			})
			if err == nil {
				var rep Report
				if rep, err = om.Finish(); err == nil && rep.Warning() != "" {
					err = fmt.Errorf("unexpected findings: %s", rep.Warning())
				}
			}
			return count, err
		})
	})
	b.Run("baseline-encoding-json-whole-array", func(b *testing.B) {
		run(b, func() (int, error) {
			dec := json.NewDecoder(bytes.NewReader(in))
			dec.UseNumber()
			var all []map[string]any
			err := dec.Decode(&all)
			return len(all), err
		})
	})
}

// BenchmarkDecodeCSV measures decoding the hydropower file (4,176 rows).
func BenchmarkDecodeCSV(b *testing.B) {
	in, err := os.ReadFile("testdata/hydropower-consumption.csv")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	total := 0
	for b.Loop() {
		err := DecodeCSV(bytes.NewReader(in), CSVOptions{}, func(Record) error { total++; return nil })
		if err != nil {
			b.Fatal(err)
		}
	}
	if total%4176 != 0 {
		b.Fatalf("decoded %d rows, not a multiple of 4176", total)
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "records/s")
}
