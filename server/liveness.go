package server

import (
	"time"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/internal/transport"
)

// startPings runs the liveness sweep until Shutdown: every client is pinged
// every server.ping_interval from this one goroutine (no timer per
// connection), and sent server.ping_data, if set, as a text message (for
// clients that cannot see WebSocket pings: GatewayWorker's pingData);
// the sweep (startSweep) ends a client that stays silent (no message, no
// pong) for server.idle_timeout.
func (s *Server) startPings() {
	interval := s.cfg.Server.PingInterval.Duration
	if interval <= 0 {
		return
	}
	ping := func(c *transport.Conn) { c.Ping() }
	if s.cfg.Server.PingData != "" {
		// One buffer shared by every send: it is never written to.
		msg := abi.Message{Data: []byte(s.cfg.Server.PingData)}
		ping = func(c *transport.Conn) {
			c.Ping()
			// Behind the client's pending fan-out, written from here if
			// its socket takes it at once; a full queue closes it as any
			// send would.
			_ = s.hub.SendOrdered(c, msg, true, false)
		}
	}
	s.stopPings = make(chan struct{})
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-s.stopPings:
				return
			case <-tick.C:
				s.hub.Each(ping)
			}
		}
	}()
}

// idleSweepEvery is how often the sweep runs (transport.Hub.Sweep), at
// most: it ends clients silent for server.idle_timeout, so it runs at
// least four times per idle_timeout (a silent client is ended between
// idle_timeout and 1.25 times it), and it moves a reader that waited,
// after a message, for between one and two periods to a fresh goroutine,
// which frees the stack its last guest call grew. Long enough that a
// client in conversation is never moved, short against how long real
// clients idle.
const idleSweepEvery = 10 * time.Second

// WithIdleSweep sets how often the sweep runs (default: 10 s, or a quarter
// of server.idle_timeout if that is shorter). Tests and benchmarks shorten
// it.
func WithIdleSweep(every time.Duration) Option {
	return func(o *options) { o.sweep = every }
}

// sweepPeriod is how often the sweep runs: every (WithIdleSweep; 0: the
// default), never more than a quarter of idle (0: no idle limit).
func sweepPeriod(every, idle time.Duration) time.Duration {
	if every <= 0 {
		every = idleSweepEvery
	}
	if idle > 0 && idle/4 < every {
		every = max(idle/4, time.Millisecond)
	}
	return every
}

// startSweep runs the sweep until Shutdown.
func (s *Server) startSweep() {
	s.stopSweep = make(chan struct{})
	go func() {
		tick := time.NewTicker(s.connOpt.SweepEvery)
		defer tick.Stop()
		for {
			select {
			case <-s.stopSweep:
				return
			case <-tick.C:
				r := s.hub.Sweep(s.connOpt)
				if r.Moved > 0 || r.Expired > 0 {
					s.log.Debug("sweep", "readers_moved", r.Moved, "idle_expired", r.Expired)
				}
				s.mem.stacksFreed(r.Moved)
			}
		}
	}()
}
