package pipeline

import (
	"testing"
)

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

func TestServeAndLineageAreReadAndSLUICE_LINEAGEReplacesTheFilesValue(t *testing.T) {
	const y = "name: t\nserve: {address: 0.0.0.0:9999, tls_cert: /c.pem, tls_key: /k.pem}\nlineage: http://marquez:5000/api/v1/lineage\nloads: {l: {on: {prefix: in/}, table: t, columns: {id: bigint}}}\n"
	s, err := Parse("p.yaml", []byte(y), func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if s.Serve != (Serve{Address: "0.0.0.0:9999", TLSCert: "/c.pem", TLSKey: "/k.pem"}) || s.Lineage != "http://marquez:5000/api/v1/lineage" {
		t.Errorf("serve %+v, lineage %q", s.Serve, s.Lineage)
	}
	s, err = Parse("p.yaml", []byte(y), func(k string) string {
		if k == "SLUICE_LINEAGE" {
			return "file:///tmp/l.ndjson"
		}
		return ""
	})
	if err != nil || s.Lineage != "file:///tmp/l.ndjson" {
		t.Errorf("with SLUICE_LINEAGE: lineage %q, %v", s.Lineage, err)
	}
}
