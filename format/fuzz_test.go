package format

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/schema"
)

var jsonKinds = []string{InputJSON, InputNDJSON, InputAuto}

// FuzzDecodeJSON checks that the JSON decoders never panic, that their
// errors are *RecordError, that a valid array of objects decodes to exactly
// what encoding/json (with UseNumber) makes of it and vice versa, that gzip
// changes nothing, and that parsing in parallel chunks (of a few bytes, so
// that the cuts fall everywhere) gives exactly what one goroutine gives.
func FuzzDecodeJSON(f *testing.F) {
	posts, err := os.ReadFile("testdata/posts.json")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(posts[:2000]), `[{"a":1},{"b":[1,{"c":"]}"}]}]`, "{\"a\":1}\n\n{\"a\":2}\n", `{"a":1}`, `[]`, `[`, `{`,
		`[{"a":1},]`, `[{"a":1} {"b":2}]`, `[1]`, `"x"`, ``, "\ufeff[{}]", "[{\"a\":\"\xff\"}]", `[{"a":[}]`, `{"a":1}]`,
		`[{"a":"\u00e9\ud800"}]`, `[{"a":1e999999999}]`, "[{}]\n]", `[{"a" 1}]`, "\x1f\x8b\x08",
		"{\"a\":\n1}\n{\"b\"\n:[\n2]}\n{}", `[{"a":1,"a":{"b":2},"\u0000":"\u2028<"}]`, "{\"a\":\"\xe2\x82\xac\"}\n{\"b\":true}",
	} {
		for k := range jsonKinds {
			f.Add([]byte(s), uint8(k))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, k uint8) {
		kind := jsonKinds[int(k)%len(jsonKinds)]
		recs, d := wholeRecords(t, bytes.NewReader(data), kind, nil, 1)
		err := d.err
		var re *RecordError
		if err != nil && !errors.As(err, &re) {
			t.Fatalf("error is %T, not *RecordError: %v", err, err)
		}
		for i := range d.n {
			if d.n[i] < 1 || (i > 0 && d.n[i] <= d.n[i-1]) || d.line[i] < 1 {
				t.Fatalf("row %d: N=%d Line=%d", i+1, d.n[i], d.line[i])
			}
		}
		chunks := []int{1, 7} // cuts everywhere; each costs a goroutine hand-over
		if len(data) > 256 {
			chunks = []int{61, 4096}
		}
		for _, chunk := range chunks {
			precs, pd := wholeRecordsChunked(t, data, kind, 3, chunk)
			if fmt.Sprint(pd.err) != fmt.Sprint(err) || fmt.Sprint(precs) != fmt.Sprint(recs) || fmt.Sprint(pd.line) != fmt.Sprint(d.line) ||
				fmt.Sprint(pd.n) != fmt.Sprint(d.n) || fmt.Sprint(pd.rejects) != fmt.Sprint(d.rejects) {
				t.Fatalf("parallel (chunks of %d bytes): %q lines %v, %v\nserial: %q lines %v, %v", chunk, precs, pd.line, pd.err, recs, d.line, err)
			}
		}
		checkSmallLimits(t, data, len(recs), err, func(lim *Limits) (int, error) {
			r, d := wholeRecords(t, bytes.NewReader(data), kind, lim, 1)
			return len(r), d.err
		})

		if bytes.HasPrefix(data, gzipMagic) {
			return
		}
		zrecs, zd := wholeRecords(t, bytes.NewReader(gzipLevel(t, data, gzip.NoCompression)), kind, nil, 1)
		if fmt.Sprint(zd.err) != fmt.Sprint(err) || len(zrecs) != len(recs) {
			t.Fatalf("gzip changes the result: %d records, %v; plain: %d records, %v", len(zrecs), zd.err, len(recs), err)
		}

		// Oracle: a JSON array of objects, as encoding/json sees it.
		body := bytes.TrimPrefix(data, utf8BOM)
		if kind != InputJSON || !utf8.Valid(body) || !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("[")) {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var all []json.RawMessage
		oerr := dec.Decode(&all)
		if oerr == nil {
			if _, tokErr := dec.Token(); tokErr == nil || tokErr.Error() != "EOF" {
				oerr = errors.New("trailing data")
			}
		}
		for _, v := range all {
			if !bytes.HasPrefix(v, []byte("{")) {
				oerr = errors.New("non-object element")
			}
		}
		switch {
		case oerr == nil && err != nil:
			t.Fatalf("encoding/json accepts the array, the decoder says %v", err)
		case oerr != nil && err == nil:
			t.Fatalf("the decoder accepts what encoding/json rejects (%v)", oerr)
		case oerr == nil:
			if len(all) != len(recs) {
				t.Fatalf("%d records, encoding/json has %d", len(recs), len(all))
			}
			for i := range all {
				want := canonicalJSON(t, all[i])
				if strings.Contains(want, `\u0000`) {
					want = "rejected: record " + strconv.Itoa(i+1) + " (line "
					if !strings.HasPrefix(recs[i], want) || !strings.HasSuffix(recs[i], "column _all: json contains a NUL character (\\u0000), which PostgreSQL cannot store") {
						t.Fatalf("record %d = %s, want it refused for its NUL", i+1, recs[i])
					}
					continue
				}
				if want != recs[i] {
					t.Fatalf("record %d = %s, encoding/json has %s", i+1, recs[i], want)
				}
			}
		}
	})
}

// wholeRecordsChunked is wholeRecords with workers goroutines on chunks of
// chunk bytes.
func wholeRecordsChunked(t testing.TB, data []byte, format string, workers, chunk int) ([]string, decoded) {
	t.Helper()
	return wholeText(readAll(t, bytes.NewReader(data), ReadOptions{Format: format, Mapper: wholeMapper(t), Workers: workers, Quarantine: true, chunkBytes: chunk}))
}

// checkSmallLimits decodes data again under small limits: the result is a
// *LimitError (inside a *RecordError) after at most as many records as
// without limits (n records, error err), or exactly the same result.
func checkSmallLimits(t *testing.T, data []byte, n int, err error, decode func(*Limits) (int, error)) {
	t.Helper()
	lim := &Limits{MaxObjectBytes: 300, MaxRecordBytes: 60, MaxFieldBytes: 12, MaxRecords: 3}
	got, lerr := decode(lim)
	var le *LimitError
	var re *RecordError
	switch {
	case errors.As(lerr, &le):
		if !errors.As(lerr, &re) || got > n || !strings.Contains(lerr.Error(), le.Key) {
			t.Fatalf("under limits: %d records (without: %d), error %T %v", got, n, lerr, lerr)
		}
	case fmt.Sprint(lerr) != fmt.Sprint(err) || got != n:
		t.Fatalf("under limits that did not trip: %d records, %v; without limits: %d records, %v", got, lerr, n, err)
	}
}

// FuzzCastString checks that CastString never panics, returns nil only
// for "", returns the Go type of its kind, and agrees with strconv.
func FuzzCastString(f *testing.F) {
	for _, s := range []string{"", "1965", "-1", "14.27", "1e39", "NaN", "true", "2020-08-07", "2020-08-07T14:00:00Z", "abc", "+0", "0x10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, k := range schema.Types {
			v, err := CastString(k, s)
			if err != nil {
				if v != nil || !strings.HasPrefix(err.Error(), "want "+string(k)) {
					t.Fatalf("CastString(%s, %q) = %v, %v", k, s, v, err)
				}
				continue
			}
			if (v == nil) != (s == "") {
				t.Fatalf("CastString(%s, %q) = %v", k, s, v)
			}
			if v == nil {
				continue
			}
			want := map[schema.Type]string{schema.Text: "string", schema.Integer: "int32", schema.BigInt: "int64", schema.Real: "float32", schema.Double: "float64", schema.Boolean: "bool", schema.Date: "time.Time", schema.Timestamp: "time.Time", schema.JSON: "string"}[k]
			if got := fmt.Sprintf("%T", v); got != want {
				t.Fatalf("CastString(%s, %q) is a %s", k, s, got)
			}
			switch k {
			case schema.Integer:
				if n, _ := strconv.ParseInt(s, 10, 32); int32(n) != v.(int32) {
					t.Fatalf("CastString(int32, %q) = %v", s, v)
				}
			case schema.Date, schema.Timestamp:
				if v.(time.Time).Location() != time.UTC {
					t.Fatalf("CastString(%s, %q) is not UTC", k, s)
				}
			}
		}
	})
}

// FuzzMapperCasts checks that the casts never panic, that errors are
// *RecordError, and that whole numbers cast to bigint exactly.
func FuzzMapperCasts(f *testing.F) {
	for _, s := range []string{"0", "-0.0", "1.5", "1e3", "12.50e1", "9223372036854775808", "1e999999999", "1e-999999999", "1709634030.5", "-1.5", "abc", "2024-03-05"} {
		f.Add(s)
	}
	types := []schema.Type{schema.BigInt, schema.Integer, schema.Double, schema.Text, schema.Boolean, schema.Timestamp, schema.Date, schema.JSON}
	f.Fuzz(func(t *testing.T, s string) {
		quoted, _ := json.Marshal(s)
		texts := []string{string(quoted)}
		isNumber := false
		var n json.Number
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		if err := dec.Decode(&n); err == nil && n.String() == s {
			texts = append(texts, s)
			isNumber = true
		}
		for _, text := range texts {
			for _, typ := range types {
				v, err := castOne(t, typ, text)
				var re *RecordError
				if err != nil && !errors.As(err, &re) {
					t.Fatalf("%s from %s: error %T %v", typ, text, err, err)
				}
				if err == nil && typ == schema.BigInt && isNumber && text == s && smallExponent(s) {
					r, _ := new(big.Rat).SetString(s)
					if !r.IsInt() || r.Num().Int64() != v.(int64) || !r.Num().IsInt64() {
						t.Fatalf("bigint from %s = %v", s, v)
					}
				}
			}
		}
	})
}

// smallExponent reports whether s has no exponent beyond ±1000, so that
// big.Rat can parse it cheaply.
func smallExponent(s string) bool {
	i := strings.IndexAny(s, "eE")
	if i < 0 {
		return true
	}
	e, err := strconv.Atoi(s[i+1:])
	return err == nil && e > -1000 && e < 1000
}
