package server

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/abi"
)

// nopHandler accepts every client and ignores its events.
type nopHandler struct{}

func (nopHandler) OnHandshake(context.Context, *abi.Handshake) (int, error) { return 0, nil }
func (nopHandler) OnConnect(context.Context, string) error                  { return nil }
func (nopHandler) OnMessage(context.Context, string, abi.Message) error     { return nil }
func (nopHandler) OnClose(context.Context, string) error                    { return nil }

// TestConn_RawWritePathReachableThroughTheUpgrade: a client upgraded by
// the real server (fasthttp hijack, then the frame guard) must get the raw
// non-blocking write path on Linux. Wrapping the socket in the frame guard
// once hid it from newConn, so every push went through a writer goroutine
// while the unit tests, built on bare TCP connections, saw nothing wrong.
func TestConn_RawWritePathReachableThroughTheUpgrade(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Server.Listen, cfg.Push.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Server.HandlersDir = t.TempDir()
	srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), WithHandler("/x", nopHandler{}))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr().String()+"/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	conn := onlyClient(t, srv)
	if !conn.DirectWrites() {
		t.Fatal("no raw writer: the socket is hidden under a wrapper, so every send goes to a writer goroutine")
	}
}
