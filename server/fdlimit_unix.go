//go:build linux || darwin

package server

import "syscall"

// openFileLimit returns the process's RLIMIT_NOFILE soft limit (Go raises it
// to the hard limit at start), or 0 if it cannot be read or is unlimited.
func openFileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == ^uint64(0) {
		return 0
	}
	return rl.Cur
}
