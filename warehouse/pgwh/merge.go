package pgwh

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sluicehq/sluice/schema"
	"github.com/sluicehq/sluice/warehouse/driver"
)

// mergeOptions choose among the merge strategies measured in
// BenchmarkMerge (see the package doc for the figures).
type mergeOptions struct {
	// direct COPYs each batch straight into the table inside a savepoint
	// while no key conflicts, falling back to staging from the batch that
	// meets one (or repeats a key of the object) on.
	direct bool
	// reuseStaging keeps one temporary staging table per connection and
	// column set (ON COMMIT DELETE ROWS) instead of creating one per load
	// (ON COMMIT DROP).
	reuseStaging bool
	// trackKeys remembers the object's keys (driver.KeySet) so that the
	// upsert skips DISTINCT ON when no key repeats, and a batch that
	// repeats a key goes to staging without trying a direct COPY.
	trackKeys bool
}

// mergeOpts are the strategies Load uses; benchmarks change them.
var mergeOpts = mergeOptions{direct: true, reuseStaging: true, trackKeys: true}

// merge writes the rows of tap into b.Table by key (see driver.Merge) and
// returns the rows written: those inserted, or updated and holding b's
// version. While the batches meet no stored key and repeat none, each is
// COPYed straight into the table inside a savepoint; the batch that meets
// one (a unique violation, which rolls the savepoint back, or a deadlock
// with a load inserting the same new keys) and all that follow are COPYed
// into a temporary staging table with their record numbers, from which one
// INSERT ... SELECT [DISTINCT ON (key)] ... ON CONFLICT DO UPDATE WHERE
// upserts the greatest (order_by, record) row of each key where
// (EXCLUDED.order_by, EXCLUDED._sluice_version) >= the stored row's.
// Batches merged in stream order give the result of merging the object at
// once: a later batch's row of a key replaces an earlier batch's exactly
// when it would have won inside the object. Past maxSavepoints batches a
// batch goes straight in only when keyRangeFree, without a savepoint: if
// a concurrent load inserts one of its keys meanwhile, the load fails with
// a transient error, and its retry stages that batch.
func (w *Warehouse) merge(ctx context.Context, tx pgx.Tx, b driver.Batch, tap *rejectTap) (int64, error) {
	t := b.Table
	keys := &keyTap{src: tap}
	if mergeOpts.trackKeys {
		keys.keys = driver.NewKeySet(t)
	}
	cols, types := columnNames(t), columnTypes(t)
	var direct int64
	var pending *schema.Batch
	savepoints := 0
	if mergeOpts.direct {
		target := pgx.Identifier{w.schema, t.Name}
		dcols := append(slices.Clip(cols), driver.VersionColumn)
		for pending == nil {
			if tap.full() {
				if err := w.writeRejects(ctx, tx, b, tap); err != nil {
					return 0, err
				}
			}
			bt, err := keys.Next(ctx)
			if errors.Is(err, io.EOF) {
				return direct, nil
			}
			if err != nil {
				return 0, err
			}
			if bt.Len() == 0 {
				continue
			}
			if keys.last {
				pending = bt
				break
			}
			// Past maxSavepoints, a batch goes straight in only when no
			// stored key lies in the range of its keys (one index probe),
			// and without a savepoint.
			guarded := savepoints < maxSavepoints
			if !guarded {
				free, err := w.keyRangeFree(ctx, tx, t, bt)
				if err != nil {
					return 0, err
				}
				if !free {
					pending = bt
					break
				}
			} else if _, err := tx.Exec(ctx, "SAVEPOINT sluice_direct"); err != nil {
				return 0, fmt.Errorf("savepoint: %w", err)
			}
			s := newCopyStream(ctx, &single{b: bt}, types)
			s.withText(b.Version)
			n, err := copyInto(ctx, tx.Conn().PgConn(), target, dcols, s)
			switch {
			case guarded && isConflict(err):
				// Released too, so that the rest of the load does not run
				// in the savepoint's subtransaction.
				if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT sluice_direct; RELEASE SAVEPOINT sluice_direct"); err != nil {
					return 0, fmt.Errorf("roll back to savepoint: %w", err)
				}
				pending = bt
				continue
			case isConflict(err):
				// Another load inserted one of these keys since the probe:
				// not bad data, and a retry stages the batch.
				return 0, fmt.Errorf("rows %d to %d: another load inserted some of their keys meanwhile; retry: %v", bt.N[0], bt.N[bt.Len()-1], err)
			case err != nil:
				return 0, err
			}
			if guarded {
				if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT sluice_direct"); err != nil {
					return 0, fmt.Errorf("release savepoint: %w", err)
				}
				savepoints++
			}
			direct += n
		}
	}
	staging, err := w.staging(ctx, tx, t)
	if err != nil {
		return 0, err
	}
	s := newCopyStream(ctx, &single{b: pending, rest: keys}, types)
	s.withOrdinal()
	if _, err := w.copyRows(ctx, tx, b, tap, pgx.Identifier{staging}, append(cols, ordinalColumn), s); err != nil {
		return 0, err
	}
	var twice int64
	if direct > 0 && keys.repeats() {
		if twice, err = w.rewritten(ctx, tx, b, staging); err != nil {
			return 0, err
		}
	}
	merged, err := w.upsert(ctx, tx, b, staging, keys.repeats())
	if err != nil {
		return 0, err
	}
	return direct + merged - twice, nil
}

// maxSavepoints bounds the savepoints of one load. Every savepoint that
// writes is a subtransaction with its own transaction ID, and PostgreSQL
// caches at most 64 of them per transaction: past that, every snapshot
// taken by other sessions while the load runs looks them up in pg_subtrans.
const maxSavepoints = 48

// keyRangeFree reports whether no stored row of t has a key between the
// least and the greatest key of bt, for a single integer key; false for
// other keys (their batches go to staging past maxSavepoints).
func (w *Warehouse) keyRangeFree(ctx context.Context, tx pgx.Tx, t driver.Table, bt *schema.Batch) (bool, error) {
	if len(t.PrimaryKey) != 1 {
		return false, nil
	}
	j := slices.IndexFunc(t.Columns, func(c schema.Column) bool { return c.Name == t.PrimaryKey[0] })
	v := &bt.Vecs[j]
	if !v.Type.IsInt() || slices.Contains(v.Null, true) {
		return false, nil
	}
	k := pgx.Identifier{t.PrimaryKey[0]}.Sanitize()
	var taken bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT FROM "+w.ident(t.Name)+" WHERE "+k+" BETWEEN $1 AND $2)",
		slices.Min(v.Int), slices.Max(v.Int)).Scan(&taken); err != nil {
		return false, fmt.Errorf("look for stored keys of rows %d to %d in %s.%s: %w", bt.N[0], bt.N[bt.Len()-1], w.schema, t.Name, err)
	}
	return !taken, nil
}

// ordinalColumn holds a staged row's record number.
const ordinalColumn = "_sluice_ordinal"

// isConflict reports whether a direct COPY failed on a stored key: a
// unique violation (23505), or a deadlock (40P01) with another load
// inserting the same new keys in another order. Either rolls back to the
// savepoint, and the batch is merged through staging instead.
func isConflict(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "23505" || pe.Code == "40P01")
}

// staging creates (when missing) the temporary staging table for t's
// columns and returns its name. Temporary tables are not WAL-logged and
// live in the connection's own schema, so loads never see each other's.
func (w *Warehouse) staging(ctx context.Context, tx pgx.Tx, t driver.Table) (string, error) {
	var defs []string
	for _, c := range t.Columns {
		pt, _ := pgType(c.Type)
		defs = append(defs, pgx.Identifier{c.Name}.Sanitize()+" "+pt)
	}
	defs = append(defs, ordinalColumn+" bigint")
	name, create := "_sluice_staging", "CREATE TEMP TABLE "
	end := " ON COMMIT DROP"
	if mergeOpts.reuseStaging {
		h := fnv.New64a()
		h.Write([]byte(strings.Join(defs, ",")))
		name = fmt.Sprintf("_sluice_staging_%016x", h.Sum64())
		create, end = "CREATE TEMP TABLE IF NOT EXISTS ", " ON COMMIT DELETE ROWS"
	}
	if _, err := tx.Exec(ctx, create+pgx.Identifier{name}.Sanitize()+" ("+strings.Join(defs, ", ")+")"+end); err != nil {
		return "", fmt.Errorf("create staging table for %s.%s: %w", w.schema, t.Name, err)
	}
	return name, nil
}

// upsert merges the staged rows into the table: for each key the staged
// row with the greatest OrderBy (the later of equals) replaces the stored
// row of the key unless that is newer (see driver.Merge). distinct is
// needed when a key may repeat in the staging table (ON CONFLICT DO UPDATE
// cannot update a row twice). It returns the rows inserted or updated.
func (w *Warehouse) upsert(ctx context.Context, tx pgx.Tx, b driver.Batch, staging string, distinct bool) (int64, error) {
	t := b.Table
	cols := columnNames(t)
	pk := map[string]bool{}
	for _, k := range t.PrimaryKey {
		pk[k] = true
	}
	ver := pgx.Identifier{driver.VersionColumn}.Sanitize()
	set := []string{ver + " = EXCLUDED." + ver}
	for _, c := range cols {
		if !pk[c] {
			q := pgx.Identifier{c}.Sanitize()
			set = append(set, q+" = EXCLUDED."+q)
		}
	}
	keys := identList(t.PrimaryKey)
	colList := identList(cols)
	order := keys
	cond := "EXCLUDED." + ver + " >= t." + ver
	if t.OrderBy != "" {
		ob := pgx.Identifier{t.OrderBy}.Sanitize()
		cond = "(EXCLUDED." + ob + ", EXCLUDED." + ver + ") >= (t." + ob + ", t." + ver + ")"
		if distinct {
			order += ", " + ob + " DESC NULLS LAST"
		}
	}
	sel := "SELECT "
	if distinct {
		sel += "DISTINCT ON (" + keys + ") "
		order += ", " + ordinalColumn + " DESC"
	}
	// Rows go in key order, so that loads upserting the same keys lock
	// them in the same order rather than deadlock. The sort gets more
	// memory than PostgreSQL's default 4 MB, which an object of 10,000
	// posts already overflows to disk.
	if _, err := tx.Exec(ctx, "SET LOCAL work_mem = '64MB'"); err != nil {
		return 0, fmt.Errorf("merge staged rows into %s.%s: %w", w.schema, t.Name, err)
	}
	q := "INSERT INTO " + w.ident(t.Name) + " AS t (" + colList + ", " + ver + ") " + sel + colList + ", $1::text" +
		" FROM " + pgx.Identifier{staging}.Sanitize() + " ORDER BY " + order +
		" ON CONFLICT (" + keys + ") DO UPDATE SET " + strings.Join(set, ", ") + " WHERE " + cond
	tag, err := tx.Exec(ctx, q, b.Version)
	if err != nil {
		return 0, fmt.Errorf("merge staged rows into %s.%s: %w", w.schema, t.Name, err)
	}
	return tag.RowsAffected(), nil
}

// rewritten counts the keys that the upsert of the staged rows will
// update although this load already COPYed them straight into the table
// (they hold its version): upsert's count includes them a second time.
func (w *Warehouse) rewritten(ctx context.Context, tx pgx.Tx, b driver.Batch, staging string) (int64, error) {
	t := b.Table
	keys := identList(t.PrimaryKey)
	sel, order, cond := keys, keys, ""
	if t.OrderBy != "" {
		ob := pgx.Identifier{t.OrderBy}.Sanitize()
		sel += ", " + ob
		order += ", " + ob + " DESC NULLS LAST"
		cond = " AND s." + ob + " >= t." + ob
	}
	var on []string
	for _, k := range t.PrimaryKey {
		q := pgx.Identifier{k}.Sanitize()
		on = append(on, "t."+q+" = s."+q)
	}
	q := "SELECT count(*) FROM (SELECT DISTINCT ON (" + keys + ") " + sel + " FROM " + pgx.Identifier{staging}.Sanitize() +
		" ORDER BY " + order + ", " + ordinalColumn + " DESC) s JOIN " + w.ident(t.Name) + " t ON " + strings.Join(on, " AND ") +
		" WHERE t." + pgx.Identifier{driver.VersionColumn}.Sanitize() + " = $1" + cond
	var n int64
	if err := tx.QueryRow(ctx, q, b.Version).Scan(&n); err != nil {
		return 0, fmt.Errorf("count the rows of %s.%s merged twice: %w", w.schema, t.Name, err)
	}
	return n, nil
}

// keyTap passes the batches of src on, adding their keys to keys (nil:
// not tracked, every batch may repeat keys).
type keyTap struct {
	src  schema.Reader
	keys *driver.KeySet
	// last is whether the last batch repeated a key of its own or of an
	// earlier batch.
	last bool
}

func (k *keyTap) Next(ctx context.Context) (*schema.Batch, error) {
	b, err := k.src.Next(ctx)
	if err != nil {
		return nil, err
	}
	k.last = k.keys != nil && k.keys.Add(b) != nil
	return b, nil
}

func (k *keyTap) Close() error { return nil }

// repeats reports whether a key may have repeated in the object.
func (k *keyTap) repeats() bool { return k.keys == nil || k.keys.Repeats() }
