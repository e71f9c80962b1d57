// Command notify is a wasmgate handler that greets every new client with
// {"type":"init","client_id":"…"} and ignores messages.
//
// If the module's config string (config = "…" under [modules.notify] in
// config.toml) is not empty, it is a token: a WebSocket upgrade request must
// carry ?token=<config> in its query or it is refused with 403.
package main

import "github.com/wasmgate/wasmgate/guest-examples/gateway"

// token is the required ?token= value, "" for none. Every instance gets it
// from on_start before any other event.
var token string

func init() {
	gateway.OnStart(func(config string) { token = config })
	gateway.OnHandshake(func(h gateway.Handshake) int {
		if token != "" && h.QueryValue("token") != token {
			return 403
		}
		return 0
	})
	gateway.OnConnect(func(c gateway.Client) {
		// Client ids are hex digits: no JSON escaping needed.
		c.SendString(`{"type":"init","client_id":"` + c.ID + `"}`)
	})
}

func main() {}
