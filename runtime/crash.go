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
// often (Config.CrashLimit failures within Config.CrashWindow). It stays
// quarantined until it is replaced by a reload.
var ErrQuarantined = errors.New("module quarantined")

// errDeadline marks a guest call stopped by the watchdog.
var errDeadline = errors.New("ran past its deadline")

// health is one module version's crash policy. A failed call (trap or
// timeout) throws its instance away; the instance that replaces it is
// started no sooner than a back-off that doubles with every consecutive
// failure (RestartBackoff up to RestartBackoffMax) and resets on the first
// success — the rate-limited restart proxy-wasm recommends, so a guest that
// traps on every event cannot turn the host into an instantiation loop.
// CrashLimit failures within CrashWindow quarantine the module.
type health struct {
	cfg Config
	// streak is the number of consecutive failures; read on every event,
	// so it is atomic and the lock is taken only when it is non-zero.
	streak      atomic.Int32
	quarantined atomic.Pointer[string] // why, once quarantined

	mu        sync.Mutex // guards failures, restartAt
	failures  []time.Time
	restartAt time.Time

	traps, timeouts atomic.Int64
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
func (h *health) failed(err error) (quarantine string) {
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
	keep := h.failures[:0]
	for _, t := range h.failures {
		if now.Sub(t) < h.cfg.CrashWindow {
			keep = append(keep, t)
		}
	}
	h.failures = append(keep, now)
	if len(h.failures) < h.cfg.CrashLimit {
		return ""
	}
	last, _, _ := strings.Cut(err.Error(), "\n") // drop the wasm stack trace
	why := fmt.Sprintf("%d failures within %s (last: %s: %s)", len(h.failures), h.cfg.CrashWindow, kind, last)
	h.quarantined.Store(&why)
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

// reason returns why the module is quarantined, or "".
func (h *health) reason() string {
	if p := h.quarantined.Load(); p != nil {
		return *p
	}
	return ""
}
