package server

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/internal/handover"
)

// Restart without refusing anyone (docs/DEPLOY.md, internal/handover): a
// new process takes over the listening sockets and says it serves; then
// the old one stops accepting (Handoff), lets the handshakes it has begun
// finish, and closes its clients with 1012 (service restart) after
// delivering what they were sent, and they reconnect to the new one.

// ListenFunc opens the listener called name ("ws", "text" or "admin") on
// addr.
type ListenFunc func(name, addr string) (net.Listener, error)

// WithListen makes the server open its listeners with fn instead of
// net.Listen: a process started by a restart gets the old one's sockets
// that way (handover.Inherited.Listen).
func WithListen(fn ListenFunc) Option {
	return func(o *options) { o.listen = fn }
}

func (s *Server) useListen(fn ListenFunc) {
	if fn == nil {
		fn = func(_, addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
	}
	s.listen = fn
	s.push.UseListen(fn)
}

// ListenerFiles returns copies of the listening sockets (the WebSocket
// listener, and the text port and the admin listener when on) for a new
// process to take over. The caller closes them.
func (s *Server) ListenerFiles() ([]handover.Named, error) {
	lns := []struct {
		name string
		ln   net.Listener
	}{{"ws", s.rawLn}}
	for name, ln := range s.push.Listeners() {
		lns = append(lns, struct {
			name string
			ln   net.Listener
		}{name, ln})
	}
	var out []handover.Named
	for _, l := range lns {
		if l.ln == nil {
			continue
		}
		f, err := handover.File(l.ln)
		if err != nil {
			for _, n := range out {
				_ = n.File.Close()
			}
			return nil, fmt.Errorf("%s listener: %w", l.name, err)
		}
		out = append(out, handover.Named{Name: l.name, File: f})
	}
	return out, nil
}

// Handoff is Shutdown for a restart, once another process serves the same
// sockets: it stops accepting without closing the sockets (the other
// process holds them, so connections waiting in the kernel's queue go to
// it), disconnects the backends (they reconnect to the other process),
// lets the WebSocket handshakes already begun finish, then closes every
// client with 1012 (service restart) after what was queued for it, waiting
// until ctx ends for them to go. Single-node state (uids, groups,
// sessions, KV, timers) ends with this process.
func (s *Server) Handoff(ctx context.Context) error {
	if s.closing.Load() || s.handingOff.Swap(true) {
		return errors.New("handoff: the server is already stopping")
	}
	if s.rawLn != nil {
		// Closing our descriptor leaves the socket open in the new
		// process; fasthttp's Serve ends on it.
		_ = s.rawLn.Close()
		select {
		case <-s.served:
		case <-ctx.Done():
		}
	}
	s.push.Close(ctx)
	if s.http != nil {
		// closing is still false: the handshakes fasthttp accepted upgrade
		// as usual, and are closed below with the others.
		_ = s.http.ShutdownWithContext(ctx)
	}
	s.closing.Store(true)
	return s.shutdown(ctx, websocket.CloseServiceRestart, "service restart")
}

// closeFrame is the close code and reason for clients closed because the
// server stops.
func (s *Server) closeFrame() (int, string) {
	if s.handingOff.Load() {
		return websocket.CloseServiceRestart, "service restart"
	}
	return websocket.CloseGoingAway, "server shutting down"
}

// RestartFunc starts the process that takes over and returns its pid once
// it serves; the caller then hands off (Handoff).
type RestartFunc func(ctx context.Context) (pid int, err error)

// WithRestart serves POST /restart on the admin listener (`wasmgate
// restart`) with fn. Without it the endpoint answers 501.
func WithRestart(fn RestartFunc) Option {
	return func(o *options) { o.restart = fn }
}

// CanRestart says why this server cannot hand over to a new process, or
// nil. In cluster mode with a fixed node_id the new process would need the
// id the old one holds until it exits: it would wait out the old heartbeat
// and the restart would fail after its timeout. node_id = 0 (each process
// claims its own) restarts as on a single node.
func (s *Server) CanRestart() error {
	if s.cluster != nil && s.cfg.Server.NodeID != 0 {
		return fmt.Errorf("cluster mode with a fixed server.node_id (%d): the new process cannot take that id while this one holds it; set node_id = 0 to restart without refusals, or stop and start", s.cfg.Server.NodeID)
	}
	return nil
}

// Restart is POST /restart: it returns once the new process serves.
func (n pushNode) Restart(ctx context.Context) (int, string) {
	if n.s.restart == nil {
		return 501, "this server cannot restart itself (it runs inside another program, not `wasmgate start`)"
	}
	pid, err := n.s.restart(ctx)
	if err != nil {
		return 500, "restart failed, the running process keeps serving: " + err.Error()
	}
	return 200, fmt.Sprintf("restarted: the new process (pid %d) serves; this one closes its clients with 1012 and exits", pid)
}
