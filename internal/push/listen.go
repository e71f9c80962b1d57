package push

import (
	"net"

	"github.com/valyala/fasthttp"
)

// UseListen makes the ports open their listeners with fn (name "text" or
// "admin"): a process started by a restart takes over the old one's
// sockets that way. Call it before Start.
func (p *Ports) UseListen(fn func(name, addr string) (net.Listener, error)) {
	p.listen = fn
}

// Listeners returns the TCP listeners under the ports that are on, by
// name ("text", "admin"), for a restart to hand over.
func (p *Ports) Listeners() map[string]net.Listener {
	out := map[string]net.Listener{}
	if p.text != nil {
		out["text"] = p.textRaw
	}
	if p.adminRaw != nil {
		out["admin"] = p.adminRaw
	}
	return out
}

func (p *Ports) open(name, addr string) (net.Listener, error) {
	if p.listen == nil {
		return net.Listen("tcp", addr)
	}
	return p.listen(name, addr)
}

// handleRestart serves POST /restart: `wasmgate restart` talks to it. It
// answers once the new process serves; this one then hands off.
func (p *Ports) handleRestart(ctx *fasthttp.RequestCtx) {
	if !p.admit(ctx, "POST") {
		return
	}
	status, msg := p.node.Restart(p.ctx)
	// The admin listener is about to stop: an idle keep-alive connection
	// would hold its shutdown for seconds.
	ctx.SetConnectionClose()
	ctx.SetContentType("text/plain; charset=utf-8")
	ctx.SetStatusCode(status)
	ctx.SetBodyString(msg + "\n")
}
