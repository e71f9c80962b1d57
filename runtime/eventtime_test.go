package runtime

import (
	"testing"
	"time"
)

// TestEventTimes_Buckets: every duration lands in a bucket whose upper edge
// is above it and at most 25 % (or 1 µs) higher, and buckets are ordered.
func TestEventTimes_Buckets(t *testing.T) {
	prev := -1
	for us := uint64(0); us < 1<<22; us = us*9/8 + 1 {
		i := timeBucket(us)
		if i < prev {
			t.Fatalf("%d µs: bucket %d below the previous %d", us, i, prev)
		}
		prev = i
		high := timeBucketHigh(i)
		if high <= us || float64(high) > float64(us)*1.25+1 {
			t.Fatalf("%d µs: bucket %d edge %d µs", us, i, high)
		}
	}
	if i := timeBucket(^uint64(0)); i != timeBuckets-1 {
		t.Fatalf("largest duration in bucket %d, want the last", i)
	}
}

// TestEventTimes_Percentiles: 99 calls of 10 µs and one of 5 ms give a p50
// near 10 µs and a p99 near 10 µs, p100 near 5 ms; none before any call.
func TestEventTimes_Percentiles(t *testing.T) {
	var h eventTimes
	if p := h.percentiles(0.5, 0.99); p[0] != 0 || p[1] != 0 {
		t.Fatalf("empty: %v", p)
	}
	for range 98 {
		h.record(10 * time.Microsecond)
	}
	h.record(5 * time.Millisecond)
	h.record(5 * time.Millisecond)
	p := h.percentiles(0.5, 0.99, 1)
	if p[0] < 10 || p[0] > 13 || p[2] < 5000 || p[2] > 6250 {
		t.Fatalf("p50, p99, max = %v µs", p)
	}
	if p[1] < 5000 { // rank 99 of 100: a slow call
		t.Fatalf("p99 = %d µs, want the slow calls", p[1])
	}
}

// BenchmarkEventTimes_Record is the histogram's cost per guest call (the
// clock read included).
func BenchmarkEventTimes_Record(b *testing.B) {
	var h eventTimes
	for b.Loop() {
		start := time.Now()
		h.record(time.Since(start))
	}
}
