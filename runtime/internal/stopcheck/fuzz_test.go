package stopcheck

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
)

// FuzzInstrument checks that InstrumentWith never panics, with or without
// yields, and that whenever it succeeds on a module wazero compiles, wazero
// compiles its output too and every loop of the output is followed by the
// stop check.
//
//	go test -run '^$' -fuzz FuzzInstrument ./runtime/internal/stopcheck/
func FuzzInstrument(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.wasm"))
	more, _ := filepath.Glob(filepath.Join("..", "..", "testdata", "*.wasm"))
	for _, path := range append(seeds, more...) {
		if b, err := os.ReadFile(path); err == nil {
			f.Add(b, uint32(0))
			f.Add(b, uint32(DefaultYieldEvery))
		}
	}
	f.Add([]byte(header), uint32(0))
	f.Add([]byte(header), uint32(1))

	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCoreFeatures(allFeatures))
	defer r.Close(ctx)

	f.Fuzz(func(t *testing.T, in []byte, every uint32) {
		out, st, err := instrument(in, Options{YieldEvery: every})
		if err != nil {
			return
		}
		if !plausibleCounts(in) {
			return // would make wazero allocate gigabytes, see plausibleCounts
		}
		if err := compile(ctx, r, in); err != nil {
			return // not a module wazero accepts: nothing to compare
		}
		if err := compile(ctx, r, out); err != nil {
			t.Fatalf("input compiles but the instrumented module does not: %v", err)
		}
		checkEveryLoopChecked(t, out, st)
	})
}

// compile compiles wasm and turns a panic of wazero into an error: wazero
// v1.12 panics on some invalid modules (found by this fuzzer: an import
// whose type index is out of range, called from code, panics in
// validateFunction with "index out of range"), which is not the bug looked
// for here unless it happens only on Instrument's output.
func compile(ctx context.Context, r wazero.Runtime, wasm []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("wazero panicked: %v", p)
		}
	}()
	cm, err := r.CompileModule(ctx, wasm)
	if err == nil {
		_ = cm.Close(ctx)
	}
	return err
}

// plausibleCounts reports whether every section that starts with a vector
// count declares no more entries than it has bytes. wazero v1.12 allocates
// the declared number of entries before decoding them, so a 15-byte module
// declaring 2^32-1 globals makes CompileModule die with "fatal error: out of
// memory" (found by this fuzzer); such inputs are not compiled.
func plausibleCounts(wasm []byte) bool {
	sections, err := splitSections(wasm)
	if err != nil {
		return false
	}
	for _, s := range sections {
		switch s.id {
		case secCustom, secStart, secDataCount:
			continue
		}
		r := reader{b: s.content}
		n, err := r.u32()
		if err != nil || uint64(n) > uint64(len(s.content)) {
			return false
		}
	}
	return true
}
