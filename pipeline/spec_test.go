package pipeline

import "testing"

func TestLoadsSkipFolderMarkersAndHiddenFilesBelowTheirPrefix(t *testing.T) {
	l := Load{On: On{Prefix: "curated/_by_day/"}}
	for key, want := range map[string]bool{
		"curated/_by_day/2020/part-00000-x-c000.snappy.parquet": true, // hidden only above the prefix
		"curated/_by_day/2020/_SUCCESS":                         false,
		"curated/_by_day/.staging/part-0.parquet":               false,
		"curated/_by_day/2020/":                                 false,
	} {
		if got := l.Takes(key); got != want {
			t.Errorf("Takes(%q) = %v, want %v", key, got, want)
		}
	}
	for key, want := range map[string]string{"a/b.CSV.zst": FormatCSV, "x.parquet": FormatParquet, "y.jsonl.gz": FormatNDJSON, "z.json.zstd": FormatJSON, "w": FormatJSON} {
		if got := (Load{}).FormatFor(key); got != want {
			t.Errorf("FormatFor(%q) = %s, want %s", key, got, want)
		}
	}
}
