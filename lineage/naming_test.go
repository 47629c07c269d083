package lineage

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestObjectDatasetFollowsTheNamingConventions(t *testing.T) {
	for _, tc := range []struct {
		store, key    string
		wantNamespace string
		wantName      string
	}{
		{"s3://lake", "raw/posts/dt=2026-08-07/posts.json", "s3://lake", "raw/posts/dt=2026-08-07/posts.json"},
		{"s3://lake?endpoint=http://127.0.0.1:7070&region=us-east-1&use_path_style=true", "a/b.csv", "s3://lake", "a/b.csv"},
		{"S3://lake/", "k", "s3://lake", "k"},
		{"file:///var/sluice/store", "raw/2020-08-07_2PM/hydropower-consumption.csv", "file", "/var/sluice/store/raw/2020-08-07_2PM/hydropower-consumption.csv"},
		{"file://localhost/var/sluice/store/", "a b.csv", "file", "/var/sluice/store/a b.csv"},
	} {
		d, err := ObjectDataset(tc.store, tc.key)
		if err != nil {
			t.Errorf("ObjectDataset(%q, %q): %v", tc.store, tc.key, err)
			continue
		}
		if d.Namespace != tc.wantNamespace || d.Name != tc.wantName {
			t.Errorf("ObjectDataset(%q, %q) = %q %q, want %q %q", tc.store, tc.key, d.Namespace, d.Name, tc.wantNamespace, tc.wantName)
		}
	}
}

func TestObjectDatasetRefusesStoresWithoutALineageName(t *testing.T) {
	for _, tc := range []struct{ store, key, wantErr string }{
		{"mem://", "k", "no OpenLineage naming"},
		{"s3://", "k", "no bucket"},
		{"file://./rel", "k", "absolute path"},
		{"file://nas1/export/store", "k", "absolute path on this machine"},
		{"s3://lake", "", "empty object key"},
		{"s3://lake?secret_access_key=s3cr3tvalue", "", "xxxxx"},
	} {
		_, err := ObjectDataset(tc.store, tc.key)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("ObjectDataset(%q, %q): error %v, want one saying %q", tc.store, tc.key, err, tc.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3tvalue") {
			t.Errorf("error shows the secret: %v", err)
		}
	}
}

func TestTableDatasetFollowsTheNamingConventions(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	relDB := (&url.URL{Scheme: "file", Path: filepath.Join(wd, "sluice-data", "warehouse.db")}).String()
	for _, tc := range []struct {
		warehouse, table string
		wantNamespace    string
		wantName         string
	}{
		{"postgres://postgres@127.0.0.1:5432/test", "posts", "postgres://127.0.0.1:5432", "test.public.posts"},
		{"postgres://loader:hunter2secret@db.example.com:5433/lake?sslmode=require&schema=curated", "posts", "postgres://db.example.com:5433", "lake.curated.posts"},
		{"postgresql://loader:hunter2secret@db.example.com/lake?schema=", "posts", "postgres://db.example.com:5432", "lake.public.posts"},
		{"postgres://loader@[::1]/lake", "posts", "postgres://[::1]:5432", "lake.public.posts"},
		{"postgres:///lake?host=/var/run/postgresql", "posts", "postgres://localhost:5432", "lake.public.posts"},
		{"postgres://?host=db.internal&port=6432&dbname=lake&user=u", "posts", "postgres://db.internal:6432", "lake.public.posts"},
		{"postgres://alice@db:6000", "posts", "postgres://db:6000", "alice.public.posts"},
		{"sqlite:///var/sluice/warehouse.db", "posts", "sqlite:file:///var/sluice/warehouse.db", "posts"},
		{"sqlite:///var/sluice/my%20warehouse.db", "posts", "sqlite:file:///var/sluice/my%20warehouse.db", "posts"},
		{"sqlite://./sluice-data/warehouse.db", "posts", "sqlite:" + relDB, "posts"},
	} {
		d, err := TableDataset(tc.warehouse, tc.table)
		if err != nil {
			t.Errorf("TableDataset(%q, %q): %v", tc.warehouse, tc.table, err)
			continue
		}
		if d.Namespace != tc.wantNamespace || d.Name != tc.wantName {
			t.Errorf("TableDataset(%q, %q) = %q %q, want %q %q", tc.warehouse, tc.table, d.Namespace, d.Name, tc.wantNamespace, tc.wantName)
		}
		if strings.Contains(d.Namespace+d.Name, "hunter2secret") || strings.Contains(d.Namespace+d.Name, "loader") {
			t.Errorf("TableDataset(%q) shows user or password: %q %q", tc.warehouse, d.Namespace, d.Name)
		}
	}
}

func TestTableDatasetErrorsHidePasswords(t *testing.T) {
	for _, tc := range []struct{ warehouse, table, wantErr string }{
		{"postgres://loader:hunter2secret@db/lake", "", "empty table name"},
		{"postgres://:hunter2secret@db", "t", "names no database"},
		{"postgres://loader:hunter2secret@db:bad/lake", "t", "invalid PostgreSQL URL"},
		{"postgres://loader:12/hunter2secret@db/lake", "t", "invalid PostgreSQL URL"}, // unescaped "/" in the password
		{"mysql://loader:hunter2secret@db/lake", "t", "no OpenLineage naming"},
		{"sqlite://", "t", "no database file path"},
		{"warehouse.db", "t", "no scheme"},
	} {
		_, err := TableDataset(tc.warehouse, tc.table)
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("TableDataset(%q, %q): error %v, want one saying %q", tc.warehouse, tc.table, err, tc.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2secret") {
			t.Errorf("TableDataset(%q): error shows the password: %v", tc.warehouse, err)
		}
	}
}

// FuzzTableDatasetNeverShowsThePassword builds PostgreSQL URLs from fuzzed
// parts and checks that what TableDataset returns (dataset or error) does
// not depend on the password: were any of it shown, changing the password
// would change the result.
func FuzzTableDatasetNeverShowsThePassword(f *testing.F) {
	f.Add("loader", "hunter2secret", "db.example:5433", "/lake", "schema=curated", "posts")
	f.Add("", "p@ss/w?rd#1", "h", "", "", "t")
	f.Add("u", "123456", "[::1]:5", "/a@b", "host=/tmp&dbname=x", "t")
	f.Add("u", "pw", "h:bad", "/db", "", "t")
	f.Fuzz(func(t *testing.T, user, password, host, path, query, table string) {
		result := func(password string) (string, string) {
			u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: host, Path: path, RawQuery: query}
			d, err := TableDataset(u.String(), table)
			if err != nil {
				return err.Error(), u.String()
			}
			return d.Namespace + " " + d.Name, u.String()
		}
		got, raw := result(password)
		other, _ := result("other-password")
		if got != other {
			t.Fatalf("TableDataset(%q) depends on the password:\n%s\nwith another password:\n%s", raw, got, other)
		}
	})
}
