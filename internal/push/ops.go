package push

import (
	"encoding/json"
	"os"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/internal/transport"
	"github.com/wasmgate/wasmgate/internal/wire"
)

// The operations endpoints `wasmgate connections` and `wasmgate stop` talk
// to, on the admin listener, authenticated like the others (Bearer
// push.secret):
//
//	GET  /connections[?uid=U][&group=G][&module=M][&limit=N]
//	POST /stop[?timeout=10s]

// ConnFilter selects the clients GET /connections lists: those bound to
// UID, in Group and served by Module (each "" for any).
type ConnFilter struct {
	UID, Group, Module string
}

// ConnInfo is one client in GET /connections.
type ConnInfo = transport.Info

// ConnList is GET /connections's answer: Total clients passed the filter,
// the first Limit of them (oldest first) are listed.
type ConnList struct {
	Total       int        `json:"total"`
	Limit       int        `json:"limit"`
	Connections []ConnInfo `json:"connections"`
}

// Listing bounds: a default that keeps the answer small, and a ceiling a
// caller may raise it to.
const (
	defaultConnLimit = 1000
	maxConnLimit     = 1_000_000
	// maxStopTimeout bounds POST /stop's timeout: longer is a typo.
	maxStopTimeout = time.Hour
)

func (p *Ports) handleConnections(ctx *fasthttp.RequestCtx) {
	if !p.admit(ctx, "GET") {
		return
	}
	q := ctx.QueryArgs()
	f := ConnFilter{UID: string(q.Peek("uid")), Group: string(q.Peek("group")), Module: string(q.Peek("module"))}
	limit := defaultConnLimit
	if v := q.Peek("limit"); v != nil {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > maxConnLimit {
			adminError(ctx, fasthttp.StatusBadRequest, wire.CodeBadRequest, "limit must be an integer from 1 to "+strconv.Itoa(maxConnLimit))
			return
		}
		limit = n
	}
	conns, err := p.node.Connections(p.ctx, f)
	if err != nil {
		adminError(ctx, fasthttp.StatusServiceUnavailable, wire.CodeUnavailable, err.Error())
		return
	}
	list := ConnList{Total: len(conns), Limit: limit, Connections: conns}
	if len(conns) > limit {
		list.Connections = conns[:limit]
	}
	if list.Connections == nil {
		list.Connections = []ConnInfo{}
	}
	body, err := json.Marshal(list)
	if err != nil {
		adminError(ctx, fasthttp.StatusInternalServerError, wire.CodeInternal, err.Error())
		return
	}
	ctx.SetBody(append(body, '\n'))
}

// StopAnswer is POST /stop's answer: the process that is stopping (so
// that the caller can wait for it to exit) and the timeout it was given.
type StopAnswer struct {
	OK      bool   `json:"ok"`
	PID     int    `json:"pid"`
	Timeout string `json:"timeout"`
}

func (p *Ports) handleStop(ctx *fasthttp.RequestCtx) {
	if !p.admit(ctx, "POST") {
		return
	}
	timeout := 10 * time.Second
	if v := ctx.QueryArgs().Peek("timeout"); v != nil {
		d, err := time.ParseDuration(string(v))
		if err != nil || d <= 0 || d > maxStopTimeout {
			adminError(ctx, fasthttp.StatusBadRequest, wire.CodeBadRequest, "timeout must be a positive duration up to 1h, such as 30s")
			return
		}
		timeout = d
	}
	if !p.node.Stop(timeout) {
		adminError(ctx, fasthttp.StatusNotImplemented, wire.CodeUnavailable, "this process does not stop on request (an embedded server); stop it by its own means")
		return
	}
	body, _ := json.Marshal(StopAnswer{OK: true, PID: os.Getpid(), Timeout: timeout.String()})
	ctx.SetStatusCode(fasthttp.StatusAccepted)
	ctx.SetBody(append(body, '\n'))
}
