package server

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/wasmgate/wasmgate/internal/push"
	"github.com/wasmgate/wasmgate/internal/transport"
)

// Counters behind /metrics that the server keeps itself (the modules',
// the edge's and the connections' own are read where they live). Every
// one is a plain atomic added to once per handshake, per reload or per
// connection, never per message: Status reads them, and GET /metrics
// reads Status at scrape time (internal/push/metrics.go).

// handshakeCounts counts handshake outcomes beyond the edge's refusals
// and the origin policy's (push.Handshakes).
type handshakeCounts struct {
	accepted, invalid, handler, shuttingDown, upgradeFailed atomic.Uint64
}

func (h *handshakeCounts) totals() push.Handshakes {
	return push.Handshakes{
		Accepted: h.accepted.Load(), Invalid: h.invalid.Load(), Handler: h.handler.Load(),
		ShuttingDown: h.shuttingDown.Load(), UpgradeFailed: h.upgradeFailed.Load(),
	}
}

// reloadCounts counts Reload's results (push.ReloadTotals).
type reloadCounts struct{ ok, failed atomic.Uint64 }

// traffic totals the clients' messages and bytes by module. Each
// connection counts its own traffic (transport.Conn's counters, which the
// reader and the writer add to anyway); traffic only remembers which
// connections are live and what the gone ones had sent and received, so
// that a scrape adds the two. Tracking costs a map insert at connect and a
// delete at close under one shard's mutex. A scrape holds each shard's
// mutex while it sums that shard (19,000 clients: about a millisecond in
// all, 1/64 of it per hold), so a connection leaving mid-scrape is counted
// once, in its shard's live set or in its closed total: every shard's sum
// only grows, and so does their total.
type traffic struct {
	seed   maphash.Seed
	shards [trafficShards]trafficShard
}

const trafficShards = 64

type trafficShard struct {
	mu     sync.Mutex
	live   map[*transport.Conn]struct{}
	closed map[string]transport.Traffic // by module: the connections gone
}

func newTraffic() *traffic {
	t := &traffic{seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].live = map[*transport.Conn]struct{}{}
		t.shards[i].closed = map[string]transport.Traffic{}
	}
	return t
}

func (t *traffic) shard(c *transport.Conn) *trafficShard {
	return &t.shards[maphash.String(t.seed, c.ID())%trafficShards]
}

// track counts c from now on; call retire once it is finished.
func (t *traffic) track(c *transport.Conn) {
	s := t.shard(c)
	s.mu.Lock()
	s.live[c] = struct{}{}
	s.mu.Unlock()
}

// retire moves c's final counts to its module's total. Call it after
// c.Finish, when nothing more is read or written.
func (t *traffic) retire(c *transport.Conn) {
	tr := c.Traffic()
	s := t.shard(c)
	s.mu.Lock()
	delete(s.live, c)
	sum := s.closed[c.Module()]
	sum.Add(tr)
	s.closed[c.Module()] = sum
	s.mu.Unlock()
}

// totals returns, by module, the live connections and the traffic of
// every connection since start.
func (t *traffic) totals() map[string]push.ModuleTraffic {
	out := map[string]push.ModuleTraffic{}
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for module, tr := range s.closed {
			m := out[module]
			m.Traffic.Add(tr)
			out[module] = m
		}
		for c := range s.live {
			m := out[c.Module()]
			m.Connections++
			m.Traffic.Add(c.Traffic())
			out[c.Module()] = m
		}
		s.mu.Unlock()
	}
	return out
}
