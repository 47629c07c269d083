package pipeline

import (
	"errors"
	"strings"
	"testing"
)

// noEnv is a getenv with nothing set.
func noEnv(string) string { return "" }

// env returns a getenv backed by m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// srcHead and loadHead start a spec with one source s or one load l whose
// body starts on line 4; loadOK is a minimal valid load body.
const (
	srcHead  = "name: t\nsources:\n  s:\n"
	loadHead = "name: t\nloads:\n  l:\n"
	loadOK   = "    table: t\n    columns: {id: bigint}\n"
)

// badSpec is a spec Parse must reject, with where (line, col, key path)
// and what (a fragment of the message) it must say.
type badSpec struct {
	name      string
	yaml      string
	line, col int
	path      string
	frag      string
}

// badSpecs are specs Parse must reject, with where and what it must say.
// They also seed FuzzParse.
var badSpecs = []badSpec{
	// serve: and lineage:.
	{"a serve address without a port", "name: t\nserve: {address: localhost}\n", 2, 18, "serve.address", "is not HOST:PORT"},
	{"a TLS certificate without its key", "name: t\nserve: {address: 127.0.0.1:9464, tls_cert: c.pem}\n", 2, 8, "serve", "give both tls_cert and tls_key"},
	{"an unknown serve key", "name: t\nserve: {port: 1}\n", 2, 9, "serve.port", "allowed keys here are address, tls_cert, tls_key"},
	{"a lineage URL of an unknown scheme", "name: t\nlineage: kafka://x\n", 2, 10, "lineage", "file:///ABS/PATH/lineage.ndjson or http(s)://"},
	{"a relative lineage file", "name: t\nlineage: file://lineage.ndjson\n", 2, 10, "lineage", "an absolute path"},
	// YAML itself.
	{"an unclosed list reports the line it starts on", "name: t\nsources:\n  s: [a, b\nloads: {}\n", 3, 0, "", "invalid YAML: did not find expected ',' or ']'"},
	{"bad indentation reports the offending line", "name: t\nloads:\n  a:\n    table: t\n   columns: {}\n", 5, 0, "", "invalid YAML: did not find expected key"},
	{"a first-line scanner error reports line 1", "name: a: b\n", 1, 0, "", "mapping values are not allowed"},
	{"a parser error on the second line is not reported as line 1", "name: t\n- a\n", 2, 0, "", "did not find expected key"},
	{"an unknown alias names its line and the fix", "name: t\njobs:\n  j: *nope\n", 3, 0, "", "define the anchor with &nope before the alias *nope"},
	{"control characters are refused", "name: t\x01\n", 0, 0, "", "save the file as UTF-8 text"},
	{"tab indentation is explained", "name: t\nsources:\n\ts: {}\n", 3, 0, "", "tabs"},
	{"an empty file says how to start", "", 0, 0, "", "the spec is empty: start it with name:"},
	{"a comment-only file is empty", "# nothing\n", 0, 0, "", "the spec is empty"},
	{"a list at the top is not a spec", "- name: t\n", 1, 1, "", "expected a mapping (key: value), found a list"},
	{"a second document is rejected", "name: t\njobs: {a: 1}\n---\nname: u\n", 3, 1, "", "a second YAML document"},
	{"duplicate keys name the first line", "name: t\njobs: {}\nname: u\n", 3, 1, "name", `key "name" is already defined at line 1`},
	{"a non-scalar key is rejected", "name: t\njobs: {}\n? [a]\n: b\n", 3, 3, "", "a key must be a plain name"},
	{"a merge list holds mappings", "name: t\njobs: {}\nx-a: &a [1]\nloads:\n  <<: *a\n", 3, 10, "loads", "found the value \"1\" in a merge list"},
	{"a merge key needs a mapping", "name: t\njobs: {}\nx-a: &a 1\nloads:\n  <<: *a\n", 5, 7, "loads", "found the value \"1\" after <<: a merge key takes an alias of a mapping"},

	// Top level.
	{"name is required", "jobs: {a: 1}\n", 1, 1, "name", "name is required: add name: my-pipeline"},
	{"name must be a slug", "name: My Pipeline\njobs: {}\n", 1, 7, "name", `not a valid pipeline name: use lower-case letters, digits, - and _, starting with a letter or digit, at most 40 characters (for example "my_pipeline")`},
	{"name is at most 40 characters", "name: " + strings.Repeat("a", 41) + "\njobs: {}\n", 1, 7, "name", "at most 40 characters"},
	{"name cannot be null", "name:\njobs: {}\n", 1, 6, "name", "has no value"},
	{"an unknown top-level key gets a suggestion", "name: t\nsoruces: {}\njobs: {}\n", 2, 1, "soruces", `unknown key "soruces": did you mean "sources"?`},
	{"an unknown top-level key lists the allowed keys", "name: t\nzebra: 1\njobs: {}\n", 2, 1, "zebra", "allowed keys here are name, store, queue, warehouse, state, notifications, retry, watch, reconcile_every, serve, lineage, sources, loads, jobs"},
	{"watch.settle below 100ms is refused", "name: t\nwatch: {settle: 10ms}\njobs: {}\n", 2, 17, "watch.settle", "write at least 100ms, or 0 for the default"},
	{"watch.settle is not negative", "name: t\nwatch: {settle: -1s}\njobs: {}\n", 2, 17, "watch.settle", "-1s is too short"},
	{"watch.settle needs a unit", "name: t\nwatch: {settle: 2}\njobs: {}\n", 2, 17, "watch.settle", `"2" has no unit`},
	{"reconcile_every needs a unit", "name: t\nreconcile_every: 10\njobs: {}\n", 2, 18, "reconcile_every", `"10" has no unit`},
	{"reconcile_every below a second is refused", "name: t\nreconcile_every: 10ms\njobs: {}\n", 2, 18, "reconcile_every", "write at least 1s (a reconcile lists every load's and job's prefix), or 0"},
	{"store needs a scheme", "name: t\nstore: ./lake\njobs: {}\n", 2, 8, "store", `for a local directory write file://./lake`},
	{"store scheme must be known", "name: t\nstore: gs://b\njobs: {}\n", 2, 8, "store", `store scheme "gs" is not supported`},
	{"s3 store needs a bucket", "name: t\nstore: s3://\njobs: {}\n", 2, 8, "store", "s3:// needs a bucket"},
	{"queue typo gets a suggestion", "name: t\nqueue: embeded\njobs: {}\n", 2, 8, "queue", `did you mean "embedded"?`},
	{"embedded queue option typo gets a suggestion", "name: t\nqueue: \"embedded?ackwait=2s\"\njobs: {}\n", 2, 8, "queue", `unknown queue option "ackwait": did you mean "ack_wait"?`},
	{"nats queue needs a host", "name: t\nqueue: nats://\njobs: {}\n", 2, 8, "queue", "nats:// needs a server address"},
	{"nats queue options are checked", "name: t\nqueue: nats://h:4222?ack_wait=soon\njobs: {}\n", 2, 8, "queue", `ack_wait="soon" is not a positive duration`},
	{"nats option typos get a suggestion", "name: t\nqueue: nats://h:4222?ackwait=3s\njobs: {}\n", 2, 8, "queue", `unknown queue option "ackwait": did you mean "ack_wait"?`},
	{"other queue schemes are refused", "name: t\nqueue: kafka://q\njobs: {}\n", 2, 8, "queue", `queue scheme "kafka" is not supported: write embedded, mem://NAME, nats://HOST:PORT, amqp://`},
	{"an amqp queue needs a host", "name: t\nqueue: amqp:///vhost\njobs: {}\n", 2, 8, "queue", `amqp:// needs a server address: write amqp://HOST:PORT, like amqp://127.0.0.1:5672`},
	{"an sqs queue prefix has SQS's characters", "name: t\nqueue: sqs://my.lake?region=eu-west-1\njobs: {}\n", 2, 8, "queue", `SQS queue prefix "my.lake" has '.'`},
	{"sqs queue options are checked", "name: t\nqueue: sqs://lake?regoin=eu-west-1\njobs: {}\n", 2, 8, "queue", `unknown queue option "regoin": did you mean "region"?`},
	{"notifications need an s3 store", "name: t\nnotifications: {url: \"sqs://lake-events?region=eu-west-1\"}\njobs: {}\n", 2, 1, "notifications", `but the store is the data dir's local store: use an s3:// store`},
	{"with notifications the bus keys are sluice's own", "name: t\nstore: s3://lake\nnotifications: {url: \"sqs://q?region=eu-west-1\", key_encoding: raw}\njobs: {j: {on: {prefix: a/, key_encoding: raw}, command: [x]}}\n", 4, 8, "jobs.j.on.key_encoding", "drop on.key_encoding: raw here and set notifications.key_encoding instead"},
	{"notifications need a url", "name: t\nnotifications: {key_encoding: raw}\njobs: {}\n", 2, 16, "notifications.url", `notifications needs the url of the queue`},
	{"nats notifications need a subject", "name: t\nnotifications: {url: \"nats://127.0.0.1:4222\"}\njobs: {}\n", 2, 22, "notifications.url", `needs the subject the server publishes to`},
	{"notifications key encoding is url or raw", "name: t\nnotifications: {url: \"sqs://lake-events?region=eu-west-1\", key_encoding: base64}\njobs: {}\n", 2, 74, "notifications.key_encoding", `unknown key encoding "base64"`},
	{"notification options are checked", "name: t\nnotifications: {url: \"amqp://h:5672/?queue=q&x=1\"}\njobs: {}\n", 2, 22, "notifications.url", `unknown option "x" in a amqp:// notifications URL: the options are queue`},
	{"warehouse scheme must be known", "name: t\nwarehouse: mysql://x/db\njobs: {}\n", 2, 12, "warehouse", `warehouse scheme "mysql" is not supported`},
	{"sqlite warehouse needs a path", "name: t\nwarehouse: sqlite://\njobs: {}\n", 2, 12, "warehouse", "sqlite:// needs a file"},
	{"a spec must define something", "name: t\n", 1, 1, "", "defines no sources, loads or jobs"},
	{"sources must be a mapping", "name: t\nsources: [posts]\n", 2, 10, "sources", "expected a mapping (key: value), found a list"},
	{"jobs must be a mapping", "name: t\njobs: [a]\n", 2, 7, "jobs", "expected a mapping"},

	// Sources.
	{"source names are checked", "name: t\nsources:\n  my posts:\n    http: {url: https://x}\n", 3, 3, "sources.my posts", `not a valid source name`},
	{"a source must be a mapping", srcHead + "    - http\n", 4, 5, "sources.s", "expected a mapping"},
	{"a source needs http", srcHead + "    every: 1h\n", 3, 3, "sources.s", "source s has no http: add http: {url: https://...}"},
	{"url at source level belongs under http", srcHead + "    url: https://x\n    http: {url: https://x}\n", 4, 5, "sources.s.url", "url belongs under http: write http: {url: ...}"},
	{"http needs url", srcHead + "    http:\n      timeout: 5s\n", 5, 7, "sources.s.http", "url is required: add url: https://"},
	{"url needs a scheme", srcHead + "    http: {url: example.com/posts}\n", 4, 17, "sources.s.http.url", `write https://example.com/posts`},
	{"url scheme must be http", srcHead + "    http: {url: \"ftp://x/y\"}\n", 4, 17, "sources.s.http.url", `scheme "ftp" is not supported: write an http:// or https:// URL`},
	{"url needs a host", srcHead + "    http: {url: \"https:///x\"}\n", 4, 17, "sources.s.http.url", "has no host"},
	{"timeout needs a unit", srcHead + "    http: {url: https://x, timeout: 30}\n", 4, 37, "sources.s.http.timeout", `"30" has no unit: write a duration like 30s`},
	{"timeout must be a duration", srcHead + "    http: {url: https://x, timeout: soon}\n", 4, 37, "sources.s.http.timeout", "is not a duration: write a number with a unit, like 500ms"},
	{"timeout must be positive", srcHead + "    http: {url: https://x, timeout: -1s}\n", 4, 37, "sources.s.http.timeout", "-1s is too short: write at least 1ms"},
	{"every is at least a second", srcHead + "    http: {url: https://x}\n    every: 500ms\n", 5, 12, "sources.s.every", "500ms is too short: write at least 1s"},
	{"retries must be a number", srcHead + "    http: {url: https://x, retries: many}\n", 4, 37, "sources.s.http.retries", `"many" is not a whole number: write a number between 0 and 100`},
	{"retries must be in range", srcHead + "    http: {url: https://x, retries: -1}\n", 4, 37, "sources.s.http.retries", "-1 is out of range"},
	{"max_backoff must not be below backoff", srcHead + "    http: {url: https://x, backoff: 2s, max_backoff: 1s}\n", 4, 54, "sources.s.http.max_backoff", "max_backoff (1s) is shorter than backoff (2s)"},
	{"a long backoff conflicts with the default ceiling", srcHead + "    http: {url: https://x, backoff: 1m}\n", 4, 37, "sources.s.http.backoff", "max_backoff (30s) is shorter than backoff (1m0s)"},
	{"max_bytes must be a size", srcHead + "    http: {url: https://x, max_bytes: lots}\n", 4, 39, "sources.s.http.max_bytes", `"lots" is not a size: write a whole number of bytes, or one with a unit like 512MiB or 2GB`},
	{"max_bytes takes no fractions", srcHead + "    http: {url: https://x, max_bytes: 1.5GiB}\n", 4, 39, "sources.s.http.max_bytes", `"1.5GiB" is not a size`},
	{"max_bytes is at least 1", srcHead + "    http: {url: https://x, max_bytes: 0}\n", 4, 39, "sources.s.http.max_bytes", `"0" is too small: write at least 1 (byte)`},
	{"max_bytes must fit in 64 bits", srcHead + "    http: {url: https://x, max_bytes: 9000000TiB}\n", 4, 39, "sources.s.http.max_bytes", `"9000000TiB" is too large`},
	{"max_bytes belongs under http", srcHead + "    max_bytes: 1GiB\n    http: {url: https://x}\n", 4, 5, "sources.s.max_bytes", "max_bytes belongs under http"},
	{"expect_content_type must be a media type", srcHead + "    http: {url: https://x, expect_content_type: json}\n", 4, 49, "sources.s.http.expect_content_type", `"json" is not a media type: write one like application/json, or "*"`},
	{"headers must be a mapping", srcHead + "    http: {url: https://x, headers: [Accept]}\n", 4, 37, "sources.s.http.headers", "expected a mapping (key: value), found a list: write headers: {Accept: application/json}"},
	{"header names are tokens", srcHead + "    http: {url: https://x, headers: {\"Bad Header\": x}}\n", 4, 38, "sources.s.http.headers.Bad Header", "not a valid header name"},
	{"secrets are refused in headers", srcHead + "    http: {url: https://x, headers: {Authorization: Bearer abc}}\n", 4, 38, "sources.s.http.headers.Authorization", "write auth: {header: Authorization, env: VAR_WITH_SECRET} instead"},
	{"header names ignore case for duplicates", srcHead + "    http: {url: https://x, headers: {Accept: a/b, accept: c/d}}\n", 4, 51, "sources.s.http.headers.accept", "already set at line 4"},
	{"auth needs env", srcHead + "    http: {url: https://x, auth: {header: X-Key}}\n", 4, 34, "sources.s.http.auth", "env is required: add env: API_TOKEN"},
	{"auth env is a name, not a reference", srcHead + "    http: {url: https://x, auth: {env: \"${TOKEN}\"}}\n", 4, 40, "sources.s.http.auth.env", "write env: TOKEN"},
	{"auth env must be a variable name", srcHead + "    http: {url: https://x, auth: {env: my-token}}\n", 4, 40, "sources.s.http.auth.env", "not an environment variable name"},
	{"auth scheme is one word", srcHead + "    http: {url: https://x, auth: {env: T, scheme: \"Bearer x\"}}\n", 4, 51, "sources.s.http.auth.scheme", "not a valid auth scheme"},
	{"a literal secret in auth is refused", srcHead + "    http: {url: https://x, auth: {env: T, token: abc}}\n", 4, 43, "sources.s.http.auth.token", "secrets are not written in the spec"},
	{"auth and headers cannot both set a header", srcHead + "    http: {url: https://x, headers: {X-Key: a}, auth: {header: X-Key, env: K}}\n", 4, 38, "sources.s.http.headers.X-Key", "header X-Key is also set by auth"},
	{"pagination needs a type", srcHead + "    http:\n      url: https://x\n      pagination: {size: 10}\n", 6, 19, "sources.s.http.pagination", "type is required: add type: page, offset, cursor or link"},
	{"pagination type typos get a suggestion", srcHead + "    http:\n      url: https://x\n      pagination: {type: pgae}\n", 6, 26, "sources.s.http.pagination.type", `unknown pagination type "pgae": did you mean "page"? (allowed: page, offset, cursor, link)`},
	{"offset pagination needs size", srcHead + "    http:\n      url: https://x\n      pagination: {type: offset}\n", 6, 19, "sources.s.http.pagination", "offset pagination needs size"},
	{"cursor pagination needs cursor_path", srcHead + "    http:\n      url: https://x\n      pagination: {type: cursor}\n", 6, 19, "sources.s.http.pagination", "cursor pagination needs cursor_path"},
	{"cursor_path must be dotted names", srcHead + "    http:\n      url: https://x\n      pagination: {type: cursor, cursor_path: meta..next}\n", 6, 47, "sources.s.http.pagination.cursor_path", "not a dotted path"},
	{"link pagination takes no param", srcHead + "    http:\n      url: https://x\n      pagination: {type: link, param: p}\n", 6, 32, "sources.s.http.pagination.param", "param is not used by link pagination: remove it"},
	{"size_param needs size", srcHead + "    http:\n      url: https://x\n      pagination: {type: page, size_param: limit}\n", 6, 32, "sources.s.http.pagination.size_param", "size_param needs size"},
	{"size_param differs from param", srcHead + "    http:\n      url: https://x\n      pagination: {type: page, param: p, size_param: p, size: 5}\n", 6, 54, "sources.s.http.pagination.size_param", "same query parameter as param"},
	{"page numbers start at 1", srcHead + "    http:\n      url: https://x\n      pagination: {type: page, start: 0}\n", 6, 39, "sources.s.http.pagination.start", "page numbers start at 1: for an API whose first page is 0, write type: offset, param: page, size: 1"},
	{"max_pages is positive", srcHead + "    http:\n      url: https://x\n      pagination: {type: page, max_pages: 0}\n", 6, 43, "sources.s.http.pagination.max_pages", "0 is out of range"},
	{"land must parse as a template", srcHead + "    http: {url: https://x}\n    land: \"raw/{{.Source\"\n", 5, 11, "sources.s.land", `land template does not parse (template: land:1: unclosed action): write a Go text/template such as "raw/{{.Source}}`},
	{"land may use only the documented fields", srcHead + "    http: {url: https://x}\n    land: \"raw/{{.Name}}.json\"\n", 5, 11, "sources.s.land", "use only {{.Source}}, {{.Date}}, {{.Time}}, {{.Unique}} and {{.Page}}"},
	{"land keys are relative", srcHead + "    http: {url: https://x}\n    land: \"/raw/{{.Unique}}.json\"\n", 5, 11, "sources.s.land", "starts with /"},
	{"land keys have no empty segments", srcHead + "    http: {url: https://x}\n    land: \"raw//{{.Unique}}.json\"\n", 5, 11, "sources.s.land", `write the clean form ("raw/u1.json")`},
	{"land keys name a file", srcHead + "    http: {url: https://x}\n    land: \"{{.Source}}/\"\n", 5, 11, "sources.s.land", `key "s/", which ends with /: name a file`},
	{"land templates cannot loop", srcHead + "    http: {url: https://x}\n    land: \"raw/{{range .Source}}x{{end}}\"\n", 5, 11, "sources.s.land", "{{range .Source}}x{{end}} is not allowed: use fields such as {{.Date}}, functions such as printf, and if"},
	{"land keys are bounded", srcHead + "    http: {url: https://x}\n    land: \"raw/{{printf \\\"%2000d\\\" .Page}}\"\n", 5, 11, "sources.s.land", "longer than 1024 bytes: shorten it"},
	{"paginated land keys differ per page", srcHead + "    http: {url: https://x, pagination: {type: link}}\n    land: \"raw/{{.Date}}.json\"\n", 5, 11, "sources.s.land", "the same key (\"raw/2026-01-02.json\") for every page"},

	// Loads.
	{"load names are checked", "name: t\nloads:\n  -bad:\n" + loadOK, 3, 3, "loads.-bad", "not a valid load name"},
	{"a load needs a table", loadHead + "    columns: {id: bigint}\n", 3, 3, "loads.l", "load l has no table: add table: l"},
	{"a load needs columns", loadHead + "    table: t\n", 3, 3, "loads.l", "load l has no columns"},
	{"columns cannot be empty", loadHead + "    table: t\n    columns: {}\n", 5, 14, "loads.l.columns", "columns is empty"},
	{"table names are identifiers", loadHead + "    table: 1posts\n    columns: {id: bigint}\n", 4, 12, "loads.l.table", `"1posts" is not a valid table name: use letters, digits and _, not starting with a digit, at most 63 characters (for example "_1posts")`},
	{"the ledger table is reserved", loadHead + "    table: _sluice_ledger\n    columns: {id: bigint}\n", 4, 12, "loads.l.table", "sluice's ledger table"},
	{"write mode typos get a suggestion", loadHead + loadOK + "    write: marge\n", 6, 12, "loads.l.write", `unknown write mode "marge": did you mean "merge"? (allowed: append, merge, replace)`},
	{"upsert suggests merge", loadHead + loadOK + "    write: upsert\n", 6, 12, "loads.l.write", `did you mean "merge"?`},
	{"merge needs a primary key", loadHead + loadOK + "    write: merge\n", 6, 12, "loads.l.write", "write: merge needs primary_key: add primary_key: [id]"},
	{"merge needs a non-empty primary key", loadHead + loadOK + "    write: merge\n    primary_key: []\n", 7, 18, "loads.l.primary_key", "primary_key is empty but write: merge needs it"},
	{"primary_key is a list", loadHead + loadOK + "    primary_key: id\n", 6, 18, "loads.l.primary_key", "expected a list, found the value \"id\": write a list, like primary_key: [id]"},
	{"primary_key names columns", loadHead + loadOK + "    primary_key: [uid]\n", 6, 19, "loads.l.primary_key[0]", `"uid" is not a column of this load: primary_key lists column names (after as:), one of id`},
	{"primary_key uses the renamed column", loadHead + "    table: t\n    columns: {userId: {type: bigint, as: userid}}\n    primary_key: [userId]\n", 6, 19, "loads.l.primary_key[0]", `"userId" is a field renamed by as: write the column name "userid"`},
	{"primary_key lists a column once", loadHead + loadOK + "    primary_key: [id, id]\n", 6, 23, "loads.l.primary_key[1]", "listed twice"},
	{"format must be known", loadHead + loadOK + "    format: xml\n", 6, 13, "loads.l.format", `unknown format "xml" (allowed: auto, json, ndjson, csv, parquet)`},
	{"jsonl suggests ndjson", loadHead + loadOK + "    format: jsonl\n", 6, 13, "loads.l.format", `did you mean "ndjson"?`},
	{"prefix at load level belongs under on", loadHead + loadOK + "    prefix: raw/\n", 6, 5, "loads.l.prefix", "prefix belongs under on: write on: {prefix: ...}"},
	{"unknown load keys get a suggestion", loadHead + loadOK + "    tabel: x\n", 6, 5, "loads.l.tabel", `did you mean "table"?`},
	{"unknown load keys list the allowed keys", loadHead + loadOK + "    colour: x\n", 6, 5, "loads.l.colour", "allowed keys here are on, format, delimiter, table, write, primary_key, order_by, columns, on_bad_record, on_missing, extra, extra_column, limits"},
	{"on must be a mapping", loadHead + loadOK + "    on: raw/\n", 6, 9, "loads.l.on", "expected a mapping (key: value), found the value \"raw/\": write on: {prefix: raw/posts/, suffix: .json}"},
	{"event patterns are checked", loadHead + loadOK + "    on: {events: [\"s3:ObjectRemoved:*\"]}\n", 6, 19, "loads.l.on.events[0]", `unknown event pattern "s3:ObjectRemoved:*": write "s3:ObjectCreated:*" or one of`},
	{"events is a list", loadHead + loadOK + "    on: {events: \"s3:ObjectCreated:*\"}\n", 6, 18, "loads.l.on.events", "expected a list"},
	{"events cannot be empty", loadHead + loadOK + "    on: {events: []}\n", 6, 18, "loads.l.on.events", "events is empty: remove it to match every ObjectCreated event"},
	{"key_encoding must be url or raw", loadHead + loadOK + "    on: {key_encoding: base64}\n", 6, 24, "loads.l.on.key_encoding", `unknown key encoding "base64": write "url" (AWS S3, the default) or "raw" (versitygw)`},
	{"prefix has no leading slash", loadHead + loadOK + "    on: {prefix: /raw/}\n", 6, 18, "loads.l.on.prefix", `keys do not start with /: write "raw/"`},
	{"unknown on keys get a suggestion", loadHead + loadOK + "    on: {sufix: .json}\n", 6, 10, "loads.l.on.sufix", `did you mean "suffix"?`},
	{"column types must be known", loadHead + "    table: t\n    columns: {id: bigin}\n", 5, 19, "loads.l.columns.id", `unknown column type "bigin": did you mean "bigint"? (allowed: integer, bigint, real, double, text, boolean, date, timestamp, json)`},
	{"column type aliases get a suggestion", loadHead + "    table: t\n    columns: {name: varchar}\n", 5, 21, "loads.l.columns.name", `unknown column type "varchar": did you mean "text"?`},
	{"column types list the allowed types", loadHead + "    table: t\n    columns: {id: {type: uuid}}\n", 5, 26, "loads.l.columns.id.type", "(allowed: integer, bigint, real, double, text, boolean, date, timestamp, json)"},
	{"a column mapping needs a type", loadHead + "    table: t\n    columns: {id: {as: ident}}\n", 5, 15, "loads.l.columns.id", "column id has no type"},
	{"a column cannot be a list", loadHead + "    table: t\n    columns: {id: [bigint]}\n", 5, 19, "loads.l.columns.id", "expected a type or {type: ..., as: ..., required: ...}, found a list"},
	{"a field that is not an identifier needs as", loadHead + "    table: t\n    columns: {\"Hydropower (TWh)\": double}\n", 5, 15, "loads.l.columns.Hydropower (TWh)", `field "Hydropower (TWh)" is not a valid column name: keep the field and name the column with {type: ..., as: hydropower_twh}`},
	{"as must be an identifier", loadHead + "    table: t\n    columns: {id: {type: bigint, as: \"my id\"}}\n", 5, 38, "loads.l.columns.id.as", `"my id" is not a valid column name`},
	{"column names are unique after as", loadHead + "    table: t\n    columns:\n      id: bigint\n      uid: {type: bigint, as: id}\n", 7, 31, "loads.l.columns.uid", `column "id" is already defined by field "id" at line 6: rename one with as:`},
	{"required is a boolean", loadHead + "    table: t\n    columns: {id: {type: bigint, required: yes}}\n", 5, 44, "loads.l.columns.id.required", `"yes" is not a boolean: write true or false`},
	{"unknown column keys get a hint", loadHead + "    table: t\n    columns: {id: {type: bigint, nullable: true}}\n", 5, 34, "loads.l.columns.id.nullable", `did you mean "required"?`},
	{"loads sharing a table must agree on types", "name: t\nloads:\n  a: {table: t, columns: {id: bigint}}\n  b: {table: t, columns: {id: text}}\n", 4, 14, "loads.b.table", "table t is also written by load a (line 3) and column id is text here but bigint there"},
	{"loads sharing a table must agree on columns", "name: t\nloads:\n  a: {table: t, columns: {id: bigint, x: text}}\n  b: {table: t, columns: {id: bigint}}\n", 4, 14, "loads.b.table", "its column x is missing here"},
	{"loads sharing a table must agree on primary keys", "name: t\nloads:\n  a: {table: t, columns: {id: bigint}, primary_key: [id]}\n  b: {table: t, columns: {id: bigint}}\n", 4, 14, "loads.b.table", "primary_key is [] here but [id] there"},

	// Environment.
	{"an unset variable is named", srcHead + "    http: {url: \"${API_URL}\"}\n", 4, 17, "sources.s.http.url", "environment variable API_URL is not set: set it, or write ${API_URL:-default}"},
	{"a malformed reference is explained", srcHead + "    http: {url: \"${API_URL-x}\"}\n", 4, 17, "sources.s.http.url", "${API_URL-x} is not a variable reference: write ${VAR} or ${VAR:-default}"},
	{"an unterminated reference is explained", "name: t\nstore: \"file://${DIR\"\njobs: {}\n", 2, 8, "store", "unterminated ${"},
	{"unset variables in jobs are errors", "name: t\njobs:\n  j:\n    command: [run, \"${JOB_ARG}\"]\n", 4, 20, "jobs.j.command[1]", "environment variable JOB_ARG is not set"},
	{"a bad SLUICE_QUEUE is reported", "name: t\njobs: {}\n", 0, 0, "queue", `SLUICE_QUEUE="kafka://x" (which replaces queue): queue scheme "kafka" is not supported`},
}

func TestParseRejectsBadSpecsAtTheirPosition(t *testing.T) {
	for _, c := range badSpecs {
		t.Run(c.name, func(t *testing.T) { checkBadSpec(t, c) })
	}
}

// checkBadSpec asserts that Parse rejects c.yaml with an error at c's
// position and path whose message contains c.frag.
func checkBadSpec(t *testing.T, c badSpec) {
	t.Helper()
	getenv := noEnv
	if strings.Contains(c.name, "SLUICE_QUEUE") {
		getenv = env(map[string]string{"SLUICE_QUEUE": "kafka://x"})
	}
	spec, err := Parse("p.yaml", []byte(c.yaml), getenv)
	if err == nil {
		t.Fatalf("Parse accepted the spec:\n%s", c.yaml)
	}
	if spec != nil {
		t.Errorf("Parse returned a spec with an error")
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error is %T, want ErrorList: %v", err, err)
	}
	for _, e := range list {
		if e.Line == c.line && e.Col == c.col && e.Path == c.path && strings.Contains(e.Msg, c.frag) {
			if e.File != "p.yaml" {
				t.Errorf("error names file %q, want p.yaml", e.File)
			}
			return
		}
	}
	t.Errorf("no error at %d:%d %s containing %q; got:\n%v", c.line, c.col, c.path, c.frag, err)
}
