package runtime

import (
	"context"
	"errors"
	"os"
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

// TestModule_LoopFreeRecursionPastDeadline shows a known gap: the deadline
// checks that Load adds to every module (runtime/internal/stopcheck) sit
// only at loop headers, so a guest that recurses a lot without looping
// (2^31 calls, 31 frames deep) runs until it is done, whatever the event
// deadline (about 10 s here, where the deadline is 50 ms). Closing it means
// a check at every function entry too, which the rewriter does not add
// (RATIONALE.md has the trade-off). It runs only with WASMGATE_KNOWN_GAPS=1,
// and fails until the gap is closed.
func TestModule_LoopFreeRecursionPastDeadline(t *testing.T) {
	if os.Getenv("WASMGATE_KNOWN_GAPS") == "" {
		t.Skip("known gap (the deadline checks sit only at loop headers); set WASMGATE_KNOWN_GAPS=1 to run")
	}
	m := loadWith(t, Config{PoolSize: 1, EventTimeout: 50 * time.Millisecond}, &recordingHost{}, "recursion")
	start := time.Now()
	err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("tree")})
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a 50 ms deadline stopped loop-free recursion only after %v (err %v)", d, err)
	}
	if !errors.Is(err, ErrTrap) {
		t.Fatalf("err = %v, want a deadline trap", err)
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
