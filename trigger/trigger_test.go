package trigger

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/event"
)

func rec(name, key string) event.Record {
	r := event.New("lake", key, 1, "etag", time.Unix(0, 0))
	r.EventName = name
	return r
}

func TestSplitKeyNamesThePartsOfAKey(t *testing.T) {
	tests := []struct {
		key  string
		want Key
	}{
		{"data/2020-08-07_2PM/hydropower-consumption.csv", Key{"data/2020-08-07_2PM/hydropower-consumption.csv", "data/2020-08-07_2PM", "2020-08-07_2PM", "hydropower-consumption.csv", ".csv"}},
		{"a.csv", Key{"a.csv", "", "", "a.csv", ".csv"}},
		{"x/y", Key{"x/y", "x", "x", "y", ""}},
		{"a/b/c/d.tar.gz", Key{"a/b/c/d.tar.gz", "a/b/c", "c", "d.tar.gz", ".gz"}},
		{"dir/", Key{"dir/", "dir", "dir", "", ""}},
		{"a//b.csv", Key{"a//b.csv", "a", "a", "b.csv", ".csv"}},
	}
	for _, tt := range tests {
		if got := SplitKey(tt.key); got != tt.want {
			t.Errorf("SplitKey(%q) = %+v, want %+v", tt.key, got, tt.want)
		}
	}
}

func TestMatchDerivesTheGroupFromMatchingKeys(t *testing.T) {
	hydro := Rule{Name: "hydropower", Filter: event.Filter{Events: []string{"s3:ObjectCreated:*"}, Prefix: "data/", Suffix: ".csv"}}
	tests := []struct {
		name      string
		rule      Rule
		rec       event.Record
		wantGroup string
		wantOK    bool
		wantErr   string
	}{
		{"parent folder is the default group", hydro, rec(event.ObjectCreatedPut, "data/2020-08-07_2PM/hydropower-consumption.csv"), "2020-08-07_2PM", true, ""},
		{"multipart uploads match the wildcard", hydro, rec(event.ObjectCreatedCompleteMultipartUpload, "data/d1/x.csv"), "d1", true, ""},
		{"s3: prefixed names match", hydro, rec("s3:ObjectCreated:Copy", "data/d1/x.csv"), "d1", true, ""},
		{"other prefix does not match", hydro, rec(event.ObjectCreatedPut, "curated/d1/x.csv"), "", false, ""},
		{"other suffix does not match", hydro, rec(event.ObjectCreatedPut, "data/d1/x.json"), "", false, ""},
		{"removal events do not match", hydro, rec("ObjectRemoved:Delete", "data/d1/x.csv"), "", false, ""},
		{"only the listed event matches", Rule{Name: "r", Filter: event.Filter{Events: []string{"s3:ObjectCreated:Put"}}}, rec(event.ObjectCreatedPost, "a/b.csv"), "", false, ""},
		{"a key without a parent folder is an error", hydro.withPrefix(""), rec(event.ObjectCreatedPut, "top.csv"), "", false, `key "top.csv" gives group ""`},
		{"the full directory can be the group", Rule{Name: "r", Group: "{{.Key.Dir}}"}, rec(event.ObjectCreatedPut, "data/d1/x.csv"), "data/d1", true, ""},
		{"groups can combine fields", Rule{Name: "r", Group: "{{.Key.Parent}}-{{.Key.Ext}}"}, rec(event.ObjectCreatedPut, "data/d1/x.csv"), "d1-.csv", true, ""},
		{"a group of .. is refused", Rule{Name: "r", Group: "{{.Key.Parent}}"}, rec(event.ObjectCreatedPut, "data/../x.csv"), "", false, `path element ".."`},
		{"a group with a newline is refused", Rule{Name: "r"}, rec(event.ObjectCreatedPut, "a\nb/x.csv"), "", false, "U+000A"},
		{"a group starting with a slash is refused", Rule{Name: "r", Group: "{{.Key.Dir}}"}, rec(event.ObjectCreatedPut, "/abs/x.csv"), "", false, "starts with /"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Compile(tt.rule)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			g, ok, err := c.Match(tt.rec)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Match error = %v, want one containing %q", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.rule.Name) {
					t.Errorf("error %q does not name rule %q", err, tt.rule.Name)
				}
				return
			}
			if err != nil {
				t.Fatalf("Match: %v", err)
			}
			if g != tt.wantGroup || ok != tt.wantOK {
				t.Errorf("Match = (%q, %v), want (%q, %v)", g, ok, tt.wantGroup, tt.wantOK)
			}
		})
	}
}

func (r Rule) withPrefix(p string) Rule { r.Filter.Prefix = p; return r }

func TestCompileRejectsBadRules(t *testing.T) {
	tests := []struct {
		name string
		rule Rule
		want string
	}{
		{"no name", Rule{}, "no name"},
		{"unknown event", Rule{Name: "r", Filter: event.Filter{Events: []string{"ObjectRemoved:*"}}}, `unknown event "ObjectRemoved:*"`},
		{"unparsable template", Rule{Name: "r", Group: "{{.Key.Parent"}, "group template"},
		{"unknown field", Rule{Name: "r", Group: "{{.Key.Date}}"}, "Date"},
		{"unknown top-level field", Rule{Name: "r", Group: "{{.Group}}"}, "Group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.rule)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Compile error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestCompileFillsInTheDefaultGroup(t *testing.T) {
	c, err := Compile(Rule{Name: "r"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Rule().Group != DefaultGroup || c.Name() != "r" {
		t.Errorf("Rule() = %+v, want group %q", c.Rule(), DefaultGroup)
	}
}

func TestExpandSubstitutesTheGroup(t *testing.T) {
	tests := []struct {
		tmpl, group, want, wantErr string
	}{
		{"data/{{.Group}}/", "2020-08-07_2PM", "data/2020-08-07_2PM/", ""},
		{"curated/{{.Group}}/", "a b", "curated/a b/", ""},
		{"fixed/", "g", "fixed/", ""},
		{"{{.Group}}", "", "", "empty path"},
		{"{{.Key.Parent}}/", "g", "", "only field is .Group"},
		{"{{.Group", "g", "", `template "{{.Group"`},
	}
	for _, tt := range tests {
		got, err := Expand(tt.tmpl, tt.group)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Expand(%q, %q) error = %v, want one containing %q", tt.tmpl, tt.group, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Expand(%q, %q) = %q, %v; want %q", tt.tmpl, tt.group, got, err, tt.want)
		}
	}
}

// FuzzMatch feeds arbitrary keys (outside input: they come from event
// notifications) through the default and a directory group rule.
func FuzzMatch(f *testing.F) {
	for _, k := range []string{"data/2020-08-07_2PM/hydropower-consumption.csv", "a.csv", "data/../x.csv", "data//x.csv", "/x/y.csv", "data/\x00/y.csv", "data/\xff/y.csv", "data/./y", ""} {
		f.Add(k)
	}
	rules := []*Compiled{}
	for _, r := range []Rule{{Name: "parent", Filter: event.Filter{Prefix: "data/"}}, {Name: "dir", Group: "{{.Key.Dir}}"}} {
		c, err := Compile(r)
		if err != nil {
			f.Fatal(err)
		}
		rules = append(rules, c)
	}
	f.Fuzz(func(t *testing.T, key string) {
		for _, c := range rules {
			g, ok, err := c.Match(rec(event.ObjectCreatedPut, key))
			if err != nil {
				if ok || g != "" {
					t.Fatalf("Match(%q) returned (%q, %v) with error %v", key, g, ok, err)
				}
				if !strings.Contains(err.Error(), c.Name()) {
					t.Fatalf("error %q does not name the rule", err)
				}
				continue
			}
			if !ok {
				continue
			}
			if CheckGroup(g) != nil || !utf8.ValidString(g) {
				t.Fatalf("Match(%q) returned unusable group %q", key, g)
			}
			if !strings.Contains(key, g) {
				t.Fatalf("group %q is not part of key %q", g, key)
			}
			p, err := Expand("data/{{.Group}}/", g)
			if err != nil || !strings.HasPrefix(p, "data/") {
				t.Fatalf("Expand for group %q = %q, %v", g, p, err)
			}
		}
	})
}
