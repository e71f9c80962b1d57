package runtime

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrQuarantined reports an event refused because its module failed too
// often (see health). It stays quarantined for Config.QuarantineCooldown
// (for ever when 0), or until it is replaced by a reload.
var ErrQuarantined = errors.New("module quarantined")

// errDeadline marks a guest call stopped by the watchdog.
var errDeadline = errors.New("ran past its deadline")

// health is one module version's crash policy. A failed call (trap or
// timeout) throws its instance away; the instance that replaces it is
// started no sooner than a back-off that doubles with every consecutive
// failure (RestartBackoff up to RestartBackoffMax) and resets on the first
// success — the rate-limited restart proxy-wasm recommends, so a guest that
// traps on every event cannot turn the host into an instantiation loop.
//
// Quarantine closes every client of the module, so it must react to a module
// that is broken, not to one that is loaded or to one client's poison input.
// A failure counts whatever its kind (a trap, or a timeout: a loop on every
// event is as broken as a panic), but the module is quarantined only when
// both hold:
//
//   - CrashLimit failures within CrashWindow, and
//   - those failures are at least half of the calls made since the first of
//     them (calls counts every guest call of the module version).
//
// A module that fails on most events meets both within CrashLimit events. A
// burst of timeouts under load — a slow host call, a GC pause, 60 senders
// on a 2-core box — hits a fraction of the calls while the rest succeed, and
// so does a client sending input that makes the handler trap or loop, as
// long as other clients are being served: neither closes everyone any more.
// (A module with one active client can still be quarantined by that
// client's poison input; it then had nobody else to serve.)
//
// Quarantine lifts by itself QuarantineCooldown after it began (0: only a
// reload lifts it): the failure window starts afresh, and if the cause is
// still there the module is quarantined again after CrashLimit failures,
// each restart paced by the back-off.
type health struct {
	cfg   Config
	calls *atomic.Int64 // guest calls made (Module.events)
	// streak is the number of consecutive failures; read on every event,
	// so it is atomic and the lock is taken only when it is non-zero.
	streak      atomic.Int32
	quarantined atomic.Pointer[quarantine] // nil: not quarantined
	onLift      func(why string)           // called once when a quarantine lifts by itself

	mu        sync.Mutex // guards failures, restartAt
	failures  []failure
	restartAt time.Time

	traps, timeouts atomic.Int64
}

// quarantine is why and until when a module is quarantined.
type quarantine struct {
	why   string
	until time.Time // zero: until a reload
}

// failure is one failed call: when, and the module's call count then.
type failure struct {
	at    time.Time
	calls int64
}

// succeeded records a call that returned normally.
func (h *health) succeeded() {
	if h.streak.Load() == 0 {
		return
	}
	h.mu.Lock()
	h.streak.Store(0)
	h.restartAt = time.Time{}
	h.mu.Unlock()
}

// failed records a failed call and returns the quarantine reason if this
// failure crossed the limit (once).
func (h *health) failed(err error) (why string) {
	kind := "trap"
	if errors.Is(err, errDeadline) {
		h.timeouts.Add(1)
		kind = "timeout"
	} else {
		h.traps.Add(1)
	}
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	streak := h.streak.Add(1)
	backoff := h.cfg.RestartBackoff << min(streak-1, 30)
	if backoff <= 0 || backoff > h.cfg.RestartBackoffMax {
		backoff = h.cfg.RestartBackoffMax
	}
	h.restartAt = now.Add(backoff)
	if h.cfg.CrashLimit <= 0 || h.quarantined.Load() != nil {
		return ""
	}
	calls := h.calls.Load()
	keep := h.failures[:0]
	for _, f := range h.failures {
		if now.Sub(f.at) < h.cfg.CrashWindow {
			keep = append(keep, f)
		}
	}
	h.failures = append(keep, failure{at: now, calls: calls})
	n := len(h.failures)
	if n < h.cfg.CrashLimit {
		return ""
	}
	// The calls since the first failure in the window, that one included.
	since := calls - h.failures[0].calls + 1
	if 2*int64(n) < since {
		// Drop the oldest failures past the limit: the list stays bounded.
		h.failures = append(h.failures[:0], h.failures[n-h.cfg.CrashLimit:]...)
		return ""
	}
	last, _, _ := strings.Cut(err.Error(), "\n") // drop the wasm stack trace
	why = fmt.Sprintf("%d failures in %d calls within %s (last: %s: %s)", n, since, h.cfg.CrashWindow, kind, last)
	q := &quarantine{why: why}
	if h.cfg.QuarantineCooldown > 0 {
		q.until = now.Add(h.cfg.QuarantineCooldown)
	}
	h.quarantined.Store(q)
	return why
}

// waitRestart blocks until a new instance may be started.
func (h *health) waitRestart(ctx context.Context) error {
	if h.streak.Load() == 0 {
		return nil
	}
	h.mu.Lock()
	wait := time.Until(h.restartAt)
	h.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// reason returns why the module is quarantined, or "". A quarantine whose
// cool-down has passed is lifted here (events, handshakes and /status all
// ask), so no timer is needed.
func (h *health) reason() string {
	q := h.quarantined.Load()
	if q == nil {
		return ""
	}
	if q.until.IsZero() || time.Now().Before(q.until) {
		return q.why
	}
	if h.quarantined.CompareAndSwap(q, nil) {
		h.mu.Lock()
		h.failures = h.failures[:0]
		h.mu.Unlock()
		if h.onLift != nil {
			h.onLift(q.why)
		}
	}
	return ""
}
