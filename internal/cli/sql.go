package cli

import (
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
	register(command{name: "sql", args: `[--format table|csv|json] [--no-header] "QUERY"`,
		summary: "query the warehouse", run: runSQL})
}

func runSQL(ctx context.Context, a *app, args []string) error {
	fs := a.flags("sql")
	whURL := fs.String("warehouse", "", "warehouse URL (default $SLUICE_WAREHOUSE, else the data dir's SQLite)")
	format := fs.String("format", "table", "output format: table, csv or json")
	noHeader := fs.Bool("no-header", false, "omit the header row (table and csv)")
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
	u := a.envOr(*whURL, "SLUICE_WAREHOUSE")
	if u == "" {
		dir, err := a.existingDir()
		if err != nil {
			return err
		}
		u = dir.WarehouseURL()
	}
	wh, err := warehouse.OpenReadOnly(ctx, u)
	if err != nil {
		return err
	}
	defer wh.Close()
	cols, rows, err := wh.Query(ctx, pos[0])
	if err != nil {
		if msg := err.Error(); strings.Contains(msg, "readonly database") || strings.Contains(msg, "read-only transaction") {
			return fmt.Errorf("%w\nsluice sql runs read-only queries; change data through a pipeline, or with the database's own client", err)
		}
		return err
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
		out := make([]map[string]any, len(rows))
		for i, r := range rows {
			m := make(map[string]any, len(cols))
			for j, c := range cols {
				v := r[j]
				if b, ok := v.([]byte); ok {
					v = string(b)
				}
				m[c] = v
			}
			out[i] = m
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
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
