// Package drivertest is the conformance suite every warehouse backend runs.
// A backend's own test is a few lines:
//
//	func TestConformance(t *testing.T) {
//		drivertest.RunConformanceTests(t, func(t *testing.T) driver.Warehouse {
//			w, err := mybackend.Open(t.Context(), ...fresh, isolated location...)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { w.Close() })
//			return w
//		})
//	}
//
// Besides the driver.Warehouse contract, the suite fixes what Query returns so
// that every backend prints the same: int64 for integer columns, float64,
// string for text and JSON (the JSON text, compared by meaning), bool,
// time.Time for timestamps and dates (compared as instants; dates at
// midnight UTC), nil for NULL. It also requires Query to refuse writes, and
// Load to wrap warehouse.ErrInvalidData around the database's rejections of
// rows (a NULL primary key, a duplicate primary key in append mode) but
// not around other failures.
// Timestamps are compared at microsecond precision.
package drivertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/schema"
	"github.com/sluicehq/sluice/warehouse"
	"github.com/sluicehq/sluice/warehouse/driver"
)

// RunConformanceTests runs the suite. open must return a fresh, empty and
// isolated warehouse on every call and register its own cleanup (Close, and
// removing what it created) with t.Cleanup.
func RunConformanceTests(t *testing.T, open func(t *testing.T) driver.Warehouse) {
	h := func(t *testing.T) *harness {
		d := open(t)
		if d == nil {
			t.Fatal("open returned a nil warehouse")
		}
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		t.Cleanup(cancel)
		return &harness{t: t, ctx: ctx, d: d, w: warehouse.New("drivertest", d)}
	}
	cases := []struct {
		name string
		f    func(*harness)
	}{
		{"CreatesTableWhenMissing", testCreatesTableWhenMissing},
		{"EnsureTableIsIdempotent", testEnsureTableIsIdempotent},
		{"ConcurrentEnsureTableSucceeds", testConcurrentEnsureTableSucceeds},
		{"AppendLoadsEveryRow", testAppendLoadsEveryRow},
		{"MergeKeepsOneRowPerKeyLastWins", testMergeKeepsOneRowPerKeyLastWins},
		{"MergeWithCompositeKeyLastWins", testMergeWithCompositeKeyLastWins},
		{"MergeWhenEveryColumnIsKeyKeepsOneRow", testMergeWhenEveryColumnIsKey},
		{"SameVersionLoadsOnce", testSameVersionLoadsOnce},
		{"NewETagLoadsAgain", testNewETagLoadsAgain},
		{"EmptyObjectIsRecordedOnce", testEmptyObjectIsRecordedOnce},
		{"ConcurrentDuplicateLoadsCommitOnce", testConcurrentDuplicateLoadsCommitOnce},
		{"ConcurrentDifferentLoadsAllCommit", testConcurrentDifferentLoadsAllCommit},
		{"FailedLoadLeavesNoLedgerRow", testFailedLoadLeavesNoLedgerRow},
		{"BadDataIsErrInvalidData", testBadDataIsErrInvalidData},
		{"CancelledLoadWritesNothing", testCancelledLoadWritesNothing},
		{"InvalidBatchIsRejectedBeforeTheBackend", testInvalidBatchIsRejected},
		{"AllTypesRoundTrip", testAllTypesRoundTrip},
		{"TimestampsSortInTimeOrder", testTimestampsSortInTimeOrder},
		{"LedgerListsVersions", testLedgerListsVersions},
		{"LedgerHasAnswersPerVersionAndTable", testLedgerHasAnswersPerVersionAndTable},
		{"QueryReturnsColumnsAndRows", testQueryReturnsColumnsAndRows},
		{"QueryRefusesWrites", testQueryRefusesWrites},
		{"TablesAreIndependentInLedger", testTablesAreIndependentInLedger},
		{"LedgerRecentAndSummary", testLedgerRecentAndSummary},
		{"MergeNewerVersionWinsWhateverTheCommitOrder", testMergeNewerVersionWinsWhateverTheCommitOrder},
		{"ReplaceSwapsExactlyThePreviousVersionsRows", testReplaceSwapsExactlyThePreviousVersionsRows},
		{"ReplaceIgnoresAnOlderVersion", testReplaceIgnoresAnOlderVersion},
		{"ConcurrentVersionsLeaveTheNewest", testConcurrentVersionsLeaveTheNewest},
		{"EnsureTableAddsANewColumn", testEnsureTableAddsANewColumn},
		{"EnsureTableRefusesAChangedType", testEnsureTableRefusesAChangedType},
		{"QuarantineKeepsGoodRowsAndRejectsBadOnes", testQuarantineKeepsGoodRowsAndRejectsBadOnes},
		{"StreamingLoadOfManyRowsKeepsMemoryFlat", testStreamingLoadOfManyRowsKeepsMemoryFlat},
		{"ManyBatchesCommitInOneTransactionOrNotAtAll", testManyBatchesCommitInOneTransactionOrNotAtAll},
		{"MergeAcrossBatchesKeepsTheWinnerAndCountsEachKeyOnce", testMergeAcrossBatchesKeepsTheWinnerAndCountsEachKeyOnce},
		{"MergeOfManyBatchesMixingStoredAndNewKeys", testMergeOfManyBatchesMixingStoredAndNewKeys},
		{"QuarantineOfManyRejectsAcrossBatchesKeepsThemAll", testQuarantineOfManyRejectsAcrossBatchesKeepsThemAll},
		{"RealColumnsHoldFloat32Values", testRealColumnsHoldFloat32Values},
		{"MissingTableIsErrNoTable", testMissingTableIsErrNoTable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.f(h(t)) })
	}
}

type harness struct {
	t   *testing.T
	ctx context.Context
	d   driver.Warehouse
	w   *warehouse.Warehouse
	seq int // versions handed out by load
}

// batchRows is the batch size rowsOf uses: small, so that the suite's
// loads span several batches.
const batchRows = 100

// rowsOf streams rows of t's columns in batches of batchRows rows.
func (h *harness) rowsOf(t warehouse.Table, rows [][]any) schema.Reader {
	h.t.Helper()
	return h.rowsWith(t.Columns, rows...)
}

// rowsWith streams rows of columns cols in batches of batchRows rows.
func (h *harness) rowsWith(cols []schema.Column, rows ...[]any) schema.Reader {
	h.t.Helper()
	r, err := schema.FromRows(cols, rows, batchRows)
	if err != nil {
		h.t.Fatalf("schema.FromRows: %v", err)
	}
	return r
}

// backendLoad calls the backend's Load directly, bypassing the checks of
// warehouse.Load.
func (h *harness) backendLoad(ctx context.Context, b warehouse.Batch) (warehouse.Result, error) {
	res, err := h.d.Load(ctx, driver.Batch{Table: driver.Table(b.Table), Mode: driver.Mode(b.Mode), Key: b.Key, ETag: b.ETag,
		Version: b.Version, Rows: b.Rows, OnBadRow: driver.OnBadRow(b.OnBadRow)})
	return warehouse.Result(res), err
}

var (
	// items has no primary key (append only).
	items = warehouse.Table{Name: "items", Columns: []schema.Column{
		{Name: "id", Type: schema.BigInt}, {Name: "name", Type: schema.Text},
	}}
	// users is keyed by id.
	users = warehouse.Table{Name: "users", Columns: []schema.Column{
		{Name: "id", Type: schema.BigInt}, {Name: "name", Type: schema.Text}, {Name: "score", Type: schema.Integer},
	}, PrimaryKey: []string{"id"}}
)

func (h *harness) ensure(t warehouse.Table) {
	h.t.Helper()
	if err := h.w.EnsureTable(h.ctx, t); err != nil {
		h.t.Fatalf("EnsureTable(%s): %v", t.Name, err)
	}
}

// load loads rows as the next object version: each call's Version is
// greater than the previous call's.
func (h *harness) load(t warehouse.Table, mode warehouse.Mode, key, etag string, rows ...[]any) warehouse.Result {
	h.t.Helper()
	h.seq++
	res, err := h.w.Load(h.ctx, warehouse.Batch{Table: t, Mode: mode, Key: key, ETag: etag, Version: fmt.Sprintf("v%08d", h.seq), Rows: h.rowsOf(t, rows)})
	if err != nil {
		h.t.Fatalf("Load(%s, %s, %s): %v", t.Name, key, etag, err)
	}
	return res
}

func (h *harness) query(sql string) ([]string, [][]any) {
	h.t.Helper()
	cols, rows, err := h.w.Query(h.ctx, sql)
	if err != nil {
		h.t.Fatalf("Query(%q): %v", sql, err)
	}
	return cols, rows
}

// rows returns the query's rows with integers normalised to int64.
func (h *harness) rows(sql string) [][]any {
	h.t.Helper()
	_, rows := h.query(sql)
	return rows
}

func (h *harness) count(table string) int64 {
	h.t.Helper()
	rows := h.rows("SELECT count(*) FROM " + table)
	if len(rows) != 1 || len(rows[0]) != 1 {
		h.t.Fatalf("count(*) from %s returned %v", table, rows)
	}
	n, ok := rows[0][0].(int64)
	if !ok {
		h.t.Fatalf("count(*) from %s returned %T %v, want int64", table, rows[0][0], rows[0][0])
	}
	return n
}

func (h *harness) ledger(table string) []warehouse.LedgerEntry {
	h.t.Helper()
	l, err := h.w.Ledger(h.ctx, table)
	if err != nil {
		h.t.Fatalf("Ledger(%q): %v", table, err)
	}
	sort.Slice(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		return a.ETag < b.ETag
	})
	return l
}

func (h *harness) wantRows(sql string, want [][]any) {
	h.t.Helper()
	got := h.rows(sql)
	if !reflect.DeepEqual(got, want) {
		if len(got) == 0 && len(want) == 0 {
			return
		}
		h.t.Fatalf("%s\n got %s\nwant %s", sql, show(got), show(want))
	}
}

func show(rows [][]any) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString("[")
		for i, v := range r {
			if i > 0 {
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, "%T(%v)", v, v)
		}
		b.WriteString("]")
	}
	return b.String()
}

func (h *harness) wantResult(got warehouse.Result, loaded bool, n int64) {
	h.t.Helper()
	if got.Loaded != loaded || got.Rows != n {
		h.t.Fatalf("Load returned %+v, want Loaded=%v Rows=%d", got, loaded, n)
	}
}

func testCreatesTableWhenMissing(h *harness) {
	h.ensure(users)
	cols, rows := h.query("SELECT id, name, score FROM users")
	if !reflect.DeepEqual(cols, []string{"id", "name", "score"}) || len(rows) != 0 {
		h.t.Fatalf("new table: columns %v rows %v, want [id name score] and no rows", cols, rows)
	}
	h.load(users, warehouse.Merge, "k", "e", []any{int64(1), "a", int64(2)})
	h.wantRows("SELECT id, name, score FROM users", [][]any{{int64(1), "a", int64(2)}})
}

func testEnsureTableIsIdempotent(h *harness) {
	h.ensure(items)
	h.ensure(items)
	h.load(items, warehouse.Append, "k", "e", []any{int64(1), "a"})
	// Rows already loaded stay when the spec gains a column.
	changed := items
	changed.Columns = append([]schema.Column{}, items.Columns...)
	changed.Columns = append(changed.Columns, schema.Column{Name: "extra", Type: schema.Text})
	h.ensure(changed)
	h.wantRows("SELECT id, name FROM items", [][]any{{int64(1), "a"}})
}

func testConcurrentEnsureTableSucceeds(h *harness) {
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := users
			if i%2 == 1 {
				t = items
			}
			errs <- h.w.EnsureTable(h.ctx, t)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			h.t.Fatalf("concurrent EnsureTable: %v", err)
		}
	}
	if h.count("users")+h.count("items") != 0 {
		h.t.Fatal("new tables are not empty")
	}
}

func testAppendLoadsEveryRow(h *harness) {
	h.ensure(items)
	res := h.load(items, warehouse.Append, "data/a.csv", "e1",
		[]any{int64(1), "a"}, []any{int64(1), "a"}, []any{int64(2), nil})
	h.wantResult(res, true, 3)
	h.wantRows("SELECT id, name FROM items ORDER BY id, name",
		[][]any{{int64(1), "a"}, {int64(1), "a"}, {int64(2), nil}})
	// A large batch arrives whole.
	var many [][]any
	for i := range 5000 {
		many = append(many, []any{int64(i), fmt.Sprint("row", i)})
	}
	h.wantResult(h.load(items, warehouse.Append, "data/b.csv", "e1", many...), true, 5000)
	if n := h.count("items"); n != 5003 {
		h.t.Fatalf("items has %d rows, want 5003", n)
	}
	h.wantRows("SELECT min(id), max(id), count(DISTINCT id) FROM items WHERE name LIKE 'row%'",
		[][]any{{int64(0), int64(4999), int64(5000)}})
}

func testMergeKeepsOneRowPerKeyLastWins(h *harness) {
	h.ensure(users)
	res := h.load(users, warehouse.Merge, "u.json", "v1",
		[]any{int64(1), "a", int64(10)},
		[]any{int64(2), "b", int64(20)},
		[]any{int64(1), "c", nil},
		[]any{int64(1), "d", int64(11)})
	h.wantResult(res, true, 2)
	h.wantRows("SELECT id, name, score FROM users ORDER BY id",
		[][]any{{int64(1), "d", int64(11)}, {int64(2), "b", int64(20)}})
	// A later version of the object, and another object, update by key.
	h.load(users, warehouse.Merge, "u.json", "v2", []any{int64(2), "e", nil}, []any{int64(3), "f", int64(30)})
	h.load(users, warehouse.Merge, "other.json", "v1", []any{int64(3), "g", int64(31)})
	h.wantRows("SELECT id, name, score FROM users ORDER BY id",
		[][]any{{int64(1), "d", int64(11)}, {int64(2), "e", nil}, {int64(3), "g", int64(31)}})
}

func testMergeWithCompositeKeyLastWins(h *harness) {
	t := warehouse.Table{Name: "daily", Columns: []schema.Column{
		{Name: "day", Type: schema.Date}, {Name: "site", Type: schema.Text}, {Name: "hits", Type: schema.BigInt},
	}, PrimaryKey: []string{"site", "day"}}
	h.ensure(t)
	d1 := time.Date(2020, 8, 7, 0, 0, 0, 0, time.UTC)
	d2 := d1.AddDate(0, 0, 1)
	res := h.load(t, warehouse.Merge, "k", "e",
		[]any{d1, "a", int64(1)}, []any{d1, "b", int64(2)}, []any{d2, "a", int64(3)}, []any{d1, "a", int64(4)})
	h.wantResult(res, true, 3)
	h.wantRows("SELECT site, hits FROM daily ORDER BY site, day",
		[][]any{{"a", int64(4)}, {"a", int64(3)}, {"b", int64(2)}})
}

func testMergeWhenEveryColumnIsKey(h *harness) {
	t := warehouse.Table{Name: "tags", Columns: []schema.Column{{Name: "tag", Type: schema.Text}}, PrimaryKey: []string{"tag"}}
	h.ensure(t)
	h.load(t, warehouse.Merge, "k", "1", []any{"x"}, []any{"y"}, []any{"x"})
	h.load(t, warehouse.Merge, "k", "2", []any{"x"}, []any{"z"})
	h.wantRows("SELECT tag FROM tags ORDER BY tag", [][]any{{"x"}, {"y"}, {"z"}})
}

func testSameVersionLoadsOnce(h *harness) {
	h.ensure(items)
	h.wantResult(h.load(items, warehouse.Append, "k", "e", []any{int64(1), "a"}), true, 1)
	// Redelivery, even with different content, writes nothing.
	h.wantResult(h.load(items, warehouse.Append, "k", "e", []any{int64(2), "b"}, []any{int64(3), "c"}), false, 0)
	h.wantRows("SELECT id, name FROM items", [][]any{{int64(1), "a"}})
	if l := h.ledger("items"); len(l) != 1 || l[0].Rows != 1 {
		h.t.Fatalf("ledger = %+v, want one entry with 1 row", l)
	}
}

func testNewETagLoadsAgain(h *harness) {
	h.ensure(items)
	h.load(items, warehouse.Append, "k", "e1", []any{int64(1), "a"})
	h.wantResult(h.load(items, warehouse.Append, "k", "e2", []any{int64(1), "a"}, []any{int64(2), "b"}), true, 2)
	if n := h.count("items"); n != 3 {
		h.t.Fatalf("items has %d rows, want 3", n)
	}
	if l := h.ledger("items"); len(l) != 2 || l[0].ETag != "e1" || l[1].ETag != "e2" {
		h.t.Fatalf("ledger = %+v, want versions e1 and e2", l)
	}
}

func testEmptyObjectIsRecordedOnce(h *harness) {
	h.ensure(items)
	h.wantResult(h.load(items, warehouse.Append, "empty.csv", "e"), true, 0)
	h.wantResult(h.load(items, warehouse.Append, "empty.csv", "e"), false, 0)
	if l := h.ledger("items"); len(l) != 1 || l[0].Key != "empty.csv" || l[0].Rows != 0 {
		h.t.Fatalf("ledger = %+v, want one entry for empty.csv with 0 rows", l)
	}
}

func testConcurrentDuplicateLoadsCommitOnce(h *harness) {
	h.ensure(items)
	h.ensure(users)
	var rows [][]any
	for i := range 200 {
		rows = append(rows, []any{int64(i), "x"})
	}
	for _, tc := range []struct {
		t    warehouse.Table
		mode warehouse.Mode
		rows [][]any
	}{
		{items, warehouse.Append, rows},
		{users, warehouse.Merge, [][]any{{int64(1), "a", nil}, {int64(2), "b", nil}}},
	} {
		const n = 8
		results := make([]warehouse.Result, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i], errs[i] = h.w.Load(h.ctx, warehouse.Batch{Table: tc.t, Mode: tc.mode, Key: "dup", ETag: "e", Version: "v1", Rows: h.rowsOf(tc.t, tc.rows)})
			}()
		}
		close(start)
		wg.Wait()
		loaded := 0
		for i := range n {
			if errs[i] != nil {
				h.t.Fatalf("%s: concurrent Load %d: %v", tc.t.Name, i, errs[i])
			}
			if results[i].Loaded {
				loaded++
				if results[i].Rows != int64(len(tc.rows)) {
					h.t.Fatalf("%s: winning Load wrote %d rows, want %d", tc.t.Name, results[i].Rows, len(tc.rows))
				}
			} else if results[i].Rows != 0 {
				h.t.Fatalf("%s: duplicate Load reports %d rows written", tc.t.Name, results[i].Rows)
			}
		}
		if loaded != 1 {
			h.t.Fatalf("%s: %d of %d concurrent loads of one version committed, want exactly 1", tc.t.Name, loaded, n)
		}
		if got := h.count(tc.t.Name); got != int64(len(tc.rows)) {
			h.t.Fatalf("%s has %d rows, want %d", tc.t.Name, got, len(tc.rows))
		}
		if l := h.ledger(tc.t.Name); len(l) != 1 {
			h.t.Fatalf("%s: ledger = %+v, want one entry", tc.t.Name, l)
		}
	}
}

func testConcurrentDifferentLoadsAllCommit(h *harness) {
	h.ensure(items)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = h.w.Load(h.ctx, warehouse.Batch{Table: items, Mode: warehouse.Append, Key: fmt.Sprint("obj", i), ETag: "e",
				Rows: h.rowsOf(items, [][]any{{int64(i), "a"}, {int64(i), "b"}})})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			h.t.Fatalf("Load of obj%d: %v", i, err)
		}
	}
	if got := h.count("items"); got != 2*n {
		h.t.Fatalf("items has %d rows, want %d", got, 2*n)
	}
	if l := h.ledger(""); len(l) != n {
		h.t.Fatalf("ledger has %d entries, want %d", len(l), n)
	}
}

func testFailedLoadLeavesNoLedgerRow(h *harness) {
	h.ensure(users)
	h.ensure(items)
	allTypes := allTypesTable()
	h.ensure(allTypes)
	good := make([][]any, 1000)
	for i := range good {
		good[i] = []any{int64(i), "ok", int64(i)}
	}
	withBad := func(bad []any) [][]any {
		rows := append([][]any{}, good...)
		rows[500] = bad // earlier rows were already sent when this one fails
		return rows
	}
	nullRow := make([]any, len(allTypes.Columns))
	cases := []struct {
		name string
		t    warehouse.Table
		mode warehouse.Mode
		rows [][]any
		src  func() schema.Reader // instead of rows
	}{
		{"null primary key", users, warehouse.Merge, withBad([]any{nil, "x", int64(1)}), nil},
		{"null primary key in append", users, warehouse.Append, withBad([]any{nil, "x", int64(1)}), nil},
		{"duplicate primary key in append", users, warehouse.Append, withBad([]any{int64(3), "dup", int64(1)}), nil},
		{"text for a bigint column", items, warehouse.Append, nil, func() schema.Reader {
			return h.rowsWith([]schema.Column{{Name: "id", Type: schema.Text}, {Name: "name", Type: schema.Text}}, []any{"1", "a"}, []any{"two", "b"})
		}},
		{"bigint overflowing an integer column", users, warehouse.Merge, withBad([]any{int64(7), "x", int64(1) << 40}), nil},
		{"invalid JSON", allTypes, warehouse.Append, [][]any{nullRow, withValue(nullRow, "j", `{"a":`)}, nil},
		{"a record the decoder set aside", allTypes, warehouse.Append, nil, func() schema.Reader {
			return withReject(h.rowsOf(allTypes, [][]any{nullRow, nullRow}), schema.Reject{N: 3, Line: 3, Reason: "column flag (boolean): want a bool, got 1.0"})
		}},
	}
	for _, c := range cases {
		before := map[string]int64{"users": h.count("users"), "items": h.count("items"), "all_types": h.count("all_types")}
		rows := h.rowsOf(c.t, c.rows)
		if c.src != nil {
			rows = c.src()
		}
		_, err := h.w.Load(h.ctx, warehouse.Batch{Table: c.t, Mode: c.mode, Key: "bad", ETag: "e", Version: "v1", Rows: rows})
		if err == nil {
			h.t.Fatalf("%s: Load succeeded, want an error", c.name)
		}
		if !strings.Contains(err.Error(), "bad") {
			h.t.Errorf("%s: error %q does not name the object", c.name, err)
		}
		for table, n := range before {
			if got := h.count(table); got != n {
				h.t.Fatalf("%s: failed load changed %s from %d to %d rows", c.name, table, n, got)
			}
		}
		if l := h.ledger(""); len(l) != 0 {
			h.t.Fatalf("%s: failed load left ledger rows %+v", c.name, l)
		}
	}
	// A retry of the same version with good rows loads.
	h.wantResult(h.load(users, warehouse.Merge, "bad", "e", good...), true, 1000)
	h.wantResult(h.load(users, warehouse.Merge, "bad", "e", good...), false, 0)
	if n := h.count("users"); n != 1000 {
		h.t.Fatalf("users has %d rows after the retry, want 1000", n)
	}
}

// testBadDataIsErrInvalidData checks that rows which can never load — those
// warehouse.Load rejects and those the database itself rejects when they
// reach the backend — fail with warehouse.ErrInvalidData and write nothing,
// while a load that fails for another reason does not claim bad data.
func testBadDataIsErrInvalidData(h *harness) {
	h.ensure(users)
	h.ensure(items)
	allTypes := allTypesTable()
	h.ensure(allTypes)
	good := make([][]any, 600)
	for i := range good {
		good[i] = []any{int64(i), "ok", int64(i)}
	}
	withBad := func(bad []any) [][]any {
		rows := append([][]any{}, good...)
		rows[300] = bad // earlier rows were already sent when this one fails
		return rows
	}
	nullRow := make([]any, len(allTypes.Columns))
	type load func(context.Context, warehouse.Batch) (warehouse.Result, error)
	cases := []struct {
		name string
		via  load
		t    warehouse.Table
		mode warehouse.Mode
		rows [][]any
		src  func() schema.Reader // instead of rows
	}{
		// Rejected by warehouse.Load before the backend sees them.
		{"null primary key", h.w.Load, users, warehouse.Merge, withBad([]any{nil, "x", int64(1)}), nil},
		{"a batch with fewer columns than the table", h.w.Load, items, warehouse.Append, nil, func() schema.Reader {
			return h.rowsWith(items.Columns[:1], []any{int64(1)}, []any{int64(2)})
		}},
		{"a text column for a bigint one", h.w.Load, items, warehouse.Append, nil, func() schema.Reader {
			return h.rowsWith([]schema.Column{{Name: "id", Type: schema.Text}, {Name: "name", Type: schema.Text}}, []any{"1", "a"}, []any{"two", "b"})
		}},
		{"a batch whose vectors do not match its rows", h.w.Load, items, warehouse.Append, nil, func() schema.Reader {
			r := h.rowsOf(items, [][]any{{int64(1), "a"}, {int64(2), "b"}})
			return mapBatches(r, func(b *schema.Batch) { b.Vecs[0].Int = b.Vecs[0].Int[:1] })
		}},
		{"a real out of float32's range", h.w.Load, allTypes, warehouse.Append, [][]any{nullRow, withValue(nullRow, "r", 1e39)}, nil},
		{"a record the decoder set aside", h.w.Load, items, warehouse.Append, nil, func() schema.Reader {
			return withReject(h.rowsOf(items, [][]any{{int64(1), "a"}}), schema.Reject{N: 2, Reason: "not JSON"})
		}},
		{"bigint overflowing an integer column", h.w.Load, users, warehouse.Append, withBad([]any{int64(7000), "x", int64(1) << 40}), nil},
		{"invalid JSON", h.w.Load, allTypes, warehouse.Append, [][]any{nullRow, withValue(nullRow, "j", `{"a":`)}, nil},
		{"NUL character in text", h.w.Load, items, warehouse.Append, [][]any{{int64(1), "a"}, {int64(2), "b\x00c"}}, nil},
		{"NUL character in JSON", h.w.Load, allTypes, warehouse.Append, [][]any{nullRow, withValue(nullRow, "j", `{"a":"\u0000"}`)}, nil},
		{"invalid UTF-8 in text", h.w.Load, items, warehouse.Append, [][]any{{int64(1), "a"}, {int64(2), "b\xffc"}}, nil},
		// Passed straight to the backend: the database rejects them.
		{"null primary key in append, at the backend", h.backendLoad, users, warehouse.Append, withBad([]any{nil, "x", int64(1)}), nil},
		{"null primary key in merge, at the backend", h.backendLoad, users, warehouse.Merge, withBad([]any{nil, "x", int64(1)}), nil},
		{"duplicate primary key in append, at the backend", h.backendLoad, users, warehouse.Append, withBad([]any{int64(3), "dup", int64(1)}), nil},
		{"a record the decoder set aside, at the backend", h.backendLoad, items, warehouse.Append, nil, func() schema.Reader {
			return withReject(h.rowsOf(items, [][]any{{int64(1), "a"}}), schema.Reject{N: 2, Reason: "not JSON"})
		}},
		{"duplicate primary key in append, through the warehouse", h.w.Load, users, warehouse.Append, withBad([]any{int64(3), "dup", int64(1)}), nil},
	}
	for _, c := range cases {
		before := map[string]int64{"users": h.count("users"), "items": h.count("items"), "all_types": h.count("all_types")}
		rows := h.rowsOf(c.t, c.rows)
		if c.src != nil {
			rows = c.src()
		}
		_, err := c.via(h.ctx, warehouse.Batch{Table: c.t, Mode: c.mode, Key: "bad", ETag: "e", Version: "v1", Rows: rows})
		if err == nil {
			h.t.Fatalf("%s: Load succeeded, want an error", c.name)
		}
		if !errors.Is(err, warehouse.ErrInvalidData) || !errors.Is(err, driver.ErrInvalidData) {
			h.t.Errorf("%s: error %q is not ErrInvalidData", c.name, err)
		}
		for table, n := range before {
			if got := h.count(table); got != n {
				h.t.Fatalf("%s: failed load changed %s from %d to %d rows", c.name, table, n, got)
			}
		}
		if l := h.ledger(""); len(l) != 0 {
			h.t.Fatalf("%s: failed load left ledger rows %+v", c.name, l)
		}
	}
	// A load that fails for another reason is not bad data.
	missing := warehouse.Table{Name: "not_created", Columns: items.Columns}
	for _, via := range []load{h.w.Load, h.backendLoad} {
		_, err := via(h.ctx, warehouse.Batch{Table: missing, Mode: warehouse.Append, Key: "k", ETag: "e", Rows: h.rowsOf(missing, [][]any{{int64(1), "a"}})})
		if err == nil || errors.Is(err, warehouse.ErrInvalidData) {
			h.t.Errorf("Load into a missing table: error %v, want one that is not ErrInvalidData", err)
		}
	}
	if l := h.ledger(""); len(l) != 0 {
		h.t.Fatalf("failed loads left ledger rows %+v", l)
	}
}

// withReject adds rej to the first batch of r, as a decoder that set a
// record aside would.
func withReject(r schema.Reader, rej schema.Reject) schema.Reader {
	first := true
	return mapBatches(r, func(b *schema.Batch) {
		if first {
			b.Rejects = append(b.Rejects, rej)
			first = false
		}
	})
}

// mapBatches applies f to every batch of r.
func mapBatches(r schema.Reader, f func(*schema.Batch)) schema.Reader {
	return &mapped{r: r, f: f}
}

type mapped struct {
	r schema.Reader
	f func(*schema.Batch)
}

func (m *mapped) Next(ctx context.Context) (*schema.Batch, error) {
	b, err := m.r.Next(ctx)
	if err == nil {
		m.f(b)
	}
	return b, err
}

func (m *mapped) Close() error { return m.r.Close() }

func withValue(row []any, col string, v any) []any {
	out := append([]any{}, row...)
	for i, c := range allTypesTable().Columns {
		if c.Name == col {
			out[i] = v
		}
	}
	return out
}

func testCancelledLoadWritesNothing(h *harness) {
	h.ensure(items)
	ctx, cancel := context.WithCancel(h.ctx)
	cancel()
	_, err := h.w.Load(ctx, warehouse.Batch{Table: items, Mode: warehouse.Append, Key: "k", ETag: "e", Rows: h.rowsOf(items, [][]any{{int64(1), "a"}})})
	if err == nil {
		h.t.Fatal("Load with a cancelled context succeeded")
	}
	if errors.Is(err, warehouse.ErrInvalidData) {
		h.t.Fatalf("Load with a cancelled context: error %q claims the data is bad", err)
	}
	if h.count("items") != 0 || len(h.ledger("")) != 0 {
		h.t.Fatal("cancelled Load wrote rows or a ledger entry")
	}
	h.wantResult(h.load(items, warehouse.Append, "k", "e", []any{int64(1), "a"}), true, 1)
}

func testInvalidBatchIsRejected(h *harness) {
	h.ensure(items)
	bad := []warehouse.Batch{
		{Table: items, Mode: warehouse.Merge, Key: "k", ETag: "e"},                                                        // merge without key
		{Table: items, Mode: warehouse.Append, Key: "k", ETag: "e", Rows: h.rowsWith(items.Columns[:1], []any{int64(1)})}, // short rows
		{Table: items, Mode: "upsert", Key: "k", ETag: "e"},                                                               // unknown mode
		{Table: items, Mode: warehouse.Append, Key: "", ETag: "e"},                                                        // no key
		{Table: warehouse.Table{Name: "bad name", Columns: items.Columns}, Mode: warehouse.Append, Key: "k", ETag: "e"},
	}
	for i, b := range bad {
		if _, err := h.w.Load(h.ctx, b); err == nil {
			h.t.Fatalf("invalid batch %d was accepted", i)
		}
	}
	if len(h.ledger("")) != 0 {
		h.t.Fatal("rejected batches left ledger rows")
	}
	if err := h.w.EnsureTable(h.ctx, warehouse.Table{Name: "x", Columns: []schema.Column{{Name: "a", Type: "decimal"}}}); err == nil {
		h.t.Fatal("EnsureTable accepted an unknown column type")
	}
}

func allTypesTable() warehouse.Table {
	return warehouse.Table{Name: "all_types", Columns: []schema.Column{
		{Name: "id", Type: schema.BigInt},
		{Name: "small", Type: schema.Integer},
		{Name: "x", Type: schema.Double},
		{Name: "r", Type: schema.Real},
		{Name: "s", Type: schema.Text},
		{Name: "flag", Type: schema.Boolean},
		{Name: "ts", Type: schema.Timestamp},
		{Name: "d", Type: schema.Date},
		{Name: "j", Type: schema.JSON},
	}}
}

func testAllTypesRoundTrip(h *harness) {
	t := allTypesTable()
	h.ensure(t)
	ts := time.Date(2020, 8, 7, 14, 3, 4, 123456000, time.UTC)
	day := time.Date(2020, 8, 7, 0, 0, 0, 0, time.UTC)
	plus2 := time.FixedZone("+02", 2*3600)
	in := [][]any{
		{int64(1), int64(-2147483648), 3.25, 1.5, `héllo, "world"` + "\n\t'x'", true, ts, day, `{"a":[1,2,{"b":null}],"c":"x"}`},
		{int64(2), int64(2147483647), -1e300, 0.1, "", false, ts.In(plus2), time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), `[]`},
		{int64(1) << 62, nil, nil, nil, nil, nil, nil, nil, nil},
		{int64(-1) << 62, int64(0), 0.0, -3.4e38, "0", false, time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2999, 12, 31, 0, 0, 0, 0, time.UTC), `"str"`},
	}
	h.wantResult(h.load(t, warehouse.Append, "all.json", "e", in...), true, int64(len(in)))
	cols, got := h.query("SELECT id, small, x, r, s, flag, ts, d, j FROM all_types ORDER BY id")
	want := map[int64][]any{}
	for _, r := range in {
		want[r[0].(int64)] = r
	}
	if !reflect.DeepEqual(cols, []string{"id", "small", "x", "r", "s", "flag", "ts", "d", "j"}) {
		h.t.Fatalf("columns %v", cols)
	}
	if len(got) != len(in) {
		h.t.Fatalf("got %d rows, want %d", len(got), len(in))
	}
	for _, g := range got {
		id, ok := g[0].(int64)
		if !ok {
			h.t.Fatalf("id came back as %T, want int64", g[0])
		}
		w := want[id]
		for i, c := range t.Columns {
			if err := sameValue(c.Type, w[i], g[i]); err != nil {
				h.t.Errorf("row id=%d column %s (%s): %v", id, c.Name, c.Type, err)
			}
		}
	}
}

// sameValue compares a loaded value with what Query returned (see the
// package doc for the Query value contract).
func sameValue(t schema.Type, in, out any) error {
	if in == nil || out == nil {
		if in != out {
			return fmt.Errorf("got %T(%v), want %v", out, out, in)
		}
		return nil
	}
	bad := func() error { return fmt.Errorf("got %T(%v), want %T(%v)", out, out, in, in) }
	switch t {
	case schema.BigInt, schema.Integer, schema.Double, schema.Text, schema.Boolean:
		if !reflect.DeepEqual(in, out) {
			return bad()
		}
	case schema.Real: // a 32-bit float, returned as float64
		if o, ok := out.(float64); !ok || o != float64(float32(in.(float64))) {
			return bad()
		}
	case schema.Timestamp, schema.Date:
		o, ok := out.(time.Time)
		if !ok || !o.Equal(in.(time.Time)) {
			return bad()
		}
	case schema.JSON:
		s, ok := out.(string)
		if !ok {
			return bad()
		}
		var a, b any
		if err := json.Unmarshal([]byte(in.(string)), &a); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(s), &b); err != nil || !reflect.DeepEqual(a, b) {
			return bad()
		}
	default:
		return fmt.Errorf("unknown type %q", t)
	}
	return nil
}

func testTimestampsSortInTimeOrder(h *harness) {
	t := warehouse.Table{Name: "events", Columns: []schema.Column{{Name: "n", Type: schema.BigInt}, {Name: "at", Type: schema.Timestamp}}}
	h.ensure(t)
	base := time.Date(2020, 8, 7, 14, 0, 0, 0, time.UTC)
	h.load(t, warehouse.Append, "k", "e",
		[]any{int64(3), base.Add(500 * time.Millisecond)},
		[]any{int64(1), base.Add(-time.Microsecond)},
		[]any{int64(2), base},
		[]any{int64(4), base.Add(time.Second)},
		[]any{int64(0), base.Add(-time.Hour).In(time.FixedZone("-05", -5*3600))})
	h.wantRows("SELECT n FROM events ORDER BY at", [][]any{{int64(0)}, {int64(1)}, {int64(2)}, {int64(3)}, {int64(4)}})
}

func testLedgerListsVersions(h *harness) {
	h.ensure(items)
	h.ensure(users)
	before := time.Now().Add(-time.Minute)
	h.load(items, warehouse.Append, "a.csv", "1", []any{int64(1), "a"}, []any{int64(2), "b"})
	h.load(items, warehouse.Append, "a.csv", "2", []any{int64(3), "c"})
	h.load(users, warehouse.Merge, "u.csv", "1", []any{int64(1), "a", nil}, []any{int64(1), "b", nil})
	after := time.Now().Add(time.Minute)
	l := h.ledger("items")
	if len(l) != 2 {
		h.t.Fatalf("Ledger(items) = %+v, want 2 entries", l)
	}
	want := []warehouse.LedgerEntry{
		{Table: "items", Key: "a.csv", ETag: "1", Rows: 2},
		{Table: "items", Key: "a.csv", ETag: "2", Rows: 1},
		{Table: "users", Key: "u.csv", ETag: "1", Rows: 1},
	}
	all := h.ledger("")
	if len(all) != len(want) {
		h.t.Fatalf("Ledger(\"\") = %+v, want %d entries", all, len(want))
	}
	for i, e := range all {
		if e.LoadedAt.Before(before) || e.LoadedAt.After(after) {
			h.t.Errorf("entry %d loaded at %v, want between %v and %v", i, e.LoadedAt, before, after)
		}
		e.LoadedAt = time.Time{}
		if e.Version == "" {
			h.t.Errorf("entry %d has no Version", i)
		}
		e.Version = ""
		if e != want[i] {
			h.t.Errorf("entry %d = %+v, want %+v", i, e, want[i])
		}
	}
	if l := h.ledger("nosuchtable"); len(l) != 0 {
		h.t.Fatalf("Ledger(nosuchtable) = %+v, want none", l)
	}
}

func testLedgerHasAnswersPerVersionAndTable(h *harness) {
	h.ensure(items)
	h.ensure(users)
	h.load(items, warehouse.Append, "a.csv", "1", []any{int64(1), "a"})
	h.load(items, warehouse.Append, "b c/ü.csv", "2")
	h.load(users, warehouse.Merge, "u.csv", "1", []any{int64(1), "a", nil})
	ask := []warehouse.ObjectVersion{
		{Key: "a.csv", ETag: "1"},     // loaded
		{Key: "a.csv", ETag: "2"},     // another version of a loaded key
		{Key: "b c/ü.csv", ETag: "2"}, // loaded, empty, odd key
		{Key: "u.csv", ETag: "1"},     // loaded into another table
		{Key: "missing", ETag: "1"},   // never loaded
		{Key: "a.csv", ETag: "1"},     // asked twice
	}
	dask := make([]driver.ObjectVersion, len(ask))
	for i, v := range ask {
		dask[i] = driver.ObjectVersion(v)
	}
	got, err := h.d.LedgerHas(h.ctx, "items", dask)
	if err != nil {
		h.t.Fatalf("LedgerHas: %v", err)
	}
	want := []bool{true, false, true, false, false, true}
	if !slices.Equal(got, want) {
		h.t.Fatalf("LedgerHas(items, %v) = %v, want %v", ask, got, want)
	}
	if got, err := h.d.LedgerHas(h.ctx, "items", nil); err != nil || len(got) != 0 {
		h.t.Fatalf("LedgerHas(items, none) = %v, %v; want an empty answer", got, err)
	}
	// The portable wrapper chunks long lists: every answer lands in place.
	long := make([]warehouse.ObjectVersion, 2*warehouse.MaxLedgerLookup+3)
	for i := range long {
		long[i] = warehouse.ObjectVersion{Key: fmt.Sprintf("k%05d", i), ETag: "x"}
	}
	long[warehouse.MaxLedgerLookup+1] = warehouse.ObjectVersion{Key: "a.csv", ETag: "1"}
	all, err := h.w.LedgerHas(h.ctx, "items", long)
	if err != nil {
		h.t.Fatalf("warehouse.LedgerHas(%d versions): %v", len(long), err)
	}
	for i, has := range all {
		if has != (i == warehouse.MaxLedgerLookup+1) || len(all) != len(long) {
			h.t.Fatalf("warehouse.LedgerHas: answer %d of %d = %v", i, len(all), has)
		}
	}
}

func testQueryReturnsColumnsAndRows(h *harness) {
	h.ensure(users)
	h.load(users, warehouse.Merge, "k", "e", []any{int64(2), "b", int64(5)}, []any{int64(1), "a", nil})
	cols, rows := h.query("SELECT id, name AS label, score FROM users ORDER BY id")
	if !reflect.DeepEqual(cols, []string{"id", "label", "score"}) {
		h.t.Fatalf("columns %v, want [id label score]", cols)
	}
	want := [][]any{{int64(1), "a", nil}, {int64(2), "b", int64(5)}}
	if !reflect.DeepEqual(rows, want) {
		h.t.Fatalf("rows %s, want %s", show(rows), show(want))
	}
	if _, _, err := h.w.Query(h.ctx, "SELECT nope FROM users"); err == nil {
		h.t.Fatal("Query of a missing column succeeded")
	}
	if _, _, err := h.w.Query(h.ctx, "SELECT * FROM missing_table"); err == nil {
		h.t.Fatal("Query of a missing table succeeded")
	}
}

func testQueryRefusesWrites(h *harness) {
	h.ensure(items)
	h.load(items, warehouse.Append, "k", "e", []any{int64(1), "a"})
	for _, sql := range []string{
		"DELETE FROM items",
		"INSERT INTO items (id, name) VALUES (2, 'b')",
		"DROP TABLE items",
		"CREATE TABLE sneaky (a integer)",
	} {
		if _, _, err := h.w.Query(h.ctx, sql); err == nil {
			h.t.Errorf("Query(%q) succeeded, want it refused", sql)
		}
	}
	h.wantRows("SELECT id, name FROM items", [][]any{{int64(1), "a"}})
	h.wantResult(h.load(items, warehouse.Append, "k", "e2", []any{int64(2), "b"}), true, 1)
}

func testTablesAreIndependentInLedger(h *harness) {
	h.ensure(items)
	other := items
	other.Name = "items_copy"
	h.ensure(other)
	h.wantResult(h.load(items, warehouse.Append, "k", "e", []any{int64(1), "a"}), true, 1)
	h.wantResult(h.load(other, warehouse.Append, "k", "e", []any{int64(1), "a"}), true, 1)
	h.wantResult(h.load(other, warehouse.Append, "k", "e", []any{int64(1), "a"}), false, 0)
	if h.count("items") != 1 || h.count("items_copy") != 1 {
		h.t.Fatal("each table should hold the object's row once")
	}
	if len(h.ledger("items")) != 1 || len(h.ledger("items_copy")) != 1 {
		h.t.Fatal("each table should have its own ledger entry")
	}
}

func testLedgerRecentAndSummary(h *harness) {
	h.ensure(items)
	other := items
	other.Name = "items_copy"
	h.ensure(other)
	h.wantResult(h.load(items, warehouse.Append, "a", "e1", []any{int64(1), "a"}, []any{int64(2), "b"}), true, 2)
	h.wantResult(h.load(items, warehouse.Append, "b", "e1", []any{int64(3), "c"}), true, 1)
	h.wantResult(h.load(items, warehouse.Append, "a", "e2", []any{int64(4), "d"}), true, 1)
	h.wantResult(h.load(other, warehouse.Append, "a", "e1", []any{int64(5), "e"}), true, 1)
	recent, err := h.w.LedgerRecent(h.ctx, warehouse.LedgerFilter{Table: "items", Limit: 2})
	if err != nil {
		h.t.Fatal(err)
	}
	if len(recent) != 2 || recent[0].LoadedAt.Before(recent[1].LoadedAt) {
		h.t.Fatalf("LedgerRecent(items, 2) = %+v, want the 2 newest entries, newest first", recent)
	}
	for _, e := range recent {
		if e.Table != "items" {
			h.t.Fatalf("LedgerRecent(items) returned an entry of %s", e.Table)
		}
	}
	byKey, err := h.w.LedgerRecent(h.ctx, warehouse.LedgerFilter{Key: "a"})
	if err != nil {
		h.t.Fatal(err)
	}
	if len(byKey) != 3 {
		h.t.Fatalf("LedgerRecent(key a) = %d entries, want 3 (two versions in items, one in items_copy): %+v", len(byKey), byKey)
	}
	sum, err := h.w.LedgerSummary(h.ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	if len(sum) != 2 || sum[0].Table != "items" || sum[0].Objects != 3 || sum[0].Rows != 4 ||
		sum[1].Table != "items_copy" || sum[1].Objects != 1 || sum[1].Rows != 1 || sum[0].LastLoaded.IsZero() {
		h.t.Fatalf("LedgerSummary = %+v, want items 3 objects 4 rows, items_copy 1 object 1 row", sum)
	}
}

// loadV loads rows as object version (key, etag) with the given Version.
func (h *harness) loadV(t warehouse.Table, mode warehouse.Mode, key, etag, version string, rows ...[]any) warehouse.Result {
	h.t.Helper()
	res, err := h.w.Load(h.ctx, warehouse.Batch{Table: t, Mode: mode, Key: key, ETag: etag, Version: version, Rows: h.rowsOf(t, rows)})
	if err != nil {
		h.t.Fatalf("Load(%s, %s, %s, version %s): %v", t.Name, key, etag, version, err)
	}
	return res
}

// scrambled returns 1..n in a fixed order that is neither ascending nor
// descending.
func scrambled(n int) []int {
	out := make([]int, 0, n)
	for i := range n {
		out = append(out, (i*7+3)%n+1) // 7 is coprime with the n used here
	}
	return out
}

func testMergeNewerVersionWinsWhateverTheCommitOrder(h *harness) {
	h.ensure(users)
	// 30 objects each update id=1; they commit in an order unrelated to
	// their versions, as retries after an outage do.
	const n = 30
	order := scrambled(n)
	if order[0] == 1 || order[n-1] == n {
		h.t.Fatalf("scrambled order %v is too tame for this test", order)
	}
	for _, v := range order {
		res := h.loadV(users, warehouse.Merge, fmt.Sprintf("obj-%02d", v), "e", fmt.Sprintf("%04d", v), []any{int64(1), fmt.Sprint("version ", v), int64(v)})
		if !res.Loaded {
			h.t.Fatalf("version %d: Load = %+v, want Loaded", v, res)
		}
	}
	h.wantRows("SELECT id, name, score FROM users", [][]any{{int64(1), "version 30", int64(30)}})
	// An older version arriving now writes nothing to the table and says so.
	h.wantResult(h.loadV(users, warehouse.Merge, "obj-late", "e", "0000", []any{int64(1), "stale", int64(0)}), true, 0)
	h.wantRows("SELECT name FROM users", [][]any{{"version 30"}})

	// With OrderBy, the column decides first: objects loaded in the
	// reverse of their seq (and with Versions rising as they commit).
	seqd := warehouse.Table{Name: "seqd", Columns: []schema.Column{
		{Name: "id", Type: schema.BigInt}, {Name: "seq", Type: schema.BigInt}, {Name: "name", Type: schema.Text},
	}, PrimaryKey: []string{"id"}, OrderBy: "seq"}
	h.ensure(seqd)
	for i, seq := 0, n; seq >= 1; i, seq = i+1, seq-1 {
		h.loadV(seqd, warehouse.Merge, fmt.Sprintf("s-%02d", seq), "e", fmt.Sprintf("%04d", i), []any{int64(1), int64(seq), fmt.Sprint("seq ", seq)})
	}
	h.wantRows("SELECT id, seq, name FROM seqd", [][]any{{int64(1), int64(n), fmt.Sprint("seq ", n)}})
	// Within one object the greatest seq per key wins, ties going to the
	// later row; an equal seq from a newer object wins too.
	h.loadV(seqd, warehouse.Merge, "within", "e", "0100",
		[]any{int64(2), int64(5), "a"}, []any{int64(2), int64(9), "b"}, []any{int64(2), int64(7), "c"},
		[]any{int64(3), int64(4), "d"}, []any{int64(3), int64(4), "e"})
	h.loadV(seqd, warehouse.Merge, "tie", "e", "0101", []any{int64(1), int64(n), "newer tie"})
	h.wantRows("SELECT id, seq, name FROM seqd ORDER BY id",
		[][]any{{int64(1), int64(n), "newer tie"}, {int64(2), int64(9), "b"}, {int64(3), int64(4), "e"}})
	// A NULL order_by value is bad data naming the row.
	_, err := h.w.Load(h.ctx, warehouse.Batch{Table: seqd, Mode: warehouse.Merge, Key: "nullseq", ETag: "e", Version: "0200",
		Rows: h.rowsOf(seqd, [][]any{{int64(4), int64(1), "ok"}, {int64(5), nil, "no seq"}})})
	if !errors.Is(err, warehouse.ErrInvalidData) || !strings.Contains(err.Error(), "row 2, column seq") {
		h.t.Fatalf("Load with a NULL order_by value: error %v, want ErrInvalidData naming row 2, column seq", err)
	}
}

func testReplaceSwapsExactlyThePreviousVersionsRows(h *harness) {
	h.ensure(items) // no primary key: replace needs none
	h.wantResult(h.loadV(items, warehouse.Replace, "a.csv", "a1", "0001", []any{int64(1), "a1"}, []any{int64(2), "a1"}, []any{int64(2), "a1"}), true, 3)
	h.wantResult(h.loadV(items, warehouse.Replace, "b.csv", "b1", "0001", []any{int64(1), "b1"}, []any{int64(9), "b1"}), true, 2)
	h.wantResult(h.loadV(items, warehouse.Replace, "a.csv", "a2", "0002", []any{int64(3), "a2"}, []any{int64(1), "a2"}), true, 2)
	h.wantRows("SELECT id, name, _sluice_key FROM items ORDER BY _sluice_key, id",
		[][]any{{int64(1), "a2", "a.csv"}, {int64(3), "a2", "a.csv"}, {int64(1), "b1", "b.csv"}, {int64(9), "b1", "b.csv"}})
	// An empty new version empties the key's rows.
	h.wantResult(h.loadV(items, warehouse.Replace, "b.csv", "b2", "0002"), true, 0)
	h.wantRows("SELECT name, count(*) FROM items GROUP BY name ORDER BY name", [][]any{{"a2", int64(2)}})
	// A redelivery writes nothing.
	h.wantResult(h.loadV(items, warehouse.Replace, "a.csv", "a2", "0002", []any{int64(7), "again"}), false, 0)
	if l := h.ledger("items"); len(l) != 4 {
		h.t.Fatalf("ledger = %+v, want 4 entries", l)
	}
}

func testReplaceIgnoresAnOlderVersion(h *harness) {
	h.ensure(items)
	h.wantResult(h.loadV(items, warehouse.Replace, "a.csv", "new", "0002", []any{int64(2), "new"}), true, 1)
	res := h.loadV(items, warehouse.Replace, "a.csv", "old", "0001", []any{int64(1), "old"}, []any{int64(1), "old"})
	if !res.Loaded || !res.Superseded || res.Rows != 0 {
		h.t.Fatalf("Load of an older version = %+v, want Loaded, Superseded and 0 rows", res)
	}
	h.wantRows("SELECT id, name FROM items", [][]any{{int64(2), "new"}})
	l := h.ledger("items")
	if len(l) != 2 || l[0].ETag != "new" || l[1].ETag != "old" || l[1].Rows != 0 {
		h.t.Fatalf("ledger = %+v, want the new version and the older one with 0 rows", l)
	}
	// The older version's redelivery is a duplicate; an equal version
	// under another ETag does not replace either.
	h.wantResult(h.loadV(items, warehouse.Replace, "a.csv", "old", "0001", []any{int64(1), "old"}), false, 0)
	if res := h.loadV(items, warehouse.Replace, "a.csv", "same", "0002", []any{int64(3), "same"}); !res.Superseded {
		h.t.Fatalf("Load of an equal version = %+v, want Superseded", res)
	}
	h.wantRows("SELECT id, name FROM items", [][]any{{int64(2), "new"}})
	// Replace needs a Version.
	if _, err := h.w.Load(h.ctx, warehouse.Batch{Table: items, Mode: warehouse.Replace, Key: "a.csv", ETag: "nov"}); err == nil || !strings.Contains(err.Error(), "Version") {
		h.t.Fatalf("Load in replace mode without a Version: error %v, want one asking for it", err)
	}
}

func testEnsureTableAddsANewColumn(h *harness) {
	h.ensure(items)
	h.load(items, warehouse.Append, "k", "1", []any{int64(1), "a"})
	wider := items
	wider.Columns = append(slices.Clip(items.Columns), schema.Column{Name: "extra", Type: schema.Text})
	h.ensure(wider)
	h.load(wider, warehouse.Append, "k", "2", []any{int64(2), "b", "x"})
	h.wantRows("SELECT id, name, extra FROM items ORDER BY id", [][]any{{int64(1), "a", nil}, {int64(2), "b", "x"}})
	// Load adds a column the spec gained without EnsureTable, in the
	// load's own transaction.
	widest := wider
	widest.Columns = append(slices.Clip(wider.Columns), schema.Column{Name: "n", Type: schema.BigInt})
	h.wantResult(h.load(widest, warehouse.Append, "k", "3", []any{int64(3), "c", nil, int64(42)}), true, 1)
	h.wantRows("SELECT id, n FROM items ORDER BY id", [][]any{{int64(1), nil}, {int64(2), nil}, {int64(3), int64(42)}})
}

func testEnsureTableRefusesAChangedType(h *harness) {
	posts := warehouse.Table{Name: "posts", Columns: []schema.Column{{Name: "id", Type: schema.BigInt}, {Name: "userid", Type: schema.BigInt}}}
	h.ensure(posts)
	changed := posts
	changed.Columns = []schema.Column{{Name: "id", Type: schema.BigInt}, {Name: "userid", Type: schema.Text}}
	err := h.w.EnsureTable(h.ctx, changed)
	if err == nil {
		h.t.Fatal("EnsureTable with a changed column type succeeded")
	}
	for _, want := range []string{"table posts: column userid is bigint in the table but text in the spec", "change the spec back"} {
		if !strings.Contains(err.Error(), want) {
			h.t.Errorf("EnsureTable error %q does not contain %q", err, want)
		}
	}
	// Load refuses it too, before writing anything.
	_, err = h.w.Load(h.ctx, warehouse.Batch{Table: changed, Mode: warehouse.Append, Key: "k", ETag: "e", Rows: h.rowsOf(changed, [][]any{{int64(1), "u"}})})
	if err == nil || !strings.Contains(err.Error(), "column userid is bigint in the table but text in the spec") {
		h.t.Fatalf("Load with a changed column type: error %v, want one naming both types", err)
	}
	if h.count("posts") != 0 || len(h.ledger("")) != 0 {
		h.t.Fatal("the refused Load wrote rows or a ledger entry")
	}
}

// recordSource streams n generated records (record i on line i+1) of
// columns cols in batches of size rows, a fresh batch each time; the
// records in reject are set aside as a decoder would (raw text
// {"record":i}). at, when set, runs before the batch holding record i is
// returned.
type recordSource struct {
	cols   []schema.Column
	n      int
	size   int
	row    func(i int) []any // record i, 1-based
	reject map[int]string    // record → the decoder's reason
	at     map[int]func()
	i      int // records returned
}

func (s *recordSource) Next(ctx context.Context) (*schema.Batch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.i >= s.n {
		return nil, io.EOF
	}
	b := schema.NewBatch(s.cols)
	for s.i < s.n && b.Len()+len(b.Rejects) < max(s.size, 1) {
		s.i++
		if f := s.at[s.i]; f != nil {
			f()
		}
		if why, ok := s.reject[s.i]; ok {
			b.Rejects = append(b.Rejects, schema.Reject{N: int64(s.i), Line: int64(s.i + 1), Reason: why, Raw: fmt.Sprintf(`{"record":%d}`, s.i)})
			continue
		}
		for j, v := range s.row(s.i) {
			if err := b.Vecs[j].AppendValue(v); err != nil {
				return nil, fmt.Errorf("record %d, column %s: %w", s.i, s.cols[j].Name, err)
			}
		}
		b.EndRow(int64(s.i), int64(s.i+1))
	}
	return b, nil
}

func (s *recordSource) Close() error { return nil }

func testQuarantineKeepsGoodRowsAndRejectsBadOnes(h *harness) {
	h.ensure(users)
	src := func() *recordSource {
		return &recordSource{cols: users.Columns, n: 100, size: 16, reject: map[int]string{70: `field "id": want an integer, got "x"`}, row: func(i int) []any {
			if i == 30 {
				return []any{int64(i), "bad", int64(1) << 40} // fails Load's checks
			}
			return []any{int64(i), "ok", int64(i)}
		}}
	}
	// By default the first bad row fails the load.
	_, err := h.w.Load(h.ctx, warehouse.Batch{Table: users, Mode: warehouse.Merge, Key: "q.json", ETag: "e", Version: "1", Rows: src()})
	if !errors.Is(err, warehouse.ErrInvalidData) || !strings.Contains(err.Error(), "row 30 (line 31), column score") {
		h.t.Fatalf("dead-lettering Load: error %v, want ErrInvalidData naming row 30 (line 31), column score", err)
	}
	if h.count("users") != 0 || len(h.ledger("")) != 0 {
		h.t.Fatal("the failed Load wrote rows or a ledger entry")
	}
	for _, mode := range []warehouse.Mode{warehouse.Merge, warehouse.Append} {
		t := users
		if mode == warehouse.Append {
			t = items
			h.ensure(items)
		}
		b := warehouse.Batch{Table: t, Mode: mode, Key: "q.json", ETag: "e", Version: "1", OnBadRow: warehouse.Quarantine}
		b.Rows = src()
		if mode == warehouse.Append {
			b.Rows = &recordSource{cols: items.Columns, n: 100, size: 16, reject: map[int]string{70: "decoder says no"}, row: func(i int) []any {
				if i == 30 {
					return []any{int64(i), "a\x00b"}
				}
				return []any{int64(i), "ok"}
			}}
		}
		res, err := h.w.Load(h.ctx, b)
		if err != nil {
			h.t.Fatalf("%s: quarantining Load: %v", mode, err)
		}
		if !res.Loaded || res.Rows != 98 || res.Rejected != 2 {
			h.t.Fatalf("%s: quarantining Load = %+v, want Loaded, 98 rows, 2 rejected", mode, res)
		}
		if n := h.count(t.Name); n != 98 {
			h.t.Fatalf("%s: %s has %d rows, want 98", mode, t.Name, n)
		}
		rej := h.rows("SELECT _sluice_key, _sluice_etag, record, line, reason, raw FROM " + t.Name + "__rejected ORDER BY record")
		if len(rej) != 2 {
			h.t.Fatalf("%s: %s__rejected holds %s, want 2 rows", mode, t.Name, show(rej))
		}
		// The decoder's reject keeps its raw record; a row Load's checks
		// refused is kept as its values in JSON.
		raw30 := `[30,"bad",1099511627776]`
		if mode == warehouse.Append {
			raw30 = `[30,"a\u0000b"]`
		}
		for j, want := range []struct {
			record      int64
			reason, raw string
		}{{30, "column", raw30}, {70, "", `{"record":70}`}} {
			r := rej[j]
			if r[0] != "q.json" || r[1] != "e" || r[2] != want.record || r[3] != want.record+1 {
				h.t.Errorf("%s: rejected row %d = %s, want q.json, e, record %d, line %d", mode, j, show([][]any{r}), want.record, want.record+1)
			}
			reason, _ := r[4].(string)
			if reason == "" || !strings.Contains(reason, want.reason) {
				h.t.Errorf("%s: rejected record %d has reason %q", mode, want.record, reason)
			}
			if r[5] != want.raw {
				h.t.Errorf("%s: rejected record %d has raw %v, want %s", mode, want.record, r[5], want.raw)
			}
		}
		// A redelivery is a no-op.
		b.Rows = src()
		if res, err := h.w.Load(h.ctx, b); err != nil || res.Loaded {
			h.t.Fatalf("%s: redelivery = %+v, %v; want Loaded=false", mode, res, err)
		}
		if h.count(t.Name) != 98 || h.count(t.Name+"__rejected") != 2 {
			h.t.Fatalf("%s: the redelivery changed the tables", mode)
		}
		l := h.ledger(t.Name)
		if len(l) != 1 || l[0].Rows != 98 || l[0].Rejected != 2 {
			h.t.Fatalf("%s: ledger = %+v, want one entry with 98 rows and 2 rejected", mode, l)
		}
	}
}

// heapInUse returns the bytes of live heap objects after a full GC.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func mb(n uint64) float64 { return float64(n) / (1 << 20) }

func testStreamingLoadOfManyRowsKeepsMemoryFlat(h *harness) {
	// 400k rows: enough to tell streaming from buffering by a factor of
	// more than 100, and to finish within the harness's deadline on SQLite
	// under the race detector (about 1 minute there; 2 s without it).
	const n = 400_000
	h.ensure(items)
	// Every batch is freshly allocated, 1024 rows of about 130 bytes
	// (an int64, a 100-byte text, its offset, null flags, record and line
	// numbers): a load that kept the batches of the object would hold
	// about 50 MB by the last row; one that streams holds a batch or two.
	var early, late uint64
	src := &recordSource{cols: items.Columns, n: n, size: 1024, row: func(i int) []any {
		return []any{int64(i), fmt.Sprintf("%-100d", i)}
	}, at: map[int]func(){
		n / 10: func() { early = heapInUse() },
		n:      func() { late = heapInUse() },
	}}
	base := heapInUse()
	res, err := h.w.Load(h.ctx, warehouse.Batch{Table: items, Mode: warehouse.Append, Key: "big.json", ETag: "e", Rows: src})
	if err != nil {
		h.t.Fatal(err)
	}
	if res.Rows != n || h.count("items") != n {
		h.t.Fatalf("Load = %+v and the table has %d rows, want %d", res, h.count("items"), n)
	}
	h.wantRows("SELECT min(id), max(id), count(DISTINCT id) FROM items", [][]any{{int64(1), int64(n), int64(n)}})
	const limit = 16 << 20
	h.t.Logf("heap in use: %.1f MB before, %.1f MB at row %d, %.1f MB at row %d", mb(base), mb(early), n/10, mb(late), n)
	if late > early+limit || late > base+limit {
		h.t.Fatalf("heap grew from %.1f MB (before) and %.1f MB (row %d) to %.1f MB at row %d: the load buffers rows",
			mb(base), mb(early), n/10, mb(late), n)
	}
}

func testMissingTableIsErrNoTable(h *harness) {
	missing := warehouse.Table{Name: "not_created", Columns: items.Columns, PrimaryKey: []string{"id"}}
	for _, mode := range []warehouse.Mode{warehouse.Append, warehouse.Merge, warehouse.Replace} {
		for name, via := range map[string]func(context.Context, warehouse.Batch) (warehouse.Result, error){"warehouse": h.w.Load, "backend": h.backendLoad} {
			_, err := via(h.ctx, warehouse.Batch{Table: missing, Mode: mode, Key: "k", ETag: "e", Version: "1",
				Rows: h.rowsOf(missing, [][]any{{int64(1), "a"}})})
			if !errors.Is(err, warehouse.ErrNoTable) || errors.Is(err, warehouse.ErrInvalidData) || !strings.Contains(err.Error(), "not_created") {
				h.t.Errorf("%s Load (%s) into a missing table: error %v, want ErrNoTable (not ErrInvalidData) naming the table", name, mode, err)
			}
		}
	}
	if l := h.ledger(""); len(l) != 0 {
		h.t.Fatalf("failed loads left ledger rows %+v", l)
	}
}

func testConcurrentVersionsLeaveTheNewest(h *harness) {
	h.ensure(items)
	h.ensure(users)
	const n = 12
	var wg sync.WaitGroup
	errs := make([]error, 2*n)
	start := make(chan struct{})
	for v := 1; v <= n; v++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			rows := [][]any{{int64(v), fmt.Sprint("v", v)}, {int64(v), fmt.Sprint("v", v)}}
			_, errs[v-1] = h.w.Load(h.ctx, warehouse.Batch{Table: items, Mode: warehouse.Replace, Key: "a.csv", ETag: fmt.Sprint(v),
				Version: fmt.Sprintf("%04d", v), Rows: h.rowsOf(items, rows)})
		}()
		go func() {
			defer wg.Done()
			<-start
			_, errs[n+v-1] = h.w.Load(h.ctx, warehouse.Batch{Table: users, Mode: warehouse.Merge, Key: fmt.Sprint("u", v), ETag: "e",
				Version: fmt.Sprintf("%04d", v), Rows: h.rowsOf(users, [][]any{{int64(1), fmt.Sprint("v", v), int64(v)}})})
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			h.t.Fatalf("concurrent load %d: %v", i, err)
		}
	}
	last := fmt.Sprint("v", n)
	h.wantRows("SELECT id, name FROM items", [][]any{{int64(n), last}, {int64(n), last}})
	h.wantRows("SELECT id, name FROM users", [][]any{{int64(1), last}})
}

func testManyBatchesCommitInOneTransactionOrNotAtAll(h *harness) {
	h.ensure(items)
	h.ensure(users)
	// 200 batches of 512 rows: the object is 200 times the batch size.
	const n, size = 200 * 512, 512
	// Keys the merge meets in the middle of the object, so that it
	// changes its way of writing mid-stream.
	h.load(users, warehouse.Merge, "before", "e", []any{int64(n / 2), "stored", int64(0)}, []any{int64(n/2 + 700), "stored", int64(0)})
	for _, tc := range []struct {
		t    warehouse.Table
		mode warehouse.Mode
		row  func(i int) []any
	}{
		{items, warehouse.Append, func(i int) []any { return []any{int64(i), fmt.Sprint("row ", i)} }},
		{users, warehouse.Merge, func(i int) []any { return []any{int64(i), fmt.Sprint("row ", i), int64(i % 1000)} }},
	} {
		before := h.count(tc.t.Name)
		ledger := len(h.ledger(""))
		ctx, cancel := context.WithCancel(h.ctx)
		src := &recordSource{cols: tc.t.Columns, n: n, size: size, row: tc.row, at: map[int]func(){3 * n / 4: cancel}}
		b := warehouse.Batch{Table: tc.t, Mode: tc.mode, Key: "many.json", ETag: "e", Version: "v2", Rows: src}
		_, err := h.w.Load(ctx, b)
		cancel()
		if err == nil || errors.Is(err, warehouse.ErrInvalidData) {
			h.t.Fatalf("%s: Load cancelled at record %d of %d: error %v, want a transient one", tc.mode, 3*n/4, n, err)
		}
		if got := h.count(tc.t.Name); got != before {
			h.t.Fatalf("%s: the cancelled Load changed %s from %d to %d rows", tc.mode, tc.t.Name, before, got)
		}
		if l := h.ledger(""); len(l) != ledger {
			h.t.Fatalf("%s: the cancelled Load left a ledger row: %+v", tc.mode, l)
		}
		b.Rows = &recordSource{cols: tc.t.Columns, n: n, size: size, row: tc.row}
		res, err := h.w.Load(h.ctx, b)
		if err != nil {
			h.t.Fatalf("%s: Load of %d batches: %v", tc.mode, n/size, err)
		}
		if !res.Loaded || res.Rows != n {
			h.t.Fatalf("%s: Load of %d batches = %+v, want Loaded and %d rows", tc.mode, n/size, res, n)
		}
		want := before + n
		if tc.mode == warehouse.Merge {
			want = n // the two stored keys are among the object's
		}
		if got := h.count(tc.t.Name); got != want {
			h.t.Fatalf("%s: %s has %d rows, want %d", tc.mode, tc.t.Name, got, want)
		}
	}
	h.wantRows(fmt.Sprintf("SELECT name, score FROM users WHERE id = %d", n/2), [][]any{{fmt.Sprint("row ", n/2), int64(n / 2 % 1000)}})
	if l := h.ledger("users"); len(l) != 2 || l[1].Key != "many.json" || l[1].Rows != n {
		h.t.Fatalf("ledger of users = %+v, want before and many.json with %d rows", l, n)
	}
}

func testMergeAcrossBatchesKeepsTheWinnerAndCountsEachKeyOnce(h *harness) {
	seqd := warehouse.Table{Name: "seqd", Columns: []schema.Column{
		{Name: "id", Type: schema.BigInt}, {Name: "seq", Type: schema.BigInt}, {Name: "name", Type: schema.Text},
	}, PrimaryKey: []string{"id"}, OrderBy: "seq"}
	h.ensure(seqd)
	var stored [][]any
	for id := 1; id <= 50; id++ {
		stored = append(stored, []any{int64(id), int64(10), "stored"})
	}
	h.loadV(seqd, warehouse.Merge, "a.json", "e", "0001", stored...)
	// Batches of batchRows rows: the first three hold only new keys; the
	// fourth meets stored keys and repeats keys of the first.
	var rows [][]any
	for id := 100; id < 100+3*batchRows; id++ {
		rows = append(rows, []any{int64(id), int64(10), "new"})
	}
	rows = append(rows,
		[]any{int64(5), int64(5), "older seq loses"},
		[]any{int64(6), int64(10), "equal seq, newer version wins"},
		[]any{int64(100), int64(11), "greater seq wins"},
		[]any{int64(101), int64(9), "smaller seq loses"},
		[]any{int64(102), int64(10), "equal seq, later row wins"},
		[]any{int64(6), int64(10), "later row of the batch wins"},
	)
	res := h.loadV(seqd, warehouse.Merge, "b.json", "e", "0002", rows...)
	// Keys holding b.json's version: the 300 new ones and 6.
	h.wantResult(res, true, 3*batchRows+1)
	h.wantRows("SELECT id, seq, name FROM seqd WHERE id IN (5, 6, 100, 101, 102, 103) ORDER BY id", [][]any{
		{int64(5), int64(10), "stored"},
		{int64(6), int64(10), "later row of the batch wins"},
		{int64(100), int64(11), "greater seq wins"},
		{int64(101), int64(10), "new"},
		{int64(102), int64(10), "equal seq, later row wins"},
		{int64(103), int64(10), "new"},
	})
	if n := h.count("seqd"); n != 50+3*batchRows {
		h.t.Fatalf("seqd has %d rows, want %d", n, 50+3*batchRows)
	}
	// Without OrderBy the later row of a key wins, whatever batch holds it.
	h.ensure(users)
	rows = rows[:0]
	for id := range 2 * batchRows {
		rows = append(rows, []any{int64(id), "first", nil})
	}
	for id := range 2 * batchRows {
		rows = append(rows, []any{int64(id % 7), "again", int64(id)})
	}
	h.wantResult(h.load(users, warehouse.Merge, "u.json", "e", rows...), true, 2*batchRows)
	h.wantRows("SELECT count(*), min(name), max(name) FROM users WHERE id < 7", [][]any{{int64(7), "again", "again"}})
	h.wantRows("SELECT score FROM users WHERE id = 0", [][]any{{int64(2*batchRows - 4)}}) // the last multiple of 7 below 200
}

func testQuarantineOfManyRejectsAcrossBatchesKeepsThemAll(h *harness) {
	h.ensure(items)
	h.ensure(users)
	const n = 5000
	reject := map[int]string{}
	for i := 3; i <= n; i += 3 {
		reject[i] = "set aside by the decoder"
	}
	for _, t := range []warehouse.Table{items, users} {
		mode := warehouse.Append
		if t.Name == users.Name {
			mode = warehouse.Merge
		}
		src := &recordSource{cols: t.Columns, n: n, size: 256, reject: reject, row: func(i int) []any {
			if i%500 == 1 { // fails Load's checks
				return append([]any{int64(i), "bad\x00"}, make([]any, len(t.Columns)-2)...)
			}
			return append([]any{int64(i), "ok"}, make([]any, len(t.Columns)-2)...)
		}}
		res, err := h.w.Load(h.ctx, warehouse.Batch{Table: t, Mode: mode, Key: "q.json", ETag: "e", Version: "1", OnBadRow: warehouse.Quarantine, Rows: src})
		if err != nil {
			h.t.Fatalf("%s: %v", mode, err)
		}
		var wantRejected int64
		for i := 1; i <= n; i++ {
			if _, ok := reject[i]; ok || i%500 == 1 {
				wantRejected++
			}
		}
		if res.Rows != n-wantRejected || res.Rejected != wantRejected {
			h.t.Fatalf("%s: Load = %+v, want %d rows and %d rejected", mode, res, n-wantRejected, wantRejected)
		}
		if got := h.count(t.Name); got != n-wantRejected {
			h.t.Fatalf("%s: %s has %d rows, want %d", mode, t.Name, got, n-wantRejected)
		}
		h.wantRows("SELECT count(*), count(DISTINCT record), min(record), max(record) FROM "+t.Name+"__rejected",
			[][]any{{wantRejected, wantRejected, int64(1), int64(n - n%3)}})
	}
}

func testRealColumnsHoldFloat32Values(h *harness) {
	t := warehouse.Table{Name: "reals", Columns: []schema.Column{{Name: "id", Type: schema.BigInt}, {Name: "r", Type: schema.Real}}, PrimaryKey: []string{"id"}}
	h.ensure(t)
	in := []float64{0, 1.5, 0.1, -2.5e-10, 3.4e38, -3.4e38, math.Inf(1)}
	var rows [][]any
	for i, f := range in {
		rows = append(rows, []any{int64(i), f})
	}
	rows = append(rows, []any{int64(len(in)), nil})
	h.wantResult(h.load(t, warehouse.Merge, "r.json", "e", rows...), true, int64(len(rows)))
	got := h.rows("SELECT id, r FROM reals ORDER BY id")
	if len(got) != len(rows) {
		h.t.Fatalf("reals has %s, want %d rows", show(got), len(rows))
	}
	for i, f := range in {
		if g, ok := got[i][1].(float64); !ok || g != float64(float32(f)) {
			h.t.Errorf("real %g came back as %T(%v), want float64 %v", f, got[i][1], got[i][1], float64(float32(f)))
		}
	}
	if got[len(in)][1] != nil {
		h.t.Errorf("NULL real came back as %v", got[len(in)][1])
	}
	// A value beyond float32's range is bad data, not a silent infinity.
	_, err := h.w.Load(h.ctx, warehouse.Batch{Table: t, Mode: warehouse.Merge, Key: "big.json", ETag: "e", Version: "x",
		Rows: h.rowsOf(t, [][]any{{int64(1), 1.0}, {int64(2), 1e39}})})
	if !errors.Is(err, warehouse.ErrInvalidData) || !strings.Contains(err.Error(), "row 2, column r (real): 1e+39 does not fit a 32-bit float") {
		h.t.Fatalf("Load of 1e39 into a real column: error %v, want ErrInvalidData naming row 2, column r", err)
	}
}

// testMergeOfManyBatchesMixingStoredAndNewKeys merges 60 batches, each
// holding stored keys (an older version, some newer) beside new ones and a
// few keys repeated from earlier batches, for integer keys close together
// and far apart and for text keys: every key ends up with the row that
// wins, each counted once. (A backend may route each batch's rows by
// whether their keys are stored, past any per-load limit of its own.)
func testMergeOfManyBatchesMixingStoredAndNewKeys(h *harness) {
	const batches = 60
	for _, kind := range []string{"dense", "sparse", "text"} {
		typ, key := schema.BigInt, func(i int) any { return int64(i) }
		switch kind {
		case "sparse":
			key = func(i int) any { return int64(i) * 7919 }
		case "text":
			typ, key = schema.Text, func(i int) any { return fmt.Sprintf("k%06d", i) }
		}
		tbl := warehouse.Table{Name: "mix_" + kind, Columns: []schema.Column{
			{Name: "k", Type: typ}, {Name: "v", Type: schema.Text},
		}, PrimaryKey: []string{"k"}}
		h.ensure(tbl)
		n := batches * batchRows
		// Stored: every third key at an older version, every 31st at a
		// newer one (it keeps its row).
		var older, newer [][]any
		for i := 0; i < n; i += 3 {
			if i%31 != 0 {
				older = append(older, []any{key(i), "old"})
			}
		}
		for i := 0; i < n; i += 31 {
			newer = append(newer, []any{key(i), "newer stays"})
		}
		h.loadV(tbl, warehouse.Merge, "old.json", "e", "0001", older...)
		h.loadV(tbl, warehouse.Merge, "newer.json", "e", "0003", newer...)
		// The object: every key once in order, and after each batch's
		// rows every 50th key of the batch before it again (a later row,
		// which wins).
		var rows [][]any
		for b := range batches {
			for i := b * batchRows; i < (b+1)*batchRows; i++ {
				rows = append(rows, []any{key(i), "merged"})
			}
			for i := (b - 1) * batchRows; b > 0 && i < b*batchRows; i += 50 {
				rows = append(rows, []any{key(i), "again"})
			}
		}
		res := h.loadV(tbl, warehouse.Merge, "mix.json", "e", "0002", rows...)
		want := map[string]int64{}
		for i := range n {
			switch {
			case i%31 == 0:
				want["newer stays"]++
			case i%50 == 0 && i < (batches-1)*batchRows:
				want["again"]++
			default:
				want["merged"]++
			}
		}
		h.wantResult(res, true, want["merged"]+want["again"])
		h.wantRows("SELECT v, count(*) FROM "+tbl.Name+" GROUP BY v ORDER BY v", [][]any{
			{"again", want["again"]}, {"merged", want["merged"]}, {"newer stays", want["newer stays"]},
		})
	}
}
