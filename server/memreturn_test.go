package server

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestMemReturn_OnlyAfterALargeDrop(t *testing.T) {
	var live atomic.Int64
	freed := make(chan struct{}, 10)
	m := newMemReturn(live.Load)
	m.free = func() { freed <- struct{}{} }
	set := func(n int64) {
		old := live.Swap(n)
		if n > old {
			m.connected(n)
		} else {
			m.disconnected(n)
		}
	}
	for _, n := range []int64{100, 5000, 3000, 2600} { // down 48%: not yet
		set(n)
	}
	// Small servers never pay for a forced GC: 800 → 0 is under the
	// minimum drop.
	small := newMemReturn(func() int64 { return 0 })
	small.free = func() { t.Error("memory returned after a drop of 800") }
	small.connected(800)
	small.disconnected(0)

	set(2400) // down 52% and 2,600 connections: return
	set(2000) // one return for the whole wave
	select {
	case <-freed:
	case <-time.After(10 * time.Second):
		t.Fatal("no memory return within 10s of a drop from 5000 to 2400 connections")
	}
	eventually := time.Now().Add(5 * time.Second)
	for m.pending.Load() && time.Now().Before(eventually) {
		time.Sleep(time.Millisecond)
	}
	if p := m.peak.Load(); p != 2000 {
		t.Fatalf("peak after the return = %d, want the live count 2000", p)
	}
	select {
	case <-freed:
		t.Fatal("memory returned twice for one wave")
	default:
	}
}

// A sweep that moved many readers returns memory, a small one does not,
// and a large one right after a return does not either.
func TestMemReturn_AfterALargeSweep(t *testing.T) {
	m := newMemReturn(func() int64 { return 5000 })
	freed := make(chan struct{}, 10)
	m.free = func() { freed <- struct{}{} }
	m.stacksFreed(memReturnMinDrop - 1)
	select {
	case <-freed:
		t.Fatal("memory returned after a small sweep")
	case <-time.After(2 * memReturnDelay):
	}
	m.stacksFreed(memReturnMinDrop)
	select {
	case <-freed:
	case <-time.After(10 * time.Second):
		t.Fatal("no memory return within 10s of a sweep that moved 1000 readers")
	}
	// Clients that talk every 10–20 s get a large sweep every time: one
	// return a minute (stacksReturnEvery), not one per sweep.
	for m.pending.Load() {
		time.Sleep(10 * time.Millisecond)
	}
	m.stacksFreed(memReturnMinDrop)
	select {
	case <-freed:
		t.Fatal("a second return right after the first")
	case <-time.After(2 * memReturnDelay):
	}
}
