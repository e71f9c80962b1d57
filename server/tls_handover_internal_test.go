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
	accepted := make(chan struct{}, 1)
	ln := newTLSListener(signalListener{raw, accepted}, certs.tlsConfig(), 30*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer ln.Close()
	// Connected, handshake not yet sent: the server's handshake waits.
	c, err := net.Dial("tcp", raw.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-accepted // the listener has taken it: its handshake is under way
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

// signalListener signals each connection it accepts.
type signalListener struct {
	net.Listener
	accepted chan struct{}
}

func (l signalListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted <- struct{}{}
	}
	return c, err
}
