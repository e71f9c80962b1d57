// Package guestlog turns a guest's stdout/stderr into log records (Writer)
// and rate-limits one module's guest logging (Limiter), so a guest printing
// in a loop costs neither the log nor host memory.
package guestlog

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"
)

// Defaults for the fields of Limits (used when a field is 0).
const (
	DefaultLinesPerSecond = 100
	DefaultBurst          = 2 * DefaultLinesPerSecond
	DefaultBytesPerSecond = 64 << 10
)

// byteBurstSeconds is how many seconds of BytesPerSecond the byte bucket
// holds.
const byteBurstSeconds = 2

// SuppressedMsg is the message of the record that reports lines the
// limiter dropped.
const SuppressedMsg = "guest log lines suppressed"

// Limits are one module's guest log budgets.
type Limits struct {
	// LinesPerSecond is the sustained rate of lines (0: 100; negative: no
	// line limit).
	LinesPerSecond int
	// Burst is how many lines may come at once (0: twice LinesPerSecond).
	Burst int
	// BytesPerSecond is the sustained rate of bytes (0: 64 KiB; negative:
	// no byte limit), with a burst of two seconds' worth.
	BytesPerSecond int
}

// resolve fills in the defaults; a negative rate is returned as 0, meaning
// unlimited.
func (l Limits) resolve() (lines, burst, bytes int) {
	lines, burst, bytes = l.LinesPerSecond, l.Burst, l.BytesPerSecond
	switch {
	case lines == 0:
		lines = DefaultLinesPerSecond
	case lines < 0:
		lines = 0
	}
	if burst <= 0 {
		burst = max(2*lines, 1)
	}
	switch {
	case bytes == 0:
		bytes = DefaultBytesPerSecond
	case bytes < 0:
		bytes = 0
	}
	return lines, burst, bytes
}

// Limiter rate-limits one module's guest logging: its instances' stdout
// and stderr lines (Writer) and its calls to the log host function. It is
// two token buckets, one of lines and one of bytes, refilled continuously;
// a line is logged only if both hold enough for it, and is otherwise
// dropped and counted. The first line let through after drops is preceded
// by one "guest log lines suppressed" record with the counts. One limiter
// is shared by all instances of a module: a guest cannot raise its budget
// by running on more instances. A nil *Limiter lets everything through.
type Limiter struct {
	log    *slog.Logger
	module string
	// Rates are per nanosecond; an unlimited bucket has an infinite burst
	// and level, so it never refuses and needs no branch.
	lineRate, lineBurst float64
	byteRate, byteBurst float64
	epoch               time.Time
	clock               func() int64 // nanoseconds since some start; nil: since epoch (tests replace it)

	mu                    sync.Mutex // guards the fields below
	last                  int64      // clock reading of the last refill
	lines, bytes          float64    // tokens available
	dropped, droppedBytes int64      // since the last line let through
}

// NewLimiter returns the limiter for one module, or nil if limits turns
// both limits off. Its suppressed records go to log, tagged with module.
func NewLimiter(limits Limits, log *slog.Logger, module string) *Limiter {
	lines, burst, bytes := limits.resolve()
	if lines == 0 && bytes == 0 {
		return nil
	}
	l := &Limiter{log: log, module: module, epoch: time.Now()}
	l.lineRate, l.lineBurst = bucket(lines, burst)
	// A full-length line must fit in the byte bucket, or it could never pass.
	l.byteRate, l.byteBurst = bucket(bytes, max(byteBurstSeconds*bytes, MaxLine+len(TruncatedMark)))
	l.lines, l.bytes = l.lineBurst, l.byteBurst
	return l
}

// bucket converts a per-second rate and a burst to a per-nanosecond rate
// and a capacity; rate 0 is unlimited.
func bucket(perSecond, burst int) (rate, capacity float64) {
	if perSecond == 0 {
		return 0, math.Inf(1)
	}
	return float64(perSecond) / 1e9, float64(burst)
}

func (l *Limiter) now() int64 {
	if l.clock != nil {
		return l.clock()
	}
	return int64(time.Since(l.epoch))
}

// Allow reports whether a line of n bytes may be logged now, and takes its
// tokens if so. If lines were dropped before it, it first logs how many.
func (l *Limiter) Allow(n int) bool {
	if l == nil {
		return true
	}
	return l.allowAt(l.now(), n)
}

// allowAt is Allow at a clock reading taken by the caller, so that the
// lines of one write share one reading (the clock costs as much as the
// rest of Allow).
func (l *Limiter) allowAt(now int64, n int) bool {
	l.mu.Lock()
	if elapsed := float64(now - l.last); elapsed > 0 {
		l.lines = min(l.lineBurst, l.lines+elapsed*l.lineRate)
		l.bytes = min(l.byteBurst, l.bytes+elapsed*l.byteRate)
		l.last = now
	}
	size := float64(n)
	if l.lines < 1 || l.bytes < size {
		l.dropped++
		l.droppedBytes += int64(n)
		l.mu.Unlock()
		return false
	}
	l.lines--
	l.bytes -= size
	dropped, droppedBytes := l.dropped, l.droppedBytes
	l.dropped, l.droppedBytes = 0, 0
	l.mu.Unlock()
	if dropped > 0 {
		l.log.LogAttrs(context.Background(), slog.LevelWarn, SuppressedMsg,
			slog.String("module", l.module), slog.Int64("dropped", dropped), slog.Int64("dropped_bytes", droppedBytes))
	}
	return true
}
