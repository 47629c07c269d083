package format

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// Calls of the decoders with limits, in one place.
func decodeJSONLimited(t testing.TB, r io.Reader, kind string, lim *Limits, workers int) (int, error) {
	got, d := wholeRecords(t, r, kind, lim, workers)
	return len(got), d.err
}

// decodeCSVLimited loads r as CSV into text columns a and b and returns
// the rows delivered before the error (counted, not kept).
func decodeCSVLimited(t testing.TB, r io.Reader, lim *Limits, workers int) (int, error) {
	o := ReadOptions{Format: InputCSV, Mapper: mustMapper(t, textCols("a", "b"), &MapperOptions{Extra: ExtraIgnore}), Workers: workers}
	if lim != nil {
		o.Limits = *lim
	}
	rd, err := NewReader(t.Context(), r, o)
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	n := 0
	for {
		b, err := rd.Next(t.Context())
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n += b.Len()
	}
}

func TestDecodersRefuseInputOverALimitNamingTheKeyAndPlace(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	cases := []struct {
		name    string
		csv     bool
		kind    string
		in      string
		lim     Limits
		wantKey string   // "" = no error
		want    []string // substrings of the error
		records int      // records delivered before the error
	}{
		{name: "json record over max_record_bytes", kind: InputJSON,
			in:  `[{"a":1},` + "\n" + `{"a":"` + long(100) + `"}]`,
			lim: Limits{MaxRecordBytes: 64}, wantKey: KeyMaxRecordBytes,
			want: []string{"record 2 (line 2", "limits.max_record_bytes = 64 bytes"}, records: 1},
		{name: "json record of exactly max_record_bytes passes", kind: InputJSON,
			in: `[{"a":"` + long(56) + `"}]`, lim: Limits{MaxRecordBytes: 64}, records: 1},
		{name: "json string over max_field_bytes names its field", kind: InputNDJSON,
			in:  `{"id":1,"title":"ok"}` + "\n" + `{"id":2,"title":"` + long(40) + `","body":"b"}`,
			lim: Limits{MaxFieldBytes: 16}, wantKey: KeyMaxFieldBytes,
			want: []string{"record 2 (line 2", "column title", "limits.max_field_bytes = 16 bytes"}, records: 1},
		{name: "json string of exactly max_field_bytes passes", kind: InputNDJSON,
			in: `{"title":"` + long(14) + `"}`, lim: Limits{MaxFieldBytes: 16}, records: 1},
		{name: "json string value split across read buffers", kind: InputNDJSON,
			in:  `{"id":1,"body":"` + long(100<<10) + `"}`,
			lim: Limits{MaxFieldBytes: 64 << 10}, wantKey: KeyMaxFieldBytes,
			want: []string{"record 1", "column body"}},
		{name: "json nested value over max_field_bytes names its field", kind: InputJSON,
			in:  `{"id":1,"address":{"city":"x","street":["` + long(10) + `","` + long(10) + `"]}}`,
			lim: Limits{MaxFieldBytes: 32}, wantKey: KeyMaxFieldBytes,
			want: []string{"record 1", "column address"}},
		{name: "json key over max_field_bytes", kind: InputJSON,
			in:  `[{"` + long(40) + `":1}]`,
			lim: Limits{MaxFieldBytes: 16}, wantKey: KeyMaxFieldBytes,
			want: []string{"record 1"}},
		{name: "json more records than max_records", kind: InputJSON,
			in:  `[{"a":1},{"a":2},{"a":3}]`,
			lim: Limits{MaxRecords: 2}, wantKey: KeyMaxRecords,
			want: []string{"record 3", "limits.max_records = 2 records"}, records: 2},
		{name: "ndjson more records than max_records", kind: InputNDJSON,
			in:  "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n",
			lim: Limits{MaxRecords: 2}, wantKey: KeyMaxRecords,
			want: []string{"record 3 (line 3, byte 17)", "limits.max_records = 2 records"}, records: 2},
		{name: "ndjson record over max_record_bytes", kind: InputNDJSON,
			in:  "{\"a\":1}\n{\"a\":\n\"" + long(100) + "\"}\n",
			lim: Limits{MaxRecordBytes: 64}, wantKey: KeyMaxRecordBytes,
			want: []string{"record 2 (line 2, byte 9)"}, records: 1},
		{name: "json object over max_object_bytes", kind: InputAuto,
			in:  `{"a":1}` + "\n" + `{"a":2}` + "\n" + `{"a":3}` + "\n",
			lim: Limits{MaxObjectBytes: 12}, wantKey: KeyMaxObjectBytes,
			want: []string{"limits.max_object_bytes = 12 bytes", "decompression bomb"}, records: 1},
		{name: "json object of exactly max_object_bytes passes", kind: InputAuto,
			in: `{"a":1}` + "\n" + `{"a":2}`, lim: Limits{MaxObjectBytes: 15}, records: 2},
		{name: "csv row over max_record_bytes", csv: true,
			in:  "a,b\n1,2\n3," + long(200) + "\n5,6\n",
			lim: Limits{MaxRecordBytes: 100}, wantKey: KeyMaxRecordBytes,
			want: []string{"line 3", "limits.max_record_bytes = 100 bytes"}, records: 1},
		{name: "csv row far over max_record_bytes is refused while reading", csv: true,
			in:  "a,b\n1,2\n3,\"" + long(1<<20) + "\"\n",
			lim: Limits{MaxRecordBytes: 100}, wantKey: KeyMaxRecordBytes,
			want: []string{"line 3", "limits.max_record_bytes = 100 bytes"}, records: 1},
		{name: "csv header over max_record_bytes", csv: true,
			in:  "a," + long(200) + "\n1,2\n",
			lim: Limits{MaxRecordBytes: 100}, wantKey: KeyMaxRecordBytes,
			want: []string{"line 1"}},
		{name: "csv field over max_field_bytes names its column", csv: true,
			in:  "a,b\n1,2\n3,\"x\n" + long(20) + "\"\n",
			lim: Limits{MaxFieldBytes: 16}, wantKey: KeyMaxFieldBytes,
			want: []string{"line 3", "column b", "limits.max_field_bytes = 16 bytes"}, records: 1},
		{name: "csv field of exactly max_field_bytes passes", csv: true,
			in: "a,b\n1," + long(16) + "\n", lim: Limits{MaxFieldBytes: 16}, records: 1},
		{name: "csv more rows than max_records", csv: true,
			in:  "a\n1\n2\n\n3\n",
			lim: Limits{MaxRecords: 2}, wantKey: KeyMaxRecords,
			want: []string{"line 5", "limits.max_records = 2"}, records: 2},
		{name: "csv object over max_object_bytes", csv: true,
			in:  "a\n1\n2\n3\n",
			lim: Limits{MaxObjectBytes: 5}, wantKey: KeyMaxObjectBytes,
			want: []string{"line 3", "limits.max_object_bytes = 5 bytes"}, records: 1},
		{name: "csv object of exactly max_object_bytes passes", csv: true,
			in: "a\n1\n2\n", lim: Limits{MaxObjectBytes: 6}, records: 2},
		{name: "csv gzip object over max_object_bytes counts decompressed bytes", csv: true,
			in:  string(gzipBytes(t, []byte("a\n"+strings.Repeat("1\n", 1000)))),
			lim: Limits{MaxObjectBytes: 1000}, wantKey: KeyMaxObjectBytes,
			want: []string{"limits.max_object_bytes = 1000 bytes"}, records: 499}, // "a\n" and 499 rows are 1000 bytes
	}
	for _, tc := range cases {
		for _, workers := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/workers=%d", tc.name, workers), func(t *testing.T) {
				var n int
				var err error
				if tc.csv {
					n, err = decodeCSVLimited(t, strings.NewReader(tc.in), &tc.lim, workers)
				} else {
					n, err = decodeJSONLimited(t, strings.NewReader(tc.in), tc.kind, &tc.lim, workers)
				}
				if n != tc.records {
					t.Errorf("delivered %d records, want %d", n, tc.records)
				}
				if tc.wantKey == "" {
					if err != nil {
						t.Fatalf("err = %v, want none", err)
					}
					return
				}
				var le *LimitError
				var re *RecordError
				if !errors.As(err, &le) || !errors.As(err, &re) {
					t.Fatalf("err = %v (%T), want a *RecordError wrapping a *LimitError", err, err)
				}
				if le.Key != tc.wantKey {
					t.Errorf("limit key = %q, want %q (err: %v)", le.Key, tc.wantKey, err)
				}
				msg := err.Error()
				for _, w := range append([]string{"raise " + tc.wantKey}, tc.want...) {
					if !strings.Contains(msg, w) {
						t.Errorf("error %q does not contain %q", msg, w)
					}
				}
			})
		}
	}
}

func TestZeroLimitsMeanTheDefaultsAndNegativeOnesAreRefused(t *testing.T) {
	got, err := (*Limits)(nil).withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	want := Limits{MaxObjectBytes: 4 << 30, MaxRecordBytes: 16 << 20, MaxFieldBytes: 16 << 20, MaxRecords: 100_000_000}
	if got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
	_, err = decodeJSONLimited(t, strings.NewReader(`{}`), InputJSON, &Limits{MaxRecords: -1}, 1)
	if err == nil || !strings.Contains(err.Error(), "limits.max_records is -1") {
		t.Errorf("negative max_records: err = %v", err)
	}
	_, err = decodeCSVLimited(t, strings.NewReader("a\n"), &Limits{MaxFieldBytes: -5}, 1)
	if err == nil || !strings.Contains(err.Error(), "limits.max_field_bytes is -5") {
		t.Errorf("negative max_field_bytes: err = %v", err)
	}
}
