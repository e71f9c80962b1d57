package runtime

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"
)

// Defaults for the guest log limits in Config (used when a field is 0).
const (
	DefaultLogLinesPerSecond = 100
	DefaultLogBurst          = 2 * DefaultLogLinesPerSecond
	DefaultLogBytesPerSecond = 64 << 10
)

// logByteBurstSeconds is how many seconds of LogBytesPerSecond the byte
// bucket holds.
const logByteBurstSeconds = 2

// suppressedMsg is the record that reports lines the limiter dropped.
const suppressedMsg = "guest log lines suppressed"

// logLimiter rate-limits one module's guest logging: its instances' stdout
// and stderr lines (logwriter.go) and its calls to the log host function
// (host_session.go). It is two token buckets, one of lines and one of
// bytes, refilled continuously; a line is logged only if both hold enough
// for it, and is otherwise dropped and counted. The first line let through
// after drops is preceded by one "guest log lines suppressed" record with the
// counts. One limiter is shared by all instances of a module: a guest
// cannot raise its budget by running on more instances. A nil *logLimiter
// lets everything through.
type logLimiter struct {
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

// logLimits resolves the Config fields to (lines/s, burst, bytes/s); a
// negative rate is returned as 0, meaning unlimited.
func (c Config) logLimits() (lines, burst, bytes int) {
	lines, burst, bytes = c.LogLinesPerSecond, c.LogBurst, c.LogBytesPerSecond
	switch {
	case lines == 0:
		lines = DefaultLogLinesPerSecond
	case lines < 0:
		lines = 0
	}
	if burst <= 0 {
		burst = max(2*lines, 1)
	}
	switch {
	case bytes == 0:
		bytes = DefaultLogBytesPerSecond
	case bytes < 0:
		bytes = 0
	}
	return lines, burst, bytes
}

// newLogLimiter returns the limiter for one module, or nil if cfg turns
// both limits off.
func newLogLimiter(cfg Config, log *slog.Logger, module string) *logLimiter {
	lines, burst, bytes := cfg.logLimits()
	if lines == 0 && bytes == 0 {
		return nil
	}
	l := &logLimiter{log: log, module: module, epoch: time.Now()}
	l.lineRate, l.lineBurst = bucket(lines, burst)
	// A full-length line must fit in the byte bucket, or it could never pass.
	l.byteRate, l.byteBurst = bucket(bytes, max(logByteBurstSeconds*bytes, maxLogLine+len(truncatedMark)))
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

func (l *logLimiter) now() int64 {
	if l.clock != nil {
		return l.clock()
	}
	return int64(time.Since(l.epoch))
}

// allow reports whether a line of n bytes may be logged now, and takes its
// tokens if so. If lines were dropped before it, it first logs how many.
func (l *logLimiter) allow(n int) bool {
	if l == nil {
		return true
	}
	return l.allowAt(l.now(), n)
}

// allowAt is allow at a clock reading taken by the caller, so that the
// lines of one write share one reading (the clock costs as much as the
// rest of allow).
func (l *logLimiter) allowAt(now int64, n int) bool {
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
		l.log.LogAttrs(context.Background(), slog.LevelWarn, suppressedMsg,
			slog.String("module", l.module), slog.Int64("dropped", dropped), slog.Int64("dropped_bytes", droppedBytes))
	}
	return true
}
