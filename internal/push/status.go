package push

import (
	"github.com/wasmgate/wasmgate/internal/cluster"

	"encoding/json"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/internal/metrics"
	"github.com/wasmgate/wasmgate/internal/transport"
	"github.com/wasmgate/wasmgate/internal/wire"
	"github.com/wasmgate/wasmgate/runtime"
)

// GET /status (JSON) on the admin listener: per module, what runs, what
// waits, what failed and why. GET /metrics (metrics.go) exposes the same
// snapshot to Prometheus.

// Status is what GET /status answers.
type Status struct {
	NodeID uint32 `json:"node_id"`
	// Version is the running build's (`wasmgate version`); empty if the
	// embedder did not say.
	Version   string    `json:"version,omitempty"`
	PID       int       `json:"pid"`
	StartedAt time.Time `json:"started_at"`
	Uptime    float64   `json:"uptime_seconds"`
	Clients   int       `json:"clients"`
	// Uids and Groups count the uids bound and the groups with a member
	// among this node's clients.
	Uids   int `json:"uids"`
	Groups int `json:"groups"`
	// Backends is the number of open text-port connections;
	// BackendsRefused counts those turned away at push.max_backends.
	Backends        int    `json:"backends"`
	BackendsRefused uint64 `json:"backends_refused"`
	// OriginsRefused counts WebSocket handshakes refused with 403 by
	// server.allowed_origins.
	OriginsRefused uint64 `json:"origins_refused"`
	// HandshakesRefused counts sockets and handshakes refused by the
	// edge's limits, by kind.
	HandshakesRefused HandshakesRefused `json:"handshakes_refused"`
	// Handshakes counts the other outcomes of a WebSocket handshake: the
	// accepted ones and the refusals that are not the edge's.
	Handshakes Handshakes `json:"handshakes"`
	// Traffic is, by module (the route's; "native" for an embedder's Go
	// handlers), the clients connected now and the data messages and
	// payload bytes of every client since start, the gone ones included.
	Traffic map[string]ModuleTraffic `json:"traffic,omitempty"`
	// SlowConsumers counts the clients closed for going over
	// server.send_queue_size or send_queue_bytes; DroppedMessages, the
	// messages dropped with their queues (and the sends refused then).
	SlowConsumers   uint64 `json:"slow_consumers"`
	DroppedMessages uint64 `json:"dropped_messages"`
	// ReloadTotals counts the reloads of the handlers folder (POST
	// /reload, SIGHUP, the watcher) by result.
	ReloadTotals ReloadTotals   `json:"reload_totals"`
	Modules      []ModuleStatus `json:"modules"`
	// Cluster is the node's view of the cluster; nil on a single node.
	Cluster *cluster.Status `json:"cluster,omitempty"`
	// Reloads is the node's recent module history, oldest first: every
	// load, replacement, removal and refusal since start (the last 50).
	Reloads []ReloadEvent `json:"reloads"`
	// Commands are the push commands run so far, with their durations.
	Commands []CommandStats `json:"commands,omitempty"`
	// LatencyBuckets are the upper bounds, in seconds, of every latency
	// histogram's counts (modules' latency, commands'); a last count is
	// +Inf.
	LatencyBuckets []float64 `json:"latency_buckets_seconds,omitempty"`
	// Process is the process's memory, CPU, files and goroutines.
	Process *metrics.Process `json:"process,omitempty"`
}

// HandshakesRefused counts, per limit, the WebSocket handshakes refused
// (429 for a per-IP limit, 503 for a global one) or cut at the deadline.
type HandshakesRefused struct {
	IPConnections  uint64 `json:"ip_connections"`  // server.max_connections_per_ip
	IPRate         uint64 `json:"ip_rate"`         // server.handshake_rate_per_ip
	InProgress     uint64 `json:"in_progress"`     // server.max_handshakes_in_progress
	IPTableFull    uint64 `json:"ip_table_full"`   // server.max_tracked_ips
	MaxConnections uint64 `json:"max_connections"` // server.max_connections
	Timeout        uint64 `json:"timeout"`         // server.handshake_timeout (closed)
}

// Handshakes counts WebSocket handshakes by outcome, beyond the edge's
// refusals (HandshakesRefused) and server.allowed_origins' (OriginsRefused).
type Handshakes struct {
	Accepted      uint64 `json:"accepted"`       // upgraded: a client connected
	Invalid       uint64 `json:"invalid"`        // not a valid RFC 6455 upgrade (400, 426)
	Handler       uint64 `json:"handler"`        // refused by the module's on_handshake, or it failed
	ShuttingDown  uint64 `json:"shutting_down"`  // the server was shutting down (503)
	UpgradeFailed uint64 `json:"upgrade_failed"` // the 101 could not be written (the peer left)
}

// ModuleTraffic is one module's line in Status.Traffic.
type ModuleTraffic struct {
	Connections int `json:"connections"` // clients connected now
	transport.Traffic
}

// ReloadTotals counts reloads by result: Failed when a module was refused
// (its previous version, if any, keeps serving) or the folder could not
// be read.
type ReloadTotals struct {
	OK     uint64 `json:"ok"`
	Failed uint64 `json:"failed"`
}

// ReloadEvent is one line of Status.Reloads.
type ReloadEvent struct {
	Time   time.Time `json:"time"`
	Module string    `json:"module"`
	// Action is "loaded", "replaced", "removed" or "refused".
	Action string `json:"action"`
	// SHA256 is the file's digest (the refused one for "refused"; the
	// version that left for "removed").
	SHA256   string `json:"sha256,omitempty"`
	Previous string `json:"previous_sha256,omitempty"` // the replaced version's
	Error    string `json:"error,omitempty"`           // why it was refused
}

// ModuleStatus is one module's line in Status.
type ModuleStatus struct {
	runtime.Stats
	SHA256 string   `json:"sha256"`
	Routes []string `json:"routes"`
}

func (p *Ports) handleStatus(ctx *fasthttp.RequestCtx) {
	if !p.admit(ctx, "") {
		return
	}
	body, err := json.MarshalIndent(p.fullStatus(), "", "  ")
	if err != nil {
		adminError(ctx, fasthttp.StatusInternalServerError, wire.CodeInternal, err.Error())
		return
	}
	ctx.SetBody(append(body, '\n'))
}

// metricsStatus is what GET /metrics reads: the node's status and the
// push commands' counts, without the process's (the Go and process
// collectors read those).
func (p *Ports) metricsStatus() Status {
	st := p.node.Status()
	st.Commands = p.commandStats()
	return st
}

// fullStatus is the node's status plus what the ports and the process
// add: what GET /status and GET /metrics answer (not GET /healthz, which
// a load balancer may call often: reading the process's memory stops the
// world for a moment).
func (p *Ports) fullStatus() Status {
	st := p.node.Status()
	st.Commands = p.commandStats()
	st.LatencyBuckets = metrics.BucketBounds()
	proc := metrics.ReadProcess(st.StartedAt)
	st.Process = &proc
	return st
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
