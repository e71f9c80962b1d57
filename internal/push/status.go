package push

import (
	"github.com/wasmgate/wasmgate/internal/cluster"

	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/wasmgate/wasmgate/internal/metrics"
	"github.com/wasmgate/wasmgate/internal/wire"
	"github.com/wasmgate/wasmgate/runtime"
)

// GET /status (JSON) and GET /metrics (Prometheus text format) on the admin
// listener: per module, what runs, what waits, what failed and why.

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
	Modules           []ModuleStatus    `json:"modules"`
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

func (p *Ports) handleMetrics(ctx *fasthttp.RequestCtx) {
	if !p.admit(ctx, "") {
		return
	}
	ctx.SetContentType("text/plain; version=0.0.4")
	ctx.SetBodyString(formatMetrics(p.fullStatus()))
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

// escapeLabel escapes a label value as the Prometheus text exposition
// format defines it: backslash, double quote and line feed, nothing else.
// (Go's %q is not that: it writes \t, \xff and \u escapes that
// Prometheus reads as errors or as other text.)
func escapeLabel(v string) string {
	if !strings.ContainsAny(v, "\\\"\n") {
		return v
	}
	var b strings.Builder
	for _, c := range []byte(v) {
		switch c {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// formatMetrics writes st in the Prometheus text exposition format.
func formatMetrics(st Status) string {
	var b strings.Builder
	metric := func(name, typ, help string, value func(m ModuleStatus) float64) {
		fmt.Fprintf(&b, "# HELP wasmgate_%s %s\n# TYPE wasmgate_%s %s\n", name, help, name, typ)
		for _, m := range st.Modules {
			fmt.Fprintf(&b, "wasmgate_%s{module=\"%s\"} %g\n", name, escapeLabel(m.Module), value(m))
		}
	}
	fmt.Fprintf(&b, "# HELP wasmgate_clients Connected WebSocket clients on this node.\n# TYPE wasmgate_clients gauge\nwasmgate_clients %d\n", st.Clients)
	fmt.Fprintf(&b, "# HELP wasmgate_backends Open text-port connections.\n# TYPE wasmgate_backends gauge\nwasmgate_backends %d\n", st.Backends)
	fmt.Fprintf(&b, "# HELP wasmgate_backends_refused_total Text-port connections refused at push.max_backends.\n# TYPE wasmgate_backends_refused_total counter\nwasmgate_backends_refused_total %d\n", st.BackendsRefused)
	fmt.Fprintf(&b, "# HELP wasmgate_origins_refused_total WebSocket handshakes refused by server.allowed_origins.\n# TYPE wasmgate_origins_refused_total counter\nwasmgate_origins_refused_total %d\n", st.OriginsRefused)
	if c := st.Cluster; c != nil {
		gauge := func(name, typ, help string, v float64) {
			fmt.Fprintf(&b, "# HELP wasmgate_cluster_%s %s\n# TYPE wasmgate_cluster_%s %s\nwasmgate_cluster_%s %g\n", name, help, name, typ, name, v)
		}
		gauge("healthy", "gauge", "1 if Redis answers, the pub/sub connection is up and Redis holds this node's clients.", bool01(c.Healthy))
		gauge("redis_up", "gauge", "1 if the last heartbeat reached Redis.", bool01(c.Redis == "ok"))
		gauge("nodes_alive", "gauge", "Nodes whose heartbeat the last heartbeat saw.", float64(len(c.NodesAlive)))
		gauge("channels", "gauge", "Redis channels this node is subscribed to.", float64(c.Channels))
		gauge("published_total", "counter", "Messages published for other nodes.", float64(c.Published))
		gauge("received_total", "counter", "Messages received from other nodes.", float64(c.Received))
		gauge("requests_total", "counter", "Changes sent to other nodes' clients.", float64(c.Requests))
		gauge("republished_total", "counter", "Times this node re-published its clients to Redis.", float64(c.Republished))
		gauge("swept_total", "counter", "Dead nodes' clients this node removed.", float64(c.Swept))
		gauge("redis_errors_total", "counter", "Failed Redis calls.", float64(c.RedisErrors))
	}
	fmt.Fprintf(&b, "# HELP wasmgate_handshakes_refused_total WebSocket handshakes refused by the edge limits (reason: the server key), or cut at server.handshake_timeout.\n# TYPE wasmgate_handshakes_refused_total counter\n")
	hr := st.HandshakesRefused
	for _, r := range []struct {
		reason string
		n      uint64
	}{
		{"ip_connections", hr.IPConnections}, {"ip_rate", hr.IPRate}, {"in_progress", hr.InProgress},
		{"ip_table_full", hr.IPTableFull}, {"max_connections", hr.MaxConnections}, {"timeout", hr.Timeout},
	} {
		fmt.Fprintf(&b, "wasmgate_handshakes_refused_total{reason=\"%s\"} %d\n", r.reason, r.n)
	}
	metric("events_total", "counter", "Guest calls made.", func(m ModuleStatus) float64 { return float64(m.Events) })
	metric("traps_total", "counter", "Guest calls that trapped or broke the ABI.", func(m ModuleStatus) float64 { return float64(m.Traps) })
	metric("timeouts_total", "counter", "Guest calls stopped at their deadline.", func(m ModuleStatus) float64 { return float64(m.Timeouts) })
	metric("event_p50_seconds", "gauge", "Median guest call time since the module version loaded (histogram bucket edge).", func(m ModuleStatus) float64 { return float64(m.EventP50) / 1e6 })
	metric("event_p99_seconds", "gauge", "99th percentile guest call time since the module version loaded (histogram bucket edge).", func(m ModuleStatus) float64 { return float64(m.EventP99) / 1e6 })
	metric("quarantined", "gauge", "1 if the module is quarantined.", func(m ModuleStatus) float64 { return bool01(m.Quarantined != "") })
	metric("instances", "gauge", "Live event instances.", func(m ModuleStatus) float64 { return float64(m.Instances) })
	metric("busy_instances", "gauge", "Event instances running a call.", func(m ModuleStatus) float64 { return float64(m.Busy) })
	metric("queued_events", "gauge", "Events waiting for an instance.", func(m ModuleStatus) float64 { return float64(m.Queued) })
	metric("paused_readers", "gauge", "Callers paused because the event queue is full.", func(m ModuleStatus) float64 { return float64(m.Paused) })
	metric("pauses_total", "counter", "Times a caller paused on a full event queue.", func(m ModuleStatus) float64 { return float64(m.Pauses) })
	metric("tasks_running", "gauge", "on_task calls running.", func(m ModuleStatus) float64 { return float64(m.TaskBusy) })
	metric("tasks_queued", "gauge", "Tasks waiting for a worker.", func(m ModuleStatus) float64 { return float64(m.TaskQueued) })
	metric("tasks_total", "counter", "Tasks finished.", func(m ModuleStatus) float64 { return float64(m.TasksDone) })
	metric("tasks_failed_total", "counter", "Tasks that failed, trapped or timed out.", func(m ModuleStatus) float64 { return float64(m.TasksFail) })
	metric("timers", "gauge", "Pending timers.", func(m ModuleStatus) float64 { return float64(m.Timers) })
	metric("timers_fired_total", "counter", "Timers delivered.", func(m ModuleStatus) float64 { return float64(m.TimersRun) })
	metric("kv_keys", "gauge", "Keys in the module's key-value store.", func(m ModuleStatus) float64 { return float64(m.KVKeys) })
	metric("kv_bytes", "gauge", "Bytes charged against kv_max_mb.", func(m ModuleStatus) float64 { return float64(m.KVBytes) })
	formatOpsMetrics(&b, st)
	return b.String()
}

// formatOpsMetrics writes the node's counts, build, latency histograms and
// process metrics.
func formatOpsMetrics(b *strings.Builder, st Status) {
	fmt.Fprintf(b, "# HELP wasmgate_uids Uids bound among this node's clients.\n# TYPE wasmgate_uids gauge\nwasmgate_uids %d\n", st.Uids)
	fmt.Fprintf(b, "# HELP wasmgate_groups Groups with a member among this node's clients.\n# TYPE wasmgate_groups gauge\nwasmgate_groups %d\n", st.Groups)
	fmt.Fprintf(b, "# HELP wasmgate_build_info The running build (value 1).\n# TYPE wasmgate_build_info gauge\nwasmgate_build_info{version=\"%s\"} 1\n", escapeLabel(st.Version))
	b.WriteString("# HELP wasmgate_event_duration_seconds Guest call durations, by module and event.\n# TYPE wasmgate_event_duration_seconds histogram\n")
	for _, m := range st.Modules {
		events := make([]string, 0, len(m.Latency))
		for e := range m.Latency {
			events = append(events, e)
		}
		sort.Strings(events)
		for _, e := range events {
			m.Latency[e].WriteProm(b, "wasmgate_event_duration_seconds", `module="`+escapeLabel(m.Module)+`",event="`+escapeLabel(e)+`"`)
		}
	}
	b.WriteString("# HELP wasmgate_push_command_duration_seconds Push command durations (text port and HTTP API), by command.\n# TYPE wasmgate_push_command_duration_seconds histogram\n")
	for _, c := range st.Commands {
		c.Latency.WriteProm(b, "wasmgate_push_command_duration_seconds", `cmd="`+escapeLabel(c.Name)+`"`)
	}
	b.WriteString("# HELP wasmgate_push_commands_failed_total Push commands answered ok:false, by command.\n# TYPE wasmgate_push_commands_failed_total counter\n")
	for _, c := range st.Commands {
		fmt.Fprintf(b, "wasmgate_push_commands_failed_total{cmd=\"%s\"} %d\n", escapeLabel(c.Name), c.Failed)
	}
	if st.Process != nil {
		st.Process.WriteProm(b)
	}
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
