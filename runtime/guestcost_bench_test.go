package runtime

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/wasmgate/wasmgate/abi"
)

// costGuests are the example guests whose per-module costs
// BenchmarkGuestCost reports, per SDK (docs/BENCHMARKS.md, a table per
// language). They are built by make guests.
var costGuests = []string{"rust-echo", "rust-chat", "c-echo", "c-chat", "as-echo", "as-chat", "echo"}

// BenchmarkGuestCost measures, per example guest: compile (the deadline
// rewrite plus wazero's compile, no compilation cache), instantiate (a new
// instance of the compiled module, as the pool makes one), and the linear
// memory one instance holds after its first event (the mem-bytes metric).
func BenchmarkGuestCost(b *testing.B) {
	for _, name := range costGuests {
		path := filepath.Join("..", "handlers", name+".wasm")
		b.Run("compile/"+name, func(b *testing.B) {
			wasm, err := os.ReadFile(path)
			if err != nil {
				b.Skipf("%s not built (make guests)", path)
			}
			r, err := New(context.Background(), Config{PoolSize: 1}, &benchHost{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close(context.Background())
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				prepared, err := r.prepare(wasm)
				if err != nil {
					b.Fatal(err)
				}
				c, err := compile(context.Background(), r.wz, prepared)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				_ = c.Close(context.Background()) // else wazero returns it from its own cache
				b.StartTimer()
			}
			b.ReportMetric(float64(len(wasm)), "wasm-bytes")
		})
		b.Run("instantiate/"+name, func(b *testing.B) {
			m := loadBench(b, path, 0)
			// One event, so the memory includes the event buffer (a chat answers
			// it with an error, which needs no client registry).
			if err := m.OnMessage(context.Background(), "00000000000000000001", abi.Message{Data: []byte("not json")}); err != nil {
				b.Fatal(err)
			}
			var mem uint32
			m.pool.each(func(inst *instance) { mem = inst.mem.Size() })
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				inst, err := m.newInstance(context.Background(), 0)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				inst.close()
				b.StartTimer()
			}
			b.ReportMetric(float64(mem), "mem-bytes") // after the loop: ResetTimer drops metrics
		})
	}
}
