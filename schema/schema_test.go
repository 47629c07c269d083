package schema

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseAcceptsCanonicalNamesAndTheOldCurateSpellings(t *testing.T) {
	for _, k := range Types {
		if got, err := Parse(string(k)); got != k || err != nil {
			t.Errorf("Parse(%q) = %q, %v", k, got, err)
		}
	}
	for s, want := range map[string]Type{"int32": Integer, "int64": BigInt, "float32": Real, "float64": Double, "string": Text, "bool": Boolean} {
		if got, err := Parse(s); got != want || err != nil {
			t.Errorf("Parse(%q) = %q, %v; want %q", s, got, err, want)
		}
	}
	for _, s := range []string{"", "Int32", "int", "float", "varchar", "BIGINT"} {
		if _, err := Parse(s); err == nil || !strings.Contains(err.Error(), "want one of integer, bigint, real, double, text, boolean, date, timestamp, json") {
			t.Errorf("Parse(%q) error = %v", s, err)
		}
	}
}

func TestFromRowsKeepsEveryValueAndItsType(t *testing.T) {
	cols := []Column{{"id", BigInt}, {"n", Integer}, {"f", Real}, {"s", Text}, {"b", Boolean}, {"d", Date}, {"j", JSON}}
	day := time.Date(2020, 8, 7, 0, 0, 0, 0, time.UTC)
	rows := [][]any{
		{int64(1), 2, float32(1.5), "héllo", true, day, `{"a":1}`},
		{int64(2), nil, nil, nil, nil, nil, nil},
		{int64(3), int32(-4), 2.25, "", false, day.Add(24 * time.Hour), []byte(`[]`)},
	}
	r, err := FromRows(cols, rows, 2)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]any
	var ns []int64
	for {
		b, err := r.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Check(); err != nil {
			t.Fatal(err)
		}
		for i := range b.Len() {
			got = append(got, b.Row(i))
		}
		ns = append(ns, b.N...)
	}
	want := [][]any{
		{int64(1), int64(2), 1.5, "héllo", true, day, `{"a":1}`},
		{int64(2), nil, nil, nil, nil, nil, nil},
		{int64(3), int64(-4), 2.25, "", false, day.Add(24 * time.Hour), `[]`},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		for j := range want[i] {
			if got[i][j] != want[i][j] {
				t.Errorf("row %d column %s = %#v, want %#v", i+1, cols[j].Name, got[i][j], want[i][j])
			}
		}
	}
	if len(ns) != 3 || ns[0] != 1 || ns[2] != 3 {
		t.Errorf("record numbers %v, want 1..3", ns)
	}
	if _, err := FromRows(cols, [][]any{{"x", 1, 1.0, "", true, day, "{}"}}, 0); err == nil || !strings.Contains(err.Error(), "row 1, column id (bigint): want an integer, got string") {
		t.Errorf("FromRows with a string id: %v", err)
	}
}

func TestTruncateDropsAHalfAppendedRow(t *testing.T) {
	b := NewBatch([]Column{{"s", Text}, {"n", BigInt}})
	b.Vecs[0].AppendString("kept")
	b.Vecs[1].AppendInt(1)
	b.EndRow(1, 1)
	b.Vecs[0].AppendString("dropped")
	b.Vecs[0].Truncate(b.Len())
	if err := b.Check(); err != nil {
		t.Fatal(err)
	}
	if got := b.Vecs[0].TextString(0); got != "kept" || len(b.Vecs[0].Bytes) != 4 {
		t.Errorf("after truncate: %q, arena %q", got, b.Vecs[0].Bytes)
	}
}
