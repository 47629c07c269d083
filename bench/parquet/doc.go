// Package parquetbench measures the two pure-Go Parquet writers that
// DESIGN.md names, github.com/parquet-go/parquet-go (what sluice's curate
// package uses) and github.com/apache/arrow-go/v18 (pqarrow), writing the same
// rows: the hydropower reference data (testdata/hydropower-consumption.csv)
// replicated to 1,000,000 rows, snappy-compressed, every column OPTIONAL.
//
// It is its own Go module so that arrow-go never enters sluice's go.mod or
// its `go test ./...`. The benchmarks are in bench_test.go, the checks that
// both writers wrote the right rows in verify_test.go, the dependency and
// binary-size probes in sizes/ (run by sizes.sh), and the figures, with the
// commands that reproduce them, in README.md and results/.
//
// Both writers start from the same input: one []any per row (string, int32,
// float32, or nil for null), which is what curate's CSV decoder hands its
// Parquet stager. Parsing the CSV happens once, before any timing.
package parquetbench
