package gateway

import (
	"runtime"
	"time"
)

// Timers (ABI.md §5.8). A timer belongs to the module, not to the instance
// that set it: it fires on whichever instance is free, in whichever version
// of the module is current, even after a hot reload.

var timerFn func(id int64, payload []byte)

// OnTimer registers f (call it from init) to run when a timer set with
// SetTimer fires, with the timer's id and payload (valid only during f).
// Timers are one-shot: call SetTimer again from f for a periodic one.
func OnTimer(f func(id int64, payload []byte)) { timerFn = f }

// SetTimer arms a one-shot timer that fires after d (rounded up to whole
// milliseconds; 0: as soon as possible) with payload (copied), and returns
// its id (> 0). It fails with ErrnoLimit when the module already has the
// maximum of pending timers (max_timers), with ErrnoUnsupported when no
// OnTimer callback is registered, and with ErrnoInvalid for a negative d.
func SetTimer(d time.Duration, payload []byte) (int64, error) {
	if timerFn == nil {
		return 0, ErrnoUnsupported
	}
	ms, err := millis(d)
	if err != nil {
		return 0, err
	}
	r := hostSetTimer(ms, bytesPtr(payload), uint32(len(payload)))
	runtime.KeepAlive(payload)
	return result64(r)
}

// ClearTimer cancels a pending timer and reports whether it was pending;
// false means it has already fired (or started firing), was cleared, or
// never existed.
func ClearTimer(id int64) (bool, error) { return flag(hostClearTimer(id)) }

func handleTimer(timerID int64, payloadLen uint32) (r int32) {
	payload, ok := input(0, payloadLen)
	if !ok {
		return resultBadInput
	}
	if timerFn == nil {
		return resultOK
	}
	defer recoverTo("on_timer", &r, resultPanic)
	timerFn(timerID, payload)
	return resultOK
}
