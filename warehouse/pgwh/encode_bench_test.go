package pgwh

import (
	"context"
	"io"
	"testing"

	"github.com/sluicehq/sluice/schema"
	"github.com/sluicehq/sluice/warehouse/drivertest"
)

// BenchmarkEncode measures the COPY encoder alone: 1,000,000 posts rows
// encoded to io.Discard (client CPU per row, without the server).
func BenchmarkEncode(b *testing.B) {
	bs := drivertest.Batches(drivertest.PostsBatches(drivertest.Span(1, 1_000_000), 4096, 0))
	types := []schema.Type{schema.BigInt, schema.BigInt, schema.Text, schema.Text}
	var n int64
	for b.Loop() {
		s := newCopyStream(context.Background(), bs.Reader(), types)
		m, err := io.Copy(io.Discard, s)
		if err != nil {
			b.Fatal(err)
		}
		n += m
		if s.rows != 1_000_000 {
			b.Fatalf("encoded %d rows", s.rows)
		}
	}
	b.SetBytes(n / int64(b.N))
}
