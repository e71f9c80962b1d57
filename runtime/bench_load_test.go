package runtime

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkCompileAndInstantiate measures, per example guest, what a cold
// load costs (compile: rewrite, wazero compile without a cache, validate,
// first instance) and what one more instance costs (instantiate: what the
// pool pays to add or replace an instance, _initialize and on_start
// included). docs/BENCHMARKS.md records the figures.
func BenchmarkCompileAndInstantiate(b *testing.B) {
	for _, g := range []string{"c-echo", "rust-echo", "echo"} {
		wasm, err := os.ReadFile(filepath.Join("..", "handlers", g+".wasm"))
		if err != nil {
			b.Skipf("%s not built (make guests)", g)
		}
		ctx := context.Background()
		b.Run(g+"/compile", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				r, err := New(ctx, Config{PoolSize: 1}, &benchHost{}, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				m, err := r.Load(ctx, g, wasm, "")
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				_ = m.Close(ctx)
				_ = r.Close(ctx)
				b.StartTimer()
			}
		})
		b.Run(g+"/instantiate", func(b *testing.B) {
			r, err := New(ctx, Config{PoolSize: 1, EventTimeout: 100e6}, &benchHost{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close(ctx)
			m, err := r.Load(ctx, g, wasm, "")
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close(ctx)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				inst, err := m.newInstance(ctx, m.cfg.EventTimeout)
				if err != nil {
					b.Fatal(err)
				}
				inst.close()
			}
		})
	}
}
