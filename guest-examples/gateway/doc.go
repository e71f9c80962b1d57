// Package gateway is the Go SDK for writing wasmgate event handlers: Go
// programs compiled to WebAssembly that the wasmgate server runs for every
// event of its WebSocket clients.
//
// A handler is a main package that registers callbacks from an init function
// and has an empty main:
//
//	package main
//
//	import "github.com/wasmgate/wasmgate/guest-examples/gateway"
//
//	func init() {
//		gateway.OnMessage(func(c gateway.Client, msg []byte) {
//			c.Reply(msg) // echo, as text or binary like the message
//		})
//	}
//
//	func main() {}
//
// Build it as a WASI reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o echo.wasm .
//
// With -buildmode=c-shared the Go runtime runs package initialisers when the
// host calls _initialize, but it never calls main; register callbacks from
// init. The package avoids reflection, encoding/json and fmt so that it also
// builds with TinyGo (-target=wasip1 -buildmode=c-shared).
//
// # Instances
//
// The server runs a pool of instances of each module and may deliver the
// events of one client to different instances, so package-level variables
// are per instance, not per client: keep per-client state in the session
// ([Client.SetSession], [Client.UpdateSession], [Client.Session]). An instance
// handles one event at a time, so callbacks need no locking.
//
// # Memory
//
// The message passed to an OnMessage callback points into a buffer that the
// next event overwrites: it is valid only during the callback. Copy it to keep
// it. Everything else the package returns (client ids, lists, sessions) is a
// copy the caller owns.
//
// # Errors
//
// Functions that call the host return an [Errno] on failure; compare with
// errors.Is or ==, e.g. err == gateway.ErrnoNotFound. A callback that panics
// is recovered: the panic is logged through the host and the event returns a
// non-zero result (on_handshake refuses with 500; on_start fails the
// instance).
package gateway
