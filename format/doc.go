// Package format decodes the records sluice loads — JSON arrays, single JSON
// objects, NDJSON and CSV — and casts their values to column types.
//
// Decoders stream: DecodeJSON and DecodeCSV read their input once, hold one
// record at a time (plus a read buffer) and call a function per record, in
// order. Gzip input (detected by its magic bytes) is decompressed on the fly
// and a leading UTF-8 byte order mark is skipped. Input must be valid UTF-8.
//
// Every error about the data is a *RecordError that says which record, line,
// byte and column it concerns; callers prefix the object key. Errors returned
// by the per-record function are passed through unchanged.
//
// Casts: Mapper turns a decoded record into one Go value per warehouse column
// (the values warehouse/driver documents), and CastString turns a CSV string
// into the value of a curated Parquet column. Both map an absent value to nil
// (SQL NULL / Parquet null).
//
// Nothing in this package keeps global state; a Mapper is safe for
// concurrent use once built.
package format
