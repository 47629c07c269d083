// sql.mjs runs SQL statements with DuckDB in an in-memory database and
// prints nothing on success. bench (`go run ./bench`) times this whole
// process, Node and DuckDB start-up included, as the reference for the
// curate job:
//
//   node tools/duckcheck/sql.mjs "SET threads = 2; COPY (SELECT ...) TO 'out.parquet' (FORMAT parquet, COMPRESSION snappy)"
//
// Any failure prints the error to stderr and exits 1.
import { DuckDBInstance } from '@duckdb/node-api';

async function main() {
  const sql = process.argv[2];
  if (!sql) {
    throw new Error('usage: node sql.mjs "SQL"');
  }
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  try {
    await conn.run(sql);
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

main().catch((err) => {
  process.stderr.write(`sql.mjs: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
