package curate

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// benchStore is a localStore whose List reports sizes without hashing
// every file (localStore's ETags read whole files, which would dominate a
// benchmark of a large input).
type benchStore struct{ *localStore }

func (s benchStore) List(ctx context.Context, prefix string) ([]Object, error) {
	var out []Object
	err := filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == s.root {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") || strings.HasPrefix(d.Name(), "_temporary") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(s.root, p)
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, Object{Key: key, Size: info.Size(), ETag: "x"})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, err
}

// hydroCopies returns the hydropower CSV with its rows repeated n times
// under one header (the bench's input: ×1000 is 4,176,000 rows).
func hydroCopies(t testing.TB, n int) []byte {
	data, err := os.ReadFile(filepath.Join("testdata", "hydropower-consumption.csv"))
	if err != nil {
		t.Fatalf("read the reference CSV: %v", err)
	}
	nl := bytes.IndexByte(data, '\n')
	header, body := data[:nl+1], data[nl+1:]
	if len(body) > 0 && body[len(body)-1] != '\n' {
		body = append(body[:len(body):len(body)], '\n')
	}
	return append(header, bytes.Repeat(body, n)...)
}

// BenchmarkRunHydropower curates the hydropower CSV ×200 (835,200 rows,
// 25 MB) from a local store into snappy Parquet, commit included; it
// reports rows/s and input MB/s.
//
//	go test -run '^$' -bench RunHydropower -benchtime 5x ./curate/
func BenchmarkRunHydropower(b *testing.B) {
	const copies = 200
	data := hydroCopies(b, copies)
	root := b.TempDir()
	st := benchStore{&localStore{root: root}}
	if err := os.MkdirAll(filepath.Join(root, "data", "h"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "data", "h", "h.csv"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	spec := hydroSpec("data/h/", "curated/h/")
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	var rows int64
	for b.Loop() {
		res, err := Run(context.Background(), st, spec, nil)
		if err != nil {
			b.Fatal(err)
		}
		if res.Rows != 4176*copies {
			b.Fatalf("wrote %d rows, want %d", res.Rows, 4176*copies)
		}
		rows += res.Rows
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
