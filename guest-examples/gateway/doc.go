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
// # Shared state, tasks and timers
//
// [KV] is the module's key-value store, shared by all its instances:
// counters, rate limits ([KVStore.Incr] with a TTL) and small state that
// must outlive an instance. It survives hot reloads, not server restarts.
//
// [Task] hands slow work to the module's task instances, which have a
// longer deadline and serve no client: register [OnTask] to do the work and
// [OnFinish] to act on its result (for example, send it to the client that
// asked: see guest-examples/tasks). [SetTimer] arms a one-shot timer that
// fires [OnTimer]. Tasks and timers belong to the module: they run in
// whichever version is current when they run, even after a reload.
//
// Every Go handler exports on_task, on_finish and on_timer; Task and
// SetTimer return [ErrnoUnsupported] when their callback is not registered.
//
// # Memory
//
// The message passed to an OnMessage callback, like the payload or result
// passed to OnTask, OnFinish and OnTimer callbacks, points into a buffer
// that the next event overwrites: it is valid only during the callback. Copy
// it to keep it. Everything else the package returns (client ids, lists, sessions) is a
// copy the caller owns.
//
// # Errors
//
// Functions that call the host return an [Errno] on failure; compare with
// errors.Is or ==, e.g. err == gateway.ErrnoNotFound. A callback that panics
// is recovered: the panic is logged through the host and the event returns a
// non-zero result (on_handshake refuses with 500; on_start fails the
// instance; an OnTask callback's task ends with TaskFailed).
package gateway
