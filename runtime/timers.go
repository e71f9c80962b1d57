package runtime

import (
	"container/heap"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/wasmgate/wasmgate/abi"
)

// timerSet holds one module's timers (set_timer, ABI.md §5.8). It belongs
// to the module's State, so timers survive a reload and fire into whichever
// version is current.
//
// A timer is pending (in a heap ordered by due time) until it is due, then
// ready: queued for delivery until an instance is free. Both count against
// max: a guest calling set_timer(0, …) in a loop fills the bound and gets
// ErrnoLimit, instead of stacking one blocked goroutine and one payload per
// timer. One time.Timer, armed for the earliest due time, moves due timers
// to the ready queue; ready timers are delivered in that order by at most
// workers goroutines (the module's pool size), which exist only while
// timers are ready. No timer costs a goroutine of its own.
type timerSet struct {
	max     int
	workers int
	target  func() Target
	log     *slog.Logger
	// ctx ends at close: a delivery under way is stopped (watchdog.go).
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // delivery goroutines

	mu         sync.Mutex // guards the fields below
	next       int64
	pending    timerHeap
	byID       map[int64]*timerEntry // pending, by id
	alarm      *time.Timer           // fires at pending[0].due; nil until the first set
	ready      []*timerEntry         // due, waiting for delivery, oldest first
	delivering int                   // delivery goroutines running
	closed     bool
	fired      int64 // timers fired, for Stats
}

type timerEntry struct {
	id      int64
	due     time.Time
	payload []byte
	index   int // in pending
}

// timerHeap is a container/heap of pending timers, earliest first (then
// by id, so that equal due times fire in the order they were set).
type timerHeap []*timerEntry

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if h[i].due.Equal(h[j].due) {
		return h[i].id < h[j].id
	}
	return h[i].due.Before(h[j].due)
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	e := x.(*timerEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *timerHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

func newTimerSet(limit, workers int, target func() Target, log *slog.Logger) *timerSet {
	ctx, cancel := context.WithCancel(context.Background())
	return &timerSet{max: limit, workers: max(workers, 1), target: target, log: log, ctx: ctx, cancel: cancel, byID: map[int64]*timerEntry{}}
}

// set arms a one-shot timer and returns its id (> 0).
func (ts *timerSet) set(delay time.Duration, payload []byte) (int64, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	switch {
	case ts.closed:
		return 0, abi.ErrnoUnsupported
	case len(ts.pending)+len(ts.ready) >= ts.max:
		return 0, abi.ErrnoLimit
	}
	ts.next++
	e := &timerEntry{id: ts.next, due: time.Now().Add(delay), payload: payload}
	heap.Push(&ts.pending, e)
	ts.byID[e.id] = e
	if ts.pending[0] == e { // the new earliest
		ts.armLocked()
	}
	return e.id, nil
}

// armLocked points the alarm at the earliest pending timer.
func (ts *timerSet) armLocked() {
	if len(ts.pending) == 0 {
		return
	}
	d := time.Until(ts.pending[0].due)
	if ts.alarm == nil {
		ts.alarm = time.AfterFunc(d, ts.ring)
		return
	}
	ts.alarm.Reset(d)
}

// clear cancels a pending timer and reports whether it was pending. A
// timer that is due and waits for delivery can no longer be cleared
// (ABI.md §5.8: it has fired).
func (ts *timerSet) clear(id int64) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	e, ok := ts.byID[id]
	if ok {
		heap.Remove(&ts.pending, e.index)
		delete(ts.byID, id)
	}
	return ok
}

// ring moves every due timer to the ready queue, re-arms the alarm and
// makes sure delivery goroutines are running. A ring with nothing due (the
// alarm was reset while it fired) only re-arms.
func (ts *timerSet) ring() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return
	}
	now := time.Now()
	for len(ts.pending) > 0 && !ts.pending[0].due.After(now) {
		e := heap.Pop(&ts.pending).(*timerEntry)
		delete(ts.byID, e.id)
		ts.ready = append(ts.ready, e)
		ts.fired++
	}
	ts.armLocked()
	for n := min(len(ts.ready), ts.workers) - ts.delivering; n > 0; n-- {
		ts.delivering++
		ts.wg.Add(1)
		go ts.deliver()
	}
}

// deliver runs on_timer for ready timers until there are none left.
func (ts *timerSet) deliver() {
	defer ts.wg.Done()
	for {
		ts.mu.Lock()
		if len(ts.ready) == 0 || ts.closed {
			ts.delivering--
			ts.mu.Unlock()
			return
		}
		e := ts.ready[0]
		ts.ready[0] = nil // let the payload go
		ts.ready = ts.ready[1:]
		if len(ts.ready) == 0 {
			ts.ready = nil // drop the drained backing array
		}
		ts.mu.Unlock()
		t := ts.target()
		if t == nil {
			continue
		}
		if err := t.OnTimer(ts.ctx, e.id, e.payload); err != nil {
			ts.log.Warn("timer event failed", "timer", e.id, "err", err)
		}
	}
}

// counts returns the timers not yet delivered (pending or ready) and the
// timers fired.
func (ts *timerSet) counts() (waiting int, fired int64) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.pending) + len(ts.ready), ts.fired
}

// close stops every pending timer, drops the ready ones and stops a
// delivery under way, without waiting for it (wait does).
func (ts *timerSet) close() {
	ts.mu.Lock()
	ts.closed = true
	if ts.alarm != nil {
		ts.alarm.Stop()
	}
	ts.pending, ts.byID, ts.ready = nil, nil, nil
	ts.mu.Unlock()
	ts.cancel()
}

// wait waits until the delivery goroutines have returned, or ctx ends.
func (ts *timerSet) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { ts.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("on_timer still running: %w", ctx.Err())
	}
}
