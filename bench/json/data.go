package jsonbench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/sluicehq/sluice/schema"
)

// Shape is an input and the columns a load declares for it.
type Shape struct {
	Name   string
	Fields []string // the JSON field of each column
	Cols   []schema.Column
	Data   []byte // NDJSON
	Rows   int
}

// Posts is posts-shaped NDJSON ({"userId","id","title","body"}, about 370
// bytes a row with \n and \" escapes and a non-ASCII letter), as the load
// benchmark of issue 9 uses.
func Posts(n int) Shape {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `{"userId":%d,"id":%d,"title":"title of post %d: sunt aut facere repellat provident occaecati excepturi","body":"quia et suscipit\nsuscipit recusandae consequuntur expedita et cum\nreprehenderit molestiae ut ut quas totam\nnostrum rerum est autem sunt rem eveniet architecto \"%d\" über alles"}`+"\n", i%10+1, i, i, i)
	}
	return Shape{
		Name:   "posts",
		Fields: []string{"userId", "id", "title", "body"},
		Cols:   []schema.Column{{Name: "userid", Type: schema.BigInt}, {Name: "id", Type: schema.BigInt}, {Name: "title", Type: schema.Text}, {Name: "body", Type: schema.Text}},
		Data:   b.Bytes(), Rows: n,
	}
}

// Hydropower is the hydropower CSV (testdata, a copy of
// shared/data/hydropower) as NDJSON, repeated to at least n rows: short
// records, a null Code in 780 of 4,176, a float.
func Hydropower(n int) (Shape, error) {
	raw, err := os.ReadFile("testdata/hydropower-consumption.csv")
	if err != nil {
		return Shape{}, err
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")[1:]
	var one bytes.Buffer
	for _, l := range lines {
		f := splitCSV(strings.TrimRight(l, "\r"))
		code := "null"
		if f[1] != "" {
			code = strconv.Quote(f[1])
		}
		fmt.Fprintf(&one, `{"Entity":%s,"Code":%s,"Year":%s,"Hydropower (Terawatt-hours)":%s}`+"\n", strconv.Quote(f[0]), code, f[2], f[3])
	}
	reps := (n + len(lines) - 1) / len(lines)
	return Shape{
		Name:   "hydropower",
		Fields: []string{"Entity", "Code", "Year", "Hydropower (Terawatt-hours)"},
		Cols:   []schema.Column{{Name: "entity", Type: schema.Text}, {Name: "code", Type: schema.Text}, {Name: "year", Type: schema.BigInt}, {Name: "consumption", Type: schema.Double}},
		Data:   bytes.Repeat(one.Bytes(), reps), Rows: reps * len(lines),
	}, nil
}

// splitCSV splits a line of the hydropower file (quoted fields hold commas).
func splitCSV(l string) []string {
	var out []string
	for len(l) > 0 || len(out) < 4 {
		if strings.HasPrefix(l, `"`) {
			end := strings.Index(l[1:], `"`) + 1
			out = append(out, l[1:end])
			l = strings.TrimPrefix(l[end+1:], ",")
			continue
		}
		i := strings.IndexByte(l, ',')
		if i < 0 {
			out = append(out, l)
			l = ""
			continue
		}
		out = append(out, l[:i])
		l = l[i+1:]
	}
	return out
}

// Sum is a checksum of batches: every candidate must produce the same.
type Sum struct {
	Rows, Nulls, Ints int64
	Floats            float64
	TextBytes         int64
	TextHash          [8]uint64 // per column, over the text in row order
}

// Add adds b to s.
func (s *Sum) Add(b *schema.Batch) {
	s.Rows += int64(b.Len())
	for j := range b.Vecs {
		v := &b.Vecs[j]
		for i := range v.Null {
			if v.Null[i] {
				s.Nulls++
			}
		}
		for _, n := range v.Int {
			s.Ints += n
		}
		for _, f := range v.Float {
			s.Floats += f
		}
		s.TextBytes += int64(len(v.Bytes))
		for _, c := range v.Bytes {
			s.TextHash[j] = s.TextHash[j]*31 + uint64(c)
		}
	}
}
