package pipeline

import (
	"cmp"
	"fmt"
	"math"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sluicehq/sluice/event"
	"github.com/sluicehq/sluice/fault"
	"github.com/sluicehq/sluice/format"
	"github.com/sluicehq/sluice/schema"
	"github.com/sluicehq/sluice/source/httpsource"
	"github.com/sluicehq/sluice/warehouse"
)

// LoadFile reads the spec file at path and parses it (see Parse). (It is
// not called Load because that names the Load type.)
func LoadFile(path string, getenv func(string) string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pipeline: read spec: %w", err)
	}
	return Parse(path, data, getenv)
}

// Parse parses, env-expands and validates a spec; file names it in errors.
// getenv (nil means os.Getenv) supplies ${VAR} references and the
// SLUICE_STORE, SLUICE_QUEUE and SLUICE_WAREHOUSE overrides. On failure the
// error is an ErrorList holding every problem found, sorted by position,
// and the Spec is nil.
func Parse(file string, data []byte, getenv func(string) string) (*Spec, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	p := &parser{file: file, getenv: getenv, retention: map[string]*yaml.Node{}}
	s := p.spec(data)
	if len(p.errs) > 0 {
		return nil, p.errs.sorted()
	}
	s.Warnings = p.warns.sorted()
	return s, nil
}

var (
	specNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	partNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
)

const (
	maxSpecName = 40
	maxPartName = 64
)

var (
	topKeys        = []string{"name", "store", "queue", "warehouse", "state", "notifications", "retry", "watch", "reconcile_every", "serve", "lineage", "sources", "loads", "jobs"}
	serveKeys      = []string{"address", "tls_cert", "tls_key"}
	notifyKeys     = []string{"url", "key_encoding"}
	watchKeys      = []string{"settle", "interval"}
	retryKeys      = []string{"for", "backoff", "max_backoff"}
	sourceKeys     = []string{"http", "every", "land", "skip_unchanged", "retention"}
	httpKeys       = []string{"url", "timeout", "headers", "auth", "retries", "backoff", "max_backoff", "expect_content_type", "pagination", "max_bytes"}
	authKeys       = []string{"header", "env", "scheme"}
	paginationKeys = []string{"type", "param", "size_param", "size", "start", "cursor_path", "max_pages"}
	loadKeys       = []string{"on", "format", "delimiter", "table", "write", "primary_key", "order_by", "columns", "on_bad_record", "on_missing", "extra", "extra_column", "limits"}
	limitKeys      = []string{"max_object_bytes", "max_record_bytes", "max_field_bytes", "max_records"}
	onBadRecords   = []string{OnBadDeadLetter, OnBadQuarantine}
	onKeys         = []string{"events", "prefix", "suffix", "key_encoding"}
	columnKeys     = []string{"type", "as", "required", "path"}

	formats         = []string{FormatAuto, FormatJSON, FormatNDJSON, FormatCSV, FormatParquet}
	formatAliases   = map[string]string{"jsonl": FormatNDJSON, "jsonlines": FormatNDJSON, "ndjson.gz": FormatNDJSON, "json.gz": FormatJSON, "tsv": FormatCSV, "csv.gz": FormatCSV, "pq": FormatParquet}
	writeModes      = []string{string(warehouse.Append), string(warehouse.Merge), string(warehouse.Replace)}
	writeAliases    = map[string]string{"upsert": "merge", "insert": "append"}
	pageTypes       = []string{httpsource.PageNumber, httpsource.PageOffset, httpsource.PageCursor, httpsource.PageLink}
	pageTypeAliases = map[string]string{"page_number": httpsource.PageNumber, "pages": httpsource.PageNumber, "limit": httpsource.PageOffset, "next": httpsource.PageCursor, "link_header": httpsource.PageLink}
	// columnTypes are the types a load column may take (schema.Parse also
	// takes their aliases, such as int32 and string).
	columnTypes = schema.Names()
	typeAliases = map[string]string{
		"int": "integer", "int4": "integer", "smallint": "integer",
		"long": "bigint", "int8": "bigint",
		"float": "double", "numeric": "double", "decimal": "double", "number": "double",
		"str": "text", "varchar": "text", "char": "text",
		"datetime": "timestamp", "timestamptz": "timestamp", "time": "timestamp",
		"jsonb": "json", "object": "json", "array": "json",
	}
)

func (p *parser) spec(data []byte) *Spec {
	root := p.decode(data)
	if root == nil {
		return nil
	}
	m := p.mapping(root, "", "start the spec with name: my-pipeline, then sources:, loads: and jobs:", nil, nil)
	if m == nil {
		return nil
	}
	for _, e := range m.entries {
		// x-… keys hold anchors for aliases and are otherwise ignored.
		if !contains(topKeys, e.name) && !strings.HasPrefix(e.name, "x-") {
			p.unknownKey(e, "", topKeys, map[string]string{
				"source": `did you mean "sources"?`, "load": `did you mean "loads"?`, "job": `did you mean "jobs"?`,
			})
		}
	}
	s := &Spec{File: p.file}
	if e := m.get("name"); e == nil {
		p.errorf(root, "name", "name is required: add name: my-pipeline (lower-case letters, digits, - and _; at most %d characters)", maxSpecName)
	} else if v, ok := p.scalar(e.val, "name", true); ok {
		if !specNameRE.MatchString(v) || len(v) > maxSpecName {
			p.errorf(e.val, "name", "%q is not a valid pipeline name: use lower-case letters, digits, - and _, starting with a letter or digit, at most %d characters (for example %q)", v, maxSpecName, sanitizeName(v))
		}
		s.Name = v
	}
	s.Store = p.setting(m, "store", "SLUICE_STORE", checkStore)
	s.Queue = p.setting(m, "queue", "SLUICE_QUEUE", checkQueue)
	s.Warehouse = p.setting(m, "warehouse", "SLUICE_WAREHOUSE", checkWarehouse)
	s.State = p.setting(m, "state", "SLUICE_STATE", checkState)
	s.Notifications = p.notifications(m)
	s.Lineage = p.setting(m, "lineage", "SLUICE_LINEAGE", checkLineage)
	if e := m.get("serve"); e != nil {
		if sm := p.mapping(e.val, "serve", "write serve: {address: 127.0.0.1:9464}", serveKeys, nil); sm != nil {
			for _, k := range serveKeys {
				if f := sm.get(k); f != nil {
					v, _ := p.scalar(f.val, "serve."+k, true)
					switch k {
					case "address":
						if _, _, err := net.SplitHostPort(v); err != nil && v != "off" {
							p.errorf(f.val, "serve.address", "%q is not HOST:PORT: write 127.0.0.1:9464 (loopback), 0.0.0.0:9464 (every interface; needs SLUICE_ADMIN_TOKEN) or off", v)
						}
						s.Serve.Address = v
					case "tls_cert":
						s.Serve.TLSCert = v
					case "tls_key":
						s.Serve.TLSKey = v
					}
				}
			}
			if (s.Serve.TLSCert == "") != (s.Serve.TLSKey == "") {
				p.errorf(e.val, "serve", "give both tls_cert and tls_key (PEM files) to serve the console over HTTPS, or neither")
			}
		}
	}
	if s.Notifications != nil && s.Notifications.URL != "" && !strings.HasPrefix(s.Store, "s3://") {
		var at *yaml.Node
		if e := m.get("notifications"); e != nil {
			at = e.key
		}
		p.errorf(at, "notifications", "notifications come from an S3 server about its bucket, but the store is %s: use an s3:// store, or drop notifications (sluice announces writes to other stores itself)", cmp.Or(s.Store, "the data dir's local store"))
	}
	if e := m.get("retry"); e != nil {
		s.Retry = p.retry(e.val)
	}
	if e := m.get("watch"); e != nil {
		if wm := p.mapping(e.val, "watch", "write watch: {settle: 2s, interval: 1s}", watchKeys, nil); wm != nil {
			if f := wm.get("settle"); f != nil {
				if d, ok := p.duration(f.val, "watch.settle", 0); ok {
					if d > 0 && d < 100*time.Millisecond {
						p.errorf(f.val, "watch.settle", "%s is too short: write at least 100ms, or 0 for the default (no window where Linux can tell that a file is complete, 2s elsewhere)", d)
					}
					s.Watch.Settle = d
				}
			}
			if f := wm.get("interval"); f != nil {
				s.Watch.Interval, _ = p.duration(f.val, "watch.interval", 100*time.Millisecond)
			}
		}
	}
	s.ReconcileEvery = DefaultReconcileEvery
	if e := m.get("reconcile_every"); e != nil {
		if d, ok := p.duration(e.val, "reconcile_every", 0); ok {
			if d > 0 && d < time.Second {
				p.errorf(e.val, "reconcile_every", "%s is too short: write at least 1s (a reconcile lists every load's and job's prefix), or 0 to turn the periodic reconcile off", d)
			}
			s.ReconcileEvery = d
		}
	}

	var tables []*yaml.Node
	var loadOK []bool
	if e := m.get("sources"); e != nil {
		s.Sources = p.sources(e.val)
	}
	if e := m.get("loads"); e != nil {
		s.Loads, tables, loadOK = p.loads(e.val)
	}
	var jobInfos []jobInfo
	if e := m.get("jobs"); e != nil {
		s.Jobs, jobInfos = p.jobs(e.val)
	}
	p.checkSharedTables(s.Loads, tables, loadOK)
	if s.Notifications != nil {
		// The bridge republishes every record in sluice's own format,
		// whose keys are URL-encoded whatever the server sent.
		raw := func(what, name string, on On, pos Pos) {
			if on.KeyEncoding == event.KeyRaw {
				p.errs = append(p.errs, &Error{File: p.file, Line: pos.Line, Col: pos.Col, Path: what + "." + name + ".on.key_encoding",
					Msg: "with notifications:, events reach " + what + " in sluice's own format (URL-encoded keys): drop on.key_encoding: raw here and set notifications.key_encoding instead"})
			}
		}
		for _, l := range s.Loads {
			raw("loads", l.Name, l.On, l.Pos)
		}
		for _, j := range s.Jobs {
			raw("jobs", j.Name, j.On, j.Pos)
		}
	}
	p.checkRetrigger(s.Jobs, jobInfos)
	p.checkRetention(s.Sources, s.Jobs)
	if len(p.errs) == 0 && len(s.Sources)+len(s.Loads)+len(s.Jobs) == 0 {
		p.errorf(root, "", "the spec defines no sources, loads or jobs: add at least one (see the example in the pipeline package documentation)")
	}
	return s
}

// setting reads store, queue or warehouse. When envVar is set and
// non-empty it replaces the file's value, which is then not read at all.
func (p *parser) setting(m *mapping, key, envVar string, check func(string) string) string {
	e := m.get(key)
	if ov := p.getenv(envVar); ov != "" {
		if msg := check(ov); msg != "" {
			var at *yaml.Node
			if e != nil {
				at = e.val
			}
			p.errorf(at, key, "%s=%q (which replaces %s): %s", envVar, ov, key, msg)
		}
		return ov
	}
	if e == nil {
		return ""
	}
	v, ok := p.scalar(e.val, key, true)
	if !ok || v == "" {
		return ""
	}
	if msg := check(v); msg != "" {
		p.errorf(e.val, key, "%s", msg)
	}
	return v
}

// notifications reads the notifications inbox; SLUICE_NOTIFICATIONS, when
// set and non-empty, replaces its url (and stands alone without one).
func (p *parser) notifications(m *mapping) *Notifications {
	e := m.get("notifications")
	env := p.getenv("SLUICE_NOTIFICATIONS")
	if e == nil && env == "" {
		return nil
	}
	n := &Notifications{KeyEncoding: event.KeyURL}
	var at *yaml.Node
	if e != nil {
		at = e.val
		n.Pos = Pos{e.key.Line, e.key.Column}
		nm := p.mapping(e.val, "notifications", "write notifications: {url: sqs://QUEUE-NAME?region=REGION, key_encoding: url}", notifyKeys, nil)
		if nm == nil {
			return nil
		}
		if f := nm.get("url"); f != nil {
			n.URL, _ = p.scalar(f.val, "notifications.url", true)
			at = f.val
		}
		if f := nm.get("key_encoding"); f != nil {
			if v, ok := p.scalar(f.val, "notifications.key_encoding", true); ok {
				enc, err := event.ParseKeyEncoding(v)
				if err != nil {
					p.errorf(f.val, "notifications.key_encoding", "%v", err)
				}
				n.KeyEncoding = enc
			}
		}
	}
	if env != "" {
		n.URL = env
	}
	switch msg := checkNotifications(n.URL); {
	case n.URL == "":
		p.errorf(at, "notifications.url", "notifications needs the url of the queue the store's server notifies: nats://HOST:PORT?subject=SUBJECT, sqs://QUEUE-NAME?region=REGION or amqp://USER:PASSWORD@HOST:5672/VHOST?queue=QUEUE")
	case msg != "" && env != "":
		p.errorf(at, "notifications.url", "SLUICE_NOTIFICATIONS=%q (which replaces notifications.url): %s", n.URL, msg)
	case msg != "":
		p.errorf(at, "notifications.url", "%s", msg)
	}
	return n
}

// checkPartName reports a source or load name that cannot name queue
// consumers and object keys.
func (p *parser) checkPartName(e entry, path, what string) {
	if !partNameRE.MatchString(e.name) || len(e.name) > maxPartName {
		p.errorf(e.key, path, "%q is not a valid %s name: use letters, digits, - and _, starting with a letter or digit, at most %d characters (for example %q)", e.name, what, maxPartName, sanitizeName(e.name))
	}
}

func (p *parser) sources(n *yaml.Node) []Source {
	m := p.mapping(n, "sources", "write one source per name, like sources: {posts: {http: {url: https://example.com/posts}}}", nil, nil)
	if m == nil {
		return nil
	}
	var out []Source
	for _, e := range m.entries {
		out = append(out, p.source(e))
	}
	return out
}

func (p *parser) source(e entry) Source {
	path := "sources." + e.name
	before := len(p.errs)
	p.checkPartName(e, path, "source")
	s := Source{Name: e.name, HTTP: httpsource.Config{Name: e.name}, Pos: posOf(e.key)}
	hints := map[string]string{}
	for _, k := range httpKeys {
		hints[k] = fmt.Sprintf("%s belongs under http: write http: {%s: ...}", k, k)
	}
	hints["schedule"] = "did you mean \"every\"? (a Go duration like 1h)"
	m := p.mapping(e.val, path, "write http: {url: https://...} under the source name", sourceKeys, hints)
	if m == nil {
		return s
	}
	h := m.get("http")
	if h == nil {
		p.errorf(e.key, path, "source %s has no http: add http: {url: https://...}", e.name)
	} else {
		p.http(h.val, path+".http", &s.HTTP)
	}
	if ev := m.get("every"); ev != nil {
		s.Every, _ = p.duration(ev.val, path+".every", time.Second)
	}
	if l := m.get("land"); l != nil {
		if v, ok := p.scalar(l.val, path+".land", true); ok {
			s.HTTP.Land = v
			if err := httpsource.CheckLand(s.Name, v, s.HTTP.Pagination != nil); err != nil {
				p.errorf(l.val, path+".land", "%v", err)
			}
		}
	}
	if f := m.get("skip_unchanged"); f != nil {
		s.HTTP.SkipUnchanged, _ = p.boolean(f.val, path+".skip_unchanged")
	}
	if f := m.get("retention"); f != nil {
		if v, ok := p.scalar(f.val, path+".retention", true); ok {
			d, msg := parseRetention(v)
			if msg != "" {
				p.errorf(f.val, path+".retention", "%s", msg)
			} else {
				s.Retention = d
				p.retention[s.Name] = f.val
			}
		}
	}
	if len(p.errs) > before {
		return s
	}
	// The checks above place each mistake at its key; New applies the
	// defaults, and refuses anything they missed.
	im, err := httpsource.New(s.HTTP, nil)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), fmt.Sprintf("httpsource: source %q: ", s.Name))
		p.errorf(h.val, path+".http", "%s", msg)
		return s
	}
	s.HTTP = im.Config()
	return s
}

// http reads a source's http mapping into h, leaving absent keys zero for
// httpsource.New to default.
func (p *parser) http(n *yaml.Node, path string, h *httpsource.Config) {
	m := p.mapping(n, path, "write http: {url: https://...}", httpKeys, map[string]string{
		"header": "did you mean \"headers\"? (a mapping of header names to values)",
		"token":  "secrets go in auth: {header: Authorization, env: VAR_WITH_TOKEN, scheme: Bearer}",
	})
	if m == nil {
		return
	}
	if e := m.get("url"); e == nil {
		p.errorf(m.node, path, "url is required: add url: https://api.example.com/items")
	} else if v, ok := p.scalar(e.val, path+".url", true); ok {
		if msg := checkHTTPURL(v); msg != "" {
			p.errorf(e.val, path+".url", "%s", msg)
		}
		h.URL = v
	}
	if e := m.get("timeout"); e != nil {
		h.Timeout, _ = p.duration(e.val, path+".timeout", time.Millisecond)
	}
	headerKeys := map[string]*yaml.Node{}
	if e := m.get("headers"); e != nil {
		h.Headers, headerKeys = p.headers(e.val, path+".headers")
	}
	if e := m.get("auth"); e != nil {
		h.Auth = p.auth(e.val, path+".auth")
		if h.Auth != nil {
			if k := headerKeys[strings.ToLower(h.Auth.Header)]; k != nil {
				p.errorf(k, path+".headers."+k.Value, "header %s is also set by auth: remove it from headers (auth sends it)", k.Value)
			}
		}
	}
	if e := m.get("retries"); e != nil {
		if r, ok := p.integer(e.val, path+".retries", 0, 100); ok {
			h.Retries = r
			if r == 0 {
				h.Retries = -1 // httpsource: none (0 is its default)
			}
		}
	}
	var backoffNode, maxNode *yaml.Node
	okB, okM := true, true
	if e := m.get("backoff"); e != nil {
		backoffNode = e.val
		h.Backoff, okB = p.duration(e.val, path+".backoff", time.Millisecond)
	}
	if e := m.get("max_backoff"); e != nil {
		maxNode = e.val
		h.MaxBackoff, okM = p.duration(e.val, path+".max_backoff", time.Millisecond)
	}
	if (backoffNode != nil || maxNode != nil) && okB && okM {
		// A key left out has httpsource's default.
		b, mb := cmp.Or(h.Backoff, httpsource.DefaultBackoff), cmp.Or(h.MaxBackoff, httpsource.DefaultMaxBackoff)
		if mb < b {
			at, key := maxNode, "max_backoff"
			if at == nil {
				at, key = backoffNode, "backoff"
			}
			p.errorf(at, path+"."+key, "max_backoff (%s) is shorter than backoff (%s): raise max_backoff or lower backoff", mb, b)
		}
	}
	if e := m.get("expect_content_type"); e != nil {
		if v, ok := p.scalar(e.val, path+".expect_content_type", true); ok {
			v = strings.TrimSpace(v)
			if v == "" {
				v = "*" // no check ("" would mean httpsource's default)
			}
			if msg := checkMediaType(v); v != "*" && msg != "" {
				p.errorf(e.val, path+".expect_content_type", "%s", msg)
			}
			h.ExpectContentType = v
		}
	}
	if e := m.get("pagination"); e != nil {
		h.Pagination = p.pagination(e.val, path+".pagination")
	}
	if e := m.get("max_bytes"); e != nil {
		if s, ok := p.scalar(e.val, path+".max_bytes", true); ok {
			n, msg := parseByteSize(s)
			if msg != "" {
				p.errorf(e.val, path+".max_bytes", "%s", msg)
			} else {
				h.MaxBytes = n
			}
		}
	}
}

// byteUnits are the size suffixes parseByteSize knows, longest first.
var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"tb", 1e12},
	{"b", 1},
}

// parseByteSize reads a byte count: a whole number, optionally followed by
// a unit B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers
// of 1024), in any case, with or without a space. It must be at least 1. On
// failure it returns a message saying what to write.
func parseByteSize(s string) (int64, string) {
	t := strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range byteUnits {
		if num, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || strings.HasPrefix(t, "+") {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, fmt.Sprintf("%q is too large: write a size below 8 EiB (9223372036854775807 bytes)", s)
		}
		return 0, fmt.Sprintf("%q is not a size: write a whole number of bytes, or one with a unit like 512MiB or 2GB", s)
	}
	if n < 1 {
		return 0, fmt.Sprintf("%q is too small: write at least 1 (byte)", s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Sprintf("%q is too large: write a size below 8 EiB (9223372036854775807 bytes)", s)
	}
	return n * mult, ""
}

func (p *parser) headers(n *yaml.Node, path string) (map[string]string, map[string]*yaml.Node) {
	keys := map[string]*yaml.Node{}
	m := p.mapping(n, path, "write headers: {Accept: application/json}", nil, nil)
	if m == nil || len(m.entries) == 0 {
		return nil, keys
	}
	out := map[string]string{}
	for _, e := range m.entries {
		hp := path + "." + e.name
		if !validToken(e.name) {
			p.errorf(e.key, hp, "%q is not a valid header name: use letters, digits and - (like X-Api-Version)", e.name)
		}
		switch strings.ToLower(e.name) {
		case "authorization", "proxy-authorization", "cookie":
			p.errorf(e.key, hp, "%s carries a secret, which headers would keep in the spec and in logs: write auth: {header: %s, env: VAR_WITH_SECRET} instead", e.name, e.name)
		}
		if prev := keys[strings.ToLower(e.name)]; prev != nil {
			p.errorf(e.key, hp, "header %s is already set at line %d (header names ignore case): keep one", e.name, prev.Line)
		}
		keys[strings.ToLower(e.name)] = e.key
		if v, ok := p.scalar(e.val, hp, true); ok {
			if strings.ContainsAny(v, "\r\n\x00") {
				p.errorf(e.val, hp, "a header value cannot contain line breaks: write it on one line")
			}
			out[e.name] = v
		}
	}
	return out, keys
}

func (p *parser) auth(n *yaml.Node, path string) *httpsource.Auth {
	m := p.mapping(n, path, "write auth: {header: Authorization, env: API_TOKEN, scheme: Bearer}", authKeys, map[string]string{
		"token":  "secrets are not written in the spec: name the environment variable that holds it, env: API_TOKEN",
		"value":  "secrets are not written in the spec: name the environment variable that holds it, env: API_TOKEN",
		"secret": "secrets are not written in the spec: name the environment variable that holds it, env: API_TOKEN",
	})
	if m == nil {
		return nil
	}
	a := &httpsource.Auth{}
	// Auth values are not env-expanded: the secret is read at request time.
	if e := m.get("header"); e != nil {
		if v, ok := p.scalar(e.val, path+".header", false); ok {
			if !validToken(v) {
				p.errorf(e.val, path+".header", "%q is not a valid header name: use letters, digits and - (like Authorization or X-Api-Key)", v)
			}
			a.Header = v
		}
	}
	if e := m.get("env"); e == nil {
		p.errorf(m.node, path, "env is required: add env: API_TOKEN, naming the environment variable that holds the secret")
	} else if v, ok := p.scalar(e.val, path+".env", false); ok {
		if !envNameRE.MatchString(v) {
			if inner, found := strings.CutPrefix(v, "${"); found && envNameRE.MatchString(strings.TrimSuffix(inner, "}")) {
				p.errorf(e.val, path+".env", "env names the variable, it is not expanded: write env: %s", strings.TrimSuffix(inner, "}"))
			} else {
				p.errorf(e.val, path+".env", "%q is not an environment variable name: use letters, digits and _, like API_TOKEN", v)
			}
		}
		a.Env = v
	}
	if e := m.get("scheme"); e != nil {
		if v, ok := p.scalar(e.val, path+".scheme", false); ok {
			if v != "" && !validToken(v) {
				p.errorf(e.val, path+".scheme", "%q is not a valid auth scheme: write one word, like Bearer, Basic or Token (or leave scheme out to send the secret as it is)", v)
			}
			a.Scheme = v
		}
	}
	return a
}

func (p *parser) pagination(n *yaml.Node, path string) *httpsource.Pagination {
	m := p.mapping(n, path, "write pagination: {type: page, param: page}", paginationKeys, nil)
	if m == nil {
		return nil
	}
	pg := &httpsource.Pagination{}
	e := m.get("type")
	if e == nil {
		p.errorf(m.node, path, "type is required: add type: page, offset, cursor or link")
		return pg
	}
	t, ok := p.enum(e.val, path+".type", "pagination type", pageTypes, pageTypeAliases)
	if !ok {
		return pg
	}
	pg.Type = t
	notFor := map[string][]string{
		httpsource.PageNumber: {"cursor_path"},
		httpsource.PageOffset: {"cursor_path"},
		httpsource.PageCursor: {"start"},
		httpsource.PageLink:   {"param", "start", "cursor_path"},
	}
	for _, k := range notFor[t] {
		if f := m.get(k); f != nil {
			p.errorf(f.key, path+"."+k, "%s is not used by %s pagination: remove it", k, t)
		}
	}
	if f := m.get("param"); f != nil && t != httpsource.PageLink {
		if v, ok := p.scalar(f.val, path+".param", true); ok {
			if v == "" {
				// httpsource names the default param after the type.
				p.errorf(f.val, path+".param", "param is empty: name the query parameter, or remove the key for the default %q", t)
			}
			pg.Param = v
		}
	}
	param := pg.Param
	if param == "" {
		param = t
	}
	if f := m.get("size_param"); f != nil {
		if v, ok := p.scalar(f.val, path+".size_param", true); ok {
			pg.SizeParam = v
			if v != "" && v == param {
				p.errorf(f.val, path+".size_param", "size_param is the same query parameter as param (%q): use a different name, like limit", v)
			}
			if v != "" && m.get("size") == nil {
				p.errorf(f.key, path+".size_param", "size_param needs size: add size: 100 (the page size to ask for)")
			}
		}
	}
	if f := m.get("size"); f != nil {
		pg.Size, _ = p.integer(f.val, path+".size", 1, 1000000)
	} else if t == httpsource.PageOffset {
		p.errorf(m.node, path, "offset pagination needs size: add size: 100 (how far each page moves the offset)")
	}
	switch f := m.get("start"); {
	case f == nil:
	case t == httpsource.PageNumber:
		// httpsource reads start 0 as its default, 1.
		if v, ok := p.integer(f.val, path+".start", 0, 1<<31-1); ok && v == 0 {
			p.errorf(f.val, path+".start", "page numbers start at 1: for an API whose first page is 0, write type: offset, param: page, size: 1 (and no size_param)")
		} else {
			pg.Start = v
		}
	case t == httpsource.PageOffset:
		pg.Start, _ = p.integer(f.val, path+".start", 0, 1<<31-1)
	}
	if f := m.get("cursor_path"); f != nil && t == httpsource.PageCursor {
		if v, ok := p.scalar(f.val, path+".cursor_path", true); ok {
			if v == "" || contains(strings.Split(v, "."), "") {
				p.errorf(f.val, path+".cursor_path", "%q is not a dotted path: write the field names from the body's root, like meta.next_cursor", v)
			}
			pg.CursorPath = v
		}
	} else if t == httpsource.PageCursor && m.get("cursor_path") == nil {
		p.errorf(m.node, path, "cursor pagination needs cursor_path: add the dotted path of the next cursor in the response body, like cursor_path: meta.next_cursor")
	}
	if f := m.get("max_pages"); f != nil {
		pg.MaxPages, _ = p.integer(f.val, path+".max_pages", 1, 1000000)
		if pg.MaxPages == 1 {
			p.warnf(f.val, path+".max_pages", "max_pages: 1 stops the pagination at its first page (and fails the run when the API has a second one): remove pagination for a single request, or raise max_pages")
		}
	}
	p.paginationWarnings(m, path, pg)
	return pg
}

// paginationWarnings warns about pagination that may never get past its
// first page, or skip records, without anything in the spec being wrong
// as such. Which pages a cursor or link pagination reaches depends on the
// server only; httpsource warns at run time when a full page ends one
// (no next cursor or Link although it held size items), and when page or
// offset pagination gets the same bytes twice in a row (an API that
// ignores the parameter).
func (p *parser) paginationWarnings(m *mapping, path string, pg *httpsource.Pagination) {
	f := m.get("size")
	if f == nil || pg.SizeParam != "" || pg.Size <= 1 {
		return
	}
	switch pg.Type {
	case httpsource.PageNumber:
		// The short-page rule compares each page with a size the server
		// was never told.
		p.warnf(f.val, path+".size", "size %d is not sent to the API (there is no size_param), but a page with fewer than %d items ends the pagination: if the API's own pages are smaller, only the first page is imported. Add size_param: with the API's page-size parameter (like per_page), or remove size", pg.Size, pg.Size)
	case httpsource.PageOffset:
		p.warnf(f.val, path+".size", "size %d moves the offset but is not sent to the API (there is no size_param): if the API's own pages are smaller, the records between them are skipped, and a page with fewer than %d items ends the pagination after the first. Add size_param: with the API's page-size parameter (like limit); for a zero-based page number, write size: 1", pg.Size, pg.Size)
	}
}

func (p *parser) loads(n *yaml.Node) ([]Load, []*yaml.Node, []bool) {
	m := p.mapping(n, "loads", "write one load per name, like loads: {posts: {table: posts, columns: {id: bigint}}}", nil, nil)
	if m == nil {
		return nil, nil, nil
	}
	var out []Load
	var tables []*yaml.Node
	var ok []bool
	for _, e := range m.entries {
		before := len(p.errs)
		l, t := p.load(e)
		out = append(out, l)
		tables = append(tables, t)
		ok = append(ok, len(p.errs) == before)
	}
	return out, tables, ok
}

func (p *parser) load(e entry) (Load, *yaml.Node) {
	path := "loads." + e.name
	p.checkPartName(e, path, "load")
	l := Load{
		Name: e.name, Format: FormatAuto, Write: warehouse.Append, Pos: posOf(e.key),
		On: On{Events: []string{DefaultEvent}, KeyEncoding: event.KeyURL},
	}
	hints := map[string]string{}
	for _, k := range onKeys {
		hints[k] = fmt.Sprintf("%s belongs under on: write on: {%s: ...}", k, k)
	}
	hints["event"] = "event filters belong under on: write on: {events: [\"s3:ObjectCreated:*\"]}"
	hints["mode"] = "did you mean \"write\"? (append or merge)"
	hints["primary_keys"] = "did you mean \"primary_key\"?"
	hints["columns_as"] = "rename a column with columns: {field: {type: text, as: column}}"
	m := p.mapping(e.val, path, "write table:, columns: and optionally on:, format:, write:, primary_key: under the load name", loadKeys, hints)
	if m == nil {
		return l, nil
	}
	if f := m.get("on"); f != nil {
		l.On = p.on(f.val, path+".on")
	}
	if f := m.get("format"); f != nil {
		l.Format, _ = p.enum(f.val, path+".format", "format", formats, formatAliases)
	}
	if f := m.get("delimiter"); f != nil {
		l.Delimiter = p.delimiter(f.val, path+".delimiter")
		if l.Format != FormatCSV && l.Format != FormatAuto && l.Format != "" {
			p.errorf(f.key, path+".delimiter", "delimiter applies to CSV only, and this load's format is %s: remove it, or set format: csv", l.Format)
		}
	}
	var tableNode *yaml.Node
	if f := m.get("table"); f == nil {
		p.errorf(e.key, path, "load %s has no table: add table: %s", e.name, sanitizeIdent(e.name))
	} else if v, ok := p.scalar(f.val, path+".table", true); ok {
		tableNode = f.val
		if !warehouse.ValidIdent(v) {
			p.errorf(f.val, path+".table", "%q is not a valid table name: use letters, digits and _, not starting with a digit, at most 63 characters (for example %q)", v, sanitizeIdent(v))
		} else if strings.EqualFold(v, warehouse.LedgerTable) {
			p.errorf(f.val, path+".table", "%s is sluice's ledger table: choose another name", v)
		}
		l.Table = v
	}
	var writeNode *yaml.Node
	if f := m.get("write"); f != nil {
		writeNode = f.val
		if v, ok := p.enum(f.val, path+".write", "write mode", writeModes, writeAliases); ok {
			l.Write = warehouse.Mode(v)
		}
	}
	byField := map[string]string{}
	columns := map[string]bool{}
	if f := m.get("columns"); f == nil {
		p.errorf(e.key, path, "load %s has no columns: add columns: {field: type, ...} listing the fields to load", e.name)
	} else {
		l.Columns = p.columns(f.val, path+".columns")
		for _, c := range l.Columns {
			if len(c.Path) > 1 && (l.Format == FormatCSV || l.Format == FormatParquet) {
				p.errorf(f.val, path+".columns."+c.Field, "%s records are flat: a nested path cannot reach into them; name the %s column (its header) instead", l.Format, l.Format)
			}
			columns[c.Name] = true
			byField[c.Field] = c.Name
		}
	}
	pk := m.get("primary_key")
	pkOK := true
	if pk != nil {
		var items []item
		items, pkOK = p.strList(pk.val, path+".primary_key", "primary_key: [id]")
		seen := map[string]bool{}
		for i, it := range items {
			ip := fmt.Sprintf("%s.primary_key[%d]", path, i)
			switch {
			case seen[it.val]:
				p.errorf(it.node, ip, "column %q is listed twice: list each key column once", it.val)
			case columns[it.val]:
			case byField[it.val] != "":
				p.errorf(it.node, ip, "%q is a field renamed by as: write the column name %q", it.val, byField[it.val])
			case len(columns) > 0:
				p.errorf(it.node, ip, "%q is not a column of this load: primary_key lists column names (after as:), one of %s", it.val, strings.Join(columnNames(l.Columns), ", "))
			}
			seen[it.val] = true
			l.PrimaryKey = append(l.PrimaryKey, it.val)
		}
	}
	if l.Write == warehouse.Merge && len(l.PrimaryKey) == 0 {
		switch {
		case pk == nil:
			p.errorf(writeNode, path+".write", "write: merge needs primary_key: add primary_key: [id] naming the columns that identify a row, or write: append")
		case pkOK:
			p.errorf(pk.val, path+".primary_key", "primary_key is empty but write: merge needs it: list the columns that identify a row, like [id]")
		}
	}
	if f := m.get("order_by"); f != nil {
		if v, ok := p.scalar(f.val, path+".order_by", true); ok {
			switch {
			case l.Write != warehouse.Merge:
				p.errorf(f.val, path+".order_by", "order_by orders the versions of a row in write: merge; remove it, or write: merge")
			case !columns[v]:
				p.errorf(f.val, path+".order_by", "%q is not a column of this load: order_by names a column (after as:), like updated_at", v)
			default:
				for i := range l.Columns {
					if l.Columns[i].Name == v {
						l.Columns[i].Required = true // a version without an order value cannot be ordered
					}
				}
			}
			l.OrderBy = v
		}
	}
	l.OnBadRecord = OnBadDeadLetter
	if f := m.get("on_bad_record"); f != nil {
		l.OnBadRecord, _ = p.enum(f.val, path+".on_bad_record", "on_bad_record", onBadRecords, map[string]string{"dead_letter": OnBadDeadLetter, "deadletter": OnBadDeadLetter, "dlq": OnBadDeadLetter, "reject": OnBadQuarantine})
	}
	l.OnMissing, l.Extra = format.MissingWarn, format.ExtraWarn
	if f := m.get("on_missing"); f != nil {
		if v, ok := p.scalar(f.val, path+".on_missing", true); ok {
			var err error
			if l.OnMissing, err = format.ParseOnMissing(v); err != nil {
				p.errorf(f.val, path+".on_missing", "%v", err)
			}
		}
	}
	if f := m.get("extra"); f != nil {
		if v, ok := p.scalar(f.val, path+".extra", true); ok {
			var err error
			if l.Extra, err = format.ParseOnExtra(v); err != nil {
				p.errorf(f.val, path+".extra", "%v", err)
			}
		}
	}
	if f := m.get("extra_column"); f != nil {
		l.ExtraColumn, _ = p.scalar(f.val, path+".extra_column", true)
		if l.Extra != format.ExtraJSON {
			p.errorf(f.val, path+".extra_column", "extra_column is used only with extra: json; remove it or write extra: json")
		} else if !warehouse.ValidIdent(l.ExtraColumn) || columns[l.ExtraColumn] {
			p.errorf(f.val, path+".extra_column", "%q must be a new column name (letters, digits and _, not a declared column)", l.ExtraColumn)
		}
	}
	if l.Extra == format.ExtraJSON {
		if l.ExtraColumn == "" {
			l.ExtraColumn = "extra"
		}
		if columns[l.ExtraColumn] {
			p.errorf(e.key, path+".extra", "extra: json keeps undeclared fields in column %q, which is already declared: name another with extra_column", l.ExtraColumn)
		}
		l.Columns = append(l.Columns, Column{Name: l.ExtraColumn, Type: schema.JSON})
	}
	if f := m.get("limits"); f != nil {
		l.Limits = p.limits(f.val, path+".limits")
	}
	return l, tableNode
}

// limits reads a limits mapping (format.Limits): sizes in bytes (or with a
// unit, like 64MiB) and a record count.
func (p *parser) limits(n *yaml.Node, path string) format.Limits {
	var lim format.Limits
	m := p.mapping(n, path, "write limits: {max_object_bytes: 4GiB, max_record_bytes: 16MiB, max_field_bytes: 16MiB, max_records: 100000000}", limitKeys, nil)
	if m == nil {
		return lim
	}
	for _, k := range limitKeys {
		e := m.get(k)
		if e == nil {
			continue
		}
		v, ok := p.scalar(e.val, path+"."+k, true)
		if !ok {
			continue
		}
		n, msg := parseByteSize(v)
		if msg != "" {
			p.errorf(e.val, path+"."+k, "%s", msg)
			continue
		}
		switch k {
		case "max_object_bytes":
			lim.MaxObjectBytes = n
		case "max_record_bytes":
			lim.MaxRecordBytes = n
		case "max_field_bytes":
			lim.MaxFieldBytes = n
		case "max_records":
			lim.MaxRecords = n
		}
	}
	return lim
}

func columnNames(cols []Column) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.Name
	}
	return out
}

func (p *parser) on(n *yaml.Node, path string) On {
	o := On{Events: []string{DefaultEvent}, KeyEncoding: event.KeyURL}
	m := p.mapping(n, path, "write on: {prefix: raw/posts/, suffix: .json}", onKeys, map[string]string{
		"event": "did you mean \"events\"? (a list, like events: [\"s3:ObjectCreated:*\"])",
	})
	if m == nil {
		return o
	}
	if e := m.get("events"); e != nil {
		items, ok := p.strList(e.val, path+".events", `events: ["s3:ObjectCreated:*"]`)
		if ok && len(items) == 0 {
			p.errorf(e.val, path+".events", "events is empty: remove it to match every ObjectCreated event, or list patterns like [\"s3:ObjectCreated:Put\"]")
		}
		if len(items) > 0 {
			o.Events = nil
		}
		for i, it := range items {
			if !event.ValidEventPattern(it.val) {
				p.errorf(it.node, fmt.Sprintf("%s.events[%d]", path, i), "unknown event pattern %q: write \"s3:ObjectCreated:*\" or one of s3:ObjectCreated:Put, s3:ObjectCreated:Post, s3:ObjectCreated:Copy, s3:ObjectCreated:CompleteMultipartUpload (the s3: prefix is optional; only object-created events are supported)", it.val)
			}
			o.Events = append(o.Events, event.NormalizeName(it.val))
		}
	}
	if e := m.get("prefix"); e != nil {
		if v, ok := p.scalar(e.val, path+".prefix", true); ok {
			if strings.HasPrefix(v, "/") {
				p.errorf(e.val, path+".prefix", "keys do not start with /: write %q", strings.TrimLeft(v, "/"))
			}
			o.Prefix = v
		}
	}
	if e := m.get("suffix"); e != nil {
		o.Suffix, _ = p.scalar(e.val, path+".suffix", true)
	}
	if e := m.get("key_encoding"); e != nil {
		if v, ok := p.scalar(e.val, path+".key_encoding", true); ok {
			enc, err := event.ParseKeyEncoding(v)
			if err != nil {
				p.errorf(e.val, path+".key_encoding", "%v", err)
			}
			o.KeyEncoding = enc
		}
	}
	return o
}

func (p *parser) columns(n *yaml.Node, path string) []Column {
	m := p.mapping(n, path, "write columns: {id: bigint, title: text} (field: type, in table order)", nil, nil)
	if m == nil {
		return nil
	}
	if len(m.entries) == 0 {
		p.errorf(m.node, path, "columns is empty: list the fields to load, like columns: {id: bigint, title: text}")
		return nil
	}
	var out []Column
	byName := map[string]entry{}
	for _, e := range m.entries {
		cp := path + "." + e.name
		c := Column{Field: e.name, Name: e.name, Path: []string{e.name}}
		if strings.Contains(e.name, ".") {
			if path, err := format.ParsePath(e.name); err != nil {
				p.errorf(e.key, cp, "%v", err)
			} else {
				c.Path, c.Name = path, strings.Join(path, "_")
			}
		}
		var typeNode, asNode *yaml.Node
		r := p.resolve(e.val)
		if r == nil {
			continue
		}
		switch r.Kind {
		case yaml.ScalarNode:
			typeNode = e.val
		case yaml.MappingNode:
			cm := p.mapping(r, cp, "", columnKeys, map[string]string{
				"name":     "did you mean \"as\"? (the column name, when it differs from the field)",
				"rename":   "did you mean \"as\"? (the column name, when it differs from the field)",
				"nullable": "did you mean \"required\"? (true rejects records without the field)",
			})
			if cm == nil {
				continue
			}
			if t := cm.get("type"); t == nil {
				p.errorf(e.key, cp, "column %s has no type: add type: one of %s", e.name, strings.Join(columnTypes, ", "))
			} else {
				typeNode = t.val
			}
			if a := cm.get("as"); a != nil {
				if v, ok := p.scalar(a.val, cp+".as", true); ok {
					asNode, c.Name = a.val, v
				}
			}
			if rq := cm.get("required"); rq != nil {
				c.Required, _ = p.boolean(rq.val, cp+".required")
			}
			if pe := cm.get("path"); pe != nil {
				items, _ := p.strList(pe.val, cp+".path", `path: ["address", "geo.lat"]`)
				c.Path = nil
				for _, it := range items {
					if it.val == "" {
						p.errorf(it.node, cp+".path", "a path segment is empty: list the keys from the record's root, like [address, city]")
					}
					c.Path = append(c.Path, it.val)
				}
				if len(c.Path) == 0 {
					p.errorf(pe.val, cp+".path", "path is empty: list the keys from the record's root, like [address, city]")
				}
				if asNode == nil {
					c.Name = e.name // with path:, the key names the column
				}
				c.Field = strings.Join(c.Path, ".")
			}
		default:
			p.errorf(e.val, cp, "expected a type or {type: ..., as: ..., required: ...}, found %s: write %s: text or %s: {type: text, as: column_name}", kindName(r), e.name, e.name)
			continue
		}
		if typeNode != nil {
			tp := cp
			if r.Kind == yaml.MappingNode {
				tp += ".type"
			}
			if t, ok := p.columnType(typeNode, tp, "column type", columnTypes, typeAliases); ok {
				c.Type = t
			}
		}
		switch {
		case warehouse.ValidIdent(c.Name):
		case asNode != nil:
			p.errorf(asNode, cp+".as", "%q is not a valid column name: use letters, digits and _, not starting with a digit, at most 63 characters (for example %q)", c.Name, sanitizeIdent(c.Name))
		default:
			p.errorf(e.key, cp, "field %q is not a valid column name: keep the field and name the column with {type: ..., as: %s}", c.Field, sanitizeIdent(c.Field))
		}
		if prev, dup := byName[c.Name]; dup {
			at := e.key
			if asNode != nil {
				at = asNode
			}
			p.errorf(at, cp, "column %q is already defined by field %q at line %d: rename one with as:", c.Name, prev.name, prev.key.Line)
		} else {
			byName[c.Name] = e
		}
		out = append(out, c)
	}
	return out
}

// checkSharedTables reports loads that write the same table with
// different columns or primary keys. Loads with other errors are skipped.
func (p *parser) checkSharedTables(loads []Load, tables []*yaml.Node, ok []bool) {
	first := map[string]int{}
	for i, l := range loads {
		if !ok[i] || l.Table == "" {
			continue
		}
		j, seen := first[l.Table]
		if !seen {
			first[l.Table] = i
			continue
		}
		if d := tableDiff(loads[j], l); d != "" {
			p.errorf(tables[i], "loads."+l.Name+".table", "table %s is also written by load %s (line %d) and %s: loads writing the same table must declare the same column names, types and primary_key", l.Table, loads[j].Name, loads[j].Pos.Line, d)
		}
	}
}

// tableDiff describes the first difference between the tables a and b
// write, from b's point of view, or returns "".
func tableDiff(a, b Load) string {
	at := map[string]schema.Type{}
	for _, c := range a.Columns {
		at[c.Name] = c.Type
	}
	bt := map[string]schema.Type{}
	for _, c := range b.Columns {
		bt[c.Name] = c.Type
		t, ok := at[c.Name]
		if !ok {
			return fmt.Sprintf("column %s here is not a column there", c.Name)
		}
		if t != c.Type {
			return fmt.Sprintf("column %s is %s here but %s there", c.Name, c.Type, t)
		}
	}
	for _, c := range a.Columns {
		if _, ok := bt[c.Name]; !ok {
			return fmt.Sprintf("its column %s is missing here", c.Name)
		}
	}
	if strings.Join(a.PrimaryKey, ",") != strings.Join(b.PrimaryKey, ",") {
		return fmt.Sprintf("primary_key is [%s] here but [%s] there", strings.Join(b.PrimaryKey, ", "), strings.Join(a.PrimaryKey, ", "))
	}
	return ""
}

// retry reads the top-level retry policy for transient failures.
func (p *parser) retry(n *yaml.Node) fault.Retry {
	var r fault.Retry
	m := p.mapping(n, "retry", "write retry: {for: 6h, backoff: 1s, max_backoff: 1m}", retryKeys, map[string]string{
		"retry_for": `write retry: {for: 6h}`, "max_deliveries": "deliveries are not limited here: transient failures are retried for retry.for, then dead-lettered",
	})
	if m == nil {
		return r
	}
	if e := m.get("for"); e != nil {
		r.For, _ = p.duration(e.val, "retry.for", time.Second)
	}
	if e := m.get("backoff"); e != nil {
		r.Backoff, _ = p.duration(e.val, "retry.backoff", time.Millisecond)
	}
	if e := m.get("max_backoff"); e != nil {
		if r.MaxBackoff, _ = p.duration(e.val, "retry.max_backoff", time.Millisecond); r.MaxBackoff > 0 && r.MaxBackoff < cmp.Or(r.Backoff, fault.DefaultBackoff) {
			p.errorf(e.val, "retry.max_backoff", "max_backoff (%s) is shorter than backoff (%s): raise max_backoff or lower backoff", r.MaxBackoff, cmp.Or(r.Backoff, fault.DefaultBackoff))
		}
	}
	return r
}
