// Package jsonbench measures JSON decoders on the work sluice's loads do:
// NDJSON bytes into the typed columnar batches of package schema (see
// README.md for what is measured, the figures and how to reproduce them).
// It is its own module so that the candidate libraries never enter
// sluice's go.mod.
package jsonbench
