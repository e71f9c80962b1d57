package server

import (
	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/internal/transport"
	"github.com/wasmgate/wasmgate/runtime"
)

// quarantined is the runtime's OnQuarantine hook. If m is still the
// serving version of its module, every client connected through it is
// closed with 1011 (the handler can no longer serve them); new handshakes
// already get 503 from the module itself. The runtime quarantines only a
// module failing on most of its calls (runtime/crash.go), and lifts it
// after runtime.quarantine_cooldown; a reload lifts it at once.
func (s *Server) quarantined(m *runtime.Module, reason string) {
	s.reloadMu.Lock()
	slot := s.slots[m.Name()]
	current := slot != nil && slot.cur.Load().mod == m
	s.reloadMu.Unlock()
	if !current {
		return
	}
	n := 0
	s.hub.Each(func(c *transport.Conn) {
		if c.Module() == m.Name() && c.Close(nil, websocket.CloseInternalServerErr, "handler quarantined") == nil {
			n++
		}
	})
	s.log.Error("module quarantined: clients closed with 1011, handshakes refused with 503 until the cool-down ends or it is reloaded",
		"module", m.Name(), "reason", reason, "clients", n, "cooldown", s.cfg.Runtime.QuarantineCooldown)
}
