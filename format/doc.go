// Package format decodes the records sluice loads — JSON arrays, single JSON
// objects, NDJSON, CSV and Parquet — and casts their values to column types.
//
// Loads read an object with NewReader: a schema.Reader whose decoder runs
// ahead of the consumer in its own goroutine(s) and hands over typed,
// columnar schema.Batches (values in int64, float64, bool, time.Time and
// text vectors, never boxed, no record ever held as a map). A Mapper says
// which field or path feeds each column, how values are cast, and what to
// do with missing and undeclared fields; decoders register themselves per
// input format in the decoders table of reader.go: JSON, NDJSON and auto
// (json*.go, mapping.go), CSV (csvload.go) and Parquet (parquetload.go).
// Gzip and zstd input (detected by their magic bytes) is decompressed on
// the fly and a leading UTF-8 byte order mark is skipped. Input must be
// valid UTF-8.
//
// Every error about the data is a *RecordError that says which record, line,
// byte and column it concerns; callers prefix the object key. A record the
// mapper refuses (a value that cannot be cast, a missing required field, an
// undeclared field with extra: error) is an error matching ErrRejected — or,
// with ReadOptions.Quarantine, a schema.Reject in its batch, with the reason
// and the record's text — while decode errors (syntax, limits, a failing
// read) always stop the object. The batches before an error are delivered
// first.
//
// Limits: every object is outside input, so the decoders bound it while
// streaming (Limits; the zero value means the defaults): decompressed bytes
// per object (4 GiB: a 1 GB object passes, a 10 GB gzip bomb stops early),
// bytes per record and per value (16 MiB each) and records per object
// (100 million). A limit is checked before the data is held: the JSON parser
// refuses a string or a record as soon as the bytes it has exceed the
// limit, and the CSV splitter stops a record that does not end within the
// limit (the header, read by encoding/csv, through a counter that fails
// past it). So memory per decoder
// stays near MaxRecordBytes plus buffers whatever the object holds, and a
// 1 GiB CSV field or a 2 GiB JSON string fails after 16 MiB with a
// *RecordError wrapping a *LimitError that names the spec key to raise
// (limits.max_object_bytes, limits.max_record_bytes, limits.max_field_bytes,
// limits.max_records). These errors are permanent: the same object fails
// the same way.
//
// JSON decoding (json.go, jsonparse.go, jsonpar.go, mapping.go) is a
// hand-written single pass over buffered bytes that validates each record
// exactly as encoding/json does (its grammar, its error messages and
// positions, its nesting limit) and casts each declared value straight from
// its bytes into the batch. It was chosen over encoding/json, encoding/json
// v2's jsontext, goccy/go-json, sonic, segmentio/encoding and fastjson by
// measurement (bench/json/README.md): on posts-shaped NDJSON it does 2.1
// times the work per CPU second of the best library (jsontext) and 11 times
// the encoding/json-into-maps decoder it replaces; on short records it is
// level with jsontext and ahead of the rest. An NDJSON
// object is cut into chunks at line ends and parsed by ReadOptions.Workers
// goroutines, its batches handed over in order with the record numbers and
// lines of a serial parse.
//
// CSV (csvload.go, csvsplit.go): CSVSplitter cuts an object into chunks of
// whole records in one quote-aware pass, CSVParser parses a chunk without
// copying its fields (encoding/csv only to locate an error exactly), and
// Caster casts each field's bytes straight into its vector — the path the
// curate job takes too, so a load casts CSV exactly as curate does. A load
// parses the chunks on ReadOptions.Workers goroutines and hands the
// batches over in order; batches, record numbers, lines, rejects and
// errors do not depend on Workers. Measured on the hydropower CSV ×40
// (6 MB, 167,040 rows, 4 columns) into batches, this 2-core machine, runs
// of the old and new code alternating (BenchmarkCSVLoad):
//
//	                          MB/s (6 runs)   allocations per load
//	before: encoding/csv      86–106          167,000 (5.6 MB)
//	after, Workers 1          160–181         ~200 (1.3 MB)
//	after, Workers 2          279–352         ~200 (1.3 MB)
//
// encoding/csv with the same casts into a reused batch, the baseline in
// the same runs, did 94–121 MB/s; most of the single-worker time is in the
// casts (parseFloatFast alone is a fifth). Reproduce with
// go test -run '^$' -bench CSVLoad -benchmem -count 5 ./format/ (the
// "before" figures: this benchmark file copied into a checkout of commit
// 0a751ac, whose decoder ignored Workers).
//
// Casts: the Mapper casts JSON values (see mapping.go for the rules), and
// CastString (AppendCast, Caster without boxing) turns a CSV value into
// the value of a column; loads also refuse a NUL in text and json
// (loadCaster), which PostgreSQL cannot store. Both map an absent value to
// NULL.
//
// Nested fields and silent NULLs: a Column takes a top-level Field or a Path
// through nested objects (address.city); a missing or null parent is a
// missing value. Because a misspelt or mismatched field would otherwise load
// a column of NULLs without a word, the decoders record which declared
// fields no record had and which undeclared fields occurred (top-level ones,
// and keys inside a declared parent such as address.zipcode), and
// Reader.Report returns them at the end of the object for the caller to log
// and count. MapperOptions set the policies: OnMissing warn (default) or
// error; Extra ignore, warn (default), error, or json (keep the undeclared
// fields of each record as one JSON object in a declared column).
//
// Memory: a Reader holds its read buffer (or, in parallel, Workers+1 chunks
// of 1 MiB being parsed or waiting) and a few batches, each at most
// BatchRows records and 16 MiB of input (maxBatchBytes); batches and read
// buffers are recycled per Mapper and across objects. Reading a 1 GiB
// NDJSON object with two workers peaks at about 35 MiB of resident memory
// (bench/json, BenchmarkLoad1GB).
//
// Nothing in this package keeps global state beyond pools of free buffers;
// a Mapper is safe for concurrent use once built; a Reader belongs to one
// consumer goroutine. Cancelling the context given to NewReader (or Close)
// stops its decoders.
package format
