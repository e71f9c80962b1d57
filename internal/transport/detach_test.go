package transport

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"
)

// upgradeServer runs a fasthttp server on loopback that upgrades every
// request as server/ws.go does (hijack, no response, KeepHijackedConns) and
// sends each upgraded connection on the returned channel.
func upgradeServer(t *testing.T) (string, <-chan *websocket.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan *websocket.Conn, 1)
	up := &websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }, ReadBufferSize: 1024, WriteBufferSize: 1024}
	srv := &fasthttp.Server{
		KeepHijackedConns: true,
		Handler: func(ctx *fasthttp.RequestCtx) {
			key := string(ctx.Request.Header.Peek("Sec-WebSocket-Key"))
			ctx.HijackSetNoResponse(true)
			ctx.Hijack(func(nc net.Conn) {
				ws, err := Upgrade(up, nc, key, false)
				if err != nil {
					t.Errorf("upgrade: %v", err)
					return
				}
				conns <- ws
			})
		},
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String(), conns
}

const testHandshake = "GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
	"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"

// maskedText is a client text frame carrying payload (< 126 bytes).
func maskedText(payload string) []byte {
	f := []byte{0x81, 0x80 | byte(len(payload)), 1, 2, 3, 4}
	for i := range len(payload) {
		f = append(f, payload[i]^byte(i%4+1))
	}
	return f
}

// dialUpgrade sends the handshake followed by extra in one write and reads
// the 101; it returns the client socket and the server's connection.
func dialUpgrade(t *testing.T, addr string, conns <-chan *websocket.Conn, extra []byte) (net.Conn, *websocket.Conn) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // no freeze
	if _, err := c.Write(append([]byte(testHandshake), extra...)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	select {
	case ws := <-conns:
		t.Cleanup(func() { _ = ws.Close() })
		return c, ws
	case <-time.After(30 * time.Second):
		t.Fatal("no upgraded connection")
		return nil, nil
	}
}

// An upgraded connection reads the socket itself, not through fasthttp's
// hijacked connection, whose 4 KiB request reader it would otherwise keep
// for its whole life (the memory of an idle client).
func TestUpgrade_ReadsTheSocketNotFasthttpsReader(t *testing.T) {
	addr, conns := upgradeServer(t)
	c, ws := dialUpgrade(t, addr, conns, nil)
	g, ok := ws.NetConn().(*frameGuard)
	if !ok {
		t.Fatalf("NetConn is %T, want *frameGuard", ws.NetConn())
	}
	if _, ok := g.Conn.(*net.TCPConn); !ok {
		t.Fatalf("the guard reads from %T, want the *net.TCPConn itself", g.Conn)
	}
	// And it still reads, and the guard still guards.
	if _, err := c.Write(append(maskedText("hi"), 0x88, 0x81, 1, 2, 3, 4, 'x')); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, msg, err := ws.ReadMessage(); err != nil || string(msg) != "hi" {
		t.Fatalf("read %q, %v; want \"hi\"", msg, err)
	}
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("a 1-byte close frame read without error")
	}
}

// Frames a client sends in the same write as its handshake (fasthttp has
// them buffered when it hands the connection over) are read first, in
// order, before what follows on the socket.
func TestUpgrade_KeepsBytesSentWithTheRequest(t *testing.T) {
	addr, conns := upgradeServer(t)
	early := append(maskedText("one"), maskedText("two")...)
	c, ws := dialUpgrade(t, addr, conns, early)
	if _, err := c.Write(maskedText("three")); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	var got [][]byte
	for range 3 {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		got = append(got, msg)
	}
	if want := [][]byte{[]byte("one"), []byte("two"), []byte("three")}; !equalMsgs(got, want) {
		t.Fatalf("read %q, want %q", got, want)
	}
}

func equalMsgs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}
