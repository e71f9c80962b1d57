package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/abi"
)

// idleInstance returns the module's one idle instance (nil if none).
func idleInstance(t *testing.T, m *Module) *instance {
	t.Helper()
	m.pool.mu.Lock()
	defer m.pool.mu.Unlock()
	if len(m.pool.idle) > 1 {
		t.Fatalf("%d idle instances, want at most 1", len(m.pool.idle))
	}
	if len(m.pool.idle) == 0 {
		return nil
	}
	return m.pool.idle[0]
}

func isLive(m *Module, inst *instance) bool {
	m.pool.mu.Lock()
	defer m.pool.mu.Unlock()
	_, ok := m.pool.live[inst]
	return ok
}

// TestModule_StackOverflowDiscardsInstance recurses without end: wazero
// traps with a stack overflow, the event fails, its instance is dropped,
// and the next event runs on a fresh one.
func TestModule_StackOverflowDiscardsInstance(t *testing.T) {
	host := &recordingHost{}
	r, logs := newTestRuntime(t, host)
	m, err := loadFixture(t, r, "recursion", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first := idleInstance(t, m)
	err = m.OnMessage(ctx, "c1", abi.Message{Data: []byte("recurse")})
	if !errors.Is(err, ErrTrap) || !strings.Contains(err.Error(), "stack overflow") {
		t.Fatalf("err = %v, want a stack overflow trap", err)
	}
	if isLive(m, first) || idleInstance(t, m) != nil {
		t.Fatal("the instance that overflowed is still in the pool")
	}
	if err := m.OnMessage(ctx, "c1", abi.Message{Data: []byte("ok")}); err != nil {
		t.Fatalf("event after the overflow: %v", err)
	}
	if got := host.messages(); len(got) != 1 || string(got[0].msg.Data) != "ok" {
		t.Fatalf("sends = %+v, want the echo of the second event only", got)
	}
	if next := idleInstance(t, m); next == nil || next == first {
		t.Fatal("the next event did not run on a fresh instance")
	}
	if !strings.Contains(logs.String(), "instance discarded") || !strings.Contains(logs.String(), "module=recursion event=on_message client=c1") {
		t.Errorf("overflow not logged with module, event and client:\n%s", logs.String())
	}
}

// TestModule_LoopFreeRecursionStoppedAtDeadline makes 2^31 calls without a
// loop, never more than 31 frames deep. The deadline rewrite used to check
// only loops, so this ran until done (about 10 s here under a 50 ms
// deadline) and held up the garbage collector meanwhile; function entries
// are checked too now.
func TestModule_LoopFreeRecursionStoppedAtDeadline(t *testing.T) {
	m := loadWith(t, Config{PoolSize: 1, EventTimeout: 50 * time.Millisecond}, &recordingHost{}, "recursion")
	start := time.Now()
	err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("tree")})
	if d := time.Since(start); d > 3*time.Second { // no freeze; the old code took ~10 s
		t.Fatalf("a 50 ms deadline stopped loop-free recursion only after %v (err %v)", d, err)
	}
	if !errors.Is(err, ErrTrap) || !strings.Contains(err.Error(), "deadline") {
		t.Fatalf("err = %v, want a deadline trap", err)
	}
}

// TestLoad_UndeclaredGlobalsRefused loads a module whose loop sets global
// indices 0 and 1 without declaring any globals: the indices of the stop
// flag and yield counter the deadline rewrite appends. The old code loaded
// it, and its loop cleared its own stop flag forever (and never yielded,
// freezing every garbage collection); it is refused, with or without
// deadlines, naming the instruction.
func TestLoad_UndeclaredGlobalsRefused(t *testing.T) {
	for _, timeout := range []time.Duration{50 * time.Millisecond, 0} {
		r, _ := newTestRuntimeWith(t, Config{PoolSize: 1, EventTimeout: timeout}, &recordingHost{})
		m, err := loadFixture(t, r, "crafted_globals", "")
		if err == nil {
			_ = m.Close(context.Background())
			t.Fatalf("event_timeout %v: a module setting globals it does not declare was loaded", timeout)
		}
		msg := err.Error()
		for _, want := range []string{"not a valid wasm module", "global.set 0", "refers to an index the module does not declare", "it has 0 globals"} {
			if !strings.Contains(msg, want) {
				t.Errorf("event_timeout %v: error %q does not say %q", timeout, msg, want)
			}
		}
		if strings.Contains(msg, "stopcheck") {
			t.Errorf("error %q names an internal package", msg)
		}
	}
}

// TestModule_StackOverflowIsCheap recurses without end, with the deadline
// off: the call depth bound (max_call_depth) stops it after
// DefaultMaxCallDepth frames. Without it wazero grew the guest's stack on
// the Go heap to ~400 MB before its own limit (~160 MB allocated).
func TestModule_StackOverflowIsCheap(t *testing.T) {
	for _, timeout := range []time.Duration{0, 5 * time.Second} {
		m := loadWith(t, Config{PoolSize: 1, EventTimeout: timeout}, &recordingHost{}, "recursion")
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("recurse")})
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTrap) || !strings.Contains(err.Error(), "stack overflow: calls nested deeper than max_call_depth (10000 frames)") {
			t.Fatalf("err = %v, want a stack overflow at max_call_depth", err)
		}
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("event_timeout %v: the overflowing event allocated %.1f MiB", timeout, float64(alloc)/(1<<20))
		if alloc > 32<<20 {
			t.Fatalf("the overflowing event allocated %d MiB, want a few", alloc>>20)
		}
		if err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("ok")}); err != nil {
			t.Fatalf("event after the overflow: %v", err)
		}
	}
}

// runawayChildEnv makes the test binary run
// TestModule_RunawayWithoutDeadlineKeepsGCRunning's child side.
const runawayChildEnv = "WASMGATE_RUNAWAY_CHILD"

// TestModule_RunawayWithoutDeadlineKeepsGCRunning runs a guest looping for
// ever with deadlines off (event_timeout = 0s), in a child process with one
// P, and needs the scheduler and a garbage collection meanwhile. Nothing
// stops such a guest, but its loop still yields: it holds one instance and
// one core, not the process. The old code did not rewrite modules with
// deadlines off, and the child froze at its first stop-the-world.
func TestModule_RunawayWithoutDeadlineKeepsGCRunning(t *testing.T) {
	if os.Getenv(runawayChildEnv) != "" {
		m := loadWith(t, Config{PoolSize: 1}, &recordingHost{}, "loop")
		go func() { _ = m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("loop")}) }()
		time.Sleep(20 * time.Millisecond) // needs the P back from the guest
		runtime.GC()                      // needs every goroutine at a safe point
		fmt.Println("gc done")
		os.Exit(0) // the guest never returns
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestModule_RunawayWithoutDeadlineKeepsGCRunning$")
	cmd.Env = append(os.Environ(), runawayChildEnv+"=1", "GOMAXPROCS=1")
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil || err != nil || !strings.Contains(string(out), "gc done") {
		t.Fatalf("the child froze or failed (%v, timed out: %v):\n%s", err, ctx.Err() != nil, out)
	}
}

// TestModule_GarbageBufferPointerFailsEvent has wasmgate_buffer return a
// pointer outside memory (one that wraps to 0 in 32-bit arithmetic): every
// event fails without the host writing anywhere, and the module keeps
// loading fresh instances.
func TestModule_GarbageBufferPointerFailsEvent(t *testing.T) {
	host := &recordingHost{}
	r, _ := newTestRuntime(t, host)
	m, err := loadFixture(t, r, "badbuffer", "")
	if err != nil {
		t.Fatalf("a module is loaded before any buffer is asked of it: %v", err)
	}
	for i := 0; i < 3; i++ {
		err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("x")})
		if !errors.Is(err, ErrTrap) || !strings.Contains(err.Error(), "outside the guest's") {
			t.Fatalf("event %d: err = %v, want the buffer refused", i, err)
		}
	}
	if n := len(host.messages()); n != 0 {
		t.Fatalf("%d sends from a guest whose events never ran", n)
	}
}

// TestModule_DeadlineStopsGuestInWASICall stops guests that spend their
// time in WASI fd_write: the watchdog must not release the module's
// resources (its WASI file table) under the running call, a data race that
// -race reports.
func TestModule_DeadlineStopsGuestInWASICall(t *testing.T) {
	host := &recordingHost{}
	m := loadWith(t, Config{PoolSize: 2, EventTimeout: 5 * time.Millisecond}, host, "stdout_flood")
	for i := 0; i < 5; i++ {
		err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("flood")})
		if err == nil {
			continue // the machine wrote 4 MiB within 5 ms
		}
		if !errors.Is(err, ErrTrap) || !strings.Contains(err.Error(), "deadline") {
			t.Fatalf("flood %d: err = %v, want a deadline trap", i, err)
		}
	}
	if err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("ok")}); err != nil {
		t.Fatalf("event after the stopped floods: %v", err)
	}
}
