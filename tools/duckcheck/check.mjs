// check.mjs reads a directory of curated Parquet files with DuckDB — an
// independent reader — and prints one JSON object describing what it saw:
//
//   node tools/duckcheck/check.mjs DIR
//   {"columns":[{"name":"Entity","type":"VARCHAR"},...],"rows":4176,
//    "nulls":{"Entity":0,"Code":780,...},"sums":{"Year":...,"consumption":...}}
//
// It reads read_parquet('DIR/*.parquet'), so files and directories whose names
// start with "." or "_" (staging dirs, _SUCCESS) are not read, as in Spark.
// Sums are computed by DuckDB as DOUBLE for every numeric column. Any failure
// prints the error to stderr and exits 1. The Go test
// curate.TestDuckDBReadsCuratedHydropower runs it.
import { DuckDBInstance } from '@duckdb/node-api';
import path from 'node:path';

const numeric = new Set([
  'TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT',
  'UTINYINT', 'USMALLINT', 'UINTEGER', 'UBIGINT', 'UHUGEINT',
  'FLOAT', 'DOUBLE',
]);

function sqlString(s) {
  return "'" + s.replaceAll("'", "''") + "'";
}

function ident(s) {
  return '"' + s.replaceAll('"', '""') + '"';
}

async function main() {
  const dir = process.argv[2];
  if (!dir) {
    throw new Error('usage: node check.mjs DIR (a directory holding *.parquet files)');
  }
  const glob = path.join(path.resolve(dir), '*.parquet');
  const source = `read_parquet(${sqlString(glob)})`;
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  try {
    const desc = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`)).getRowObjectsJson();
    const columns = desc.map((r) => ({ name: String(r.column_name), type: String(r.column_type) }));
    const parts = ['count(*)::DOUBLE AS "rows"'];
    columns.forEach((c, i) => {
      parts.push(`(count(*) - count(${ident(c.name)}))::DOUBLE AS n${i}`);
      if (numeric.has(c.type)) {
        parts.push(`sum(${ident(c.name)})::DOUBLE AS s${i}`);
      }
    });
    const agg = (await conn.runAndReadAll(`SELECT ${parts.join(', ')} FROM ${source}`)).getRowObjects()[0];
    const out = { columns, rows: Number(agg.rows), nulls: {}, sums: {} };
    columns.forEach((c, i) => {
      out.nulls[c.name] = Number(agg[`n${i}`]);
      if (numeric.has(c.type)) {
        const s = agg[`s${i}`];
        out.sums[c.name] = s === null ? null : Number(s);
      }
    });
    process.stdout.write(JSON.stringify(out) + '\n');
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

main().catch((err) => {
  process.stderr.write(`duckcheck: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
