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
// transport.Conn.WatchLiveness ends a client that stays silent (no
// message, no pong) for server.idle_timeout.
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

// idleSweepEvery is how often the idle sweep runs (transport.Hub.SweepIdle):
// a reader that waited, after a message, for between one and two periods
// moves to a fresh goroutine and frees the stack its last guest call grew.
// Long enough that a client in conversation is never moved, short against
// how long real clients idle.
const idleSweepEvery = 10 * time.Second

// WithIdleSweep sets how often the idle sweep runs (default 10 s): a
// reader that waited, after handling a message, for between one and two
// such periods moves to a fresh goroutine with a small stack. Tests and
// benchmarks shorten it.
func WithIdleSweep(every time.Duration) Option {
	return func(o *options) { o.sweep = every }
}

// startIdleSweep runs the idle sweep until Shutdown.
func (s *Server) startIdleSweep() {
	s.stopSweep = make(chan struct{})
	go func() {
		tick := time.NewTicker(s.sweepEvery)
		defer tick.Stop()
		for {
			select {
			case <-s.stopSweep:
				return
			case <-tick.C:
				s.mem.stacksFreed(s.hub.SweepIdle(s.connOpt))
			}
		}
	}()
}
