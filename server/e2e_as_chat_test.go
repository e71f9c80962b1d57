package server_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/wasmgate/wasmgate/server"
)

// The AssemblyScript examples (guest-examples/as-echo, as-chat, built by
// `make guests` with guest-examples/as/wasmgate.ts) against the same
// scenarios as the Go echo and chat: /as-chat speaks exactly the protocol
// of /chat (it is in chatModules, so every TestChat_* runs against it).

// TestASChat_ErrorsMatchGoChat: the same bad requests get the same error
// replies from /chat and /as-chat.
func TestASChat_ErrorsMatchGoChat(t *testing.T) { errorsMatchGoChat(t, "as-chat") }

// TestASChat_BadConfigRefused: a rate_limit that is not a number refuses
// the module with a log line naming it.
func TestASChat_BadConfigRefused(t *testing.T) {
	for _, bad := range []string{"rate_limit=-1", "rate_limit=x", "color=red"} {
		cfg := server.DefaultConfig()
		cfg.Server.Listen, cfg.Push.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		cfg.Server.HandlersDir = handlersWith(t, "as-chat")
		cfg.Modules = map[string]server.ModuleConfig{"as-chat": {Config: bad}}
		logs := &syncBuffer{}
		s, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)))
		if err == nil {
			_ = s.Shutdown(context.Background())
		}
		want := "rate_limit must be a number"
		if strings.HasPrefix(bad, "color") {
			want = "unknown key"
		}
		if out := logs.String(); !strings.Contains(out, want) {
			t.Fatalf("%s: err %v, no log line saying %q:\n%s", bad, err, want, out)
		}
	}
}

// TestASGuests_ImportOnlyWasmgate: the AssemblyScript builds import nothing
// but host functions (the compiler's env.abort is mapped to the SDK's
// wasmgate_abort, which logs through `log`), so wasmgate loads them.
func TestASGuests_ImportOnlyWasmgate(t *testing.T) {
	ctx := context.Background()
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	for _, name := range []string{"as-echo", "as-chat"} {
		data, err := readGuest(guestDir, name)
		if err != nil {
			t.Fatal(err)
		}
		cm, err := rt.CompileModule(ctx, data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		hasLog := false
		for _, f := range cm.ImportedFunctions() {
			mod, fn, _ := f.Import()
			if mod != "wasmgate" {
				t.Errorf("%s imports %s.%s: build with --use abort=…/wasmgate_abort", name, mod, fn)
			}
			hasLog = hasLog || fn == "log"
		}
		if !hasLog {
			t.Errorf("%s does not import wasmgate.log: its abort cannot report", name)
		}
	}
}
