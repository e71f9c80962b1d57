package server_test

import (
	"encoding/binary"
	"net/http"
	"strings"
	"testing"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/server"
)

// TestCompat_V1FirstRelease runs runtime/testdata/v1_first.wasm, a handler
// built against ABI v1 as first released and frozen since, through every
// event and the host functions of that release: a change to the host that
// breaks a module built before it fails here (abi/ABI.md §7).
func TestCompat_V1FirstRelease(t *testing.T) {
	srv := startServer(t, handlersWith(t, "v1_first"), func(c *server.Config) {
		c.Modules = map[string]server.ModuleConfig{"v1_first": {Config: "v1"}}
	})
	if _, resp, err := websocket.DefaultDialer.Dial(srv.url+"/v1_first?deny", nil); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("on_handshake: query deny should be refused with 403, got %v %v", resp, err)
	}
	a, b := srv.dial(t, "/v1_first"), srv.dial(t, "/v1_first")
	expect := func(c *wsClient, typ int, want string) {
		t.Helper()
		if gotTyp, got := c.read(); gotTyp != typ || string(got) != want {
			t.Fatalf("got %d %q, want %d %q", gotTyp, got, typ, want)
		}
	}
	expect(a, websocket.TextMessage, "hello") // on_connect
	expect(b, websocket.TextMessage, "hello")
	a.sendText("eabc")
	expect(a, websocket.TextMessage, "eabc")
	a.send(websocket.BinaryMessage, []byte("e\x00\xff"))
	expect(a, websocket.BinaryMessage, "e\x00\xff")
	a.sendText("ualice")
	expect(a, websocket.TextMessage, "alice")
	a.sendText("groom")
	expect(a, websocket.TextMessage, "groom")
	b.sendText("groom")
	expect(a, websocket.TextMessage, "groom")
	expect(b, websocket.TextMessage, "groom")
	a.sendText(`s{"a":{"b":1}}`)
	expect(a, websocket.TextMessage, `{"a":{"b":1}}`)
	a.sendText("n")
	typ, n := a.read()
	if typ != websocket.BinaryMessage || len(n) != 4 || binary.LittleEndian.Uint32(n) != 2 {
		t.Fatalf("client count: got %d %x, want binary 2", typ, n)
	}
	a.sendText("lfrom v1")
	expect(a, websocket.TextMessage, "lfrom v1")
	a.sendText("t")
	expect(a, websocket.TextMessage, "t")
	a.sendText("x") // a trap fails the event only
	a.sendText("?") // a non-zero result is a warning
	a.sendText("eafter")
	expect(a, websocket.TextMessage, "eafter")
	a.sendText("kso long")
	expect(a, websocket.TextMessage, "so long")
	if code := a.expectClose(); code != websocket.CloseNormalClosure {
		t.Fatalf("close_client: code %d, want 1000", code)
	}
	expect(b, websocket.TextMessage, "bye") // a's on_close, to everyone else
	logs := srv.logs.String()
	for _, want := range []string{"msg=\"from v1\" module=v1_first", "handler failed; instance discarded", "handler returned non-zero"} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}
