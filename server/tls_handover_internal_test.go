package server

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/internal/selfsigned"
)

// TestTLS_HandshakeUnderWayOutlivesTCPListenerClose: a restart's handoff
// closes only the TCP listener under the TLS one; a connection whose TLS
// handshake had begun must still be handed to Accept, not cut (Accept
// used to return as soon as the TCP listener had closed).
func TestTLS_HandshakeUnderWayOutlivesTCPListenerClose(t *testing.T) {
	dir := t.TempDir()
	if err := selfsigned.Write(dir+"/cert.pem", dir+"/key.pem", "x"); err != nil {
		t.Fatal(err)
	}
	certs, err := newCertStore(dir+"/cert.pem", dir+"/key.pem")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newTLSListener(raw, certs.tlsConfig(), 30*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer ln.Close()
	// Connected, handshake not yet sent: the server's handshake waits.
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Wait until the listener has taken it (a handshake is under way),
	// then close the TCP listener. A probe's goroutine ends with the
	// handshake.
	underWay := func() bool {
		idle := make(chan struct{})
		go func() { ln.inflight.Wait(); close(idle) }()
		select {
		case <-idle:
			return false
		case <-time.After(time.Millisecond):
			return true
		}
	}
	for end := time.Now().Add(10 * time.Second); !underWay(); {
		if time.Now().After(end) {
			t.Fatal("the listener did not accept the connection")
		}
	}
	_ = raw.Close()
	client := make(chan error, 1)
	go func() {
		tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
		_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
		client <- tc.Handshake()
	}()
	got, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept after the TCP listener closed: %v, want the connection whose handshake was under way", err)
	}
	defer got.Close()
	if err := <-client; err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("Accept returned a second connection")
	}
}
