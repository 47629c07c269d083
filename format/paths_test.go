package format

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/schema"
)

func TestParsePathSplitsOnDotsAndRefusesEmptySegments(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"title", []string{"title"}, ""},
		{"address.city", []string{"address", "city"}, ""},
		{"a.b.c", []string{"a", "b", "c"}, ""},
		{"", nil, `field path "" has an empty segment 1`},
		{"address..city", nil, `field path "address..city" has an empty segment 2`},
		{".city", nil, "empty segment 1"},
		{"address.", nil, "empty segment 2"},
	}
	for _, tt := range tests {
		got, err := ParsePath(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParsePath(%q) = %v, %v; want an error containing %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParsePath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// decodeRows maps NDJSON input through m, with one goroutine and with
// three on chunks of 20 bytes, and checks that both give the same.
func decodeRows(t *testing.T, m *Mapper, in string) ([][]any, Report, error) {
	t.Helper()
	d := readAll(t, strings.NewReader(in), ReadOptions{Format: InputNDJSON, Mapper: m, Workers: 1})
	p := readAll(t, strings.NewReader(in), ReadOptions{Format: InputNDJSON, Mapper: m, Workers: 3, chunkBytes: 20})
	if fmt.Sprint(d.rows, d.report, d.err) != fmt.Sprint(p.rows, p.report, p.err) {
		t.Fatalf("in parallel: %v %+v %v\nserially: %v %+v %v", p.rows, p.report, p.err, d.rows, d.report, d.err)
	}
	return d.rows, d.report, d.err
}

func TestMapperReadsNestedPathsAndTreatsAMissingParentAsAMissingValue(t *testing.T) {
	m, err := NewMapper([]Column{
		{Field: "id", Type: schema.BigInt},
		{Path: []string{"address", "city"}, Type: schema.Text},
		{Path: []string{"address", "geo", "lat"}, Name: "lat", Type: schema.Double},
		{Path: []string{"a.b"}, Type: schema.Text}, // a key with a dot
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := `{"id":1,"address":{"city":"Oslo","geo":{"lat":"59.9"}},"a.b":"dot"}
{"id":2}
{"id":3,"address":null}
{"id":4,"address":{"geo":null}}`
	rows, rep, err := decodeRows(t, m, in)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(rows); got != "[[1 Oslo 59.9 dot] [2 <nil> <nil> <nil>] [3 <nil> <nil> <nil>] [4 <nil> <nil> <nil>]]" {
		t.Errorf("rows = %s", got)
	}
	if len(rep.Missing) != 0 || len(rep.Extra) != 0 {
		t.Errorf("report = %+v, want nothing missing or extra", rep)
	}
	var names []string
	for _, c := range m.Columns() {
		names = append(names, c.Name)
	}
	if want := []string{"id", "address_city", "lat", "a.b"}; !reflect.DeepEqual(names, want) {
		t.Errorf("column names = %q, want %q", names, want)
	}

	_, _, err = decodeRows(t, m, `{"id":5,"address":"Main Street 1"}`)
	var re *RecordError
	if !errors.As(err, &re) || err.Error() != `record 1 (line 1): column address.city: want an object at address, got string "Main Street 1"` {
		t.Errorf("err = %v, want a *RecordError about address not being an object", err)
	}

	req, err := NewMapper([]Column{{Path: []string{"address", "city"}, Type: schema.Text, Required: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = decodeRows(t, req, `{"address":{}}`)
	if err == nil || err.Error() != "record 1 (line 1): column address.city: required field is missing" {
		t.Errorf("required nested field: err = %v", err)
	}
}

func TestMapperReportsMissingAndUndeclaredFieldsByPolicy(t *testing.T) {
	// "titel" is misspelt; "tilte" and address.zipcode are undeclared.
	cols := []Column{
		{Field: "id", Type: schema.BigInt},
		{Field: "titel", Type: schema.Text},
		{Path: []string{"address", "city"}, Type: schema.Text},
	}
	in := `{"id":1,"address":{"city":"Oslo","zipcode":"0150"}}
{"id":2,"tilte":"x","body":"b","address":{"city":"Bergen"}}
{"id":3,"tilte":"y"}`
	jsonCols := append(cols[:len(cols):len(cols)], Column{Name: "_extra", Type: schema.JSON})
	tests := []struct {
		name    string
		cols    []Column
		opts    *MapperOptions
		rows    string // fmt.Sprint of the rows, when no error
		missing []string
		extra   []ExtraField
		err     string
	}{
		{name: "defaults warn of both", opts: nil,
			rows:    "[[1 <nil> Oslo] [2 <nil> Bergen] [3 <nil> <nil>]]",
			missing: []string{"titel"},
			extra:   []ExtraField{{"address.zipcode", 1, 1}, {"body", 2, 2}, {"tilte", 2, 2}}},
		{name: "ignore reports no extras", opts: &MapperOptions{Extra: ExtraIgnore},
			rows:    "[[1 <nil> Oslo] [2 <nil> Bergen] [3 <nil> <nil>]]",
			missing: []string{"titel"}},
		{name: "on_missing error fails the object naming the field", opts: &MapperOptions{OnMissing: MissingError, Extra: ExtraIgnore},
			err: "column titel: the declared field occurs in none of the object's 3 records; check its spelling and path in the spec, or set on_missing to warn"},
		{name: "extra error fails at the first record with one", opts: &MapperOptions{Extra: ExtraError},
			err: "record 1 (line 1): column address.zipcode: the field is not declared; declare it as a column, or set extra to ignore, warn or json"},
		{name: "extra json keeps the undeclared fields", cols: jsonCols, opts: &MapperOptions{Extra: ExtraJSON, ExtraColumn: "_extra"},
			rows:    `[[1 <nil> Oslo {"address":{"zipcode":"0150"}}] [2 <nil> Bergen {"body":"b","tilte":"x"}] [3 <nil> <nil> {"tilte":"y"}]]`,
			missing: []string{"titel"},
			extra:   []ExtraField{{"address.zipcode", 1, 1}, {"body", 2, 2}, {"tilte", 2, 2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cols
			if c == nil {
				c = cols
			}
			m, err := NewMapper(c, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			rows, rep, err := decodeRows(t, m, in)
			if tt.err != "" {
				var re *RecordError
				if !errors.As(err, &re) || err.Error() != tt.err {
					t.Fatalf("err = %v, want *RecordError %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(rows); got != tt.rows {
				t.Errorf("rows = %s, want %s", got, tt.rows)
			}
			if !reflect.DeepEqual(rep.Missing, tt.missing) {
				t.Errorf("missing = %q, want %q", rep.Missing, tt.missing)
			}
			if !reflect.DeepEqual(rep.Extra, tt.extra) {
				t.Errorf("extra = %+v, want %+v", rep.Extra, tt.extra)
			}
			if rep.Records != 3 {
				t.Errorf("records = %d, want 3", rep.Records)
			}
			if w := rep.Warning(); !strings.Contains(w, "titel") {
				t.Errorf("warning %q does not name the missing field", w)
			}
			if len(tt.extra) > 0 {
				where := "undeclared fields dropped: address.zipcode (first in record 1, line 1), body (first in record 2, line 2)"
				if tt.opts != nil && tt.opts.Extra == ExtraJSON {
					where = "undeclared fields kept in column _extra: address.zipcode"
				}
				if w := rep.Warning(); !strings.Contains(w, where) {
					t.Errorf("warning %q does not contain %q", w, where)
				}
			}
		})
	}
}

func TestMapperReportsNothingForAnObjectWithoutRecordsOrFindings(t *testing.T) {
	m, err := NewMapper([]Column{{Field: "id", Type: schema.BigInt}}, &MapperOptions{OnMissing: MissingError, Extra: ExtraError})
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{"", `{"id":1}` + "\n" + `{"id":null}`} {
		_, rep, err := decodeRows(t, m, in)
		if err != nil || len(rep.Missing) != 0 || len(rep.Extra) != 0 || rep.Warning() != "" {
			t.Errorf("input %q: report %+v, err %v; want nothing", in, rep, err)
		}
	}
}

func TestNewMapperRejectsBadPathsAndPolicies(t *testing.T) {
	text := func(name string) Column { return Column{Field: name, Type: schema.Text} }
	tests := []struct {
		cols []Column
		opts *MapperOptions
		msg  string
	}{
		{[]Column{{Field: "a", Path: []string{"b", "c"}, Type: schema.Text}}, nil, `sets both field "a" and path "b.c"`},
		{[]Column{{Path: []string{"a", ""}, Type: schema.Text}}, nil, "has an empty key in its path"},
		{[]Column{{Path: []string{"a", "b"}, Type: schema.Text}, {Field: "a_b", Type: schema.Text}}, nil, `column name "a_b" is used by columns 1 and 2`},
		{[]Column{text("a")}, &MapperOptions{OnMissing: "fail"}, `unknown on_missing policy "fail"`},
		{[]Column{text("a")}, &MapperOptions{Extra: "keep"}, `unknown extra policy "keep"`},
		{[]Column{text("a")}, &MapperOptions{Extra: ExtraJSON}, "needs an extra column"},
		{[]Column{text("a")}, &MapperOptions{Extra: ExtraJSON, ExtraColumn: "_extra"}, `extra column "_extra" is not among the columns`},
		{[]Column{text("a"), {Name: "_extra", Type: schema.Text}}, &MapperOptions{Extra: ExtraJSON, ExtraColumn: "_extra"}, "must have type json"},
		{[]Column{text("a"), {Name: "_extra", Type: schema.JSON}}, &MapperOptions{Extra: ExtraWarn, ExtraColumn: "_extra"}, `the extra policy is "warn"`},
	}
	for _, tt := range tests {
		if _, err := NewMapper(tt.cols, tt.opts); err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("NewMapper(%v, %+v) = %v, want an error containing %q", tt.cols, tt.opts, err, tt.msg)
		}
	}
}

// TestAnObjectWhoseEveryRecordHasAKeyOfItsOwnCostsNoMemoryPerRecord: the
// report lists MaxExtraListed undeclared fields, then says there are more;
// it does not remember a million keys (before, 3 million records of one
// key each took 1.6 GB and one 183 MB log line).
func TestAnObjectWhoseEveryRecordHasAKeyOfItsOwnCostsNoMemoryPerRecord(t *testing.T) {
	m := mustMapper(t, []Column{{Field: "id", Type: schema.BigInt}}, nil)
	var in bytes.Buffer
	const n = 20000
	for i := range n {
		fmt.Fprintf(&in, "{\"id\": %d, \"field_number_%d\": 1}\n", i, i)
	}
	d := readAll(t, bytes.NewReader(in.Bytes()), ReadOptions{Format: InputNDJSON, Mapper: m, Workers: 3, BatchRows: 100, chunkBytes: 4096})
	if d.err != nil || len(d.rows) != n {
		t.Fatalf("%d rows, err %v", len(d.rows), d.err)
	}
	if len(d.report.Extra) != MaxExtraListed || !d.report.MoreExtra {
		t.Fatalf("report lists %d undeclared fields (more: %v), want %d and more", len(d.report.Extra), d.report.MoreExtra, MaxExtraListed)
	}
	w := d.report.Warning()
	if !strings.Contains(w, "field_number_0 (first in record 1, line 1)") || !strings.Contains(w, "and more (only the first 100 are listed)") || len(w) > 10000 {
		t.Errorf("warning (%d bytes): %.300s", len(w), w)
	}
}
