package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// TLS on the public listener (server.tls_cert, server.tls_key).
//
// Goroutines: tlsListener runs one accept loop (acceptLoop), which starts
// one goroutine per accepted TCP connection for its TLS handshake
// (handshake). A handshake goroutine lives at most
// server.tls_handshake_timeout (HandshakeContext closes the socket when it
// ends) and then hands the connection to Accept, that is to fasthttp, or
// closes it. So a peer that opens TCP and never sends a ClientHello holds
// a goroutine and a descriptor for that long only, and holds neither
// fasthttp's accept loop nor one of its workers: fasthttp only ever sees
// connections whose handshake is done. Close ends the accept loop and
// interrupts every handshake under way.
//
// The certificate is served through tls.Config.GetCertificate from an
// atomic pointer (certStore): a reload swaps it whole, so new handshakes
// get the new certificate while connected clients, whose handshake is
// done, are untouched. A reload that fails keeps the old one.
//
// After the handshake, a client's frames are written by internal/transport
// through the *tls.Conn (which encrypts them): the raw non-blocking
// write(2) path exists only for plain sockets, since a *tls.Conn is not a
// syscall.Conn (see transport.NewConn).

// certStore holds the certificate the listener serves.
type certStore struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

// newCertStore reads the certificate and key; the error names the file
// and key at fault.
func newCertStore(certFile, keyFile string) (*certStore, error) {
	cs := &certStore{certFile: certFile, keyFile: keyFile}
	cert, err := cs.read()
	if err != nil {
		return nil, err
	}
	cs.cur.Store(cert)
	return cs, nil
}

// read loads and checks the two files.
func (cs *certStore) read() (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(cs.certFile)
	if err != nil {
		return nil, fmt.Errorf("server.tls_cert: %w", err)
	}
	keyPEM, err := os.ReadFile(cs.keyFile)
	if err != nil {
		return nil, fmt.Errorf("server.tls_key: %w", err)
	}
	// tls.X509KeyPair's own errors do not say which file: check each first.
	if !hasPEMBlock(certPEM, func(typ string) bool { return typ == "CERTIFICATE" }) {
		return nil, fmt.Errorf("server.tls_cert: %s holds no PEM CERTIFICATE block", cs.certFile)
	}
	if !hasPEMBlock(keyPEM, func(typ string) bool { return strings.HasSuffix(typ, "PRIVATE KEY") }) {
		return nil, fmt.Errorf("server.tls_key: %s holds no PEM PRIVATE KEY block", cs.keyFile)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("server.tls_cert %s with server.tls_key %s: %w", cs.certFile, cs.keyFile, err)
	}
	if cert.Leaf == nil { // filled in by X509KeyPair since Go 1.23
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("server.tls_cert %s: %w", cs.certFile, err)
		}
	}
	return &cert, nil
}

func hasPEMBlock(data []byte, want func(typ string) bool) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if want(b.Type) {
			return true
		}
	}
}

// reload reads the files again and serves them to new connections; on
// error the current certificate stays.
func (cs *certStore) reload() (*tls.Certificate, error) {
	cert, err := cs.read()
	if err != nil {
		return nil, err
	}
	cs.cur.Store(cert)
	return cert, nil
}

// get is tls.Config.GetCertificate.
func (cs *certStore) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return cs.cur.Load(), nil
}

// certAttrs describes a certificate for the log.
func certAttrs(c *tls.Certificate) []any {
	return []any{"subject", c.Leaf.Subject.String(), "dns_names", c.Leaf.DNSNames, "not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339)}
}

// tlsConfig is the listener's TLS configuration. Only http/1.1 is
// offered over ALPN: WebSocket over HTTP/2 (RFC 8441) is not served.
func (cs *certStore) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: cs.get,
		NextProtos:     []string{"http/1.1"},
	}
}

// ReloadTLS reads server.tls_cert and server.tls_key again: connections
// opened after it get the new certificate, connected clients keep theirs.
// If the files cannot be loaded the current certificate keeps serving and
// the error says why. Without TLS it does nothing. SIGHUP and `wasmgate
// reload` call it besides Reload.
func (s *Server) ReloadTLS() error {
	if s.certs == nil {
		return nil
	}
	cert, err := s.certs.reload()
	if err != nil {
		err = fmt.Errorf("%w (the previous certificate keeps serving)", err)
		s.log.Error("TLS certificate refused", "err", err)
		return err
	}
	s.log.Info("TLS certificate reloaded", certAttrs(cert)...)
	return nil
}

// tlsListener serves TLS over a TCP listener; its Accept returns only
// connections whose handshake is done (see the top of this file).
type tlsListener struct {
	net.Listener // the TCP listener
	cfg          *tls.Config
	timeout      time.Duration
	log          *slog.Logger

	ready     chan net.Conn // handshaken connections for Accept
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	ctx       context.Context // ends with Close: interrupts handshakes
	cancel    context.CancelFunc
	acceptErr error // why acceptLoop ended; set before drained is closed
	// inflight counts the handshakes under way; drained is closed once
	// acceptLoop has ended and they are all done, so that a restart's
	// handoff, which closes only the TCP listener, still hands over the
	// connections whose handshake had begun instead of cutting them.
	inflight sync.WaitGroup
	drained  chan struct{}
	failed   atomic.Uint64 // handshakes that failed or timed out
}

// newTLSListener starts serving TLS over ln.
func newTLSListener(ln net.Listener, cfg *tls.Config, timeout time.Duration, log *slog.Logger) *tlsListener {
	l := &tlsListener{Listener: ln, cfg: cfg, timeout: timeout, log: log,
		ready: make(chan net.Conn), done: make(chan struct{}), drained: make(chan struct{})}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	go l.acceptLoop()
	return l
}

func (l *tlsListener) acceptLoop() {
	defer func() {
		go func() { l.inflight.Wait(); close(l.drained) }()
	}()
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			l.acceptErr = err
			return
		}
		l.inflight.Add(1)
		go l.handshake(c)
	}
}

// handshake runs c's TLS handshake within the timeout and hands it to
// Accept.
func (l *tlsListener) handshake(c net.Conn) {
	defer l.inflight.Done()
	tc := tls.Server(c, l.cfg)
	ctx, cancel := context.WithTimeout(l.ctx, l.timeout)
	err := tc.HandshakeContext(ctx) // closes c if ctx ends first
	cancel()
	if err != nil {
		l.refused(c, err)
		return
	}
	select {
	case l.ready <- tc:
	case <-l.done:
		_ = c.Close()
	}
}

// refused closes a connection whose handshake failed. A plain HTTP request
// (a ws:// client on the wss:// port) gets a 400 that says so, as net/http
// answers; anything else is just closed. Failures are counted and logged
// at a bounded rate: scanners make them common on a public port.
func (l *tlsListener) refused(c net.Conn, err error) {
	var rhe tls.RecordHeaderError
	if errors.As(err, &rhe) && rhe.Conn != nil && looksLikeHTTP(rhe.RecordHeader[:]) {
		const body = "this port serves TLS only: use wss:// (or https://), not ws://\n"
		_ = c.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = fmt.Fprintf(c, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body)
		err = errors.New("plain HTTP request on the TLS listener (a ws:// client?)")
	}
	_ = c.Close()
	if n := l.failed.Add(1); n == 1 || n%1000 == 0 {
		l.log.Warn("TLS handshake failed; connection closed", "remote", c.RemoteAddr().String(), "err", err, "failed_total", n)
	}
}

// looksLikeHTTP reports whether the first bytes of a connection are the
// start of an HTTP request.
func looksLikeHTTP(b []byte) bool {
	for _, m := range []string{"GET ", "HEAD ", "POST ", "PUT ", "OPTIO", "DELET", "PATCH", "CONNE"} {
		if n := min(len(b), len(m)); bytes.Equal(b[:n], []byte(m[:n])) {
			return true
		}
	}
	return false
}

// Accept returns the next connection whose handshake is done.
func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.drained:
		return nil, l.acceptErr
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting and interrupts the handshakes under way.
func (l *tlsListener) Close() error {
	var err error
	l.closeOnce.Do(func() {
		close(l.done)
		l.cancel()
		err = l.Listener.Close()
	})
	return err
}
