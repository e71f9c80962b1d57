package stopcheck

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// BenchmarkStop compares the cost of the ways to make a guest stoppable, on
// a loop-heavy call (sum of 1..1e6 in a wasm loop) and a trivial one. The
// modes are: plain, no termination support at all (the baseline);
// closeOnDone, wazero's WithCloseOnContextDone, which the runtime uses today;
// instrumented, Instrument without WithCloseOnContextDone; and yield,
// InstrumentWith and Options.YieldEvery = DefaultYieldEvery.
//
//	go test -run '^$' -bench Stop ./runtime/internal/stopcheck/
func BenchmarkStop(b *testing.B) {
	ctx := context.Background()
	orig := readTestdata(b, "bench.wasm")
	inst, err := Instrument(orig)
	if err != nil {
		b.Fatal(err)
	}
	yield, err := InstrumentWith(orig, Options{YieldEvery: DefaultYieldEvery})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name        string
		wasm        []byte
		closeOnDone bool
	}{
		{"plain", orig, false},
		{"closeOnDone", orig, true},
		{"instrumented", inst, false},
		{"yield", yield, false},
	} {
		r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(c.closeOnDone))
		m, err := r.Instantiate(ctx, c.wasm)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/sum1e6", func(b *testing.B) {
			benchCall(b, m.ExportedFunction("sum"), 1_000_000, 500000500000)
		})
		b.Run(c.name+"/nop", func(b *testing.B) {
			benchCall(b, m.ExportedFunction("nop"), 0, 0)
		})
		_ = r.Close(ctx)
	}
}

// benchCall calls fn(arg) b.N times the way the runtime calls guests (one
// reused stack, no allocation) and checks the result when fn has one.
func benchCall(b *testing.B, fn api.Function, arg, want uint64) {
	ctx := context.Background()
	stack := []uint64{arg}
	hasResult := len(fn.Definition().ResultTypes()) == 1
	b.ReportAllocs()
	for b.Loop() {
		stack[0] = arg
		if err := fn.CallWithStack(ctx, stack); err != nil {
			b.Fatal(err)
		}
		if hasResult && stack[0] != want {
			b.Fatalf("got %d, want %d", stack[0], want)
		}
	}
}

// BenchmarkCallTree measures the per-call cost of the function-entry code
// on a loop-free call tree (depth.wasm tree(16): 131,071 calls): plain (no
// rewrite), yield (the stop check and yield at every entry, what
// Options.YieldEvery adds besides loops) and depth (the runtime's rewrite:
// yields plus MaxDepth).
//
//	go test -run '^$' -bench CallTree ./runtime/internal/stopcheck/
func BenchmarkCallTree(b *testing.B) {
	ctx := context.Background()
	orig := readTestdata(b, "depth.wasm")
	yield, err := InstrumentWith(orig, Options{YieldEvery: DefaultYieldEvery})
	if err != nil {
		b.Fatal(err)
	}
	depth, err := InstrumentWith(orig, Options{YieldEvery: DefaultYieldEvery, MaxDepth: 10_000})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		wasm []byte
	}{{"plain", orig}, {"yield", yield}, {"depth", depth}} {
		r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCoreFeatures(allFeatures)) // count uses tail calls
		m, err := r.Instantiate(ctx, c.wasm)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			benchCall(b, m.ExportedFunction("tree"), 16, 1<<16)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(1<<17-1), "ns/call")
		})
		_ = r.Close(ctx)
	}
}
