// Package pgwh is the PostgreSQL warehouse backend (pgx/v5, binary COPY). It
// implements warehouse/driver and passes warehouse/drivertest.
//
// URL: postgres://user[:password]@host[:port]/db[?sslmode=...&schema=name]
// (postgresql:// too). The schema parameter, which pgx does not know,
// selects the schema that holds the ledger and the tables (default public);
// it is created when missing and becomes the connections' search_path, so
// Query sees the tables unqualified.
//
// Column types: bigint, integer, double precision, text, boolean,
// timestamptz, date and jsonb.
//
// Load runs in one transaction: it inserts the ledger row first (a
// concurrent load of the same version blocks on the ledger's primary key
// until the first commits, then finds the row and writes nothing), then
// appends with binary COPY, or for merge COPYs into a temporary staging table
// and upserts the last row of each key from it. Cancelling ctx rolls back.
// Errors of SQLSTATE class 22 (data exception, e.g. a NUL character in
// text) and 23 (integrity constraint violation, e.g. a duplicate primary
// key) wrap driver.ErrInvalidData, keeping PostgreSQL's message with the
// COPY line and column when it gives them; other errors (connection,
// timeout, serialization failure, deadlock) do not.
//
// Query runs in a READ ONLY transaction and returns int64 (any integer
// column), float64, string (text, JSON text, numeric as decimal text), bool,
// time.Time in UTC, nil, or what pgx returns for other types.
//
// Passwords are never included in errors.
package pgwh

import (
	"context"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sluicehq/sluice/warehouse/driver"
)

const ledgerTable = driver.LedgerTable

// ddlLockKey is the advisory lock key that serialises sluice's DDL
// (CREATE SCHEMA / CREATE TABLE IF NOT EXISTS race on the catalogs).
const ddlLockKey = 0x736c75696365 // "sluice"

// Warehouse is a PostgreSQL schema used as a warehouse. It is safe for
// concurrent use.
type Warehouse struct {
	pool   *pgxpool.Pool
	schema string
	where  string // "host:port/db" for messages, no secrets
}

var _ driver.Warehouse = (*Warehouse)(nil)

// SplitURL removes sluice's own schema parameter from a PostgreSQL URL and
// returns the URL for pgx and the schema ("public" when absent). It checks
// the scheme and the schema name.
func SplitURL(raw string) (pgxURL, schema string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("invalid PostgreSQL URL: %v", redactErr(err, raw))
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return "", "", fmt.Errorf("invalid PostgreSQL URL %s: scheme must be postgres:// or postgresql://", u.Redacted())
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", "", fmt.Errorf("invalid PostgreSQL URL %s: query: %v", u.Redacted(), err)
	}
	schema = "public"
	if s, ok := q["schema"]; ok {
		if len(s) != 1 || !validIdent(s[0]) {
			return "", "", fmt.Errorf("invalid PostgreSQL URL %s: schema must be one name of letters, digits and _ (not starting with a digit)", u.Redacted())
		}
		schema = s[0]
		q.Del("schema")
		u.RawQuery = q.Encode()
	}
	return u.String(), schema, nil
}

// redactErr keeps a url.Parse error from repeating a password.
func redactErr(err error, raw string) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	if strings.Contains(err.Error(), raw) {
		return errors.New("malformed URL")
	}
	return err
}

func validIdent(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Open connects to the PostgreSQL server at rawURL, creates the schema and
// the ledger table when missing, and returns the warehouse.
func Open(ctx context.Context, rawURL string) (*Warehouse, error) {
	pgxURL, schema, err := SplitURL(rawURL)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(pgxURL)
	if err != nil {
		return nil, fmt.Errorf("invalid PostgreSQL URL: %w", err) // pgx redacts the password
	}
	cc := cfg.ConnConfig
	w := &Warehouse{schema: schema, where: fmt.Sprintf("%s:%d/%s", cc.Host, cc.Port, cc.Database)}
	cc.RuntimeParams["search_path"] = schema
	if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = 10 * time.Second
	}
	w.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, w.connErr("connect", err)
	}
	if err := w.pool.Ping(ctx); err != nil {
		w.pool.Close()
		return nil, w.connErr("connect", err)
	}
	err = w.ddl(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("create schema %s: %w", schema, err)
		}
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+w.ident(ledgerTable)+` (
			table_name text NOT NULL,
			object_key text NOT NULL,
			etag text NOT NULL,
			rows bigint NOT NULL,
			loaded_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (table_name, object_key, etag))`)
		if err != nil {
			return fmt.Errorf("create ledger table %s.%s: %w", schema, ledgerTable, err)
		}
		return nil
	})
	if err != nil {
		w.pool.Close()
		return nil, w.connErr("open", err)
	}
	return w, nil
}

// Schema returns the schema holding the ledger and the tables.
func (w *Warehouse) Schema() string { return w.schema }

// connErr describes err, adding what to do when the server is unreachable
// or refuses the connection.
func (w *Warehouse) connErr(op string, err error) error {
	host := strings.SplitN(w.where, "/", 2)[0]
	var pe *pgconn.PgError
	var ce *pgconn.ConnectError
	switch {
	case errors.As(err, &pe) && errors.As(err, &ce):
		hint := "check the user, password and database in the warehouse URL"
		if pe.Code == "3D000" {
			hint = "create the database (createdb) or fix the warehouse URL"
		}
		return fmt.Errorf("PostgreSQL %s: %s: %w (%s)", w.where, op, err, hint)
	case errors.As(err, &ce) || op == "connect" && pgconn.Timeout(err):
		return fmt.Errorf("PostgreSQL %s: %s: %w (is PostgreSQL running at %s and accepting TCP connections? Check the warehouse URL, or start the server, e.g. pg_ctlcluster <version> main start)", w.where, op, err, host)
	}
	return fmt.Errorf("PostgreSQL %s: %s: %w", w.where, op, describe(err))
}

// describe adds PostgreSQL's detail and context (e.g. the COPY line) to err.
func describe(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	var extra []string
	if pe.Detail != "" {
		extra = append(extra, pe.Detail)
	}
	if pe.Where != "" {
		extra = append(extra, strings.ReplaceAll(pe.Where, "\n", "; "))
	}
	if len(extra) == 0 {
		return err
	}
	return fmt.Errorf("%w: %s", err, strings.Join(extra, "; "))
}

func (w *Warehouse) ident(name string) string { return pgx.Identifier{w.schema, name}.Sanitize() }

// ddl runs f in a transaction holding sluice's DDL advisory lock, so
// concurrent CREATE ... IF NOT EXISTS from several processes do not fail on
// the catalogs' unique indexes.
func (w *Warehouse) ddl(ctx context.Context, f func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(ddlLockKey)); err != nil {
			return fmt.Errorf("take DDL lock: %w", err)
		}
		return f(tx)
	})
}

func pgType(t driver.Type) (string, error) {
	switch t {
	case driver.BigInt:
		return "bigint", nil
	case driver.Integer:
		return "integer", nil
	case driver.Double:
		return "double precision", nil
	case driver.Text:
		return "text", nil
	case driver.Boolean:
		return "boolean", nil
	case driver.Timestamp:
		return "timestamptz", nil
	case driver.Date:
		return "date", nil
	case driver.JSON:
		return "jsonb", nil
	}
	return "", fmt.Errorf("unknown column type %q", t)
}

// EnsureTable implements driver.Warehouse.
func (w *Warehouse) EnsureTable(ctx context.Context, t driver.Table) error {
	var defs []string
	for _, c := range t.Columns {
		pt, err := pgType(c.Type)
		if err != nil {
			return fmt.Errorf("column %s: %w", c.Name, err)
		}
		defs = append(defs, pgx.Identifier{c.Name}.Sanitize()+" "+pt)
	}
	if len(t.PrimaryKey) > 0 {
		defs = append(defs, "PRIMARY KEY ("+identList(t.PrimaryKey)+")")
	}
	stmt := "CREATE TABLE IF NOT EXISTS " + w.ident(t.Name) + " (" + strings.Join(defs, ", ") + ")"
	err := w.ddl(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, stmt)
		return err
	})
	if err != nil {
		return w.connErr("create table "+w.schema+"."+t.Name, err)
	}
	return nil
}

func identList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = pgx.Identifier{n}.Sanitize()
	}
	return strings.Join(q, ", ")
}

// Load implements driver.Warehouse (see the package doc).
func (w *Warehouse) Load(ctx context.Context, b driver.Batch) (driver.Result, error) {
	if b.Mode != driver.Append && b.Mode != driver.Merge {
		return driver.Result{}, fmt.Errorf("unknown write mode %q (append or merge)", b.Mode)
	}
	if b.Mode == driver.Merge && len(b.Table.PrimaryKey) == 0 {
		return driver.Result{}, fmt.Errorf("write mode merge needs a primary key")
	}
	if len(b.Table.Columns) == 0 {
		return driver.Result{}, fmt.Errorf("table %s has no columns", b.Table.Name)
	}
	rows, err := driver.ConvertRows(b, 1, convert) // room for merge's ordinal
	if err != nil {
		return driver.Result{}, err
	}
	var res driver.Result
	err = pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO `+w.ident(ledgerTable)+` (table_name, object_key, etag, rows)
			VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`, b.Table.Name, b.Key, b.ETag, int64(len(rows)))
		if err != nil {
			return fmt.Errorf("insert ledger row: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return errAlreadyLoaded
		}
		var n int64
		if b.Mode == driver.Append {
			n, err = tx.CopyFrom(ctx, pgx.Identifier{w.schema, b.Table.Name}, columnNames(b.Table), pgx.CopyFromRows(rows))
			if err != nil {
				return fmt.Errorf("copy rows into %s.%s: %w", w.schema, b.Table.Name, err)
			}
		} else {
			if n, err = w.merge(ctx, tx, b.Table, rows); err != nil {
				return err
			}
			if n != int64(len(rows)) {
				if _, err := tx.Exec(ctx, `UPDATE `+w.ident(ledgerTable)+` SET rows = $4
					WHERE table_name = $1 AND object_key = $2 AND etag = $3`, b.Table.Name, b.Key, b.ETag, n); err != nil {
					return fmt.Errorf("update ledger row: %w", err)
				}
			}
		}
		res = driver.Result{Loaded: true, Rows: n}
		return nil
	})
	if errors.Is(err, errAlreadyLoaded) {
		return driver.Result{Loaded: false}, nil
	}
	if isDataError(err) {
		err = fmt.Errorf("%w: %w", driver.ErrInvalidData, err)
	}
	if err != nil {
		return driver.Result{}, w.connErr("load", err)
	}
	return res, nil
}

var errAlreadyLoaded = errors.New("object version already loaded")

const stagingTable = "_sluice_staging"

// merge copies rows into a staging table with their batch order, then
// upserts the last row of each key into t. It returns the rows written.
func (w *Warehouse) merge(ctx context.Context, tx pgx.Tx, t driver.Table, rows [][]any) (int64, error) {
	cols := columnNames(t)
	ord := "_sluice_ordinal"
	for taken := true; taken; {
		taken = false
		for _, c := range cols {
			if c == ord {
				ord += "_"
				taken = true
			}
		}
	}
	staging := pgx.Identifier{stagingTable}.Sanitize()
	if _, err := tx.Exec(ctx, "CREATE TEMP TABLE "+staging+" (LIKE "+w.ident(t.Name)+", "+
		pgx.Identifier{ord}.Sanitize()+" bigint) ON COMMIT DROP"); err != nil {
		return 0, fmt.Errorf("create staging table for %s.%s: %w", w.schema, t.Name, err)
	}
	for i := range rows {
		rows[i] = append(rows[i], int64(i))
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{stagingTable}, append(cols, ord), pgx.CopyFromRows(rows)); err != nil {
		return 0, fmt.Errorf("copy rows into staging for %s.%s: %w", w.schema, t.Name, err)
	}
	pk := map[string]bool{}
	for _, k := range t.PrimaryKey {
		pk[k] = true
	}
	var set []string
	for _, c := range cols {
		if !pk[c] {
			q := pgx.Identifier{c}.Sanitize()
			set = append(set, q+" = EXCLUDED."+q)
		}
	}
	keys := identList(t.PrimaryKey)
	colList := identList(cols)
	q := "INSERT INTO " + w.ident(t.Name) + " (" + colList + ") SELECT DISTINCT ON (" + keys + ") " + colList +
		" FROM " + staging + " ORDER BY " + keys + ", " + pgx.Identifier{ord}.Sanitize() + " DESC ON CONFLICT (" + keys + ") "
	if len(set) == 0 {
		q += "DO NOTHING"
	} else {
		q += "DO UPDATE SET " + strings.Join(set, ", ")
	}
	tag, err := tx.Exec(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("merge staged rows into %s.%s: %w", w.schema, t.Name, err)
	}
	if len(set) == 0 {
		// DO NOTHING does not count keys that were already present.
		var n int64
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM (SELECT DISTINCT "+keys+" FROM "+staging+") k").Scan(&n); err != nil {
			return 0, fmt.Errorf("count staged keys for %s.%s: %w", w.schema, t.Name, err)
		}
		return n, nil
	}
	return tag.RowsAffected(), nil
}

func columnNames(t driver.Table) []string {
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = c.Name
	}
	return cols
}

// convert returns what pgx encodes for v, a value of column type t in the
// Go type driver.Type documents; false for any other value.
func convert(t driver.Type, v any) (any, bool) {
	switch x := v.(type) {
	case nil:
		return nil, true
	case int64:
		switch t {
		case driver.BigInt:
			return x, true
		case driver.Integer:
			return int32(x), x >= math.MinInt32 && x <= math.MaxInt32
		}
	case float64:
		return x, t == driver.Double
	case string:
		return x, t == driver.Text || t == driver.JSON
	case bool:
		return x, t == driver.Boolean
	case time.Time:
		switch t {
		case driver.Timestamp:
			return x.UTC(), true
		case driver.Date:
			y, m, d := x.UTC().Date()
			return pgtype.Date{Time: time.Date(y, m, d, 0, 0, 0, 0, time.UTC), Valid: true}, true
		}
	}
	return nil, false
}

// isDataError reports whether err is PostgreSQL rejecting the data itself:
// SQLSTATE class 22 (data exception, e.g. 22021 for a NUL character in
// text) or 23 (integrity constraint violation, e.g. 23502 for a NULL or
// 23505 for a duplicate primary key). Serialization failures (40001),
// deadlocks (40P01), cancellation and connection errors are not.
func isDataError(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || len(pe.Code) != 5 {
		return false
	}
	class := pe.Code[:2]
	return class == "22" || class == "23"
}

// Query implements driver.Warehouse in a READ ONLY transaction.
func (w *Warehouse) Query(ctx context.Context, sql string) ([]string, [][]any, error) {
	var cols []string
	var out [][]any
	err := pgx.BeginTxFunc(ctx, w.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rs, err := tx.Query(ctx, sql)
		if err != nil {
			return err
		}
		defer rs.Close()
		fds := rs.FieldDescriptions()
		cols = make([]string, len(fds))
		for i, fd := range fds {
			cols[i] = fd.Name
		}
		for rs.Next() {
			vals, err := rs.Values()
			if err != nil {
				return fmt.Errorf("read row %d: %w", len(out)+1, err)
			}
			raw := rs.RawValues()
			for i, v := range vals {
				vals[i] = display(fds[i], raw[i], v)
			}
			out = append(out, vals)
		}
		return rs.Err()
	})
	if err != nil {
		return nil, nil, w.connErr("query", err)
	}
	return cols, out, nil
}

// display normalises a value pgx decoded (see the package doc).
func display(fd pgconn.FieldDescription, raw []byte, v any) any {
	if v == nil {
		return nil
	}
	switch fd.DataTypeOID {
	case pgtype.JSONOID:
		return string(raw)
	case pgtype.JSONBOID:
		if fd.Format == pgtype.BinaryFormatCode && len(raw) > 0 {
			return string(raw[1:]) // version byte
		}
		return string(raw)
	}
	switch x := v.(type) {
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case float32:
		return float64(x)
	case time.Time:
		return x.UTC()
	case []byte:
		return x
	case [16]byte: // uuid
		return fmt.Sprintf("%x-%x-%x-%x-%x", x[0:4], x[4:6], x[6:8], x[8:10], x[10:16])
	case sqldriver.Valuer: // numeric, interval, uuid...: their SQL text
		if dv, err := x.Value(); err == nil {
			if t, ok := dv.(time.Time); ok {
				return t.UTC()
			}
			return dv
		}
	}
	return v
}

// Ledger implements driver.Warehouse, oldest first.
func (w *Warehouse) Ledger(ctx context.Context, table string) ([]driver.LedgerEntry, error) {
	q := `SELECT table_name, object_key, etag, rows, loaded_at FROM ` + w.ident(ledgerTable)
	var args []any
	if table != "" {
		q += ` WHERE table_name = $1`
		args = append(args, table)
	}
	q += ` ORDER BY loaded_at, table_name, object_key, etag`
	rs, err := w.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, w.connErr("read ledger", err)
	}
	out, err := pgx.CollectRows(rs, func(r pgx.CollectableRow) (driver.LedgerEntry, error) {
		var e driver.LedgerEntry
		err := r.Scan(&e.Table, &e.Key, &e.ETag, &e.Rows, &e.LoadedAt)
		e.LoadedAt = e.LoadedAt.UTC()
		return e, err
	})
	if err != nil {
		return nil, w.connErr("read ledger", err)
	}
	return out, nil
}

// Close closes the connection pool.
func (w *Warehouse) Close() error {
	w.pool.Close()
	return nil
}
