package runtime

import (
	"context"
	"strings"
	"testing"
)

// TestClosingState_UnavailableWithoutState: a caller of OnClose that gives
// no state (WithClosingState) gets closing_state's ErrnoUnavailable, not a
// made-up empty state; with one, the module is told it is wanted.
func TestClosingState_UnavailableWithoutState(t *testing.T) {
	r, logs := newTestRuntime(t, &recordingHost{})
	m, err := r.LoadFile(context.Background(), "c-presence", "../handlers/c-presence.wasm", "")
	if err != nil {
		t.Fatalf("c-presence not built (run `make guests`): %v", err)
	}
	if !m.WantsClosingState() {
		t.Fatal("c-presence imports closing_state and exports on_close: WantsClosingState should be true")
	}
	if err := m.OnClose(context.Background(), "c1"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "unavailable") {
		t.Errorf("the handler should have logged closing_state's unavailable: %s", logs)
	}
	trap, err := loadFixture(t, r, "trap", "")
	if err != nil {
		t.Fatal(err)
	}
	if trap.WantsClosingState() {
		t.Error("trap.wasm does not import closing_state")
	}
}
