package stopcheck

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// childEnv makes the test binary run TestGCWhileSpinning's child side.
const childEnv = "STOPCHECK_SPIN_CHILD"

// TestGCWhileSpinning runs a guest spinning in an instrumented loop on the
// only P (GOMAXPROCS=1) of a child process, which then needs the scheduler
// (a sleep) and the garbage collector (runtime.GC) before it sets the stop
// global. With Options.YieldEvery the child finishes; without it, it must
// be killed: Go cannot preempt native code, so the sleeping goroutine never
// gets the P back and a stop-the-world waits forever. This is the reason
// for YieldEvery, and why Instrument alone is not enough in a Go host.
func TestGCWhileSpinning(t *testing.T) {
	if mode := os.Getenv(childEnv); mode != "" {
		spinChild(t, mode)
		return
	}
	if testing.Short() {
		t.Skip("starts child processes, one of which must hang for 3s")
	}
	for _, c := range []struct {
		every  uint32
		tree   bool // a loop-free call tree (depth.wasm) instead of a loop
		finish bool
	}{
		{DefaultYieldEvery, false, true},
		{1, false, true},
		{DefaultYieldEvery, true, true},
		{0, false, false},
	} {
		name := fmt.Sprintf("YieldEvery=%d", c.every)
		mode := strconv.FormatUint(uint64(c.every), 10)
		if c.tree {
			name, mode = name+"/tree", mode+"/tree"
		}
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestGCWhileSpinning$", "-test.v")
			cmd.Env = append(os.Environ(), childEnv+"="+mode, "GOMAXPROCS=1")
			out, err := cmd.CombinedOutput()
			hung := ctx.Err() != nil
			switch {
			case c.finish && (err != nil || hung):
				t.Fatalf("child did not finish: %v\n%s", err, out)
			case !c.finish && !hung:
				t.Fatalf("child finished (%v) although its guest never yields; if wazero now preempts native code, "+
					"YieldEvery may no longer be needed\n%s", err, out)
			case c.finish:
				for _, line := range bytes.Split(out, []byte("\n")) {
					if bytes.Contains(line, []byte("spinChild")) || bytes.Contains(line, []byte("yield_test")) {
						t.Logf("child: %s", bytes.TrimSpace(line))
					}
				}
			default:
				t.Logf("child without yields hung as expected and was killed")
			}
		})
	}
}

// spinChild is the child side of TestGCWhileSpinning. mode is YieldEvery,
// and "/tree" to run depth.wasm's loop-free call tree of 2^41 calls, which
// yields at function entries.
func spinChild(t *testing.T, mode string) {
	mode, tree := strings.CutSuffix(mode, "/tree")
	every, err := strconv.ParseUint(mode, 10, 32)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := newRuntime(t)
	file, fn, args := "spin.wasm", "spin", []uint64(nil)
	if tree {
		file, fn, args = "depth.wasm", "tree", []uint64{40}
	}
	out, _ := mustInstrumentWith(t, r, readTestdata(t, file), Options{YieldEvery: uint32(every)})
	m := instantiate(t, r, out, "")
	g := stopGlobal(t, m)
	done := make(chan error, 1)
	go func() {
		_, err := m.ExportedFunction(fn).Call(ctx, args...)
		done <- err
	}()
	runtime.Gosched()
	start := time.Now()
	time.Sleep(10 * time.Millisecond) // needs the P back from the spinning guest
	slept := time.Since(start)
	start = time.Now()
	runtime.GC() // needs to stop the world, spinning guest included
	gc := time.Since(start)
	g.Set(1)
	if err := <-done; err == nil {
		t.Fatal("spin returned without error")
	}
	t.Logf("%s: GOMAXPROCS=%d YieldEvery=%d: a 10ms sleep took %v, runtime.GC took %v while the guest spun",
		fn, runtime.GOMAXPROCS(0), every, slept, gc)
}

// TestYieldSemantics checks that the yield code does not change what the
// test modules compute, and that it still stops them.
func TestYieldSemantics(t *testing.T) {
	r := newRuntime(t)
	for _, every := range []uint32{1, 2, 3, DefaultYieldEvery, 1 << 31, 1<<32 - 1} {
		t.Run(fmt.Sprint(every), func(t *testing.T) {
			opts := Options{YieldEvery: every}

			in := readTestdata(t, "features.wasm")
			out, st := mustInstrumentWith(t, r, in, opts)
			checkEveryLoopChecked(t, out, st)
			if st.tickGlobal != st.stopGlobal+1 || st.addedMemory {
				t.Fatalf("stats %+v", st)
			}
			orig, inst := instantiate(t, r, in, ""), instantiate(t, r, out, "")
			defer orig.Close(context.Background())
			defer inst.Close(context.Background())
			for _, fn := range []string{"consts", "branches", "refs", "memory", "simd", "tailcalls", "atomics"} {
				var args []uint64
				if fn == "branches" {
					args = []uint64{1}
				}
				want, got := call(t, orig, fn, args...), call(t, inst, fn, args...)
				if !slices.Equal(got, want) {
					t.Errorf("%s = %v with yields, %v originally", fn, got, want)
				}
			}

			out, _ = mustInstrumentWith(t, r, readTestdata(t, "nested.wasm"), opts)
			m := instantiate(t, r, out, "")
			defer m.Close(context.Background())
			if v := call(t, m, "grid", 20)[0]; v != 8000 {
				t.Fatalf("grid(20) = %d", v)
			}
			stopYielding(t, m, 5*time.Millisecond, "spin_inner", 1)
		})
	}
}

// TestYieldAddsMemory checks that a module without memory gets one, placed
// in the section order, and still works.
func TestYieldAddsMemory(t *testing.T) {
	r := newRuntime(t)
	in := readTestdata(t, "blockparams.wasm") // no memory, no global section
	out, st := mustInstrumentWith(t, r, in, Options{YieldEvery: 16})
	if !st.addedMemory || st.stopGlobal != 0 || st.tickGlobal != 1 {
		t.Fatalf("stats %+v", st)
	}
	want := []byte{secType, secFunction, secMemory, secGlobal, secExport, secCode}
	if got := sectionIDs(t, out); !bytes.Equal(got, want) {
		t.Fatalf("sections %v, want %v", got, want)
	}
	m := instantiate(t, r, out, "")
	if v := call(t, m, "fib", 30)[0]; v != 832040 {
		t.Fatalf("fib(30) = %d", v)
	}
	if m.Memory() == nil || m.Memory().Size() != 0 {
		t.Fatal("no empty memory")
	}
	stopYielding(t, m, 5*time.Millisecond, "spin_params", 1)

	// An empty memory section gains the memory instead of a second section.
	empty := append([]byte(header), secMemory, 1, 0)
	out, st = mustInstrumentWith(t, r, empty, Options{YieldEvery: 16})
	if !st.addedMemory {
		t.Fatal("no memory added to an empty memory section")
	}
	if got := sectionIDs(t, out); !bytes.Equal(got, []byte{secMemory, secGlobal, secExport}) {
		t.Fatalf("sections %v", got)
	}

	// Modules with a memory, defined or imported, get none.
	for _, name := range []string{"spin.wasm", "features.wasm"} {
		if _, st := mustInstrumentWith(t, r, readTestdata(t, name), Options{YieldEvery: 16}); st.addedMemory {
			t.Errorf("%s: memory added", name)
		}
	}
	imported := filepath.Join("..", "..", "testdata", "env_import.wasm")
	if b, err := os.ReadFile(imported); err == nil {
		if _, st, err := instrument(b, Options{YieldEvery: 16}); err == nil && st.addedMemory {
			t.Errorf("env_import.wasm: memory added")
		}
	}
}
