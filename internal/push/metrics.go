package push

import (
	"fmt"
	"log/slog"
	runtimemetrics "runtime/metrics"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/wasmgate/wasmgate/internal/cluster"
	"github.com/wasmgate/wasmgate/internal/metrics"
)

// GET /metrics on the admin listener: the Prometheus exposition, written
// by github.com/prometheus/client_golang (promhttp) from a registry that
// belongs to the Ports (never prometheus.DefaultRegisterer: two servers in
// one process, as in the tests, each expose their own).
//
// Nothing here is on the hot path. The counts are those the server keeps
// anyway as plain atomics — each module's counters and fixed-bucket
// latency histograms (runtime), each connection's traffic counters
// (transport), the edge's refusals, the push commands' histograms — and
// statusCollector reads them at scrape time, through Node.Status, and
// hands them to the library as constant metrics. A guest call or a message
// therefore costs no label lookup and no extra atomic (RATIONALE.md,
// "Metrics are read at scrape time"). The Go runtime and process series
// are client_golang's own collectors.
//
// seriesTable is the one list of wasmgate's series: name, type, help and
// labels. docs/OPERATIONS.md lists the same (TestMetrics_SeriesDocumented).

// seriesKind is a series' Prometheus type.
type seriesKind int

const (
	counter seriesKind = iota
	gauge
	histogram
)

func (k seriesKind) String() string {
	return [...]string{"counter", "gauge", "histogram"}[k]
}

// seriesDef is one series family. At most one of node, module and
// clusterValue is set: such a series is emitted by the table walk in
// Collect (unlabelled, by module, unlabelled when in a cluster); the
// others are emitted by name.
type seriesDef struct {
	name   string
	kind   seriesKind
	help   string
	labels []string

	node         func(*Status) float64
	module       func(*ModuleStatus) float64
	clusterValue func(*cluster.Status) float64
}

// seriesTable returns every series wasmgate exposes besides the Go and
// process collectors'.
func seriesTable() []seriesDef {
	mod := []string{"module"}
	return []seriesDef{
		// The node.
		{name: "wasmgate_clients", kind: gauge, help: "Connected WebSocket clients on this node.",
			node: func(s *Status) float64 { return float64(s.Clients) }},
		{name: "wasmgate_uids", kind: gauge, help: "Uids bound among this node's clients.",
			node: func(s *Status) float64 { return float64(s.Uids) }},
		{name: "wasmgate_groups", kind: gauge, help: "Groups with a member among this node's clients.",
			node: func(s *Status) float64 { return float64(s.Groups) }},
		{name: "wasmgate_backends", kind: gauge, help: "Open text-port connections.",
			node: func(s *Status) float64 { return float64(s.Backends) }},
		{name: "wasmgate_backends_refused_total", kind: counter, help: "Text-port connections refused at push.max_backends.",
			node: func(s *Status) float64 { return float64(s.BackendsRefused) }},
		{name: "wasmgate_origins_refused_total", kind: counter, help: "WebSocket handshakes refused by server.allowed_origins.",
			node: func(s *Status) float64 { return float64(s.OriginsRefused) }},
		{name: "wasmgate_slow_consumers_total", kind: counter, help: "Clients closed (1008) for going over server.send_queue_size or send_queue_bytes.",
			node: func(s *Status) float64 { return float64(s.SlowConsumers) }},
		{name: "wasmgate_send_queue_dropped_total", kind: counter, help: "Messages dropped with a slow consumer's send queue, the refused send included.",
			node: func(s *Status) float64 { return float64(s.DroppedMessages) }},
		{name: "wasmgate_build_info", kind: gauge, help: "The running build (value 1).", labels: []string{"version"}},
		{name: "wasmgate_handshakes_total", kind: counter, labels: []string{"result"},
			help: "WebSocket handshakes by result: accepted, or the refusal's reason (the edge's, origin, invalid, handler, shutting_down, upgrade_failed)."},
		{name: "wasmgate_handshakes_refused_total", kind: counter, labels: []string{"reason"},
			help: "WebSocket handshakes refused by the edge limits (reason: the server key), or cut at server.handshake_timeout."},
		{name: "wasmgate_reloads_total", kind: counter, labels: []string{"result"},
			help: "Reloads of the handlers folder by result: ok, or failed (a module refused, or the folder unreadable)."},

		// Clients' traffic, by the module behind their route.
		{name: "wasmgate_connections", kind: gauge, labels: mod, help: "Connected WebSocket clients, by module."},
		{name: "wasmgate_messages_in_total", kind: counter, labels: mod, help: "Data messages received from clients, by module."},
		{name: "wasmgate_messages_out_total", kind: counter, labels: mod, help: "Data messages written to clients, by module."},
		{name: "wasmgate_bytes_in_total", kind: counter, labels: mod, help: "Payload bytes received from clients, by module."},
		{name: "wasmgate_bytes_out_total", kind: counter, labels: mod, help: "Payload bytes written to clients, by module (before compression)."},

		// Modules.
		{name: "wasmgate_events_total", kind: counter, labels: mod, help: "Guest calls made.",
			module: func(m *ModuleStatus) float64 { return float64(m.Events) }},
		{name: "wasmgate_traps_total", kind: counter, labels: mod, help: "Guest calls that trapped or broke the ABI.",
			module: func(m *ModuleStatus) float64 { return float64(m.Traps) }},
		{name: "wasmgate_timeouts_total", kind: counter, labels: mod, help: "Guest calls stopped at their deadline.",
			module: func(m *ModuleStatus) float64 { return float64(m.Timeouts) }},
		{name: "wasmgate_event_p50_seconds", kind: gauge, labels: mod, help: "Median guest call time since the module version loaded (histogram bucket edge).",
			module: func(m *ModuleStatus) float64 { return float64(m.EventP50) / 1e6 }},
		{name: "wasmgate_event_p99_seconds", kind: gauge, labels: mod, help: "99th percentile guest call time since the module version loaded (histogram bucket edge).",
			module: func(m *ModuleStatus) float64 { return float64(m.EventP99) / 1e6 }},
		{name: "wasmgate_quarantined", kind: gauge, labels: mod, help: "1 if the module is quarantined.",
			module: func(m *ModuleStatus) float64 { return bool01(m.Quarantined != "") }},
		{name: "wasmgate_instances", kind: gauge, labels: mod, help: "Live event instances.",
			module: func(m *ModuleStatus) float64 { return float64(m.Instances) }},
		{name: "wasmgate_busy_instances", kind: gauge, labels: mod, help: "Event instances running a call.",
			module: func(m *ModuleStatus) float64 { return float64(m.Busy) }},
		{name: "wasmgate_queued_events", kind: gauge, labels: mod, help: "Events waiting for an instance.",
			module: func(m *ModuleStatus) float64 { return float64(m.Queued) }},
		{name: "wasmgate_paused_readers", kind: gauge, labels: mod, help: "Callers paused because the event queue is full.",
			module: func(m *ModuleStatus) float64 { return float64(m.Paused) }},
		{name: "wasmgate_pauses_total", kind: counter, labels: mod, help: "Times a caller paused on a full event queue.",
			module: func(m *ModuleStatus) float64 { return float64(m.Pauses) }},
		{name: "wasmgate_tasks_running", kind: gauge, labels: mod, help: "on_task calls running.",
			module: func(m *ModuleStatus) float64 { return float64(m.TaskBusy) }},
		{name: "wasmgate_tasks_queued", kind: gauge, labels: mod, help: "Tasks waiting for a worker.",
			module: func(m *ModuleStatus) float64 { return float64(m.TaskQueued) }},
		{name: "wasmgate_tasks_total", kind: counter, labels: mod, help: "Tasks finished.",
			module: func(m *ModuleStatus) float64 { return float64(m.TasksDone) }},
		{name: "wasmgate_tasks_failed_total", kind: counter, labels: mod, help: "Tasks that failed, trapped or timed out.",
			module: func(m *ModuleStatus) float64 { return float64(m.TasksFail) }},
		{name: "wasmgate_timers", kind: gauge, labels: mod, help: "Pending timers.",
			module: func(m *ModuleStatus) float64 { return float64(m.Timers) }},
		{name: "wasmgate_timers_fired_total", kind: counter, labels: mod, help: "Timers delivered.",
			module: func(m *ModuleStatus) float64 { return float64(m.TimersRun) }},
		{name: "wasmgate_kv_keys", kind: gauge, labels: mod, help: "Keys in the module's key-value store.",
			module: func(m *ModuleStatus) float64 { return float64(m.KVKeys) }},
		{name: "wasmgate_kv_bytes", kind: gauge, labels: mod, help: "Bytes charged against kv_max_mb.",
			module: func(m *ModuleStatus) float64 { return float64(m.KVBytes) }},
		{name: "wasmgate_event_duration_seconds", kind: histogram, labels: []string{"module", "event"},
			help: "Guest call durations, by module and event."},

		// Push commands.
		{name: "wasmgate_push_command_duration_seconds", kind: histogram, labels: []string{"cmd"},
			help: "Push command durations (text port and HTTP API), by command."},
		{name: "wasmgate_push_commands_total", kind: counter, labels: []string{"cmd", "result"},
			help: "Push commands answered, by command and result (ok, failed)."},
		{name: "wasmgate_push_commands_failed_total", kind: counter, labels: []string{"cmd"},
			help: "Push commands answered ok:false, by command."},

		// The cluster (only in cluster mode).
		{name: "wasmgate_cluster_healthy", kind: gauge, help: "1 if Redis answers, the pub/sub connection is up and Redis holds this node's clients.",
			clusterValue: func(c *cluster.Status) float64 { return bool01(c.Healthy) }},
		{name: "wasmgate_cluster_redis_up", kind: gauge, help: "1 if the last heartbeat reached Redis.",
			clusterValue: func(c *cluster.Status) float64 { return bool01(c.Redis == "ok") }},
		{name: "wasmgate_cluster_nodes_alive", kind: gauge, help: "Nodes whose heartbeat the last heartbeat saw.",
			clusterValue: func(c *cluster.Status) float64 { return float64(len(c.NodesAlive)) }},
		{name: "wasmgate_cluster_channels", kind: gauge, help: "Redis channels this node is subscribed to.",
			clusterValue: func(c *cluster.Status) float64 { return float64(c.Channels) }},
		{name: "wasmgate_cluster_published_total", kind: counter, help: "Messages published for other nodes.",
			clusterValue: func(c *cluster.Status) float64 { return float64(c.Published) }},
		{name: "wasmgate_cluster_received_total", kind: counter, help: "Messages received from other nodes.",
			clusterValue: func(c *cluster.Status) float64 { return float64(c.Received) }},
		{name: "wasmgate_cluster_requests_total", kind: counter, help: "Changes sent to other nodes' clients.",
			clusterValue: func(c *cluster.Status) float64 { return float64(c.Requests) }},
		{name: "wasmgate_cluster_republished_total", kind: counter, help: "Times this node re-published its clients to Redis.",
			clusterValue: func(c *cluster.Status) float64 { return float64(c.Republished) }},
		{name: "wasmgate_cluster_swept_total", kind: counter, help: "Dead nodes' clients this node removed.",
			clusterValue: func(c *cluster.Status) float64 { return float64(c.Swept) }},
		{name: "wasmgate_cluster_redis_errors_total", kind: counter, help: "Failed Redis calls.",
			clusterValue: func(c *cluster.Status) float64 { return float64(c.RedisErrors) }},

		// The one Go series the runtime collector does not name as the
		// hand-written /metrics did (it has go_gc_cycles_total_gc_cycles_total).
		{name: "go_gc_cycles_total", kind: counter, help: "Number of completed GC cycles."},
	}
}

// statusCollector is a prometheus.Collector of seriesTable, read from one
// Status per scrape.
type statusCollector struct {
	status func() Status
	defs   []seriesDef
	descs  map[string]seriesDesc // by name
}

// seriesDesc is a series' descriptor and its sample type.
type seriesDesc struct {
	desc *prometheus.Desc
	typ  prometheus.ValueType // of a counter or gauge
}

func newStatusCollector(status func() Status) *statusCollector {
	c := &statusCollector{status: status, defs: seriesTable(), descs: map[string]seriesDesc{}}
	for _, d := range c.defs {
		typ := prometheus.GaugeValue
		if d.kind == counter {
			typ = prometheus.CounterValue
		}
		c.descs[d.name] = seriesDesc{prometheus.NewDesc(d.name, d.help, d.labels, nil), typ}
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d.desc
	}
}

// Collect implements prometheus.Collector: one Status, every series.
func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	for i := range c.defs {
		d := &c.defs[i]
		switch {
		case d.node != nil:
			c.emit(ch, d.name, d.node(&st))
		case d.module != nil:
			for j := range st.Modules {
				c.emit(ch, d.name, d.module(&st.Modules[j]), st.Modules[j].Module)
			}
		case d.clusterValue != nil && st.Cluster != nil:
			c.emit(ch, d.name, d.clusterValue(st.Cluster))
		}
	}
	c.emit(ch, "wasmgate_build_info", 1, st.Version)

	hs, hr := st.Handshakes, st.HandshakesRefused
	for _, r := range []struct {
		result string
		n      uint64
	}{
		{"accepted", hs.Accepted}, {"invalid", hs.Invalid}, {"origin", st.OriginsRefused}, {"handler", hs.Handler},
		{"shutting_down", hs.ShuttingDown}, {"upgrade_failed", hs.UpgradeFailed},
		{"ip_connections", hr.IPConnections}, {"ip_rate", hr.IPRate}, {"in_progress", hr.InProgress},
		{"ip_table_full", hr.IPTableFull}, {"max_connections", hr.MaxConnections}, {"timeout", hr.Timeout},
	} {
		c.emit(ch, "wasmgate_handshakes_total", float64(r.n), r.result)
	}
	for _, r := range []struct {
		reason string
		n      uint64
	}{
		{"ip_connections", hr.IPConnections}, {"ip_rate", hr.IPRate}, {"in_progress", hr.InProgress},
		{"ip_table_full", hr.IPTableFull}, {"max_connections", hr.MaxConnections}, {"timeout", hr.Timeout},
	} {
		c.emit(ch, "wasmgate_handshakes_refused_total", float64(r.n), r.reason)
	}
	c.emit(ch, "wasmgate_reloads_total", float64(st.ReloadTotals.OK), "ok")
	c.emit(ch, "wasmgate_reloads_total", float64(st.ReloadTotals.Failed), "failed")

	for module, t := range st.Traffic {
		c.emit(ch, "wasmgate_connections", float64(t.Connections), module)
		c.emit(ch, "wasmgate_messages_in_total", float64(t.MsgsIn), module)
		c.emit(ch, "wasmgate_messages_out_total", float64(t.MsgsOut), module)
		c.emit(ch, "wasmgate_bytes_in_total", float64(t.BytesIn), module)
		c.emit(ch, "wasmgate_bytes_out_total", float64(t.BytesOut), module)
	}
	for _, m := range st.Modules {
		for event, h := range m.Latency {
			c.emitHistogram(ch, "wasmgate_event_duration_seconds", h, m.Module, event)
		}
	}
	for _, cmd := range st.Commands {
		c.emitHistogram(ch, "wasmgate_push_command_duration_seconds", cmd.Latency, cmd.Name)
		c.emit(ch, "wasmgate_push_commands_total", float64(cmd.OK), cmd.Name, "ok")
		c.emit(ch, "wasmgate_push_commands_total", float64(cmd.Failed), cmd.Name, "failed")
		c.emit(ch, "wasmgate_push_commands_failed_total", float64(cmd.Failed), cmd.Name)
	}
	// runtime/metrics reads it without stopping the world (ReadMemStats
	// would).
	gc := []runtimemetrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	runtimemetrics.Read(gc)
	if gc[0].Value.Kind() == runtimemetrics.KindUint64 {
		c.emit(ch, "go_gc_cycles_total", float64(gc[0].Value.Uint64()))
	}
}

// emit sends one sample of the series name. A label value that is not
// UTF-8 (a module file's name may be anything) has its invalid bytes
// replaced: the exposition format allows only UTF-8.
func (c *statusCollector) emit(ch chan<- prometheus.Metric, name string, v float64, labels ...string) {
	d := c.desc(name)
	for i, l := range labels {
		labels[i] = strings.ToValidUTF8(l, "\uFFFD")
	}
	m, err := prometheus.NewConstMetric(d.desc, d.typ, v, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d.desc, err)
	}
	ch <- m
}

// emitHistogram sends s, a fixed-bucket histogram (internal/metrics), as a
// Prometheus histogram with cumulative buckets.
func (c *statusCollector) emitHistogram(ch chan<- prometheus.Metric, name string, s metrics.HistogramSnapshot, labels ...string) {
	desc := c.desc(name).desc
	for i, l := range labels {
		labels[i] = strings.ToValidUTF8(l, "\uFFFD")
	}
	bounds := metrics.BucketBounds()
	buckets := make(map[float64]uint64, len(bounds))
	var cum uint64
	for i, b := range bounds {
		if i < len(s.Counts) {
			cum += s.Counts[i]
		}
		buckets[b] = cum
	}
	m, err := prometheus.NewConstHistogram(desc, s.Count(), s.Sum, buckets, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(desc, err)
	}
	ch <- m
}

func (c *statusCollector) desc(name string) seriesDesc {
	d, ok := c.descs[name]
	if !ok {
		panic(fmt.Sprintf("metrics: series %s is not in seriesTable", name)) // a programming error: the tests emit every series
	}
	return d
}

// newMetricsHandler returns GET /metrics's handler: a private registry of
// status's series and the Go and process collectors, served by promhttp
// (text exposition unless the scraper asks for another, gzip if it
// accepts it).
func newMetricsHandler(status func() Status, log *slog.Logger) fasthttp.RequestHandler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newStatusCollector(status),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      promLog{log},
		ErrorHandling: promhttp.ContinueOnError, // a series that fails is logged, the rest served
	})
	return fasthttpadaptor.NewFastHTTPHandler(h)
}

// promLog is promhttp's error log on slog.
type promLog struct{ log *slog.Logger }

func (l promLog) Println(v ...any) {
	l.log.Warn("metrics: " + strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}

func (p *Ports) handleMetrics(ctx *fasthttp.RequestCtx) {
	if !p.admit(ctx, "") {
		return
	}
	p.metrics(ctx)
}
