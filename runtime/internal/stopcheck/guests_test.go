package stopcheck

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wasmgate/wasmgate/abi"
)

// guestHost is a minimal wasmgate host for the example guests: every ABI
// host function exists, send_to_client records what it is given and the
// others succeed doing nothing.
type guestHost struct {
	mu   sync.Mutex
	sent [][]byte // "id|message" for every send_to_client
}

func (h *guestHost) instantiate(t testing.TB, r wazero.Runtime) {
	t.Helper()
	ctx := context.Background()
	b := r.NewHostModuleBuilder(abi.HostModule)
	for _, f := range abi.HostFuncs() {
		params := make([]api.ValueType, len(f.Params))
		for i, p := range f.Params {
			params[i] = api.ValueType(p)
		}
		results := make([]api.ValueType, len(f.Results))
		for i, p := range f.Results {
			results[i] = api.ValueType(p)
		}
		var fn api.GoModuleFunc
		switch f.Name {
		case abi.FuncSendToClient:
			fn = func(_ context.Context, m api.Module, stack []uint64) {
				id, _ := m.Memory().Read(api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
				msg, _ := m.Memory().Read(api.DecodeU32(stack[2]), api.DecodeU32(stack[3]))
				h.mu.Lock()
				h.sent = append(h.sent, append(append(append([]byte(nil), id...), '|'), msg...))
				h.mu.Unlock()
				stack[0] = 0
			}
		case abi.FuncNow:
			fn = func(_ context.Context, _ api.Module, stack []uint64) { stack[0] = uint64(time.Now().UnixNano()) }
		default:
			fn = func(_ context.Context, _ api.Module, stack []uint64) { stack[0] = 0 }
		}
		b.NewFunctionBuilder().WithGoModuleFunction(fn, params, results).Export(f.Name)
	}
	if _, err := b.Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
}

// startGuest instantiates an example guest as runtime/instance.go does: no
// start functions, then _initialize if exported, then the ABI version check.
func startGuest(t testing.TB, r wazero.Runtime, wasm []byte) api.Module {
	t.Helper()
	ctx := context.Background()
	cm := compileOrSkip(t, r, wasm)
	m, err := r.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName("").
		WithSysNanotime().WithSysWalltime().WithStartFunctions())
	if err != nil {
		t.Fatalf("instantiate: %v", err)
	}
	if f := m.ExportedFunction(abi.ExportInitialize); f != nil {
		if _, err := f.Call(ctx); err != nil {
			t.Fatalf("%s: %v", abi.ExportInitialize, err)
		}
	}
	if v := call(t, m, abi.ExportABIVersion)[0]; v != abi.Version {
		t.Fatalf("ABI version %d", v)
	}
	return m
}

// sendMessage delivers one message event as the runtime does and returns
// the guest's result.
func sendMessage(m api.Module, id, msg string) (uint64, error) {
	ctx := context.Background()
	res, err := m.ExportedFunction(abi.ExportBuffer).Call(ctx, uint64(len(id)+len(msg)))
	if err != nil {
		return 0, err
	}
	ptr := api.DecodeU32(res[0])
	m.Memory().WriteString(ptr, id+msg)
	res, err = m.ExportedFunction(abi.ExportOnMessage).Call(ctx, uint64(len(id)), uint64(len(msg)), 0)
	if err != nil {
		return 0, err
	}
	return res[0], nil
}

// checkEchoGuest instruments an echo guest, checks its loops against
// wasm-objdump and runs messages through the instrumented guest. If
// loopsPerEvent, the guest runs a loop for every event (the Go runtime
// does; the Rust echo does not), and an event handled with the stop flag set
// must trap.
func checkEchoGuest(t *testing.T, path string, loopsPerEvent bool) {
	in, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, opts := range []Options{{}, {YieldEvery: DefaultYieldEvery}} {
		t.Run(fmt.Sprintf("YieldEvery=%d", opts.YieldEvery), func(t *testing.T) {
			// wasm-objdump reads the input, the same for both: once is
			// enough (on a 2 MB Go guest it takes half a minute under -race).
			checkEchoGuestWith(t, path, in, opts, loopsPerEvent, i == 0)
		})
	}
}

func checkEchoGuestWith(t *testing.T, path string, in []byte, opts Options, loopsPerEvent, objdump bool) {
	r := newRuntime(t)
	h := &guestHost{}
	h.instantiate(t, r)
	// One instrumentation, timed; startGuest below compiles the result
	// (compiling it twice, as mustInstrumentWith would, doubles the cost
	// of a 2.4 MB Go guest under -race for nothing).
	start := time.Now()
	out, st, err := instrument(in, opts)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: %d bytes, %d loops instrumented in %v (+%d bytes)", filepath.Base(path), len(in), st.loops,
		took, len(out)-len(in))
	checkEveryLoopChecked(t, out, st)
	if objdump {
		checkLoopsAgainstObjdump(t, path, in, st)
	}
	if opts.YieldEvery != DefaultYieldEvery && len(in) > 1<<20 {
		// Running it too means compiling a 2 MB Go guest once more, 45 s
		// under -race; the runtime uses DefaultYieldEvery, which runs below.
		return
	}

	m := startGuest(t, r, out)
	defer m.Close(context.Background())
	for _, msg := range []string{"hello", "second message"} {
		if rc, err := sendMessage(m, "client-1", msg); err != nil || rc != 0 {
			t.Fatalf("on_message(%q) = %d, %v", msg, rc, err)
		}
	}
	h.mu.Lock()
	sent := h.sent
	h.mu.Unlock()
	want := [][]byte{[]byte("client-1|hello"), []byte("client-1|second message")}
	if len(sent) != 2 || !bytes.Equal(sent[0], want[0]) || !bytes.Equal(sent[1], want[1]) {
		t.Fatalf("sent %q, want %q", sent, want)
	}

	if !loopsPerEvent {
		return
	}
	// With the flag set, the next loop the guest enters traps.
	stopGlobal(t, m).Set(1)
	if _, err := sendMessage(m, "client-1", "stopped"); err == nil {
		t.Fatal("event ran to completion with the stop flag set")
	} else {
		t.Logf("with the stop flag set: %v", firstLine(err.Error()))
	}
}

func firstLine(s string) string {
	if i := bytes.IndexByte([]byte(s), '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// TestGoGuest builds the Go echo example (GOOS=wasip1, as
// guest-examples/Makefile does) and checks it after instrumentation.
func TestGoGuest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Go guest")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go toolchain not found")
	}
	src, err := filepath.Abs(filepath.Join("..", "..", "..", "guest-examples", "echo"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(src); err != nil {
		t.Skipf("no Go echo example: %v", err)
	}
	out := filepath.Join(t.TempDir(), "echo.wasm")
	cmd := exec.Command(goBin, "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the Go echo guest: %v\n%s", err, b)
	}
	checkEchoGuest(t, out, true)
}

// TestRustGuest builds the Rust echo example with Debian's rustc, as
// guest-examples/Makefile does, when that compiler and its wasm32 standard
// library are installed.
func TestRustGuest(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Rust guest")
	}
	const rustc = "/usr/bin/rustc"
	if _, err := os.Stat(rustc); err != nil {
		t.Skip("no /usr/bin/rustc")
	}
	if _, err := os.Stat("/usr/lib/rustlib/wasm32-unknown-unknown/lib"); err != nil {
		t.Skip("no wasm32-unknown-unknown standard library for /usr/bin/rustc")
	}
	examples, err := filepath.Abs(filepath.Join("..", "..", "..", "guest-examples"))
	if err != nil {
		t.Fatal(err)
	}
	// The echo is built on the SDK crate: the crate first, as an rlib.
	dir := t.TempDir()
	rlib, out := filepath.Join(dir, "libwasmgate.rlib"), filepath.Join(dir, "rust-echo.wasm")
	base := []string{"--edition", "2021", "-O", "--target", "wasm32-unknown-unknown"}
	for _, args := range [][]string{
		append(base, "--crate-type", "rlib", "--crate-name", "wasmgate", "-o", rlib, filepath.Join(examples, "rust", "wasmgate", "src", "lib.rs")),
		append(base, "--crate-type", "cdylib", "-C", "strip=debuginfo", "--extern", "wasmgate="+rlib, "-o", out, filepath.Join(examples, "rust-echo", "echo.rs")),
	} {
		if b, err := exec.Command(rustc, args...).CombinedOutput(); err != nil {
			t.Fatalf("building the Rust echo guest: %v\n%s", err, b)
		}
	}
	checkEchoGuest(t, out, false)
}

// TestLoopGuest runs the runtime's loop.wasm test guest (on_message spins
// forever on a message starting with "l") and stops it with the flag.
func TestLoopGuest(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("..", "..", "testdata", "loop.wasm"))
	if err != nil {
		t.Skip(err)
	}
	r := newRuntime(t)
	h := &guestHost{}
	h.instantiate(t, r)
	out, _ := mustInstrument(t, r, in)
	m := startGuest(t, r, out)
	if rc, err := sendMessage(m, "c", "echo"); err != nil || rc != 0 {
		t.Fatalf("on_message = %d, %v", rc, err)
	}
	ctx := context.Background()
	res, err := m.ExportedFunction(abi.ExportBuffer).Call(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	m.Memory().WriteString(api.DecodeU32(res[0]), "cl")
	stopAfter(t, m, 20*time.Millisecond, abi.ExportOnMessage, 1, 1, 0)
	if rc, err := sendMessage(m, "c", "after"); err != nil || rc != 0 {
		t.Fatalf("on_message after a stop = %d, %v", rc, err)
	}
}
