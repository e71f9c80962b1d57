//go:build !wasm

package main

import (
	"unsafe"

	"github.com/wasmgate/wasmgate/guest-examples/gateway"
)

// hostTaskResult stands in for the import on a non-wasm target (vet,
// editors), failing as the SDK's stand-ins do.
func hostTaskResult(p unsafe.Pointer, n uint32) int32 { return -int32(gateway.ErrnoInternal) }
