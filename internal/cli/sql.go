package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicehq/sluice/warehouse"
	_ "github.com/sluicehq/sluice/warehouse/pgwh"     // registers postgres:// warehouses
	_ "github.com/sluicehq/sluice/warehouse/sqlitewh" // registers sqlite:// warehouses
)

func init() {
	register(command{name: "sql", args: `[--format table|csv|json] [--no-header] [-f PIPELINE.yaml] [-v] "QUERY"`,
		summary: "query the warehouse (read-only): the one the data dir's pipeline loads into", run: runSQL})
}

func runSQL(ctx context.Context, a *app, args []string) error {
	fs := a.flags("sql")
	whURL := fs.String("warehouse", "", "warehouse URL (default: -f's spec's, else $SLUICE_WAREHOUSE, else the one the data dir's last run or demo recorded, else the data dir's SQLite)")
	file := fs.String("f", "", "pipeline spec whose warehouse to query")
	format := fs.String("format", "table", "output format: table, csv or json (an array of objects, keys in select order)")
	noHeader := fs.Bool("no-header", false, "omit the header row (table and csv)")
	verbose := fs.Bool("v", false, "say on stderr which warehouse is queried and why")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("want exactly one QUERY argument (quote it)")
	}
	switch *format {
	case "table", "csv", "json":
	default:
		return usagef("--format %q: want table, csv or json", *format)
	}
	dir, err := a.dir()
	if err != nil {
		return err
	}
	wh := target{what: "warehouse", url: *whURL, from: fromFlag, env: "SLUICE_WAREHOUSE"}
	if wh.url == "" {
		if *file == "" && a.getenv(wh.env) == "" {
			if dir, err = a.existingDir(); err != nil {
				return err
			}
		}
		if wh, _, err = a.readTargets(dir, *file); err != nil {
			return err
		}
	}
	if *verbose {
		a.note("sql", dir, wh)
	}
	w, err := warehouse.OpenReadOnly(ctx, wh.url)
	if err != nil {
		return wh.openErr(dir, err)
	}
	defer w.Close()
	cols, rows, err := w.Query(ctx, pos[0])
	if err != nil {
		if msg := err.Error(); strings.Contains(msg, "readonly database") || strings.Contains(msg, "read-only transaction") {
			return fmt.Errorf("%w\nsluice sql runs read-only queries; change data through a pipeline, or with the database's own client", err)
		}
		return wh.openErr(dir, err)
	}
	return writeRows(a.stdout, *format, !*noHeader, cols, rows)
}

func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

func writeRows(w io.Writer, format string, header bool, cols []string, rows [][]any) error {
	switch format {
	case "csv":
		cw := csv.NewWriter(w)
		if header {
			cw.Write(cols)
		}
		for _, r := range rows {
			rec := make([]string, len(r))
			for i, v := range r {
				rec[i] = cell(v)
			}
			cw.Write(rec)
		}
		cw.Flush()
		return cw.Error()
	case "json":
		return writeJSON(w, cols, rows)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if header {
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	for _, r := range rows {
		rec := make([]string, len(r))
		for i, v := range r {
			s := strings.ReplaceAll(cell(v), "\n", `\n`)
			if len(s) > 60 {
				s = s[:57] + "..."
			}
			rec[i] = s
		}
		fmt.Fprintln(tw, strings.Join(rec, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if header {
		fmt.Fprintf(w, "(%d row(s))\n", len(rows))
	}
	return nil
}

func openWarehouse(ctx context.Context, u string) (*warehouse.Warehouse, error) {
	return warehouse.Open(ctx, u)
}

// writeJSON writes rows as a JSON array with one object a line, its keys
// in the query's column order (a Go map would sort them). Values are
// encoded by encoding/json, bytes as text; one it cannot encode (NaN, a
// type without a JSON form) is written as its text.
func writeJSON(w io.Writer, cols []string, rows [][]any) error {
	bw := bufio.NewWriter(w)
	keys := make([][]byte, len(cols))
	for i, c := range cols {
		keys[i] = jsonValue(c)
	}
	bw.WriteString("[")
	for i, r := range rows {
		if i > 0 {
			bw.WriteString(",")
		}
		bw.WriteString("\n  {")
		for j, v := range r {
			if j > 0 {
				bw.WriteString(", ")
			}
			bw.Write(keys[j])
			bw.WriteString(": ")
			if b, ok := v.([]byte); ok {
				v = string(b)
			}
			bw.Write(jsonValue(v))
		}
		bw.WriteString("}")
	}
	if len(rows) > 0 {
		bw.WriteString("\n")
	}
	bw.WriteString("]\n")
	return bw.Flush()
}

// jsonValue is v in JSON, without HTML escaping; cell(v) as a string when
// encoding/json refuses v.
func jsonValue(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		b.Reset()
		enc.Encode(cell(v))
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
