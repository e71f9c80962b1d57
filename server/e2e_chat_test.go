package server_test

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/server"
)

// chatClient is a client of the chat example with its client id.
type chatClient struct {
	*wsClient
	id string
}

func (s *testServer) chat(t *testing.T) *chatClient { return chatServer{s, "/chat"}.chat(t) }

// chatModules are the builds of the chat protocol (guest-examples/chat in
// Go, c-chat in C, rust-chat in Rust, as-chat in AssemblyScript): every chat
// test runs against each.
var chatModules = []string{"chat", "c-chat", "rust-chat", "as-chat"}

// eachChat runs fn as a subtest per chat module.
func eachChat(t *testing.T, fn func(t *testing.T, module string)) {
	for _, m := range chatModules {
		t.Run(m, func(t *testing.T) { fn(t, m) })
	}
}

// chatServer is a server and the route of the chat module under test.
type chatServer struct {
	*testServer
	route string
}

func (s chatServer) chat(t *testing.T) *chatClient {
	t.Helper()
	c := s.dial(t, s.route)
	c.sendJSON(map[string]string{"type": "whoami"})
	return &chatClient{wsClient: c, id: c.expectType("whoami")["client_id"].(string)}
}

func (c *chatClient) login(uid string) {
	c.t.Helper()
	c.sendJSON(map[string]string{"type": "login", "uid": uid})
	c.expectType("login")
}

func (c *chatClient) join(room string) {
	c.t.Helper()
	c.sendJSON(map[string]string{"type": "join", "room": room})
	c.expectType("joined")
}

func (c *chatClient) say(text string) {
	c.t.Helper()
	c.sendJSON(map[string]string{"type": "say", "text": text})
}

// stats asks the chat handler for the presence lists and counters.
func (c *chatClient) stats(room, uid string) map[string]any {
	c.t.Helper()
	c.sendJSON(map[string]string{"type": "stats", "room": room, "uid": uid})
	return c.expectType("stats")
}

func strs(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		out = append(out, fmt.Sprint(x))
	}
	sort.Strings(out)
	return out
}

func sorted(s ...string) []string { sort.Strings(s); return s }

func expectSay(t *testing.T, c *chatClient, room, from, text string) {
	t.Helper()
	m := c.expectType("say")
	if m["room"] != room || m["from"] != from || m["text"] != text {
		t.Fatalf("say = %v, want room %s from %s text %q", m, room, from, text)
	}
}

func TestChat_RoomsDoNotLeak(t *testing.T) {
	eachChat(t, func(t *testing.T, module string) {
		srv := startChat(t, module)
		a, b, c := srv.chat(t), srv.chat(t), srv.chat(t)
		a.login("alice")
		a.join("red")
		b.join("red")
		c.join("blue")

		a.say("hi red")
		expectSay(t, a, "red", a.id, "hi red")
		m := b.expectType("say")
		if m["uid"] != "alice" || m["text"] != "hi red" {
			t.Fatalf("b got %v", m)
		}
		c.say("hi blue")
		expectSay(t, c, "blue", c.id, "hi blue")
		a.expectSilence(100 * time.Millisecond)
		b.expectSilence(100 * time.Millisecond)

		// b joins blue too: it hears both rooms, a still hears only red.
		b.join("blue")
		c.say("again")
		expectSay(t, c, "blue", c.id, "again")
		expectSay(t, b, "blue", c.id, "again")
		a.expectSilence(100 * time.Millisecond)
	})
}

func TestChat_SendToUidReachesEveryClientOfTheUid(t *testing.T) {
	eachChat(t, func(t *testing.T, module string) {
		srv := startChat(t, module)
		phone, pc, other := srv.chat(t), srv.chat(t), srv.chat(t)
		phone.login("4")
		pc.login("4")
		other.login("5")
		other.sendJSON(map[string]string{"type": "to_uid", "uid": "4", "text": "task 329 finished"})
		for _, c := range []*chatClient{phone, pc} {
			if m := c.expectType("to_uid"); m["text"] != "task 329 finished" || m["from"] != other.id {
				t.Fatalf("got %v", m)
			}
		}
		other.expectSilence(100 * time.Millisecond)
		st := other.stats("", "4")
		if got, want := strs(st["uid_clients"]), sorted(phone.id, pc.id); !slices.Equal(got, want) {
			t.Fatalf("getClientIdByUid(4) = %v, want %v", got, want)
		}
	})
}

func TestChat_LeaveAndUngroup(t *testing.T) {
	eachChat(t, func(t *testing.T, module string) {
		srv := startChat(t, module)
		a, b := srv.chat(t), srv.chat(t)
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
		a.expectType("error") // a's session still lists red, but the group is gone
		b.expectSilence(100 * time.Millisecond)
	})
}

func TestChat_SessionRoundTrip(t *testing.T) {
	eachChat(t, func(t *testing.T, module string) {
		srv := startChat(t, module)
		a := srv.chat(t)
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
	})
}

func TestChat_PresenceAfterConnectsAndDisconnects(t *testing.T) {
	eachChat(t, func(t *testing.T, module string) {
		srv := startChat(t, module)
		watcher := srv.chat(t)
		a, b, c := srv.chat(t), srv.chat(t), srv.chat(t)
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
		if st["all_clients"] != 4.0 || st["uid_count"] != 2.0 || st["room_count"] != 3.0 || st["room_uid_count"] != 2.0 {
			t.Fatalf("counts = %v", st)
		}

		// a and c disconnect: nothing of theirs may remain.
		a.ws.Close()
		c.ws.Close()
		eventually(t, "two clients left", func() bool { return watcher.stats("", "")["all_clients"] == 2.0 })
		st = watcher.stats("room", "u1")
		check("all_client_ids", sorted(watcher.id, b.id))
		check("all_uids", []string{"u1"})
		check("room_clients", []string{b.id})
		check("room_uids", []string{"u1"})
		check("uid_clients", []string{b.id})
		check("groups", []string{"room"})
		st = watcher.stats("", "u2")
		check("uid_clients", nil)
		if st["uid_online"] != false {
			t.Fatalf("u2 still online: %v", st)
		}
		b.ws.Close()
		eventually(t, "only the watcher left", func() bool {
			st = watcher.stats("", "")
			return st["all_clients"] == 1.0
		})
		check("groups", nil)
		check("all_uids", nil)
	})
}

func TestChat_BroadcastOnlineKickLogout(t *testing.T) {
	eachChat(t, func(t *testing.T, module string) {
		srv := startChat(t, module)
		a, b, c := srv.chat(t), srv.chat(t), srv.chat(t)

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
	})
}

// TestChat_RateLimit: a client may send 20 messages per one-second window
// (kv_incr on "rate:<client id>" with a 1 s TTL); the rest are dropped with
// an error. Other clients are not affected, and the next window is open.
func TestChat_RateLimit(t *testing.T) {
	eachChat(t, func(t *testing.T, module string) {
		const limit = 20 // the chat's default
		srv := chatServer{startServer(t, handlersWith(t, module), nil), "/" + module}
		other := srv.chat(t)
		// A raw client: its window starts with the burst's first message.
		a := srv.dial(t, "/"+module)
		for range limit + 5 {
			a.sendJSON(map[string]string{"type": "whoami"})
		}
		answered, limited := 0, 0
		for range limit + 5 {
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
		if answered != limit || limited != 5 {
			t.Fatalf("%d answered, %d rate limited; want %d and 5", answered, limited, limit)
		}
		a.expectSilence(50 * time.Millisecond)

		other.sendJSON(map[string]string{"type": "whoami"})
		other.expectType("whoami")

		time.Sleep(1100 * time.Millisecond) // the window ends
		a.sendJSON(map[string]string{"type": "whoami"})
		a.expectType("whoami")
	})
}

// TestChat_RateLimitFromConfig: config = "rate_limit=N" sets the limit; 0
// turns it off.
func TestChat_RateLimitFromConfig(t *testing.T) {
	eachChat(t, func(t *testing.T, module string) {
		for _, c := range []struct {
			config  string
			limited int
		}{{"rate_limit=2", 8}, {"rate_limit=0", 0}} {
			srv := startServer(t, handlersWith(t, module), func(cfg *server.Config) {
				cfg.Modules = map[string]server.ModuleConfig{module: {Config: c.config}}
			})
			a := srv.dial(t, "/"+module)
			for range 10 {
				a.sendJSON(map[string]string{"type": "whoami"})
			}
			limited := 0
			for range 10 {
				if m := a.readJSON(); m["type"] == "error" {
					limited++
				}
			}
			if limited != c.limited {
				t.Errorf("config %q: %d of 10 rate limited, want %d", c.config, limited, c.limited)
			}
		}
	})
}

// startChat serves a chat module with its rate limit off: these tests
// poll presence by sending messages, and TestChat_RateLimit* cover the limit.
func startChat(t *testing.T, module string) chatServer {
	t.Helper()
	srv := startServer(t, handlersWith(t, module), func(c *server.Config) {
		c.Modules = map[string]server.ModuleConfig{module: {Config: "rate_limit=0"}}
	})
	return chatServer{srv, "/" + module}
}

// TestChat_PresenceEvents: a join with "presence":true tells the room who
// is in it, and so do that client's leave and disconnect; a client that
// joined without it triggers nothing (the protocol's old messages are
// unchanged), and {"type":"presence"} answers the sender alone.
func TestChat_PresenceEvents(t *testing.T) {
	eachChat(t, func(t *testing.T, module string) {
		srv := startChat(t, module)
		joinPresence := func(c *chatClient, room string) {
			t.Helper()
			c.sendJSON(map[string]any{"type": "join", "room": room, "presence": true})
			c.expectType("joined")
		}
		expectPresence := func(c *chatClient, room, event, id string, clients int, uids ...string) {
			t.Helper()
			m := c.expectType("presence")
			if m["room"] != room || m["clients"] != float64(clients) || !slices.Equal(strs(m["uids"]), sorted(uids...)) {
				t.Fatalf("presence = %v, want room %s, %d clients, uids %v", m, room, clients, uids)
			}
			if event != "" && (m["event"] != event || m["client_id"] != id) {
				t.Fatalf("presence = %v, want event %s of %s", m, event, id)
			}
		}
		old, a, b, other := srv.chat(t), srv.chat(t), srv.chat(t), srv.chat(t)
		old.login("old")
		a.login("ann")
		b.login("bob")
		other.login("eve")
		old.join("room")
		old.expectSilence(50 * time.Millisecond) // no presence for an old-style join
		joinPresence(a, "room")
		expectPresence(a, "room", "join", a.id, 2, "old", "ann")
		expectPresence(old, "room", "join", a.id, 2, "old", "ann")
		joinPresence(b, "room")
		for _, c := range []*chatClient{old, a, b} {
			expectPresence(c, "room", "join", b.id, 3, "old", "ann", "bob")
		}
		joinPresence(other, "elsewhere")
		expectPresence(other, "elsewhere", "join", other.id, 1, "eve")

		b.sendJSON(map[string]any{"type": "leave", "room": "room"})
		b.expectType("left")
		for _, c := range []*chatClient{old, a} {
			expectPresence(c, "room", "leave", b.id, 2, "old", "ann")
		}
		b.expectSilence(50 * time.Millisecond)

		other.sendJSON(map[string]any{"type": "presence", "room": "room"})
		expectPresence(other, "room", "", "", 2, "old", "ann")

		a.ws.Close()
		expectPresence(old, "room", "close", a.id, 1, "old")
		other.expectSilence(50 * time.Millisecond)

		old.sendJSON(map[string]any{"type": "join", "room": "x", "presence": "yes"})
		if e := old.expectType("error")["error"].(string); !strings.HasPrefix(e, "bad json: ") {
			t.Fatalf("a non-boolean presence: %q, want a bad json error", e)
		}
	})
}
