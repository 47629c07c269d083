// Package format decodes the records sluice loads — JSON arrays, single JSON
// objects, NDJSON, CSV and Parquet — and casts their values to column types.
//
// Decoders stream: DecodeJSON and DecodeCSV read their input once, hold one
// record at a time (plus a read buffer) and call a function per record, in
// order. Gzip and zstd input (detected by their magic bytes) is decompressed
// on the fly and a leading UTF-8 byte order mark is skipped. Input must be
// valid UTF-8. NewReader's CSV and Parquet decoders (csvload.go,
// parquetload.go) write typed batches instead of records.
//
// Every error about the data is a *RecordError that says which record, line,
// byte and column it concerns; callers prefix the object key. Errors returned
// by the per-record function are passed through unchanged.
//
// Limits: every object is outside input, so the decoders bound it while
// streaming (Limits; the zero value means the defaults): decompressed bytes
// per object (4 GiB: a 1 GB object passes, a 10 GB gzip bomb stops early),
// bytes per record and per value (16 MiB each) and records per object
// (100 million). A limit is checked before the data is held: the JSON framer
// stops copying a record or a string past its limit, and encoding/csv, which
// gathers a whole record in memory, reads through a counter that fails past
// the record limit. So memory per decoder stays near MaxRecordBytes plus
// buffers whatever the object holds, and a 1 GiB CSV field or a 2 GiB JSON
// string fails after 16 MiB with a *RecordError wrapping a *LimitError that
// names the spec key to raise (limits.max_object_bytes,
// limits.max_record_bytes, limits.max_field_bytes, limits.max_records).
// These errors are permanent: the same object fails the same way.
//
// Casts: Mapper turns a decoded record into one Go value per warehouse column
// (the values warehouse/driver documents), and CastString turns a CSV string
// into the value of a curated Parquet column. Both map an absent value to nil
// (SQL NULL / Parquet null).
//
// Nested fields and silent NULLs: a Column takes a top-level Field or a Path
// through nested objects (address.city); a missing or null parent is a
// missing value. Because a misspelt or mismatched field would otherwise load
// a column of NULLs without a word, an ObjectMapper (Mapper.Object, one per
// object) records which declared fields no record had and which undeclared
// fields occurred (top-level ones, and keys inside a declared parent such as
// address.zipcode), and returns a Report at the end of the object for the
// caller to log and count. MapperOptions set the policies: OnMissing warn
// (default) or error; Extra ignore, warn (default), error, or json (keep the
// undeclared fields of each record as one JSON object in a declared column).
// The bookkeeping costs no allocation per record once a field has been seen.
//
// Nothing in this package keeps global state; a Mapper is safe for
// concurrent use once built; an ObjectMapper belongs to one goroutine.
package format
