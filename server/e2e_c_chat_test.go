package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/server"
)

// The C examples (guest-examples/c-echo, c-chat, built by `make guests`
// with guest-examples/c/wasmgate.h) against the same scenarios as the Go
// echo and chat: /c-chat speaks exactly the protocol of /chat.

// TestCChat_ErrorsMatchGoChat sends the same bad requests to /chat and
// /c-chat: the error replies are the same (after "bad json: ", where each
// names the problem in its own words).
func TestCChat_ErrorsMatchGoChat(t *testing.T) { errorsMatchGoChat(t, "c-chat") }

// errorsMatchGoChat sends the same bad requests to /chat and /module (a
// build of the chat protocol in another language) and compares the replies.
func errorsMatchGoChat(t *testing.T, module string) {
	dir := handlersWith(t, module)
	data, err := readGuest(guestDir, "chat")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "chat.wasm"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, dir, func(c *server.Config) {
		c.Modules = map[string]server.ModuleConfig{"chat": {Config: "rate_limit=0"}, module: {Config: "rate_limit=0"}}
	})
	requests := []string{
		`{"type":"nope<&>"}`, `{}`, `null`, `{"type":"login"}`, `{"type":"join","room":""}`, `{"type":"leave"}`,
		`{"type":"say","text":"x"}`, `{"type":"to_uid","text":"x"}`, `{"type":"ungroup"}`, `{"type":"logout"}`,
		`{"type":"online"}`, `{"type":"kick"}`, `{"type":"online","client_id":"00000000000000000000"}`,
		`{"type":"session_set"}`, `{"type":"session_set","session":[1]}`, `{"type":"session_update","session":null}`,
		`{"type":"session_set","session":{"a":"x"}}`, `{"TYPE":"whoami","Uid":null}`, `{"type":"login","uid":"` + strings.Repeat("u", 300) + `"}`,
		`{"type":"kick","client_id":"00000000000000000000"}`, `{"type":"to_uid","uid":"nobody","text":"\ud800 \u2028"}`,
		`{"type":"stats","room":"r","uid":"u"}`,
		`{"type":"presence"}`, `{"type":"presence","room":"nobody"}`, `{"type":"join","presence":true}`,
		`{"type":"leave","room":"never-joined","presence":null}`,
	}
	bad := []string{`{`, `[1]`, `{"type":5}`, `"x"`, `{"type":"whoami"} x`, `{"type":"whoami",}`,
		`{"type":"join","room":"r","presence":"yes"}`, `{"type":"join","room":"r","presence":1}`}
	goC, cC := srv.dial(t, "/chat"), srv.dial(t, "/"+module)
	ids := map[*wsClient]string{}
	for _, c := range []*wsClient{goC, cC} {
		c.sendJSON(map[string]string{"type": "whoami"})
		ids[c] = c.expectType("whoami")["client_id"].(string)
	}
	for _, req := range requests {
		var got [2]map[string]any
		for i, c := range []*wsClient{goC, cC} {
			c.sendText(req)
			if strings.Contains(req, `"to_uid","uid"`) { // succeeds silently
				c.expectSilence(50 * time.Millisecond)
				continue
			}
			got[i] = c.readJSON()
			if got[i]["client_id"] == ids[c] {
				got[i]["client_id"] = "self"
			}
			delete(got[i], "all_client_ids") // the other route's client is in both
		}
		if got[0] != nil && !jsonEqual(got[0], got[1]) {
			t.Errorf("%s:\n  /chat %v\n  /%s %v", req, got[0], module, got[1])
		}
	}
	for _, req := range bad {
		for _, c := range []*wsClient{goC, cC} {
			c.sendText(req)
			if m := c.expectType("error"); !strings.HasPrefix(m["error"].(string), "bad json: ") {
				t.Errorf("%s: %v, want a bad json error", req, m)
			}
		}
	}
}

// jsonEqual compares two decoded replies (json.Marshal sorts map keys).
func jsonEqual(a, b map[string]any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

// TestCChat_BadConfigRefused: a rate_limit that is not a number refuses
// the module with a log line naming it (the limits themselves are covered
// for both builds by TestChat_RateLimit*).
func TestCChat_BadConfigRefused(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Server.Listen, cfg.Push.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Server.HandlersDir = handlersWith(t, "c-chat")
	cfg.Modules = map[string]server.ModuleConfig{"c-chat": {Config: "rate_limit=-1"}}
	logs := &syncBuffer{}
	s, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err == nil {
		_ = s.Shutdown(context.Background())
	}
	if out := logs.String(); !strings.Contains(out, "rate_limit must be a number") {
		t.Fatalf("rate_limit=-1: err %v, no log line naming the bad config:\n%s", err, out)
	}
}
