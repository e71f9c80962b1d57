package push

import (
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/config"
	"github.com/wasmgate/wasmgate/internal/accept"
	"github.com/wasmgate/wasmgate/internal/wire"
)

// The text port: backends send one JSON command per line and read one answer
// per line, in order (docs/PUSH.md). Each connection is served by one
// goroutine that reads a line, executes it and appends the answer to a
// buffer; the buffer is written when no complete line is left to execute (or
// it grows past flushAt), so a pipelining backend gets its answers in few
// writes. A backend that stops reading blocks that write until
// push.write_timeout, then is disconnected; other connections are unaffected.
// In cluster mode the sends among the buffered lines also send their
// PUBLISHes to Redis together, their answers held until Redis took them
// (publishpipe.go); the answers still go out in command order.
//
// What a peer can hold is bounded: at most push.max_backends connections
// (more are refused with a too_many_backends line), each buffering at most
// one line, which must arrive whole within push.line_timeout; before it
// authenticates (with push.secret set) a line may be no longer than the auth
// command needs (preAuthLine), not push.max_line.

const flushAt = 64 << 10

// preAuthSlack is the room for an auth line beyond the secret itself: the
// braces, keys, an id and whitespace.
const preAuthSlack = 1 << 10

type textPort struct {
	p  *Ports
	ln net.Listener

	mu      sync.Mutex // guards conns
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
	refused atomic.Uint64 // connections turned away at push.max_backends
}

// preAuthLine is the longest line accepted before authentication: an auth
// command whose secret is escaped as \uXXXX throughout, plus slack. An
// unauthenticated peer can make the server hold no more than this.
func preAuthLine(cfg config.PushConfig) int {
	return min(preAuthSlack+6*len(cfg.Secret), cfg.MaxLine)
}

func (p *Ports) startTextPort() error {
	ln, err := p.open("text", p.cfg.Listen)
	if err != nil {
		return err
	}
	p.textRaw = ln
	p.text = &textPort{p: p, ln: accept.Retry(ln, "text", p.log), conns: map[net.Conn]struct{}{}}
	p.text.wg.Add(1)
	go p.text.acceptLoop()
	return nil
}

func (t *textPort) acceptLoop() {
	defer t.wg.Done()
	for {
		nc, err := t.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				t.p.log.Error("text port accept", "err", err)
			}
			return
		}
		ok, full := t.track(nc)
		if full {
			t.refuse(nc)
			continue
		}
		if !ok {
			_ = nc.Close()
			return
		}
		t.wg.Add(1)
		go t.serve(nc)
	}
}

// track registers a new connection; full reports that push.max_backends are
// already connected, ok=false that the port is closed.
func (t *textPort) track(nc net.Conn) (ok, full bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conns == nil { // closed
		return false, false
	}
	if len(t.conns) >= t.p.cfg.MaxBackends {
		return false, true
	}
	t.conns[nc] = struct{}{}
	return true, false
}

// refuse tells a connection over push.max_backends why it is closed. The
// line fits any fresh socket's send buffer, so the write does not wait on
// the peer; the deadline is a guard, not a wait.
func (t *textPort) refuse(nc net.Conn) {
	n := t.refused.Add(1)
	limit := t.p.cfg.MaxBackends
	if n == 1 || n%1000 == 0 { // a flood must not flood the log too
		t.p.log.Warn("text port: refusing backends over push.max_backends", "max_backends", limit, "refused_total", n)
	}
	msg := fmt.Sprintf("the text port already serves %d backend connections (push.max_backends); closing", limit)
	_ = nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = nc.Write(wire.AppendError(nil, nil, wire.CodeTooManyBackends, msg))
	_ = nc.Close()
}

// count returns the connected backends and the connections refused so far.
func (t *textPort) count() (backends int, refused uint64) {
	t.mu.Lock()
	backends = len(t.conns)
	t.mu.Unlock()
	return backends, t.refused.Load()
}

// close stops accepting and disconnects every backend.
func (t *textPort) close() {
	_ = t.ln.Close()
	t.mu.Lock()
	conns := t.conns
	t.conns = nil
	t.mu.Unlock()
	for nc := range conns {
		_ = nc.Close()
	}
	t.wg.Wait()
}

// backendConn is one text-port connection's state.
type backendConn struct {
	p      *Ports
	nc     net.Conn
	out    []byte // answers not yet written
	authed bool
	req    wire.Request
	pipe   *publishPipe // nil on a single node
}

func (t *textPort) serve(nc net.Conn) {
	defer t.wg.Done()
	defer func() {
		t.mu.Lock()
		delete(t.conns, nc)
		t.mu.Unlock()
		_ = nc.Close()
	}()
	cfg := t.p.cfg
	b := &backendConn{p: t.p, nc: nc, authed: cfg.Secret == "", pipe: t.p.newPipe()}
	limit, bufSize := cfg.MaxLine, 16<<10
	if !b.authed {
		// A stranger gets a buffer the size of the auth line, not 16 KiB.
		limit = preAuthLine(cfg)
		bufSize = min(bufSize, limit+2)
	}
	lr := newLineReader(nc, limit, bufSize, cfg.LineTimeout.Duration, b.flush)
	if !b.authed {
		// A stranger has line_timeout from connecting to authenticate.
		lr.idleDeadline = time.Now().Add(cfg.LineTimeout.Duration)
	}
	for {
		line, err := lr.next()
		if errors.Is(err, errLineTooLong) {
			msg := "request line is longer than push.max_line; closing"
			if !b.authed {
				msg = fmt.Sprintf("before auth a line may be at most %d bytes (the auth command); closing", lr.max)
			}
			b.settle()
			b.out = wire.AppendError(b.out, nil, wire.CodeLineTooLong, msg)
			_ = b.flush()
			return
		}
		if err != nil {
			return
		}
		gw, more := t.p.gwNow, lr.buffered() // the last request buffered: sends may write at once
		if more {
			gw = t.p.gw // more to do: leave the writes to the writer goroutines
		}
		if !b.handle(gw, bytes.TrimSuffix(line, []byte{'\r'}), more) {
			_ = b.flush()
			return
		}
		if b.authed {
			lr.max = cfg.MaxLine // lifts the pre-auth limit and deadline
			lr.idleDeadline = time.Time{}
		}
		if len(b.out) >= flushAt && b.flush() != nil {
			return
		}
	}
}

// flush writes pending answers, held ones first (settle); a backend that
// does not read them within push.write_timeout is disconnected.
func (b *backendConn) flush() error {
	b.settle()
	if len(b.out) == 0 {
		return nil
	}
	if err := b.nc.SetWriteDeadline(time.Now().Add(b.p.cfg.WriteTimeout.Duration)); err != nil {
		return err
	}
	_, err := b.nc.Write(b.out)
	b.out = b.out[:0]
	return err
}

// settle sends the held sends' PUBLISHes and appends their answers.
func (b *backendConn) settle() {
	if b.pipe.holding() {
		b.out = b.pipe.settle(b.out, appendResult)
	}
}

// handle executes one line and appends its answer. It returns false when the
// connection must be closed (failed authentication). more says that another
// line is buffered: a send may then hold its answer (publishpipe.go).
func (b *backendConn) handle(gw Gateway, line []byte, more bool) bool {
	if len(bytes.TrimSpace(line)) == 0 {
		return true
	}
	r := &b.req
	if err := wire.Parse(line, r); err != nil {
		b.settle()
		b.out = appendParseError(b.out, err)
		return b.authed
	}
	if b.pipe != nil && b.authed && (more || b.pipe.holding()) {
		if c := b.p.batchable(r); c != nil {
			b.out = b.pipe.send(c, gw, r, b.out, appendResult)
			return true
		}
	}
	b.settle() // anything else runs and answers after the held sends
	if !b.authed || isCmd(r, "auth") {
		return b.auth(r)
	}
	if r.Cmd == nil && r.Uid != nil {
		b.seedPush(gw, r, line)
		return true
	}
	if r.Cmd == nil {
		b.out = wire.AppendError(b.out, r.ID, wire.CodeBadRequest, "missing cmd")
		return true
	}
	result, err := b.p.execute(b.p.ctx, gw, r)
	b.out = appendResult(b.out, r.ID, result, err)
	return true
}

func appendParseError(dst []byte, err error) []byte {
	if errors.Is(err, wire.ErrNotObject) {
		return wire.AppendError(dst, nil, wire.CodeBadRequest, "a request must be a JSON object")
	}
	return wire.AppendError(dst, nil, wire.CodeBadJSON, err.Error())
}

func appendResult(dst, id []byte, result any, err error) []byte {
	if err != nil {
		ce := commandError(err)
		return wire.AppendError(dst, id, ce.Code, ce.Message)
	}
	return wire.AppendOK(dst, id, result)
}

func isCmd(r *wire.Request, name string) bool {
	s, ok := wire.String(r.Cmd)
	return ok && s == name
}

// auth checks {"cmd":"auth","secret":…}. Before a successful auth, any other
// line, or a wrong secret, ends the connection.
func (b *backendConn) auth(r *wire.Request) bool {
	secret := b.p.cfg.Secret
	given, _ := wire.String(r.Secret)
	if isCmd(r, "auth") && secretsEqual(given, secret) {
		b.authed = true
		b.out = wire.AppendOK(b.out, r.ID, true)
		return true
	}
	msg := "authenticate first with {\"cmd\":\"auth\",\"secret\":…}; closing"
	if isCmd(r, "auth") {
		msg = "wrong secret; closing"
	}
	b.out = wire.AppendError(b.out, r.ID, wire.CodeUnauthorized, msg)
	return false
}

// secretsEqual compares in constant time (for a given length).
func secretsEqual(given, want string) bool {
	return subtle.ConstantTimeCompare([]byte(given), []byte(want)) == 1
}

// seedPush serves workerman's own protocol from the seeds: a line with a uid
// and no cmd is pushed whole to that uid's clients; the answer is the bare
// line ok (delivered to at least one client) or fail.
func (b *backendConn) seedPush(gw Gateway, r *wire.Request, line []byte) {
	uid, ok := wire.Key(r.Uid)
	n := 0
	if ok && uid != "" {
		msg := abi.Message{Data: bytes.Clone(line)}
		n, _ = gw.SendToUid(b.p.ctx, []string{uid}, msg)
	}
	if n > 0 {
		b.out = append(b.out, "ok\n"...)
	} else {
		b.out = append(b.out, "fail\n"...)
	}
}
