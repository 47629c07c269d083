package parquetbench

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"
)

// Column names and order of the hydropower data, as written to Parquet.
var columnNames = []string{"Entity", "Code", "Year", "consumption"}

// Column kinds in curate's vocabulary (format.Kind).
var columnKinds = []string{"string", "string", "int32", "float32"}

// BenchRows is the number of rows each benchmark writes.
const BenchRows = 1_000_000

// LoadHydropower reads the hydropower CSV at path (header Entity, Code, Year,
// Hydropower (Terawatt-hours)) into rows of []any: Entity and Code are string
// or nil when empty, Year is int32, consumption is float32.
func LoadHydropower(path string) ([][]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load hydropower data: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = 4
	r.ReuseRecord = false
	if _, err := r.Read(); err != nil {
		return nil, fmt.Errorf("load hydropower data %s: header: %w", path, err)
	}
	var rows [][]any
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("load hydropower data %s: %w", path, err)
		}
		year, err := strconv.ParseInt(rec[2], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("load hydropower data %s: line %d: Year %q: %w", path, line, rec[2], err)
		}
		c, err := strconv.ParseFloat(rec[3], 32)
		if err != nil {
			return nil, fmt.Errorf("load hydropower data %s: line %d: consumption %q: %w", path, line, rec[3], err)
		}
		rows = append(rows, []any{nullable(rec[0]), nullable(rec[1]), int32(year), float32(c)})
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("load hydropower data %s: no rows", path)
	}
	return rows, nil
}

// nullable maps the empty string to null (nil), as curate casts it.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Replicate returns n rows cycling through src in order. Each returned row
// is its own slice (as curate's decoder would produce), sharing the values.
func Replicate(src [][]any, n int) [][]any {
	out := make([][]any, n)
	for i := range out {
		out[i] = append([]any(nil), src[i%len(src)]...)
	}
	return out
}

// Summary is what a Parquet file must hold for the hydropower rows.
type Summary struct {
	Rows        int64
	EntityNulls int64
	CodeNulls   int64
	YearSum     int64
	Consumption float64 // sum of consumption, in row order, in float64
}

// Summarize computes the Summary of rows in memory.
func Summarize(rows [][]any) Summary {
	var s Summary
	for _, r := range rows {
		s.Rows++
		if r[0] == nil {
			s.EntityNulls++
		}
		if r[1] == nil {
			s.CodeNulls++
		}
		s.YearSum += int64(r[2].(int32))
		s.Consumption += float64(r[3].(float32))
	}
	return s
}
