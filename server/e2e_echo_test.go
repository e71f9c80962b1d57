package server_test

import (
	"bytes"
	"net/http"
	"regexp"
	"testing"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/server"
)

func TestServer_EchoRoundTrip(t *testing.T) {
	srv := startServer(t, handlersWith(t, "echo", "rust-echo", "c-echo", "as-echo"), nil)
	for _, path := range []string{"/echo", "/rust-echo", "/c-echo", "/as-echo"} {
		t.Run(path, func(t *testing.T) {
			c := srv.dial(t, path)
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
		})
	}
}

func TestServer_NotifyInitAndRoutes(t *testing.T) {
	srv := startServer(t, handlersWith(t, "notify"), func(c *server.Config) {
		c.Routes = map[string]string{"/": "notify"}
	})
	id := regexp.MustCompile(`^[0-9a-f]{20}$`)
	seen := map[string]bool{}
	for _, path := range []string{"/notify", "/"} {
		m := srv.dial(t, path).expectType("init")
		cid, _ := m["client_id"].(string)
		if !id.MatchString(cid) || seen[cid] {
			t.Fatalf("client_id %q: want 20 hex digits, unique", cid)
		}
		seen[cid] = true
	}
}

func TestServer_HandshakeRefusedByHandler(t *testing.T) {
	srv := startServer(t, handlersWith(t, "notify"), func(c *server.Config) {
		c.Modules = map[string]server.ModuleConfig{"notify": {Config: "s3cret"}}
	})
	_, resp, err := websocket.DefaultDialer.Dial(srv.url+"/notify?token=wrong", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("wrong token: err=%v resp=%v, want HTTP 403", err, resp)
	}
	srv.dial(t, "/notify?token=s3cret").expectType("init")
}

func TestServer_UnknownPathAndPlainHTTP(t *testing.T) {
	srv := startServer(t, handlersWith(t, "echo"), nil)
	_, resp, err := websocket.DefaultDialer.Dial(srv.url+"/nope", nil)
	if err == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown path: err=%v status=%v, want 404", err, resp)
	}
	r, err := http.Get("http://" + srv.Addr().String() + "/echo")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain GET: %d, want 426", r.StatusCode)
	}
}
