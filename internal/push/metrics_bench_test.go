package push

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wasmgate/wasmgate/internal/metrics"
	"github.com/wasmgate/wasmgate/internal/wire"
	"github.com/wasmgate/wasmgate/runtime"
)

// The recording side of /metrics, per event and per push command, against
// what client_golang's own metrics would cost there (docs/BENCHMARKS.md,
// "Metrics"). wasmgate records into its fixed-bucket histograms and plain
// atomics and hands them to client_golang only at scrape time.

// BenchmarkRecord_PushCommand is a push command's timing and result count
// around a command that does nothing (timing.go).
func BenchmarkRecord_PushCommand(b *testing.B) {
	c := &timedCommand{run: func(context.Context, Gateway, *wire.Request) (any, error) { return nil, nil }}
	ctx := context.Background()
	for b.Loop() {
		_, _ = c.call(ctx, nil, nil)
	}
}

// BenchmarkRecord_FixedHistogram is a guest call's timing: two clock reads
// and the observation (runtime.Module.event).
func BenchmarkRecord_FixedHistogram(b *testing.B) {
	var h metrics.Histogram
	for b.Loop() {
		h.Since(metrics.Now())
	}
}

// BenchmarkRecord_PromHistogram is the same with a client_golang histogram
// child resolved once (per module and event at load).
func BenchmarkRecord_PromHistogram(b *testing.B) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "x", Buckets: metrics.BucketBounds()}, []string{"module", "event"}).
		WithLabelValues("echo", "on_message")
	for b.Loop() {
		start := time.Now()
		h.Observe(time.Since(start).Seconds())
	}
}

// BenchmarkRecord_PromHistogramWithLabelValues resolves the child per
// event, as the brief forbids.
func BenchmarkRecord_PromHistogramWithLabelValues(b *testing.B) {
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "x", Buckets: metrics.BucketBounds()}, []string{"module", "event"})
	for b.Loop() {
		start := time.Now()
		v.WithLabelValues("echo", "on_message").Observe(time.Since(start).Seconds())
	}
}

// The observation alone, without the clock, on every core at once (one hot
// module): ours against client_golang's.
func BenchmarkRecord_FixedHistogramObserveParallel(b *testing.B) {
	var h metrics.Histogram
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.Observe(40 * time.Microsecond)
		}
	})
}

func BenchmarkRecord_PromHistogramObserveParallel(b *testing.B) {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x", Buckets: metrics.BucketBounds()})
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			h.Observe(40e-6)
		}
	})
}

// BenchmarkScrape is one scrape's collection and encoding-ready gather for
// 20 modules with every event kind timed and 30 push commands: the cost
// moved off the hot path (Node.Status not included: the server's).
func BenchmarkScrape(b *testing.B) {
	var h metrics.Histogram
	h.Observe(time.Millisecond)
	st := fullTestStatus("m0")
	st.Modules = nil
	for i := range 20 {
		lat := map[string]metrics.HistogramSnapshot{}
		for _, e := range []string{"on_handshake", "on_connect", "on_message", "on_close", "on_timer", "on_task", "on_finish"} {
			lat[e] = h.Snapshot()
		}
		st.Modules = append(st.Modules, ModuleStatus{Stats: runtime.Stats{Module: "m" + strconv.Itoa(i), Latency: lat}})
	}
	st.Commands = nil
	for i := range 30 {
		st.Commands = append(st.Commands, CommandStats{Name: "cmd" + strconv.Itoa(i), Latency: h.Snapshot()})
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newStatusCollector(func() Status { return st }))
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
