package runtime

import (
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
// A timer is pending (a time.AfterFunc) until it fires, then ready: queued
// for delivery until an instance is free. Both count against max: a guest
// calling set_timer(0, …) in a loop fills the bound with ready timers and
// gets ErrnoLimit, instead of stacking one blocked goroutine and one payload
// per timer. Ready timers are delivered in firing order by at most workers
// goroutines (the module's pool size), which exist only while timers are
// ready; the goroutine of a firing AfterFunc only queues its timer.
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
	timers     map[int64]*time.Timer // pending
	ready      []readyTimer          // fired, waiting for delivery, oldest first
	delivering int                   // delivery goroutines running
	closed     bool
	fired      int64 // timers fired, for Stats
}

type readyTimer struct {
	id      int64
	payload []byte
}

func newTimerSet(limit, workers int, target func() Target, log *slog.Logger) *timerSet {
	ctx, cancel := context.WithCancel(context.Background())
	return &timerSet{max: limit, workers: max(workers, 1), target: target, log: log, ctx: ctx, cancel: cancel, timers: map[int64]*time.Timer{}}
}

// set arms a one-shot timer and returns its id (> 0).
func (ts *timerSet) set(delay time.Duration, payload []byte) (int64, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	switch {
	case ts.closed:
		return 0, abi.ErrnoUnsupported
	case len(ts.timers)+len(ts.ready) >= ts.max:
		return 0, abi.ErrnoLimit
	}
	ts.next++
	id := ts.next
	ts.timers[id] = time.AfterFunc(delay, func() { ts.fire(id, payload) })
	return id, nil
}

// clear cancels a pending timer and reports whether it was pending. A
// timer that has fired and waits for delivery can no longer be cleared
// (ABI.md §5.8: it has fired).
func (ts *timerSet) clear(id int64) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	t, ok := ts.timers[id]
	if ok {
		t.Stop()
		delete(ts.timers, id)
	}
	return ok
}

// fire moves timer id from pending to ready and makes sure a delivery
// goroutine is running.
func (ts *timerSet) fire(id int64, payload []byte) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if _, pending := ts.timers[id]; !pending || ts.closed { // cleared after it had already started firing
		return
	}
	delete(ts.timers, id)
	ts.fired++
	ts.ready = append(ts.ready, readyTimer{id, payload})
	if ts.delivering < ts.workers {
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
		rt := ts.ready[0]
		ts.ready[0] = readyTimer{} // let the payload go
		ts.ready = ts.ready[1:]
		if len(ts.ready) == 0 {
			ts.ready = nil // drop the drained backing array
		}
		ts.mu.Unlock()
		t := ts.target()
		if t == nil {
			continue
		}
		if err := t.OnTimer(ts.ctx, rt.id, rt.payload); err != nil {
			ts.log.Warn("timer event failed", "timer", rt.id, "err", err)
		}
	}
}

// counts returns the timers not yet delivered (pending or ready) and the
// timers fired.
func (ts *timerSet) counts() (waiting int, fired int64) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.timers) + len(ts.ready), ts.fired
}

// close stops every pending timer, drops the ready ones and stops a
// delivery under way, without waiting for it (wait does).
func (ts *timerSet) close() {
	ts.mu.Lock()
	ts.closed = true
	for id, t := range ts.timers {
		t.Stop()
		delete(ts.timers, id)
	}
	ts.ready = nil
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
