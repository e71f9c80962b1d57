package server

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/abi"
)

// Close codes the server sends.
const (
	closeNormal      = websocket.CloseNormalClosure
	closeGoingAway   = websocket.CloseGoingAway
	closeInvalidText = websocket.CloseInvalidFramePayloadData // 1007
)

// handleHTTP routes a request to its handler, asks the handler whether to
// accept it, and upgrades it. Everything it needs from the fasthttp request
// is copied out first: the RequestCtx is recycled once the upgrade starts.
func (s *Server) handleHTTP(ctx *fasthttp.RequestCtx) {
	rt := s.route(string(ctx.Path()))
	if rt == nil {
		ctx.Error("no handler for this path", fasthttp.StatusNotFound)
		return
	}
	if !websocket.FastHTTPIsWebSocketUpgrade(ctx) {
		ctx.Error("this is a WebSocket endpoint", fasthttp.StatusUpgradeRequired)
		// After Error, which resets the headers.
		ctx.Response.Header.Set("Upgrade", "websocket")
		ctx.Response.Header.Set("Sec-WebSocket-Version", "13")
		return
	}
	// An invalid upgrade is refused here, before the guest sees it: the
	// handshake event is for requests the server would otherwise accept.
	if status, problem := checkUpgrade(ctx); status != 0 {
		ctx.Error(problem, status)
		if status == fasthttp.StatusUpgradeRequired { // after Error, which resets the headers
			ctx.Response.Header.Set("Sec-WebSocket-Version", "13")
		}
		return
	}
	// handshaking counts upgrades under way, so that concurrent handshakes
	// cannot overshoot max_connections together.
	n := s.handshaking.Add(1)
	defer s.handshaking.Add(-1)
	if s.closing.Load() || s.active.Load()+n > int64(s.maxConns) {
		ctx.Error("too many connections, or shutting down", fasthttp.StatusServiceUnavailable)
		return
	}
	hs := handshakeOf(ctx, s.ids.next())
	status, err := rt.handler.OnHandshake(s.ctx, hs)
	if err != nil || status != 0 {
		status = refusalStatus(status, err)
		if err != nil {
			s.log.Warn("handshake handler failed; refused", "path", hs.Path, "remote", hs.RemoteAddr, "status", status, "err", err)
		}
		ctx.Error(fasthttp.StatusMessage(status), status)
		return
	}
	key := string(ctx.Request.Header.Peek("Sec-WebSocket-Key"))
	ctx.HijackSetNoResponse(true) // the Upgrader writes the 101
	ctx.Hijack(func(nc net.Conn) {
		ws, err := s.upgrader.Upgrade(&hijacked{conn: &frameGuard{Conn: nc}}, upgradeRequest(key), nil)
		if err != nil { // the Upgrader has closed nc
			s.log.Debug("upgrade failed", "path", hs.Path, "remote", hs.RemoteAddr, "err", err)
			return
		}
		s.serveConn(ws, rt, hs.ClientID)
	})
}

// refusalStatus is the HTTP status for a handshake the handler refused or
// failed on. A handler's own 4xx/5xx stands; anything else (the 0 of a
// handler that returned (0, err), or a status that is not an error, such as
// 200) becomes 500: the server could not decide to accept, and a status 0
// is not HTTP at all.
func refusalStatus(status int, err error) int {
	if status >= 400 && status <= 599 {
		return status
	}
	return fasthttp.StatusInternalServerError
}

// checkUpgrade validates what RFC 6455 §4.2.1 requires of an opening
// handshake beyond the Connection and Upgrade tokens. It returns 0, or the
// status to refuse with and a message naming the problem: 405 for a method
// other than GET, 426 for a Sec-WebSocket-Version other than 13 (§4.2.2:
// the answer carries the version we speak), 400 for a Sec-WebSocket-Key
// that is not the base64 of a 16-byte nonce.
func checkUpgrade(ctx *fasthttp.RequestCtx) (int, string) {
	if !ctx.IsGet() {
		return fasthttp.StatusMethodNotAllowed, "a WebSocket handshake must be a GET request"
	}
	if v := ctx.Request.Header.Peek("Sec-WebSocket-Version"); !hasToken(v, "13") {
		return fasthttp.StatusUpgradeRequired, "unsupported Sec-WebSocket-Version " + strconv.Quote(string(v)) + ": this server speaks version 13 (RFC 6455)"
	}
	key := ctx.Request.Header.Peek("Sec-WebSocket-Key")
	if len(key) == 0 {
		return fasthttp.StatusBadRequest, "missing Sec-WebSocket-Key header"
	}
	if !validKey(key) {
		return fasthttp.StatusBadRequest, "invalid Sec-WebSocket-Key: it must be the base64 encoding of a 16-byte nonce (RFC 6455 §4.1)"
	}
	return 0, ""
}

// validKey reports whether key is the base64 (standard alphabet, padded) of
// exactly 16 bytes: 24 characters ending in "==".
func validKey(key []byte) bool {
	if len(key) != 24 {
		return false
	}
	var nonce [18]byte
	n, err := base64.StdEncoding.Strict().Decode(nonce[:], key)
	return err == nil && n == 16
}

// hasToken reports whether the comma-separated header value v lists tok.
func hasToken(v []byte, tok string) bool {
	for part := range bytes.SplitSeq(v, []byte(",")) {
		if string(bytes.TrimSpace(part)) == tok {
			return true
		}
	}
	return false
}

func handshakeOf(ctx *fasthttp.RequestCtx, id string) *abi.Handshake {
	hs := &abi.Handshake{
		ClientID:   id,
		Method:     string(ctx.Method()),
		Path:       string(ctx.Path()),
		Query:      string(ctx.QueryArgs().QueryString()),
		RemoteAddr: ctx.RemoteAddr().String(),
	}
	for k, v := range ctx.Request.Header.All() {
		hs.Headers = append(hs.Headers, [2]string{strings.ToLower(string(k)), string(v)})
	}
	return hs
}

// serveConn runs in fasthttp's hijack callback: it registers the client,
// delivers on_connect, and hands the connection to a new reader goroutine.
// Returning lets fasthttp release its request buffers, and drops this
// goroutine's stack, grown by the guest call: an idle client keeps only a
// small reader goroutine (see docs/BENCHMARKS.md, memory per connection).
func (s *Server) serveConn(ws *websocket.Conn, rt *route, id string) {
	s.mem.connected(s.active.Add(1))
	if s.closing.Load() { // upgraded just as Shutdown began: no events
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(closeGoingAway, "server shutting down"), time.Now().Add(time.Second))
		_ = ws.Close()
		s.active.Add(-1)
		return
	}
	ws.SetReadLimit(int64(s.cfg.Server.MaxMessageSize))
	c := newConn(id, ws, sendLimits{messages: s.cfg.Server.SendQueueSize, bytes: s.cfg.Server.SendQueueBytes, writeTimeout: s.cfg.Server.WriteTimeout.Duration})
	c.module = rt.module
	if err := s.register(c); err != nil {
		s.log.Error("register client", "client", id, "err", err)
		_ = ws.Close()
		s.active.Add(-1)
		return
	}
	s.watchLiveness(c)
	_ = rt.handler.OnConnect(s.ctx, id)
	go s.readConn(c, rt)
}

// readConn is the client's reader: it delivers every message in order, then
// on_close, and closes the socket (fasthttp leaves that to us:
// KeepHijackedConns).
func (s *Server) readConn(c *conn, rt *route) {
	defer func() { s.mem.disconnected(s.active.Add(-1)) }()
	s.readLoop(c, rt)
	s.unregister(c)
	_ = rt.handler.OnClose(s.ctx, c.id)
	_ = c.ws.Close() // fails a write in progress at once
	c.writer.Wait()
}

func (s *Server) register(c *conn) error {
	s.hub.add(c)
	if err := s.reg.AddClient(s.ctx, c.id); err != nil {
		s.hub.remove(c.id)
		return err
	}
	return nil
}

func (s *Server) unregister(c *conn) {
	s.hub.remove(c.id)
	if _, err := s.reg.RemoveClient(s.ctx, c.id); err != nil {
		s.log.Error("unregister client", "client", c.id, "err", err)
	}
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
}

// readLoop delivers messages until the peer closes or breaks the protocol.
func (s *Server) readLoop(c *conn, rt *route) {
	for {
		typ, r, err := c.ws.NextReader()
		if err != nil {
			s.endRead(c, err)
			return
		}
		buf := s.buffers.Get().(*bytes.Buffer)
		buf.Reset()
		if _, err := buf.ReadFrom(r); err != nil {
			s.putBuffer(buf)
			s.endRead(c, err)
			return
		}
		data := buf.Bytes()
		if typ == websocket.TextMessage && !utf8.Valid(data) {
			s.putBuffer(buf)
			s.closeAndLinger(c, closeInvalidText, "invalid UTF-8 in text frame")
			return
		}
		_ = rt.handler.OnMessage(s.ctx, c.id, abi.Message{Data: data, Binary: typ == websocket.BinaryMessage})
		s.putBuffer(buf)
		s.touch(c)
	}
}

// putBuffer keeps read buffers for reuse unless a rare huge message grew one.
func (s *Server) putBuffer(buf *bytes.Buffer) {
	if buf.Cap() <= 64<<10 {
		s.buffers.Put(buf)
	}
}

// endRead handles the error that ended reading. An oversize message has
// already been answered with close code 1009 by the websocket package.
func (s *Server) endRead(c *conn, err error) {
	if errors.Is(err, errShortClose) {
		s.closeAndLinger(c, websocket.CloseProtocolError, "close frame with a 1-byte payload (a close code takes 2)")
		return
	}
	if errors.Is(err, websocket.ErrReadLimit) {
		s.log.Info("client sent a message over max_message_size; closed with 1009", "client", c.id, "max", s.cfg.Server.MaxMessageSize)
		c.closedByLibrary()
		s.linger(c)
	}
}

// closeAndLinger sends a close frame and drains the socket for a moment, so
// the close frame is not lost to a TCP reset caused by unread input.
func (s *Server) closeAndLinger(c *conn, code int, reason string) {
	c.sendCloseNow(code, reason)
	s.linger(c)
}

func (s *Server) linger(c *conn) {
	nc := c.ws.NetConn()
	_ = nc.SetReadDeadline(time.Now().Add(closeGrace))
	_, _ = io.Copy(io.Discard, nc)
}
