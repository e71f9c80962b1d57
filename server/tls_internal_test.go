package server

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/internal/selfsigned"
	"github.com/wasmgate/wasmgate/internal/transport"
)

// TestTLS_ClientsWriteThroughTLS: a TLS client's connection must not get
// the raw write path, which writes straight to the socket's descriptor and
// would send frames unencrypted (the echo of e2e_tls_test.go would then
// fail to decrypt). Plain clients keep it: TestConn_RawWritePathReachable…
func TestTLS_ClientsWriteThroughTLS(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.Server.Listen, cfg.Push.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Server.HandlersDir = dir
	cfg.Server.TLSCert, cfg.Server.TLSKey = dir+"/cert.pem", dir+"/key.pem"
	if err := selfsigned.Write(cfg.Server.TLSCert, cfg.Server.TLSKey, "x"); err != nil {
		t.Fatal(err)
	}
	srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), WithHandler("/x", nopHandler{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	d := &websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	ws, _, err := d.Dial("wss://"+srv.Addr().String()+"/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	conn := onlyClient(t, srv)
	if conn.DirectWrites() {
		t.Fatal("a TLS client got the raw write path: its frames would bypass encryption")
	}
}

// onlyClient waits for srv's one registered client and returns it.
func onlyClient(t *testing.T, srv *Server) *transport.Conn {
	t.Helper()
	var conns []*transport.Conn
	deadline := time.Now().Add(5 * time.Second)
	for len(conns) == 0 && time.Now().Before(deadline) {
		srv.hub.Each(func(c *transport.Conn) { conns = append(conns, c) })
		time.Sleep(5 * time.Millisecond)
	}
	if len(conns) != 1 {
		t.Fatalf("%d clients registered, want 1", len(conns))
	}
	return conns[0]
}
