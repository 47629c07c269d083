"""Checks hydropower_curate.py's pure helpers without PySpark (example_test.go runs it).

    python3 -B check_helpers.py cast      < {"int32": [...], "float32": [...]}
        prints {"int32": [bool...], "float32": [bool...]}: whether the script
        accepts each CSV value ("" is null, as in the script)
    python3 -B check_helpers.py selftest
        checks the manifest, header and argument handling; prints "ok N"
"""

import json
import sys

import hydropower_curate as h


def accepts(check, s):
    return s == "" or check(s)


def cast():
    values = json.load(sys.stdin)
    json.dump({
        "int32": [accepts(h.is_int32_text, s) for s in values["int32"]],
        "float32": [accepts(h.is_float_text, s) for s in values["float32"]],
    }, sys.stdout)


def fails(fn, *args):
    try:
        fn(*args)
    except h.BadInput as e:
        return str(e)
    raise AssertionError("%s%r did not fail" % (fn.__name__, args))


def selftest():
    n = 0
    where = "s3://b/_sluice/jobs/r1.inputs.jsonl"

    def check(cond, what):
        nonlocal n
        if not cond:
            raise AssertionError(what)
        n += 1

    lines = [
        '{"key": "data/d/b.csv", "etag": "e1", "uri": "s3://b/data/d/b.csv"}',
        "",
        '{"key": "data/d/A.CSV", "etag": "e2", "uri": "s3://b/data/d/A.CSV"}',
        '{"key": "data/d/notes.txt", "etag": "e3", "uri": "s3://b/data/d/notes.txt"}',
        '{"key": "data/d/b.csv", "etag": "e1", "uri": "s3://b/data/d/b.csv"}',
    ]
    inputs = h.parse_manifest(lines, where)
    check([i.key for i in inputs] == ["data/d/b.csv", "data/d/A.CSV", "data/d/notes.txt"],
          "every listed input is read once: %r" % (inputs,))
    csv, skipped = h.csv_inputs(inputs, where)
    check([i.key for i in csv] == ["data/d/A.CSV", "data/d/b.csv"], "csv inputs sorted by key: %r" % (csv,))
    check([i.key for i in skipped] == ["data/d/notes.txt"], "non-csv skipped: %r" % (skipped,))

    check("lists no inputs" in fails(h.parse_manifest, [], where), "an empty manifest fails")
    check("lists no inputs" in fails(h.parse_manifest, ["", "  "], where), "a blank manifest fails")
    check("line 2 is not JSON" in fails(h.parse_manifest, [lines[0], "{"], where), "bad JSON names its line")
    check("not a JSON object" in fails(h.parse_manifest, ["[1]"], where), "a non-object fails")
    check('no string "key" and "uri"' in fails(h.parse_manifest, ['{"key": "a.csv"}'], where), "uri is required")
    only_txt = h.parse_manifest([lines[3]], where)
    check("no .csv object" in fails(h.csv_inputs, only_txt, where), "no csv input fails")

    h.check_header(["Year", "Entity", "Hydropower (Terawatt-hours)", "Code"], "s3://b/x.csv")
    check(True, "header order is free")
    check("empty file" in fails(h.check_header, [], "s3://b/x.csv"), "an empty file fails")
    msg = fails(h.check_header, ["Entity", "Code", "Year"], "s3://b/x.csv")
    check("s3://b/x.csv" in msg and "missing 'Hydropower (Terawatt-hours)'" in msg, "a missing column is named: " + msg)
    msg = fails(h.check_header, ["Entity", "Code", "Year", "Hydropower (Terawatt-hours)", "Extra"], "s3://b/x.csv")
    check("undeclared 'Extra'" in msg, "an extra column is named: " + msg)
    msg = fails(h.check_header, ["Entity", "Code", "Year", "Year", "Hydropower (Terawatt-hours)"], "s3://b/x.csv")
    check("repeated 'Year'" in msg, "a repeated column is named: " + msg)

    args, rest = h.parse_args(["--own", "1", "--out", "x", "--run-id", "r1", "--group", "2020-08-07_2PM",
                               "--inputs", where, "--output", "s3://b/curated/2020-08-07_2PM/"])
    check((args.run_id, args.group, args.inputs, args.output, args.max_rows_per_file)
          == ("r1", "2020-08-07_2PM", where, "s3://b/curated/2020-08-07_2PM/", 1000000), "sluice's arguments: %r" % (args,))
    check(rest == ["--own", "1", "--out", "x"], "unknown arguments are kept aside, --out is no abbreviation: %r" % (rest,))
    args, _ = h.parse_args(["--max-rows-per-file", "10", "--run-id", "r", "--group", "g", "--inputs", "s3://b/m", "--output", "s3://b/o/"])
    check(args.max_rows_per_file == 10, "the script's own option")
    check(h.jvm_regex(h.INT_TEXT) == r"^(?:[+-]?[0-9]+)\z", "anchored for Java")
    print("ok %d" % n)


if __name__ == "__main__":
    {"cast": cast, "selftest": selftest}[sys.argv[1]]()
