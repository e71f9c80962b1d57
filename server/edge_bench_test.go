package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkHandshake: WebSocket handshakes per second (dial, upgrade,
// close) against a native handler, with the edge limits off and on (on:
// every limit set but none reached, so the figure is the bookkeeping's
// cost). Run with a fixed -benchtime (e.g. 3000x): each handshake leaves
// a socket in TIME_WAIT.
func BenchmarkHandshake(b *testing.B) {
	for _, mode := range []struct {
		name string
		edit func(*Config)
	}{
		{"limits=off", func(c *Config) {
			c.Server.MaxConnectionsPerIP, c.Server.HandshakeRatePerIP = 0, 0
			c.Server.MaxHandshakesInProgress, c.Server.HandshakeTimeout.Duration = 0, 0
		}},
		{"limits=on", func(c *Config) {
			c.Server.MaxConnectionsPerIP = 1_000_000
			c.Server.HandshakeRatePerIP, c.Server.HandshakeBurstPerIP = 100_000_000, 100_000_000
		}},
	} {
		b.Run(mode.name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Server.Listen, cfg.Push.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
			cfg.Server.HandlersDir = b.TempDir()
			mode.edit(&cfg)
			srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), WithHandler("/x", nopHandler{}))
			if err != nil {
				b.Fatal(err)
			}
			if err := srv.Start(); err != nil {
				b.Fatal(err)
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = srv.Shutdown(ctx)
			}()
			url := "ws://" + srv.Addr().String() + "/x"
			cpu0 := cpuTime()
			b.ResetTimer()
			for range b.N {
				ws, _, err := websocket.DefaultDialer.Dial(url, nil)
				if err != nil {
					b.Fatal(err)
				}
				ws.Close()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
			// CPU of the whole process (client and server) per handshake:
			// steadier than wall time on a shared machine.
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/handshake")
		})
	}
}

// fakeConn is a socket for the bookkeeping benchmark: only its address is
// read.
type fakeConn struct {
	net.Conn
	addr *net.TCPAddr
}

func (c *fakeConn) RemoteAddr() net.Addr { return c.addr }

// BenchmarkEdgeBookkeeping: the edge's own cost per handshake with every
// limit on but none reached (accept, admit, upgrade, release), from
// 1024 addresses.
func BenchmarkEdgeBookkeeping(b *testing.B) {
	cfg := DefaultConfig().Server
	cfg.HandshakeRatePerIP, cfg.HandshakeBurstPerIP = 100_000_000, 100_000_000 // on, never reached
	e := newEdge(cfg, nil, slog.New(slog.DiscardHandler))
	conns := make([]*fakeConn, 1024)
	for i := range conns {
		conns[i] = &fakeConn{addr: &net.TCPAddr{IP: net.IPv4(10, 0, byte(i>>8), byte(i)), Port: 1000 + i}}
	}
	b.ResetTimer()
	for i := range b.N {
		c := conns[i%len(conns)]
		if !e.accept(c) {
			b.Fatal("refused")
		}
		if st, _ := e.admit(c, c.addr.AddrPort().Addr()); st != 0 {
			b.Fatal("refused", st)
		}
		key, _ := e.upgraded(c)
		e.releaseIP(key)
	}
}
