package driver

import (
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/schema"
)

func batchOf(t *testing.T, cols []schema.Column, rows ...[]any) *schema.Batch {
	t.Helper()
	b := schema.NewBatch(cols)
	for i, r := range rows {
		for j, v := range r {
			if err := b.Vecs[j].AppendValue(v); err != nil {
				t.Fatal(err)
			}
		}
		b.EndRow(int64(i+1), 0)
	}
	return b
}

func TestKeySetReportsEveryRepeatWithinAndAcrossBatches(t *testing.T) {
	for _, tc := range []struct {
		name  string
		table Table
		rows  [][]any // two batches of three rows
		want  []bool
	}{
		{"one integer key", Table{Columns: []schema.Column{{Name: "id", Type: schema.BigInt}, {Name: "v", Type: schema.Text}}, PrimaryKey: []string{"id"}},
			[][]any{{int64(1), "a"}, {int64(2), "b"}, {int64(1), "c"}, {int64(3), "d"}, {int64(2), "e"}, {int64(4), "f"}},
			[]bool{false, false, true, false, true, false}},
		{"a composite key of text and date", Table{Columns: []schema.Column{{Name: "site", Type: schema.Text}, {Name: "n", Type: schema.Integer}}, PrimaryKey: []string{"site", "n"}},
			// "ab",1 and "a",... must not collide by concatenation.
			[][]any{{"ab", int64(1)}, {"a", int64(1)}, {"ab", int64(2)}, {"ab", int64(1)}, {"a", nil}, {"a", nil}},
			[]bool{false, false, false, true, false, true}},
	} {
		k := NewKeySet(tc.table)
		var got []bool
		for _, part := range [][][]any{tc.rows[:3], tc.rows[3:]} {
			rep := k.Add(batchOf(t, tc.table.Columns, part...))
			if rep == nil {
				rep = make([]bool, len(part))
			}
			got = append(got, rep...)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) || !k.Repeats() {
			t.Errorf("%s: repeats %v (any %v), want %v", tc.name, got, k.Repeats(), tc.want)
		}
	}
	ids := []schema.Column{{Name: "id", Type: schema.BigInt}}
	k := NewKeySet(Table{Columns: ids, PrimaryKey: []string{"id"}})
	if rep := k.Add(batchOf(t, ids, []any{int64(1)}, []any{int64(2)})); rep != nil || k.Repeats() {
		t.Errorf("distinct keys reported as repeats: %v", rep)
	}
}

func TestKeySetPastItsExactBoundNeverMissesARepeat(t *testing.T) {
	cols := []schema.Column{{Name: "id", Type: schema.BigInt}}
	k := NewKeySet(Table{Columns: cols, PrimaryKey: []string{"id"}})
	const n = 3 * maxExactKeys
	add := func(from, to int64) []bool {
		b := schema.NewBatch(cols)
		for id := from; id < to; id++ {
			b.Vecs[0].AppendInt(id)
			b.EndRow(id, 0)
		}
		rep := k.Add(b)
		return append([]bool(nil), rep...)
	}
	falsePositives := 0
	for from := int64(0); from < n; from += 4096 {
		for _, r := range add(from, min(from+4096, n)) {
			if r {
				falsePositives++
			}
		}
	}
	if k.bloom == nil {
		t.Fatal("the set did not switch to its Bloom filter")
	}
	if falsePositives > 2 {
		t.Errorf("%d of %d new keys reported as repeats", falsePositives, n)
	}
	// Every key seen is reported again, from the exact part and after.
	for _, from := range []int64{0, maxExactKeys - 10, n - 4096} {
		for i, r := range add(from, from+4096) {
			if !r {
				t.Fatalf("key %d, seen before, is not reported as a repeat", from+int64(i))
			}
		}
	}
}
