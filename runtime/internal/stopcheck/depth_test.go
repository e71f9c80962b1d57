package stopcheck

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// testMaxDepth is the depth bound of these tests.
const testMaxDepth = 1000

// depthGlobal returns the exported depth budget of an instrumented module.
func depthGlobal(t testing.TB, m api.Module) api.MutableGlobal {
	t.Helper()
	g, ok := m.ExportedGlobal(ExportDepth).(api.MutableGlobal)
	if !ok {
		t.Fatalf("%s is not exported as a mutable global", ExportDepth)
	}
	return g
}

// TestDepthBudgetComesBack runs functions that leave by every way there is
// (return, br, br_if and br_table to the function's label, return_call,
// multi-value results) with and without the depth bound: the results are
// the same, and after every call the budget is whole again.
func TestDepthBudgetComesBack(t *testing.T) {
	r := newRuntime(t)
	in := readTestdata(t, "depth.wasm")
	out, st := mustInstrumentWith(t, r, in, Options{YieldEvery: DefaultYieldEvery, MaxDepth: testMaxDepth})
	if st.funcs != 7 || st.depthGlobal != st.tickGlobal+1 {
		t.Fatalf("stats %+v, want 7 functions and the depth global after the tick", st)
	}
	orig, inst := instantiate(t, r, in, ""), instantiate(t, r, out, "")
	g := depthGlobal(t, inst)
	if v := g.Get(); v != testMaxDepth {
		t.Fatalf("depth budget starts at %d, want %d", v, testMaxDepth)
	}
	for _, c := range []struct {
		fn  string
		arg uint64
	}{
		{"exits", 0}, {"exits", 1}, {"exits", 2}, {"exits", 3}, {"exits", 4}, {"exits", 5},
		{"pairs", 0}, {"pairs", 3},
		{"count", 100_000}, // 100,000 tail calls under a bound of 1,000
		{"nest", testMaxDepth / 2}, {"tree", 10},
	} {
		want, got := call(t, orig, c.fn, c.arg), call(t, inst, c.fn, c.arg)
		if got[0] != want[0] {
			t.Errorf("%s(%d) = %d instrumented, %d originally", c.fn, c.arg, got[0], want[0])
		}
		if v := g.Get(); v != testMaxDepth {
			t.Errorf("after %s(%d) the depth budget is %d, want %d back", c.fn, c.arg, v, testMaxDepth)
		}
	}
}

// TestDepthBound checks that a call may nest exactly MaxDepth frames and
// that the next one traps at once, leaving a budget of 0 for the host to
// recognise; recursion without end traps the same way.
func TestDepthBound(t *testing.T) {
	r := newRuntime(t)
	out, _ := mustInstrumentWith(t, r, readTestdata(t, "depth.wasm"), Options{YieldEvery: DefaultYieldEvery, MaxDepth: testMaxDepth})
	m := instantiate(t, r, out, "")
	g := depthGlobal(t, m)
	if v := call(t, m, "nest", testMaxDepth)[0]; v != testMaxDepth {
		t.Fatalf("nest(%d) = %d", testMaxDepth, v)
	}
	for _, c := range []struct {
		fn  string
		arg uint64
	}{{"nest", testMaxDepth + 1}, {"down", 0}} {
		_, err := m.ExportedFunction(c.fn).Call(context.Background(), c.arg)
		if err == nil || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("%s(%d): err = %v, want an unreachable trap", c.fn, c.arg, err)
		}
		if v := g.Get(); v != 0 {
			t.Fatalf("%s(%d): depth budget %d after the trap, want 0", c.fn, c.arg, v)
		}
		g.Set(testMaxDepth) // what a host that keeps the instance does
	}
	if v := call(t, m, "nest", 10)[0]; v != 10 {
		t.Fatalf("nest(10) = %d after the reset", v)
	}
}

// TestStopLoopFreeRecursion stops a call tree without a single loop
// (2^41 calls): the stop global is tested at every function entry too.
func TestStopLoopFreeRecursion(t *testing.T) {
	r := newRuntime(t)
	for _, opts := range []Options{{YieldEvery: DefaultYieldEvery}, {YieldEvery: DefaultYieldEvery, MaxDepth: testMaxDepth}} {
		out, _ := mustInstrumentWith(t, r, readTestdata(t, "depth.wasm"), opts)
		m := instantiate(t, r, out, "")
		stopYielding(t, m, 20*time.Millisecond, "tree", 40)
	}
}

// TestStopInfiniteLoopYielding is TestStopInfiniteLoop with the yields the
// runtime uses, so that it runs in plain go test: the loop stops, twice.
func TestStopInfiniteLoopYielding(t *testing.T) {
	r := newRuntime(t)
	out, st := mustInstrumentWith(t, r, readTestdata(t, "spin.wasm"), Options{YieldEvery: DefaultYieldEvery, MaxDepth: testMaxDepth})
	if st.stopGlobal != 2 || st.loops != 1 {
		t.Fatalf("stats = %+v", st)
	}
	m := instantiate(t, r, out, "")
	stopYielding(t, m, 20*time.Millisecond, "spin")
	stopYielding(t, m, 5*time.Millisecond, "spin")
	if v := call(t, m, "calls")[0]; v != 2 {
		t.Fatalf("calls = %d, want 2", v)
	}
}

// wasmModule assembles a module from sections given as (id, content).
func wasmModule(sections ...[]byte) []byte {
	out := []byte(header)
	for _, s := range sections {
		out, _ = appendSection(out, s[0], s[1:])
	}
	return out
}

// sec returns a section for wasmModule: id, then a vector of n entries.
func sec(id byte, n uint32, entries ...byte) []byte {
	return append(appendU32([]byte{id}, n), entries...)
}

// funcModule is a module with one exported function "f" of type () -> ()
// whose body (without locals) is code, plus the extra sections given, in
// order, between the function and export sections, or after the code.
func funcModule(code []byte, between, after [][]byte) []byte {
	body := append([]byte{0}, code...) // no locals
	s := [][]byte{
		sec(secType, 1, 0x60, 0, 0),
		sec(secFunction, 1, 0),
	}
	s = append(s, between...)
	s = append(s, sec(secExport, 1, 1, 'f', 0x00, 0))
	s = append(s, sec(secCode, 1, append(appendU32(nil, uint32(len(body))), body...)...))
	return wasmModule(append(s, after...)...)
}

// TestUndeclaredIndicesRefused feeds modules that refer to globals or a
// memory they do not declare — indices the rewrite would create: each is
// refused before the rewrite, with an error naming the reference. Without
// the check, the first one loads and its loop clears the stop global on
// every iteration, so no deadline can stop it.
func TestUndeclaredIndicesRefused(t *testing.T) {
	memory := sec(secMemory, 1, 0x00, 1)
	global := sec(secGlobal, 1, 0x7f, 0x01, opI32Const, 0, opEnd)
	for _, c := range []struct {
		name string
		wasm []byte
		want string
	}{
		{"global.set of the stop and tick globals", funcModule([]byte{
			opLoop, blockTypeEmpty,
			opI32Const, 0, opGlobalSet, 0, // the stop flag
			opI32Const, 0x7f, opGlobalSet, 1, // the yield counter
			opBr, 0, opEnd, opEnd}, nil, nil), "global.set 0 at offset"},
		{"global.get past the module's globals", funcModule([]byte{opGlobalGet, 1, opDrop, opEnd}, [][]byte{global}, nil), "global.get 1"},
		{"load without a memory", funcModule([]byte{opI32Const, 0, opI32Load, 2, 0, opDrop, opEnd}, nil, nil), "has no memory"},
		{"memory.grow without a memory", funcModule([]byte{opI32Const, 1, opMemoryGrow, 0, opDrop, opEnd}, nil, nil), "has no memory"},
		{"memory.fill without a memory", funcModule([]byte{opI32Const, 0, opI32Const, 0, opI32Const, 0, opPrefixMisc, 11, 0, opEnd}, nil, nil), "has no memory"},
		{"load from memory 1", funcModule([]byte{opI32Const, 0, opI32Load, 0x42, 1, 0, opDrop, opEnd}, [][]byte{memory}, nil), "memory 1"},
		{"export of an undeclared global", wasmModule(sec(secExport, 1, 1, 'g', exportKindGlobal, 0)), "global 0"},
		{"export of an undeclared memory", wasmModule(sec(secExport, 1, 1, 'm', 0x02, 0)), "memory 0"},
		{"data segment without a memory", wasmModule(sec(secData, 1, 0, opI32Const, 0, opEnd, 1, 'x')), "has no memory"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := InstrumentWith(c.wasm, Options{YieldEvery: DefaultYieldEvery, MaxDepth: testMaxDepth})
			if !errors.Is(err, ErrUndeclared) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrUndeclared naming %q", err, c.want)
			}
		})
	}

	// The same instructions on what the module does declare are fine.
	r := newRuntime(t)
	ok := funcModule([]byte{opI32Const, 0, opGlobalSet, 0, opI32Const, 0, opI32Load, 2, 0, opDrop, opEnd}, [][]byte{memory, global}, nil)
	mustInstrumentWith(t, r, ok, Options{YieldEvery: DefaultYieldEvery, MaxDepth: testMaxDepth})
}
