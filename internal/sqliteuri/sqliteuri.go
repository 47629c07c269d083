// Package sqliteuri makes the "file:" URIs the SQLite backends (the
// warehouse and the state) open, so that a path holding %, ? or # names
// that file: SQLite reads "%XX" escapes, and "?" and "#" end the path.
package sqliteuri

import "strings"

var escaper = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

// File is the URI of the database file at path with the query q (which
// starts with "?", or is empty).
func File(path, q string) string { return "file:" + escaper.Replace(path) + q }
