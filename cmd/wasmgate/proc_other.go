//go:build !unix

package main

import (
	"errors"
	"os"
)

// processAlive reports whether a process with this pid exists.
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	_ = p.Release()
	return true
}

// terminate is not available here: stop goes through the admin listener.
func terminate(int) error {
	return errors.New("stopping by signal needs a Unix system; set admin.listen and use `wasmgate stop`")
}
