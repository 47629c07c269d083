package pipeline

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics and keeps its contract on any
// input: a spec or a non-empty, sorted ErrorList, and the same answer twice.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, c := range append(badSpecs, badJobSpecs...) {
		f.Add([]byte(c.yaml))
	}
	for _, c := range retriggerCases {
		f.Add([]byte(c.yaml))
	}
	f.Add([]byte(hydropower))
	f.Add([]byte("name: t\nx: &a [*a]\n"))
	f.Add([]byte("name: t\nloads:\n  l: {<<: {<<: {table: t}}, columns: {id: bigint}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		getenv := env(map[string]string{"A": "1s", "B": "https://x"})
		s, err := Parse("f.yaml", data, getenv)
		if err == nil {
			if s == nil || s.File != "f.yaml" || s.Name == "" {
				t.Fatalf("accepted spec without a name or file: %+v", s)
			}
			return
		}
		if s != nil {
			t.Fatalf("returned a spec and an error")
		}
		var list ErrorList
		if !errors.As(err, &list) || len(list) == 0 {
			t.Fatalf("error is not a non-empty ErrorList: %T %v", err, err)
		}
		lines := len(splitLines(data)) + 1
		for i, e := range list {
			if e.Msg == "" || e.File != "f.yaml" || e.Line < 0 || e.Line > lines || e.Col < 0 {
				t.Fatalf("bad error %+v (file has %d lines)", e, lines)
			}
			if i > 0 && (list[i-1].Line > e.Line || list[i-1].Line == e.Line && list[i-1].Col > e.Col) {
				t.Fatalf("errors not sorted:\n%v", err)
			}
		}
		if _, err2 := Parse("f.yaml", data, getenv); err2 == nil || err2.Error() != err.Error() {
			t.Fatalf("second parse differs:\n%v\n---\n%v", err, err2)
		}
	})
}
