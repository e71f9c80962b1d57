// Package metrics holds what /metrics and `wasmgate status` read beyond
// plain counters: fixed-bucket latency histograms cheap enough for every
// guest call and push command (the recording side: internal/push hands
// their snapshots to client_golang as constant histograms at scrape time),
// and the process metrics GET /status reports (memory, CPU, open files,
// goroutines). It has no dependency.
package metrics

import (
	"sync/atomic"
	"time"
)

// bounds are the inclusive upper bounds, in nanoseconds, of every
// histogram's buckets; a last bucket (+Inf) takes the rest. Fixed, so that
// an observation is one search over a short array and one atomic add, and
// so that every series of a scrape (and every node of a cluster) can be
// summed bucket by bucket. They span a fast guest call (a few µs) to the
// longest task_timeout worth telling apart.
var bounds = [...]int64{
	10e3, 25e3, 50e3, 100e3, 250e3, 500e3, // 10µs … 500µs
	1e6, 2.5e6, 5e6, 10e6, 25e6, 50e6, 100e6, 250e6, 500e6, // 1ms … 500ms
	1e9, 2.5e9, 5e9, 10e9, // 1s … 10s
}

// NumBuckets is the number of buckets of every histogram, +Inf included.
const NumBuckets = len(bounds) + 1

// BucketBounds returns the buckets' upper bounds in seconds, without +Inf.
func BucketBounds() []float64 {
	out := make([]float64, len(bounds))
	for i, b := range bounds {
		out[i] = float64(b) / 1e9
	}
	return out
}

// Histogram counts durations into the fixed buckets. The zero value is
// ready; it must not be copied after first use. Observe is safe for
// concurrent use and costs one bucket search and two uncontended atomic
// adds (the count is the sum of the buckets, so it needs none of its own,
// and it always equals the +Inf bucket).
type Histogram struct {
	counts [NumBuckets]atomic.Uint64
	sum    atomic.Int64 // nanoseconds
}

// Observe records one duration.
func (h *Histogram) Observe(d time.Duration) {
	ns := int64(d)
	i := 0
	for i < len(bounds) && ns > bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	h.sum.Add(ns)
}

// epoch is the origin of Now: set once at start, never changed. Reading
// the monotonic clock through time.Since(epoch) is one clock read, where
// time.Now plus time.Since is three (time.Now reads the wall clock too):
// about 30 ns against 100 ns here, per timed call.
var epoch = time.Now()

// Stamp is a monotonic instant for Histogram.Since (Now).
type Stamp int64

// Now returns the current monotonic instant.
func Now() Stamp { return Stamp(time.Since(epoch)) }

// Since records the time elapsed since start (from Now).
func (h *Histogram) Since(start Stamp) { h.Observe(time.Duration(Now() - start)) }

// Snapshot returns the histogram's counts so far.
func (h *Histogram) Snapshot() HistogramSnapshot {
	s := HistogramSnapshot{Counts: make([]uint64, NumBuckets)}
	for i := range h.counts {
		s.Counts[i] = h.counts[i].Load()
	}
	s.Sum = float64(h.sum.Load()) / 1e9
	return s
}

// HistogramSnapshot is a histogram read at one moment: per-bucket counts
// (not cumulative; the last is +Inf) and the sum of the observations in
// seconds. It is what GET /status carries; BucketBounds gives the bounds.
type HistogramSnapshot struct {
	Counts []uint64 `json:"counts"`
	Sum    float64  `json:"sum_seconds"`
}

// Count returns the number of observations.
func (s HistogramSnapshot) Count() uint64 {
	var n uint64
	for _, c := range s.Counts {
		n += c
	}
	return n
}

// Add adds o's counts and sum to s (merging two series, such as one
// module's event kinds); a nil or short Counts grows.
func (s *HistogramSnapshot) Add(o HistogramSnapshot) {
	if len(s.Counts) < len(o.Counts) {
		s.Counts = append(s.Counts, make([]uint64, len(o.Counts)-len(s.Counts))...)
	}
	for i, c := range o.Counts {
		s.Counts[i] += c
	}
	s.Sum += o.Sum
}

// Sub returns s minus an earlier snapshot of the same histogram: what
// happened between the two. A histogram that restarted in between (its
// module reloaded) gives s itself.
func (s HistogramSnapshot) Sub(earlier HistogramSnapshot) HistogramSnapshot {
	out := HistogramSnapshot{Counts: make([]uint64, len(s.Counts)), Sum: s.Sum - earlier.Sum}
	for i, c := range s.Counts {
		var e uint64
		if i < len(earlier.Counts) {
			e = earlier.Counts[i]
		}
		if e > c {
			return s
		}
		out.Counts[i] = c - e
	}
	return out
}

// Quantile estimates the q-quantile (0 < q ≤ 1) in seconds as Prometheus's
// histogram_quantile does: it finds the bucket holding the rank and
// interpolates linearly inside it. A rank in the +Inf bucket gives the
// highest finite bound. ok is false without observations.
func (s HistogramSnapshot) Quantile(q float64) (seconds float64, ok bool) {
	n := s.Count()
	if n == 0 {
		return 0, false
	}
	rank := q * float64(n)
	var cum uint64
	for i, c := range s.Counts {
		if c == 0 || float64(cum+c) < rank {
			cum += c
			continue
		}
		if i >= len(bounds) {
			return float64(bounds[len(bounds)-1]) / 1e9, true
		}
		lo := 0.0
		if i > 0 {
			lo = float64(bounds[i-1]) / 1e9
		}
		hi := float64(bounds[i]) / 1e9
		return lo + (hi-lo)*(rank-float64(cum))/float64(c), true
	}
	return float64(bounds[len(bounds)-1]) / 1e9, true
}
