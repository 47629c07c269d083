package format

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/schema"
)

// mixedNDJSON is n records of every kind a parallel decoder must keep in
// order: plain posts, records spread over several lines, several records
// on a line, blank lines, undeclared and duplicate fields, values the
// mapper refuses, nested paths.
func mixedNDJSON(n int) []byte {
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		switch i % 11 {
		case 3:
			fmt.Fprintf(&b, "{\n  \"id\": %d,\n  \"title\": \"spread\\nover lines\",\n  \"address\": {\"city\": \"Oslo\", \"zip\": %d}\n}\n", i, i)
		case 5:
			fmt.Fprintf(&b, `{"id":"not a number %d","title":"refused"}`+"\n", i)
		case 7:
			fmt.Fprintf(&b, `{"id":%d,"title":"two"} `, i)
		case 8:
			fmt.Fprintf(&b, "{\"id\":%d,\"title\":\"on one line\",\"extra%d\":[1,{\"a\":null}]}\n\n\n", i, i%3)
		case 9:
			fmt.Fprintf(&b, `{"id":%d,"id":%d,"title":null,"address":{"city":"Bergen"},"address":{"zip":"0150"}}`+"\n", i+1000000, i)
		default:
			fmt.Fprintf(&b, `{"userId":%d,"id":%d,"title":"post %d \"quoted\" é","body":"%s"}`+"\n", i%10, i, i, strings.Repeat("x", i%50))
		}
	}
	return b.Bytes()
}

// mixedMapper maps mixedNDJSON, keeping undeclared fields.
func mixedMapper(t testing.TB) *Mapper {
	return mustMapper(t, []Column{
		{Field: "id", Type: schema.BigInt},
		{Field: "userId", Type: schema.Integer},
		{Field: "title", Type: schema.Text},
		{Path: []string{"address", "city"}, Type: schema.Text},
		{Name: "_extra", Type: schema.JSON},
	}, &MapperOptions{Extra: ExtraJSON, ExtraColumn: "_extra"})
}

func TestParallelDecodingGivesExactlyWhatOneGoroutineGives(t *testing.T) {
	in := mixedNDJSON(3000)
	// Serial references, and inputs that stop at record 2001: a syntax
	// error, a truncated object, a record over max_records.
	bad := bytes.Index(in, []byte(`"id":2001,`))
	cases := []struct {
		name string
		in   []byte
		o    ReadOptions
	}{
		{"all records, quarantine", in, ReadOptions{Quarantine: true}},
		{"a refused record stops the object", in, ReadOptions{}},
		{"a syntax error", append(append(bytes.Clone(in[:bad]), "x"...), in[bad:]...), ReadOptions{Quarantine: true}},
		{"a truncated object", in[:bad+5], ReadOptions{Quarantine: true}},
		{"max_records", in, ReadOptions{Quarantine: true, Limits: Limits{MaxRecords: 2000}}},
		// The record past the limit is also a syntax error: the limit,
		// checked first by a serial read, is what every split reports.
		{"max_records before a syntax error", append(append(bytes.Clone(in[:bad]), "x"...), in[bad:]...), ReadOptions{Quarantine: true, Limits: Limits{MaxRecords: 2000}}},
		{"max_record_bytes", append(append(bytes.Clone(in[:bad]), strings.Repeat(" ", 300)+"\n"...), in[bad:]...), ReadOptions{Quarantine: true, Limits: Limits{MaxRecordBytes: 200}}},
		{"gzip", gzipBytes(t, in), ReadOptions{Quarantine: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			o.Format, o.Mapper, o.Workers, o.BatchRows = InputNDJSON, mixedMapper(t), 1, 100
			want := readAll(t, bytes.NewReader(tc.in), o)
			if len(want.rows) == 0 {
				t.Fatalf("the serial reference has %d rows (%v)", len(want.rows), want.err)
			}
			for _, p := range []struct{ workers, chunk int }{{2, 0}, {2, 1}, {3, 7}, {8, 64}, {3, 1000}, {2, 4096}} {
				o := o
				o.Workers, o.chunkBytes = p.workers, p.chunk
				got := readAll(t, bytes.NewReader(tc.in), o)
				for _, c := range []struct {
					what      string
					got, want any
				}{
					{"rows", got.rows, want.rows}, {"record numbers", got.n, want.n}, {"lines", got.line, want.line},
					{"rejects", got.rejects, want.rejects}, {"report", got.report, want.report}, {"error", got.err, want.err},
				} {
					if g, w := fmt.Sprintf("%+v", c.got), fmt.Sprintf("%+v", c.want); g != w {
						t.Errorf("%d workers, chunks of %d bytes: %s differ\n got %.300s\nwant %.300s", p.workers, p.chunk, c.what, g, w)
					}
				}
			}
		})
	}
}

func TestMixedNDJSONDecodesToTheRecordsItHolds(t *testing.T) {
	// Sanity of the reference itself: 3000 records, every fifth of eleven
	// refused, the first at record 5 on the line after 4 records of which
	// one spans 5 lines.
	in := mixedNDJSON(3000)
	d := readAll(t, bytes.NewReader(in), ReadOptions{Format: InputNDJSON, Mapper: mixedMapper(t), Quarantine: true, Workers: 2, chunkBytes: 300})
	if d.err != nil {
		t.Fatal(d.err)
	}
	refused := 3000/11 + 1 // i%11 == 5 for i = 5, 16, ..., 2995
	if len(d.rows) != 3000-refused || len(d.rejects) != refused {
		t.Fatalf("%d rows and %d rejects, want %d and %d", len(d.rows), len(d.rejects), 3000-refused, refused)
	}
	if r := d.rejects[0]; r.N != 5 || r.Line != 9 || !strings.Contains(r.Reason, `record 5 (line 9): column id: want bigint, got string "not a number 5"`) {
		t.Errorf("first reject = %+v", r)
	}
	// Rows: records 1, 2, 3, 4, 6, 7, 8, 9, ...
	if r := d.rows[7]; r[0] != int64(9) || r[1] != nil || r[2] != nil || r[3] != nil || r[4] != `{"address":{"zip":"0150"}}` {
		t.Errorf("record 9 (duplicate keys) = %v", r)
	}
	if d.rows[2][3] != "Oslo" || d.rows[2][4] != `{"address":{"zip":3}}` || d.rows[6][4] != `{"extra2":[1,{"a":null}]}` {
		t.Errorf("records 3 and 8 = %v, %v", d.rows[2], d.rows[6])
	}
	if got := fmt.Sprint(d.report.Extra); !strings.HasPrefix(got, "[{body 1 1} {address.zip 3 3} {extra2 8 11} {extra1 19 27}") {
		t.Errorf("extras reported: %s", got)
	}
}

// TestAnObjectFarLargerThanABatchIsReadInBoundedMemory streams posts-shaped
// NDJSON through NewReader — 240,000 records, 470 times the 512-row batch,
// 63 MiB — while sampling the live heap, once with one goroutine and once
// with four. The reader holds its read buffer or chunks and a few batches,
// so the peak stays under 40 MiB whatever the object's size (measured: 2–5
// MiB with one goroutine, 22–30 MiB with four, the metric counting garbage
// not yet collected). The decoder
// before this one handed over one record at a time, but a load that kept
// its rows (or DecodeJSON's callers that collected []map[string]any, as
// the engine did before streaming) needed about 8 times the input: 500
// MiB of live heap for this object. The same watch over a consumer that
// keeps a copy of every batch (about the input's size) shows the bound can
// fail.
func TestAnObjectFarLargerThanABatchIsReadInBoundedMemory(t *testing.T) {
	const (
		batchRows = 512
		block     = 1000 // records per block written to the pipe
		blocks    = 240
		bound     = 40 << 20
	)
	lines := postsNDJSON(block)
	m := mustMapper(t, []Column{{Field: "id", Type: schema.BigInt}, {Field: "userId", Type: schema.BigInt}, {Field: "title", Type: schema.Text}, {Field: "body", Type: schema.Text}}, nil)
	read := func(workers int, keep bool) (rows int, peak uint64) {
		pr, pw := io.Pipe()
		go func() {
			for range blocks {
				if _, err := pw.Write(lines); err != nil {
					return
				}
			}
			pw.Close()
		}()
		w := watchHeap(pr, 1<<30)
		rd, err := NewReader(context.Background(), pr, ReadOptions{Format: InputNDJSON, Mapper: m, BatchRows: batchRows, Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		defer rd.Close()
		var kept []*schema.Batch
		for {
			b, err := rd.Next(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.Len() > batchRows {
				t.Fatalf("a batch of %d rows, want at most %d", b.Len(), batchRows)
			}
			rows += b.Len()
			if keep {
				kept = append(kept, cloneBatch(b))
			}
		}
		peak, _ = w.finish()
		if keep && len(kept) == 0 {
			t.Fatal("kept nothing")
		}
		return rows, peak
	}
	for _, workers := range []int{1, 4} {
		rows, peak := read(workers, false)
		t.Logf("%d workers: %d rows (%d MiB) read with a peak live heap of %.1f MiB", workers, rows, len(lines)*blocks>>20, float64(peak)/(1<<20))
		if rows != block*blocks {
			t.Errorf("%d workers: %d rows, want %d", workers, rows, block*blocks)
		}
		if peak > bound {
			t.Errorf("%d workers: peak live heap %d MiB, want under %d MiB", workers, peak>>20, bound>>20)
		}
	}
	if _, peak := read(2, true); peak <= bound {
		t.Errorf("a consumer keeping every batch peaked at %d MiB, under the bound of %d MiB: the watch cannot see a reader that holds the object", peak>>20, bound>>20)
	}
}

// cloneBatch copies b's rows.
func cloneBatch(b *schema.Batch) *schema.Batch {
	c := schema.NewBatch(b.Columns)
	for i := range b.Len() {
		for j := range b.Vecs {
			if err := c.Vecs[j].AppendValue(b.Vecs[j].Value(i)); err != nil {
				panic(err)
			}
		}
		c.EndRow(b.N[i], b.Line[i])
	}
	return c
}

func TestRejectedRecordsMatchErrRejectedAndDecodeErrorsDoNot(t *testing.T) {
	m := mustMapper(t, []Column{{Field: "id", Type: schema.BigInt, Required: true}}, nil)
	d := readAll(t, strings.NewReader(`{"id":1}`+"\n"+`{"x":2}`), ReadOptions{Format: InputNDJSON, Mapper: m})
	var re *RecordError
	if !errors.Is(d.err, ErrRejected) || !errors.As(d.err, &re) || re.Record != 2 || len(d.rows) != 1 {
		t.Errorf("err = %v after %d rows, want record 2 matching ErrRejected after 1", d.err, len(d.rows))
	}
	d = readAll(t, strings.NewReader(`{"id":1}`+"\n"+`{"x":2`), ReadOptions{Format: InputNDJSON, Mapper: m, Quarantine: true})
	if d.err == nil || errors.Is(d.err, ErrRejected) {
		t.Errorf("a truncated object: err = %v, want a decode error that is not ErrRejected", d.err)
	}
}
