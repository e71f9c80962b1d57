package runtime

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// eventTimes is a histogram of how long guest calls took, for the event-time
// percentiles of Stats (GET /status, the admin dashboard). Buckets are
// lock-free counters: a power of two of microseconds split in four, so a
// percentile is known within 25 % (a 40 µs call lands in [40, 48) µs),
// from 1 µs to hours, in 2 KiB per module. It counts every call since the
// module version was loaded; a reload starts a new one.
type eventTimes struct {
	buckets [timeBuckets]atomic.Int64
}

const (
	timeSub     = 4 // sub-buckets per power of two
	timeBuckets = timeSub + 62*timeSub
)

// timeBucket is the bucket of a call of us microseconds.
func timeBucket(us uint64) int {
	if us < timeSub {
		return int(us)
	}
	e := bits.Len64(us) - 1 // ≥ 2
	sub := (us >> (e - 2)) & (timeSub - 1)
	i := timeSub + (e-2)*timeSub + int(sub)
	return min(i, timeBuckets-1)
}

// timeBucketHigh is the smallest duration, in microseconds, above bucket
// i: a percentile is reported as the upper edge of its bucket, never below
// the true value.
func timeBucketHigh(i int) uint64 {
	if i < timeSub {
		return uint64(i) + 1
	}
	e := uint((i-timeSub)/timeSub + 2)
	sub := uint64((i - timeSub) % timeSub)
	return (timeSub + sub + 1) << (e - 2)
}

func (h *eventTimes) record(d time.Duration) {
	h.buckets[timeBucket(uint64(max(d.Microseconds(), 0)))].Add(1)
}

// percentiles returns the given quantiles (0 < q ≤ 1), in microseconds; all
// 0 before the first call.
func (h *eventTimes) percentiles(qs ...float64) []int64 {
	var counts [timeBuckets]int64
	var total int64
	for i := range h.buckets {
		counts[i] = h.buckets[i].Load()
		total += counts[i]
	}
	out := make([]int64, len(qs))
	if total == 0 {
		return out
	}
	for j, q := range qs {
		rank := int64(q*float64(total) + 0.5)
		rank = min(max(rank, 1), total)
		var seen int64
		for i, n := range counts {
			if seen += n; seen >= rank {
				out[j] = int64(timeBucketHigh(i))
				break
			}
		}
	}
	return out
}
