package push

import (
	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/internal/wire"
	"github.com/wasmgate/wasmgate/web"
)

// handleUI serves the admin dashboard (web/admin/ui.html) at GET /ui. The
// page itself is public on this listener, like /healthz: it holds no data
// and asks for the push secret when /status, which it polls, answers 401.
// The public listener never serves it.
func (p *Ports) handleUI(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		adminError(ctx, fasthttp.StatusMethodNotAllowed, wire.CodeBadRequest, "use GET")
		return
	}
	h := &ctx.Response.Header
	ctx.SetContentType("text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	// Not framable by another site: the page has a reload button.
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	ctx.SetBody(web.Dashboard)
}
