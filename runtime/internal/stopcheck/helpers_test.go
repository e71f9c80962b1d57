package stopcheck

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// allFeatures is every feature wazero v1.12 implements, so that tests and
// the fuzzer accept every module wazero can compile.
const allFeatures = api.CoreFeaturesV2 |
	experimental.CoreFeaturesThreads |
	experimental.CoreFeaturesTailCall |
	experimental.CoreFeaturesExtendedConst |
	experimental.CoreFeaturesExceptionHandling |
	experimental.CoreFeaturesTypedFunctionReferences

// newRuntime returns a wazero runtime with every feature enabled, closed at
// the end of the test.
func newRuntime(t testing.TB) wazero.Runtime {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCoreFeatures(allFeatures))
	t.Cleanup(func() { r.Close(ctx) })
	return r
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mustInstrument instruments wasm and checks the result compiles.
func mustInstrument(t testing.TB, r wazero.Runtime, wasm []byte) ([]byte, stats) {
	t.Helper()
	return mustInstrumentWith(t, r, wasm, Options{})
}

// mustInstrumentWith instruments wasm with opts and checks the result
// compiles.
func mustInstrumentWith(t testing.TB, r wazero.Runtime, wasm []byte, opts Options) ([]byte, stats) {
	t.Helper()
	out, st, err := instrument(wasm, opts)
	if err != nil {
		t.Fatalf("instrument: %v", err)
	}
	cm, err := r.CompileModule(context.Background(), out)
	if err != nil {
		t.Fatalf("compile instrumented module: %v", err)
	}
	_ = cm.Close(context.Background())
	return out, st
}

// instantiate instantiates wasm anonymously without start functions except
// the module's own start section.
func instantiate(t testing.TB, r wazero.Runtime, wasm []byte, name string) api.Module {
	t.Helper()
	m, err := r.InstantiateWithConfig(context.Background(), wasm, wazero.NewModuleConfig().WithName(name))
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	return m
}

// stopGlobal returns the exported stop global of an instrumented module.
func stopGlobal(t testing.TB, m api.Module) api.MutableGlobal {
	t.Helper()
	g, ok := m.ExportedGlobal(Export).(api.MutableGlobal)
	if !ok {
		t.Fatalf("%s is not exported as a mutable global", Export)
	}
	if g.Type() != api.ValueTypeI32 {
		t.Fatalf("%s has type %v, want i32", Export, g.Type())
	}
	return g
}

// call calls the exported function and fails the test on error.
func call(t testing.TB, m api.Module, fn string, params ...uint64) []uint64 {
	t.Helper()
	f := m.ExportedFunction(fn)
	if f == nil {
		t.Fatalf("no export %q", fn)
	}
	res, err := f.Call(context.Background(), params...)
	if err != nil {
		t.Fatalf("%s: %v", fn, err)
	}
	return res
}

// stopAfter calls fn, which must not return by itself, sets the stop global
// from another goroutine after delay, and checks that the call fails with a
// trap within a second of the stop. The test fails after 10 s rather than
// hanging if the stop is never seen.
//
// The garbage collector is off meanwhile: a goroutine running a wasm loop
// that never exits to Go cannot be preempted, so a stop-the-world would wait
// for it forever and freeze the timer that sets the global (see
// TestGCWaitsForSpinningGuest).
func stopAfter(t testing.TB, m api.Module, delay time.Duration, fn string, params ...uint64) {
	t.Helper()
	skipSpinning(t)
	stopYielding(t, m, delay, fn, params...)
}

// stopYielding is stopAfter for a module instrumented with
// Options.YieldEvery: its guest leaves native code periodically, so it cannot
// hold up a stop-the-world, and the test runs in plain go test.
func stopYielding(t testing.TB, m api.Module, delay time.Duration, fn string, params ...uint64) {
	t.Helper()
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	// Finish a cycle already under way: its closing stop-the-world would
	// otherwise wait for the spinning guest forever, GC off or not.
	runtime.GC()
	g := stopGlobal(t, m)
	f := m.ExportedFunction(fn)
	if f == nil {
		t.Fatalf("no export %q", fn)
	}
	stopped := make(chan time.Time, 1)
	timer := time.AfterFunc(delay, func() {
		at := time.Now()
		g.Set(1) // the watchdog: a plain store from another goroutine
		// Sending after Set orders it before the g.Set(0) below: wazero's
		// Set is a plain Go store, so two unordered Sets are a data race.
		stopped <- at
	})
	defer timer.Stop()
	done := make(chan error, 1)
	go func() {
		_, err := f.Call(context.Background(), params...)
		done <- err
	}()
	select {
	case err := <-done:
		returned := time.Now()
		if err == nil {
			t.Fatalf("%s returned without error", fn)
		}
		if !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("%s: error %q does not report the unreachable trap", fn, err)
		}
		at := <-stopped
		if d := returned.Sub(at); d > time.Second {
			t.Fatalf("%s took %v to stop", fn, d)
		} else {
			t.Logf("%s stopped %v after the global was set", fn, d)
		}
	case <-time.After(10*time.Second + delay):
		t.Fatalf("%s did not stop within 10s of setting %s", fn, Export)
	}
	g.Set(0)
}

// loopOffsets returns the offsets, in the module, of the opcode of every
// loop, found by Instrument's decoder.
func loopOffsets(wasm []byte) ([]int, error) {
	if len(wasm) < len(header) || string(wasm[:len(header)]) != header {
		return nil, errors.New("bad header")
	}
	sections, err := splitSections(wasm)
	if err != nil {
		return nil, err
	}
	var offsets []int
	for _, s := range sections {
		if s.id != secCode {
			continue
		}
		r := reader{b: s.content}
		n, err := r.u32()
		if err != nil {
			return nil, err
		}
		for i := uint32(0); i < n; i++ {
			size, err := r.u32()
			if err != nil {
				return nil, err
			}
			in, err := r.bytes(uint64(size))
			if err != nil {
				return nil, err
			}
			base := s.offset + r.pos - len(in)
			br := reader{b: in}
			if err := br.locals(); err != nil {
				return nil, err
			}
			if err := walkExpr(&br, func(at, _ int) { offsets = append(offsets, base+at) }); err != nil {
				return nil, fmt.Errorf("function body %d: %w", i, err)
			}
		}
	}
	return offsets, nil
}

// objdumpLoopOffsets returns the offsets of every loop opcode according to
// wabt's wasm-objdump: an independent decoder to check ours against. It
// skips the test if wasm-objdump is missing or cannot decode the module.
func objdumpLoopOffsets(t testing.TB, path string) []int {
	t.Helper()
	bin, err := exec.LookPath("wasm-objdump")
	if err != nil {
		t.Skip("wasm-objdump (wabt) not installed")
	}
	out, err := exec.Command(bin, "-d", path).Output()
	if err != nil {
		t.Skipf("wasm-objdump cannot decode %s: %v", path, err)
	}
	loop := regexp.MustCompile(`(?m)^ ([0-9a-f]+): 03 [^|]*\|\s*loop\b`)
	var offsets []int
	for _, m := range loop.FindAllSubmatch(out, -1) {
		v, err := strconv.ParseInt(string(m[1]), 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		offsets = append(offsets, int(v))
	}
	return offsets
}

// checkLoopsAgainstObjdump checks that our decoder finds exactly the loops
// wasm-objdump finds in the module at path, and that Instrument rewrote that
// many.
func checkLoopsAgainstObjdump(t testing.TB, path string, wasm []byte, st stats) {
	t.Helper()
	want := objdumpLoopOffsets(t, path)
	got, err := loopOffsets(wasm)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("loop offsets differ from wasm-objdump: ours %d loops, objdump %d loops\nours %x\nobjdump %x",
			len(got), len(want), got[:min(len(got), 20)], want[:min(len(want), 20)])
	}
	if st.loops != len(want) {
		t.Fatalf("instrumented %d loops, wasm-objdump finds %d", st.loops, len(want))
	}
}

// checkEveryLoopChecked re-decodes the instrumented module and checks that
// every loop is immediately followed by the stop check.
func checkEveryLoopChecked(t testing.TB, out []byte, st stats) {
	t.Helper()
	sections, err := splitSections(out)
	if err != nil {
		t.Fatal(err)
	}
	check := stopCheck(st.stopGlobal)
	n := 0
	for _, s := range sections {
		if s.id != secCode {
			continue
		}
		r := reader{b: s.content}
		count, _ := r.u32()
		for i := uint32(0); i < count; i++ {
			size, _ := r.u32()
			in, _ := r.bytes(uint64(size))
			br := reader{b: in}
			if err := br.locals(); err != nil {
				t.Fatal(err)
			}
			err := walkExpr(&br, func(_, end int) {
				n++
				if !strings.HasPrefix(string(in[end:]), string(check)) {
					t.Errorf("function body %d: loop at %d not followed by the stop check", i, end)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if n != st.loops {
		t.Fatalf("instrumented module has %d loops, instrument reported %d", n, st.loops)
	}
}

// skipSpinning skips tests that spin a guest without yields in this
// process: without Options.YieldEvery such a guest can freeze the whole test
// binary at a stop-the-world, which happened on a loaded machine. The same
// cases with yields (stopYielding) run in plain go test; these run in make
// test-long.
func skipSpinning(t testing.TB) {
	t.Helper()
	if os.Getenv("WASMGATE_LONG_TESTS") == "" {
		t.Skip("spins a guest in-process; set WASMGATE_LONG_TESTS=1 (make test-long)")
	}
}
