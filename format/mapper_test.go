package format

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/warehouse/driver"
)

func TestMapperCastsEachTypeFromTheValuesItAccepts(t *testing.T) {
	day := time.Date(2024, 3, 5, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		typ  driver.Type
		in   any
		want any
	}{
		{driver.BigInt, json.Number("42"), int64(42)},
		{driver.BigInt, json.Number("-9223372036854775808"), int64(-9223372036854775808)},
		{driver.BigInt, json.Number("9223372036854775807"), int64(9223372036854775807)},
		{driver.BigInt, json.Number("1.0"), int64(1)},
		{driver.BigInt, json.Number("1e3"), int64(1000)},
		{driver.BigInt, json.Number("12.50e1"), int64(125)},
		{driver.BigInt, json.Number("-0.0"), int64(0)},
		{driver.BigInt, json.Number("0e-99999999999"), int64(0)},
		{driver.BigInt, "123", int64(123)},
		{driver.BigInt, "-7", int64(-7)},
		{driver.BigInt, float64(3), int64(3)},
		{driver.BigInt, int64(5), int64(5)},
		{driver.Integer, json.Number("2147483647"), int64(2147483647)},
		{driver.Integer, json.Number("-2147483648"), int64(-2147483648)},
		{driver.Integer, "17", int64(17)},
		{driver.Double, json.Number("1.5"), 1.5},
		{driver.Double, json.Number("-2e-3"), -0.002},
		{driver.Double, json.Number("10"), 10.0},
		{driver.Double, "3.25", 3.25},
		{driver.Double, float64(0.5), 0.5},
		{driver.Text, "hello", "hello"},
		{driver.Text, "", ""},
		{driver.Text, json.Number("1.50"), "1.50"},
		{driver.Text, true, "true"},
		{driver.Text, false, "false"},
		{driver.Boolean, true, true},
		{driver.Boolean, false, false},
		{driver.Boolean, "true", true},
		{driver.Boolean, "false", false},
		{driver.Timestamp, "2024-03-05T10:20:30Z", time.Date(2024, 3, 5, 10, 20, 30, 0, time.UTC)},
		{driver.Timestamp, "2024-03-05T12:20:30.123456789+02:00", time.Date(2024, 3, 5, 10, 20, 30, 123456789, time.UTC)},
		{driver.Timestamp, json.Number("0"), time.Unix(0, 0).UTC()},
		{driver.Timestamp, json.Number("1709634030"), time.Date(2024, 3, 5, 10, 20, 30, 0, time.UTC)},
		{driver.Timestamp, json.Number("1709634030.5"), time.Date(2024, 3, 5, 10, 20, 30, 500000000, time.UTC)},
		{driver.Timestamp, json.Number("1709634030.1234567891"), time.Date(2024, 3, 5, 10, 20, 30, 123456789, time.UTC)},
		{driver.Timestamp, json.Number("-1.5"), time.Unix(-2, 500000000).UTC()},
		{driver.Timestamp, json.Number("1.7e9"), time.Unix(1700000000, 0).UTC()},
		{driver.Date, "2024-03-05", day},
		{driver.JSON, map[string]any{"b": json.Number("1.0"), "a": []any{"<x>", nil, true}}, `{"a":["<x>",null,true],"b":1.0}`},
		{driver.JSON, "text", `"text"`},
		{driver.JSON, json.Number("12"), `12`},
		{driver.JSON, false, `false`},
		// A backslash followed by u0000 is not a NUL character.
		{driver.Text, `a\u0000b`, `a\u0000b`},
		{driver.JSON, `a\u0000b`, `"a\\u0000b"`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s from %T %v", tt.typ, tt.in, tt.in), func(t *testing.T) {
			m, err := NewMapper([]Column{{Field: "f", Type: tt.typ}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			row, err := m.Row(Record{N: 1, Fields: map[string]any{"f": tt.in}})
			if err != nil {
				t.Fatalf("Row: %v", err)
			}
			if got := row[0]; fmt.Sprintf("%T %v", got, got) != fmt.Sprintf("%T %v", tt.want, tt.want) {
				t.Errorf("got %T %v, want %T %v", got, got, tt.want, tt.want)
			}
			if ts, ok := row[0].(time.Time); ok && ts.Location() != time.UTC {
				t.Errorf("time %v is not in UTC", ts)
			}
		})
	}
}

func TestMapperRejectsValuesThatCannotBeCast(t *testing.T) {
	tests := []struct {
		typ driver.Type
		in  any
		msg string
	}{
		{driver.BigInt, "abc", `column f: want bigint, got string "abc"`},
		{driver.BigInt, "1.0", `want bigint, got string "1.0"`},
		{driver.BigInt, " 1", `want bigint, got string " 1"`},
		{driver.BigInt, "99999999999999999999", `want bigint, got string "99999999999999999999" (out of range)`},
		{driver.BigInt, json.Number("1.5"), `want bigint, got number 1.5 (not a whole number)`},
		{driver.BigInt, json.Number("1e-99999999999"), `want bigint, got number 1e-99999999999 (not a whole number)`},
		{driver.BigInt, json.Number("9223372036854775808"), `want bigint, got number 9223372036854775808 (out of range)`},
		{driver.BigInt, json.Number("1e999999999"), `(out of range)`},
		{driver.BigInt, true, `want bigint, got boolean true`},
		{driver.BigInt, map[string]any{}, `want bigint, got object`},
		{driver.BigInt, []any{}, `want bigint, got array`},
		{driver.Integer, json.Number("2147483648"), `want integer, got number 2147483648 (out of range)`},
		{driver.Integer, "-2147483649", `want integer, got string "-2147483649" (out of range)`},
		{driver.Double, "abc", `want double, got string "abc"`},
		{driver.Double, "NaN", `want double, got string "NaN" (not finite)`},
		{driver.Double, json.Number("1e400"), `want double, got number 1e400 (out of range)`},
		{driver.Double, false, `want double, got boolean false`},
		{driver.Text, map[string]any{"a": 1}, `want text, got object (use a json column for objects and arrays)`},
		{driver.Text, []any{1}, `want text, got array`},
		{driver.Boolean, "yes", `want boolean, got string "yes"`},
		{driver.Boolean, json.Number("1"), `want boolean, got number 1`},
		{driver.Timestamp, "2024-03-05 10:20:30", `want timestamp, got string "2024-03-05 10:20:30" (want RFC 3339, e.g. 2006-01-02T15:04:05Z)`},
		{driver.Timestamp, json.Number("1e20"), `(out of range: years 0001 to 9999)`},
		{driver.Timestamp, json.Number("-62135596801"), `(out of range: years 0001 to 9999)`},
		{driver.Timestamp, true, `want timestamp, got boolean true`},
		{driver.Date, "2024-3-5", `want date, got string "2024-3-5" (want YYYY-MM-DD)`},
		{driver.Date, "2024-03-05T00:00:00Z", `want date, got string "2024-03-05T00:00:00Z" (want YYYY-MM-DD)`},
		{driver.Date, json.Number("20240305"), `want date, got number 20240305`},
		{driver.BigInt, strings.Repeat("x", 100), `got string "` + strings.Repeat("x", 40) + `…"`},
		{driver.Text, "a\x00b", `column f: text contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{driver.Text, "\x00", `column f: text contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{driver.JSON, "a\x00b", `column f: json contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{driver.JSON, map[string]any{"k": []any{"ok", "x\x00"}}, `column f: json contains a NUL character`},
		{driver.JSON, map[string]any{"k\x00": true}, `column f: json contains a NUL character`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s from %T %.20v", tt.typ, tt.in, tt.in), func(t *testing.T) {
			m, err := NewMapper([]Column{{Field: "other", Type: driver.Text}, {Field: "f", Name: "col", Type: tt.typ}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = m.Row(Record{N: 7, Line: 30, Fields: map[string]any{"f": tt.in}})
			var re *RecordError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want *RecordError", err)
			}
			if re.Record != 7 || re.Line != 30 || re.Column != "f" {
				t.Errorf("record/line/column = %d/%d/%q, want 7/30/\"f\"", re.Record, re.Line, re.Column)
			}
			if !strings.HasPrefix(err.Error(), "record 7 (line 30): column f: ") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %q, want it to contain %q", err, tt.msg)
			}
		})
	}
}

func TestMapperMapsThePostsRecordsToTheirTableColumns(t *testing.T) {
	m, err := NewMapper([]Column{
		{Field: "id", Type: driver.BigInt, Required: true},
		{Field: "userId", Name: "userid", Type: driver.BigInt},
		{Field: "title", Type: driver.Text},
		{Field: "body", Type: driver.Text},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]any
	err = DecodeJSON(strings.NewReader(`[{"userId":1,"id":1,"title":"t","body":"b","extra":[1]}, {"id":2}]`), InputJSON, nil, func(rec Record) error {
		row, err := m.Row(rec)
		rows = append(rows, row)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(rows); got != "[[1 1 t b] [2 <nil> <nil> <nil>]]" {
		t.Errorf("rows = %s", got)
	}
	if got := m.Columns()[0].Name; got != "id" {
		t.Errorf("an empty Name is not filled from Field: %q", got)
	}
}

func TestMapperTreatsMissingAndNullAsNilUnlessRequired(t *testing.T) {
	m, err := NewMapper([]Column{{Field: "a", Type: driver.BigInt}, {Field: "b", Type: driver.JSON, Required: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	row, err := m.Row(Record{N: 1, Fields: map[string]any{"a": nil, "b": json.Number("1")}})
	if err != nil || row[0] != nil || row[1] != "1" {
		t.Errorf("row = %v, %v; want [nil 1]", row, err)
	}
	for _, tt := range []struct {
		fields map[string]any
		msg    string
	}{
		{map[string]any{"a": json.Number("1")}, "record 3: column b: required field is missing"},
		{map[string]any{"b": nil}, "record 3: column b: required field is null"},
	} {
		_, err := m.Row(Record{N: 3, Fields: tt.fields})
		var re *RecordError
		if !errors.As(err, &re) || err.Error() != tt.msg {
			t.Errorf("err = %v, want %q", err, tt.msg)
		}
	}
}

func TestNewMapperRejectsBadColumns(t *testing.T) {
	tests := []struct {
		cols []Column
		msg  string
	}{
		{nil, "no columns"},
		{[]Column{{Name: "x", Type: driver.Text}}, `column 1 ("x") has no field`},
		{[]Column{{Field: "x", Type: "varchar"}}, `column "x" has unknown type "varchar"`},
		{[]Column{{Field: "a", Name: "x", Type: driver.Text}, {Field: "x", Type: driver.Text}}, `column name "x" is used by columns 1 and 2`},
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
	m, err := NewMapper([]Column{{Field: "id", Type: driver.BigInt}, {Field: "title", Type: driver.Text}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = DecodeJSON(strings.NewReader(`[{"id":1,"title":"ok"},`+"\n"+`{"id":2,"title":"a\u0000b"}]`), InputJSON, nil, func(rec Record) error {
		_, err := m.Row(rec)
		return err
	})
	want := `record 2 (line 2): column title: text contains a NUL character (\u0000), which PostgreSQL cannot store`
	var re *RecordError
	if !errors.As(err, &re) || err.Error() != want {
		t.Fatalf("err = %v, want *RecordError %q", err, want)
	}
}
