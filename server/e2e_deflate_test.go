package server_test

import (
	"encoding/binary"
	"testing"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/server"
)

// TestDeflate_BombRefusedCanaryServed: compressed messages that inflate
// far past max_message_size (32 MiB of zeros each, 32 KiB on the wire —
// under the websocket package's read limit, which counts wire bytes) are
// refused with 1009 as they inflate, without the server holding the
// inflated bytes, while a canary on another route keeps being answered.
func TestDeflate_BombRefusedCanaryServed(t *testing.T) {
	dir := handlersWith(t, "echo", "c-echo")
	srv := startServer(t, dir, func(c *server.Config) {
		c.Modules = map[string]server.ModuleConfig{"c-echo": {Deflate: true}}
	})
	canary := srv.startCanary(t, "/echo")
	bomb := zframe(opBinary, make([]byte, 32<<20))
	if len(bomb) > server.DefaultConfig().Server.MaxMessageSize {
		t.Fatalf("the bomb is %d bytes on the wire: over max_message_size, it would not test the inflated bound", len(bomb))
	}
	before := rssBytes()
	for i := range 20 {
		c := dialRaw(t, srv.Addr().String(), "/c-echo", "permessage-deflate")
		if c.ext == "" {
			t.Fatal("deflate not negotiated")
		}
		if _, err := c.nc.Write(bomb); err != nil {
			t.Fatal(err)
		}
		st := &confState{}
		for st.closed == nil {
			c.next(st, true)
		}
		if code := binary.BigEndian.Uint16(st.closed.payload); code != websocket.CloseMessageTooBig || len(st.msgs) != 0 {
			t.Fatalf("bomb %d: close code %d after %d messages, want 1009 and none", i, code, len(st.msgs))
		}
		c.nc.Close()
	}
	if grew := rssBytes() - before; before > 0 && grew > 256<<20 {
		t.Errorf("RSS grew by %d MiB over 20 bombs of 32 MiB inflated", grew>>20)
	}
	canary.check()
}
