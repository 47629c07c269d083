package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/warehouse"
)

// BenchmarkReconcile100k measures one reconcile of a load over 100,000
// objects (file:// store, SQLite warehouse), all loaded, against the
// alternative of building a set from the table's whole ledger; the peak
// heap is sampled with the GC at 5% so that it is close to live memory.
// (mem:// is no yardstick: gocloud's memblob sorts every key of the bucket
// for each page it lists.) Reproduce:
//
//	go test -run '^$' -bench Reconcile100k -benchtime 3x ./internal/engine
func BenchmarkReconcile100k(b *testing.B) {
	const n = 100_000
	spec := strings.Replace(fmt.Sprintf(reconcileSpec, filepath.Join(b.TempDir(), "wh.db")), "store: mem://", "store: file://"+b.TempDir(), 1)
	e := openEngine(b, spec)
	ctx := context.Background()
	ld, err := e.newLoader(e.cfg.Spec.Loads[0])
	if err != nil {
		b.Fatal(err)
	}
	if err := e.WH.EnsureTable(ctx, ld.table); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		key := fmt.Sprintf("raw/items/dt=2026-01-%02d/part-%06d.json", i%28+1, i)
		o, err := e.Store.Put(ctx, key, []byte(fmt.Sprintf(`{"id": %d}`, i)), "application/json")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.WH.Load(ctx, warehouse.Batch{Table: ld.table, Mode: warehouse.Merge, Key: key, ETag: o.ETag, Version: fmt.Sprint(i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("LedgerHasPerPage", func(b *testing.B) {
		for b.Loop() {
			peak := peakHeap(func() {
				res, err := e.Reconcile(ctx, ReconcileOptions{})
				if err != nil || res.Loads[0].Loaded != n || res.Emitted() != 0 {
					b.Fatalf("%+v %v", res.Loads[0], err)
				}
			})
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		}
	})
	b.Run("LedgerSetOncePerLoad", func(b *testing.B) {
		for b.Loop() {
			peak := peakHeap(func() {
				l, err := e.WH.Ledger(ctx, "items")
				if err != nil {
					b.Fatal(err)
				}
				set := make(map[warehouse.ObjectVersion]bool, len(l))
				for _, x := range l {
					set[warehouse.ObjectVersion{Key: x.Key, ETag: x.ETag}] = true
				}
				if len(set) != n {
					b.Fatalf("ledger has %d", len(set))
				}
			})
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
		}
	})
}

// peakHeap runs f and samples the live heap every millisecond, returning
// the largest growth over the heap before f.
func peakHeap(f func()) uint64 {
	defer debug.SetGCPercent(debug.SetGCPercent(5))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				var m runtime.MemStats
				runtime.ReadMemStats(&m)
				if m.HeapAlloc > base && m.HeapAlloc-base > peak {
					peak = m.HeapAlloc - base
				}
			}
		}
	}()
	f()
	close(done)
	return peak
}
