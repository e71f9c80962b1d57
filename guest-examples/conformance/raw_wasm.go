//go:build wasm

package main

import "unsafe"

// hostTaskResult is the raw task_result import (see rawTaskResult).
//
//go:wasmimport wasmgate task_result
func hostTaskResult(p unsafe.Pointer, n uint32) int32
