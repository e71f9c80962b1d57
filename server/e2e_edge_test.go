package server_test

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/server"
)

// The public edge's limits (issue 11): per-IP connections and handshake
// rate (429), handshakes in progress (503), the handshake deadline, each
// against a real server while a canary client keeps being answered. The
// attacks come from 127.0.0.2 and 127.0.0.3 (the dialer binds its source
// address); the canary and the bystanders use 127.0.0.1.

// dialFrom opens a WebSocket from source address ip with extra headers.
// It returns the HTTP status (101 when upgraded; 0 when no response) and
// the response's Retry-After.
func dialFrom(t *testing.T, ip, url string, h http.Header) (ws *websocket.Conn, status int, retryAfter string) {
	t.Helper()
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	d := &websocket.Dialer{NetDialContext: nd.DialContext, HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.Dial(url, h)
	if resp == nil {
		if err != nil {
			t.Logf("dial from %s: %v", ip, err)
		}
		return nil, 0, ""
	}
	if ws != nil {
		t.Cleanup(func() { ws.Close() })
	}
	return ws, resp.StatusCode, resp.Header.Get("Retry-After")
}

// rawFrom opens a TCP connection from ip that sends nothing: a handshake
// in progress.
func rawFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	c, err := nd.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("raw dial from %s: %v", ip, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantRefusal checks a refused dial's status and that Retry-After is a
// positive number of seconds.
func wantRefusal(t *testing.T, what string, status int, retryAfter string, want int) {
	t.Helper()
	if status != want {
		t.Fatalf("%s: HTTP %d, want %d", what, status, want)
	}
	if n, err := strconv.Atoi(retryAfter); err != nil || n < 1 {
		t.Errorf("%s: Retry-After %q, want a positive number of seconds", what, retryAfter)
	}
}

// canaryServed waits until the canary has completed a round trip after
// the attack, then stops it and fails the test on any missed answer.
func canaryServed(t *testing.T, c *canary) {
	t.Helper()
	c.mu.Lock()
	before := c.sent
	c.mu.Unlock()
	eventually(t, "a canary round trip after the attack", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.sent > before || c.err != nil
	})
	c.check()
}

// wantMetric checks /metrics for a handshakes_refused_total line.
func wantMetric(t *testing.T, srv *testServer, reason string, atLeast uint64) {
	t.Helper()
	code, metrics := httpGet(t, "http://"+srv.AdminAddr().String()+"/metrics", "")
	prefix := `wasmgate_handshakes_refused_total{reason="` + reason + `"} `
	for _, line := range strings.Split(metrics, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			if n, err := strconv.ParseUint(v, 10, 64); code != 200 || err != nil || n < atLeast {
				t.Errorf("metrics: %q, want at least %d", line, atLeast)
			}
			return
		}
	}
	t.Errorf("metrics (HTTP %d): no %s line", code, prefix)
}

// TestEdge_ConnectionsPerIP: one address may hold max_connections_per_ip
// sockets, upgraded or not (raw sockets that send nothing count: a
// slowloris from one address cannot take every slot); the next gets 429
// with Retry-After while other addresses still connect, and a slot frees
// when a client leaves. Behind a trusted proxy the limit counts the
// forwarded address.
func TestEdge_ConnectionsPerIP(t *testing.T) {
	srv := startServer(t, handlersWith(t, "echo"), func(c *server.Config) {
		c.Server.MaxConnectionsPerIP = 3
		c.Server.TrustedProxies = []string{"127.0.0.1"}
	})
	canary := srv.startCanary(t, "/echo")
	url := srv.url + "/echo"

	var held []*websocket.Conn
	for i := range 3 {
		ws, status, _ := dialFrom(t, "127.0.0.2", url, nil)
		if status != http.StatusSwitchingProtocols {
			t.Fatalf("connection %d from 127.0.0.2: HTTP %d, want 101", i+1, status)
		}
		held = append(held, ws)
	}
	_, status, retry := dialFrom(t, "127.0.0.2", url, nil)
	wantRefusal(t, "4th connection from 127.0.0.2", status, retry, http.StatusTooManyRequests)
	if _, status, _ := dialFrom(t, "127.0.0.1", url, nil); status != http.StatusSwitchingProtocols {
		t.Fatalf("another address while 127.0.0.2 is at its limit: HTTP %d, want 101", status)
	}
	held[0].Close()
	eventually(t, "127.0.0.2 to connect again after one of its clients left", func() bool {
		_, status, _ := dialFrom(t, "127.0.0.2", url, nil)
		return status == http.StatusSwitchingProtocols
	})

	// Sockets in their handshake count too.
	for range 3 {
		rawFrom(t, "127.0.0.3", srv.Addr().String())
	}
	_, status, retry = dialFrom(t, "127.0.0.3", url, nil)
	wantRefusal(t, "a handshake from 127.0.0.3 holding 3 raw sockets", status, retry, http.StatusTooManyRequests)

	// Through the trusted proxy (127.0.0.1), by X-Forwarded-For.
	fwd := func(client string) http.Header { return http.Header{"X-Forwarded-For": {client}} }
	for i := range 3 {
		if _, status, _ := dialFrom(t, "127.0.0.1", url, fwd("198.51.100.7")); status != http.StatusSwitchingProtocols {
			t.Fatalf("forwarded connection %d: HTTP %d, want 101", i+1, status)
		}
	}
	_, status, retry = dialFrom(t, "127.0.0.1", url, fwd("198.51.100.7"))
	wantRefusal(t, "4th connection forwarded for 198.51.100.7", status, retry, http.StatusTooManyRequests)
	if _, status, _ := dialFrom(t, "127.0.0.1", url, fwd("198.51.100.8")); status != http.StatusSwitchingProtocols {
		t.Errorf("another forwarded address: HTTP %d, want 101", status)
	}

	canaryServed(t, canary)
	// 3, plus any retry of the eventually above that came before the
	// server saw the close.
	if got := srv.Status().HandshakesRefused.IPConnections; got < 3 {
		t.Errorf("handshakes_refused.ip_connections = %d, want at least 3", got)
	}
	wantMetric(t, srv, "ip_connections", 3)
	if !strings.Contains(srv.logs.String(), "over server.max_connections_per_ip") {
		t.Error("no log line for the refusals")
	}
}

// TestEdge_HandshakeRatePerIP: an address gets handshake_burst_per_ip
// handshakes at once, then handshake_rate_per_ip a second; past it 429
// with Retry-After, while another address is not slowed.
func TestEdge_HandshakeRatePerIP(t *testing.T) {
	srv := startServer(t, handlersWith(t, "echo"), func(c *server.Config) {
		c.Server.HandshakeRatePerIP = 1
		c.Server.HandshakeBurstPerIP = 3
	})
	canary := srv.startCanary(t, "/echo")
	url := srv.url + "/echo"
	accepted, status, retry := 0, 0, ""
	for range 100 { // one token a second: a refusal comes long before
		var ws *websocket.Conn
		ws, status, retry = dialFrom(t, "127.0.0.2", url, nil)
		if ws == nil {
			break
		}
		ws.Close()
		accepted++
	}
	wantRefusal(t, "a handshake over the rate", status, retry, http.StatusTooManyRequests)
	if accepted < 3 {
		t.Errorf("%d handshakes accepted before the refusal, want at least the burst (3)", accepted)
	}
	for i := range 3 {
		if _, status, _ := dialFrom(t, "127.0.0.3", url, nil); status != http.StatusSwitchingProtocols {
			t.Fatalf("another address, handshake %d: HTTP %d, want 101", i+1, status)
		}
	}
	canaryServed(t, canary)
	wantMetric(t, srv, "ip_rate", 1)
}

// TestEdge_HandshakesInProgressCap: past max_handshakes_in_progress
// sockets accepted and not yet upgraded (from any address), the next is
// answered 503 with Retry-After at once; upgraded clients do not count,
// and the slots free when those sockets close.
func TestEdge_HandshakesInProgressCap(t *testing.T) {
	srv := startServer(t, handlersWith(t, "echo"), func(c *server.Config) {
		c.Server.MaxHandshakesInProgress = 3
	})
	canary := srv.startCanary(t, "/echo")
	url := srv.url + "/echo"
	var raws []net.Conn
	for range 3 {
		raws = append(raws, rawFrom(t, "127.0.0.2", srv.Addr().String()))
	}
	_, status, retry := dialFrom(t, "127.0.0.3", url, nil)
	wantRefusal(t, "a handshake past 3 in progress", status, retry, http.StatusServiceUnavailable)
	for _, c := range raws {
		c.Close()
	}
	eventually(t, "a handshake to succeed once the stalled sockets closed", func() bool {
		_, status, _ := dialFrom(t, "127.0.0.3", url, nil)
		return status == http.StatusSwitchingProtocols
	})
	canaryServed(t, canary)
	if got := srv.Status().HandshakesRefused.InProgress; got < 1 {
		t.Errorf("handshakes_refused.in_progress = %d, want at least 1", got)
	}
	wantMetric(t, srv, "in_progress", 1)
}

// TestEdge_SlowlorisCutAtDeadline: a client that dribbles its request
// headers a byte at a time is closed at handshake_timeout, counted, while
// the canary (upgraded before, and connected for longer than the
// deadline) keeps being answered.
func TestEdge_SlowlorisCutAtDeadline(t *testing.T) {
	srv := startServer(t, handlersWith(t, "echo"), func(c *server.Config) {
		c.Server.HandshakeTimeout.Duration = time.Second
	})
	canary := srv.startCanary(t, "/echo")
	c := rawFrom(t, "127.0.0.2", srv.Addr().String())
	if _, err := io.WriteString(c, "GET /echo HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan int) // bytes dribbled before a write failed
	go func() {
		n := 0
		for n < 2000 { // 100 s at 50 ms: the test's own bound is below
			if _, err := c.Write([]byte("X")); err != nil {
				break
			}
			n++
			time.Sleep(50 * time.Millisecond)
		}
		stopped <- n
	}()
	_ = c.SetReadDeadline(time.Now().Add(60 * time.Second)) // no-freeze bound
	_, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the dribbling client was not cut")
	}
	_ = c.Close()
	if n := <-stopped; n >= 2000 {
		t.Fatal("the client finished dribbling before it was cut")
	}
	canaryServed(t, canary)
	if got := srv.Status().HandshakesRefused.Timeout; got != 1 {
		t.Errorf("handshakes_refused.timeout = %d, want 1", got)
	}
	wantMetric(t, srv, "timeout", 1)
	if !strings.Contains(srv.logs.String(), "server.handshake_timeout") {
		t.Error("no log line for the cut")
	}
}

// TestHeartbeat_PingData: with ping_data set, every client gets it as a
// text message each ping_interval besides the WebSocket ping. A client
// that cannot see WebSocket pings (it sends no pongs) but answers
// ping_data stays connected past idle_timeout; one that stays silent is
// dropped at idle_timeout.
func TestHeartbeat_PingData(t *testing.T) {
	const pingData = `{"type":"ping"}` // what web/wasmgate.js answers
	srv := startServer(t, handlersWith(t, "echo"), func(c *server.Config) {
		c.Server.PingInterval.Duration = 100 * time.Millisecond
		c.Server.IdleTimeout.Duration = 500 * time.Millisecond
		c.Server.PingData = pingData
	})
	dial := func() *websocket.Conn {
		ws, _, err := websocket.DefaultDialer.Dial(srv.url+"/echo", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		ws.SetPingHandler(func(string) error { return nil }) // sees no WebSocket pings: sends no pongs
		return ws
	}
	answering, silent := dial(), dial()

	silentDone := make(chan error, 1)
	go func() {
		pings := 0
		_ = silent.SetReadDeadline(time.Now().Add(60 * time.Second)) // no-freeze bound
		for {
			_, data, err := silent.ReadMessage()
			if err != nil {
				if pings == 0 {
					err = errors.New("dropped before any ping_data arrived")
				} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
					err = errors.New("still connected after 60 s")
				} else {
					err = nil
				}
				silentDone <- err
				return
			}
			if string(data) == pingData {
				pings++
			}
		}
	}()

	// Answer ping_data only, until well past idle_timeout.
	start, pings := time.Now(), 0
	for time.Since(start) < 2*time.Second {
		_ = answering.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, data, err := answering.ReadMessage()
		if err != nil {
			t.Fatalf("the client answering ping_data was dropped after %d pings (%v): %v", pings, time.Since(start), err)
		}
		if string(data) == pingData {
			pings++
			if err := answering.WriteMessage(websocket.TextMessage, []byte(`{"type":"pong"}`)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if pings < 2 {
		t.Errorf("%d ping_data messages in %v at a 100 ms interval", pings, time.Since(start))
	}
	if err := <-silentDone; err != nil {
		t.Errorf("silent client: %v", err)
	}
	// Still served: an echo comes back.
	if err := answering.WriteMessage(websocket.TextMessage, []byte("alive")); err != nil {
		t.Fatal(err)
	}
	for {
		_ = answering.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, data, err := answering.ReadMessage()
		if err != nil {
			t.Fatalf("after the heartbeats: %v", err)
		}
		if string(data) == "alive" {
			break
		}
	}
}

// TestLoadConfig_BadPingData: ping_data goes out as a text message, so it
// must be UTF-8.
func TestLoadConfig_BadPingData(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.Server.PingData = "\xff"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "server.ping_data") {
		t.Errorf("ping_data \\xff: %v, want an error naming server.ping_data", err)
	}
}
