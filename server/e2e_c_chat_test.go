package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/server"
)

// The C examples (guest-examples/c-echo, c-chat, built by `make guests`
// with guest-examples/c/wasmgate.h) against the same scenarios as the Go
// echo and chat: /c-chat speaks exactly the protocol of /chat.

// startCChat serves c-chat with its rate limit off, like startChat.
func startCChat(t *testing.T) *testServer {
	t.Helper()
	return startServer(t, handlersWith(t, "c-chat"), func(c *server.Config) {
		c.Modules = map[string]server.ModuleConfig{"c-chat": {Config: "rate_limit=0"}}
	})
}

func (s *testServer) cchat(t *testing.T) *chatClient {
	t.Helper()
	c := s.dial(t, "/c-chat")
	c.sendJSON(map[string]string{"type": "whoami"})
	return &chatClient{wsClient: c, id: c.expectType("whoami")["client_id"].(string)}
}

func TestCEcho_RoundTrip(t *testing.T) {
	srv := startServer(t, handlersWith(t, "c-echo"), nil)
	c := srv.dial(t, "/c-echo")
	c.sendText("hello, 世界")
	if typ, data := c.read(); typ != websocket.TextMessage || string(data) != "hello, 世界" {
		t.Fatalf("text echo = %d %q", typ, data)
	}
	bin := []byte{0, 0xff, 1, 0xfe}
	c.send(websocket.BinaryMessage, bin)
	if typ, data := c.read(); typ != websocket.BinaryMessage || !bytes.Equal(data, bin) {
		t.Fatalf("binary echo = %d %x", typ, data)
	}
	big := bytes.Repeat([]byte("0123456789"), 6000) // 60 KB: grows the guest buffer
	c.send(websocket.TextMessage, big)
	if _, data := c.read(); !bytes.Equal(data, big) {
		t.Fatalf("big echo: %d bytes back, want %d", len(data), len(big))
	}
}

func TestCChat_RoomsDoNotLeak(t *testing.T) {
	srv := startCChat(t)
	a, b, c := srv.cchat(t), srv.cchat(t), srv.cchat(t)
	a.login("alice")
	a.join("red")
	b.join("red")
	c.join("blue")
	a.say("hi red")
	expectSay(t, a, "red", a.id, "hi red")
	if m := b.expectType("say"); m["uid"] != "alice" || m["text"] != "hi red" {
		t.Fatalf("b got %v", m)
	}
	c.say("hi blue")
	expectSay(t, c, "blue", c.id, "hi blue")
	a.expectSilence(100 * time.Millisecond)
	b.expectSilence(100 * time.Millisecond)
	b.join("blue")
	c.say("again")
	expectSay(t, c, "blue", c.id, "again")
	expectSay(t, b, "blue", c.id, "again")
	a.expectSilence(100 * time.Millisecond)
}

func TestCChat_SendToUidReachesEveryClientOfTheUid(t *testing.T) {
	srv := startCChat(t)
	phone, pc, other := srv.cchat(t), srv.cchat(t), srv.cchat(t)
	phone.login("4")
	pc.login("4")
	other.login("5")
	other.sendJSON(map[string]string{"type": "to_uid", "uid": "4", "text": "task <329> & \"finished\""})
	for _, c := range []*chatClient{phone, pc} {
		if m := c.expectType("to_uid"); m["text"] != "task <329> & \"finished\"" || m["from"] != other.id {
			t.Fatalf("got %v", m)
		}
	}
	other.expectSilence(100 * time.Millisecond)
	st := other.stats("", "4")
	if got, want := strs(st["uid_clients"]), sorted(phone.id, pc.id); !slices.Equal(got, want) {
		t.Fatalf("getClientIdByUid(4) = %v, want %v", got, want)
	}
}

func TestCChat_LeaveAndUngroup(t *testing.T) {
	srv := startCChat(t)
	a, b := srv.cchat(t), srv.cchat(t)
	a.join("red")
	b.join("red")
	b.sendJSON(map[string]string{"type": "leave", "room": "red"})
	b.expectType("left")
	a.say("anyone?")
	expectSay(t, a, "red", a.id, "anyone?")
	b.expectSilence(100 * time.Millisecond)
	b.join("red")
	b.sendJSON(map[string]string{"type": "ungroup", "room": "red"})
	st := b.stats("red", "")
	if n := st["room_count"].(float64); n != 0 || len(strs(st["groups"])) != 0 {
		t.Fatalf("after ungroup: room_count %v groups %v", n, st["groups"])
	}
	a.say("still there?")
	if m := a.expectType("error"); m["error"] != "not in any room" {
		t.Fatalf("say after ungroup: %v", m)
	}
	b.expectSilence(100 * time.Millisecond)
}

func TestCChat_SessionRoundTrip(t *testing.T) {
	srv := startCChat(t)
	a := srv.cchat(t)
	a.sendJSON(map[string]any{"type": "session_set", "session": map[string]any{"name": "Ann", "prefs": map[string]any{"lang": "en", "tz": "UTC"}}})
	a.expectType("session")
	a.sendJSON(map[string]any{"type": "session_update", "session": map[string]any{"age": 7, "prefs": map[string]any{"lang": "zh"}}})
	got := a.expectType("session")["session"].(map[string]any)
	prefs := got["prefs"].(map[string]any)
	if got["name"] != "Ann" || got["age"] != float64(7) || prefs["lang"] != "zh" || prefs["tz"] != "UTC" {
		t.Fatalf("merged session = %v", got)
	}
	a.sendJSON(map[string]string{"type": "whoami"})
	if s := a.expectType("whoami")["session"].(map[string]any); s["name"] != "Ann" {
		t.Fatalf("getSession = %v", s)
	}
	a.sendJSON(map[string]any{"type": "session_set", "session": map[string]any{"only": true}})
	if s := a.expectType("session")["session"].(map[string]any); len(s) != 1 || s["only"] != true {
		t.Fatalf("setSession must replace: %v", s)
	}
}

func TestCChat_PresenceAfterConnectsAndDisconnects(t *testing.T) {
	srv := startCChat(t)
	watcher := srv.cchat(t)
	a, b, c := srv.cchat(t), srv.cchat(t), srv.cchat(t)
	a.login("u1")
	b.login("u1")
	c.login("u2")
	a.join("room")
	b.join("room")
	c.join("room")
	st := watcher.stats("room", "u1")
	check := func(key string, want []string) {
		t.Helper()
		if got := strs(st[key]); !slices.Equal(got, want) {
			t.Fatalf("%s = %v, want %v", key, got, want)
		}
	}
	check("all_client_ids", sorted(watcher.id, a.id, b.id, c.id))
	check("all_uids", sorted("u1", "u2"))
	check("room_clients", sorted(a.id, b.id, c.id))
	check("room_uids", sorted("u1", "u2"))
	check("uid_clients", sorted(a.id, b.id))
	if st["all_clients"] != 4.0 || st["uid_count"] != 2.0 || st["room_count"] != 3.0 || st["room_uid_count"] != 2.0 || st["uid_online"] != true {
		t.Fatalf("counts = %v", st)
	}
	a.ws.Close()
	c.ws.Close()
	eventually(t, "two clients left", func() bool { return watcher.stats("", "")["all_clients"] == 2.0 })
	st = watcher.stats("room", "u1")
	check("all_client_ids", sorted(watcher.id, b.id))
	check("room_clients", []string{b.id})
	check("uid_clients", []string{b.id})
	check("groups", []string{"room"})
	st = watcher.stats("", "u2")
	check("uid_clients", nil)
	if st["uid_online"] != false {
		t.Fatalf("u2 still online: %v", st)
	}
}

func TestCChat_BroadcastOnlineKickLogout(t *testing.T) {
	srv := startCChat(t)
	a, b, c := srv.cchat(t), srv.cchat(t), srv.cchat(t)
	a.sendJSON(map[string]string{"type": "broadcast", "text": "all but me"})
	for _, x := range []*chatClient{b, c} {
		if m := x.expectType("broadcast"); m["from"] != a.id || m["text"] != "all but me" {
			t.Fatalf("broadcast = %v", m)
		}
	}
	a.expectSilence(100 * time.Millisecond)
	a.sendJSON(map[string]string{"type": "online", "client_id": c.id})
	if m := a.expectType("online"); m["online"] != true || m["client_id"] != c.id {
		t.Fatalf("online(c) = %v", m)
	}
	a.sendJSON(map[string]string{"type": "kick", "client_id": c.id, "text": "bye"})
	if m := c.expectType("kicked"); m["error"] != "bye" {
		t.Fatalf("kicked = %v", m)
	}
	if code := c.expectClose(); code != 1000 {
		t.Fatalf("kick close code %d, want 1000", code)
	}
	eventually(t, "c offline", func() bool {
		a.sendJSON(map[string]string{"type": "online", "client_id": c.id})
		return a.expectType("online")["online"] == false
	})
	b.login("bob")
	b.sendJSON(map[string]string{"type": "logout"})
	if m := b.expectType("logout"); m["uid"] != "bob" || m["ok"] != true {
		t.Fatalf("logout = %v", m)
	}
	if st := a.stats("", "bob"); st["uid_online"] != false {
		t.Fatalf("bob still online after logout: %v", st)
	}
}

// TestCChat_ErrorsMatchGoChat sends the same bad requests to /chat and
// /c-chat: the error replies are the same (after "bad json: ", where each
// names the problem in its own words).
func TestCChat_ErrorsMatchGoChat(t *testing.T) {
	dir := handlersWith(t, "c-chat")
	data, err := readGuest(guestDir, "chat")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "chat.wasm"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, dir, func(c *server.Config) {
		c.Modules = map[string]server.ModuleConfig{"chat": {Config: "rate_limit=0"}, "c-chat": {Config: "rate_limit=0"}}
	})
	requests := []string{
		`{"type":"nope<&>"}`, `{}`, `null`, `{"type":"login"}`, `{"type":"join","room":""}`, `{"type":"leave"}`,
		`{"type":"say","text":"x"}`, `{"type":"to_uid","text":"x"}`, `{"type":"ungroup"}`, `{"type":"logout"}`,
		`{"type":"online"}`, `{"type":"kick"}`, `{"type":"online","client_id":"00000000000000000000"}`,
		`{"type":"session_set"}`, `{"type":"session_set","session":[1]}`, `{"type":"session_update","session":null}`,
		`{"type":"session_set","session":{"a":"x"}}`, `{"TYPE":"whoami","Uid":null}`, `{"type":"login","uid":"` + strings.Repeat("u", 300) + `"}`,
		`{"type":"kick","client_id":"00000000000000000000"}`, `{"type":"to_uid","uid":"nobody","text":"\ud800 \u2028"}`,
		`{"type":"stats","room":"r","uid":"u"}`,
	}
	bad := []string{`{`, `[1]`, `{"type":5}`, `"x"`, `{"type":"whoami"} x`, `{"type":"whoami",}`}
	goC, cC := srv.dial(t, "/chat"), srv.dial(t, "/c-chat")
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
			t.Errorf("%s:\n  /chat   %v\n  /c-chat %v", req, got[0], got[1])
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

// TestCChat_RateLimit: the default 20 messages per second, then "rate
// limited"; config rate_limit=2 limits to 2; a bad config refuses the module.
func TestCChat_RateLimit(t *testing.T) {
	srv := startServer(t, handlersWith(t, "c-chat"), nil)
	a := srv.dial(t, "/c-chat")
	for range 25 {
		a.sendJSON(map[string]string{"type": "whoami"})
	}
	answered, limited := 0, 0
	for range 25 {
		m := a.readJSON()
		switch {
		case m["type"] == "whoami" && limited == 0:
			answered++
		case m["type"] == "error" && m["error"] == "rate limited":
			limited++
		default:
			t.Fatalf("after %d answers and %d refusals: %v", answered, limited, m)
		}
	}
	if answered != 20 || limited != 5 {
		t.Fatalf("%d answered, %d rate limited; want 20 and 5", answered, limited)
	}

	srv2 := startServer(t, handlersWith(t, "c-chat"), func(c *server.Config) {
		c.Modules = map[string]server.ModuleConfig{"c-chat": {Config: "rate_limit=2"}}
	})
	b := srv2.dial(t, "/c-chat")
	for range 10 {
		b.sendJSON(map[string]string{"type": "whoami"})
	}
	n := 0
	for range 10 {
		if b.readJSON()["type"] == "error" {
			n++
		}
	}
	if n != 8 {
		t.Fatalf("rate_limit=2: %d of 10 limited, want 8", n)
	}

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
