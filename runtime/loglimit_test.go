package runtime

import (
	"context"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/abi"
)

func TestLogLimits_Config(t *testing.T) {
	tests := []struct {
		cfg                 Config
		lines, burst, bytes int
	}{
		{Config{}, 100, 200, 64 << 10},
		{Config{LogLinesPerSecond: 10}, 10, 20, 64 << 10},
		{Config{LogLinesPerSecond: 10, LogBurst: 5}, 10, 5, 64 << 10},
		{Config{LogLinesPerSecond: -1, LogBytesPerSecond: 1000}, 0, 1, 1000},
		{Config{LogBytesPerSecond: -1}, 100, 200, 0},
	}
	for _, tc := range tests {
		lines, burst, bytes := tc.cfg.logLimits()
		if lines != tc.lines || burst != tc.burst || bytes != tc.bytes {
			t.Errorf("%+v: got %d lines/s, burst %d, %d bytes/s; want %d, %d, %d", tc.cfg, lines, burst, bytes, tc.lines, tc.burst, tc.bytes)
		}
	}
	if l := newLogLimiter(Config{LogLinesPerSecond: -1, LogBytesPerSecond: -1}, nil, "m"); l != nil {
		t.Error("both limits off should give no limiter")
	}
	var off *logLimiter
	for i := 0; i < 1000; i++ {
		if !off.allow(1 << 20) {
			t.Fatal("a nil limiter refused a line")
		}
	}
}

// fakeClock drives a limiter's clock by hand.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func limiterWithClock(cfg Config) (*logLimiter, *recordHandler, *fakeClock) {
	h := &recordHandler{}
	l := newLogLimiter(cfg, slog.New(h), "m")
	c := &fakeClock{}
	l.clock = c.ns.Load
	return l, h, c
}

// count returns how many of n lines of size bytes the limiter lets through.
func count(l *logLimiter, n, size int) int {
	ok := 0
	for i := 0; i < n; i++ {
		if l.allow(size) {
			ok++
		}
	}
	return ok
}

func TestLogLimiter_LinesBurstThenRate(t *testing.T) {
	l, h, clock := limiterWithClock(Config{})
	if n := count(l, 1000, 10); n != DefaultLogBurst {
		t.Fatalf("%d of 1000 lines let through at once, want the burst %d", n, DefaultLogBurst)
	}
	if len(h.all()) != 0 {
		t.Fatal("suppressed record logged while still over budget")
	}
	clock.advance(100 * time.Millisecond) // 10 lines' worth
	if n := count(l, 100, 10); n != 10 {
		t.Fatalf("%d lines after 100 ms, want 10", n)
	}
	recs := h.withMsg(suppressedMsg)
	if len(recs) != 1 {
		t.Fatalf("%d suppressed records, want 1", len(recs))
	}
	r := recs[0]
	if r.level != slog.LevelWarn || r.attrs["module"].String() != "m" || r.attrs["dropped"].Int64() != 800 || r.attrs["dropped_bytes"].Int64() != 8000 {
		t.Fatalf("suppressed record = %+v, want module m, dropped 800, dropped_bytes 8000", r)
	}
	clock.advance(time.Hour) // refills to the burst, no more
	if n := count(l, 1000, 10); n != DefaultLogBurst {
		t.Fatalf("%d lines after an hour, want the burst %d", n, DefaultLogBurst)
	}
	if recs := h.withMsg(suppressedMsg); len(recs) != 2 || recs[1].attrs["dropped"].Int64() != 90 {
		t.Fatalf("suppressed records = %+v, want a second one with dropped 90", recs)
	}
}

func TestLogLimiter_Bytes(t *testing.T) {
	l, _, clock := limiterWithClock(Config{LogLinesPerSecond: -1, LogBytesPerSecond: 1000})
	// The byte bucket holds two seconds' worth, but at least one full line.
	full := maxLogLine + len(truncatedMark)
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
	l, _, _ = limiterWithClock(Config{})
	if n := count(l, 1000, 4000); n != 2*DefaultLogBytesPerSecond/4000 {
		t.Fatalf("%d 4000-byte lines at once, want %d (two seconds of bytes)", n, 2*DefaultLogBytesPerSecond/4000)
	}
}

// Instances of one module share its limiter: more goroutines do not get
// more lines through.
func TestLogLimiter_SharedAcrossGoroutines(t *testing.T) {
	l, h, _ := limiterWithClock(Config{LogLinesPerSecond: 50, LogBurst: 70})
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
	if len(h.all()) != 0 {
		t.Fatal("unexpected records")
	}
	l.clock = func() int64 { return int64(time.Second) }
	if !l.allow(1) || h.withMsg(suppressedMsg)[0].attrs["dropped"].Int64() != 8000-70 {
		t.Fatalf("suppressed records = %+v, want dropped %d", h.all(), 8000-70)
	}
}

// floodRuntime loads stdout_flood with the default log limits and a logger
// that keeps every record.
func floodRuntime(t *testing.T) (*Module, *recordHandler, *recordingHost) {
	t.Helper()
	h, host := &recordHandler{}, &recordingHost{}
	r, err := New(context.Background(), Config{PoolSize: 2}, host, slog.New(h))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	m, err := loadFixture(t, r, "stdout_flood", "")
	if err != nil {
		t.Fatal(err)
	}
	return m, h, host
}

// guestRecords counts the guest's own records: stdout lines and log calls.
func guestRecords(h *recordHandler) (n int) {
	for _, r := range h.all() {
		if r.msg != suppressedMsg && r.attrs["module"].String() == "stdout_flood" {
			n++
		}
	}
	return n
}

// TestModule_StdoutFloodIsRateLimited has a guest write 4 MiB (65536 lines)
// to stdout in one event, then call log 65536 times in another: each event
// returns normally, the log gets no more records than the budget allows,
// and the next line logged is preceded by the count of lines dropped.
func TestModule_StdoutFloodIsRateLimited(t *testing.T) {
	for _, op := range []string{"f", "h"} {
		t.Run(map[string]string{"f": "stdout", "h": "log host call"}[op], func(t *testing.T) {
			m, h, host := floodRuntime(t)
			start := time.Now()
			if err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte(op)}); err != nil {
				t.Fatalf("flood event failed: %v", err)
			}
			elapsed := time.Since(start)
			if got := host.messages(); len(got) != 1 || string(got[0].msg.Data) != "flooded" {
				t.Fatalf("sends = %+v, want one %q", got, "flooded")
			}
			// The burst, plus what refilled while the guest ran.
			limit := DefaultLogBurst + int(elapsed.Seconds()*DefaultLogLinesPerSecond) + 1
			n := guestRecords(h)
			if n == 0 || n > limit {
				t.Fatalf("%d records for 65536 lines in %v; want 1..%d", n, elapsed, limit)
			}
			time.Sleep(50 * time.Millisecond) // room for a few lines
			if err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("x")}); err != nil {
				t.Fatal(err)
			}
			recs := h.all()
			last, prev := recs[len(recs)-1], recs[len(recs)-2]
			if last.msg != "after flood" {
				t.Fatalf("last record %q, want the guest's next line", last.msg)
			}
			if prev.msg != suppressedMsg || prev.attrs["module"].String() != "stdout_flood" {
				t.Fatalf("record before the next line = %+v, want %q for module stdout_flood", prev, suppressedMsg)
			}
			var dropped int64
			for _, r := range h.withMsg(suppressedMsg) {
				dropped += r.attrs["dropped"].Int64()
			}
			if int(dropped)+n != 65536 {
				t.Fatalf("%d lines logged + %d counted as dropped, want 65536", n, dropped)
			}
		})
	}
}

// TestModule_StdoutEndlessLineIsOneRecord writes one 4 MiB line: it is
// logged once, cut at 4 KiB, and the host keeps none of the rest.
func TestModule_StdoutEndlessLineIsOneRecord(t *testing.T) {
	m, h, _ := floodRuntime(t)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("n")}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	recs := h.all()
	if len(recs) != 1 || recs[0].msg != strings.Repeat("y", maxLogLine)+truncatedMark {
		t.Fatalf("%d records, want one 4 KiB line marked truncated", len(recs))
	}
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 1<<20 {
		t.Errorf("a 4 MiB guest line made the host allocate %d bytes", grown)
	}
}
