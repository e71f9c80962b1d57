package main

import (
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: 2^subBits buckets per power of
// two, so a recorded value is off by at most 1/2^subBits (~3%).
const subBits = 5

// histogram is a fixed-size log-linear latency histogram (HDR-style): its
// memory does not grow with the number of samples.
type histogram struct {
	counts [64 << subBits]uint64
	total  uint64
}

func bucketOf(ns uint64) int {
	if ns < 1<<subBits {
		return int(ns)
	}
	exp := bits.Len64(ns) - subBits - 1 // ns >> exp has subBits+1 bits
	return (exp+1)<<subBits + int(ns>>exp) - 1<<subBits
}

// lowOf is the smallest value that falls in bucket i.
func lowOf(i int) uint64 {
	if i < 1<<subBits {
		return uint64(i)
	}
	exp := i>>subBits - 1
	return (uint64(i&(1<<subBits-1)) + 1<<subBits) << exp
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.total++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
}

// quantile returns the value at q (0..1), at the middle of its bucket.
func (h *histogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total-1)) + 1
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := lowOf(i), lowOf(i+1)
			return time.Duration(lo + (hi-lo)/2)
		}
	}
	return 0
}
