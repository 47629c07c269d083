package lineage

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"strings"
)

// ObjectDataset names the object key in the store storeURL (a sluice store
// URL) by OpenLineage's naming conventions:
//
//	s3://bucket?region=…       namespace "s3://bucket", name key
//	file:///abs/dir            namespace "file", name /abs/dir/key
//
// Query parameters (endpoint, region, credentials) are not part of the
// namespace: an S3-compatible server's bucket is named like an AWS one.
// Other schemes (mem://) have no lineage name and are an error.
func ObjectDataset(storeURL, key string) (Dataset, error) {
	u, err := url.Parse(storeURL)
	if err != nil {
		return Dataset{}, fmt.Errorf("lineage: invalid store URL %s: %v", redactRaw(storeURL), urlReason(err))
	}
	if key == "" {
		return Dataset{}, fmt.Errorf("lineage: store %s: empty object key", redact(u))
	}
	switch strings.ToLower(u.Scheme) {
	case "s3":
		if u.Host == "" {
			return Dataset{}, fmt.Errorf("lineage: store %s has no bucket", redact(u))
		}
		return Dataset{Namespace: "s3://" + u.Host, Name: key}, nil
	case "file":
		if (u.Host != "" && u.Host != "localhost") || !path.IsAbs(u.Path) {
			return Dataset{}, fmt.Errorf("lineage: store %s: file URL needs an absolute path on this machine, like file:///abs/dir", redact(u))
		}
		return Dataset{Namespace: "file", Name: path.Join(u.Path, key)}, nil
	}
	return Dataset{}, fmt.Errorf("lineage: store %s: no OpenLineage naming for scheme %q (s3:// and file:// have one)", redact(u), u.Scheme)
}

// TableDataset names a table in the warehouse warehouseURL (a sluice
// warehouse URL):
//
//	postgres://user:pw@host:port/db?schema=s   namespace "postgres://host:port", name "db.s.table"
//	sqlite:///abs/path.db                      namespace "sqlite:file:///abs/path.db", name "table"
//
// PostgreSQL follows OpenLineage's naming conventions: the port defaults to
// 5432, the schema to "public" (sluice's schema parameter), the database to
// the user name as libpq does, and a URL without a host (a Unix socket) is
// named "localhost". User and password never appear.
//
// The conventions have no entry for SQLite. The choice here is what
// OpenLineage's Spark integration emits for a SQLite table read or written
// over JDBC ("sqlite:" + the database file's URI as namespace, the table as
// name), so both name the same table alike; the namespace is the data
// source (one database file) as the conventions ask. A relative path
// (sqlite://./relative.db) is made absolute against the working directory,
// as the warehouse itself opens it.
func TableDataset(warehouseURL, table string) (Dataset, error) {
	if table == "" {
		return Dataset{}, fmt.Errorf("lineage: warehouse %s: empty table name", redactRaw(warehouseURL))
	}
	scheme, rest, ok := strings.Cut(warehouseURL, "://")
	if !ok {
		return Dataset{}, fmt.Errorf("lineage: invalid warehouse URL %s: no scheme", redactRaw(warehouseURL))
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		return postgresDataset(warehouseURL, table)
	case "sqlite":
		p, _, _ := strings.Cut(rest, "?")
		p, err := url.PathUnescape(p)
		if err != nil || p == "" || p == "/" {
			return Dataset{}, fmt.Errorf("lineage: invalid warehouse URL %s: no database file path", warehouseURL)
		}
		abs, err := filepath.Abs(filepath.FromSlash(p))
		if err != nil {
			return Dataset{}, fmt.Errorf("lineage: warehouse %s: %v", warehouseURL, err)
		}
		file := url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}
		return Dataset{Namespace: "sqlite:" + file.String(), Name: table}, nil
	}
	return Dataset{}, fmt.Errorf("lineage: warehouse %s: no OpenLineage naming for scheme %q (postgres:// and sqlite:// have one)", redactRaw(warehouseURL), scheme)
}

func postgresDataset(raw, table string) (Dataset, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Dataset{}, fmt.Errorf("lineage: invalid PostgreSQL URL %s: %v", redactRaw(raw), urlReason(err))
	}
	q := u.Query()
	host, port := u.Hostname(), u.Port()
	if host == "" {
		host = q.Get("host")
	}
	if host == "" || strings.HasPrefix(host, "/") {
		host = "localhost"
	}
	if port == "" {
		port = q.Get("port")
	}
	if port == "" {
		port = "5432"
	}
	db := strings.TrimPrefix(u.Path, "/")
	if db == "" {
		db = q.Get("dbname")
	}
	if db == "" {
		db = u.User.Username()
	}
	if db == "" {
		return Dataset{}, fmt.Errorf("lineage: PostgreSQL URL %s names no database", redact(u))
	}
	if strings.ContainsAny(db, "/@") {
		// A password with an unescaped "/" splits the URL there.
		return Dataset{}, fmt.Errorf("lineage: invalid PostgreSQL URL %s: the database name has \"/\" or \"@\" (percent-encode them in the password)", redactRaw(raw))
	}
	schema := q.Get("schema")
	if schema == "" {
		schema = "public"
	}
	return Dataset{
		Namespace: "postgres://" + net.JoinHostPort(host, port),
		Name:      db + "." + schema + "." + table,
	}, nil
}
