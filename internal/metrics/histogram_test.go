package metrics

import (
	"math"
	"sync"
	"testing"
	"time"
)

func TestHistogram_BucketsCountAndSum(t *testing.T) {
	var h Histogram
	for _, d := range []time.Duration{0, 10 * time.Microsecond, 11 * time.Microsecond, time.Millisecond, time.Minute} {
		h.Observe(d)
	}
	s := h.Snapshot()
	if s.Count() != 5 {
		t.Fatalf("count %d, want 5", s.Count())
	}
	// 0 and 10µs (the bound is inclusive) in the first bucket, 11µs in the
	// second, 1ms in the 1ms bucket, a minute in +Inf.
	want := map[int]uint64{0: 2, 1: 1, 6: 1, NumBuckets - 1: 1}
	for i, c := range s.Counts {
		if c != want[i] {
			t.Errorf("bucket %d: %d, want %d", i, c, want[i])
		}
	}
	if got, want := s.Sum, (time.Minute + time.Millisecond + 21*time.Microsecond).Seconds(); math.Abs(got-want) > 1e-9 {
		t.Errorf("sum %g, want %g", got, want)
	}
}

func TestHistogram_Quantile(t *testing.T) {
	var h Histogram
	if _, ok := h.Snapshot().Quantile(0.99); ok {
		t.Fatal("quantile of an empty histogram")
	}
	for range 99 {
		h.Observe(20 * time.Microsecond) // bucket (10µs, 25µs]
	}
	h.Observe(3 * time.Millisecond) // bucket (2.5ms, 5ms]
	s := h.Snapshot()
	if p50, _ := s.Quantile(0.5); p50 <= 10e-6 || p50 > 25e-6 {
		t.Errorf("p50 %g, want in (10µs, 25µs]", p50)
	}
	if p99, _ := s.Quantile(0.99); p99 <= 10e-6 || p99 > 25e-6 {
		t.Errorf("p99 %g, want in (10µs, 25µs]", p99)
	}
	if p100, _ := s.Quantile(1); p100 <= 2.5e-3 || p100 > 5e-3 {
		t.Errorf("p100 %g, want in (2.5ms, 5ms]", p100)
	}
	h.Observe(time.Hour)
	if top, _ := h.Snapshot().Quantile(1); top != 10 {
		t.Errorf("a rank in +Inf gives %g, want the highest bound 10", top)
	}
}

func TestHistogram_SubAndAdd(t *testing.T) {
	var h Histogram
	h.Observe(time.Millisecond)
	before := h.Snapshot()
	h.Observe(time.Second)
	d := h.Snapshot().Sub(before)
	if d.Count() != 1 || math.Abs(d.Sum-1) > 1e-9 {
		t.Fatalf("delta count %d sum %g, want 1 and 1s", d.Count(), d.Sum)
	}
	var restarted Histogram
	restarted.Observe(time.Millisecond)
	if got := restarted.Snapshot().Sub(h.Snapshot()); got.Count() != 1 {
		t.Errorf("after a restart the delta is the new histogram: count %d", got.Count())
	}
	var sum HistogramSnapshot
	sum.Add(before)
	sum.Add(d)
	if sum.Count() != 2 {
		t.Errorf("merged count %d, want 2", sum.Count())
	}
}

func TestHistogram_Concurrent(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 1000 {
				h.Observe(time.Duration(i) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	if n := h.Snapshot().Count(); n != 4000 {
		t.Fatalf("count %d, want 4000", n)
	}
}

func TestReadProcess(t *testing.T) {
	p := ReadProcess(time.Now())
	if p.Goroutines < 1 || p.HeapAlloc == 0 {
		t.Fatalf("process metrics: %+v", p)
	}
}

// BenchmarkHistogramObserve is the per-event cost of a histogram: the
// bucket search and two atomic adds (docs/BENCHMARKS.md).
func BenchmarkHistogramObserve(b *testing.B) {
	var h Histogram
	d := 40 * time.Microsecond
	for b.Loop() {
		h.Observe(d)
	}
}

// BenchmarkHistogramSince adds the clock reads a caller pays around the
// timed call.
func BenchmarkHistogramSince(b *testing.B) {
	var h Histogram
	for b.Loop() {
		start := Now()
		h.Since(start)
	}
}

// BenchmarkHistogramObserveParallel: every core observing into one
// histogram (the contended case: one hot module).
func BenchmarkHistogramObserveParallel(b *testing.B) {
	var h Histogram
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.Observe(40 * time.Microsecond)
		}
	})
}
