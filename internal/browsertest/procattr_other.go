//go:build !linux

package browsertest

import "syscall"

// ChildAttr is nil where the parent's death cannot be tied to the child's.
func ChildAttr() *syscall.SysProcAttr { return nil }
