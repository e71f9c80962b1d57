package server

import "time"

// Liveness: a peer that vanished without closing (a laptop lid shut, a NAT
// that forgot the mapping) would otherwise hold its connection, uid and
// groups forever. The server pings every client every server.ping_interval
// from one goroutine (no timer per connection), browsers answer with pongs,
// and a reader whose client has sent nothing, not even a pong, for
// server.idle_timeout gets a read timeout and ends like any close.

// startPings runs the ping sweep until Shutdown.
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
				s.hub.each(func(c *conn) { c.ping() })
			}
		}
	}()
}

// watchLiveness arms the idle deadline and extends it on every pong.
func (s *Server) watchLiveness(c *conn) {
	if s.cfg.Server.IdleTimeout.Duration <= 0 {
		return
	}
	s.touch(c)
	c.ws.SetPongHandler(func(string) error { s.touch(c); return nil })
}

// touch pushes the idle deadline out. It rearms the timer only when a
// quarter of the timeout has passed, so a busy client does not pay a
// deadline update per message. Only the reader calls it.
func (s *Server) touch(c *conn) {
	idle := s.cfg.Server.IdleTimeout.Duration
	if idle <= 0 {
		return
	}
	now := time.Now()
	if now.Sub(c.deadlineSetAt) < idle/4 {
		return
	}
	if !c.isClosing() { // a close in progress has its own, shorter deadline
		c.deadlineSetAt = now
		_ = c.ws.SetReadDeadline(now.Add(idle))
	}
}
