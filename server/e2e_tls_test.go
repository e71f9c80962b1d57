package server_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/internal/selfsigned"
	"github.com/wasmgate/wasmgate/server"
)

// writeCert writes a fresh self-signed certificate for 127.0.0.1 and
// localhost, with common name cn.
func writeCert(t *testing.T, certFile, keyFile, cn string) {
	t.Helper()
	if err := selfsigned.Write(certFile, keyFile, cn); err != nil {
		t.Fatal(err)
	}
}

// tlsServer is a server listening with TLS and the files of its certificate.
type tlsServer struct {
	*testServer
	certFile, keyFile string
}

// startTLSServer starts a wss:// server on a fresh self-signed certificate
// (common name "cert-A"). Its clients check the certificate's signature
// but not which certificate it is, so the tests can see a reload's.
func startTLSServer(t *testing.T, dir string, edit func(*server.Config)) *tlsServer {
	t.Helper()
	files := t.TempDir()
	ts := &tlsServer{certFile: filepath.Join(files, "cert.pem"), keyFile: filepath.Join(files, "key.pem")}
	writeCert(t, ts.certFile, ts.keyFile, "cert-A")
	ts.testServer = startServer(t, dir, func(c *server.Config) {
		c.Server.TLSCert, c.Server.TLSKey = ts.certFile, ts.keyFile
		if edit != nil {
			edit(c)
		}
	})
	ts.url = "wss://" + ts.Addr().String()
	ts.dialer = &websocket.Dialer{HandshakeTimeout: 10 * time.Second, TLSClientConfig: &tls.Config{
		// Self-signed and replaced by reloads: accept any certificate
		// the handshake proves the server holds the key of.
		InsecureSkipVerify: true,
	}}
	return ts
}

// servedCN returns the common name of the certificate c's server
// presented.
func servedCN(t *testing.T, c *wsClient) string {
	t.Helper()
	tc, ok := c.ws.NetConn().(*tls.Conn)
	if !ok {
		t.Fatalf("client connection is a %T, not TLS", c.ws.NetConn())
	}
	return tc.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func echoOnce(t *testing.T, c *wsClient, msg string) {
	t.Helper()
	c.sendText(msg)
	if _, data := c.read(); string(data) != msg {
		t.Fatalf("echo = %q, want %q", data, msg)
	}
}

// TestTLS_EchoAndChatOverWSS: echo (small, binary and a 60 KB message,
// which the server writes in pieces) and a chat room over wss://, with a
// client that checks the certificate against its own pool.
func TestTLS_EchoAndChatOverWSS(t *testing.T) {
	srv := startTLSServer(t, handlersWith(t, "echo", "chat"), func(c *server.Config) {
		c.Modules = map[string]server.ModuleConfig{"chat": {Config: "rate_limit=0"}}
	})
	pem, err := os.ReadFile(srv.certFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	srv.dialer = &websocket.Dialer{HandshakeTimeout: 10 * time.Second, TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}

	c := srv.dial(t, "/echo")
	echoOnce(t, c, "hello over TLS, 世界")
	bin := []byte{0, 0xff, 1, 0xfe}
	c.send(websocket.BinaryMessage, bin)
	if typ, data := c.read(); typ != websocket.BinaryMessage || !bytes.Equal(data, bin) {
		t.Fatalf("binary echo = %d %x", typ, data)
	}
	big := bytes.Repeat([]byte("0123456789"), 6000)
	c.send(websocket.TextMessage, big)
	if _, data := c.read(); !bytes.Equal(data, big) {
		t.Fatalf("big echo: %d bytes back, want %d", len(data), len(big))
	}

	room := chatServer{srv.testServer, "/chat"}
	a, b := room.chat(t), room.chat(t)
	a.login("alice")
	a.join("red")
	b.join("red")
	a.say("hi over wss")
	expectSay(t, a, "red", a.id, "hi over wss")
	expectSay(t, b, "red", a.id, "hi over wss")
}

// TestTLS_PlainClientRefusedClearly: a ws:// client on the wss:// port gets
// an HTTP 400 that says to use wss://, not a hang or a reset, and TLS
// clients are served as before.
func TestTLS_PlainClientRefusedClearly(t *testing.T) {
	srv := startTLSServer(t, handlersWith(t, "echo"), nil)
	_, resp, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr().String()+"/echo", nil)
	if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil {
		t.Fatalf("plain dial: err %v, response %v; want a refused handshake", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "wss://") {
		t.Fatalf("plain dial: HTTP %d %q, want 400 naming wss://", resp.StatusCode, body)
	}
	echoOnce(t, srv.dial(t, "/echo"), "still serving TLS")
	eventually(t, "the refusal logged", func() bool {
		return strings.Contains(srv.logs.String(), "plain HTTP request on the TLS listener")
	})
}

// TestTLS_CertificateReload: a reload serves the new certificate to new
// connections while connected clients keep talking; a broken file on the
// next reload is refused, named, and the last good certificate stays. The
// reload goes through the admin API, as `wasmgate reload` does.
func TestTLS_CertificateReload(t *testing.T) {
	srv := startTLSServer(t, handlersWith(t, "echo"), nil)
	old := srv.dial(t, "/echo")
	if cn := servedCN(t, old); cn != "cert-A" {
		t.Fatalf("served %q, want cert-A", cn)
	}

	writeCert(t, srv.certFile, srv.keyFile, "cert-B")
	status, body := adminReload(t, srv.testServer)
	if status != http.StatusOK || !strings.Contains(body, "TLS certificate reloaded") {
		t.Fatalf("reload: HTTP %d %q", status, body)
	}
	fresh := srv.dial(t, "/echo")
	if cn := servedCN(t, fresh); cn != "cert-B" {
		t.Fatalf("after reload a new client got %q, want cert-B", cn)
	}
	echoOnce(t, old, "the old connection survives the reload")
	echoOnce(t, fresh, "and the new one works")

	// A broken certificate file: refused, the error names it, cert-B stays.
	if err := os.WriteFile(srv.certFile, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	status, body = adminReload(t, srv.testServer)
	if status != http.StatusOK || !strings.Contains(body, "refused: server.tls_cert: "+srv.certFile) ||
		!strings.Contains(body, "previous certificate keeps serving") {
		t.Fatalf("broken reload: HTTP %d %q, want the refusal naming server.tls_cert and its file", status, body)
	}
	if err := srv.ReloadTLS(); err == nil {
		t.Fatal("ReloadTLS accepted a broken certificate file")
	}
	third := srv.dial(t, "/echo")
	if cn := servedCN(t, third); cn != "cert-B" {
		t.Fatalf("after a refused reload a new client got %q, want cert-B", cn)
	}
	echoOnce(t, third, "served with the last good certificate")
	echoOnce(t, old, "the first connection is still alive")
}

func adminReload(t *testing.T, srv *testServer) (int, string) {
	t.Helper()
	resp, err := http.Post("http://"+srv.AdminAddr().String()+"/reload", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestTLS_HandshakeIsBounded: peers that open TCP and never send a
// ClientHello, or send part of one and stall, are closed after
// server.tls_handshake_timeout, while a canary over wss:// keeps getting
// answers and new TLS clients are served.
func TestTLS_HandshakeIsBounded(t *testing.T) {
	srv := startTLSServer(t, handlersWith(t, "echo"), func(c *server.Config) {
		c.Server.TLSHandshakeTimeout.Duration = 300 * time.Millisecond
	})
	canary := srv.startCanary(t, "/echo")
	const silent = 50
	var stalled []net.Conn
	for i := range silent {
		nc, err := net.Dial("tcp", srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if i%2 == 1 { // the first bytes of a ClientHello record, then nothing
			if _, err := nc.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}); err != nil {
				t.Fatal(err)
			}
		}
		stalled = append(stalled, nc)
	}
	// Every stalled peer is closed by the server: its read ends (EOF or
	// reset) well within the generous bound, instead of timing out.
	for i, nc := range stalled {
		_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := io.Copy(io.Discard, nc)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("stalled peer %d still open after 10s: the TLS handshake is not bounded", i)
		}
	}
	echoOnce(t, srv.dial(t, "/echo"), "a new TLS client after the stall")
	canary.check()
	eventually(t, "the failures logged", func() bool {
		return strings.Contains(srv.logs.String(), "TLS handshake failed")
	})
}

// TestTLS_BadFilesStopTheStart: missing or broken files stop New with an
// error naming the key and the file.
func TestTLS_BadFilesStopTheStart(t *testing.T) {
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, cert, key, "good")
	otherCert, otherKey := filepath.Join(dir, "other.pem"), filepath.Join(dir, "other-key.pem")
	writeCert(t, otherCert, otherKey, "other")
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name, cert, key string
		want            []string
	}{
		{"missing cert", missing, key, []string{"server.tls_cert", missing, "no such file"}},
		{"missing key", cert, missing, []string{"server.tls_key", missing, "no such file"}},
		{"junk cert", junk, key, []string{"server.tls_cert", junk, "no PEM CERTIFICATE"}},
		{"key as cert", key, key, []string{"server.tls_cert", key, "no PEM CERTIFICATE"}},
		{"junk key", cert, junk, []string{"server.tls_key", junk, "no PEM PRIVATE KEY"}},
		{"mismatched key", cert, otherKey, []string{"server.tls_cert " + cert, "server.tls_key " + otherKey, "does not match"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := server.DefaultConfig()
			cfg.Server.Listen, cfg.Push.Listen, cfg.Admin.Listen = "127.0.0.1:0", "", ""
			cfg.Server.HandlersDir = handlersWith(t, "echo")
			cfg.Runtime.CacheDir = filepath.Join(os.TempDir(), "wasmgate-test-cache")
			cfg.Server.TLSCert, cfg.Server.TLSKey = tc.cert, tc.key
			srv, err := server.New(t.Context(), cfg, nil)
			if err == nil {
				_ = srv.Shutdown(t.Context())
				t.Fatal("New accepted the files")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New: %v\nwant it to name %q", err, w)
				}
			}
		})
	}
}
