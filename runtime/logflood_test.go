package runtime

import (
	"context"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/internal/logtest"
	"github.com/wasmgate/wasmgate/runtime/internal/guestlog"
)

// TestLogLimits_Config checks that each Config field reaches its
// guestlog.Limits field (the defaults are guestlog's, tested there).
func TestLogLimits_Config(t *testing.T) {
	cfg := Config{LogLinesPerSecond: 1, LogBurst: 2, LogBytesPerSecond: 3}
	if got, want := cfg.logLimits(), (guestlog.Limits{LinesPerSecond: 1, Burst: 2, BytesPerSecond: 3}); got != want {
		t.Fatalf("logLimits() = %+v, want %+v", got, want)
	}
}

// floodRuntime loads stdout_flood with the default log limits and a logger
// that keeps every record.
func floodRuntime(t *testing.T) (*Module, *logtest.Handler, *recordingHost) {
	t.Helper()
	h, host := &logtest.Handler{}, &recordingHost{}
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
func guestRecords(h *logtest.Handler) (n int) {
	for _, r := range h.All() {
		if r.Msg != guestlog.SuppressedMsg && r.Attrs["module"].String() == "stdout_flood" {
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
			recs := h.All()
			last, prev := recs[len(recs)-1], recs[len(recs)-2]
			if last.Msg != "after flood" {
				t.Fatalf("last record %q, want the guest's next line", last.Msg)
			}
			if prev.Msg != guestlog.SuppressedMsg || prev.Attrs["module"].String() != "stdout_flood" {
				t.Fatalf("record before the next line = %+v, want %q for module stdout_flood", prev, guestlog.SuppressedMsg)
			}
			var dropped int64
			for _, r := range h.WithMsg(guestlog.SuppressedMsg) {
				dropped += r.Attrs["dropped"].Int64()
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
	recs := h.All()
	if len(recs) != 1 || recs[0].Msg != strings.Repeat("y", guestlog.MaxLine)+guestlog.TruncatedMark {
		t.Fatalf("%d records, want one 4 KiB line marked truncated", len(recs))
	}
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 1<<20 {
		t.Errorf("a 4 MiB guest line made the host allocate %d bytes", grown)
	}
}
