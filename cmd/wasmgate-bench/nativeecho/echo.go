// Package nativeecho is an echo handler written in Go against the same
// server.Handler interface as the WASM modules. It exists only to compare
// with the WASM echo behind the same interface (cmd/wasmgate-bench), and for
// tests; it is not a way to write production handlers.
package nativeecho

import (
	"context"
	"fmt"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/server"
)

// Echo sends every message back to its sender unchanged: text as text,
// binary as binary. Gateway must be set before the server starts serving;
// it only exists once server.New has returned, so build the Echo first,
// pass it to server.WithHandler, then set Gateway from Server.Gateway().
type Echo struct {
	Gateway *server.Gateway
}

var _ server.Handler = (*Echo)(nil)

// OnHandshake accepts every upgrade.
func (e *Echo) OnHandshake(context.Context, *abi.Handshake) (int, error) { return 0, nil }

// OnConnect does nothing.
func (e *Echo) OnConnect(context.Context, string) error { return nil }

// OnClose does nothing.
func (e *Echo) OnClose(context.Context, string) error { return nil }

// OnMessage queues a copy of msg for its sender: the server reuses the read
// buffer once OnMessage returns.
func (e *Echo) OnMessage(ctx context.Context, clientID string, msg abi.Message) error {
	data := make([]byte, len(msg.Data))
	copy(data, msg.Data)
	if err := e.Gateway.SendToClient(ctx, clientID, abi.Message{Data: data, Binary: msg.Binary}); err != nil {
		return fmt.Errorf("native echo to %s: %w", clientID, err)
	}
	return nil
}
