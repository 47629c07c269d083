package httpsource

import "testing"

func TestLandPrefixIsTheFixedFolderBeforeTheFirstVaryingField(t *testing.T) {
	for _, tc := range []struct{ land, want string }{
		{"", "raw/posts/"},
		{DefaultLand, "raw/posts/"},
		{"raw/{{.Source}}/{{.Date}}/{{.Unique}}.json", "raw/posts/"},
		{"raw/posts/dt={{.Date}}/p.json", "raw/posts/"},
		{"raw/{{.Date}}/{{.Source}}_{{.Unique}}.json", "raw/"},
		{"{{.Date}}/{{.Source}}.json", ""},
		{"{{.Source}}/{{.Time}}.json", "posts/"},
		{"lake/raw/posts/{{printf \"%05d\" .Page}}_{{.Unique}}.json", "lake/raw/posts/"},
		{"a/b/c_{{.Unique}}.json", "a/b/"},
		{"x/{{if eq .Page 1}}first{{else}}other{{end}}/{{.Unique}}", "x/"},
	} {
		got, err := LandPrefix("posts", tc.land)
		if err != nil || got != tc.want {
			t.Errorf("LandPrefix(%q) = %q, %v; want %q", tc.land, got, err, tc.want)
		}
	}
	if _, err := LandPrefix("posts", "{{range .}}{{end}}"); err == nil {
		t.Error("LandPrefix accepted a template New refuses")
	}
}
