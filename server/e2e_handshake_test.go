package server_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/server"
)

// validKey is a well-formed Sec-WebSocket-Key (the RFC 6455 example).
const validKey = "dGhlIHNhbXBsZSBub25jZQ=="

// rawHandshake sends an upgrade request for path with the given extra
// header lines (each "Name: value") and returns the response and the
// connection, positioned after the response head.
func rawHandshake(t *testing.T, addr, path string, headers ...string) (*http.Response, net.Conn, *bufio.Reader) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the handshake answer: %v", err)
	}
	return resp, nc, br
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	if r.StatusCode == http.StatusSwitchingProtocols {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
	return string(b)
}

// handshakeCounter is a native handler counting handshake events; it
// accepts every one and echoes nothing.
type handshakeCounter struct{ n atomic.Int64 }

func (h *handshakeCounter) OnHandshake(context.Context, *abi.Handshake) (int, error) {
	h.n.Add(1)
	return 0, nil
}
func (h *handshakeCounter) OnConnect(context.Context, string) error              { return nil }
func (h *handshakeCounter) OnMessage(context.Context, string, abi.Message) error { return nil }
func (h *handshakeCounter) OnClose(context.Context, string) error                { return nil }

func TestHandshake_InvalidUpgradesRefusedBeforeTheHandler(t *testing.T) {
	counter := &handshakeCounter{}
	srv := startServer(t, handlersWith(t, "echo"), nil, server.WithHandler("/count", counter))
	addr := srv.Addr().String()
	b64 := base64.StdEncoding.EncodeToString
	tests := []struct {
		name    string
		headers []string
		status  int
		want    string
	}{
		{"key too short", []string{"Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: abc"}, 400, "invalid Sec-WebSocket-Key"},
		{"key not base64", []string{"Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + strings.Repeat("!", 24)}, 400, "invalid Sec-WebSocket-Key"},
		{"key of 15 bytes", []string{"Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + b64(make([]byte, 15))}, 400, "16-byte nonce"},
		{"key of 17 bytes", []string{"Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + b64(make([]byte, 17))}, 400, "16-byte nonce"},
		{"key missing", []string{"Sec-WebSocket-Version: 13"}, 400, "missing Sec-WebSocket-Key"},
		{"version 8", []string{"Sec-WebSocket-Version: 8", "Sec-WebSocket-Key: " + validKey}, 426, `unsupported Sec-WebSocket-Version "8"`},
		{"version missing", []string{"Sec-WebSocket-Key: " + validKey}, 426, "version 13"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/count", "/echo"} {
				resp, _, _ := rawHandshake(t, addr, path, tc.headers...)
				got := body(t, resp)
				if resp.StatusCode != tc.status || !strings.Contains(got, tc.want) {
					t.Fatalf("%s: HTTP %d %q, want %d naming %q", path, resp.StatusCode, got, tc.status, tc.want)
				}
				if tc.status == 426 && resp.Header.Get("Sec-WebSocket-Version") != "13" {
					t.Errorf("%s: 426 without Sec-WebSocket-Version: 13 (headers %v)", path, resp.Header)
				}
			}
		})
	}
	if n := counter.n.Load(); n != 0 {
		t.Fatalf("%d invalid upgrades reached the handshake handler", n)
	}
	// A valid one still does, and upgrades.
	resp, _, _ := rawHandshake(t, addr, "/count", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: "+validKey)
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("valid upgrade: HTTP %d %v", resp.StatusCode, resp.Header)
	}
	if n := counter.n.Load(); n != 1 {
		t.Fatalf("handshake events after one valid upgrade = %d, want 1", n)
	}
}

// TestHandshake_GuestEventCountStillForInvalidUpgrades is the adversarial
// run's case: keyless and version-8 upgrades to a guest with on_handshake
// (notify) made guest calls. They must make none.
func TestHandshake_GuestEventCountStillForInvalidUpgrades(t *testing.T) {
	srv := startServer(t, handlersWith(t, "notify"), func(c *server.Config) {
		c.Modules = map[string]server.ModuleConfig{"notify": {Config: "s3cret"}}
	})
	events := func() int64 {
		for _, m := range srv.Status().Modules {
			if m.Module == "notify" {
				return int64(m.Events)
			}
		}
		t.Fatal("module notify not in Status")
		return 0
	}
	before := events()
	for i := 0; i < 20; i++ {
		for _, h := range [][]string{
			{"Sec-WebSocket-Version: 13"},
			{"Sec-WebSocket-Version: 8", "Sec-WebSocket-Key: " + validKey},
			{"Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: abc"},
		} {
			resp, nc, _ := rawHandshake(t, srv.Addr().String(), "/notify?token=s3cret", h...)
			if resp.StatusCode < 400 {
				t.Fatalf("invalid upgrade %v answered %d", h, resp.StatusCode)
			}
			nc.Close()
		}
	}
	if after := events(); after != before {
		t.Fatalf("invalid upgrades made %d guest calls", after-before)
	}
}

// failingHandshake returns a fixed (status, err) from OnHandshake.
type failingHandshake struct {
	handshakeCounter
	status int
	err    error
}

func (f *failingHandshake) OnHandshake(context.Context, *abi.Handshake) (int, error) {
	return f.status, f.err
}

func TestHandshake_HandlerErrorIsA500NotStatus0(t *testing.T) {
	srv := startServer(t, handlersWith(t, "echo"), nil,
		server.WithHandler("/err0", &failingHandshake{status: 0, err: errors.New("backend down")}),
		server.WithHandler("/ok200", &failingHandshake{status: 200}),
		server.WithHandler("/teapot", &failingHandshake{status: 418, err: errors.New("short and stout")}))
	for path, want := range map[string]int{"/err0": 500, "/ok200": 500, "/teapot": 418} {
		_, resp, err := websocket.DefaultDialer.Dial(srv.url+path, nil)
		if err == nil || resp == nil || resp.StatusCode != want {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			t.Errorf("%s: err %v, HTTP %d; want %d", path, err, status, want)
		}
	}
	if !strings.Contains(srv.logs.String(), "backend down") {
		t.Error("the handler's error is not logged")
	}
}

func TestHandshake_PlainGetAnd431(t *testing.T) {
	srv := startServer(t, handlersWith(t, "echo"), nil)
	r, err := http.Get("http://" + srv.Addr().String() + "/echo")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusUpgradeRequired || r.Header.Get("Sec-WebSocket-Version") != "13" {
		t.Fatalf("plain GET: %d %v, want 426 with Sec-WebSocket-Version: 13", r.StatusCode, r.Header)
	}
	huge := "X-Huge: " + strings.Repeat("a", 64<<10)
	resp, _, _ := rawHandshake(t, srv.Addr().String(), "/echo", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: "+validKey, huge)
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("64 KiB header: HTTP %d, want 431", resp.StatusCode)
	}
	srv.dial(t, "/echo").sendText("still fine")
}

// frameConn is a raw client connection after a successful upgrade, to send
// frames the websocket package would refuse to write.
type frameConn struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func (s *testServer) rawUpgrade(t *testing.T, path string) *frameConn {
	t.Helper()
	resp, nc, br := rawHandshake(t, s.Addr().String(), path, "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: "+validKey)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: HTTP %d", resp.StatusCode)
	}
	return &frameConn{t: t, nc: nc, br: br}
}

// wsFrame encodes one frame: first is the FIN/RSV/opcode byte; masked as a
// client must unless unmasked is set.
func wsFrame(first byte, payload []byte, unmasked bool) []byte {
	b := []byte{first}
	mask := byte(0x80)
	if unmasked {
		mask = 0
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, mask|byte(n))
	case n < 1<<16:
		b = append(b, mask|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, mask|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if unmasked {
		return append(b, payload...)
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

func (f *frameConn) write(frames ...[]byte) {
	f.t.Helper()
	var all []byte
	for _, fr := range frames {
		all = append(all, fr...)
	}
	if _, err := f.nc.Write(all); err != nil {
		f.t.Fatalf("write frames: %v", err)
	}
}

// expectClose reads server frames until a close frame and returns its code
// and reason.
func (f *frameConn) expectClose() (int, string) {
	f.t.Helper()
	_ = f.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		var h [2]byte
		if _, err := io.ReadFull(f.br, h[:]); err != nil {
			f.t.Fatalf("no close frame: %v", err)
		}
		n := int(h[1] & 0x7f)
		switch n {
		case 126:
			var l [2]byte
			_, _ = io.ReadFull(f.br, l[:])
			n = int(binary.BigEndian.Uint16(l[:]))
		case 127:
			var l [8]byte
			_, _ = io.ReadFull(f.br, l[:])
			n = int(binary.BigEndian.Uint64(l[:]))
		}
		p := make([]byte, n)
		if _, err := io.ReadFull(f.br, p); err != nil {
			f.t.Fatalf("short frame: %v", err)
		}
		if h[0]&0x0f != 0x8 {
			continue // an echo or a ping before the close
		}
		if len(p) < 2 {
			f.t.Fatalf("close frame without a code: %x", p)
		}
		return int(binary.BigEndian.Uint16(p)), string(p[2:])
	}
}

func closeBody(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// TestFraming_ProtocolErrorsClose1002 keeps what the adversarial run found
// right (and fixes the 1-byte close): each RFC 6455 framing error closes
// the client with 1002 and a reason, while a canary on another route keeps
// being answered.
func TestFraming_ProtocolErrorsClose1002(t *testing.T) {
	srv := startServer(t, handlersWith(t, "echo", "echoA"), nil)
	// The canary needs an exact echo (echoA prefixes "A:"): it takes /echo,
	// the attacks /echoA.
	canary := srv.startCanary(t, "/echo")
	waitCanary(t, canary)
	const (
		fin    = 0x80
		text   = 0x1
		binary = 0x2
		cont   = 0x0
		closeO = 0x8
		ping   = 0x9
	)
	tests := []struct {
		name   string
		frames [][]byte
		reason string // a part of the close reason
	}{
		{"unmasked", [][]byte{wsFrame(fin|text, []byte("hi"), true)}, "bad MASK"},
		{"RSV1", [][]byte{wsFrame(fin|0x40|text, []byte("hi"), false)}, "RSV1"},
		{"RSV2", [][]byte{wsFrame(fin|0x20|text, []byte("hi"), false)}, "RSV2"},
		{"RSV3", [][]byte{wsFrame(fin|0x10|text, []byte("hi"), false)}, "RSV3"},
		{"opcode 3", [][]byte{wsFrame(fin|0x3, []byte("hi"), false)}, "bad opcode"},
		{"opcode 11", [][]byte{wsFrame(fin|0xb, nil, false)}, "bad opcode"},
		{"control over 125", [][]byte{wsFrame(fin|ping, make([]byte, 126), false)}, "len > 125"},
		{"fragmented control", [][]byte{wsFrame(ping, []byte("x"), false)}, "FIN not set"},
		{"continuation first", [][]byte{wsFrame(fin|cont, []byte("x"), false)}, "continuation after FIN"},
		{"data inside a fragmented message", [][]byte{wsFrame(text, []byte("a"), false), wsFrame(fin|binary, []byte("b"), false)}, "data before FIN"},
		{"close code 999", [][]byte{wsFrame(fin|closeO, closeBody(999, ""), false)}, "bad close code"},
		{"close code 1005", [][]byte{wsFrame(fin|closeO, closeBody(1005, ""), false)}, "bad close code"},
		{"close code 1006", [][]byte{wsFrame(fin|closeO, closeBody(1006, ""), false)}, "bad close code"},
		{"close code 5000", [][]byte{wsFrame(fin|closeO, closeBody(5000, ""), false)}, "bad close code"},
		{"close with a 1-byte payload", [][]byte{wsFrame(fin|closeO, []byte{0x03}, false)}, "1-byte payload"},
		{"1-byte close after messages", [][]byte{wsFrame(fin|text, []byte("one"), false), wsFrame(fin|closeO, []byte{0x03}, false)}, "1-byte payload"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := srv.rawUpgrade(t, "/echoA")
			c.write(tc.frames...)
			code, reason := c.expectClose()
			if code != websocket.CloseProtocolError || !strings.Contains(reason, tc.reason) {
				t.Fatalf("close %d %q, want 1002 naming %q", code, reason, tc.reason)
			}
		})
	}
	// A close with an empty body, and one with a valid code, are answered
	// in kind, not as errors.
	c := srv.rawUpgrade(t, "/echoA")
	c.write(wsFrame(fin|closeO, closeBody(websocket.CloseNormalClosure, "bye"), false))
	if code, _ := c.expectClose(); code != websocket.CloseNormalClosure {
		t.Fatalf("a normal close was answered with %d", code)
	}
	canary.check()
}

// waitCanary waits for the canary's first answer, so that an attack runs
// while it is known to be served.
func waitCanary(t *testing.T, c *canary) {
	t.Helper()
	eventually(t, "the canary's first answer", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.sent > 0 || c.err != nil
	})
}
