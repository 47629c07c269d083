package pipeline

import (
	"fmt"
	"mime"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Each check returns what is wrong with a value and what to write instead,
// or "" when the value is fine.

func checkStore(v string) string {
	const forms = "write file://DIR (a local directory), s3://BUCKET[?region=...&endpoint=...] or mem://"
	u, err := url.Parse(v)
	if err != nil {
		return fmt.Sprintf("%q is not a URL (%v): %s", v, err, forms)
	}
	switch u.Scheme {
	case "":
		return fmt.Sprintf("%q has no scheme: for a local directory write file://%s; otherwise %s", v, v, forms)
	case "file":
		if u.Host == "" && u.Path == "" && u.Opaque == "" {
			return "file:// needs a directory, like file://./lake or file:///var/lib/sluice/lake"
		}
	case "s3":
		if u.Host == "" {
			return "s3:// needs a bucket, like s3://my-lake?region=eu-west-1"
		}
	case "mem":
	default:
		return fmt.Sprintf("store scheme %q is not supported: %s", u.Scheme, forms)
	}
	return ""
}

func checkQueue(v string) string {
	const forms = "write embedded, mem://NAME, nats://HOST:PORT, amqp://USER:PASSWORD@HOST:5672/VHOST or sqs://PREFIX?region=REGION, each optionally with ?ack_wait=30s&max_deliveries=50"
	u, err := url.Parse(v)
	if err != nil {
		return fmt.Sprintf("%q is not a queue URL (%v): %s", v, err, forms)
	}
	var extra []string // scheme-specific options
	switch {
	case u.Scheme == "mem", u.Scheme == "" && u.Path == "embedded":
		return checkQueueOptions(v, u, forms)
	case u.Scheme == "nats", u.Scheme == "amqp", u.Scheme == "amqps":
		if msg := checkHostPort(u); msg != "" {
			return msg
		}
	case u.Scheme == "sqs":
		extra = []string{"region", "endpoint", "poll_wait", "empty_polls"}
		if msg := checkSQSName(u.Host, "prefix"); msg != "" {
			return msg
		}
	case u.Scheme == "":
		if s := suggest(v, []string{"embedded"}); s != "" {
			return fmt.Sprintf("unknown queue %q: did you mean %q?", v, s)
		}
		return fmt.Sprintf("unknown queue %q: %s", v, forms)
	default:
		return fmt.Sprintf("queue scheme %q is not supported: %s", u.Scheme, forms)
	}
	return checkQueueOptions(v, u, forms, extra...)
}

// checkHostPort checks the server address of a nats:// or amqp:// URL.
func checkHostPort(u *url.URL) string {
	if u.Host == "" {
		return fmt.Sprintf("%s:// needs a server address: write %s://HOST:PORT, like %s://127.0.0.1:%s", u.Scheme, u.Scheme, u.Scheme, defaultPorts[u.Scheme])
	}
	if port := u.Port(); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Sprintf("port %q is not a port number: write %s://HOST:PORT with a port from 1 to 65535", port, u.Scheme)
		}
	}
	return ""
}

var defaultPorts = map[string]string{"nats": "4222", "amqp": "5672", "amqps": "5671"}

// checkSQSName checks an SQS queue name or name prefix (the host of an
// sqs:// URL): SQS allows letters, digits, - and _, at most 80 characters.
func checkSQSName(name, what string) string {
	if len(name) > 60 {
		return fmt.Sprintf("SQS queue %s %q is longer than 60 characters (SQS allows 80 for a whole name)", what, name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Sprintf("SQS queue %s %q has %q: SQS allows only letters, digits, - and _", what, name, r)
		}
	}
	return ""
}

// checkQueueOptions checks the options every queue URL accepts.
func checkQueueOptions(v string, u *url.URL, forms string, extra ...string) string {
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fmt.Sprintf("the query of %q does not parse (%v): %s", v, err, forms)
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		val := q.Get(k)
		switch k {
		case "ack_wait":
			if d, err := time.ParseDuration(val); err != nil || d <= 0 {
				return fmt.Sprintf("ack_wait=%q is not a positive duration: write ack_wait=30s", val)
			}
		case "max_deliveries":
			if n, err := strconv.Atoi(val); err != nil || n < 1 {
				return fmt.Sprintf("max_deliveries=%q is not a positive whole number: write max_deliveries=5", val)
			}
		default:
			if contains(extra, k) {
				continue
			}
			opts := append([]string{"ack_wait", "max_deliveries"}, extra...)
			if s := suggest(k, opts); s != "" {
				return fmt.Sprintf("unknown queue option %q: did you mean %q?", k, s)
			}
			return fmt.Sprintf("unknown queue option %q: the options are %s", k, strings.Join(opts, ", "))
		}
	}
	return ""
}

func checkWarehouse(v string) string {
	const forms = "write sqlite://PATH (like sqlite://./warehouse.db) or postgres://USER@HOST:PORT/DB"
	switch {
	case strings.HasPrefix(v, "sqlite://"):
		if v == "sqlite://" {
			return "sqlite:// needs a file: write sqlite://./warehouse.db or sqlite:///abs/path/warehouse.db"
		}
		return ""
	case strings.HasPrefix(v, "postgres://"), strings.HasPrefix(v, "postgresql://"):
		if _, err := url.Parse(v); err != nil {
			return fmt.Sprintf("not a valid postgres URL (%v): %s", redactErr(err), forms)
		}
		return ""
	}
	if i := strings.Index(v, "://"); i > 0 {
		return fmt.Sprintf("warehouse scheme %q is not supported: %s", v[:i], forms)
	}
	return fmt.Sprintf("%q is not a warehouse URL: %s", v, forms)
}

func checkState(v string) string {
	const forms = "write sqlite:///ABS/PATH/state.db or postgres://USER@HOST:PORT/DB?schema=SCHEMA, or leave it out for the data dir's state.db"
	u, err := url.Parse(v)
	if err != nil {
		return fmt.Sprintf("not a valid state URL (%v): %s", redactErr(err), forms)
	}
	switch u.Scheme {
	case "sqlite":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") || u.RawQuery != "" {
			return "a SQLite state is sqlite:///ABS/PATH/state.db (three slashes, an absolute path, no parameters)"
		}
		return ""
	case "postgres", "postgresql":
		return ""
	case "":
		return fmt.Sprintf("%q is not a state URL: %s", v, forms)
	}
	return fmt.Sprintf("state scheme %q is not supported: %s", u.Scheme, forms)
}

// redactErr drops the URL from a url.Error, which may hold a password.
func redactErr(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

func checkHTTPURL(v string) string {
	u, err := url.Parse(v)
	if err != nil {
		return fmt.Sprintf("%q is not a URL (%v): write https://HOST/PATH", v, redactErr(err))
	}
	switch u.Scheme {
	case "http", "https":
	case "":
		return fmt.Sprintf("%q has no scheme: write https://%s", v, strings.TrimPrefix(v, "//"))
	default:
		return fmt.Sprintf("scheme %q is not supported: write an http:// or https:// URL", u.Scheme)
	}
	if u.Host == "" {
		return fmt.Sprintf("%q has no host: write %s://HOST/PATH", v, u.Scheme)
	}
	if u.Fragment != "" {
		return fmt.Sprintf("%q has a #fragment, which is never sent to the server: remove it", v)
	}
	return ""
}

func checkMediaType(v string) string {
	if v == "" {
		return ""
	}
	if mt, _, err := mime.ParseMediaType(v); err != nil || !strings.Contains(mt, "/") {
		return fmt.Sprintf("%q is not a media type: write one like application/json, or \"*\" (or \"\") to accept any content type", v)
	}
	return ""
}

// validToken reports whether s is an HTTP token (header names, auth schemes).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// slug lower-cases s and joins its runs of letters and digits with _.
func slug(s string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToLower(s) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			under = false
		} else if !under && b.Len() > 0 {
			b.WriteByte('_')
			under = true
		}
	}
	return strings.TrimRight(b.String(), "_")
}

// sanitizeIdent turns s into a likely identifier for suggestions.
func sanitizeIdent(s string) string {
	out := slug(s)
	if out == "" {
		return "column1"
	}
	if out[0] >= '0' && out[0] <= '9' {
		out = "_" + out
	}
	if len(out) > 63 {
		out = strings.TrimRight(out[:63], "_")
	}
	return out
}

// sanitizeName turns s into a likely pipeline, source or load name.
func sanitizeName(s string) string {
	out := slug(s)
	if len(out) > maxSpecName {
		out = strings.TrimRight(out[:maxSpecName], "_")
	}
	if out == "" {
		return "my-pipeline"
	}
	return out
}

// checkNotifications checks the URL of a notifications inbox: the queue a
// store's server sends its bucket notifications to.
func checkNotifications(v string) string {
	const forms = "write nats://HOST:PORT?subject=SUBJECT, sqs://QUEUE-NAME?region=REGION or amqp://USER:PASSWORD@HOST:5672/VHOST?queue=QUEUE"
	u, err := url.Parse(v)
	if err != nil {
		return fmt.Sprintf("%q is not a URL (%v): %s", v, err, forms)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fmt.Sprintf("the query of %q does not parse (%v): %s", v, err, forms)
	}
	var allowed []string
	switch u.Scheme {
	case "nats":
		if msg := checkHostPort(u); msg != "" {
			return msg
		}
		if q.Get("subject") == "" {
			return "a nats:// notifications URL needs the subject the server publishes to: write nats://HOST:PORT?subject=SUBJECT"
		}
		allowed = []string{"subject", "durable"}
	case "amqp", "amqps":
		if msg := checkHostPort(u); msg != "" {
			return msg
		}
		if q.Get("queue") == "" {
			return "an amqp:// notifications URL needs the queue the server delivers to: write amqp://USER:PASSWORD@HOST:5672/VHOST?queue=QUEUE"
		}
		allowed = []string{"queue"}
	case "sqs":
		if u.Host == "" {
			return "an sqs:// notifications URL needs the queue S3 sends to: write sqs://QUEUE-NAME?region=REGION"
		}
		if msg := checkSQSName(u.Host, "name"); msg != "" {
			return msg
		}
		allowed = []string{"region", "endpoint", "ack_wait", "poll_wait"}
	default:
		return fmt.Sprintf("notifications scheme %q is not supported: %s", u.Scheme, forms)
	}
	for k := range q {
		if !contains(allowed, k) {
			return fmt.Sprintf("unknown option %q in a %s:// notifications URL: the options are %s", k, u.Scheme, strings.Join(allowed, ", "))
		}
	}
	return ""
}

// checkLineage checks where OpenLineage events go.
func checkLineage(v string) string {
	const forms = "write file:///ABS/PATH/lineage.ndjson or http(s)://HOST/api/v1/lineage (Marquez and other OpenLineage servers), or leave it out"
	u, err := url.Parse(v)
	if err != nil {
		return fmt.Sprintf("not a valid lineage URL (%v): %s", redactErr(err), forms)
	}
	switch u.Scheme {
	case "file":
		if !strings.HasPrefix(u.Path, "/") || (u.Host != "" && u.Host != "localhost") {
			return "a lineage file is file:///ABS/PATH.ndjson (three slashes, an absolute path)"
		}
		return ""
	case "http", "https":
		if u.Host == "" {
			return "the lineage URL has no host: " + forms
		}
		return ""
	}
	return fmt.Sprintf("scheme %q is not supported: %s", u.Scheme, forms)
}
