package runtime

import "time"

// The watchdog enforces Config.EventTimeout (and TaskTimeout). Load rewrites
// every module (runtime/internal/stopcheck) so that each loop iteration and
// function entry tests an exported mutable global, wasmgate_stop, and traps
// when it is set; every few thousand of them the guest also leaves native
// code (memory.grow(0)), because Go cannot preempt native code and a
// spinning guest would otherwise hold up every garbage-collector
// stop-the-world. No
// timer, context or goroutine is made per call: one goroutine per Runtime
// looks at the start time of every busy instance four times per deadline.
// A call past its deadline is claimed by a CAS on the instance's callStart
// — the event itself CASes it back to 0 when it returns, so exactly one side
// wins — and the watchdog sets the instance's stop global; the guest traps
// on its own goroutine at its next loop iteration, and the instance is
// discarded. Checking function entries too bounds loop-free recursion
// (TestModule_LoopFreeRecursionStoppedAtDeadline).
//
// The same stop ends a call whose context is done: Shutdown past its
// context, a removed module's timers and tasks. Calls do not watch their
// context themselves (that would cost a goroutine or a Go exit per call);
// the watchdog looks at the Done channel of every busy instance on its
// tick, so a cancelled call stops within two ticks.
//
// wazero's own mechanism (WithCloseOnContextDone) is not used: in v1.12 it
// makes every loop iteration exit native code to Go and every call start a
// goroutine; see docs/BENCHMARKS.md for what it cost.

func (r *Runtime) startWatchdog() {
	if r.cfg.EventTimeout <= 0 {
		return
	}
	stop := make(chan struct{})
	r.stopWatchdog = stop
	r.noteTimeout(r.cfg.EventTimeout)
	r.noteTimeout(r.cfg.TaskTimeout)
	r.clock.Store(time.Now().UnixNano())
	go func() {
		tick := time.NewTimer(time.Duration(r.tick.Load()))
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				r.clock.Store(now.UnixNano())
				r.stopOverdue(now)
				tick.Reset(time.Duration(r.tick.Load()))
			}
		}
	}()
}

// noteTimeout makes the watchdog look often enough for timeout: four times
// per the shortest deadline of any module, at most every millisecond.
func (r *Runtime) noteTimeout(timeout time.Duration) {
	if timeout <= 0 {
		return
	}
	want := int64(max(timeout/4, time.Millisecond))
	for {
		cur := r.tick.Load()
		if cur != 0 && cur <= want || r.tick.CompareAndSwap(cur, want) {
			return
		}
	}
}

// stopOverdue stops every call that has run longer than its instance's
// timeout (the event timeout, or the task timeout on task instances).
// Calls are stamped with r.clock, which lags the real start by up to one
// tick, so one tick of grace keeps a call from being stopped early: a
// runaway call stops between its deadline and its deadline plus two ticks
// (a quarter of the shortest deadline each).
func (r *Runtime) stopOverdue(now time.Time) {
	grace := r.tick.Load()
	stop := func(inst *instance) {
		start := inst.callStart.Load()
		if start <= 0 {
			return
		}
		why := int64(0)
		if inst.timeout > 0 && start < now.UnixNano()-inst.timeout.Nanoseconds()-grace {
			why = stoppedDeadline
		} else if done, _ := inst.callDone.Load().(<-chan struct{}); done != nil {
			select {
			case <-done:
				why = stoppedCancelled
			default:
			}
		}
		if why != 0 && inst.callStart.CompareAndSwap(start, why) && inst.stop != nil {
			inst.stop.Set(1) // the guest traps at its next loop iteration
		}
	}
	for _, m := range r.liveModules() {
		m.pool.each(stop)
		m.taskPool.each(stop)
	}
}

// What the watchdog CASes a stopped call's callStart to: why it stopped it.
const (
	stoppedDeadline  = -1
	stoppedCancelled = -2
)

func (r *Runtime) liveModules() []*Module {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Module, 0, len(r.modules))
	for m := range r.modules {
		out = append(out, m)
	}
	return out
}
