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
	r.wakeWatchdog = make(chan struct{}, 1)
	r.noteTimeout(r.cfg.EventTimeout)
	r.noteTimeout(r.cfg.TaskTimeout)
	r.clock.Store(time.Now().UnixNano())
	go func() {
		tick := time.NewTimer(time.Duration(r.tick.Load()))
		defer tick.Stop()
		var floor int64 // calls stamped before it count from it (napping)
		idle := time.Duration(0)
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				r.clock.Store(now.UnixNano())
				every := time.Duration(r.tick.Load())
				if r.stopOverdue(now, floor) {
					idle = 0
				} else if idle += every; idle >= watchdogNapAfter && r.nap(stop) {
					now = time.Now()
					r.clock.Store(now.UnixNano())
					floor, idle = now.UnixNano(), 0
				} else if idle >= watchdogNapAfter {
					idle = 0 // a call began as it went to nap
				}
				tick.Reset(every)
			}
		}
	}()
}

// The watchdog naps while no guest call runs: an idle gateway would
// otherwise wake 40 times a second (a 100 ms event_timeout) to find
// nothing, which with the scheduler's wake-ups cost a third of its CPU at
// idle (docs/BENCHMARKS.md, "Load held"). After watchdogNapAfter of ticks
// that found no call running it sets asleep, looks once more, and waits
// for the first call to wake it (runWithDeadline). The look after setting
// asleep, against the call's store of its start before reading asleep,
// keeps a call from running unwatched: one of the two sees the other.
// A call that began while the watchdog napped was stamped with the clock
// of before the nap; its deadline is counted from the wake-up (floor),
// which follows its start at once, so it is not stopped early.
const watchdogNapAfter = time.Second

// nap waits for a call to wake the watchdog; false (at once) if a call is
// running after all. It reports true once woken; it returns false if the
// runtime closes meanwhile too, which the loop then sees.
func (r *Runtime) nap(stop chan struct{}) bool {
	r.asleep.Store(true)
	if r.anyBusy() {
		r.asleep.Store(false)
		return false
	}
	select {
	case <-stop:
		return false
	case <-r.wakeWatchdog:
	}
	r.asleep.Store(false)
	return true
}

// wake ends the watchdog's nap: a call has begun.
func (r *Runtime) wake() {
	select {
	case r.wakeWatchdog <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// anyBusy reports whether a call is running on any instance.
func (r *Runtime) anyBusy() bool {
	busy := false
	look := func(inst *instance) {
		if inst.callStart.Load() != 0 {
			busy = true
		}
	}
	for _, m := range r.liveModules() {
		m.pool.each(look)
		m.taskPool.each(look)
	}
	return busy
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
// timeout (the event timeout, or the task timeout on task instances), and
// reports whether any call is running. Calls are stamped with r.clock,
// which lags the real start by up to one tick, so one tick of grace keeps
// a call from being stopped early: a runaway call stops between its
// deadline and its deadline plus two ticks (a quarter of the shortest
// deadline each). A stamp before floor (the end of a nap) counts from
// floor.
func (r *Runtime) stopOverdue(now time.Time, floor int64) (busy bool) {
	grace := r.tick.Load()
	stop := func(inst *instance) {
		start := inst.callStart.Load()
		if start == 0 {
			return
		}
		busy = true
		if start < 0 {
			return // stopped already, ending
		}
		why := int64(0)
		if inst.timeout > 0 && max(start, floor) < now.UnixNano()-inst.timeout.Nanoseconds()-grace {
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
	return busy
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
