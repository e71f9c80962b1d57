package server

import (
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/config"
	"github.com/wasmgate/wasmgate/internal/recording"
	"github.com/wasmgate/wasmgate/internal/registry"
	"github.com/wasmgate/wasmgate/internal/transport"
	"github.com/wasmgate/wasmgate/runtime"
	"github.com/wasmgate/wasmgate/web"
)

// handleHTTP routes a request to its handler, asks the handler whether to
// accept it, and upgrades it. Everything it needs from the fasthttp request
// is copied out first: the RequestCtx is recycled once the upgrade starts.
func (s *Server) handleHTTP(ctx *fasthttp.RequestCtx) {
	if serveAsset(ctx) {
		return
	}
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
	if status, problem := transport.CheckUpgrade(ctx); status != 0 {
		s.handshakes.invalid.Add(1)
		ctx.Error(problem, status)
		if status == fasthttp.StatusUpgradeRequired { // after Error, which resets the headers
			ctx.Response.Header.Set("Sec-WebSocket-Version", "13")
		}
		return
	}
	// The origin policy, like RFC 6455's checks, runs before any guest: a
	// handler need not repeat it (GatewayWorker users wrote it into every
	// onWebSocketConnect).
	if origin := string(ctx.Request.Header.Peek("Origin")); !config.OriginAllowed(s.cfg.Server.AllowedOrigins, origin) {
		if n := s.originsRefused.Add(1); n == 1 || n%1000 == 0 { // bounded: a flood must not flood the log
			s.log.Warn("handshake refused: origin not in server.allowed_origins", "origin", origin, "path", string(ctx.Path()), "refused_total", n)
		}
		ctx.Error("origin not allowed (server.allowed_origins)", fasthttp.StatusForbidden)
		return
	}
	// The per-IP limits (server/edge.go), on the address handlers see.
	client := clientAddr(ctx, s.trusted)
	if status, retry := s.edge.admit(ctx.Conn(), client.Addr()); status != 0 {
		ctx.Error("too many handshakes or connections from this address; retry later", status)
		setRetryAfter(ctx, retry)
		return
	}
	// handshaking counts upgrades under way, so that concurrent handshakes
	// cannot overshoot max_connections together.
	n := s.handshaking.Add(1)
	defer s.handshaking.Add(-1)
	if s.closing.Load() || s.active.Load()+n > int64(s.maxConns) {
		ctx.Error("too many connections, or shutting down", fasthttp.StatusServiceUnavailable)
		setRetryAfter(ctx, retryAfterBusy)
		if !s.closing.Load() {
			s.edge.count(refusedMaxConns, client.Addr())
		} else {
			s.handshakes.shuttingDown.Add(1)
		}
		return
	}
	hs := handshakeOf(ctx, s.ids.next(), client)
	status, err := rt.handler.OnHandshake(s.ctx, hs)
	if err != nil || status != 0 {
		s.handshakes.handler.Add(1)
		status = refusalStatus(status, err)
		if err != nil {
			s.log.Warn("handshake handler failed; refused", "path", hs.Path, "remote", hs.RemoteAddr, "status", status, "err", err)
		}
		ctx.Error(fasthttp.StatusMessage(status), status)
		return
	}
	key := string(ctx.Request.Header.Peek("Sec-WebSocket-Key"))
	// permessage-deflate, if the module has it on ([modules.NAME] deflate)
	// and the client offers what the server speaks.
	deflate := rt.deflate && transport.AcceptDeflate(ctx.Request.Header.PeekAll("Sec-WebSocket-Extensions"))
	ctx.HijackSetNoResponse(true) // the Upgrader writes the 101
	sock := ctx.Conn()            // the accepted socket: the edge's key for it
	ctx.Hijack(func(nc net.Conn) {
		ws, err := transport.Upgrade(&s.upgrader, nc, key, deflate)
		if err != nil { // the Upgrader has closed nc
			s.handshakes.upgradeFailed.Add(1)
			s.log.Debug("upgrade failed", "path", hs.Path, "remote", hs.RemoteAddr, "err", err)
			if s.edge.tracking {
				s.edge.closed(sock)
			}
			return
		}
		s.handshakes.accepted.Add(1)
		var ip ipHold
		if s.edge.tracking {
			ip.key, ip.keyed = s.edge.upgraded(sock)
		}
		if s.records(rt) {
			s.rec.Write(&recording.Event{Ev: recording.Connect, Client: hs.ClientID, Method: hs.Method, Path: hs.Path,
				Query: hs.Query, RemoteAddr: hs.RemoteAddr, Headers: hs.Headers})
		}
		s.serveConn(ws, rt, hs.ClientID, hs.RemoteAddr, ip, deflate)
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

// clientAddr is the client's address: the peer's, or from a trusted
// proxy's headers (config.ClientAddr). Invalid if the peer is not TCP.
func clientAddr(ctx *fasthttp.RequestCtx, trusted []netip.Prefix) netip.AddrPort {
	peer, ok := ctx.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return netip.AddrPort{}
	}
	return config.ClientAddr(peer.AddrPort(), string(ctx.Request.Header.Peek("X-Forwarded-For")),
		string(ctx.Request.Header.Peek("X-Real-IP")), trusted)
}

func handshakeOf(ctx *fasthttp.RequestCtx, id string, client netip.AddrPort) *abi.Handshake {
	hs := &abi.Handshake{
		ClientID: id,
		Method:   string(ctx.Method()),
		Path:     string(ctx.Path()),
		Query:    string(ctx.QueryArgs().QueryString()),
	}
	if client.IsValid() {
		hs.RemoteAddr = client.String()
	} else {
		hs.RemoteAddr = ctx.RemoteAddr().String()
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
func (s *Server) serveConn(ws *websocket.Conn, rt *route, id, remote string, ip ipHold, deflate bool) {
	s.mem.connected(s.active.Add(1))
	if s.closing.Load() { // upgraded just as Shutdown began: no events
		code, reason := s.closeFrame()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
		_ = ws.Close()
		s.active.Add(-1)
		s.releaseIP(ip)
		return
	}
	ws.SetReadLimit(int64(s.cfg.Server.MaxMessageSize))
	c := transport.NewConn(id, rt.module, ws, s.connOpt)
	if deflate {
		c.EnableDeflate()
	}
	c.SetOrigin(remote, time.Now())
	if err := s.register(c); err != nil {
		s.log.Error("register client", "client", id, "err", err)
		_ = ws.Close()
		s.active.Add(-1)
		s.releaseIP(ip)
		return
	}
	s.traffic.track(c)
	c.WatchLiveness()
	_ = rt.handler.OnConnect(s.ctx, id)
	go s.readConn(c, rt, ip)
}

// ipHold is the per-IP connection an upgraded client holds (edge.upgraded).
type ipHold struct {
	key   netip.Addr
	keyed bool
}

func (s *Server) releaseIP(ip ipHold) {
	if ip.keyed {
		s.edge.releaseIP(ip.key)
	}
}

// readConn is the client's reader: it delivers every message in order, then
// on_close, and closes the socket (fasthttp leaves that to us:
// KeepHijackedConns).
//
// The loop may move to another goroutine while the client idles
// (transport's idle.go): what follows the last message runs in done, on
// whichever goroutine the loop ends on.
func (s *Server) readConn(c *transport.Conn, rt *route, ip ipHold) {
	onMessage := func(msg abi.Message) { _ = rt.handler.OnMessage(s.ctx, c.ID(), msg) }
	recorded := s.records(rt)
	if recorded {
		onMessage = func(msg abi.Message) {
			s.rec.Write(recordedMessage(c.ID(), msg))
			_ = rt.handler.OnMessage(s.ctx, c.ID(), msg)
		}
	}
	c.ReadLoop(onMessage, func() {
		s.endConn(c, rt)
		if recorded {
			s.rec.Write(&recording.Event{Ev: recording.Close, Client: c.ID()})
		}
		s.releaseIP(ip)
		s.mem.disconnected(s.active.Add(-1))
	})
}

// endConn is a client's end once its reader has stopped: on_close, then
// the socket is closed.
func (s *Server) endConn(c *transport.Conn, rt *route) {
	ctx := s.ctx
	if h, ok := rt.handler.(closingStater); ok && h.WantsClosingState() {
		// Read before unregister drops it: on_close's closing_state.
		ctx = runtime.WithClosingState(ctx, registry.ClosingStateOf(ctx, s.reg, c.ID()))
	}
	s.unregister(c)
	_ = rt.handler.OnClose(ctx, c.ID())
	c.Finish()
	s.traffic.retire(c)
}

// closingStater is a Handler whose on_close reads the closing client's
// uid, session and groups (runtime.Module.WantsClosingState).
type closingStater interface{ WantsClosingState() bool }

func (s *Server) register(c *transport.Conn) error {
	s.hub.Add(c)
	if err := s.reg.AddClient(s.ctx, c.ID()); err != nil {
		s.hub.Remove(c.ID())
		return err
	}
	return nil
}

func (s *Server) unregister(c *transport.Conn) {
	s.hub.Remove(c.ID())
	if _, err := s.reg.RemoveClient(s.ctx, c.ID()); err != nil {
		s.log.Error("unregister client", "client", c.ID(), "err", err)
	}
	c.StopSends()
}

// webAsset is a file the public listener serves besides its WebSocket
// routes: the browser client, so that a page loads it from the gateway it
// talks to, and the demo pages (/demo/chat, /demo/tasks). Assets take precedence over a module route at the same path (a
// module named wasmgate.js); Start warns about such a route.
type webAsset struct {
	path, contentType string
	body              []byte
}

// webAssets lists the assets.
func webAssets() []webAsset {
	const js, html = "text/javascript; charset=utf-8", "text/html; charset=utf-8"
	return []webAsset{
		{"/wasmgate.js", js, web.Script},
		{"/wasmgate.mjs", js, web.Module},
		{"/wasmgate.d.ts", "application/typescript; charset=utf-8", web.Types},
		{"/demo/chat", html, web.ChatDemo},
		{"/demo/tasks", html, web.TasksDemo},
	}
}

// asset finds the asset served at path.
func asset(path string) (webAsset, bool) {
	if !strings.HasPrefix(path, "/wasmgate.") && !strings.HasPrefix(path, "/demo/") {
		return webAsset{}, false // the common case: a module route
	}
	for _, a := range webAssets() {
		if a.path == path {
			return a, true
		}
	}
	return webAsset{}, false
}

// serveAsset answers a GET or HEAD for one of the assets and reports
// whether the path was one.
func serveAsset(ctx *fasthttp.RequestCtx) bool {
	a, ok := asset(string(ctx.Path()))
	if !ok {
		return false
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Error("GET or HEAD only", fasthttp.StatusMethodNotAllowed)
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		return true
	}
	ctx.SetContentType(a.contentType)
	// Short: a gateway upgrade brings a new client, and pages should see it;
	// the demo pages are not cached at all.
	if strings.HasPrefix(a.contentType, "text/html") {
		ctx.Response.Header.Set("Cache-Control", "no-cache")
	} else {
		ctx.Response.Header.Set("Cache-Control", "public, max-age=300")
	}
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.SetBody(a.body)
	return true
}
