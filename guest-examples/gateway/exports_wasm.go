//go:build wasm

//lint:file-ignore U1000 staticcheck misses some //go:wasmexport functions; the host calls them

package gateway

// The guest exports of ABI.md §3. They are exported whenever this package is
// linked; an event without a registered callback is accepted and ignored.

//go:wasmexport wasmgate_abi_version
func exportABIVersion() int32 { return ABIVersion }

//go:wasmexport wasmgate_buffer
func exportBuffer(minSize uint32) uint32 {
	return uint32(uintptr(growInbuf(minSize)))
}

//go:wasmexport on_start
func exportOnStart(configLen uint32) int32 { return handleStart(configLen) }

//go:wasmexport on_handshake
func exportOnHandshake(reqLen uint32) int32 { return handleHandshake(reqLen) }

//go:wasmexport on_connect
func exportOnConnect(idLen uint32) int32 { return handleConnect(idLen) }

//go:wasmexport on_message
func exportOnMessage(idLen, msgLen, flags uint32) int32 {
	return handleMessage(idLen, msgLen, flags)
}

//go:wasmexport on_close
func exportOnClose(idLen uint32) int32 { return handleClose(idLen) }

//go:wasmexport on_task
func exportOnTask(taskID int64, payloadLen uint32) int32 { return handleTask(taskID, payloadLen) }

//go:wasmexport on_finish
func exportOnFinish(taskID int64, resultLen uint32, status int32) int32 {
	return handleFinish(taskID, resultLen, status)
}

//go:wasmexport on_timer
func exportOnTimer(timerID int64, payloadLen uint32) int32 { return handleTimer(timerID, payloadLen) }
