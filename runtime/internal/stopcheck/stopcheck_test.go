package stopcheck

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// TestStopInfiniteLoop is the experiment the package relies on: a loop that
// never ends by itself stops soon after another goroutine sets the global,
// so wazevo does reload the global at every iteration.
func TestStopInfiniteLoop(t *testing.T) {
	r := newRuntime(t)
	out, st := mustInstrument(t, r, readTestdata(t, "spin.wasm"))
	if st.stopGlobal != 2 || st.loops != 1 {
		t.Fatalf("stats = %+v, want stop global 2 after the 2 defined globals, 1 loop", st)
	}
	m := instantiate(t, r, out, "")
	g := stopGlobal(t, m)
	if v := g.Get(); v != 0 {
		t.Fatalf("stop global starts at %d, want 0", v)
	}

	stopAfter(t, m, 50*time.Millisecond, "spin")

	// The module's own globals and exports are untouched, and the instance
	// keeps working after the trap once the flag is cleared.
	if v := call(t, m, "calls")[0]; v != 1 {
		t.Fatalf("calls = %d, want 1", v)
	}
	if v := call(t, m, "k")[0]; v != 7 {
		t.Fatalf("k = %d, want 7", v)
	}
	if v := m.ExportedGlobal("calls_global").Get(); v != 1 {
		t.Fatalf("calls_global = %d, want 1", v)
	}
	stopAfter(t, m, 10*time.Millisecond, "spin")
	if v := call(t, m, "calls")[0]; v != 2 {
		t.Fatalf("calls = %d, want 2", v)
	}
}

// TestStopIsPerInstance checks that the flag of one instance does not stop
// another instance of the same compiled module.
func TestStopIsPerInstance(t *testing.T) {
	r := newRuntime(t)
	out, _ := mustInstrument(t, r, readTestdata(t, "spin.wasm"))
	a, b := instantiate(t, r, out, "a"), instantiate(t, r, out, "b")
	// Two guests spin at once, and a goroutine in a wasm loop cannot be
	// preempted: without a third P the timer that sets the global would
	// never run. See also stopAfter on the garbage collector.
	skipSpinning(t)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(3, runtime.GOMAXPROCS(0))))
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	// Finish a cycle already under way: its closing stop-the-world would
	// otherwise wait for the spinning guest forever, GC off or not.
	runtime.GC()
	bDone := make(chan error, 1)
	go func() {
		_, err := b.ExportedFunction("spin").Call(context.Background())
		bDone <- err
	}()
	stopAfter(t, a, 20*time.Millisecond, "spin")
	select {
	case err := <-bDone:
		t.Fatalf("instance b stopped when a was stopped: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	stopGlobal(t, b).Set(1)
	select {
	case err := <-bDone:
		if err == nil {
			t.Fatal("b returned without error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("b did not stop")
	}
}

func TestNestedLoops(t *testing.T) {
	r := newRuntime(t)
	in := readTestdata(t, "nested.wasm")
	out, st := mustInstrument(t, r, in)
	checkLoopsAgainstObjdump(t, filepath.Join("testdata", "nested.wasm"), in, st)
	checkEveryLoopChecked(t, out, st)
	if st.loops != 6 {
		t.Fatalf("instrumented %d loops, want 6", st.loops)
	}
	m := instantiate(t, r, out, "")
	if v := call(t, m, "grid", 5)[0]; v != 125 {
		t.Fatalf("grid(5) = %d, want 125", v)
	}
	if v := call(t, m, "spin_inner", 0); len(v) != 0 {
		t.Fatalf("spin_inner(0) returned %v", v)
	}
	stopAfter(t, m, 20*time.Millisecond, "spin_inner", 1)
	if v := call(t, m, "grid", 3)[0]; v != 27 {
		t.Fatalf("grid(3) = %d after a stop, want 27", v)
	}
}

func TestLoopBlockParams(t *testing.T) {
	r := newRuntime(t)
	in := readTestdata(t, "blockparams.wasm")
	out, st := mustInstrument(t, r, in)
	checkLoopsAgainstObjdump(t, filepath.Join("testdata", "blockparams.wasm"), in, st)
	checkEveryLoopChecked(t, out, st)
	m := instantiate(t, r, out, "")
	for _, c := range []struct {
		fn   string
		args []uint64
		want uint64
	}{
		{"fib", []uint64{0}, 0},
		{"fib", []uint64{1}, 1},
		{"fib", []uint64{10}, 55},
		{"fib", []uint64{30}, 832040},
		{"loop_result", nil, 42},
		{"countdown", []uint64{5}, 0},
	} {
		if v := call(t, m, c.fn, c.args...)[0]; v != c.want {
			t.Errorf("%s%v = %d, want %d", c.fn, c.args, v, c.want)
		}
	}
	stopAfter(t, m, 20*time.Millisecond, "spin_params", 1)
}

// TestNoGlobalsNoExports checks that missing global and export sections are
// created in their place in the section order.
func TestNoGlobalsNoExports(t *testing.T) {
	r := newRuntime(t)
	in := readTestdata(t, "noexports.wasm")
	out, st := mustInstrument(t, r, in)
	if st.stopGlobal != 0 || st.loops != 1 {
		t.Fatalf("stats = %+v", st)
	}
	want := []byte{secType, secFunction, secMemory, secGlobal, secExport, secStart, secCode}
	if got := sectionIDs(t, out); !bytes.Equal(got, want) {
		t.Fatalf("sections %v, want %v", got, want)
	}
	m := instantiate(t, r, out, "") // runs the start function and its loop
	if v := stopGlobal(t, m).Get(); v != 0 {
		t.Fatalf("stop global = %d", v)
	}
	if len(m.ExportedFunctionDefinitions()) != 0 {
		t.Fatal("instrumenting exported a function")
	}

	// The smallest module: a header only.
	out, st, err := instrument([]byte(header), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := sectionIDs(t, out); !bytes.Equal(got, []byte{secGlobal, secExport}) {
		t.Fatalf("sections of the empty module %v", got)
	}
	m = instantiate(t, r, out, "empty")
	_ = stopGlobal(t, m)
}

func TestImportedGlobals(t *testing.T) {
	r := newRuntime(t)
	env := instantiate(t, r, readTestdata(t, "env_globals.wasm"), "env")
	orig := readTestdata(t, "imported_globals.wasm")
	out, st := mustInstrument(t, r, orig)
	if st.stopGlobal != 3 {
		t.Fatalf("stop global index %d, want 3 (2 imported + 1 defined)", st.stopGlobal)
	}
	m := instantiate(t, r, out, "")
	if v := call(t, m, "run")[0]; v != 10 {
		t.Fatalf("run = %d, want 10", v)
	}
	if v := env.ExportedGlobal("counter").Get(); v != 10 {
		t.Fatalf("env counter = %d, want 10", v)
	}
	stopAfter(t, m, 20*time.Millisecond, "spin")
}

func TestExportExists(t *testing.T) {
	_, err := Instrument(readTestdata(t, "has_stop_export.wasm"))
	if !errors.Is(err, ErrExportExists) {
		t.Fatalf("err = %v, want ErrExportExists", err)
	}
	if !strings.Contains(err.Error(), Export) {
		t.Fatalf("error %q does not name the export", err)
	}
}

// TestSectionsPreserved inserts a custom section before and after every
// section and checks that the output keeps every section other than global,
// export and code byte for byte and in place, and that a created section
// directly follows the section it must follow.
func TestSectionsPreserved(t *testing.T) {
	r := newRuntime(t)
	for _, name := range []string{"spin.wasm", "noexports.wasm", "features.wasm", "imported_globals.wasm"} {
		t.Run(name, func(t *testing.T) {
			in := withCustomSections(t, readTestdata(t, name))
			out, _ := mustInstrument(t, r, in)
			inSecs, err := splitSections(in)
			if err != nil {
				t.Fatal(err)
			}
			outSecs, err := splitSections(out)
			if err != nil {
				t.Fatal(err)
			}
			var kept [][]byte
			hadGlobal, hadExport := false, false
			for _, s := range inSecs {
				hadGlobal = hadGlobal || s.id == secGlobal
				hadExport = hadExport || s.id == secExport
			}
			for _, s := range outSecs {
				switch s.id {
				case secGlobal, secExport, secCode:
					kept = append(kept, []byte{s.id}) // compared by ID only
				default:
					kept = append(kept, s.raw)
				}
			}
			// Created sections come right after the last section that
			// must precede them, before the custom sections that follow it.
			var want [][]byte
			addMissing := func(next int) {
				if !hadGlobal && next > sectionRank(secGlobal) {
					want, hadGlobal = append(want, []byte{secGlobal}), true
				}
				if !hadExport && next > sectionRank(secExport) {
					want, hadExport = append(want, []byte{secExport}), true
				}
			}
			nextRank := func(i int) int {
				for ; i < len(inSecs); i++ {
					if inSecs[i].id != secCustom {
						return sectionRank(inSecs[i].id)
					}
				}
				return 1 << 30
			}
			addMissing(nextRank(0))
			for i, s := range inSecs {
				switch s.id {
				case secGlobal, secExport, secCode:
					want = append(want, []byte{s.id})
				default:
					want = append(want, s.raw)
				}
				if s.id != secCustom {
					addMissing(nextRank(i + 1))
				}
			}
			if !slices.EqualFunc(kept, want, bytes.Equal) {
				t.Fatalf("sections not preserved:\n got %x\nwant %x", kept, want)
			}
		})
	}
}

// withCustomSections returns wasm with a custom section before the first
// section, after every section, and two between code and data.
func withCustomSections(t testing.TB, wasm []byte) []byte {
	t.Helper()
	secs, err := splitSections(wasm)
	if err != nil {
		t.Fatal(err)
	}
	custom := func(i int) []byte {
		name := "c" + string(rune('a'+i))
		content := append(appendU32(nil, uint32(len(name))), name...)
		content = append(content, 0x03, 0x03, 0x03) // loop opcodes that are not code
		return append(appendU32([]byte{secCustom}, uint32(len(content))), content...)
	}
	out := append([]byte(header), custom(0)...)
	for i, s := range secs {
		out = append(out, s.raw...)
		out = append(out, custom(i+1)...)
	}
	return out
}

// TestTrailingNameSectionStaysLast is the regression test for a fuzzer
// find: wazero reads a malformed "name" section up to the end of the module,
// so created sections must not be appended after it.
func TestTrailingNameSectionStaysLast(t *testing.T) {
	r := newRuntime(t)
	in := []byte("\x00asm\x01\x00\x00\x00\x00\x08\x04name\x020\x00") // subsection size past the end
	if _, err := r.CompileModule(context.Background(), in); err != nil {
		t.Skipf("wazero no longer accepts this module: %v", err)
	}
	out, _ := mustInstrumentWith(t, r, in, Options{YieldEvery: 89})
	if got := sectionIDs(t, out); !bytes.Equal(got, []byte{secMemory, secGlobal, secExport, secCustom}) {
		t.Fatalf("sections %v", got)
	}
}

func sectionIDs(t testing.TB, wasm []byte) []byte {
	t.Helper()
	secs, err := splitSections(wasm)
	if err != nil {
		t.Fatal(err)
	}
	var ids []byte
	for _, s := range secs {
		ids = append(ids, s.id)
	}
	return ids
}

// TestFeatures instruments a module exercising every family of immediates
// and checks against wasm-objdump that every loop, and only loops, were
// found, and that every function returns what it returned before.
func TestFeatures(t *testing.T) {
	r := newRuntime(t)
	in := readTestdata(t, "features.wasm")
	out, st := mustInstrument(t, r, in)
	checkLoopsAgainstObjdump(t, filepath.Join("testdata", "features.wasm"), in, st)
	checkEveryLoopChecked(t, out, st)
	orig, inst := instantiate(t, r, in, "orig"), instantiate(t, r, out, "inst")
	for _, fn := range []string{"consts", "branches", "refs", "memory", "simd", "tailcalls", "atomics"} {
		var args []uint64
		if fn == "branches" {
			args = []uint64{2}
		}
		want, got := call(t, orig, fn, args...), call(t, inst, fn, args...)
		if !slices.Equal(got, want) {
			t.Errorf("%s = %v instrumented, %v originally", fn, got, want)
		}
	}
}

// TestMalformed checks that broken or unsupported input gives an error
// naming the problem, never a panic or a silently wrong module.
func TestMalformed(t *testing.T) {
	// body wraps instructions in a module with one function () -> ().
	body := func(code ...byte) []byte {
		b := []byte(header)
		b = append(b, secType, 4, 1, 0x60, 0, 0)
		b = append(b, secFunction, 2, 1, 0)
		fn := append([]byte{0}, code...) // no locals
		sec := appendU32(appendU32(nil, 1), uint32(len(fn)))
		sec = append(sec, fn...)
		b = appendU32(append(b, secCode), uint32(len(sec)))
		return append(b, sec...)
	}
	for _, c := range []struct {
		name, want string
		wasm       []byte
	}{
		{"empty", "not a WebAssembly", nil},
		{"bad magic", "not a WebAssembly", []byte("\x00asn\x01\x00\x00\x00")},
		{"version 2", "not a WebAssembly", []byte("\x00asm\x02\x00\x00\x00")},
		{"truncated section", "size 9", append([]byte(header), secType, 9, 1)},
		{"unknown section", "unknown section id 14", append([]byte(header), 14, 0)},
		{"out of order", "out of order", append([]byte(header), secFunction, 1, 0, secType, 1, 0)},
		{"repeated", "out of order or repeated", append([]byte(header), secType, 1, 0, secType, 1, 0)},
		{"unknown opcode", "function 0: unsupported instruction: opcode 0xff at offset 1", body(0xff, 0x0b)},
		{"GC prefix", "function 0: unsupported instruction: opcode 0xfb", body(0xfb, 0x00, 0x0b)},
		{"legacy try", "legacy exception-handling opcode 0x06", body(0x06, 0x40, 0x0b, 0x0b)},
		{"unknown misc", "opcode 0xfc 0x12", body(0xfc, 0x12, 0x0b)},
		{"unknown simd", "opcode 0xfd 0x9a", body(0xfd, 0x9a, 0x01, 0x0b)},
		{"relaxed simd", "opcode 0xfd 0x80 0x02", body(0xfd, 0x80, 0x02, 0x0b)},
		{"unknown atomic", "opcode 0xfe 0x4", body(0xfe, 0x04, 0x0b)},
		{"no end", "no final end", body(0x01)},
		{"unclosed block", "no final end", body(0x02, 0x40, 0x0b)},
		{"trailing bytes", "1 bytes after the end of the body", body(0x0b, 0x01)},
		{"truncated immediate", "immediate of opcode 0x41", body(0x41, 0x80)},
		{"u32 overflow", "overflows", body(0x10, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x0b)},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Instrument(c.wasm)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
			if strings.Contains(c.want, "unsupported") && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("err = %v does not wrap ErrUnsupported", err)
			}
		})
	}

	// The function index counts imported functions.
	withImport := []byte(header)
	withImport = append(withImport, secType, 4, 1, 0x60, 0, 0)
	withImport = append(withImport, secImport, 7, 1, 1, 'm', 1, 'f', 0x00, 0)
	withImport = append(withImport, secFunction, 2, 1, 0)
	withImport = append(withImport, secCode, 5, 1, 3, 0, 0xff, 0x0b)
	if _, err := Instrument(withImport); err == nil || !strings.Contains(err.Error(), "function 1:") {
		t.Fatalf("err = %v, want it to name function 1", err)
	}
}

// TestLEB checks the LEB128 readers at their limits.
func TestLEB(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		want uint32
		ok   bool
	}{
		{[]byte{0x00}, 0, true},
		{[]byte{0x80, 0x00}, 0, true}, // padded: allowed
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, 0xffffffff, true},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x1f}, 0, false},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 0, false},
		{[]byte{0x80}, 0, false},
	} {
		r := reader{b: c.in}
		v, err := r.u32()
		if (err == nil) != c.ok || (c.ok && (v != c.want || r.pos != len(c.in))) {
			t.Errorf("u32(%x) = %d, %v; read %d", c.in, v, err, r.pos)
		}
		if got := appendU32(nil, c.want); c.ok && len(c.in) == len(got) && !bytes.Equal(got, c.in) {
			t.Errorf("appendU32(%d) = %x", c.want, got)
		}
	}
	for _, c := range []struct {
		in        []byte
		bits, max int
		want      int64
		ok        bool
	}{
		{[]byte{0x40}, 33, 5, -64, true},
		{[]byte{0x7f}, 32, 5, -1, true},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x7f}, 32, 5, -1, true},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x4f}, 32, 5, 0, false},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x78}, 32, 5, -2147483648, true},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x07}, 32, 5, 2147483647, true},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, 32, 5, 0, false},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, 33, 5, 4294967295, true},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f}, 64, 10, -1 << 63, true},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 64, 10, 0, false},
	} {
		r := reader{b: c.in}
		v, err := r.signed(c.bits, c.max)
		if (err == nil) != c.ok || (c.ok && (v != c.want || r.pos != len(c.in))) {
			t.Errorf("s%d(%x) = %d, %v; read %d", c.bits, c.in, v, err, r.pos)
		}
	}
}

// TestSIMDOpcodes checks the SIMD immediate table against wazero itself:
// for every sub-opcode 0..255 it builds functions that apply the opcode,
// with the immediates the table says it has, to parameters of several
// signatures. A known opcode must compile with at least one signature, an
// unassigned one with none.
func TestSIMDOpcodes(t *testing.T) {
	r := newRuntime(t)
	const (
		v128 = byte(0x7b) // api has no V128 constant
		i32  = byte(api.ValueTypeI32)
		i64  = byte(api.ValueTypeI64)
		f32  = byte(api.ValueTypeF32)
		f64  = byte(api.ValueTypeF64)
	)
	params := [][]byte{{}, {v128}, {v128, v128}, {v128, v128, v128}, {v128, i32}, {v128, i64},
		{v128, f32}, {v128, f64}, {i32}, {i64}, {f32}, {f64}, {i32, v128}}
	results := [][]byte{{v128}, {i32}, {i64}, {f32}, {f64}, {}}
	compiles := func(op byte, kind simdImm, p, res []byte) bool {
		code := []byte{0} // no locals
		for i := range p {
			code = append(code, opLocalGet, byte(i))
		}
		code = append(code, opPrefixSIMD, op)
		if op >= 0x80 {
			code = append(code, 0x01)
		}
		switch kind {
		case simdMemarg:
			code = append(code, 0, 0)
		case simdLane:
			code = append(code, 0)
		case simdMemargLane:
			code = append(code, 0, 0, 0)
		case simdBytes16:
			code = append(code, make([]byte, 16)...)
		}
		code = append(code, opEnd)
		typ := append(appendU32([]byte{1, 0x60}, uint32(len(p))), p...)
		typ = append(appendU32(typ, uint32(len(res))), res...)
		m := []byte(header)
		m = append(appendU32(append(m, secType), uint32(len(typ))), typ...)
		m = append(m, secFunction, 2, 1, 0, secMemory, 3, 1, 0, 1)
		fn := append(appendU32([]byte{1}, uint32(len(code))), code...)
		m = append(appendU32(append(m, secCode), uint32(len(fn))), fn...)
		cm, err := r.CompileModule(context.Background(), m)
		if err != nil {
			return false
		}
		_ = cm.Close(context.Background())
		return true
	}
	unknown := 0
	for op := 0; op <= 0xff; op++ {
		kind := simdKind(uint32(op))
		known := kind != simdUnknown
		if !known {
			unknown++
			kind = simdNone
		}
		ok := false
		for _, p := range params {
			for _, res := range results {
				if ok = compiles(byte(op), kind, p, res); ok {
					break
				}
			}
			if ok {
				break
			}
		}
		if ok != known {
			t.Errorf("SIMD opcode %#02x: table says known=%v, wazero compiles it: %v", op, known, ok)
		}
	}
	if unknown != 20 {
		t.Errorf("%d unassigned SIMD opcodes in 0..255, the spec has 20", unknown)
	}
	if simdKind(0x100) != simdUnknown {
		t.Error("relaxed SIMD accepted")
	}
}
