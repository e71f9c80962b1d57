// Package abi is the fixed, versioned contract between wasmgate and its
// WebAssembly event handlers. It names the guest exports the host calls, the
// host functions a guest may import, their signatures, the error codes and the
// encoding of lists. ABI.md in this folder is the human-readable version of
// the same contract; the two must agree.
//
// This package imports only the standard library: guest SDKs, the runtime and
// tools can all depend on it.
package abi

// Version is the ABI version this host implements. A guest declares the
// version it was built for by exporting ExportABIVersion; the host refuses a
// module whose version differs.
const Version = 1

// HostModule is the import module name of every wasmgate host function.
const HostModule = "wasmgate"

// WASIModule is the only other import module a guest may use. Standard Go
// guests (GOOS=wasip1) need it to start; they are given a clock, random bytes
// and stdout/stderr, and nothing else.
const WASIModule = "wasi_snapshot_preview1"

// Guest exports.
const (
	// ExportMemory is the guest's linear memory. Required.
	ExportMemory = "memory"
	// ExportABIVersion is `wasmgate_abi_version() -> i32`. Required.
	ExportABIVersion = "wasmgate_abi_version"
	// ExportBuffer is `wasmgate_buffer(min_size i32) -> i32`: return the
	// address of a guest-owned region of at least min_size bytes that stays
	// valid until the next call. The host writes event input there. Required.
	ExportBuffer = "wasmgate_buffer"
	// ExportOnStart is `on_start(config_len i32) -> i32`, called once per
	// instance with the module's config string in the buffer. Optional.
	ExportOnStart = "on_start"
	// ExportOnHandshake is `on_handshake(req_len i32) -> i32`, called before
	// the WebSocket upgrade with a list (see EncodeList) in the buffer:
	// client_id, method, path, query, remote_addr, then header name/value
	// pairs. It returns 0 to accept or an HTTP status (400..599) to refuse.
	// Optional.
	ExportOnHandshake = "on_handshake"
	// ExportOnConnect is `on_connect(id_len i32) -> i32`. Optional.
	ExportOnConnect = "on_connect"
	// ExportOnMessage is `on_message(id_len i32, msg_len i32, flags i32) ->
	// i32`; the buffer holds the client id followed by the message. Required.
	ExportOnMessage = "on_message"
	// ExportOnClose is `on_close(id_len i32) -> i32`, always the last event
	// of a client. Optional.
	ExportOnClose = "on_close"
	// ExportOnTask is `on_task(task_id i64, payload_len i32) -> i32`, run on
	// an instance of the module's task pool with the payload given to the
	// task host function in the buffer. It hands its result back with
	// task_result and returns 0 on success. Optional; needed to use task.
	ExportOnTask = "on_task"
	// ExportOnFinish is `on_finish(task_id i64, result_len i32, status i32)
	// -> i32`, run on a normal instance once a task ends, with the task's
	// result (or, on failure, an error text) in the buffer. status is one of
	// the TaskStatus codes. Optional; needed to use task.
	ExportOnFinish = "on_finish"
	// ExportOnTimer is `on_timer(timer_id i64, payload_len i32) -> i32`,
	// run when a timer set with set_timer fires, with its payload in the
	// buffer. Optional; needed to use set_timer.
	ExportOnTimer = "on_timer"
	// ExportInitialize is the WASI reactor initialiser (`_initialize`) that
	// Go and C reactors export; the host runs it before anything else.
	ExportInitialize = "_initialize"
)

// Message flags, passed to on_message and to every host function that sends.
const (
	// FlagBinary marks a binary frame; without it a message is a text frame.
	FlagBinary uint32 = 1 << 0
	// FlagOnly makes send_to_all deliver only to the clients in its only
	// list, even when that list is empty.
	FlagOnly uint32 = 1 << 1
)

// CloseCodeShift places a WebSocket close code in close_client's flags:
// bits 16–31 hold it, 0 meaning 1000 (a normal close). A module built
// before close codes existed passes 0 there, so the flag is additive.
const CloseCodeShift = 16

// CloseCodeNormal is the code of a normal close (RFC 6455 §7.4.1).
const CloseCodeNormal = 1000

// CloseCodeOK reports whether a handler or a backend may close a client
// with code: 0 or 1000 (normal) or the application range 4000–4999. The
// browser client wasmgate.js treats 4000–4099 as final: it does not
// reconnect after them. The other codes are the server's own (1001 going
// away, 1008 slow consumer, 1011 handler failing, 1012 restart) or
// protocol errors, which an application must not fake.
func CloseCodeOK(code int) bool {
	return code == 0 || code == CloseCodeNormal || code >= 4000 && code <= 4999
}

// TaskStatus is the status on_finish receives.
const (
	// TaskOK: on_task returned 0; the buffer holds what it passed to
	// task_result (possibly nothing).
	TaskOK int32 = 0
	// TaskFailed: on_task returned non-zero; the buffer holds its result, if
	// it set one.
	TaskFailed int32 = 1
	// TaskCrashed: on_task trapped, ran past the task deadline, or could not
	// run (the module was removed or quarantined); the buffer holds the
	// host's error text.
	TaskCrashed int32 = 2
)

// KV flags for kv_cas.
const (
	// KVAbsent makes kv_cas expect the key to be absent (its old value is
	// ignored): "set if not exists".
	KVAbsent uint32 = 1 << 0
)

// Log levels for the log host function.
const (
	LogDebug int32 = 0
	LogInfo  int32 = 1
	LogWarn  int32 = 2
	LogError int32 = 3
)
