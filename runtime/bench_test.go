package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/abi"
)

// benchHost answers every host call at once, so the benchmarks below
// measure the ABI crossing (bounds checks, copies, encoding), not the
// registry (which has its own benchmarks in package server).
type benchHost struct{ recordingHost }

func (*benchHost) SendToClient(context.Context, string, abi.Message) error { return nil }
func (*benchHost) BindUid(context.Context, string, string) error           { return nil }
func (*benchHost) GetClientIdByUid(context.Context, string) ([]string, error) {
	return []string{"00000000000000000001", "00000000000000000002"}, nil
}

// BenchmarkHostCall runs one guest loop per host-function family; ns/op
// is per host call.
func BenchmarkHostCall(b *testing.B) {
	r, err := New(context.Background(), Config{PoolSize: 1}, &benchHost{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(context.Background())
	m, err := r.LoadFile(context.Background(), "bench", filepath.Join("testdata", "bench.wasm"), "")
	if err != nil {
		b.Fatal(err)
	}
	families := []struct{ name, export string }{
		{"send/send_to_client", "loop_send"},
		{"uid/bind_uid", "loop_bind_uid"},
		{"presence/get_client_id_by_uid", "loop_get_client_id_by_uid"},
		{"group/get_client_id_count_by_group", "loop_group_count"},
		{"session/update_session", "loop_update_session"},
		{"session/get_session", "loop_get_session"},
		{"util/now", "loop_now"},
		{"kv/kv_set", "loop_kv_set"}, // before kv_get, which reads its key
		{"kv/kv_get", "loop_kv_get"},
		{"kv/kv_incr", "loop_kv_incr"},
	}
	for _, f := range families {
		b.Run(f.name, func(b *testing.B) {
			inst, err := m.pool.get(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			defer m.pool.put(inst, true)
			fn := inst.wasm.ExportedFunction(f.export)
			b.ReportAllocs()
			b.ResetTimer()
			if _, err := fn.Call(inst.ctx, uint64(b.N)); err != nil {
				b.Fatal(err)
			}
		})
	}
}

// echoGuests are the echo handlers per guest language; the Go, Rust, C and
// AssemblyScript ones are built by make guests.
func echoGuests() []struct{ name, path string } {
	return []struct{ name, path string }{
		{"wat", filepath.Join("testdata", "echo.wasm")},
		{"go", filepath.Join("..", "handlers", "echo.wasm")},
		{"rust", filepath.Join("..", "handlers", "rust-echo.wasm")},
		{"c", filepath.Join("..", "handlers", "c-echo.wasm")},
		{"as", filepath.Join("..", "handlers", "as-echo.wasm")},
	}
}

// loadBench loads the module at path in a new runtime with the given event
// timeout, closed when the benchmark ends; it skips if path is not built.
func loadBench(b *testing.B, path string, timeout time.Duration) *Module {
	b.Helper()
	if _, err := os.Stat(path); err != nil {
		b.Skipf("%s not built (make guests)", path)
	}
	r, err := New(context.Background(), Config{PoolSize: 1, EventTimeout: timeout}, &benchHost{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = r.Close(context.Background()) })
	m, err := r.LoadFile(context.Background(), filepath.Base(path), path, "")
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkOnMessage is one event round trip (host → on_message → one
// send_to_client → host) of a 64-byte message, per guest language.
func BenchmarkOnMessage(b *testing.B) {
	guests := echoGuests()
	msg := abi.Message{Data: make([]byte, 64)}
	for _, g := range guests {
		for _, timeout := range []time.Duration{0, 100 * time.Millisecond} {
			b.Run(fmt.Sprintf("%s/deadline=%v", g.name, timeout), func(b *testing.B) {
				benchOnMessage(b, g.path, timeout, msg)
			})
		}
	}
}

func benchOnMessage(b *testing.B, path string, timeout time.Duration, msg abi.Message) {
	m := loadBench(b, path, timeout)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg.Data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := m.OnMessage(context.Background(), "00000000000000000001", msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad_GoGuest is the cost of a hot reload of the Go echo guest:
// compile (from a warm compilation cache, as on a reload of a file already
// seen, or cold) plus the first instance, which is what Reload waits for
// before the swap.
func BenchmarkLoad_GoGuest(b *testing.B) {
	path := filepath.Join("..", "handlers", "echo.wasm")
	wasm, err := os.ReadFile(path)
	if err != nil {
		b.Skipf("%s not built (make guests)", path)
	}
	for _, cache := range []string{"warm", "cold"} {
		b.Run("cache="+cache, func(b *testing.B) {
			dir := b.TempDir()
			r, err := New(context.Background(), Config{PoolSize: 1, CacheDir: dir}, &benchHost{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close(context.Background())
			if cache == "warm" {
				m, err := r.Load(context.Background(), "echo", wasm, "")
				if err != nil {
					b.Fatal(err)
				}
				_ = m.Close(context.Background())
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if cache == "cold" {
					b.StopTimer()
					r2, err := New(context.Background(), Config{PoolSize: 1}, &benchHost{}, nil)
					if err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					m, err := r2.Load(context.Background(), "echo", wasm, "")
					if err != nil {
						b.Fatal(err)
					}
					b.StopTimer()
					_ = m.Close(context.Background())
					_ = r2.Close(context.Background())
					b.StartTimer()
					continue
				}
				m, err := r.Load(context.Background(), "echo", wasm, "")
				if err != nil {
					b.Fatal(err)
				}
				_ = m.Close(context.Background())
			}
		})
	}
}

// finishHost signals every on_finish answer (sent to client "finish" by
// testdata/state.wat).
type finishHost struct {
	benchHost
	finished chan struct{}
}

func (h *finishHost) SendToClient(_ context.Context, id string, _ abi.Message) error {
	if id == "finish" {
		h.finished <- struct{}{}
	}
	return nil
}

// BenchmarkTaskRoundTrip is one task's whole trip: on_message calls task,
// a worker runs on_task on the task pool, and on_finish runs on a normal
// instance and sends its answer.
func BenchmarkTaskRoundTrip(b *testing.B) {
	host := &finishHost{finished: make(chan struct{}, 1)}
	r, err := New(context.Background(), Config{PoolSize: 2, TaskWorkers: 2, EventTimeout: 100 * time.Millisecond}, host, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(context.Background())
	m, err := r.LoadFile(context.Background(), "state", filepath.Join("testdata", "state.wasm"), "")
	if err != nil {
		b.Fatal(err)
	}
	msg := abi.Message{Data: []byte("tpayload")}
	var worst time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := m.OnMessage(context.Background(), "c1", msg); err != nil {
			b.Fatal(err)
		}
		<-host.finished
		worst = max(worst, time.Since(start))
	}
	b.ReportMetric(float64(worst.Microseconds()), "max-µs")
}

// BenchmarkDeadlineOverhead measures what the event deadline costs per
// event: the same guest is loaded in a runtime with the deadline off and in
// one with it on, and events alternate between the two in batches of 1,000,
// so machine noise (this VM has plenty) hits both sides alike. It reports
// ns/event for each side and the overhead in percent.
func BenchmarkDeadlineOverhead(b *testing.B) {
	guests := echoGuests()
	msg := abi.Message{Data: make([]byte, 64)}
	for _, g := range guests {
		b.Run(g.name, func(b *testing.B) {
			mods := [2]*Module{loadBench(b, g.path, 0), loadBench(b, g.path, 100*time.Millisecond)}
			const batch = 1000
			var spent [2]time.Duration
			var events [2]int
			b.ResetTimer()
			for done := 0; done < b.N; done += batch {
				for side, m := range mods {
					start := time.Now()
					for range batch {
						if err := m.OnMessage(context.Background(), "00000000000000000001", msg); err != nil {
							b.Fatal(err)
						}
					}
					spent[side] += time.Since(start)
					events[side] += batch
				}
			}
			off := float64(spent[0].Nanoseconds()) / float64(events[0])
			on := float64(spent[1].Nanoseconds()) / float64(events[1])
			b.ReportMetric(off, "ns/event-off")
			b.ReportMetric(on, "ns/event-on")
			b.ReportMetric(100*(on-off)/off, "overhead-%")
		})
	}
}
