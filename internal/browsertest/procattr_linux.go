package browsertest

import "syscall"

// ChildAttr makes a child process (Chromium, and the test's gateway and
// backend) die with the test process, even when that is killed: no
// orphaned browser or gateway keeps a port or a CPU.
func ChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
