package pgwh

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/sluicehq/sluice/schema"
)

// IsDataError exposes isDataError to the external tests.
var IsDataError = isDataError

// IsNoTable exposes isNoTable to the external tests.
var IsNoTable = isNoTable

// SetMergeOptions makes Load merge with the given strategies (see
// mergeOptions) until the returned func restores the default.
func SetMergeOptions(direct, reuseStaging, trackKeys bool) (restore func()) {
	saved := mergeOpts
	mergeOpts = mergeOptions{direct: direct, reuseStaging: reuseStaging, trackKeys: trackKeys, reinsert: saved.reinsert}
	return func() { mergeOpts = saved }
}

// SetReinsert turns the replacement of stored rows by DELETE and COPY on
// or off until the returned func restores the default.
func SetReinsert(on bool) (restore func()) {
	saved := mergeOpts
	mergeOpts.reinsert = on
	return func() { mergeOpts = saved }
}

// CopyBatches runs one binary COPY of src's rows (columns of types) into
// table with the encoder Load uses.
func CopyBatches(ctx context.Context, conn *pgx.Conn, table pgx.Identifier, cols []string, types []schema.Type, src schema.Reader) (int64, error) {
	return copyInto(ctx, conn.PgConn(), table, cols, newCopyStream(ctx, src, types))
}

// QueryRowForTest scans the one row of sql (with one argument) into dst,
// outside a transaction.
func (w *Warehouse) QueryRowForTest(ctx context.Context, sql string, dst any, arg any) error {
	return w.pool.QueryRow(ctx, sql, arg).Scan(dst)
}

// ExecForTest runs sql (several statements allowed) outside a transaction.
func (w *Warehouse) ExecForTest(ctx context.Context, sql string) error {
	_, err := w.pool.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
	return err
}
