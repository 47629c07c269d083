// sql.mjs runs SQL statements in an in-memory DuckDB — an independent
// Parquet writer and reader for tests — and prints the rows of the last
// statement as a JSON array of objects (DuckDB's JSON rendering: big
// integers and decimals as strings):
//
//   node tools/duckcheck/sql.mjs "COPY (SELECT 1 AS x) TO '/tmp/x.parquet' (FORMAT parquet)" \
//     "SELECT * FROM read_parquet('/tmp/x.parquet')"
//   [{"x":1}]
//
// Any failure prints the error to stderr and exits 1. The Go tests of
// package format run it, and bench (`go run ./bench`) times this whole
// process, Node and DuckDB start-up included, as the curate job's
// reference ("SET threads = 2; COPY (SELECT ...) TO ... (FORMAT parquet,
// COMPRESSION snappy)").
import { DuckDBInstance } from '@duckdb/node-api';

async function main() {
  const stmts = process.argv.slice(2);
  if (stmts.length === 0) {
    throw new Error('usage: node sql.mjs STATEMENT...');
  }
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  try {
    let rows = [];
    for (const sql of stmts) {
      rows = (await conn.runAndReadAll(sql)).getRowObjectsJson();
    }
    process.stdout.write(JSON.stringify(rows) + '\n');
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

main().catch((err) => {
  process.stderr.write(`duckdb: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
