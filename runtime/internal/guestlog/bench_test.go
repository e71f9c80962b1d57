package guestlog

import (
	"log/slog"
	"testing"
)

// BenchmarkLogLimiter is the limiter's cost per guest log line: "allowed"
// with a budget that never runs out (ns per allowed line, clock read
// included, as for a log host call), "allowed-stamped" without the clock
// read (stdout lines: one read per write), "dropped" with an exhausted
// budget, and "allowed-parallel" from every P at once (one module's
// instances sharing its limiter).
func BenchmarkLogLimiter(b *testing.B) {
	roomy := Limits{LinesPerSecond: 1 << 40, Burst: 1 << 40, BytesPerSecond: 1 << 50}
	log := slog.New(slog.DiscardHandler)
	b.Run("allowed", func(b *testing.B) {
		l := NewLimiter(roomy, log, "m")
		b.ReportAllocs()
		for b.Loop() {
			if !l.Allow(64) {
				b.Fatal("dropped")
			}
		}
	})
	b.Run("allowed-stamped", func(b *testing.B) { // as Writer: clock read once per write
		l := NewLimiter(roomy, log, "m")
		now := l.now()
		b.ReportAllocs()
		for b.Loop() {
			if !l.allowAt(now, 64) {
				b.Fatal("dropped")
			}
		}
	})
	b.Run("dropped", func(b *testing.B) {
		l := NewLimiter(Limits{LinesPerSecond: 1, Burst: 1}, log, "m")
		l.Allow(64)
		b.ReportAllocs()
		for b.Loop() {
			l.Allow(64)
		}
	})
	b.Run("allowed-parallel", func(b *testing.B) {
		l := NewLimiter(roomy, log, "m")
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Allow(64)
			}
		})
	})
}

// BenchmarkLogWriterFlood is the host's cost per line of a guest flooding
// stdout past its budget: splitting lines and dropping them.
func BenchmarkLogWriterFlood(b *testing.B) {
	l := NewLimiter(Limits{LinesPerSecond: 1, Burst: 1}, slog.New(slog.DiscardHandler), "m")
	w := NewWriter(slog.New(slog.DiscardHandler), "m", l)
	chunk := make([]byte, 64<<10)
	for i := range chunk {
		chunk[i] = 'x'
		if i%64 == 63 {
			chunk[i] = '\n'
		}
	}
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		_, _ = w.Write(chunk)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(chunk)/64), "ns/line")
}
