package httpsource

import (
	"strings"
	"testing"
	"time"
)

func TestCheckLandAcceptsFieldsFunctionsAndIf(t *testing.T) {
	for _, land := range []string{
		DefaultLand,
		"{{.Source}}/{{.Page}}/{{.Unique}}",
		`raw/{{.Source}}/{{.Date}}/page-{{printf "%05d" .Page}}-{{.Unique}}.ndjson`,
		`raw/{{if eq .Page 1}}first{{else}}p{{.Page}}{{end}}/{{.Time}}.json`,
	} {
		if err := CheckLand("posts", land, true); err != nil {
			t.Errorf("CheckLand(%q) = %v, want nil", land, err)
		}
	}
}

func TestCheckLandRefusesTemplatesThatCannotGiveAUsableKey(t *testing.T) {
	for _, tc := range []struct {
		name, land string
		paginated  bool
		want       string
	}{
		{"it does not parse", "raw/{{.Source", false, `land template does not parse (template: land:1: unclosed action): write a Go text/template such as "raw/`},
		{"an unknown field", "raw/{{.Name}}.json", false, "can't evaluate field Name in type httpsource.LandFields): use only {{.Source}}, {{.Date}}, {{.Time}}, {{.Unique}} and {{.Page}}"},
		{"range", "{{range $i, $c := .Source}}{{$c}}{{end}}", false, "{{range $i, $c := .Source}}{{$c}}{{end}} is not allowed: use fields such as {{.Date}}, functions such as printf, and if"},
		{"with inside if", "{{if .Page}}{{with .Source}}x{{end}}{{end}}", false, "{{with .Source}}x{{end}} is not allowed"},
		{"define", `{{define "x"}}a{{end}}raw/{{.Unique}}`, false, "define and block are not allowed"},
		{"block", `raw/{{block "x" .}}a{{end}}`, false, "define and block are not allowed"},
		{"template", `raw/{{template "land" .}}`, false, `{{template "land" .}} is not allowed`},
		{"a key longer than 1024 bytes", `raw/{{printf "%2000d" .Page}}`, false, "gives a key longer than 1024 bytes: shorten it"},
		{"an empty key", "", false, `gives key "", which is empty: write a template that names a file`},
		{"a blank key", "{{if false}}x{{end}} ", false, "which is empty"},
		{"a leading slash", "/raw/{{.Unique}}.json", false, `gives key "/raw/u1.json", which starts with /: keys are relative to the store, remove the leading /`},
		{"a trailing slash", "{{.Source}}/", false, `gives key "posts/", which ends with /: name a file`},
		{"an empty segment", "raw//{{.Unique}}.json", false, `has an empty, . or .. path segment: write the clean form ("raw/u1.json")`},
		{"a dot-dot segment", "raw/../{{.Unique}}", false, `write the clean form ("u1")`},
		{"a backslash", `raw\{{.Unique}}`, false, "contains a backslash, NUL or line break"},
		{"a line break", "raw/{{.Unique}}\n", false, "contains a backslash, NUL or line break"},
		{"one key for every page", "raw/{{.Date}}.json", true, `gives the same key ("raw/2026-01-02.json") for every page, so pages would overwrite each other: add {{.Page}} or {{.Unique}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckLand("posts", tc.land, tc.paginated)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("CheckLand(%q) = %v, want it to contain %q", tc.land, err, tc.want)
			}
		})
	}
}

func TestCheckLandAllowsOneKeyPerImportWithoutPagination(t *testing.T) {
	if err := CheckLand("posts", "raw/{{.Date}}.json", false); err != nil {
		t.Errorf("CheckLand = %v, want nil: an unpaginated import lands one object", err)
	}
}

func TestTheDefaultLandTemplateUsesTheUTCStartOfTheImport(t *testing.T) {
	tmpl, err := compileLand("posts", DefaultLand, false)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 1, 2, 0, 4, 5, 0, time.FixedZone("X", 3600))
	key, err := renderLand(tmpl, newLandFields("posts", start, "u9", 1))
	if err != nil || key != "raw/posts/dt=2026-01-01/posts_20260101T230405Z_u9.json" {
		t.Errorf("key = %q, %v", key, err)
	}
}

// FuzzCheckLand checks that CheckLand never panics and that a template it
// accepts renders a usable key of bounded size.
func FuzzCheckLand(f *testing.F) {
	for _, s := range []string{
		DefaultLand, "{{.Source}}/{{.Page}}", "raw/{{.Source", "{{range .Source}}x{{end}}",
		`{{printf "%2000d" 1}}`, "/a", "a//b", `{{define "x"}}{{end}}a`, "{{if .Page}}a{{else}}b{{end}}/{{.Unique}}",
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, land string, paginated bool) {
		tmpl, err := compileLand("posts", land, paginated)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "land template") {
				t.Errorf("error %q does not say it is about the land template", err)
			}
			return
		}
		key, err := renderLand(tmpl, newLandFields("posts", sampleStart, "u1", 1))
		if err != nil || len(key) > maxKeyLen || checkKey(key) != "" {
			t.Errorf("accepted %q renders %q, %v", land, key, err)
		}
	})
}
