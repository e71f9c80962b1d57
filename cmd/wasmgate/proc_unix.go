//go:build unix

package main

import (
	"errors"
	"syscall"
)

// processAlive reports whether a process with this pid exists (signal 0
// probes without sending; EPERM means it exists under another user).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// terminate asks the process to stop gracefully (SIGTERM, which `start`
// handles like `wasmgate stop`).
func terminate(pid int) error { return syscall.Kill(pid, syscall.SIGTERM) }
