"""Curate one hydropower JOB_DATE folder: CSV in, typed snappy Parquet out.

This is the PySpark equivalent of sluice's built-in curate job for the
hydropower reference (examples/hydropower/pipeline.yaml, package curate),
i.e. the reference seed's Spark step with its bugs fixed. sluice runs it
as the one step of a transient EMR cluster (runner emr) or as a job run of
an EMR Serverless application (runner emr-serverless); see README.md.

Arguments
---------
sluice appends, after the job's own spark.args::

    --run-id ID --group GROUP --inputs MANIFEST_URI --output OUTPUT_URI

MANIFEST_URI is an s3:// JSON Lines file with one {"key", "etag", "uri"}
object per input object version sluice decided this run is for; OUTPUT_URI
is the s3:// output folder (ending "/"). Arguments this script does not
know are logged and ignored (argparse's parse_known_args, abbreviations
off), so a spec's own spark.args can carry options for other tools; they
must not reuse sluice's four names. It knows one of its own:
--max-rows-per-file N (default 1000000, as curate).

What it does
------------
1. Reads the manifest. An empty manifest, a line that is not a JSON object
   with string "key" and "uri", or no ".csv" key at all fails the run.
   Keys not ending in ".csv" (case-insensitively) are skipped and logged,
   as curate reads only .csv objects of its input folder.
2. Checks that every listed .csv object exists (Hadoop FileSystem.exists);
   a missing one fails the run, naming it. (The seed exited 0 here.) When
   the file system reports an ETag (S3A does; EMRFS may not) and it differs
   from the manifest's, a warning says the object changed since sluice
   listed it: the newer version raises its own event, and sluice runs the
   group again for it.
3. Reads EVERY listed .csv object (the seed read one file per cluster), one
   file at a time, in key order: header row, every column a string
   (no schema inference), RFC 4180 quoting (escape '"'), quoted fields may
   span lines (multiLine), mode FAILFAST so a row whose field count differs
   from the header's fails the run (CSV column pruning is switched off for
   this session, or Spark would not notice surplus fields).
4. Checks each file's header: exactly the columns Entity, Code, Year and
   "Hydropower (Terawatt-hours)", in any order. A missing, extra or
   duplicate column fails the run naming the file.
5. Renames "Hydropower (Terawatt-hours)" to consumption; turns "" into null
   in every column (curate does the same for every kind: an empty Code
   becomes null, an empty Year or consumption too); casts Year to
   IntegerType (32-bit) and consumption to FloatType (32-bit).
6. Refuses values that do not cast instead of turning them into null, as
   curate does: a non-empty Year must be a base-10 integer (an optional
   sign, ASCII digits) within the 32-bit range; a non-empty consumption a
   decimal number (sign, digits, optional fraction and exponent) whose
   32-bit value is finite. Text with surrounding spaces, "5.0" for Year,
   "NaN", "Infinity", "1e39" (out of float range) all fail the run with a
   message naming the file, the column, how many values are bad, and the
   first bad record and its raw value, e.g.::

       s3://b/data/2020-08-07_2PM/x.csv: column Year: 2 values are not a
       32-bit integer; the first is record 3 (line 4 unless a quoted field
       spans lines): '20x1'

   Every file is validated BEFORE anything is written, so a data error
   never touches the previous output.
7. Writes snappy Parquet to OUTPUT_URI with mode("overwrite") (so a
   reprocessed JOB_DATE replaces its old output; the seed could never
   re-run a date), at most --max-rows-per-file rows per part, the rows
   coalesced into ceil(rows / max) partitions (one part for a small date;
   Spark may split a larger partition into -c001 files). Spark names the
   parts part-NNNNN-<uuid>-c000.snappy.parquet and its committer writes
   _SUCCESS last; sluice fails a run that leaves no _SUCCESS, so keep
   spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs at its
   default (true).

The schema is Entity string, Code string, Year int, consumption float,
every column nullable, as curate writes it.

Exit status: 0 when the output is committed; 2 for a bad input (the message
is on stderr and in the driver's log: EMR's step log / EMR Serverless's
SPARK_DRIVER stderr); Spark's own failures propagate as usual (non-zero).

Differences from curate that remain: curate also refuses bytes that are not
UTF-8 (Spark decodes them to U+FFFD) and accepts two forms only Go's parser
knows, hexadecimal floats ("0x1p-2") and digit separators ("1_000.5"),
which this script refuses; curate names the line of a bad value, this
script the record number (equal to line - 1 unless a field spans lines).

Requirements: Python 3.9+, PySpark 3.2+ (try_cast); EMR 7.x and EMR
Serverless 7.x ship Spark 3.5. No other dependency. The pure helpers
(parse_manifest, csv_inputs, check_header, is_int32_text, is_float_text)
import without PySpark, so they can be checked with plain python3.
"""

import argparse
import json
import logging
import math
import re
import struct
import sys
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

LOG = logging.getLogger("hydropower_curate")

# The CSV header and the output columns, as in examples/hydropower/pipeline.yaml.
RAW_CONSUMPTION = "Hydropower (Terawatt-hours)"
RENAME = {RAW_CONSUMPTION: "consumption"}
HEADER = ("Entity", "Code", "Year", RAW_CONSUMPTION)
OUTPUT_COLUMNS = ("Entity", "Code", "Year", "consumption")

DEFAULT_MAX_ROWS_PER_FILE = 1_000_000
EXIT_BAD_INPUT = 2

# What curate (Go's strconv) accepts, written without anchors: Python checks
# them with re.fullmatch, Spark with rlike and the anchors ^...\z (Java's
# "$" would also match before a trailing newline of a multi-line field).
INT_TEXT = r"[+-]?[0-9]+"
FLOAT_TEXT = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1


class BadInput(Exception):
    """An input problem: the run fails with this message and exit status 2."""


class Input(NamedTuple):
    """One object of the run's manifest."""

    key: str
    etag: str
    uri: str


def jvm_regex(text_pattern: str) -> str:
    """Returns the pattern anchored for Spark's rlike (Java regex, find())."""
    return "^(?:" + text_pattern + r")\z"


def is_int32_text(s: str) -> bool:
    """Reports whether s is a value curate casts to int32 (s non-empty)."""
    if re.fullmatch(INT_TEXT, s) is None:
        return False
    return INT32_MIN <= int(s) <= INT32_MAX


def is_float_text(s: str) -> bool:
    """Reports whether s is a decimal curate casts to a finite float32."""
    if re.fullmatch(FLOAT_TEXT, s) is None:
        return False
    try:
        struct.pack("<f", float(s))  # rounds to float32; raises when that is infinite
    except OverflowError:
        return False
    return True


def parse_manifest(lines: Sequence[str], where: str) -> List[Input]:
    """Parses the JSON Lines manifest; where names it in errors."""
    out: List[Input] = []
    seen = set()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise BadInput("%s: line %d is not JSON (%s): sluice writes one "
                           '{"key", "etag", "uri"} object per line' % (where, n, e))
        if not isinstance(obj, dict):
            raise BadInput("%s: line %d is not a JSON object" % (where, n))
        key, uri, etag = obj.get("key"), obj.get("uri"), obj.get("etag", "")
        if not isinstance(key, str) or not key or not isinstance(uri, str) or "://" not in uri:
            raise BadInput('%s: line %d has no string "key" and "uri" (an s3:// URI): %s'
                           % (where, n, line.strip()[:200]))
        if key in seen:
            continue
        seen.add(key)
        out.append(Input(key=key, etag=etag if isinstance(etag, str) else "", uri=uri))
    if not out:
        raise BadInput("%s lists no inputs: this run has nothing to curate "
                       "(upload the CSV files under the group's input folder)" % where)
    return out


def csv_inputs(inputs: Sequence[Input], where: str) -> Tuple[List[Input], List[Input]]:
    """Splits inputs into the .csv ones (sorted by key) and the skipped others."""
    csv = sorted((i for i in inputs if i.key.lower().endswith(".csv")), key=lambda i: i.key)
    skipped = [i for i in inputs if not i.key.lower().endswith(".csv")]
    if not csv:
        raise BadInput("%s lists %d inputs but no .csv object (%s): upload the CSV files"
                       % (where, len(inputs), ", ".join(i.key for i in inputs[:5])))
    return csv, skipped


def check_header(columns: Sequence[str], uri: str) -> None:
    """Fails unless the header holds exactly the expected columns."""
    if not columns:
        raise BadInput("%s: empty file: no header row" % uri)
    dup = sorted({c for c in columns if list(columns).count(c) > 1})
    missing = [c for c in HEADER if c not in columns]
    extra = [c for c in columns if c not in HEADER]
    if dup or missing or extra:
        parts = []
        if missing:
            parts.append("missing %s" % ", ".join(repr(c) for c in missing))
        if extra:
            parts.append("undeclared %s" % ", ".join(repr(c) for c in extra))
        if dup:
            parts.append("repeated %s" % ", ".join(repr(c) for c in dup))
        raise BadInput("%s: header %s: %s; the header must be %s"
                       % (uri, ",".join(columns), "; ".join(parts), ",".join(HEADER)))


def parse_args(argv: Sequence[str]) -> Tuple[argparse.Namespace, List[str]]:
    """Parses sluice's arguments and this script's own; returns the rest too."""
    # allow_abbrev=False: a spec's own "--out x" must not be taken for --output.
    p = argparse.ArgumentParser(prog="hydropower_curate.py", allow_abbrev=False,
                                description="Curate a hydropower JOB_DATE folder to snappy Parquet.")
    p.add_argument("--run-id", required=True, help="sluice's run ID (for logs)")
    p.add_argument("--group", required=True, help="the group, i.e. the JOB_DATE")
    p.add_argument("--inputs", required=True, help="s3:// URI of the run's input manifest (JSON Lines)")
    p.add_argument("--output", required=True, help="s3:// URI of the output folder")
    p.add_argument("--max-rows-per-file", type=int, default=DEFAULT_MAX_ROWS_PER_FILE,
                   help="rows per Parquet part at most (default %(default)s, as curate)")
    args, rest = p.parse_known_args(list(argv))
    if args.max_rows_per_file < 1:
        p.error("--max-rows-per-file must be at least 1")
    return args, rest


def read_manifest(spark, uri: str) -> List[str]:
    """Returns the manifest's lines; a missing manifest is a BadInput."""
    if not _fs_exists(spark, uri)[0]:
        raise BadInput("the input manifest %s does not exist: sluice writes it before it "
                       "submits the run; check the instance profile / execution role may "
                       "read _sluice/jobs/ in the bucket" % uri)
    return spark.sparkContext.textFile(uri, minPartitions=1).collect()


def _fs_exists(spark, uri: str) -> Tuple[bool, Optional[object]]:
    """Returns whether uri exists as a file, and its Hadoop FileStatus."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(path):
        return False, None
    status = fs.getFileStatus(path)
    if status.isDirectory():
        raise BadInput("%s is a folder, not an object: the manifest lists objects" % uri)
    return True, status


def _etag_of(status) -> str:
    """Returns the ETag a Hadoop FileStatus reports, or "" (EtagSource is optional)."""
    try:
        etag = status.getEtag()
    except Exception:  # py4j: no such method on this file system's status
        return ""
    return (etag or "").strip('"')


def check_inputs_exist(spark, inputs: Sequence[Input]) -> None:
    """Fails naming every listed input that is missing."""
    missing = []
    for i in inputs:
        ok, status = _fs_exists(spark, i.uri)
        if not ok:
            missing.append(i.uri)
            continue
        etag = _etag_of(status)
        if etag and i.etag and etag != i.etag.strip('"'):
            LOG.warning("%s changed since sluice listed it (ETag %s, now %s): this run reads "
                        "the newer version; sluice runs the group again for it", i.uri, i.etag, etag)
    if missing:
        raise BadInput("%d of %d inputs are missing: %s (deleted after sluice listed them?)"
                       % (len(missing), len(inputs), ", ".join(missing)))


def read_csv(spark, uri: str):
    """Reads one CSV object, every column a string, failing on ragged rows."""
    return (spark.read
            .option("header", "true")
            .option("inferSchema", "false")
            .option("multiLine", "true")
            .option("escape", '"')
            .option("mode", "FAILFAST")
            .option("encoding", "UTF-8")
            .csv(uri))


def typed_file(spark, uri: str):
    """Returns one file's rows with typed columns and validation flags."""
    from pyspark.sql import functions as F

    try:
        raw = read_csv(spark, uri)
        columns = raw.columns
    except Exception as e:  # an empty file Spark cannot infer a header from, a read error
        raise BadInput("%s: cannot read its header row: %s" % (uri, _first_line(e)))
    check_header(columns, uri)
    df = raw
    for src, dst in RENAME.items():
        df = df.withColumnRenamed(src, dst)
    # The record number: a multi-line CSV file is one partition, read in order.
    df = df.withColumn("_record", F.monotonically_increasing_id() + 1)
    for c in OUTPUT_COLUMNS:
        df = df.withColumn(c, F.when(F.col(c) == "", None).otherwise(F.col(c)))
    df = (df
          .withColumn("_raw_Year", F.col("Year"))
          .withColumn("_raw_consumption", F.col("consumption"))
          .withColumn("Year", F.expr("try_cast(`Year` AS INT)"))
          .withColumn("consumption", F.expr("try_cast(`consumption` AS FLOAT)")))
    bad_year = F.col("_raw_Year").isNotNull() & (
        ~F.col("_raw_Year").rlike(jvm_regex(INT_TEXT)) | F.col("Year").isNull())
    bad_consumption = F.col("_raw_consumption").isNotNull() & (
        ~F.col("_raw_consumption").rlike(jvm_regex(FLOAT_TEXT))
        | F.col("consumption").isNull()
        | F.isnan(F.col("consumption"))
        | (F.abs(F.col("consumption")) == F.lit(float("inf"))))
    return (df
            .withColumn("_bad_Year", bad_year)
            .withColumn("_bad_consumption", bad_consumption))


WANT = {"Year": "a 32-bit integer", "consumption": "a finite 32-bit float (a decimal number)"}


def validate(df, uri: str) -> int:
    """Fails on the first column with values that do not cast; returns the row count."""
    from pyspark.sql import functions as F

    aggs = [F.count(F.lit(1)).alias("rows")]
    for c in WANT:
        flag = F.col("_bad_" + c)
        aggs.append(F.sum(flag.cast("long")).alias("bad_" + c))
        aggs.append(F.min(F.when(flag, F.col("_record"))).alias("first_" + c))
    try:
        r = df.agg(*aggs).collect()[0]
    except Exception as e:  # Spark's FAILFAST error, a read error
        raise BadInput("%s: reading it failed (a row whose field count differs from the "
                       "header's, or a read error): %s" % (uri, _first_line(e)))
    for c, want in WANT.items():
        bad = r["bad_" + c] or 0
        if bad:
            rec = r["first_" + c]
            value = df.where(F.col("_record") == rec).select("_raw_" + c).first()[0]
            raise BadInput("%s: column %s: %d value%s not %s; the first is record %d "
                           "(line %d unless a quoted field spans lines): %r"
                           % (uri, _raw_name(c), bad, " is" if bad == 1 else "s are", want,
                              rec, rec + 1, value))
    return int(r["rows"])


def _raw_name(c: str) -> str:
    return RAW_CONSUMPTION + " (consumption)" if c == "consumption" else c


def _first_line(e: Exception) -> str:
    s = str(e).strip()
    for line in s.splitlines():
        if "Malformed" in line or "Exception" in line:
            return line.strip()[:500]
    return s.splitlines()[0][:500] if s else type(e).__name__


def run(spark, args: argparse.Namespace) -> Dict[str, int]:
    """Curates the run's inputs into args.output; returns counts for the log."""
    from functools import reduce

    from pyspark import StorageLevel

    # Without pruning the CSV parser sees every field, so FAILFAST also
    # catches rows with surplus fields.
    spark.conf.set("spark.sql.csv.parser.columnPruning.enabled", "false")

    inputs = parse_manifest(read_manifest(spark, args.inputs), args.inputs)
    csv, skipped = csv_inputs(inputs, args.inputs)
    for i in skipped:
        LOG.info("skip %s: not a .csv object", i.key)
    check_inputs_exist(spark, csv)

    frames, rows = [], 0
    for i in csv:
        df = typed_file(spark, i.uri).persist(StorageLevel.MEMORY_AND_DISK)
        n = validate(df, i.uri)
        LOG.info("read %s: %d rows", i.uri, n)
        rows += n
        frames.append(df.select(*OUTPUT_COLUMNS))

    out = reduce(lambda a, b: a.unionByName(b), frames)
    parts = max(1, math.ceil(rows / args.max_rows_per_file))
    if parts < out.rdd.getNumPartitions():
        out = out.coalesce(parts)
    (out.write
     .mode("overwrite")
     .option("compression", "snappy")
     .option("maxRecordsPerFile", args.max_rows_per_file)
     .parquet(args.output))
    return {"inputs": len(csv), "rows": rows}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the job; returns the process exit status."""
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="hydropower_curate: %(levelname)s %(message)s")
    args, rest = parse_args(sys.argv[1:] if argv is None else argv)
    if rest:
        LOG.info("ignoring arguments this script does not know: %s", " ".join(rest))

    from pyspark.sql import SparkSession

    spark = (SparkSession.builder
             .appName("sluice hydropower %s run %s" % (args.group, args.run_id))
             .getOrCreate())
    try:
        counts = run(spark, args)
    except BadInput as e:
        LOG.error("run %s, group %s: %s", args.run_id, args.group, e)
        return EXIT_BAD_INPUT
    finally:
        spark.stop()
    LOG.info("run %s, group %s: wrote %d rows from %d inputs to %s",
             args.run_id, args.group, counts["rows"], counts["inputs"], args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
