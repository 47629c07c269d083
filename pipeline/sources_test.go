package pipeline

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSkipUnchangedAndRetentionAreReadFromTheSource(t *testing.T) {
	s := mustParse(t, srcHead+"    http: {url: https://x/posts}\n    skip_unchanged: true\n    retention: 30d\n", noEnv)
	src := s.Sources[0]
	if !src.HTTP.SkipUnchanged || src.Retention != 30*24*time.Hour {
		t.Errorf("skip_unchanged = %v, retention = %s; want true, 720h", src.HTTP.SkipUnchanged, src.Retention)
	}
	if got := src.LandPrefix(); got != "raw/s/" {
		t.Errorf("LandPrefix = %q, want raw/s/", got)
	}
	s = mustParse(t, srcHead+"    http: {url: https://x/posts}\n", noEnv)
	if s.Sources[0].HTTP.SkipUnchanged || s.Sources[0].Retention != 0 {
		t.Errorf("defaults: skip_unchanged = %v, retention = %s; want false, 0", s.Sources[0].HTTP.SkipUnchanged, s.Sources[0].Retention)
	}
}

func TestParseRetentionTakesDaysAndDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"30d": 30 * 24 * time.Hour, "1d": 24 * time.Hour, "1d12h": 36 * time.Hour, " 2d30m ": 48*time.Hour + 30*time.Minute,
		"36h": 36 * time.Hour, "1h": time.Hour, "90m": 90 * time.Minute, "0d2h": 2 * time.Hour,
	} {
		if got, msg := parseRetention(in); msg != "" || got != want {
			t.Errorf("parseRetention(%q) = %s, %q; want %s", in, got, msg, want)
		}
	}
	for in, frag := range map[string]string{
		"30": "is not a retention", "d": "is not a retention", "-1d": "is not a retention", "+1d": "is not a retention",
		"1.5d": "is not a retention", "1dx": "is not a retention", "30 days": "is not a retention",
		"59m": "too short", "0d": "too short", "0": "too short", "100001d": "too long",
	} {
		if _, msg := parseRetention(in); !strings.Contains(msg, frag) {
			t.Errorf("parseRetention(%q) says %q, want it to contain %q", in, msg, frag)
		}
	}
}

func TestRetentionThatCouldDeleteWhatIsNotTheSourcesIsRefused(t *testing.T) {
	for _, c := range []badSpec{
		{"a bad retention names the key", srcHead + "    http: {url: https://x}\n    retention: 30 days\n", 5, 16, "sources.s.retention", "write a number of days like 30d"},
		{"skip_unchanged is a boolean", srcHead + "    http: {url: https://x}\n    skip_unchanged: sometimes\n", 5, 21, "sources.s.skip_unchanged", "not a boolean"},
		{"a land without a fixed folder", srcHead + "    http: {url: https://x}\n    land: \"{{.Date}}/{{.Unique}}.json\"\n    retention: 7d\n", 6, 16, "sources.s.retention", "no fixed folder"},
		{"a land folder holding another source's", "name: t\nsources:\n  s:\n    http: {url: https://x}\n    land: \"raw/{{.Source}}_{{.Unique}}.json\"\n    retention: 7d\n  t:\n    http: {url: https://y}\n    land: \"raw/t/{{.Unique}}.json\"\n", 6, 16, "sources.s.retention", "would delete objects of source t too"},
		{"a land folder inside another source's", "name: t\nsources:\n  s:\n    http: {url: https://x}\n    retention: 7d\n  t:\n    http: {url: https://y}\n    land: \"raw/{{.Source}}{{.Unique}}.json\"\n", 5, 16, "sources.s.retention", "would delete objects of source t too"},
		{"a land folder holding a job's output", "name: t\nsources:\n  s:\n    http: {url: https://x}\n    retention: 7d\njobs:\n  j:\n    on: {prefix: raw/s/, suffix: .json}\n    command: [x]\n    output: \"raw/s/out/{{.Group}}/\"\n", 5, 16, "sources.s.retention", "would delete the outputs of job j too"},
	} {
		t.Run(c.name, func(t *testing.T) { checkBadSpec(t, c) })
	}
	// Each source in its own folder is fine.
	mustParse(t, "name: t\nsources:\n  s:\n    http: {url: https://x}\n    retention: 7d\n  s2:\n    http: {url: https://y}\n    retention: 7d\n", noEnv)
}

func TestPaginationThatMayNotAdvanceIsWarnedAbout(t *testing.T) {
	pag := func(p string) string {
		return srcHead + "    http:\n      url: https://x\n      pagination: " + p + "\n"
	}
	for _, c := range []struct {
		name, yaml string
		line, col  int
		path, frag string
	}{
		{"page size the API is not told", pag("{type: page, size: 100}"), 6, 38, "sources.s.http.pagination.size", "only the first page is imported"},
		{"offset size the API is not told", pag("{type: offset, size: 50}"), 6, 40, "sources.s.http.pagination.size", "the records between them are skipped"},
		{"max_pages 1", pag("{type: cursor, cursor_path: next, max_pages: 1}"), 6, 64, "sources.s.http.pagination.max_pages", "stops the pagination at its first page"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := mustParse(t, c.yaml, noEnv)
			for _, w := range s.Warnings {
				if w.Line == c.line && w.Col == c.col && w.Path == c.path && strings.Contains(w.Msg, c.frag) {
					if !strings.HasPrefix(w.Error(), "p.yaml:") {
						t.Errorf("warning %q does not start with the file name", w)
					}
					return
				}
			}
			t.Errorf("no warning at %d:%d %s containing %q; got %v", c.line, c.col, c.path, c.frag, s.Warnings)
		})
	}
	for _, p := range []string{
		"{type: page}", "{type: page, size_param: per_page, size: 100}", "{type: offset, size: 1}",
		"{type: offset, size_param: limit, size: 100}", "{type: link}", "{type: link, size_param: per_page, size: 100}",
		"{type: cursor, cursor_path: next}",
	} {
		if s := mustParse(t, pag(p), noEnv); len(s.Warnings) > 0 {
			t.Errorf("pagination %s: unexpected warnings %v", p, s.Warnings)
		}
	}
}

// The repository's examples are what people copy: they carry no warnings.
func TestExampleSpecsHaveNoWarnings(t *testing.T) {
	files, _ := filepath.Glob("../examples/*/pipeline.yaml")
	own, _ := filepath.Glob("testdata/*.yaml")
	for _, f := range append(files, own...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Parse(f, data, noEnv)
		if err != nil {
			continue // TestEveryExampleSpecParses reports it
		}
		for _, w := range s.Warnings {
			t.Errorf("%s: warning: %v", f, w)
		}
	}
}
