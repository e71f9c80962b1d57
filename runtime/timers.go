package runtime

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/wasmgate/wasmgate/abi"
)

// timerSet holds one module's pending timers (set_timer, ABI.md §5.8). It
// belongs to the module's State, so timers survive a reload and fire into
// whichever version is current. Each timer is a time.AfterFunc: no goroutine
// exists until one fires, and the one that fires delivers on_timer and ends.
type timerSet struct {
	max    int
	target func() Target
	log    *slog.Logger

	mu     sync.Mutex // guards next, timers, closed
	next   int64
	timers map[int64]*time.Timer
	closed bool
	fired  int64 // timers delivered, for Stats
}

func newTimerSet(max int, target func() Target, log *slog.Logger) *timerSet {
	return &timerSet{max: max, target: target, log: log, timers: map[int64]*time.Timer{}}
}

// set arms a one-shot timer and returns its id (> 0).
func (ts *timerSet) set(delay time.Duration, payload []byte) (int64, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	switch {
	case ts.closed:
		return 0, abi.ErrnoUnsupported
	case len(ts.timers) >= ts.max:
		return 0, abi.ErrnoLimit
	}
	ts.next++
	id := ts.next
	ts.timers[id] = time.AfterFunc(delay, func() { ts.fire(id, payload) })
	return id, nil
}

// clear cancels a pending timer and reports whether it was pending.
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

func (ts *timerSet) fire(id int64, payload []byte) {
	ts.mu.Lock()
	_, pending := ts.timers[id]
	delete(ts.timers, id)
	if pending {
		ts.fired++
	}
	ts.mu.Unlock()
	if !pending { // cleared after it had already started firing
		return
	}
	t := ts.target()
	if t == nil {
		return
	}
	if err := t.OnTimer(context.Background(), id, payload); err != nil {
		ts.log.Warn("timer event failed", "timer", id, "err", err)
	}
}

// counts returns the pending and fired timers.
func (ts *timerSet) counts() (pending int, fired int64) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.timers), ts.fired
}

func (ts *timerSet) close() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.closed = true
	for id, t := range ts.timers {
		t.Stop()
		delete(ts.timers, id)
	}
}
