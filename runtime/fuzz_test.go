package runtime

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/abi"
)

// fuzzChildEnv names the module file the test binary loads and runs one
// event of, as FuzzGuestModules' child.
const fuzzChildEnv = "WASMGATE_FUZZ_GUEST_CHILD"

// FuzzGuestModules loads modules — generated from the fuzz input by
// genModule when it starts with "G", the input itself otherwise (seeded
// with every test fixture) — and runs one event under a 10 ms deadline, in
// a child process: a guest that hangs it (a deadline not enforced, a
// stop-the-world held up) would freeze the fuzzer itself in-process. The
// child must finish within a generous bound; whether the module loads or
// the event fails does not matter.
//
//	go test ./runtime -run '^$' -fuzz FuzzGuestModules
func FuzzGuestModules(f *testing.F) {
	if path := os.Getenv(fuzzChildEnv); path != "" {
		fuzzChild(f, path)
		return
	}
	fixtures, _ := filepath.Glob(filepath.Join("testdata", "*.wasm"))
	for _, p := range fixtures {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, seed := range []string{"G\x00", "G\x01", "G\x02\x20", "G\x03", "G\x04\x05", "G\x05\x01\x00", "G\x06\x07\x03"} {
		f.Add([]byte(seed))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, in []byte) {
		wasm := in
		if len(in) > 0 && in[0] == 'G' {
			wasm = genModule(in[1:])
		}
		path := filepath.Join(dir, "m.wasm")
		if err := os.WriteFile(path, wasm, 0o644); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^FuzzGuestModules$")
		cmd.Env = append(os.Environ(), fuzzChildEnv+"="+path)
		out, _ := cmd.CombinedOutput()
		if ctx.Err() != nil {
			t.Fatalf("loading the module and one event under a 10 ms deadline did not finish in 10 s (module %x):\n%s", wasm, out)
		}
		if bytes.Contains(out, []byte("fatal error:")) {
			t.Fatalf("the child died (module %x):\n%s", wasm, out)
		}
	})
}

// fuzzChild loads the module at path and delivers one message, then exits.
func fuzzChild(f *testing.F, path string) {
	wasm, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	r, err := New(ctx, Config{PoolSize: 1, EventTimeout: 10 * time.Millisecond, MemoryLimitPages: 256}, &recordingHost{}, nil)
	if err != nil {
		f.Fatal(err)
	}
	if m, err := r.Load(ctx, "fuzz", wasm, ""); err == nil {
		_ = m.OnMessage(ctx, "c1", abi.Message{Data: []byte("x")})
	}
	os.Exit(0)
}

// genModule builds an ABI-shaped module whose on_message runs statements
// chosen by the bytes of in — loops, recursion, call trees, memory growth,
// and references to globals the module does not declare — each of which
// leaves the operand stack empty, so that most generated modules are valid
// and run the hostile shapes rather than fail to compile.
func genModule(in []byte) []byte {
	var body []byte
	for i := 0; i < len(in) && len(body) < 4096; i++ {
		arg := byte(0)
		if i+1 < len(in) {
			arg = in[i+1] & 0x3f
		}
		switch in[i] % 8 {
		case 0: // loop $l br $l end
			body = append(body, 0x03, 0x40, 0x0c, 0x00, 0x0b)
		case 1: // call $down: recursion without end
			body = append(body, 0x41, 0x00, 0x10, 2, 0x1a)
		case 2: // call $tree arg: 2^(arg+1) calls, no loop
			body = append(body, 0x41, arg, 0x10, 3, 0x1a)
			i++
		case 3: // global.set 0 and 1: undeclared
			body = append(body, 0x41, 0x00, 0x24, 0x00, 0x41, 0x00, 0x24, 0x01)
		case 4: // memory.grow arg
			body = append(body, 0x41, arg, 0x40, 0x00, 0x1a)
			i++
		case 5: // loop counting down from arg<<10
			body = append(body, 0x41)
			body = appendLEB(body, uint32(arg)<<10)
			body = append(body, 0x21, 3, // local.set $n
				0x03, 0x40, 0x20, 3, 0x41, 1, 0x6b, 0x22, 3, 0x0d, 0x00, 0x0b)
			i++
		case 6: // block br 0 end
			body = append(body, 0x02, 0x40, 0x0c, 0x00, 0x0b)
		case 7: // call $tree arg inside a loop that runs arg times
			body = append(body, 0x41, arg, 0x21, 3,
				0x03, 0x40, 0x41, arg, 0x10, 3, 0x1a, 0x20, 3, 0x41, 1, 0x6b, 0x22, 3, 0x0d, 0x00, 0x0b)
			i++
		}
	}
	// on_message(id, len, flags) with one local $n (index 3): body, then
	// return 0.
	onMessage := append([]byte{1, 1, 0x7f}, body...)
	onMessage = append(onMessage, 0x41, 0x00, 0x0b)
	funcs := [][]byte{
		{0, 0x41, 1, 0x0b},                         // 0 wasmgate_abi_version
		{0, 0x41, 0x80, 0x08, 0x0b},                // 1 wasmgate_buffer -> 1024
		{0, 0x20, 0, 0x41, 1, 0x6a, 0x10, 2, 0x0b}, // 2 down(n) = down(n+1)
		// 3 tree(d) = d == 0 ? 1 : tree(d-1) + tree(d-1)
		{0, 0x20, 0, 0x45, 0x04, 0x7f, 0x41, 1, 0x05,
			0x20, 0, 0x41, 1, 0x6b, 0x10, 3, 0x20, 0, 0x41, 1, 0x6b, 0x10, 3, 0x6a, 0x0b, 0x0b},
		onMessage, // 4 on_message
	}
	types := []byte{3,
		0x60, 0, 1, 0x7f, // () -> i32
		0x60, 1, 0x7f, 1, 0x7f, // (i32) -> i32
		0x60, 3, 0x7f, 0x7f, 0x7f, 1, 0x7f, // (i32, i32, i32) -> i32
	}
	var code []byte
	code = appendLEB(code, uint32(len(funcs)))
	for _, fn := range funcs {
		code = appendLEB(code, uint32(len(fn)))
		code = append(code, fn...)
	}
	exports := []byte{4,
		6, 'm', 'e', 'm', 'o', 'r', 'y', 0x02, 0,
		20, 'w', 'a', 's', 'm', 'g', 'a', 't', 'e', '_', 'a', 'b', 'i', '_', 'v', 'e', 'r', 's', 'i', 'o', 'n', 0x00, 0,
		15, 'w', 'a', 's', 'm', 'g', 'a', 't', 'e', '_', 'b', 'u', 'f', 'f', 'e', 'r', 0x00, 1,
		10, 'o', 'n', '_', 'm', 'e', 's', 's', 'a', 'g', 'e', 0x00, 4,
	}
	out := []byte("\x00asm\x01\x00\x00\x00")
	for _, s := range []struct {
		id      byte
		content []byte
	}{
		{1, types},
		{3, []byte{5, 0, 1, 1, 1, 2}},
		{5, []byte{1, 0x00, 1}}, // one memory, 1 page
		{7, exports},
		{10, code},
	} {
		out = append(out, s.id)
		out = appendLEB(out, uint32(len(s.content)))
		out = append(out, s.content...)
	}
	return out
}

// appendLEB appends v as an unsigned LEB128.
func appendLEB(dst []byte, v uint32) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}

// TestGenModule checks that the fuzz generator makes modules that load
// (when they reference no undeclared global) and that run.
func TestGenModule(t *testing.T) {
	r, _ := newTestRuntimeWith(t, Config{PoolSize: 1, EventTimeout: 50 * time.Millisecond}, &recordingHost{})
	for _, in := range []string{"\x06", "\x05\x01", "\x02\x03\x07\x02", "\x04\x01"} {
		m, err := r.Load(context.Background(), "gen", genModule([]byte(in)), "")
		if err != nil {
			t.Fatalf("%x: %v", in, err)
		}
		if err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("x")}); err != nil {
			t.Fatalf("%x: %v", in, err)
		}
	}
	for _, c := range []struct{ in, want string }{
		{"\x00", "deadline"}, {"\x01", "stack overflow"}, {"\x02\x3f", "deadline"},
	} {
		m, err := r.Load(context.Background(), "gen", genModule([]byte(c.in)), "")
		if err != nil {
			t.Fatalf("%x: %v", c.in, err)
		}
		if err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("x")}); err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
			t.Fatalf("%x: err = %v, want %q", c.in, err, c.want)
		}
	}
	if _, err := r.Load(context.Background(), "gen", genModule([]byte("\x03")), ""); err == nil {
		t.Fatal("a generated module setting undeclared globals loaded")
	}
}
