package server

import (
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// Returning memory after a large drop in connections. Go's background
// scavenger hands freed heap back to the OS slowly (it targets about 1% of
// one CPU): after 20,000 clients closed, RSS stayed at 351 MB for over a
// minute and took ~76 s to fall to 138 MB. A gateway's load drops in waves
// (a deploy, a network blip on the client side), and other processes on the
// box are owed that memory back promptly.
//
// So when live connections fall to half of their peak or less, by at least
// memReturnMinDrop, the server calls debug.FreeOSMemory (a GC, then
// returning every free page) once, a little later, at most every
// memReturnEvery. It costs one full GC per large drop, never per
// connection. debug.SetMemoryLimit was the alternative: it needs a figure
// per deployment, makes the GC run hard near it under legitimate load, and
// still returns memory only when the limit is near.
const (
	// memReturnMinDrop is the smallest drop worth a forced GC: about 10-20
	// MiB at the measured per-connection cost (docs/BENCHMARKS.md).
	memReturnMinDrop = 1000
	// memReturnDelay lets a wave of closes finish before the return, so one
	// return serves the whole wave.
	memReturnDelay = time.Second
	// memReturnEvery bounds how often memory is returned while
	// connections keep falling.
	memReturnEvery = 5 * time.Second
)

// memReturn tracks the peak of live connections and returns memory after
// a large drop.
type memReturn struct {
	active  func() int64 // live connections now
	free    func()       // debug.FreeOSMemory; tests count calls instead
	peak    atomic.Int64 // highest live count since the last return
	pending atomic.Bool  // a return is scheduled
	// lastStacks is when the sweep last asked for a return (UnixNano).
	lastStacks atomic.Int64
	last       atomic.Int64 // when memory was last returned (UnixNano)
}

func newMemReturn(active func() int64) *memReturn {
	return &memReturn{active: active, free: freeOSMemory}
}

// freeOSMemory runs a GC before debug.FreeOSMemory's own: objects the
// closed connections left in sync.Pools (fasthttp's request contexts and
// buffers) survive one GC in the pools' victim caches, and would keep
// their pages.
func freeOSMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

// connected records a new live count after a connect.
func (m *memReturn) connected(n int64) {
	for {
		p := m.peak.Load()
		if n <= p || m.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

// disconnected checks a new live count after a disconnect and schedules a
// return if the drop from the peak is large.
func (m *memReturn) disconnected(n int64) {
	p := m.peak.Load()
	if p-n < memReturnMinDrop || n > p/2 {
		return
	}
	m.schedule()
}

// stacksFreed schedules a return after the sweep moved n readers to fresh
// goroutines (transport.Hub.Sweep), if that freed enough: their grown
// stacks are free heap now, which the scavenger would return slowly, and
// the read buffers the idle readers lent sit in a sync.Pool, which lets go
// of them only at its second GC (freeOSMemory runs both). The idle
// readers' own pages are what a quiet server is left with, so this is when
// it is worth the GCs.
//
// At most one every stacksReturnEvery: clients that talk every 10–20 s
// would otherwise have a thousand readers moved at every sweep, and a
// full GC every few seconds for it.
func (m *memReturn) stacksFreed(n int) {
	if n < memReturnMinDrop {
		return
	}
	now := time.Now().UnixNano()
	last := m.lastStacks.Load()
	if now-last < int64(stacksReturnEvery) || !m.lastStacks.CompareAndSwap(last, now) {
		return
	}
	m.schedule()
}

// stacksReturnEvery bounds how often the sweep's freed stacks are worth a
// memory return (stacksFreed).
const stacksReturnEvery = time.Minute

// schedule runs a return a little later, unless one is pending; returns
// are memReturnEvery apart at least.
func (m *memReturn) schedule() {
	if !m.pending.CompareAndSwap(false, true) {
		return
	}
	wait := memReturnDelay
	if next := time.Unix(0, m.last.Load()).Add(memReturnEvery); time.Until(next) > wait {
		wait = time.Until(next)
	}
	time.AfterFunc(wait, m.run)
}

// run returns memory and starts a new peak from the live count now, so a
// further large drop (the rest of the wave) triggers another return.
func (m *memReturn) run() {
	m.free()
	m.last.Store(time.Now().UnixNano())
	m.peak.Store(m.active())
	m.pending.Store(false)
}
