package format

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/schema"
)

// castOne maps the JSON text value as field f of one record into a column
// of type typ.
func castOne(t testing.TB, typ schema.Type, value string) (any, error) {
	t.Helper()
	m := mustMapper(t, []Column{{Field: "f", Type: typ}}, nil)
	d := readAll(t, strings.NewReader(`{"f":`+value+`}`), ReadOptions{Format: InputNDJSON, Mapper: m, Workers: 1})
	if d.err != nil {
		return nil, d.err
	}
	if len(d.rows) != 1 {
		t.Fatalf("%d rows from one record", len(d.rows))
	}
	return d.rows[0][0], nil
}

func TestMapperCastsEachTypeFromTheValuesItAccepts(t *testing.T) {
	day := time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		typ  schema.Type
		in   string // JSON text
		want any
	}{
		{schema.BigInt, `42`, int64(42)},
		{schema.BigInt, `-9223372036854775808`, int64(-9223372036854775808)},
		{schema.BigInt, `9223372036854775807`, int64(9223372036854775807)},
		{schema.BigInt, `1.0`, int64(1)},
		{schema.BigInt, `1e3`, int64(1000)},
		{schema.BigInt, `12.50e1`, int64(125)},
		{schema.BigInt, `-0.0`, int64(0)},
		{schema.BigInt, `-0`, int64(0)},
		{schema.BigInt, `0e-99999999999`, int64(0)},
		{schema.BigInt, `"123"`, int64(123)},
		{schema.BigInt, `"-7"`, int64(-7)},
		{schema.BigInt, `"\u0031\u0032"`, int64(12)},
		{schema.Integer, `2147483647`, int64(2147483647)},
		{schema.Integer, `-2147483648`, int64(-2147483648)},
		{schema.Integer, `"17"`, int64(17)},
		{schema.Double, `1.5`, 1.5},
		{schema.Double, `-2e-3`, -0.002},
		{schema.Double, `10`, 10.0},
		{schema.Double, `"3.25"`, 3.25},
		{schema.Text, `"hello"`, "hello"},
		{schema.Text, `""`, ""},
		{schema.Text, `"tab\there \"q\" \u00e9\ud83d\ude00 \ud800"`, "tab\there \"q\" é😀 \ufffd"},
		{schema.Text, `1.50`, "1.50"},
		{schema.Text, `true`, "true"},
		{schema.Text, `false`, "false"},
		{schema.Boolean, `true`, true},
		{schema.Boolean, `false`, false},
		{schema.Boolean, `"true"`, true},
		{schema.Boolean, `"false"`, false},
		{schema.Timestamp, `"2024-03-05T10:20:30Z"`, time.Date(2024, 3, 5, 10, 20, 30, 0, time.UTC)},
		{schema.Timestamp, `"2024-03-05T12:20:30.123456789+02:00"`, time.Date(2024, 3, 5, 10, 20, 30, 123456789, time.UTC)},
		{schema.Timestamp, `0`, time.Unix(0, 0).UTC()},
		{schema.Timestamp, `1709634030`, time.Date(2024, 3, 5, 10, 20, 30, 0, time.UTC)},
		{schema.Timestamp, `1709634030.5`, time.Date(2024, 3, 5, 10, 20, 30, 500000000, time.UTC)},
		{schema.Timestamp, `1709634030.1234567891`, time.Date(2024, 3, 5, 10, 20, 30, 123456789, time.UTC)},
		{schema.Timestamp, `-1.5`, time.Unix(-2, 500000000).UTC()},
		{schema.Timestamp, `1.7e9`, time.Unix(1700000000, 0).UTC()},
		{schema.Date, `"2024-03-05"`, day},
		{schema.JSON, `{"b":1.0, "a":["<x>",null,true]}`, `{"a":["<x>",null,true],"b":1.0}`},
		{schema.JSON, `{"a":1,"a":2}`, `{"a":2}`},
		{schema.JSON, `"text"`, `"text"`},
		{schema.JSON, `"\u2028\/\u0007"`, `"\u2028/\u0007"`},
		{schema.JSON, `12`, `12`},
		{schema.JSON, `false`, `false`},
		{schema.JSON, ` [ 1 , { } , [ ] ] `, `[1,{},[]]`},
		// A backslash followed by u0000 is not a NUL character.
		{schema.Text, `"a\\u0000b"`, `a\u0000b`},
		{schema.JSON, `"a\\u0000b"`, `"a\\u0000b"`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s from %s", tt.typ, tt.in), func(t *testing.T) {
			got, err := castOne(t, tt.typ, tt.in)
			if err != nil {
				t.Fatalf("cast: %v", err)
			}
			if fmt.Sprintf("%T %v", got, got) != fmt.Sprintf("%T %v", tt.want, tt.want) {
				t.Errorf("got %T %v, want %T %v", got, got, tt.want, tt.want)
			}
			if ts, ok := got.(time.Time); ok && ts.Location() != time.UTC {
				t.Errorf("time %v is not in UTC", ts)
			}
			if tt.typ == schema.JSON && got != canonicalJSON(t, []byte(tt.in)) {
				t.Errorf("json %s differs from encoding/json's %s", got, canonicalJSON(t, []byte(tt.in)))
			}
		})
	}
}

func TestMapperRejectsValuesThatCannotBeCast(t *testing.T) {
	tests := []struct {
		typ schema.Type
		in  string // JSON text
		msg string
	}{
		{schema.BigInt, `"abc"`, `column f: want bigint, got string "abc"`},
		{schema.BigInt, `"1.0"`, `want bigint, got string "1.0"`},
		{schema.BigInt, `" 1"`, `want bigint, got string " 1"`},
		{schema.BigInt, `"99999999999999999999"`, `want bigint, got string "99999999999999999999" (out of range)`},
		{schema.BigInt, `1.5`, `want bigint, got number 1.5 (not a whole number)`},
		{schema.BigInt, `1e-99999999999`, `want bigint, got number 1e-99999999999 (not a whole number)`},
		{schema.BigInt, `9223372036854775808`, `want bigint, got number 9223372036854775808 (out of range)`},
		{schema.BigInt, `1e999999999`, `(out of range)`},
		{schema.BigInt, `true`, `want bigint, got boolean true`},
		{schema.BigInt, `{}`, `want bigint, got object`},
		{schema.BigInt, `[]`, `want bigint, got array`},
		{schema.Integer, `2147483648`, `want integer, got number 2147483648 (out of range)`},
		{schema.Integer, `"-2147483649"`, `want integer, got string "-2147483649" (out of range)`},
		{schema.Double, `"abc"`, `want double, got string "abc"`},
		{schema.Double, `"NaN"`, `want double, got string "NaN" (not finite)`},
		{schema.Double, `1e400`, `want double, got number 1e400 (out of range)`},
		{schema.Double, `false`, `want double, got boolean false`},
		{schema.Text, `{"a":1}`, `want text, got object (use a json column for objects and arrays)`},
		{schema.Text, `[1]`, `want text, got array`},
		{schema.Boolean, `"yes"`, `want boolean, got string "yes"`},
		{schema.Boolean, `1`, `want boolean, got number 1`},
		{schema.Timestamp, `"2024-03-05 10:20:30"`, `want timestamp, got string "2024-03-05 10:20:30" (want RFC 3339, e.g. 2006-01-02T15:04:05Z)`},
		{schema.Timestamp, `1e20`, `(out of range: years 0001 to 9999)`},
		{schema.Timestamp, `-62135596801`, `(out of range: years 0001 to 9999)`},
		{schema.Timestamp, `true`, `want timestamp, got boolean true`},
		{schema.Date, `"2024-3-5"`, `want date, got string "2024-3-5" (want YYYY-MM-DD)`},
		{schema.Date, `"2024-03-05T00:00:00Z"`, `want date, got string "2024-03-05T00:00:00Z" (want YYYY-MM-DD)`},
		{schema.Date, `20240305`, `want date, got number 20240305`},
		{schema.BigInt, `"` + strings.Repeat("x", 100) + `"`, `got string "` + strings.Repeat("x", 40) + `…"`},
		{schema.Text, `"a\u0000b"`, `column f: text contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{schema.Text, `"\u0000"`, `column f: text contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{schema.JSON, `"a\u0000b"`, `column f: json contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{schema.JSON, `{"k":["ok","x\u0000"]}`, `column f: json contains a NUL character`},
		{schema.JSON, `{"k\u0000":true}`, `column f: json contains a NUL character`},
	}
	// Record 7 on line 30: six records, then blank lines.
	prefix := strings.Repeat(`{"other":"x"}`+"\n", 6) + strings.Repeat("\n", 23)
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s from %.20s", tt.typ, tt.in), func(t *testing.T) {
			m := mustMapper(t, []Column{{Field: "other", Type: schema.Text}, {Field: "f", Name: "col", Type: tt.typ}}, nil)
			for _, workers := range []int{1, 2} {
				d := readAll(t, strings.NewReader(prefix+`{"f":`+tt.in+`}`), ReadOptions{Format: InputNDJSON, Mapper: m, Workers: workers, chunkBytes: 16})
				var re *RecordError
				if !errors.As(d.err, &re) || !errors.Is(d.err, ErrRejected) {
					t.Fatalf("err = %v, want *RecordError matching ErrRejected", d.err)
				}
				if re.Record != 7 || re.Line != 30 || re.Column != "f" || len(d.rows) != 6 {
					t.Errorf("record/line/column = %d/%d/%q after %d rows, want 7/30/\"f\" after 6", re.Record, re.Line, re.Column, len(d.rows))
				}
				if !strings.HasPrefix(d.err.Error(), "record 7 (line 30): column f: ") || !strings.Contains(d.err.Error(), tt.msg) {
					t.Errorf("err = %q, want it to contain %q", d.err, tt.msg)
				}
				// With quarantine the record is set aside with the reason
				// and its text, and the others load.
				q := readAll(t, strings.NewReader(prefix+`{"f":`+tt.in+`}`+"\n"+`{"other":"y"}`), ReadOptions{Format: InputNDJSON, Mapper: m, Workers: workers, Quarantine: true, chunkBytes: 16})
				if q.err != nil || len(q.rows) != 7 || len(q.rejects) != 1 {
					t.Fatalf("quarantine: %d rows, %d rejects, %v", len(q.rows), len(q.rejects), q.err)
				}
				rj := q.rejects[0]
				if rj.N != 7 || rj.Line != 30 || rj.Raw != `{"f":`+tt.in+`}` || !strings.HasPrefix(rj.Reason, "record 7 (line 30): column f: ") || !strings.Contains(rj.Reason, tt.msg) {
					t.Errorf("reject = %+v", rj)
				}
				if q.n[6] != 8 || q.line[6] != 31 {
					t.Errorf("the record after the reject is N %d line %d, want 8 and 31", q.n[6], q.line[6])
				}
			}
		})
	}
}

func TestMapperMapsThePostsRecordsToTheirTableColumns(t *testing.T) {
	m := mustMapper(t, []Column{
		{Field: "id", Type: schema.BigInt, Required: true},
		{Field: "userId", Name: "userid", Type: schema.BigInt},
		{Field: "title", Type: schema.Text},
		{Field: "body", Type: schema.Text},
	}, nil)
	d := readAll(t, strings.NewReader(`[{"userId":1,"id":1,"title":"t","body":"b","extra":[1]}, {"id":2}]`), ReadOptions{Format: InputJSON, Mapper: m})
	if d.err != nil {
		t.Fatal(d.err)
	}
	if got := fmt.Sprint(d.rows); got != "[[1 1 t b] [2 <nil> <nil> <nil>]]" {
		t.Errorf("rows = %s", got)
	}
	if got := m.Columns()[0].Name; got != "id" {
		t.Errorf("an empty Name is not filled from Field: %q", got)
	}
	if got := fmt.Sprint(m.Schema()); got != "[{id bigint} {userid bigint} {title text} {body text}]" {
		t.Errorf("schema = %s", got)
	}
}

func TestMapperTreatsMissingAndNullAsNULLUnlessRequired(t *testing.T) {
	m := mustMapper(t, []Column{{Field: "a", Type: schema.BigInt}, {Field: "b", Type: schema.JSON, Required: true}}, nil)
	d := readAll(t, strings.NewReader(`{"a":null,"b":1}`), ReadOptions{Format: InputNDJSON, Mapper: m})
	if d.err != nil || fmt.Sprint(d.rows) != "[[<nil> 1]]" {
		t.Errorf("rows = %v, %v; want [[<nil> 1]]", d.rows, d.err)
	}
	for _, tt := range []struct {
		in  string
		msg string
	}{
		{`{"a":1}`, "record 3 (line 3): column b: required field is missing"},
		{`{"b":null}`, "record 3 (line 3): column b: required field is null"},
	} {
		d := readAll(t, strings.NewReader("{\"b\":1}\n{\"b\":2}\n"+tt.in), ReadOptions{Format: InputNDJSON, Mapper: m})
		var re *RecordError
		if !errors.As(d.err, &re) || d.err.Error() != tt.msg {
			t.Errorf("err = %v, want %q", d.err, tt.msg)
		}
	}
}

func TestTheLastOfDuplicateKeysCountsAsInEncodingJSON(t *testing.T) {
	m := mustMapper(t, []Column{
		{Field: "id", Type: schema.BigInt},
		{Path: []string{"a", "b"}, Type: schema.Text},
		{Path: []string{"a", "c"}, Type: schema.Text},
		{Name: "_extra", Type: schema.JSON},
	}, &MapperOptions{Extra: ExtraJSON, ExtraColumn: "_extra"})
	in := `{"id":"bad","id":1,"a":{"b":"x","z":1},"a":{"c":"y"},"q":1,"q":2}
{"id":2,"id":"bad"}`
	d := readAll(t, strings.NewReader(in), ReadOptions{Format: InputNDJSON, Mapper: m, Quarantine: true})
	if d.err != nil {
		t.Fatal(d.err)
	}
	if got := fmt.Sprint(d.rows); got != `[[1 <nil> y {"q":2}]]` {
		t.Errorf("rows = %s", got)
	}
	if len(d.rejects) != 1 || d.rejects[0].N != 2 || !strings.Contains(d.rejects[0].Reason, `record 2 (line 2): column id: want bigint, got string "bad"`) {
		t.Errorf("rejects = %+v", d.rejects)
	}
	if got := fmt.Sprint(d.report.Extra); got != "[{q 1 1}]" {
		t.Errorf("extras = %s, want only q (a.z was replaced)", got)
	}
}

func TestNewMapperRejectsBadColumns(t *testing.T) {
	tests := []struct {
		cols []Column
		msg  string
	}{
		{nil, "no columns"},
		{[]Column{{Name: "x", Type: schema.Text}}, `column 1 ("x") has no field`},
		{[]Column{{Field: "x", Type: "varchar"}}, `column "x" has unknown type "varchar"`},
		{[]Column{{Field: "a", Name: "x", Type: schema.Text}, {Field: "x", Type: schema.Text}}, `column name "x" is used by columns 1 and 2`},
	}
	for _, tt := range tests {
		if _, err := NewMapper(tt.cols, nil); err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("NewMapper(%v) = %v, want an error containing %q", tt.cols, err, tt.msg)
		}
	}
}

func TestRecordErrorMessagesLeadWithThePosition(t *testing.T) {
	e := errors.New("boom")
	tests := []struct {
		err  RecordError
		want string
	}{
		{RecordError{Record: 37, Line: 412, Offset: 20481, Err: e}, "record 37 (line 412, byte 20481): boom"},
		{RecordError{Record: 2, Line: 3, Err: e}, "record 2 (line 3): boom"},
		{RecordError{Record: 2, Offset: 9, Err: e}, "record 2 (byte 9): boom"},
		{RecordError{Record: 2, Column: "userId", Err: e}, "record 2: column userId: boom"},
		{RecordError{Line: 12, Err: e}, "line 12: boom"},
		{RecordError{Line: 12, Offset: 40, Err: e}, "line 12, byte 40: boom"},
		{RecordError{Line: 5, Column: "Code", Err: e}, "line 5: column Code: boom"},
		{RecordError{Offset: 3, Err: e}, "byte 3: boom"},
		{RecordError{Column: "c", Err: e}, "column c: boom"},
		{RecordError{Err: e}, "boom"},
		{RecordError{Record: 1}, "record 1: invalid data"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	wrapped := fmt.Errorf("object raw/x.json: %w", &RecordError{Record: 1, Err: e})
	if !errors.Is(wrapped, e) {
		t.Error("RecordError does not unwrap to Err")
	}
}

func TestMapperRejectsAJSONEscapedNULInATitleNamingTheColumn(t *testing.T) {
	m := mustMapper(t, []Column{{Field: "id", Type: schema.BigInt}, {Field: "title", Type: schema.Text}}, nil)
	d := readAll(t, strings.NewReader(`[{"id":1,"title":"ok"},`+"\n"+`{"id":2,"title":"a\u0000b"}]`), ReadOptions{Format: InputJSON, Mapper: m})
	want := `record 2 (line 2): column title: text contains a NUL character (\u0000), which PostgreSQL cannot store`
	var re *RecordError
	if !errors.As(d.err, &re) || d.err.Error() != want {
		t.Fatalf("err = %v, want *RecordError %q", d.err, want)
	}
}

func TestExactFloatAgreesWithParseFloat(t *testing.T) {
	for _, s := range []string{"0", "-0", "1", "0.29", "14.27", "-2.5", "123456789012345", "0.1234567890123456789012", "1.50", "9007199254740993",
		"0.000001", "99999999999999.9", "1234567890123456", "0.30000000000000004", "1e5", "5e-324", "179769313486231570000000"} {
		want, _ := strconv.ParseFloat(s, 64)
		if got, ok := parseFloatFast([]byte(s), false); ok && (got != want || math.Signbit(got) != math.Signbit(want)) {
			t.Errorf("parseFloatFast(%s) = %v, ParseFloat says %v", s, got, want)
		}
	}
	if _, ok := parseFloatFast([]byte("14.27"), false); !ok {
		t.Error("exactFloat refuses 14.27")
	}
}

// FuzzExactFloat checks the fast path against strconv.ParseFloat, on JSON
// numbers (the only input it gets).
func FuzzExactFloat(f *testing.F) {
	for _, s := range []string{"0.29", "-1.5", "123456.789", "0.0000000000000000000001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) || !json.Valid([]byte(s)) {
			return
		}
		got, ok := parseFloatFast([]byte(s), false)
		if !ok {
			return
		}
		want, err := strconv.ParseFloat(s, 64)
		if err != nil || got != want || math.Signbit(got) != math.Signbit(want) {
			t.Fatalf("parseFloatFast(%q) = %v, ParseFloat says %v, %v", s, got, want, err)
		}
	})
}
