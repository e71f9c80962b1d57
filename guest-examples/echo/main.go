// Command echo is a wasmgate handler that sends every message back to its
// sender unchanged: text as text, binary as binary.
package main

import "github.com/wasmgate/wasmgate/guest-examples/gateway"

func init() {
	gateway.OnMessage(func(c gateway.Client, msg []byte) {
		c.Reply(msg)
	})
}

func main() {}
