// Package pipeline reads sluice pipeline specs: one YAML file that names the
// pipeline, says where its store, queue and warehouse are, and lists its
// sources (HTTP importers), loads (object → warehouse table) and jobs
// (transient runs that object-created events start).
//
// LoadFile and Parse turn a spec into a Spec with every default applied,
// after expanding environment references and validating every key. They
// report every problem they find, not only the first, as an ErrorList of
// *Error values that read "file:line:col: key.path: what is wrong: what to
// write instead", sorted by position. A spec that parses may still carry
// warnings (Spec.Warnings, in the same form): settings that are valid but
// probably do not do what was meant, such as pagination that may never
// get past its first page. `sluice validate` and `sluice run` print them.
//
// # Example
//
//	name: reference
//	store: file://./lake
//	queue: embedded
//	warehouse: sqlite://./warehouse.db
//
//	sources:
//	  posts:
//	    http:
//	      url: ${POSTS_URL:-https://jsonplaceholder.typicode.com/posts}
//	      timeout: 30s
//	      headers: {Accept: application/json}
//	      auth: {header: Authorization, env: API_TOKEN, scheme: Bearer}
//	      retries: 5
//	      backoff: 1s
//	      max_backoff: 30s
//	      pagination: {type: page, param: _page, size_param: _limit, size: 100}
//	    every: 1h
//	    land: "raw/{{.Source}}/dt={{.Date}}/{{.Source}}_{{.Time}}_{{.Page}}_{{.Unique}}.json"
//
//	loads:
//	  posts:
//	    on: {prefix: raw/posts/, suffix: .json, events: ["s3:ObjectCreated:*"], key_encoding: url}
//	    format: json
//	    table: posts
//	    write: merge
//	    primary_key: [id]
//	    columns:
//	      id: bigint
//	      userId: {type: bigint, as: userid, required: true}
//	      title: text
//	      body: text
//
//	jobs:
//	  hydropower:
//	    on: {events: ["s3:ObjectCreated:*"], prefix: data/, suffix: .csv}
//	    group: "{{.Key.Parent}}"
//	    settle: 5s
//	    runner: local
//	    timeout: 30m
//	    curate:
//	      input: "data/{{.Group}}/"
//	      format: csv
//	      rename: {"Hydropower (Terawatt-hours)": consumption}
//	      columns: {Entity: string, Code: string, Year: int32, consumption: float32}
//	      output: "curated/{{.Group}}/"
//	      mode: overwrite
//
// # Top level
//
//   - name (required): the pipeline's name; it names the queue streams.
//     Lower-case letters, digits, - and _, starting with a letter or digit,
//     at most 40 characters.
//   - store (optional, default "" = the data dir's lake): file://DIR,
//     s3://BUCKET[?region=…&endpoint=…] or mem://. The environment variable
//     SLUICE_STORE, when set and non-empty, replaces it.
//   - queue (optional, default "" = embedded): sluice's own event bus;
//     every load and job is a durable subscription of it. embedded,
//     mem://NAME, nats://HOST:PORT (JetStream), amqp://USER:PASSWORD@HOST:5672/VHOST
//     (RabbitMQ: a topic exchange and one quorum queue per subscription) or
//     sqs://PREFIX?region=REGION[&endpoint=URL] (one SQS queue per
//     subscription, named PREFIX-SUBSCRIPTION; PREFIX defaults to
//     sluice-NAME), each optionally with ?ack_wait=30s&max_deliveries=50.
//     SLUICE_QUEUE replaces it.
//   - notifications (optional): {url: …, key_encoding: url|raw}, the queue
//     a store's server sends its bucket notifications to:
//     nats://HOST:PORT?subject=SUBJECT (versitygw, MinIO),
//     sqs://QUEUE-NAME?region=REGION[&endpoint=URL] (AWS S3 directly, through
//     SNS, or EventBridge) or amqp://USER:PASSWORD@HOST:5672/VHOST?queue=QUEUE
//     (MinIO). key_encoding says how the server writes keys: url (AWS,
//     MinIO; the default) or raw (versitygw). sluice bridges every record
//     onto the queue, acknowledging a notification only once its events
//     are published, and then emits no events of its own for writes to
//     the store: one event per write. SLUICE_NOTIFICATIONS replaces url.
//   - warehouse (optional, default "" = the data dir's warehouse):
//     sqlite://PATH, postgres://… or postgresql://…. SLUICE_WAREHOUSE replaces it.
//   - state (optional, default "" = the data dir's state.db): where sluice
//     keeps job runs and requests, leases (run claims), dead letters and
//     the files it has seen: sqlite:///ABS/PATH/state.db, or
//     postgres://USER@HOST:PORT/DB?schema=S (schema default "sluice",
//     created if absent) for several sluice processes, on several
//     machines, sharing one pipeline. SLUICE_STATE replaces it.
//   - retry (optional): the policy for transient failures (a warehouse,
//     store, queue or disk that is unavailable) of loads and jobs:
//     {for: 6h, backoff: 1s, max_backoff: 1m}. Work that fails
//     transiently is retried in place with capped exponential backoff (with
//     jitter) for as long as for allows (default 6h), then dead-lettered;
//     work that fails permanently (bad data) is dead-lettered at once. See
//     package fault.
//   - watch (optional): {settle: 0, interval: 1s}. Files that other
//     programs drop into a local (file://) store are announced once they
//     are complete: on Linux, the moment no process holds them open for
//     writing — a file renamed into place, or closed by its writer, is
//     announced within milliseconds. settle unset or 0 (the default) adds
//     no window there, and 2s where Linux cannot tell (another user's
//     files, NFS and other file systems without leases, other systems): a
//     file then waits until it has been unchanged for 2s. A settle above
//     zero (at least 100ms) is a window every file must also wait out, for
//     programs that write one file in several opens (repeated >> appends):
//     without it each closed version is announced; better, have them write
//     under a temporary name and rename the file into place. On Linux the
//     watcher follows the store with inotify; elsewhere, and where inotify
//     cannot be used, it lists the store every interval.
//   - reconcile_every (optional, default 10m; 0 turns it off): how often
//     `sluice run` reconciles the store with the work done: every object
//     version under a load's prefix that its on: selects and that is
//     neither in the load's ledger nor dead-lettered gets its event again
//     (notifications are lossy, and none is sent for objects uploaded
//     before the queue existed), and every job group whose inputs changed
//     since its last run without a request is requested. run reconciles
//     once at start whatever this says; `sluice reconcile` does it on
//     demand.
//   - serve (optional): where `sluice run` and `sluice worker` serve the
//     web console, /metrics, /healthz and /readyz: address (HOST:PORT or
//     off; default 127.0.0.1:9464 for run, 127.0.0.1:9465 for worker; an
//     address beyond loopback needs SLUICE_ADMIN_TOKEN), tls_cert and
//     tls_key (PEM files, both or neither, for HTTPS). The --http,
//     --tls-cert and --tls-key flags override it.
//   - lineage (optional): where OpenLineage run events of loads and job
//     runs go: file:///ABS/PATH.ndjson (one event per line, appended) or
//     an http(s) endpoint such as http://marquez:5000/api/v1/lineage
//     (OPENLINEAGE_API_KEY, when set, is sent as a bearer token).
//     SLUICE_LINEAGE replaces it.
//   - sources, loads, jobs: mappings from a name to a definition, kept in
//     file order. A spec needs at least one source, load or job. Source,
//     load and job names use letters, digits, - and _, starting with a
//     letter or digit (at most 64 characters).
//
// When an override variable is set, the file's key is not read at all.
// Other top-level keys are errors, except keys starting with "x-", which
// are ignored and can hold anchors for aliases (x-http: &http {timeout: 10s}).
//
// # Sources
//
// A source fetches an HTTP API and lands each response page as one object.
//
//   - http.url (required): an http:// or https:// URL.
//   - http.timeout (default 30s): the limit for one request.
//   - http.headers (default none): plain headers sent with every request.
//     They are not secrets: Authorization, Proxy-Authorization and Cookie
//     are rejected here and belong in auth.
//   - http.auth (default none): {header, env, scheme}. The secret is read
//     from the environment variable env at request time, never stored in
//     the Spec and never logged, and sent in header (default
//     Authorization) as "scheme secret", or as the bare secret when scheme
//     is absent. env is required.
//   - http.retries (default 5): retries after the first try, on 429, 5xx and
//     network errors; 0 to 100 (0 is HTTP.Retries -1 in the Spec, as
//     httpsource.Config spells "none").
//   - http.backoff (default 500ms) and http.max_backoff (default 30s): the
//     first retry delay and its ceiling; max_backoff ≥ backoff.
//   - http.expect_content_type (default application/json): the media type
//     a response must have; "" or "*" turns the check off ("*" in the
//     Spec).
//   - http.max_bytes (default 1GiB): the largest response body one request
//     may return, as whole bytes or with a unit: B, KB, MB, GB, TB (powers
//     of 1000) or KiB, MiB, GiB, TiB (powers of 1024), like 512MiB or 2GB;
//     at least 1. The body streams to the store and is never held in
//     memory; a larger one fails the run at once, is not retried and lands
//     nothing, with an error naming the request and this key.
//   - http.pagination (default none = one request): type is one of
//     page (param default "page", start default 1; at least 1),
//     offset (param default "offset", start default 0, size required: the
//     step), cursor (param default "cursor", cursor_path required: the
//     dotted path of the next cursor in the JSON body, like meta.next) or
//     link (follows the Link header's rel="next"; no param, start or
//     cursor_path). size_param (optional, needs size) sends size as the
//     page size (with link, in the first request only). max_pages (default
//     1000) bounds one run. Warned about: page or offset with a size above
//     1 but no size_param (the API is never told the size, yet a shorter
//     page ends the pagination, and offset steps by it — records can be
//     skipped), and max_pages: 1. At run time a full page that ends cursor
//     or link pagination, and page or offset pagination getting the same
//     bytes twice in a row, are logged as warnings.
//   - every (optional, a Go duration ≥ 1s): the schedule. Ticks are
//     anchored to fixed times — multiples of every since the Unix epoch,
//     UTC (every: 1h fetches on the hour) — not to when a process started;
//     the process holding the source's lease fetches each tick once, and
//     ticks missed while no process held it collapse into one fetch.
//     Without every, the source is fetched once by the process that takes
//     its lease, whenever the lease changes hands (once per `sluice run`
//     on one machine).
//   - skip_unchanged (default false): land nothing for a page whose bytes
//     are those last landed from the same request URL at the same page
//     position (a SHA-256 kept in the state), for servers that ignore
//     conditional requests. Logged as "unchanged, nothing landed".
//   - retention (optional, at least 1h): how long the objects under the
//     source's land folder are kept, as days (30d), a Go duration (36h) or
//     both (1d12h). `sluice run` deletes older ones, at start and hourly,
//     under a lease so that one process does it — but only object
//     versions that every load whose on: selects them has in its ledger
//     and every job whose on: selects them has taken in a SUCCEEDED run,
//     that no dead letter names, and whose job groups can go whole (see
//     package engine, Retain). The land folder is the fixed part of the
//     land template up to its last / (raw/posts/ for the default):
//     retention is refused when there is none, or when it holds or lies
//     in another source's land folder or a job's output.
//   - land (default "raw/{{.Source}}/dt={{.Date}}/{{.Source}}_{{.Time}}_{{.Unique}}.json"):
//     a Go text/template for the object key of each page, with the fields
//     of httpsource.LandFields: .Source (the source name), .Date (the
//     tick, YYYY-MM-DD UTC), .Time (the tick, like 20260102T030405Z),
//     .Unique (8 hex characters derived from the source, the tick and the
//     page, so a tick lands at the same keys whichever process fetches it)
//     and .Page (1-based);
//     functions such as printf and {{if}} work, but range, with, define
//     and template do not. It must give a relative key of at most 1024
//     bytes naming a file (no leading or trailing /, no empty, . or ..
//     segment, no backslash) and, with pagination, different keys for
//     different pages (httpsource.CheckLand).
//
// The http defaults are httpsource's; Parse builds each source's importer
// with httpsource.New, so a spec that parses has an importer that starts,
// and Source.HTTP is its Config.
//
// Every source remembers, in the state and per page position, the ETag,
// Last-Modified and a hash of the page it last landed, and sends
// If-None-Match and If-Modified-Since with the next request for the same
// URL: a 304 Not Modified lands nothing (see httpsource, "Conditional
// requests and unchanged pages"). In log lines and errors a URL's query
// values are shown only for pagination parameters, by one rule for every
// pagination type; anything that looks like a key, token, signature or
// password, and any parameter sluice does not know, reads REDACTED.
//
// # Loads
//
// A load consumes object-created events and loads each matching object
// into a warehouse table, exactly once per object version.
//
//   - on (default: every ObjectCreated event for every key):
//     events (default ["ObjectCreated:*"]; the s3: prefix is optional and
//     dropped), prefix, suffix (default "": no filter; a load may have
//     neither), key_encoding (url, the AWS default, or raw for servers such
//     as versitygw that send keys unencoded).
//   - format (default auto): json (one array of objects, or one object),
//     ndjson (one object per line), csv (a header row, then records; the
//     values are cast as the curate job casts them, an empty value is
//     NULL; delimiter: sets the separator, default ","), parquet (a
//     Parquet file such as a curate job's part files, columns matched by
//     name) or auto (by the key's suffix: .ndjson or .jsonl, .csv,
//     .parquet, else json; see Load.FormatFor). gzip and zstd compression
//     is detected from the object's first bytes, whatever its name. Every
//     load skips keys with a segment below its prefix that starts with _
//     or . (_SUCCESS, staging files), as Spark and DuckDB do.
//   - table (required): letters, digits and _, not starting with a digit,
//     at most 63 characters (warehouse/warehouse.ValidIdent).
//   - write (default append): append; merge (upsert on primary_key, which
//     it then requires: a newer object version never loses to an older one
//     that commits later — versions are ordered by event time, then the S3
//     sequencer, then the key, kept per row in a hidden _sluice_version
//     column); or replace (a new version of an object key replaces exactly
//     the rows its previous version loaded; hidden columns _sluice_key and
//     _sluice_version; an older version changes nothing).
//   - order_by (merge only, optional): a column whose value orders the
//     versions of a row (greatest wins, ties by object version), such as
//     updated_at or seq; it becomes required.
//   - on_bad_record (default dead-letter): dead-letter (a record that does
//     not cast fails its whole object, which is dead-lettered) or
//     quarantine (the good records load, and each bad one goes with its
//     reason, record number, line and raw JSON to <table>__rejected in the
//     same transaction). Syntax errors and limits always fail the object.
//   - on_missing (default warn): warn or error, for a declared field absent
//     from every record of an object (a misspelt field, a wrong path).
//   - extra (default warn): ignore, warn, error or json, for fields the
//     columns do not declare; json keeps them as one JSON object in the
//     json column extra_column (default "extra").
//   - limits (optional): {max_object_bytes: 4GiB, max_record_bytes: 16MiB,
//     max_field_bytes: 16MiB, max_records: 100000000} — sizes in bytes or
//     with a unit (KiB, MiB, GiB, KB, MB, GB); decompressed bytes count. An
//     object over a limit is dead-lettered with a message naming the
//     record, the field and the key to raise.
//   - primary_key (default none): a list of column names (after as).
//   - columns (required, at least one, in table order): field: type, or
//     field: {type: TYPE, as: column_name, required: true|false}. The field
//     is the record's field name; the column name is the field unless as
//     renames it, and must be a valid identifier; required (default false)
//     rejects records without the field. Types: bigint, integer, double,
//     text, boolean, timestamp, date, json. A field with dots is a path into
//     nested objects (address.city; the column is then address_city unless
//     as names it); path: [address, "geo.lat"] spells a path whose keys
//     contain dots.
//
// A column added to the spec is added to the existing table at the next
// start (or the first load); a changed type is refused with both types
// named.
//
// Loads that write the same table must declare the same column names,
// types and primary_key.
//
// # Jobs
//
// A job is a trigger rule and the work it starts. Object-created events
// that match on are grouped by group; once a group has had no new event for
// settle, one transient run processes the whole group (see packages
// trigger and job). A job runs either the built-in curate job or a command.
//
//   - on (default: every ObjectCreated event for every key): the same keys
//     as a load's on (events, prefix, suffix, key_encoding).
//   - group (default "{{.Key.Parent}}", the key's parent folder): a Go
//     text/template over the key with .Key.Path, .Key.Dir, .Key.Parent,
//     .Key.Base and .Key.Ext; range, with, define and template are not
//     allowed. The group names the unit of work (JOB_DATE in the
//     hydropower reference) and is what .Group means below.
//   - settle (default 0 = the job package's 5s; at most 1h): how long a
//     group must be quiet before its run starts.
//   - runner (default local): local runs each job as a fresh sluice
//     process. emr and kubernetes are reserved and refused for now.
//   - timeout (default 1h, at least 1s): the limit for one run.
//   - curate or command, exactly one of them.
//   - output (command jobs only, optional): a template over .Group for the
//     key prefix the command writes under, like "reports/{{.Group}}/". It
//     is used for the re-trigger check below; declare it whenever the
//     command writes to the store.
//
// curate reads every CSV object under input, renames and casts its
// columns, filters its rows and writes snappy Parquet under output in the
// Spark layout (output/part-NNNNN-<uuid>-c000.snappy.parquet, then
// output/_SUCCESS), committed atomically (package curate):
//
//   - input (required): a template over .Group naming the folder to read,
//     like "data/{{.Group}}/"; it ends with "/".
//   - output (required): a template over .Group naming the folder to write,
//     like "curated/{{.Group}}/"; it ends with "/", has no folder starting
//     with . or _, and must not overlap input (curate replaces everything
//     under it).
//   - format (default csv): csv, the only input format so far.
//   - delimiter (default ","): one character; write "\t" (double-quoted)
//     for tabs.
//   - rename (default none): CSV header: column name. Each target must be a
//     declared column, and no two headers may be renamed to one column.
//   - columns (required, at least one, in output order): name: kind, where
//     name is the column name after rename and kind is string, int32,
//     int64, float32, float64, bool, date or timestamp (schema.Type). Every
//     CSV column must be declared; empty values are null.
//   - filter (default none): a row filter over the declared columns such as
//     "Year >= 2000 and Code != null" (see curate.Filter).
//   - mode (default overwrite): overwrite or error-if-exists.
//   - max_rows_per_file (default 1000000, at least 1): rows per part file.
//   - limits (optional): the same keys as a load's limits, for each input
//     CSV (a 1 GiB field is refused after max_record_bytes, naming the
//     object and the line, before anything is written).
//
// command is the program and its arguments as a list (command: [python3,
// clean.py]), run without a shell; the program must not be empty. It gets
// "--" and the group after its arguments, and an environment of its own
// (PATH, HOME, USER, LOGNAME, SHELL, LANG, LANGUAGE, LC_*, TZ, TMPDIR, TERM
// and SLUICE_*), not sluice's: pass_env: [AWS_PROFILE, ...] names the other
// variables of sluice's environment it gets.
//
// Input and output templates are checked with the sample group
// "2020-08-07_2PM": they must parse, use only .Group, and give a relative
// key prefix without empty, . or .. segments.
//
// # Jobs must not re-trigger themselves
//
// A job's outputs are objects, and sluice emits an s3:ObjectCreated:Put
// event for each of them, so they can trigger jobs; that is how pipelines
// chain. Parse refuses a job whose output would trigger itself, and jobs
// that trigger each other in a cycle (a → b → a, or longer), reporting
// each cycle once at the output of its first job in file order. The rule:
//
//   - The keys a curate job writes are O + "part-NNNNN-<uuid>-c000.snappy.parquet"
//     and O + "_SUCCESS", where O is its output template; a command job with
//     an output may write O + anything. A command job without output is
//     assumed to write nothing.
//   - The text of O before its first {{ is literal; the action and all
//     that follows can be any text (for curate, the literal text after the
//     last }} and the file names above still end the key).
//   - Job A triggers job B when B's events accept ObjectCreated:Put and some
//     key A may write starts with B's prefix and ends with B's suffix.
//
// So a job on {prefix: data/} must not write to data/{{.Group}}/out/ nor to
// data/{{.Group}}-curated/, while a job on {prefix: data/, suffix: .csv}
// may write to data/{{.Group}}-curated/ (Parquet and _SUCCESS do not end in
// .csv). A job without on matches every key, so a curate job needs on.
// Loads only read, so they take no part in the check.
//
// # Environment references
//
// In every value (not in keys) ${VAR} is replaced by the environment
// variable VAR, and ${VAR:-default} by VAR or, when VAR is unset or empty,
// by default (literal text up to the first "}"). A reference to an unset
// variable without a default is an error naming it. $$ writes one $; any
// other $ is kept as it is. Values under http.auth are never expanded:
// auth.env names the variable that is read at request time.
//
// # YAML
//
// A spec is one YAML document. Anchors, aliases and merge keys (<<: *name)
// work as in YAML 1.1; duplicate keys are errors; a null value (key: with
// nothing after it) is an empty mapping where a mapping is expected and an
// error where a value is expected (write "" for an empty string).
//
// Parse is safe for untrusted input: it never panics, and alias use is
// bounded.
package pipeline
