package runtime

import "time"

// The watchdog enforces Config.EventTimeout. Every call runs under its
// instance's context, which never ends by itself (no timer or context
// allocated per event), the runtime is compiled with termination checks
// (WithCloseOnContextDone), and one goroutine per Runtime looks at the
// start time of every busy instance a few times per timeout. (wazero v1.12
// starts a goroutine per call once termination checks are compiled in, to
// watch the context: about +1.1 µs per event here, see docs/BENCHMARKS.md.)
// A call past its deadline is claimed by a CAS on the instance's callStart
// — the event itself CASes it back to 0 when it returns, so exactly one side
// wins — and the instance's context is ended (stopctx.go), which makes
// wazero close the module and the running guest exit at its next loop
// back-edge. Only there: wazero v1.12 checks nowhere else, so a guest that
// recurses without looping runs until it returns or overflows its stack,
// past the deadline (TestModule_LoopFreeRecursionPastDeadline).

func (r *Runtime) startWatchdog() {
	if r.cfg.EventTimeout <= 0 {
		return
	}
	stop := make(chan struct{})
	r.stopWatchdog = stop
	r.noteTimeout(r.cfg.EventTimeout)
	r.noteTimeout(r.cfg.TaskTimeout)
	go func() {
		tick := time.NewTimer(time.Duration(r.tick.Load()))
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
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
func (r *Runtime) stopOverdue(now time.Time) {
	stop := func(inst *instance) {
		start := inst.callStart.Load()
		if start != 0 && start < now.UnixNano()-inst.timeout.Nanoseconds() && inst.callStart.CompareAndSwap(start, -1) {
			inst.stop.stop()
		}
	}
	for _, m := range r.liveModules() {
		m.pool.each(stop)
		m.taskPool.each(stop)
	}
}

func (r *Runtime) liveModules() []*Module {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Module, 0, len(r.modules))
	for m := range r.modules {
		out = append(out, m)
	}
	return out
}
