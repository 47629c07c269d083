package httpsource

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseLink(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []Link
		wantErr string
	}{
		{in: "", want: nil},
		{in: "  , ,", want: nil},
		{in: `<https://api.example.com/x?page=2>; rel="next"`,
			want: []Link{{URL: "https://api.example.com/x?page=2", Params: map[string]string{"rel": "next"}}}},
		{in: `<a>;rel=next,<b>; REL = "prev first" ; title="a, \"b\";c"`,
			want: []Link{
				{URL: "a", Params: map[string]string{"rel": "next"}},
				{URL: "b", Params: map[string]string{"rel": "prev first", "title": `a, "b";c`}},
			}},
		{in: `< /with,comma >; rel=next; rel=prev; crossorigin`,
			want: []Link{{URL: "/with,comma", Params: map[string]string{"rel": "next", "crossorigin": ""}}}},
		{in: `<>; rel=next`, want: []Link{{URL: "", Params: map[string]string{"rel": "next"}}}},
		{in: `https://x; rel=next`, wantErr: "expected '<' at byte 0"},
		{in: `<https://x; rel=next`, wantErr: "not closed by '>'"},
		{in: `<a> rel=next`, wantErr: "expected ';' or ','"},
		{in: `<a>; ="x"`, wantErr: "expected a parameter name"},
		{in: `<a>; rel=`, wantErr: `parameter "rel" has no value`},
		{in: `<a>; rel="next`, wantErr: "quoted string at byte 9 is not closed"},
	} {
		got, err := ParseLink(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseLink(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseLink(%q) = %#v, %v; want %#v", tc.in, got, err, tc.want)
		}
	}
}

func TestLinkHasRelMatchesAnyOfSeveralRelationsIgnoringCase(t *testing.T) {
	l := Link{URL: "x", Params: map[string]string{"rel": "Next  last"}}
	if !l.HasRel("next") || !l.HasRel("LAST") || l.HasRel("prev") {
		t.Errorf("HasRel on %v is wrong: rels %v", l, l.Rels())
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2020, 8, 7, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 120 ", 2 * time.Minute, true},
		{"301", MaxRetryAfter, true},
		{"99999999999999999999999", MaxRetryAfter, true},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
		{"Fri, 07 Aug 2020 12:00:30 GMT", 30 * time.Second, true},
		{"Friday, 07-Aug-20 12:01:00 GMT", time.Minute, true}, // RFC 850
		{"Fri Aug  7 12:00:10 2020", 10 * time.Second, true},  // asctime
		{"Fri, 07 Aug 2020 11:00:00 GMT", 0, true},            // past: no wait
		{"Fri, 07 Aug 2020 18:00:00 GMT", MaxRetryAfter, true},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestBackoffDoublesUpToTheCapAndScalesByRand(t *testing.T) {
	r := 1.0
	im := mustNew(t, Config{URL: "http://x", Backoff: 100 * time.Millisecond, MaxBackoff: time.Second},
		&Options{Rand: func() float64 { return r }})
	var got []time.Duration
	for a := 0; a < 6; a++ {
		got = append(got, im.backoff(a))
	}
	want := "[100ms 200ms 400ms 800ms 1s 1s]"
	if fmt.Sprint(got) != want {
		t.Errorf("backoffs = %v, want %s", got, want)
	}
	if d := im.backoff(1 << 20); d != time.Second {
		t.Errorf("backoff for a huge attempt = %s, want the cap", d)
	}
	r = 0
	if d := im.backoff(3); d != 0 {
		t.Errorf("backoff with rand 0 = %s, want 0 (full jitter)", d)
	}
}

func TestInspectClassifiesPagesForTheStopRules(t *testing.T) {
	for _, tc := range []struct {
		body, itemsPath string
		want            shape
		wantErr         string
	}{
		{"", "", shape{empty: true, counted: true}, ""},
		{" \n\t", "", shape{empty: true, counted: true}, ""},
		{"[]", "", shape{empty: true, counted: true}, ""},
		{" [ ] ", "data", shape{empty: true, counted: true}, ""},
		{"{}", "", shape{empty: true}, ""},
		{"{ }", "", shape{empty: true}, ""},
		{`[1,{"a":[2,3]},"x"]`, "", shape{items: 3, counted: true}, ""},
		{`{"a":1}`, "", shape{}, ""},
		{`{"data":[1,2]}`, "data", shape{items: 2, counted: true}, ""},
		{`{"data":{"rows":[]}}`, "data.rows", shape{empty: true, counted: true}, ""},
		{`{"data":null}`, "data", shape{empty: true, counted: true}, ""},
		{`{"other":1}`, "data", shape{empty: true, counted: true}, ""},
		{`{"data":"x"}`, "data", shape{}, `holds a string, not an array`},
		{`"text"`, "", shape{}, ""},
		{`id,name`, "", shape{}, ""},
		{`[1,`, "", shape{}, "does not parse"},
		{`{"a":`, "", shape{}, "does not parse"},
	} {
		got, err := inspect([]byte(tc.body), tc.itemsPath)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("inspect(%q, %q) error = %v, want %q", tc.body, tc.itemsPath, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("inspect(%q, %q) = %+v, %v; want %+v", tc.body, tc.itemsPath, got, err, tc.want)
		}
	}
}

func TestCursorAt(t *testing.T) {
	for _, tc := range []struct {
		body, path string
		want       string
		ok         bool
		wantErr    string
	}{
		{`{"next":"abc"}`, "next", "abc", true, ""},
		{`{"meta":{"next":"a b/c"}}`, "meta.next", "a b/c", true, ""},
		{`{"next":123456789012345678901}`, "next", "123456789012345678901", true, ""},
		{`{"next":1.5e3}`, "next", "1.5e3", true, ""},
		{`{"pages":[{"c":"x"},{"c":"y"}]}`, "pages.1.c", "y", true, ""},
		{`{"pages":[{"c":"x"}]}`, "pages.5.c", "", false, ""},
		{`{"next":null}`, "next", "", false, ""},
		{`{"next":""}`, "next", "", false, ""},
		{`{}`, "next", "", false, ""},
		{`{"meta":null}`, "meta.next", "", false, ""},
		{`[]`, "next", "", false, ""},
		{`{"next":true}`, "next", "", false, "a boolean"},
		{`{"next":{"id":1}}`, "next", "", false, "an object"},
		{`{"meta":"x"}`, "meta.next", "", false, `"meta" is a string`},
		{`not json`, "next", "", false, "not JSON"},
		{`{"next":"a"} {"next":"b"}`, "next", "", false, "data after"},
		{``, "next", "", false, "not JSON"},
	} {
		got, ok, err := cursorAt([]byte(tc.body), tc.path)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("cursorAt(%q, %q) error = %v, want %q", tc.body, tc.path, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want || ok != tc.ok {
			t.Errorf("cursorAt(%q, %q) = %q, %v, %v; want %q, %v", tc.body, tc.path, got, ok, err, tc.want, tc.ok)
		}
	}
}

func TestWithParamReplacesOnlyThatParameterAndKeepsTheRest(t *testing.T) {
	for _, tc := range []struct{ in, name, value, want string }{
		{"http://x/a", "page", "2", "http://x/a?page=2"},
		{"http://x/a?b=1&page=1&c=%2F", "page", "2", "http://x/a?b=1&c=%2F&page=2"},
		{"http://x/a?z=9&a=1", "cursor", "x y&z", "http://x/a?z=9&a=1&cursor=x+y%26z"},
	} {
		got, err := withParam(tc.in, tc.name, tc.value)
		if err != nil || got != tc.want {
			t.Errorf("withParam(%q, %q, %q) = %q, %v; want %q", tc.in, tc.name, tc.value, got, err, tc.want)
		}
	}
}

func TestRedactURLHidesQueryValuesAndPasswordsButNotPaginationParams(t *testing.T) {
	im := mustNew(t, Config{URL: "http://x", Pagination: &Pagination{Type: "page", SizeParam: "per_page", Size: 5}}, nil)
	r := &run{im: im}
	got := r.redactURL("https://u:pw@api.example.com/p?api_key=abc&page=3&per_page=5&flag&empty=#frag")
	want := "https://u:REDACTED@api.example.com/p?api_key=REDACTED&page=3&per_page=5&flag&empty="
	if got != want {
		t.Errorf("redactURL = %q, want %q", got, want)
	}
}

func FuzzParseLink(f *testing.F) {
	for _, s := range []string{
		`<https://api.example.com/x?page=2>; rel="next"`,
		`<a>;rel=next,<b>; REL = "prev first" ; title="a, \"b\";c"`,
		`< /with,comma >; rel=next; rel=prev; crossorigin`,
		`<>; rel=next`, `<a> rel=next`, `<a>; rel="next`, `<a>; rel=`, ``, `,,<`, `<a>;rel="\`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		links, err := ParseLink(h)
		if err != nil {
			return
		}
		// Whatever parses must format and parse back to the same links.
		parts := make([]string, len(links))
		for i, l := range links {
			if strings.ContainsAny(l.URL, ">") {
				t.Fatalf("URL %q contains '>'", l.URL)
			}
			parts[i] = l.String()
		}
		again, err := ParseLink(strings.Join(parts, ", "))
		if err != nil {
			t.Fatalf("re-parsing %q (from %q): %v", strings.Join(parts, ", "), h, err)
		}
		if len(again) != len(links) {
			t.Fatalf("round trip of %q: %d links, want %d", h, len(again), len(links))
		}
		for i := range links {
			if again[i].URL != links[i].URL || !reflect.DeepEqual(again[i].Params, links[i].Params) {
				t.Fatalf("round trip of %q: link %d = %#v, want %#v", h, i, again[i], links[i])
			}
		}
	})
}

func FuzzCursorAt(f *testing.F) {
	f.Add([]byte(`{"meta":{"next":"abc"}}`), "meta.next", "abc")
	f.Add([]byte(`{"pages":[{"c":1}]}`), "pages.0.c", "x y")
	f.Add([]byte(`[1,2]`), "1", "")
	f.Add([]byte(`{"a":null}`), "a.b", "\u00e9\"")
	f.Add([]byte(`not json`), "a..b", "q")
	f.Fuzz(func(t *testing.T, body []byte, path, value string) {
		// Arbitrary input must not panic, and a found cursor is never empty.
		if c, ok, err := cursorAt(body, path); err == nil && ok && c == "" {
			t.Fatalf("cursorAt(%q, %q) found an empty cursor", body, path)
		}
		// A string put at a valid path is found again, exactly.
		if checkPath(path) != nil || !utf8.ValidString(path) || !utf8.ValidString(value) {
			return
		}
		var v any = value
		segs := strings.Split(path, ".")
		for i := len(segs) - 1; i >= 0; i-- {
			v = map[string]any{segs[i]: v}
		}
		doc, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		want := value
		c, ok, err := cursorAt(doc, path)
		if err != nil || ok != (want != "") || c != want {
			t.Fatalf("cursorAt(%s, %q) = %q, %v, %v; want %q", doc, path, c, ok, err, want)
		}
	})
}
