package stopcheck

import (
	"context"
	"flag"
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
	if fl := flag.Lookup("test.fuzz"); fl != nil && fl.Value.String() != "" {
		// When fuzzing (not when running the seeds as a test), start from
		// wazero's spec test modules too: thousands of small valid and
		// invalid modules covering every feature.
		for i, path := range corpusFiles(f) {
			if b, err := os.ReadFile(path); err == nil {
				f.Add(b, uint32(i%3)) // 0: no yield; 1 and 2: tiny periods
			}
		}
	}

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

// plausibleCounts reports whether wazero can decode wasm without trying to
// allocate an absurd amount of memory. wazero v1.12 allocates what counts
// and sizes declare before reading the entries (vectors, names, value types,
// locals, data segments, element vectors, name maps), so a 15-byte module
// declaring 2^32-1 globals makes CompileModule die with "fatal error: out of
// memory" (found by this fuzzer). Such inputs are not compiled. The test
// is coarse on purpose: outside the code and data sections and custom
// sections other than "name" (which wazero skips without allocating), no
// byte may start a u32 LEB128 over maxDecl; in the code section, no body may
// declare more than maxDecl locals; in the data section, no segment may be
// longer than the section.
func plausibleCounts(wasm []byte) bool {
	const maxDecl = 1 << 20
	sections, err := splitSections(wasm)
	if err != nil {
		return false
	}
	for _, s := range sections {
		switch s.id {
		case secCode:
			if !plausibleLocals(s.content, maxDecl) {
				return false
			}
			continue
		case secData:
			if !plausibleData(s.content) {
				return false
			}
			continue
		case secCustom:
			r := reader{b: s.content}
			if name, err := r.name(); err != nil || string(name) != "name" {
				continue
			}
		case secStart, secDataCount:
		default: // a vector, whose count must lie inside the section
			r := reader{b: s.content}
			if n, err := r.u32(); err != nil || uint64(n) > uint64(len(s.content)) {
				return false
			}
		}
		// wazero reads LEB128s across section ends, hence wasm[...:].
		for i := range s.content {
			r := reader{b: wasm[s.offset+i:]}
			if v, err := r.u32(); err == nil && v > maxDecl {
				return false
			}
		}
	}
	return true
}

// plausibleLocals checks the local declarations of every body of a code
// section.
func plausibleLocals(content []byte, max uint64) bool {
	r := reader{b: content}
	n, err := r.u32()
	if err != nil || uint64(n) > uint64(len(content)) {
		return false
	}
	for i := uint32(0); i < n; i++ {
		size, err := r.u32()
		if err != nil {
			return false
		}
		body, err := r.bytes(uint64(size))
		if err != nil {
			return false
		}
		br := reader{b: body}
		groups, err := br.u32()
		if err != nil {
			return false
		}
		var sum uint64
		for g := uint32(0); g < groups; g++ {
			c, err := br.u32()
			if err != nil || br.valType() != nil {
				return false
			}
			if sum += uint64(c); sum > max {
				return false
			}
		}
	}
	return true
}

// plausibleData checks that no data segment declares more bytes than its
// section has.
func plausibleData(content []byte) bool {
	r := reader{b: content}
	n, err := r.u32()
	if err != nil || uint64(n) > uint64(len(content)) {
		return false
	}
	for i := uint32(0); i < n; i++ {
		flags, err := r.u32()
		if err != nil {
			return false
		}
		switch flags {
		case 0: // active, memory 0, offset expression
			err = walkExpr(&r, nil)
		case 1: // passive
		case 2: // active, memory index, offset expression
			if _, err = r.u32(); err == nil {
				err = walkExpr(&r, nil)
			}
		default:
			return false
		}
		if err != nil {
			return false
		}
		size, err := r.u32()
		if err != nil || uint64(size) > uint64(len(content)) {
			return false
		}
		if _, err := r.bytes(uint64(size)); err != nil {
			return false
		}
	}
	return true
}
