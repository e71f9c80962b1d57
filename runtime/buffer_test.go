package runtime

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/abi"
)

// TestModule_BufferZeroIsRefused: wasmgate_buffer returning 0 means the
// guest cannot allocate (ABI.md §2). Every event fails with an error and a
// log line that name the module and the problem, and the host never writes
// the input at address 0 (where the fixture keeps data its on_message would
// send: before the fix the host wrote there and the event ran).
func TestModule_BufferZeroIsRefused(t *testing.T) {
	host := &recordingHost{}
	r, logs := newTestRuntime(t, host)
	m, err := loadFixture(t, r, "buffer_zero", "")
	if err != nil {
		t.Fatalf("a module is loaded before any buffer is asked of it: %v", err)
	}
	for i := 0; i < 2; i++ {
		err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("x")})
		if !errors.Is(err, ErrTrap) || !strings.Contains(err.Error(), "wasmgate_buffer(4096) returned 0: the guest cannot allocate") {
			t.Fatalf("event %d: err = %v, want the zero buffer refused", i, err)
		}
	}
	if n := len(host.messages()); n != 0 {
		t.Fatalf("%d sends from a guest whose events must not have run", n)
	}
	out := logs.String()
	if !strings.Contains(out, "module=buffer_zero") || !strings.Contains(out, "returned 0: the guest cannot allocate") {
		t.Fatalf("no log line naming the module and the refusal:\n%s", out)
	}
}
