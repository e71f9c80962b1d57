package server_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/server"
)

// smallClientLimits makes the per-client bounds small enough to reach in a
// test.
func smallClientLimits(c *server.Config) {
	c.Server.MaxGroupsPerClient = 3
	c.Server.MaxNameBytes = 16
	c.Server.MaxSessionBytes = 1024
	c.Modules = map[string]server.ModuleConfig{"chat": {Config: "rate_limit=0"}}
}

// expectChatError reads the chat handler's error reply and checks it names
// the errno.
func expectChatError(t *testing.T, c *chatClient, want string) {
	t.Helper()
	m := c.expectType("error")
	if msg, _ := m["error"].(string); !strings.Contains(msg, want) {
		t.Fatalf("error %q, want it to say %q", msg, want)
	}
}

// TestLimits_HandlerGetsErrnoForPerClientBounds: a handler (the chat
// example) that binds a long uid, joins one group too many, grows a session
// past max_session_bytes or uses a long session key gets errno too large /
// limit, and the client's state is left as it was. The old code accepted a
// 65,000-byte uid and any number of groups.
func TestLimits_HandlerGetsErrnoForPerClientBounds(t *testing.T) {
	srv := startServer(t, handlersWith(t, "chat"), smallClientLimits)
	c := srv.chat(t)

	c.sendJSON(map[string]string{"type": "login", "uid": strings.Repeat("u", 17)})
	expectChatError(t, c, "too large")
	c.login(strings.Repeat("u", 16))

	for i := range 3 {
		c.join(fmt.Sprintf("room%d", i))
	}
	c.sendJSON(map[string]string{"type": "join", "room": "room3"})
	expectChatError(t, c, "limit reached")
	c.join("room1") // already a member: not a new group
	c.sendJSON(map[string]string{"type": "join", "room": strings.Repeat("r", 17)})
	expectChatError(t, c, "too large")

	big := fmt.Sprintf(`{"blob":%q}`, strings.Repeat("x", 2000))
	c.sendJSON(map[string]any{"type": "session_update", "session": rawJSON(big)})
	expectChatError(t, c, "limit reached")
	c.sendJSON(map[string]any{"type": "session_update", "session": rawJSON(`{"a":{"` + strings.Repeat("k", 17) + `":1}}`)})
	expectChatError(t, c, "too large")

	c.sendJSON(map[string]string{"type": "whoami"})
	m := c.expectType("whoami")
	sess, _ := m["session"].(map[string]any)
	rooms, _ := sess["rooms"].(map[string]any)
	if m["uid"] != strings.Repeat("u", 16) || len(sess) != 1 || len(rooms) != 3 {
		t.Fatalf("state after refused writes: %v", m)
	}

	// The defaults refuse what the adversarial run got through: a
	// 65,000-byte uid and room name.
	def := startChat(t, "chat").chat(t)
	def.sendJSON(map[string]string{"type": "login", "uid": strings.Repeat("u", 65000)})
	expectChatError(t, def, "too large")
	def.sendJSON(map[string]string{"type": "join", "room": strings.Repeat("r", 65000)})
	expectChatError(t, def, "too large")
}

// TestLimits_BackendGetsClearErrors: the same bounds reach a backend as
// too_large / limit answers naming the limit, on the text port and the
// HTTP API.
func TestLimits_BackendGetsClearErrors(t *testing.T) {
	srv := startServer(t, handlersWith(t, "chat"), smallClientLimits)
	id := srv.chat(t).id
	b := srv.backend(t)
	long := strings.Repeat("u", 17)
	for _, tc := range []struct{ line, code, says string }{
		{`{"cmd":"bindUid","client_id":"` + id + `","uid":"` + long + `"}`, "too_large", "max_name_bytes"},
		{`{"cmd":"joinGroup","client_id":"` + id + `","group":"` + long + `"}`, "too_large", "max_name_bytes"},
		{`{"cmd":"setSession","client_id":"` + id + `","session":{"` + long + `":1}}`, "too_large", "max_name_bytes"},
		{`{"cmd":"setSession","client_id":"` + id + `","session":{"a":"` + strings.Repeat("x", 1100) + `"}}`, "limit", "max_session_bytes"},
	} {
		m := b.call(tc.line)
		e, _ := m["error"].(map[string]any)
		if m["ok"] != false || e["code"] != tc.code || !strings.Contains(fmt.Sprint(e["message"]), tc.says) {
			t.Errorf("%.80s… → %v, want %s naming %s", tc.line, m, tc.code, tc.says)
		}
	}
	for i := range 3 {
		b.expectOK(fmt.Sprintf(`{"cmd":"joinGroup","client_id":%q,"group":"g%d"}`, id, i))
	}
	b.expectError(fmt.Sprintf(`{"cmd":"joinGroup","client_id":%q,"group":"g3"}`, id), "limit")
	b.expectOK(fmt.Sprintf(`{"cmd":"updateSession","client_id":%q,"session":{"a":%q}}`, id, strings.Repeat("x", 900)))
	b.expectError(fmt.Sprintf(`{"cmd":"updateSession","client_id":%q,"session":{"b":%q}}`, id, strings.Repeat("x", 200)), "limit")
	if got := b.expectOK(fmt.Sprintf(`{"cmd":"getSession","client_id":%q}`, id)); len(fmt.Sprint(got)) > 1024 {
		t.Errorf("session after a refused update: %v", got)
	}

	status, body := httpPost(t, "http://"+srv.AdminAddr().String()+"/api/joinGroup", "",
		fmt.Sprintf(`{"client_id":%q,"group":"g4"}`, id))
	if !strings.Contains(body, `"limit"`) || !strings.Contains(body, "max_groups_per_client") {
		t.Errorf("HTTP joinGroup past the limit: %d %s", status, body)
	}
}

// rawJSON embeds a JSON text as is in a sendJSON argument.
type rawJSON string

func (r rawJSON) MarshalJSON() ([]byte, error) { return []byte(r), nil }
