package pipeline

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/schema"

	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/format"
	"github.com/sluicehq/sluice/source/httpsource"
	"github.com/sluicehq/sluice/warehouse"
)

func mustParse(t *testing.T, src string, getenv func(string) string) *Spec {
	t.Helper()
	s, err := Parse("p.yaml", []byte(src), getenv)
	if err != nil {
		t.Fatalf("Parse failed:\n%v\nspec:\n%s", err, src)
	}
	return s
}

func TestParseAppliesEveryDefaultToThePostsExample(t *testing.T) {
	s, err := LoadFile("testdata/posts.yaml", noEnv)
	if err != nil {
		t.Fatal(err)
	}
	want := &Spec{
		File: "testdata/posts.yaml", Name: "reference",
		Store: "file://./lake", Queue: "embedded", Warehouse: "sqlite://./warehouse.db",
		ReconcileEvery: DefaultReconcileEvery,
		Sources: []Source{{
			Name: "posts",
			HTTP: httpsource.Config{
				Name:              "posts",
				URL:               "https://jsonplaceholder.typicode.com/posts",
				Timeout:           30 * time.Second,
				Headers:           map[string]string{"Accept": "application/json"},
				Retries:           5,
				Backoff:           500 * time.Millisecond,
				MaxBackoff:        30 * time.Second,
				ExpectContentType: "application/json",
				Land:              "raw/{{.Source}}/dt={{.Date}}/{{.Source}}_{{.Time}}_{{.Unique}}.json",
				MaxBytes:          1 << 30,
			},
			Every: time.Hour,
			Pos:   Pos{Line: 9, Col: 3},
		}},
		Loads: []Load{{
			Name:       "posts",
			On:         On{Events: []string{"ObjectCreated:*"}, Prefix: "raw/posts/", Suffix: ".json", KeyEncoding: event.KeyURL},
			Format:     "json",
			Table:      "posts",
			Write:      warehouse.Merge,
			PrimaryKey: []string{"id"},
			Columns: []Column{
				{Field: "id", Path: []string{"id"}, Name: "id", Type: schema.BigInt},
				{Field: "userId", Path: []string{"userId"}, Name: "userid", Type: schema.BigInt},
				{Field: "title", Path: []string{"title"}, Name: "title", Type: schema.Text},
				{Field: "body", Path: []string{"body"}, Name: "body", Type: schema.Text},
			},
			OnBadRecord: OnBadDeadLetter, OnMissing: format.MissingWarn, Extra: format.ExtraWarn,
			Pos: Pos{Line: 16, Col: 3},
		}},
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got  %+v\nwant %+v", s, want)
	}
}

func TestParseReadsEveryKeyOfTheFullExample(t *testing.T) {
	s, err := LoadFile("testdata/full.yaml", env(map[string]string{"EXAMPLE_API_KEY": "not-in-the-spec"}))
	if err != nil {
		t.Fatal(err)
	}
	h := s.Sources[0].HTTP
	if h.Timeout != 10*time.Second || h.Retries != 2 {
		t.Errorf("merge key <<: *http_defaults not applied: timeout %v retries %d", h.Timeout, h.Retries)
	}
	if h.Backoff != 250*time.Millisecond || h.MaxBackoff != 5*time.Second {
		t.Errorf("backoff %v..%v, want 250ms..5s", h.Backoff, h.MaxBackoff)
	}
	if h.ExpectContentType != "*" {
		t.Errorf("expect_content_type \"*\" gave %q, want \"*\" (no check)", h.ExpectContentType)
	}
	if want := (&httpsource.Auth{Header: "X-Api-Key", Env: "EXAMPLE_API_KEY"}); !reflect.DeepEqual(h.Auth, want) {
		t.Errorf("auth %+v, want %+v", h.Auth, want)
	}
	if want := (&httpsource.Pagination{Type: "cursor", Param: "after", SizeParam: "limit", Size: 500, CursorPath: "meta.next_cursor", MaxPages: 50}); !reflect.DeepEqual(h.Pagination, want) {
		t.Errorf("pagination %+v, want %+v", h.Pagination, want)
	}
	if s.Sources[0].Every != 15*time.Minute {
		t.Errorf("every %v, want 15m", s.Sources[0].Every)
	}
	if h.Name != "users" || h.Land != `raw/{{.Source}}/{{.Date}}/page-{{printf "%05d" .Page}}-{{.Unique}}.ndjson` {
		t.Errorf("name %q, land %q", h.Name, h.Land)
	}
	l := s.Loads[0]
	if !reflect.DeepEqual(l.On.Events, []string{"ObjectCreated:Put", "ObjectCreated:CompleteMultipartUpload"}) || l.On.KeyEncoding != event.KeyRaw {
		t.Errorf("on = %+v, want normalised events and raw keys", l.On)
	}
	if !reflect.DeepEqual(l.Columns[0], Column{Field: "id", Path: []string{"id"}, Name: "id", Type: schema.BigInt, Required: true}) || l.Columns[2].Name != "created_at" {
		t.Errorf("columns = %+v", l.Columns)
	}
	if s.Loads[1].Table != "users" || s.Loads[1].Format != "ndjson" {
		t.Errorf("second load = %+v", s.Loads[1])
	}
	if len(s.Jobs) != 2 {
		t.Fatalf("jobs = %+v", s.Jobs)
	}
	wantJob := Job{
		Name:    "hydropower",
		On:      On{Events: []string{"ObjectCreated:*"}, Prefix: "data/", Suffix: ".csv", KeyEncoding: event.KeyURL},
		Group:   "{{.Key.Parent}}",
		Settle:  10 * time.Second,
		Runner:  "local",
		Timeout: 30 * time.Minute,
		Curate: &Curate{
			Input: "data/{{.Group}}/", Output: "curated/{{.Group}}/", Format: "csv", Delimiter: ";",
			Rename: map[string]string{"Hydropower (Terawatt-hours)": "consumption"},
			Columns: []schema.Column{
				{Name: "Entity", Type: schema.Text}, {Name: "Code", Type: schema.Text},
				{Name: "Year", Type: schema.Integer}, {Name: "consumption", Type: schema.Real},
			},
			Filter: "Year >= 2000 and Code != null", Mode: "error-if-exists", MaxRowsPerFile: 500000,
		},
		Output: "curated/{{.Group}}/",
		Pos:    Pos{Line: 55, Col: 3},
	}
	if !reflect.DeepEqual(s.Jobs[0], wantJob) {
		t.Errorf("job\n got %+v\nwant %+v\ncurate\n got %+v\nwant %+v", s.Jobs[0], wantJob, s.Jobs[0].Curate, wantJob.Curate)
	}
	wantReport := Job{
		Name:    "report",
		On:      On{Events: []string{"ObjectCreated:Put"}, Prefix: "curated/", Suffix: "_SUCCESS", KeyEncoding: event.KeyRaw},
		Group:   "{{.Key.Parent}}",
		Runner:  "local",
		Timeout: time.Hour,
		Command: []string{"python3", "report.py", "today"},
		Output:  "reports/{{.Group}}/",
		Pos:     Pos{Line: 72, Col: 3},
	}
	if !reflect.DeepEqual(s.Jobs[1], wantReport) {
		t.Errorf("job\n got %+v\nwant %+v", s.Jobs[1], wantReport)
	}
	if strings.Contains(strings.ReplaceAll(stringify(s), "EXAMPLE_API_KEY", ""), "not-in-the-spec") {
		t.Errorf("the auth secret was read into the spec")
	}
}

func stringify(s *Spec) string {
	var b strings.Builder
	b.WriteString(s.Name + s.Store + s.Queue + s.Warehouse)
	for _, src := range s.Sources {
		b.WriteString(src.HTTP.URL)
		for k, v := range src.HTTP.Headers {
			b.WriteString(k + v)
		}
		if a := src.HTTP.Auth; a != nil {
			b.WriteString(a.Header + a.Env + a.Scheme)
		}
	}
	return b.String()
}

func TestParseReportsEveryErrorSortedByPosition(t *testing.T) {
	src := `name: Bad Name
loads:
  a:
    table: t
    write: merge
    columns: {id: bigint, x: strng}
sources:
  s:
    http: {url: ftp://x, timeout: 5}
    every: ${EVERY}
jobs: []
`
	_, err := Parse("p.yaml", []byte(src), noEnv)
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("err = %v, want an ErrorList", err)
	}
	want := []string{
		"p.yaml:1:7: name: ",
		"p.yaml:5:12: loads.a.write: write: merge needs primary_key",
		"p.yaml:6:30: loads.a.columns.x: unknown column type \"strng\"",
		"p.yaml:9:17: sources.s.http.url: ",
		"p.yaml:9:35: sources.s.http.timeout: ",
		"p.yaml:10:12: sources.s.every: environment variable EVERY is not set",
		"p.yaml:11:7: jobs: expected a mapping",
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) || len(list) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("error %d = %q, want prefix %q", i, lines[i], w)
		}
	}
}

func TestExpandReplacesReferences(t *testing.T) {
	getenv := env(map[string]string{"A": "alpha", "EMPTY": "", "D": "x}y"})
	cases := []struct {
		in, want, err string
	}{
		{"plain", "plain", ""},
		{"${A}", "alpha", ""},
		{"pre-${A}-post", "pre-alpha-post", ""},
		{"${A}${A}", "alphaalpha", ""},
		{"${B:-beta}", "beta", ""},
		{"${A:-beta}", "alpha", ""},
		{"${EMPTY:-dflt}", "dflt", ""},
		{"${B:-}", "", ""},
		{"${B:-a:-b}", "a:-b", ""},
		{"${D}", "x}y", ""},
		{"$$", "$", ""},
		{"$${A}", "${A}", ""},
		{"$$$${A}", "$${A}", ""},
		{"cost: $5", "cost: $5", ""},
		{"$A", "$A", ""},
		{"end$", "end$", ""},
		{"{{$x := .Page}}", "{{$x := .Page}}", ""},
		{"${B}", "", "environment variable B is not set: set it, or write ${B:-default}"},
		{"${EMPTY}", "", "environment variable EMPTY is not set"},
		{"${A", "", "unterminated ${"},
		{"${}", "", "${} is not a variable reference"},
		{"${A-x}", "", "${A-x} is not a variable reference"},
		{"${1A}", "", "${1A} is not a variable reference"},
	}
	for _, c := range cases {
		got, err := expand(c.in, getenv)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("expand(%q) error = %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("expand(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestEnvironmentReferencesAreExpandedInValuesNotKeys(t *testing.T) {
	src := `name: ${NAME:-fallback}
sources:
  s:
    http: {url: "${BASE}/posts", retries: "${RETRIES:-3}", timeout: "${T}"}
    land: "raw/$${literal}/{{.Unique}}.json"
loads:
  l: {table: t, columns: {"${F}": {type: text, as: f}}}
`
	s := mustParse(t, src, env(map[string]string{"BASE": "https://api.example.com", "T": "2s", "KEY": "ignored"}))
	src0 := s.Sources[0]
	if s.Name != "fallback" || s.Loads[0].Columns[0].Field != "${F}" {
		t.Errorf("name %q, field %q: keys must stay as written", s.Name, s.Loads[0].Columns[0].Field)
	}
	if src0.HTTP.URL != "https://api.example.com/posts" || src0.HTTP.Retries != 3 || src0.HTTP.Timeout != 2*time.Second {
		t.Errorf("http = %+v", src0.HTTP)
	}
	if src0.HTTP.Land != "raw/${literal}/{{.Unique}}.json" {
		t.Errorf("land = %q", src0.HTTP.Land)
	}
}

func TestSourceNamesThatAreNotNamesAreRejectedEvenAfterExpansion(t *testing.T) {
	_, err := Parse("p.yaml", []byte("name: t\nsources:\n  ${KEY}:\n    http: {url: https://x}\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), `"${KEY}" is not a valid source name`) {
		t.Errorf("err = %v", err)
	}
}

func TestAuthValuesAreNeverExpandedNorRead(t *testing.T) {
	var asked []string
	getenv := func(k string) string {
		asked = append(asked, k)
		if k == "TOKEN" {
			return "s3cr3t"
		}
		return ""
	}
	src := "name: t\nsources:\n  s:\n    http: {url: https://x, auth: {env: \"${TOKEN}\", scheme: Bearer}}\n"
	_, err := Parse("p.yaml", []byte(src), getenv)
	if err == nil || !strings.Contains(err.Error(), "env names the variable, it is not expanded: write env: TOKEN") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("the error shows the secret: %v", err)
	}
	src = "name: t\nsources:\n  s:\n    http: {url: https://x, auth: {env: TOKEN}}\n"
	asked = nil
	s := mustParse(t, src, getenv)
	for _, k := range asked {
		if k == "TOKEN" {
			t.Errorf("Parse read the auth variable TOKEN")
		}
	}
	if *s.Sources[0].HTTP.Auth != (httpsource.Auth{Header: "Authorization", Env: "TOKEN"}) {
		t.Errorf("auth = %+v", s.Sources[0].HTTP.Auth)
	}
}

func TestEnvironmentOverridesReplaceStoreQueueAndWarehouse(t *testing.T) {
	src := "name: t\nstore: file://./a\nqueue: embedded\nwarehouse: sqlite://./w.db\njobs: {j: {command: [\"true\"]}}\n"
	s := mustParse(t, src, env(map[string]string{
		"SLUICE_STORE": "s3://bucket", "SLUICE_QUEUE": "nats://127.0.0.1:4222", "SLUICE_WAREHOUSE": "postgres://postgres@127.0.0.1/test",
	}))
	if s.Store != "s3://bucket" || s.Queue != "nats://127.0.0.1:4222" || s.Warehouse != "postgres://postgres@127.0.0.1/test" {
		t.Errorf("overrides not applied: %q %q %q", s.Store, s.Queue, s.Warehouse)
	}
	s = mustParse(t, src, env(map[string]string{"SLUICE_STORE": ""}))
	if s.Store != "file://./a" {
		t.Errorf("an empty SLUICE_STORE replaced store: %q", s.Store)
	}
	// The file's value is not read when an override is set.
	s = mustParse(t, "name: t\nqueue: ${UNSET}\njobs: {j: {command: [\"true\"]}}\n", env(map[string]string{"SLUICE_QUEUE": "mem://q"}))
	if s.Queue != "mem://q" {
		t.Errorf("queue = %q", s.Queue)
	}
	// A bad override is reported at the key it replaces.
	_, err := Parse("p.yaml", []byte(src), env(map[string]string{"SLUICE_WAREHOUSE": "mysql://x"}))
	if err == nil || !strings.HasPrefix(err.Error(), `p.yaml:4:12: warehouse: SLUICE_WAREHOUSE="mysql://x" (which replaces warehouse): warehouse scheme "mysql"`) {
		t.Errorf("err = %v", err)
	}
}

func TestOptionalSettingsDefaultToEmpty(t *testing.T) {
	s := mustParse(t, "name: t\nstore: \"\"\njobs: {j: {command: [\"true\"]}}\n", noEnv)
	if s.Store != "" || s.Queue != "" || s.Warehouse != "" {
		t.Errorf("store/queue/warehouse = %q %q %q", s.Store, s.Queue, s.Warehouse)
	}
}

func TestPaginationDefaultsDependOnTheType(t *testing.T) {
	cases := []struct {
		yaml string
		want httpsource.Pagination
	}{
		{"{type: page}", httpsource.Pagination{Type: "page", Param: "page", Start: 1, MaxPages: 1000}},
		{"{type: page, param: _page, size_param: _limit, size: 10, start: 2}", httpsource.Pagination{Type: "page", Param: "_page", SizeParam: "_limit", Size: 10, Start: 2, MaxPages: 1000}},
		{"{type: offset, size: 50}", httpsource.Pagination{Type: "offset", Param: "offset", Size: 50, MaxPages: 1000}},
		{"{type: offset, param: skip, size: 50, start: 100, max_pages: 3}", httpsource.Pagination{Type: "offset", Param: "skip", Size: 50, Start: 100, MaxPages: 3}},
		{"{type: cursor, cursor_path: next}", httpsource.Pagination{Type: "cursor", Param: "cursor", CursorPath: "next", MaxPages: 1000}},
		{"{type: link}", httpsource.Pagination{Type: "link", MaxPages: 1000}},
		{"{type: link, size_param: per_page, size: 100}", httpsource.Pagination{Type: "link", SizeParam: "per_page", Size: 100, MaxPages: 1000}},
	}
	for _, c := range cases {
		s := mustParse(t, "name: t\nsources:\n  s:\n    http:\n      url: https://x\n      pagination: "+c.yaml+"\n", noEnv)
		if got := s.Sources[0].HTTP.Pagination; got == nil || *got != c.want {
			t.Errorf("pagination %s = %+v, want %+v", c.yaml, got, c.want)
		}
	}
}

func TestMaxBytesReadsWholeBytesAndSizesWithUnits(t *testing.T) {
	for _, c := range []struct {
		yaml string
		want int64
	}{
		{"1", 1},
		{"1048576", 1 << 20},
		{"512MiB", 512 << 20},
		{"512 mib", 512 << 20},
		{"2GB", 2e9},
		{"1GiB", 1 << 30},
		{"10kb", 10e3},
		{"3 KiB", 3 << 10},
		{"100B", 100},
		{"1TiB", 1 << 40},
		{`"${MAX:-64MiB}"`, 64 << 20},
	} {
		s := mustParse(t, "name: t\nsources:\n  s:\n    http: {url: https://x, max_bytes: "+c.yaml+"}\n", noEnv)
		if got := s.Sources[0].HTTP.MaxBytes; got != c.want {
			t.Errorf("max_bytes: %s gives %d, want %d", c.yaml, got, c.want)
		}
	}
	s := mustParse(t, "name: t\nsources:\n  s:\n    http: {url: https://x}\n", noEnv)
	if got := s.Sources[0].HTTP.MaxBytes; got != httpsource.DefaultMaxBytes {
		t.Errorf("without max_bytes, MaxBytes = %d, want httpsource's default %d", got, httpsource.DefaultMaxBytes)
	}
}

func TestALoadWithoutOnMatchesEveryObjectCreatedEvent(t *testing.T) {
	s := mustParse(t, "name: t\nloads:\n  l: {table: t, columns: {id: bigint}}\n", noEnv)
	l := s.Loads[0]
	if l.Format != FormatAuto || l.Write != warehouse.Append || l.On.KeyEncoding != event.KeyURL || !reflect.DeepEqual(l.On.Events, []string{DefaultEvent}) {
		t.Errorf("load defaults = %+v", l)
	}
	f := l.On.Filter()
	put := event.New("b", "any/key.csv", 1, "e", time.Now())
	if !f.Match(put) {
		t.Errorf("the default filter does not match %+v", put)
	}
	if want := (warehouse.Table{Name: "t", Columns: []schema.Column{{Name: "id", Type: schema.BigInt}}}); !reflect.DeepEqual(l.TableDef(), want) {
		t.Errorf("TableDef = %+v", l.TableDef())
	}
}

func TestLoadsThatAgreeMayShareATable(t *testing.T) {
	s := mustParse(t, `name: t
loads:
  a: {table: t, columns: {id: bigint, name: text}, primary_key: [id], write: merge}
  b: {table: t, columns: {name: {type: text}, ident: {type: bigint, as: id}}, primary_key: [id]}
`, noEnv)
	if len(s.Loads) != 2 {
		t.Fatalf("loads = %+v", s.Loads)
	}
}

func TestMergeKeysAndAliasesWork(t *testing.T) {
	s := mustParse(t, `name: t
x-cols: &cols {id: bigint, title: text}
x-load: &load
  table: posts
  write: append
  columns: *cols
loads:
  a:
    <<: *load
    write: merge
    primary_key: [id]
  b:
    <<: [*load]
    on: {prefix: b/}
    primary_key: [id]
`, noEnv)
	a, b := s.Loads[0], s.Loads[1]
	if a.Table != "posts" || a.Write != warehouse.Merge || len(a.Columns) != 2 {
		t.Errorf("a = %+v: explicit keys must win over merged ones", a)
	}
	if b.Write != warehouse.Append || b.On.Prefix != "b/" || len(b.Columns) != 2 {
		t.Errorf("b = %+v", b)
	}
}

func TestAliasBombsAreRefusedQuickly(t *testing.T) {
	var b strings.Builder
	// Each level merges ten copies of the one below: 10^9 merges if expanded.
	b.WriteString("name: t\nx-0: &a0 {command: [x]}\n")
	for i := 1; i < 10; i++ {
		b.WriteString("x-" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " {<<: [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + string(rune('0'+i-1)))
		}
		b.WriteString("]}\n")
	}
	b.WriteString("jobs:\n  bomb: *a9\n")
	start := time.Now()
	_, err := Parse("p.yaml", []byte(b.String()), noEnv)
	if err == nil || !strings.Contains(err.Error(), "aliases (*name) are used more than") {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Parse took %v", d)
	}
}

func TestNullSectionsAreEmpty(t *testing.T) {
	s := mustParse(t, "name: t\nsources:\njobs:\nloads:\n  l: {table: t, columns: {id: bigint}}\n", noEnv)
	if len(s.Sources) != 0 || len(s.Jobs) != 0 || len(s.Loads) != 1 {
		t.Errorf("spec = %+v", s)
	}
}

func TestASourcesHTTPConfigIsTheImporterConfigWithHTTPSourceDefaults(t *testing.T) {
	s := mustParse(t, "name: t\nsources:\n  s:\n    http: {url: https://x, retries: 0, expect_content_type: \"\"}\n", noEnv)
	h := s.Sources[0].HTTP
	if h.Name != "s" || h.Land != httpsource.DefaultLand || h.Timeout != httpsource.DefaultTimeout || h.MaxBackoff != httpsource.DefaultMaxBackoff {
		t.Errorf("http = %+v, want httpsource's defaults", h)
	}
	if h.Retries >= 0 || h.ExpectContentType != "*" {
		t.Errorf("retries %d, expect_content_type %q: want no retries (negative) and no content type check (*)", h.Retries, h.ExpectContentType)
	}
	im, err := httpsource.New(h, nil)
	if err != nil {
		t.Fatalf("httpsource.New refuses the parsed config: %v", err)
	}
	if got := im.Config(); !reflect.DeepEqual(got, h) {
		t.Errorf("httpsource.New changed the parsed config:\n got %+v\nwant %+v", got, h)
	}
}

func TestFormatForResolvesAuto(t *testing.T) {
	cases := []struct{ format, key, want string }{
		{FormatAuto, "raw/a.json", FormatJSON},
		{FormatAuto, "raw/a.ndjson", FormatNDJSON},
		{FormatAuto, "raw/a.JSONL", FormatNDJSON},
		{FormatAuto, "raw/a.jsonl.gz", FormatNDJSON},
		{FormatAuto, "raw/a.json.gz", FormatJSON},
		{FormatAuto, "raw/a", FormatJSON},
		{FormatJSON, "raw/a.ndjson", FormatJSON},
		{FormatNDJSON, "raw/a.json", FormatNDJSON},
	}
	for _, c := range cases {
		if got := (Load{Format: c.format}).FormatFor(c.key); got != c.want {
			t.Errorf("FormatFor(%s, %s) = %s, want %s", c.format, c.key, got, c.want)
		}
	}
}

func TestErrorFormatsAsFileLineColPathMessage(t *testing.T) {
	cases := []struct {
		e    Error
		want string
	}{
		{Error{File: "p.yaml", Line: 3, Col: 5, Path: "loads.a.write", Msg: "bad"}, "p.yaml:3:5: loads.a.write: bad"},
		{Error{File: "p.yaml", Line: 3, Msg: "bad"}, "p.yaml:3: bad"},
		{Error{File: "p.yaml", Path: "queue", Msg: "bad"}, "p.yaml: queue: bad"},
		{Error{Line: 1, Col: 2, Msg: "bad"}, ":1:2: bad"},
		{Error{Msg: "bad"}, "bad"},
	}
	for _, c := range cases {
		if got := c.e.Error(); got != c.want {
			t.Errorf("Error() = %q, want %q", got, c.want)
		}
	}
	l := ErrorList{&cases[0].e, &cases[1].e}
	if l.Error() != "p.yaml:3:5: loads.a.write: bad\np.yaml:3: bad" {
		t.Errorf("ErrorList.Error() = %q", l.Error())
	}
	var e *Error
	if !errors.As(error(l), &e) || e != &cases[0].e {
		t.Errorf("errors.As does not find the first *Error")
	}
}

func TestLoadFileSaysWhichFileIsMissing(t *testing.T) {
	_, err := LoadFile("testdata/nope.yaml", nil)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "testdata/nope.yaml") {
		t.Errorf("err = %v", err)
	}
}

func TestParseUsesOSGetenvWhenGetenvIsNil(t *testing.T) {
	t.Setenv("SLUICE_PIPELINE_TEST_URL", "https://from-env.example")
	t.Setenv("SLUICE_QUEUE", "")
	s, err := Parse("p.yaml", []byte("name: t\nsources:\n  s:\n    http: {url: \"${SLUICE_PIPELINE_TEST_URL}\"}\n"), nil)
	if err != nil || s.Sources[0].HTTP.URL != "https://from-env.example" {
		t.Errorf("spec %+v, err %v", s, err)
	}
}

// TestEveryExampleSpecParses parses the repository's examples and this
// package's good test specs, so that documentation cannot rot.
func TestEveryExampleSpecParses(t *testing.T) {
	var files []string
	_ = filepath.WalkDir("../examples", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "pipeline.yaml" {
			files = append(files, p)
		}
		return nil
	})
	own, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(own) < 2 {
		t.Fatalf("testdata specs missing: %v %v", own, err)
	}
	files = append(files, own...)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Examples may reference variables with defaults only; unset ones fail.
		if _, err := Parse(f, data, noEnv); err != nil {
			t.Errorf("%s does not parse:\n%v", f, err)
		}
	}
}

func TestSuggestFindsCloseWords(t *testing.T) {
	opts := []string{"on", "format", "table", "write", "primary_key", "columns"}
	cases := []struct{ word, want string }{
		{"tabel", "table"},
		{"primaryKey", "primary_key"},
		{"PRIMARY_KEY", "primary_key"},
		{"colums", "columns"},
		{"in", "on"},
		{"id", ""},
		{"zzzzzz", ""},
		{strings.Repeat("x", 200), ""},
	}
	for _, c := range cases {
		if got := suggest(c.word, opts); got != c.want {
			t.Errorf("suggest(%q) = %q, want %q", c.word, got, c.want)
		}
	}
}

func TestSplitLinesCountsEveryYAMLLineBreak(t *testing.T) {
	cases := []struct {
		in   string
		want int
	}{
		{"", 0}, {"a", 1}, {"a\n", 1}, {"a\nb", 2}, {"a\r\nb\r\n", 2}, {"a\rb", 2},
		{"a\u0085b", 2}, {"a\u2028b\u2029c", 3}, {"\r0", 2},
	}
	for _, c := range cases {
		if got := len(splitLines([]byte(c.in))); got != c.want {
			t.Errorf("splitLines(%q) has %d lines, want %d", c.in, got, c.want)
		}
	}
}

// TestThePackageDocExampleParses keeps the example in doc.go valid.
func TestThePackageDocExampleParses(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.Index(text, "// # Example\n")
	end := strings.Index(text, "// # Top level\n")
	if start < 0 || end < start {
		t.Fatal("doc.go has no # Example section before # Top level")
	}
	var b strings.Builder
	for _, line := range strings.Split(text[start:end], "\n") {
		if rest, ok := strings.CutPrefix(line, "//\t"); ok {
			b.WriteString(rest + "\n")
		} else if line == "//" {
			b.WriteString("\n")
		}
	}
	s := mustParse(t, b.String(), noEnv)
	if s.Name != "reference" || len(s.Sources) != 1 || len(s.Loads) != 1 || s.Sources[0].HTTP.URL != "https://jsonplaceholder.typicode.com/posts" {
		t.Errorf("example parsed as %+v", s)
	}
	if !reflect.DeepEqual(s.Loads[0].Columns[1], Column{Field: "userId", Path: []string{"userId"}, Name: "userid", Type: schema.BigInt, Required: true}) {
		t.Errorf("example columns = %+v", s.Loads[0].Columns)
	}
	if len(s.Jobs) != 1 || s.Jobs[0].Curate == nil || s.Jobs[0].Curate.Rename["Hydropower (Terawatt-hours)"] != "consumption" {
		t.Errorf("example jobs = %+v", s.Jobs)
	}
}

func TestNotificationsAreReadAndTheEnvironmentReplacesTheirURL(t *testing.T) {
	src := "name: t\nstore: s3://lake\nnotifications: {url: \"nats://127.0.0.1:4222?subject=lake.events\", key_encoding: raw}\njobs: {j: {on: {prefix: a/}, command: [true]}}\n"
	s, err := Parse("p.yaml", []byte(src), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if n := s.Notifications; n == nil || n.URL != "nats://127.0.0.1:4222?subject=lake.events" || n.KeyEncoding != event.KeyRaw || n.Pos != (Pos{3, 1}) {
		t.Fatalf("notifications = %+v, want the nats URL, raw keys, at 3:1", n)
	}
	env := map[string]string{"SLUICE_NOTIFICATIONS": "sqs://lake-events?region=eu-west-1"}
	s, err = Parse("p.yaml", []byte("name: t\nstore: s3://lake\njobs: {j: {on: {prefix: a/}, command: [true]}}\n"), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if n := s.Notifications; n == nil || n.URL != env["SLUICE_NOTIFICATIONS"] || n.KeyEncoding != event.KeyURL {
		t.Fatalf("notifications from the environment = %+v, want its sqs URL with url-encoded keys", n)
	}
	if s, err := Parse("p.yaml", []byte("name: t\njobs: {j: {on: {prefix: a/}, command: [true]}}\n"), func(string) string { return "" }); err != nil || s.Notifications != nil {
		t.Fatalf("without notifications: %+v, %v; want none", s.Notifications, err)
	}
}

func TestStateIsAURLThatSLUICE_STATEReplaces(t *testing.T) {
	src := "name: t\nstate: sqlite:///var/lib/sluice/state.db\njobs: {j: {command: [\"true\"]}}\n"
	if s := mustParse(t, src, noEnv); s.State != "sqlite:///var/lib/sluice/state.db" {
		t.Errorf("state = %q", s.State)
	}
	pg := "postgres://postgres@127.0.0.1:5432/test?schema=p1"
	if s := mustParse(t, src, env(map[string]string{"SLUICE_STATE": pg})); s.State != pg {
		t.Errorf("state with SLUICE_STATE = %q", s.State)
	}
	if s := mustParse(t, "name: t\njobs: {j: {command: [\"true\"]}}\n", noEnv); s.State != "" {
		t.Errorf("default state = %q", s.State)
	}
	for v, want := range map[string]string{
		"sqlite://./state.db": "sqlite:///ABS/PATH/state.db",
		"mysql://x/db":        `state scheme "mysql" is not supported`,
		"state.db":            "is not a state URL",
	} {
		_, err := Parse("p.yaml", []byte("name: t\nstate: "+v+"\njobs: {j: {command: [\"true\"]}}\n"), noEnv)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("state: %s: err = %v, want %q", v, err, want)
		}
	}
}

func TestWatchSettleUnsetOrZeroIsTheAutomaticWindow(t *testing.T) {
	for _, tc := range []struct {
		yaml   string
		settle time.Duration
	}{
		{"name: t\njobs: {}\n", 0},
		{"name: t\nwatch: {interval: 2s}\njobs: {}\n", 0},
		{"name: t\nwatch: {settle: 0s}\njobs: {}\n", 0},
		{"name: t\nwatch: {settle: 100ms}\njobs: {}\n", 100 * time.Millisecond},
		{"name: t\nwatch: {settle: 5s}\njobs: {}\n", 5 * time.Second},
	} {
		s, err := Parse("t.yaml", []byte(strings.Replace(tc.yaml, "jobs: {}", "loads: {l: {on: {prefix: a/}, table: t, columns: {id: bigint}}}", 1)), noEnv)
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if s.Watch.Settle != tc.settle {
			t.Errorf("%q: Watch.Settle = %s, want %s", tc.yaml, s.Watch.Settle, tc.settle)
		}
	}
}

func TestReconcileEveryDefaultsToTenMinutesAndZeroTurnsItOff(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want time.Duration
	}{
		{"name: t\njobs: {}\n", 10 * time.Minute},
		{"name: t\nreconcile_every: 0s\njobs: {}\n", 0},
		{"name: t\nreconcile_every: 1h\njobs: {}\n", time.Hour},
	} {
		s, err := Parse("t.yaml", []byte(strings.Replace(tc.yaml, "jobs: {}", "loads: {l: {on: {prefix: a/}, table: t, columns: {id: bigint}}}", 1)), noEnv)
		if err != nil {
			t.Fatalf("%q: %v", tc.yaml, err)
		}
		if s.ReconcileEvery != tc.want {
			t.Errorf("%q: ReconcileEvery = %s, want %s", tc.yaml, s.ReconcileEvery, tc.want)
		}
	}
}
