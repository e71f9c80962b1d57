package nativeecho_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/cmd/wasmgate-bench/nativeecho"
	"github.com/wasmgate/wasmgate/server"
)

// TestRoundTrip serves the native echo on a real server and checks that a
// binary and a text message come back unchanged and with their type.
func TestRoundTrip(t *testing.T) {
	echo := &nativeecho.Echo{}
	cfg := server.DefaultConfig()
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Push.Listen = "127.0.0.1:0"
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Server.HandlersDir = t.TempDir() // no modules: only the native route
	srv, err := server.New(context.Background(), cfg, nil, server.WithHandler("/native-echo", echo))
	if err != nil {
		t.Fatal(err)
	}
	echo.Gateway = srv.Gateway()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})

	ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr().String()+"/native-echo", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for _, sent := range []struct {
		typ  int
		data []byte
	}{
		{websocket.BinaryMessage, []byte{0, 1, 2, 0xff}},
		{websocket.TextMessage, []byte("héllo")},
	} {
		if err := ws.WriteMessage(sent.typ, sent.data); err != nil {
			t.Fatalf("write: %v", err)
		}
		typ, got, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if typ != sent.typ || !bytes.Equal(got, sent.data) {
			t.Fatalf("got type %d %q, want type %d %q", typ, got, sent.typ, sent.data)
		}
	}
}
