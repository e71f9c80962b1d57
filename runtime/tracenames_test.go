package runtime

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/abi"
)

// TestTrap_TraceNamesExportedFunctions: trap.wasm has no name section, so
// wazero names its on_message ".$3"; the logged trace says which export it is.
func TestTrap_TraceNamesExportedFunctions(t *testing.T) {
	r, logs := newTestRuntime(t, &recordingHost{})
	m, err := loadFixture(t, r, "trap", "")
	if err != nil {
		t.Fatal(err)
	}
	err = m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("trap")})
	if !errors.Is(err, ErrTrap) {
		t.Fatalf("err = %v, want ErrTrap", err)
	}
	if !strings.Contains(err.Error(), "\t$3 on_message(i32,i32,i32) i32") || strings.Contains(err.Error(), "\t.") {
		t.Errorf("trace should name on_message by its export: %q", err)
	}
	if !strings.Contains(logs.String(), `\t$3 on_message(i32,i32,i32) i32`) {
		t.Errorf("logged trace should name on_message: %s", logs)
	}
}

// TestTraceNames_Rewrite: the name section's names stay (without wazero's
// empty module name), a nameless export gets its export name, a nameless
// internal function keeps its index, and an error without a trace is left
// alone.
func TestTraceNames_Rewrite(t *testing.T) {
	n := traceNames{2: "on_message"}
	orig := errors.New("wasm error: unreachable\nwasm stack trace:\n\t.deep_helper(i32) i32\n\t.$7(i32) i32\n\t.$2(i32,i32,i32) i32")
	got := n.rewrite(orig)
	want := "wasm error: unreachable\nwasm stack trace:\n\tdeep_helper(i32) i32\n\t$7(i32) i32\n\t$2 on_message(i32,i32,i32) i32"
	if got.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if !errors.Is(got, orig) {
		t.Error("the rewritten error must unwrap to the original")
	}
	plain := errors.New("no trace\n\t.x")
	if n.rewrite(plain) != plain {
		t.Error("an error without a trace must be returned as is")
	}
}
