package server

import (
	"time"

	"github.com/wasmgate/wasmgate/internal/transport"
)

// startPings runs the liveness sweep until Shutdown: every client is pinged
// every server.ping_interval from this one goroutine (no timer per
// connection); transport.Conn.WatchLiveness ends a client that stays
// silent for server.idle_timeout.
func (s *Server) startPings() {
	interval := s.cfg.Server.PingInterval.Duration
	if interval <= 0 {
		return
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
				s.hub.Each((*transport.Conn).Ping)
			}
		}
	}()
}
