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
	// reinsert replaces stored rows by DELETE and COPY where the table
	// allows it (see reinsertable) instead of staging and upserting them.
	reinsert bool
}

// mergeOpts are the strategies Load uses; benchmarks change them.
var mergeOpts = mergeOptions{direct: true, reuseStaging: true, trackKeys: true, reinsert: true}

// merge writes the rows of tap into b.Table by key (see driver.Merge) and
// returns the rows written: those inserted, or updated and holding b's
// version. The first batch's keys are looked up (below) before it goes
// in. While the batches meet no stored key and repeat none, each is
// COPYed straight into the table inside a savepoint. From the batch that
// meets one (found by that first lookup, or a unique violation, which
// rolls the savepoint back, or a deadlock with a load inserting the same
// new keys) on, each batch's keys are looked up first (storedKeys, one query a batch): its rows with a key
// not stored and not repeated in the object still go straight in, and the
// others are COPYed into a temporary staging table with their record
// numbers, from which one INSERT ... SELECT [DISTINCT ON (key)] ... ON
// CONFLICT DO UPDATE WHERE upserts the greatest (order_by, record) row of
// each key where (EXCLUDED.order_by, EXCLUDED._sluice_version) >= the
// stored row's. Keys that cannot be looked up that way (several columns,
// or a type other than bigint, integer or text) send the whole batch to
// staging. Batches merged in stream order give the result of merging the
// object at once: a later row of a key replaces an earlier one exactly
// when it would have won inside the object. Past maxSavepoints, rows go
// straight in without a savepoint, and only after the lookup and only for
// integer keys: if a concurrent load inserts one of their keys meanwhile,
// the load fails with a transient error, and its retry stages those rows.
func (w *Warehouse) merge(ctx context.Context, tx pgx.Tx, b driver.Batch, tap *rejectTap) (int64, error) {
	t := b.Table
	keys := &keyTap{src: tap}
	if mergeOpts.trackKeys {
		keys.keys = driver.NewKeySet(t)
	}
	cols, types := columnNames(t), columnTypes(t)
	var direct, staged int64
	var staging string
	// stage COPYs the rows of bt with sel[i] (all when sel is nil) into
	// the staging table.
	stage := func(bt *schema.Batch, sel []bool) error {
		if staging == "" {
			var err error
			if staging, err = w.staging(ctx, tx, t); err != nil {
				return err
			}
		}
		s := newCopyStream(ctx, &single{b: bt}, types)
		s.withOrdinal()
		s.sel = sel
		n, err := copyInto(ctx, tx.Conn().PgConn(), pgx.Identifier{staging}, append(slices.Clip(cols), ordinalColumn), s)
		staged += n
		return err
	}
	savepoints := 0
	lookup := false // look each batch's keys up before it goes straight in
	// The first batch's keys are looked up before it goes straight in, so
	// that an object meeting stored keys does not COPY a whole batch only
	// to roll it back (and leave its index entries behind); the later
	// batches are looked up when that one met a stored key.
	first := true
	mostlyStored := false
	reinsert := reinsertUnknown
	var again *schema.Batch
	for {
		bt := again
		if again = nil; bt == nil {
			if tap.full() {
				if err := w.writeRejects(ctx, tx, b, tap); err != nil {
					return 0, err
				}
			}
			var err error
			if bt, err = keys.Next(ctx); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return 0, err
			}
			if bt.Len() == 0 {
				continue
			}
		}
		if !mergeOpts.direct || mostlyStored {
			if err := stage(bt, nil); err != nil {
				return 0, err
			}
			continue
		}
		guarded := savepoints < maxSavepoints
		away := keys.rep   // away[i]: row i goes to staging; nil: none does
		var replace []bool // replace[i]: row i's stored row is deleted first if older
		if lookup || first || !guarded {
			// Without a savepoint only integer keys go straight in:
			// their equality is the values' (a text key's may follow a
			// collation), so other keys are not looked up then.
			var stored []bool
			var dense bool
			ok := guarded || intKey(t)
			if ok {
				var err error
				if stored, dense, ok, err = w.storedKeys(ctx, tx, t, bt); err != nil {
					return 0, err
				}
			}
			switch {
			case ok:
				some := slices.Contains(stored, true)
				if first && some {
					lookup = true
				}
				if !mergeOpts.reinsert {
					reinsert = reinsertNo
				}
				if some && dense && reinsert == reinsertUnknown {
					var err error
					if reinsert, err = w.reinsertable(ctx, tx, t); err != nil {
						return 0, err
					}
				}
				if some && dense && reinsert == reinsertYes {
					replace = andNot(stored, keys.rep)
				}
				away = orInto(stored, keys.rep)
				// Without reinsert, an object whose keys are nearly
				// all stored already is an update: the rest of it goes
				// to staging without more lookups.
				mostlyStored = !(dense && reinsert == reinsertYes) && count(stored) >= len(stored)*9/10
			case first && guarded && !lookup:
				// Keys that cannot be looked up: the first batch
				// tries straight in.
			default:
				if err := stage(bt, nil); err != nil {
					return 0, err
				}
				first = false
				continue
			}
		}
		if away != nil && !slices.Contains(away, false) && !slices.Contains(replace, true) {
			if err := stage(bt, nil); err != nil {
				return 0, err
			}
			continue
		}
		first = false
		n, conflict, err := w.straight(ctx, tx, b, bt, away, replace, guarded)
		if guarded {
			savepoints++
		}
		switch {
		case err != nil:
			return 0, err
		case conflict && !lookup:
			lookup, again = true, bt // once more, with its keys looked up
			continue
		case conflict:
			// A concurrent load inserted some of these keys since the
			// lookup (or a key only collates equal to a stored one).
			if err := stage(bt, nil); err != nil {
				return 0, err
			}
			continue
		}
		direct += n
		if slices.Contains(away, true) {
			if err := stage(bt, away); err != nil {
				return 0, err
			}
		}
	}
	if staged == 0 {
		return direct, nil
	}
	var twice int64
	if direct > 0 && keys.repeats() {
		var err error
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

// straight COPYs the rows of bt that are not away (all when away is nil)
// into the table, inside a savepoint when guarded. Rows with replace[i]
// (away too) first have their stored row deleted where that is older
// (deleteOlder); those deleted stop being away and go in with the rest,
// in place of an update. conflict reports a
// unique violation or deadlock that rolled the savepoint back (and
// released it, so that the rest of the load does not run in its
// subtransaction); unguarded, one is an error: another load inserted some
// of the keys since they were looked up, which a retry stages.
func (w *Warehouse) straight(ctx context.Context, tx pgx.Tx, b driver.Batch, bt *schema.Batch, away, replace []bool, guarded bool) (n int64, conflict bool, err error) {
	if guarded {
		if _, err := tx.Exec(ctx, "SAVEPOINT sluice_direct"); err != nil {
			return 0, false, fmt.Errorf("savepoint: %w", err)
		}
	}
	if slices.Contains(replace, true) {
		err = w.deleteOlder(ctx, tx, b, bt, replace, away)
	}
	if err == nil {
		s := newCopyStream(ctx, &single{b: bt}, columnTypes(b.Table))
		s.withText(b.Version)
		s.sel, s.selNot = away, true
		n, err = copyInto(ctx, tx.Conn().PgConn(), pgx.Identifier{w.schema, b.Table.Name}, append(columnNames(b.Table), driver.VersionColumn), s)
	}
	switch {
	case guarded && isConflict(err):
		if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT sluice_direct; RELEASE SAVEPOINT sluice_direct"); err != nil {
			return 0, false, fmt.Errorf("roll back to savepoint: %w", err)
		}
		return 0, true, nil
	case isConflict(err):
		return 0, false, fmt.Errorf("rows %d to %d: another load inserted some of their keys meanwhile; retry: %v", bt.N[0], bt.N[bt.Len()-1], err)
	case err != nil:
		return 0, false, err
	}
	if guarded {
		if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT sluice_direct"); err != nil {
			return 0, false, fmt.Errorf("release savepoint: %w", err)
		}
	}
	return n, false, nil
}

// count counts the true values of x.
func count(x []bool) int {
	n := 0
	for _, y := range x {
		if y {
			n++
		}
	}
	return n
}

// andNot returns x[i] && !y[i] for each i (y may be nil).
func andNot(x, y []bool) []bool {
	z := slices.Clone(x)
	for i, v := range y {
		z[i] = z[i] && !v
	}
	return z
}

// orInto sets into[i] where also[i] (also may be nil) and returns into.
func orInto(into, also []bool) []bool {
	for i, x := range also {
		into[i] = into[i] || x
	}
	return into
}

// maxSavepoints bounds the savepoints of one load. Every savepoint that
// writes is a subtransaction with its own transaction ID, and PostgreSQL
// caches at most 64 of them per transaction: past that, every snapshot
// taken by other sessions while the load runs looks them up in pg_subtrans.
const maxSavepoints = 48

// intKey reports whether t's key is one integer column.
func intKey(t driver.Table) bool {
	if len(t.PrimaryKey) != 1 {
		return false
	}
	j := slices.IndexFunc(t.Columns, func(c schema.Column) bool { return c.Name == t.PrimaryKey[0] })
	return t.Columns[j].Type.IsInt()
}

// storedKeys looks up which rows of bt have a key that t holds: stored[i]
// for row i. ok is false when the key is not one column of an integer or
// text type, which it does not look up. One query: for integer keys no
// more spread out than four times the batch's rows (dense), every stored
// key between the least and the greatest (one index range scan);
// otherwise key = ANY($1).
func (w *Warehouse) storedKeys(ctx context.Context, tx pgx.Tx, t driver.Table, bt *schema.Batch) (stored []bool, dense, ok bool, err error) {
	if len(t.PrimaryKey) != 1 {
		return nil, false, false, nil
	}
	j := slices.IndexFunc(t.Columns, func(c schema.Column) bool { return c.Name == t.PrimaryKey[0] })
	v := &bt.Vecs[j]
	n := bt.Len()
	k := pgx.Identifier{t.PrimaryKey[0]}.Sanitize()
	from := " FROM " + w.ident(t.Name) + " WHERE " + k
	fail := func(err error) ([]bool, bool, bool, error) {
		return nil, false, false, fmt.Errorf("look up the stored keys of rows %d to %d in %s.%s: %w", bt.N[0], bt.N[n-1], w.schema, t.Name, err)
	}
	stored = make([]bool, n)
	switch {
	case v.Type.IsInt():
		var lo, hi int64
		some := false
		ids := make([]int64, 0, n)
		for i := range n {
			if v.Null[i] {
				continue
			}
			x := v.Int[i]
			if !some || x < lo {
				lo = x
			}
			if !some || x > hi {
				hi = x
			}
			some = true
			ids = append(ids, x)
		}
		if !some {
			return stored, false, true, nil
		}
		q, args := "SELECT "+k+from+" = ANY($1)", []any{ids}
		if dense = uint64(hi-lo) < 4*uint64(n); dense {
			q, args = "SELECT "+k+from+" BETWEEN $1 AND $2", []any{lo, hi}
		}
		have, err := queryKeys[int64](ctx, tx, q, args...)
		if err != nil {
			return fail(err)
		}
		for i := range n {
			stored[i] = !v.Null[i] && have[v.Int[i]]
		}
	case v.Type == schema.Text:
		ids := make([]string, 0, n)
		for i := range n {
			if !v.Null[i] {
				ids = append(ids, string(v.Bytes[v.Off[i]:v.Off[i+1]]))
			}
		}
		have, err := queryKeys[string](ctx, tx, "SELECT "+k+from+" = ANY($1)", ids)
		if err != nil {
			return fail(err)
		}
		for i := range n {
			stored[i] = !v.Null[i] && have[string(v.Bytes[v.Off[i]:v.Off[i+1]])]
		}
	default:
		return nil, false, false, nil
	}
	return stored, dense, true, nil
}

// queryKeys returns the set of keys that q returns.
func queryKeys[K comparable](ctx context.Context, tx pgx.Tx, q string, args ...any) (map[K]bool, error) {
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	have := map[K]bool{}
	var x K
	_, err = pgx.ForEachRow(rows, []any{&x}, func() error { have[x] = true; return nil })
	return have, err
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
	// rep says, for each row of the last batch, whether it repeated a key
	// of an earlier row of the object; nil when none did.
	rep []bool
}

func (k *keyTap) Next(ctx context.Context) (*schema.Batch, error) {
	b, err := k.src.Next(ctx)
	if err != nil {
		return nil, err
	}
	k.rep = nil
	if k.keys != nil {
		k.rep = k.keys.Add(b)
	}
	return b, nil
}

func (k *keyTap) Close() error { return nil }

// repeats reports whether a key may have repeated in the object.
func (k *keyTap) repeats() bool { return k.keys == nil || k.keys.Repeats() }

// reinsert says whether a merge may replace a stored row by deleting it
// and COPYing the new one (see reinsertable).
type reinsertState int

const (
	reinsertUnknown reinsertState = iota
	reinsertYes
	reinsertNo
)

// reinsertable reports whether the stored rows of t may be replaced by a
// DELETE and a COPY instead of an UPDATE, as dbt's delete+insert strategy
// does: measured on 1,000,000 posts rows with 30 % and 100 % of the keys
// stored, it takes 10-15 % less time than staging and upserting, because
// a COPY inserts rows in bulk where an update goes row by row. The table
// ends up the same only when nothing else sees the difference, so it is
// used only when the table has no column the spec does not write (a
// DELETE and INSERT would reset it), no foreign key referring to it (ON
// DELETE actions), no user trigger or rule (they would fire as DELETE and
// INSERT), no row-level security policy, no inheritance children, is in
// no publication and its database has no logical replication slot (change
// data capture would see a DELETE and an INSERT), and the loading role may
// DELETE. Otherwise the stored rows are updated as before.
func (w *Warehouse) reinsertable(ctx context.Context, tx pgx.Tx, t driver.Table) (reinsertState, error) {
	cols := append(columnNames(t), driver.VersionColumn)
	var ok bool
	err := tx.QueryRow(ctx, `SELECT c.relkind = 'r'
	AND has_table_privilege(c.oid, 'DELETE')
	AND NOT c.relrowsecurity
	AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND NOT a.attname = ANY($2))
	AND NOT EXISTS (SELECT 1 FROM pg_constraint f WHERE f.confrelid = c.oid AND f.contype = 'f')
	AND NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal)
	AND NOT EXISTS (SELECT 1 FROM pg_rewrite r WHERE r.ev_class = c.oid)
	AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = c.oid)
	AND NOT EXISTS (SELECT 1 FROM pg_publication_tables p WHERE p.schemaname = n.nspname AND p.tablename = c.relname)
	AND NOT EXISTS (SELECT 1 FROM pg_replication_slots s WHERE s.slot_type = 'logical' AND s.database = current_database())
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $3`, w.schema, cols, t.Name).Scan(&ok)
	if err != nil {
		return reinsertUnknown, fmt.Errorf("check how to replace the stored rows of %s.%s: %w", w.schema, t.Name, err)
	}
	if ok {
		return reinsertYes, nil
	}
	return reinsertNo, nil
}

// deleteOlder deletes the stored rows of the rows i of bt with replace[i]
// whose (order_by, version) the row's is not smaller than (driver.Merge's
// condition), and clears away[i] for each deleted, so that the row goes
// in by COPY in its place. A stored row it does not delete — newer, or
// deleted meanwhile by a concurrent load — leaves its row away: staged and
// upserted, which decides it as before. Only dense keys are replaced, so
// the key is one integer column (storedKeys looked it up).
func (w *Warehouse) deleteOlder(ctx context.Context, tx pgx.Tx, b driver.Batch, bt *schema.Batch, replace, away []bool) error {
	t := b.Table
	col := func(name string) int {
		return slices.IndexFunc(t.Columns, func(c schema.Column) bool { return c.Name == name })
	}
	k, ver := pgx.Identifier{t.PrimaryKey[0]}.Sanitize(), pgx.Identifier{driver.VersionColumn}.Sanitize()
	v := &bt.Vecs[col(t.PrimaryKey[0])]
	row := map[int64]int{} // key → its row (keys do not repeat among replace)
	var keys []int64
	for i, r := range replace {
		if r {
			row[v.Int[i]] = i
			keys = append(keys, v.Int[i])
		}
	}
	from, cond, args := "unnest($1::bigint[]) AS s(k)", "$2::text >= t."+ver, []any{keys, b.Version}
	if t.OrderBy != "" {
		oc := col(t.OrderBy)
		ot, err := pgType(t.Columns[oc].Type)
		if err != nil {
			return err
		}
		from = "unnest($1::bigint[], $3::" + ot + "[]) AS s(k, ob)"
		cond = "(s.ob, $2::text) >= (t." + pgx.Identifier{t.OrderBy}.Sanitize() + ", t." + ver + ")"
		args = append(args, vecParam(&bt.Vecs[oc], replace))
	}
	fail := func(err error) error {
		return fmt.Errorf("delete the older stored rows of rows %d to %d from %s.%s: %w", bt.N[0], bt.N[bt.Len()-1], w.schema, t.Name, err)
	}
	rows, err := tx.Query(ctx, "DELETE FROM "+w.ident(t.Name)+" AS t USING "+from+" WHERE t."+k+" = s.k AND "+cond+" RETURNING t."+k, args...)
	if err != nil {
		return fail(err)
	}
	var key int64
	if _, err := pgx.ForEachRow(rows, []any{&key}, func() error { away[row[key]] = false; return nil }); err != nil {
		return fail(err)
	}
	return nil
}

// vecParam returns the values i of v with sel[i] as a query parameter for
// an array of v's type (NULLs as nil).
func vecParam(v *schema.Vector, sel []bool) any {
	var out []any
	for i, s := range sel {
		switch {
		case !s:
			continue
		case v.Null[i]:
			out = append(out, nil)
		case v.Type.IsInt():
			out = append(out, v.Int[i])
		case v.Type == schema.Real || v.Type == schema.Double:
			out = append(out, v.Float[i])
		case v.Type == schema.Boolean:
			out = append(out, v.Bool[i])
		case v.Type == schema.Date || v.Type == schema.Timestamp:
			out = append(out, v.Time[i])
		default: // text, json
			out = append(out, string(v.Bytes[v.Off[i]:v.Off[i+1]]))
		}
	}
	return out
}
