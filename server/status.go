package server

import (
	"context"
	"os"
	"sort"
	"time"

	"github.com/wasmgate/wasmgate/internal/push"
)

// The node's status, which the HTTP API serves (internal/push) as GET
// /status and GET /metrics.

// Status is what GET /status answers (push.Status).
type Status = push.Status

// HandshakesRefused is Status's count of refusals by the edge limits.
type HandshakesRefused = push.HandshakesRefused

// ModuleStatus is one module's line in Status.
type ModuleStatus = push.ModuleStatus

// pushNode is what the push ports ask of the server beyond commands.
type pushNode struct{ s *Server }

func (n pushNode) Status() Status { return n.s.Status() }

func (n pushNode) Reload(ctx context.Context) (int, string) { return n.s.reloadSummary(ctx) }

// NewPublishBatch implements push.Node: a batch of this node's cluster
// publishes, nil on a single node.
func (n pushNode) NewPublishBatch() push.PublishBatch {
	if n.s.cluster == nil {
		return nil
	}
	return n.s.cluster.NewBatch()
}

// Status returns a snapshot of the node and of every loaded module.
func (s *Server) Status() Status {
	st := Status{NodeID: s.cfg.Server.NodeID, Clients: s.hub.Count(), Version: s.ops.version, PID: os.Getpid(),
		StartedAt: s.ops.started, Uptime: time.Since(s.ops.started).Seconds()}
	st.Uids, st.Groups = s.nodeCounts()
	st.Backends, st.BackendsRefused = s.push.Backends()
	st.OriginsRefused = s.originsRefused.Load()
	if s.cluster != nil {
		st.NodeID = s.cluster.ID()
		cs := s.cluster.Status()
		st.Cluster = &cs
	}
	st.HandshakesRefused = s.edge.refusedTotals()
	st.Handshakes = s.handshakes.totals()
	st.Traffic = s.traffic.totals()
	st.SlowConsumers, st.DroppedMessages = s.connOpt.SlowConsumers.Load(), s.connOpt.DroppedMessages.Load()
	st.ReloadTotals = push.ReloadTotals{OK: s.reloads.ok.Load(), Failed: s.reloads.failed.Load()}
	st.Reloads = s.history.list()
	routes := map[string][]string{}
	for path, r := range *s.routes.Load() {
		routes[r.module] = append(routes[r.module], path)
	}
	s.reloadMu.Lock()
	for name, slot := range s.slots {
		lm := slot.cur.Load()
		paths := routes[name]
		sort.Strings(paths)
		st.Modules = append(st.Modules, ModuleStatus{Stats: lm.mod.Stats(), SHA256: lm.sha, Routes: paths})
	}
	s.reloadMu.Unlock()
	sort.Slice(st.Modules, func(i, j int) bool { return st.Modules[i].Module < st.Modules[j].Module })
	return st
}
