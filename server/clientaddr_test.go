package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/abi"
)

// addrHandler records the remote_addr of each handshake.
type addrHandler struct{ seen chan string }

func (h addrHandler) OnHandshake(_ context.Context, hs *abi.Handshake) (int, error) {
	h.seen <- hs.RemoteAddr
	return 0, nil
}
func (addrHandler) OnConnect(context.Context, string) error              { return nil }
func (addrHandler) OnMessage(context.Context, string, abi.Message) error { return nil }
func (addrHandler) OnClose(context.Context, string) error                { return nil }

// TestHandshake_TrustedProxies: the remote_addr a handler sees comes from
// X-Forwarded-For only when the peer is a trusted proxy.
func TestHandshake_TrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		trusted []string
		xff     string
		want    string // "" = the peer's own 127.0.0.1:port
	}{
		{nil, "198.51.100.7", ""},
		{[]string{"10.0.0.0/8"}, "198.51.100.7", ""},
		{[]string{"127.0.0.0/8"}, "198.51.100.7", "198.51.100.7:0"},
		{[]string{"127.0.0.1"}, "6.6.6.6, 198.51.100.7", "198.51.100.7:0"},
	} {
		cfg := DefaultConfig()
		cfg.Server.Listen, cfg.Push.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		cfg.Server.HandlersDir = t.TempDir()
		cfg.Server.TrustedProxies = tc.trusted
		h := addrHandler{seen: make(chan string, 1)}
		srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), WithHandler("/x", h))
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr().String()+"/x", http.Header{"X-Forwarded-For": {tc.xff}})
		if err != nil {
			t.Fatal(err)
		}
		got := <-h.seen
		ws.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = srv.Shutdown(ctx)
		cancel()
		want := tc.want
		if want == "" {
			want = ws.LocalAddr().String()
		}
		if got != want {
			t.Errorf("trusted %v, X-Forwarded-For %q: remote_addr %s, want %s", tc.trusted, tc.xff, got, want)
		}
	}
}
