package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fasthttp/websocket"
	"github.com/tetratelabs/wazero"

	"github.com/wasmgate/wasmgate/server"
)

// The AssemblyScript examples (guest-examples/as-echo, as-chat, built by
// `make guests` with guest-examples/as/wasmgate.ts) against the same
// scenarios as the Go echo and chat: /as-chat speaks exactly the protocol
// of /chat (it is in chatModules, so every TestChat_* runs against it).

// TestASChat_ErrorsMatchGoChat: the same bad requests get the same error
// replies from /chat and /as-chat.
func TestASChat_ErrorsMatchGoChat(t *testing.T) { chatErrorsMatchGo(t, "as-chat") }

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

// FuzzASChat sends arbitrary text messages to /as-chat on a real server
// (its JSON reader and writer are hand-written): after each one the client
// is still connected and answered (a whoami probe gets its reply), every
// reply is valid JSON, and the guest never trapped or aborted.
func FuzzASChat(f *testing.F) {
	for _, s := range []string{`{"type":"whoami"}`, `{"type":"join","room":"r\u2028<&>","presence":true}`, `{"type":"say","text":"\ud800x"}`,
		`{"type":"session_set","session":{"a":[1,{"b":null}]}}`, `{"type":"stats","room":"r","uid":"u"}`, `{"Type":"login","UID":"é"}`,
		`{"type":"leave","room":"r"}`, `[`, `{"type":"x"} `, `"\u00e9"`, `{"type":"to_uid","uid":"u","text":"\\\"\t"}`, `{"a":1e400}`} {
		f.Add(s)
	}
	cfg := server.DefaultConfig()
	cfg.Server.Listen, cfg.Push.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	dir := f.TempDir()
	data, err := readGuest(guestDir, "as-chat")
	if err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "as-chat.wasm"), data, 0o644); err != nil {
		f.Fatal(err)
	}
	cfg.Server.HandlersDir = dir
	cfg.Runtime.EventTimeout.Duration = 5 * time.Second
	cfg.Modules = map[string]server.ModuleConfig{"as-chat": {Config: "rate_limit=0"}}
	logs := &syncBuffer{}
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		f.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	c, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr().String()+"/as-chat", nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = c.Close() })
	f.Fuzz(func(t *testing.T, msg string) {
		if !utf8.ValidString(msg) || len(msg) > 4096 {
			return // a text frame is valid UTF-8; the size limits are tested elsewhere
		}
		for _, m := range []string{msg, `{"type":"whoami","text":"probe"}`} {
			if err := c.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
				t.Fatalf("send %q: %v", m, err)
			}
		}
		for {
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, reply, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("after %q: %v\n%s", msg, err, logs.String())
			}
			var v map[string]any
			if err := json.Unmarshal(reply, &v); err != nil {
				t.Fatalf("after %q: reply %q is not a JSON object: %v", msg, reply, err)
			}
			if v["type"] == "whoami" {
				break
			}
		}
		if out := logs.String(); strings.Contains(out, "abort:") || strings.Contains(out, "level=ERROR") {
			t.Fatalf("after %q the guest failed:\n%s", msg, out)
		}
	})
}

// TestASGuest_AbortLogsAndTraps: an AssemblyScript abort (a failed
// assertion in runtime/testdata/as_abort.ts) goes through the SDK's
// wasmgate_abort: the message is logged with its source position, the event
// fails like a trap, and the client stays connected and is answered by a
// fresh instance.
func TestASGuest_AbortLogsAndTraps(t *testing.T) {
	srv := startServer(t, handlersWith(t, "as_abort"), nil)
	c := srv.dial(t, "/as_abort")
	c.sendText("boom")
	c.sendText("still there?")
	if _, data := c.read(); string(data) != "still there?" {
		t.Fatalf("after the abort: %q, want the echo", data)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(srv.logs.String(), "abort: boom requested at ") {
		if time.Now().After(deadline) {
			t.Fatalf("no log line with the abort message and its position:\n%s", srv.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
