package push

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/url"
	"strings"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/internal/accept"
	"github.com/wasmgate/wasmgate/internal/wire"
)

// The HTTP API on the admin listener: POST /api/<cmd> with the same JSON
// object as a text-port line, POST /api/batch with an array of them, and
// GET /healthz. It runs the same commands (Gateway.execute) as the text port.

func (p *Ports) startAdmin() error {
	ln, err := p.open("admin", p.admin.Listen)
	if err != nil {
		return err
	}
	p.adminRaw = ln
	p.http = &fasthttp.Server{
		Handler:               p.handleAdmin,
		Name:                  "wasmgate-admin",
		MaxRequestBodySize:    p.cfg.MaxLine,
		ReadTimeout:           p.cfg.LineTimeout.Duration,
		WriteTimeout:          p.cfg.WriteTimeout.Duration,
		NoDefaultServerHeader: true,
		Logger:                fasthttpLogger{p.log},
		HeaderReceived:        p.adminRequestConfig,
		ErrorHandler:          p.adminReadError,
	}
	p.adminLn = accept.Retry(ln, "admin", p.log)
	go func() {
		if err := p.http.Serve(p.adminLn); err != nil {
			p.log.Error("admin serve", "err", err)
		}
	}()
	return nil
}

func (p *Ports) handleAdmin(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	path := string(ctx.Path())
	if crossSite(ctx) {
		// A web page the operator visits could otherwise POST to the
		// admin listener on loopback (a form or a text/plain fetch needs
		// no CORS preflight) and push, close clients or reload, without
		// any secret when none is set. Backends and curl send no Origin;
		// the /ui page sends its own.
		adminError(ctx, fasthttp.StatusForbidden, wire.CodeUnauthorized, "cross-origin request refused: the admin listener serves its own page (/ui), backends and tools, not other web pages")
		return
	}
	switch {
	case path == "/healthz":
		p.healthz(ctx)
	case path == "/reload":
		p.handleReload(ctx)
	case path == "/restart":
		p.handleRestart(ctx)
	case path == "/status":
		p.handleStatus(ctx)
	case path == "/metrics":
		p.handleMetrics(ctx)
	case path == "/ui" || path == "/ui/":
		p.handleUI(ctx)
	case path == "/connections":
		p.handleConnections(ctx)
	case path == "/stop":
		p.handleStop(ctx)
	case strings.HasPrefix(path, "/api/"):
		p.handleAPI(ctx, strings.TrimPrefix(path, "/api/"))
	default:
		adminError(ctx, fasthttp.StatusNotFound, wire.CodeUnknownCmd, "no such endpoint; use POST /api/<cmd>, POST /api/batch, GET /healthz, GET /status, GET /metrics, GET /connections, GET /ui, POST /reload, POST /restart or POST /stop")
	}
}

// crossSite reports whether a browser sent the request from a page of
// another origin: an Origin header (browsers send it on every POST, and on
// cross-origin GETs of fetch) whose host is not the one the request was
// sent to.
func crossSite(ctx *fasthttp.RequestCtx) bool {
	origin := string(ctx.Request.Header.Peek("Origin"))
	if origin == "" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" { // "null" (a sandboxed page, a file) included
		return true
	}
	return !strings.EqualFold(u.Host, string(ctx.Host()))
}

func (p *Ports) healthz(ctx *fasthttp.RequestCtx) {
	if st := p.node.Status(); st.Cluster != nil {
		// In a cluster, 200 whenever this node serves its clients, even
		// with Redis away: a load balancer must not drop a node that still
		// serves its own clients. The body says whether it is degraded.
		c := st.Cluster
		body, _ := json.Marshal(map[string]any{
			"ok": true, "clients": st.Clients, "node": c.Node, "healthy": c.Healthy,
			"degraded": !c.Healthy, "redis": c.Redis, "pubsub": c.PubSub, "nodes_alive": len(c.NodesAlive),
		})
		ctx.SetBody(append(body, '\n'))
		return
	}
	n, err := p.gw.GetAllClientIdCount(p.ctx)
	if err != nil {
		adminError(ctx, fasthttp.StatusServiceUnavailable, wire.CodeUnavailable, err.Error())
		return
	}
	out := append([]byte(`{"ok":true,"clients":`), []byte(itoa(n))...)
	ctx.SetBody(append(out, "}\n"...))
}

func (p *Ports) handleAPI(ctx *fasthttp.RequestCtx, cmd string) {
	if !p.admit(ctx, "POST") {
		return
	}
	if cmd == "batch" {
		p.apiBatch(ctx)
		return
	}
	if _, ok := p.commands[cmd]; !ok {
		adminError(ctx, fasthttp.StatusNotFound, wire.CodeUnknownCmd, "unknown cmd "+string(wire.AppendString(nil, cmd)))
		return
	}
	var r wire.Request
	if err := wire.Parse(ctx.PostBody(), &r); err != nil {
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		ctx.SetBody(appendParseError(nil, err))
		return
	}
	ctx.SetBody(p.apiExecute(p.gwNow, cmd, &r, nil))
}

// apiExecute runs one request whose command comes from the URL (cmd) or,
// in a batch, from the object itself (cmd == "").
func (p *Ports) apiExecute(gw Gateway, cmd string, r *wire.Request, dst []byte) []byte {
	if cmd != "" {
		if r.Cmd != nil && !isCmd(r, cmd) {
			return wire.AppendError(dst, r.ID, wire.CodeBadRequest, "cmd in the body differs from the URL's")
		}
		r.Cmd = wire.AppendString(nil, cmd)
	}
	if r.Cmd == nil {
		return wire.AppendError(dst, r.ID, wire.CodeBadRequest, "missing cmd")
	}
	if isCmd(r, "auth") { // the HTTP API authenticates by header
		return wire.AppendOK(dst, r.ID, true)
	}
	result, err := p.execute(p.ctx, gw, r)
	return appendResult(dst, r.ID, result, err)
}

func (p *Ports) apiBatch(ctx *fasthttp.RequestCtx) {
	var items []json.RawMessage
	if err := json.Unmarshal(ctx.PostBody(), &items); err != nil {
		adminError(ctx, fasthttp.StatusBadRequest, wire.CodeBadJSON, "batch body must be a JSON array of requests: "+err.Error())
		return
	}
	// In cluster mode the sends among the items send their PUBLISHes to
	// Redis together (publishpipe.go); pipe is nil on a single node.
	pipe := p.newPipe()
	out := []byte{'['}
	for i, item := range items {
		last := i == len(items)-1
		gw := p.gw
		if last {
			gw = p.gwNow
		}
		var r wire.Request
		err := wire.Parse(item, &r)
		if err == nil && pipe != nil && (!last || pipe.holding()) {
			if c := p.batchable(&r); c != nil {
				out = pipe.send(c, gw, &r, out, appendItem)
				continue
			}
		}
		out = pipe.settle(out, appendItem)
		out = appendBatchItem(out, func(dst []byte) []byte {
			if err != nil {
				return appendParseError(dst, err)
			}
			return p.apiExecute(gw, "", &r, dst)
		})
	}
	out = pipe.settle(out, appendItem)
	ctx.SetBody(append(out, "]\n"...))
}

// appendItem appends an answer to a batch's JSON array (dst begins '[').
func appendItem(dst, id []byte, result any, err error) []byte {
	return appendBatchItem(dst, func(dst []byte) []byte { return appendResult(dst, id, result, err) })
}

// appendBatchItem appends what answer appends, as the next item of a
// batch's JSON array (dst begins '['): after a comma, without the line's
// newline.
func appendBatchItem(dst []byte, answer func([]byte) []byte) []byte {
	if len(dst) > 1 {
		dst = append(dst, ',')
	}
	return bytes.TrimSuffix(answer(dst), []byte{'\n'})
}

func (p *Ports) adminAuthorized(ctx *fasthttp.RequestCtx) bool {
	return p.headerAuthorized(&ctx.Request.Header)
}

func (p *Ports) headerAuthorized(h *fasthttp.RequestHeader) bool {
	secret := p.cfg.Secret
	if secret == "" {
		return true
	}
	token, ok := strings.CutPrefix(string(h.Peek("Authorization")), "Bearer ")
	return ok && secretsEqual(token, secret)
}

// adminRequestConfig runs once a request's header is in, before its body is
// read: without a valid token (push.secret set) at most preAuthLine bytes of
// body are read, as on the text port, so a stranger cannot make the server
// buffer push.max_line per connection. The handler answers 401 anyway.
func (p *Ports) adminRequestConfig(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if p.headerAuthorized(h) {
		return fasthttp.RequestConfig{}
	}
	return fasthttp.RequestConfig{MaxRequestBodySize: preAuthLine(p.cfg)}
}

// adminReadError answers a request fasthttp could not read, as JSON like
// every other answer: a body over its limit is 401 without a valid token
// (see adminRequestConfig) and 413 with one.
func (p *Ports) adminReadError(ctx *fasthttp.RequestCtx, err error) {
	ctx.SetContentType("application/json")
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge) && !p.adminAuthorized(ctx):
		adminError(ctx, fasthttp.StatusUnauthorized, wire.CodeUnauthorized, "missing or wrong Authorization: Bearer <push.secret>")
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		adminError(ctx, fasthttp.StatusRequestEntityTooLarge, wire.CodeLineTooLong, "request body is longer than push.max_line")
	case errors.As(err, &small):
		adminError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, wire.CodeBadRequest, "request header too large")
	case errors.As(err, &ne) && ne.Timeout():
		adminError(ctx, fasthttp.StatusRequestTimeout, wire.CodeBadRequest, "request not received within push.line_timeout")
	default:
		adminError(ctx, fasthttp.StatusBadRequest, wire.CodeBadRequest, "malformed HTTP request: "+err.Error())
	}
}

func adminError(ctx *fasthttp.RequestCtx, status int, code, msg string) {
	ctx.SetStatusCode(status)
	ctx.SetBody(wire.AppendError(nil, nil, code, msg))
}

func itoa(n int) string { return string(wire.AppendValue(nil, n)) }

// admit checks an admin request before its handler runs: the method, if
// method is not "" (else 405 with Allow), then the push secret (else 401).
// It answers a refusal itself and reports whether to go on.
func (p *Ports) admit(ctx *fasthttp.RequestCtx, method string) bool {
	if method != "" && string(ctx.Method()) != method {
		ctx.Response.Header.Set("Allow", method)
		adminError(ctx, fasthttp.StatusMethodNotAllowed, wire.CodeBadRequest, "use "+method)
		return false
	}
	if !p.adminAuthorized(ctx) {
		adminError(ctx, fasthttp.StatusUnauthorized, wire.CodeUnauthorized, "missing or wrong Authorization: Bearer <push.secret>")
		return false
	}
	return true
}

// handleReload serves POST /reload: `wasmgate reload` talks to it.
func (p *Ports) handleReload(ctx *fasthttp.RequestCtx) {
	if !p.admit(ctx, "POST") {
		return
	}
	status, msg := p.node.Reload(p.ctx)
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetStatusCode(status)
	ctx.SetBodyString(msg + "\n")
}
