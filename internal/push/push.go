// Package push is how backends reach the clients: the TCP text port (one
// JSON command per line), the HTTP API on the admin listener, and the
// command table both run. It calls the server only through Gateway (the
// commands) and Node (status and reload), which the server implements.
package push

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/config"
)

// Gateway is what the commands run against: the Lib\Gateway commands the
// WASM host functions also use, plus the two the ports add.
type Gateway interface {
	abi.Host
	// DestroyClient drops the client's connection at once.
	DestroyClient(ctx context.Context, clientID string) error
	// SendBorrowed is SendToClient for a request's bytes: id and msg.Data
	// are valid only during the call.
	SendBorrowed(ctx context.Context, id []byte, msg abi.Message) error
}

// Node is what the admin endpoints ask of the server beyond commands.
type Node interface {
	// Status is the snapshot GET /status and GET /metrics answer.
	Status() Status
	// Reload reloads the handlers and returns the HTTP status and the
	// summary POST /reload answers.
	Reload(ctx context.Context) (status int, summary string)
	// Restart starts the process that takes over and returns the HTTP
	// status and the summary POST /restart answers once it serves.
	Restart(ctx context.Context) (status int, summary string)
	// Connections lists this node's clients that pass f (GET /connections).
	Connections(ctx context.Context, f ConnFilter) ([]ConnInfo, error)
	// Stop asks the process to shut down gracefully within timeout
	// (POST /stop); it returns at once, false if nothing acts on the
	// request (an embedder that does not watch for it).
	Stop(timeout time.Duration) bool
	// NewPublishBatch returns a batch for the cluster publishes of one
	// caller's consecutive sends (publishpipe.go), or nil on a single node,
	// where sends publish nothing and the ports batch nothing.
	NewPublishBatch() PublishBatch
}

// PublishBatch queues the cluster publishes of consecutive sends, to send
// them to Redis in one round trip (cluster.Batch).
type PublishBatch interface {
	// With returns ctx under which the Gateway's sends queue their cluster
	// publishes in the batch instead of sending them.
	With(ctx context.Context) context.Context
	// Len and Size are the publishes and payload bytes queued.
	Len() int
	Size() int
	// Exec sends what is queued and empties the batch: errs[i] is the
	// outcome of the i-th publish queued, errs nil when all succeeded.
	Exec(ctx context.Context) (errs []error)
}

// Ports are a node's text port and HTTP API, either of which may be off.
type Ports struct {
	ctx   context.Context // of the server: commands run under it
	log   *slog.Logger
	cfg   config.PushConfig
	admin config.AdminConfig
	// gw leaves every write to the clients' writer goroutines; gwNow
	// writes to an idle client at once. A caller with more requests
	// buffered uses gw, one with nothing else to do gwNow (see the
	// server's Gateway.withWriteNow).
	gw, gwNow Gateway
	node      Node
	commands  map[string]*timedCommand
	// metrics serves GET /metrics from the Ports' own registry
	// (metrics.go).
	metrics fasthttp.RequestHandler

	text    *textPort        // nil when push.listen is ""
	http    *fasthttp.Server // nil when admin.listen is ""
	adminLn net.Listener

	// listen opens the listeners (UseListen); textRaw and adminRaw are the
	// TCP listeners under text and adminLn, which a restart hands over.
	listen            func(name, addr string) (net.Listener, error)
	textRaw, adminRaw net.Listener
}

// New returns the ports of cfg ([push] and [admin]), not yet listening.
// Commands run under ctx.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, gw, gwNow Gateway, node Node) *Ports {
	p := &Ports{ctx: ctx, log: log, cfg: cfg.Push, admin: cfg.Admin, gw: gw, gwNow: gwNow, node: node, commands: timedCommands(commandTable())}
	p.metrics = newMetricsHandler(p.metricsStatus, log)
	return p
}

// Start starts the text port and the HTTP API, if configured.
func (p *Ports) Start() error {
	if p.cfg.Listen != "" {
		if err := p.startTextPort(); err != nil {
			return fmt.Errorf("push.listen %s: %w", p.cfg.Listen, err)
		}
		p.log.Info("text port listening", "addr", p.text.ln.Addr().String(), "auth", p.cfg.Secret != "")
	}
	if p.admin.Listen != "" {
		if err := p.startAdmin(); err != nil {
			return fmt.Errorf("admin.listen %s: %w", p.admin.Listen, err)
		}
		p.log.Info("HTTP API listening", "addr", p.adminLn.Addr().String())
	}
	return nil
}

// Close disconnects every backend and stops the HTTP API, waiting until ctx
// ends for requests under way.
func (p *Ports) Close(ctx context.Context) {
	if p.text != nil {
		p.text.close()
	}
	if p.http != nil {
		_ = p.http.ShutdownWithContext(ctx)
	}
}

// TextAddr returns the text port's address (nil if disabled).
func (p *Ports) TextAddr() net.Addr {
	if p.text == nil {
		return nil
	}
	return p.text.ln.Addr()
}

// AdminAddr returns the HTTP API's address (nil if disabled).
func (p *Ports) AdminAddr() net.Addr {
	if p.adminLn == nil {
		return nil
	}
	return p.adminLn.Addr()
}

// Backends returns the open text-port connections and those refused at
// push.max_backends so far.
func (p *Ports) Backends() (open int, refused uint64) {
	if p.text == nil {
		return 0, 0
	}
	return p.text.count()
}

// sessionsOf returns the sessions of ids, skipping clients gone meanwhile.
func sessionsOf(ctx context.Context, g Gateway, ids []string) (map[string]json.RawMessage, error) {
	out := make(map[string]json.RawMessage, len(ids))
	for _, id := range ids {
		doc, err := g.GetSession(ctx, id)
		if abi.ErrnoOf(err) == abi.ErrnoNotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[id] = doc
	}
	return out, nil
}

func sessionsByGroup(ctx context.Context, g Gateway, group string) (map[string]json.RawMessage, error) {
	ids, err := g.GetClientIdListByGroup(ctx, group)
	if err != nil {
		return nil, err
	}
	return sessionsOf(ctx, g, ids)
}

// perGroup maps every group to list(group), dropping groups emptied
// meanwhile.
func perGroup(ctx context.Context, g Gateway, list func(context.Context, string) ([]string, error)) (map[string][]string, error) {
	groups, err := g.GetAllGroupIdList(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(groups))
	for _, group := range groups {
		items, err := list(ctx, group)
		if err != nil {
			return nil, err
		}
		if len(items) > 0 {
			out[group] = items
		}
	}
	return out, nil
}

// fasthttpLogger routes fasthttp's own messages to slog.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "component", "fasthttp")
}
