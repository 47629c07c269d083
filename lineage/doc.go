// Package lineage emits OpenLineage run events (https://openlineage.io/spec)
// so that a lineage server such as Marquez can show which runs read and
// wrote which objects and tables.
//
// # What is emitted
//
// One RunEvent per transition of a run: START when it begins, COMPLETE or
// FAIL (or ABORT) when it ends, RUNNING in between if wanted; all events of
// a run share its Run.RunID (NewRunID). An event names its Job
// (namespace, name), its input and output Datasets, and these facets:
//
//	run      errorMessage (on FAIL; see ErrorMessage), nominalTime, parent
//	job      jobType
//	dataset  schema (column names and types)
//	output   outputStatistics (rows, bytes, files written)
//
// The events follow OpenLineage spec 2-0-2 and the facet schema versions
// vendored in lineagetest/schemas; the tests validate produced events
// against those schemas with package lineagetest, which other packages'
// tests use too (it is never linked into the sluice binary). Every facet
// carries _producer and _schemaURL, filled in when left empty.
//
// The types are written here rather than taken from OpenLineage's Go
// client (github.com/OpenLineage/openlineage/client/go) because that
// module is not served by the module proxy sluice builds from, and the
// events are a few small JSON types.
//
// # Dataset names
//
// ObjectDataset and TableDataset turn sluice's store and warehouse URLs
// into the namespace and name OpenLineage's naming conventions give, so
// that other producers' events about the same data join up:
//
//	s3://bucket + key                 s3://bucket           key
//	file:///dir + key                 file                  /dir/key
//	postgres://host:port/db?schema=s  postgres://host:port  db.s.table (schema default public)
//	sqlite:///abs/path.db             sqlite:file:///abs/path.db  table
//
// Namespaces never hold user names, passwords, tokens or query parameters.
// SQLite has no entry in the conventions; see TableDataset for the choice.
//
// # Emitting
//
// Open returns an Emitter for a file:///abs/path.ndjson (one JSON event per
// line, appended) or an http(s):// endpoint (one POST per event, bearer
// token from $OPENLINEAGE_API_KEY). An empty URL gives a nil *Emitter, and
// a nil *Emitter's Emit does nothing, so callers need no checks. An Emitter
// is safe for concurrent use.
//
// Lineage must never fail a pipeline: Emit returns its error (naming the
// destination, secrets hidden) and the caller logs it and carries on.
// Events are not queued or retried. Callers emit COMPLETE only once the
// work it reports is durable (rows committed, Parquet committed), so that
// a COMPLETE event never describes data that could still be lost.
package lineage
