package main

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/internal/selfsigned"
)

// TestRun_SIGHUPReloadsTLSCertificate: `wasmgate start` with TLS serves
// the certificate files; after they are replaced, SIGHUP makes new
// connections get the new certificate while a connected client keeps
// working.
func TestRun_SIGHUPReloadsTLSCertificate(t *testing.T) {
	files := t.TempDir()
	cert, key := filepath.Join(files, "cert.pem"), filepath.Join(files, "key.pem")
	if err := selfsigned.Write(cert, key, "first"); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, "", "echoA")
	conf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	conf = append([]byte("[server]\ntls_cert = "+strconv.Quote(cert)+"\ntls_key = "+strconv.Quote(key)+"\n"),
		conf[len("[server]\n"):]...)
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	srv, logs := startInProcess(t, path)
	d := &websocket.Dialer{HandshakeTimeout: 10 * time.Second, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	dialCN := func() (*websocket.Conn, string) {
		t.Helper()
		ws, _, err := d.Dial("wss://"+srv.Addr().String()+"/echoA", nil)
		if err != nil {
			t.Fatal(err)
		}
		return ws, ws.NetConn().(*tls.Conn).ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	old, cn := dialCN()
	defer old.Close()
	if cn != "first" {
		t.Fatalf("served %q, want first", cn)
	}
	if err := selfsigned.Write(cert, key, "second"); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, logs, "TLS certificate reloaded", 1)
	fresh, cn := dialCN()
	fresh.Close()
	if cn != "second" {
		t.Fatalf("after SIGHUP a new client got %q, want second", cn)
	}
	if err := old.WriteMessage(websocket.TextMessage, []byte("x")); err != nil {
		t.Fatal(err)
	}
	_ = old.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, data, err := old.ReadMessage(); err != nil || string(data) != "A:x" {
		t.Fatalf("the client connected before SIGHUP got %q, %v", data, err)
	}
}
