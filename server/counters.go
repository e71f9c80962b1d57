package server

import (
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
// delete at close, under one mutex; a scrape holds it while it sums the
// live connections (microseconds per thousand), so that a connection
// leaving mid-scrape is counted once: a counter never steps back.
type traffic struct {
	mu     sync.Mutex
	live   map[*transport.Conn]struct{}
	closed map[string]transport.Traffic // by module: the connections gone
}

func newTraffic() *traffic {
	return &traffic{live: map[*transport.Conn]struct{}{}, closed: map[string]transport.Traffic{}}
}

// track counts c from now on; call retire once it is finished.
func (t *traffic) track(c *transport.Conn) {
	t.mu.Lock()
	t.live[c] = struct{}{}
	t.mu.Unlock()
}

// retire moves c's final counts to its module's total. Call it after
// c.Finish, when nothing more is read or written.
func (t *traffic) retire(c *transport.Conn) {
	tr := c.Traffic()
	t.mu.Lock()
	delete(t.live, c)
	sum := t.closed[c.Module()]
	sum.Add(tr)
	t.closed[c.Module()] = sum
	t.mu.Unlock()
}

// totals returns, by module, the live connections and the traffic of
// every connection since start.
func (t *traffic) totals() map[string]push.ModuleTraffic {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]push.ModuleTraffic, len(t.closed)+1)
	for module, tr := range t.closed {
		out[module] = push.ModuleTraffic{Traffic: tr}
	}
	for c := range t.live {
		m := out[c.Module()]
		m.Connections++
		m.Traffic.Add(c.Traffic())
		out[c.Module()] = m
	}
	return out
}
