package guestlog

import (
	"github.com/wasmgate/wasmgate/internal/logtest"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLimits_Defaults(t *testing.T) {
	tests := []struct {
		limits              Limits
		lines, burst, bytes int
	}{
		{Limits{}, 100, 200, 64 << 10},
		{Limits{LinesPerSecond: 10}, 10, 20, 64 << 10},
		{Limits{LinesPerSecond: 10, Burst: 5}, 10, 5, 64 << 10},
		{Limits{LinesPerSecond: -1, BytesPerSecond: 1000}, 0, 1, 1000},
		{Limits{BytesPerSecond: -1}, 100, 200, 0},
	}
	for _, tc := range tests {
		lines, burst, bytes := tc.limits.resolve()
		if lines != tc.lines || burst != tc.burst || bytes != tc.bytes {
			t.Errorf("%+v: got %d lines/s, burst %d, %d bytes/s; want %d, %d, %d", tc.limits, lines, burst, bytes, tc.lines, tc.burst, tc.bytes)
		}
	}
	if l := NewLimiter(Limits{LinesPerSecond: -1, BytesPerSecond: -1}, nil, "m"); l != nil {
		t.Error("both limits off should give no limiter")
	}
	var off *Limiter
	for i := 0; i < 1000; i++ {
		if !off.Allow(1 << 20) {
			t.Fatal("a nil limiter refused a line")
		}
	}
}

// fakeClock drives a limiter's clock by hand.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func limiterWithClock(limits Limits) (*Limiter, *logtest.Handler, *fakeClock) {
	h := &logtest.Handler{}
	l := NewLimiter(limits, slog.New(h), "m")
	c := &fakeClock{}
	l.clock = c.ns.Load
	return l, h, c
}

// count returns how many of n lines of size bytes the limiter lets through.
func count(l *Limiter, n, size int) int {
	ok := 0
	for i := 0; i < n; i++ {
		if l.Allow(size) {
			ok++
		}
	}
	return ok
}

func TestLogLimiter_LinesBurstThenRate(t *testing.T) {
	l, h, clock := limiterWithClock(Limits{})
	if n := count(l, 1000, 10); n != DefaultBurst {
		t.Fatalf("%d of 1000 lines let through at once, want the burst %d", n, DefaultBurst)
	}
	if len(h.All()) != 0 {
		t.Fatal("suppressed record logged while still over budget")
	}
	clock.advance(100 * time.Millisecond) // 10 lines' worth
	if n := count(l, 100, 10); n != 10 {
		t.Fatalf("%d lines after 100 ms, want 10", n)
	}
	recs := h.WithMsg(SuppressedMsg)
	if len(recs) != 1 {
		t.Fatalf("%d suppressed records, want 1", len(recs))
	}
	r := recs[0]
	if r.Level != slog.LevelWarn || r.Attrs["module"].String() != "m" || r.Attrs["dropped"].Int64() != 800 || r.Attrs["dropped_bytes"].Int64() != 8000 {
		t.Fatalf("suppressed record = %+v, want module m, dropped 800, dropped_bytes 8000", r)
	}
	clock.advance(time.Hour) // refills to the burst, no more
	if n := count(l, 1000, 10); n != DefaultBurst {
		t.Fatalf("%d lines after an hour, want the burst %d", n, DefaultBurst)
	}
	if recs := h.WithMsg(SuppressedMsg); len(recs) != 2 || recs[1].Attrs["dropped"].Int64() != 90 {
		t.Fatalf("suppressed records = %+v, want a second one with dropped 90", recs)
	}
}

func TestLogLimiter_Bytes(t *testing.T) {
	l, _, clock := limiterWithClock(Limits{LinesPerSecond: -1, BytesPerSecond: 1000})
	// The byte bucket holds two seconds' worth, but at least one full line.
	full := MaxLine + len(TruncatedMark)
	if n := count(l, 10, full); n != 1 {
		t.Fatalf("%d full-length lines let through, want 1", n)
	}
	clock.advance(time.Second)
	if n := count(l, 100, 100); n != 10 {
		t.Fatalf("%d 100-byte lines after 1 s at 1000 B/s, want 10", n)
	}
	clock.advance(time.Hour)
	if n := count(l, 100, 100); n != full/100 {
		t.Fatalf("%d 100-byte lines after an hour, want %d (one full line's worth)", n, full/100)
	}
	l, _, _ = limiterWithClock(Limits{})
	if n := count(l, 1000, 4000); n != 2*DefaultBytesPerSecond/4000 {
		t.Fatalf("%d 4000-byte lines at once, want %d (two seconds of bytes)", n, 2*DefaultBytesPerSecond/4000)
	}
}

// Instances of one module share its limiter: more goroutines do not get
// more lines through.
func TestLogLimiter_SharedAcrossGoroutines(t *testing.T) {
	l, h, _ := limiterWithClock(Limits{LinesPerSecond: 50, Burst: 70})
	var ok atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok.Add(int64(count(l, 1000, 10)))
		}()
	}
	wg.Wait()
	if ok.Load() != 70 {
		t.Fatalf("%d lines let through by 8 goroutines, want the burst 70", ok.Load())
	}
	if len(h.All()) != 0 {
		t.Fatal("unexpected records")
	}
	l.clock = func() int64 { return int64(time.Second) }
	if !l.Allow(1) || h.WithMsg(SuppressedMsg)[0].Attrs["dropped"].Int64() != 8000-70 {
		t.Fatalf("suppressed records = %+v, want dropped %d", h.All(), 8000-70)
	}
}
