//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDeploy_SystemdUnitVerifies: deploy/wasmgate.service passes
// `systemd-analyze verify` without a warning, and keeps what the gateway
// needs: Type=notify, reload on SIGHUP, a descriptor limit, and no
// MemoryDenyWriteExecute (wazero's compiler maps code writable, then
// executable).
func TestDeploy_SystemdUnitVerifies(t *testing.T) {
	unit, err := os.ReadFile(filepath.Join("..", "..", "deploy", "wasmgate.service"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nType=notify\n", "\nNotifyAccess=main\n", "\nExecReload=/bin/kill -HUP $MAINPID\n", "\nLimitNOFILE="} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(want))
		}
	}
	if regexp.MustCompile(`(?m)^\s*MemoryDenyWriteExecute\s*=\s*(yes|true|1|on)`).Match(unit) {
		t.Error("MemoryDenyWriteExecute=yes stops wazero from compiling modules")
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (`make systemd-analyze` installs it): the unit was not verified")
	}
	// verify checks that ExecStart's binary exists: point it at this one.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "wasmgate.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/wasmgate", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	// verify exits 0 on an unknown key or a bad value, and only says so.
	if err != nil || strings.Contains(string(out), "wasmgate.service") {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestDeploy_SdNotifyReadyAndMainPidOnRestart: under systemd (a
// NOTIFY_SOCKET), the gateway sends READY=1 once it serves; on SIGUSR2 the
// main process names the new one with MAINPID= (NotifyAccess=main allows
// only the main process to) before it exits, and the new process, now the
// main one, sends STOPPING=1 when stopped.
func TestDeploy_SdNotifyReadyAndMainPidOnRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// SO_PASSCRED: each datagram carries its sender's pid, as systemd sees it.
	raw, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_PASSCRED, 1) })
	if err != nil {
		t.Fatal(err)
	}
	next := func() (int, string) {
		t.Helper()
		buf, oob := make([]byte, 1024), make([]byte, 1024)
		_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			t.Fatalf("no sd_notify message: %v", err)
		}
		msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) == 0 {
			t.Fatalf("no credentials with the message: %v", err)
		}
		cred, err := syscall.ParseUnixCredentials(&msgs[0])
		if err != nil {
			t.Fatal(err)
		}
		return int(cred.Pid), string(buf[:n])
	}

	g := startGateway(t, buildWasmgate(t), "", []string{"NOTIFY_SOCKET=" + sock}, "echo")
	if pid, msg := next(); pid != g.cmd.Process.Pid || msg != "READY=1" {
		t.Fatalf("first message %q from pid %d, want READY=1 from %d", msg, pid, g.cmd.Process.Pid)
	}
	if err := g.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	pid, msg := next()
	var newPid int
	if _, err := fmt.Sscanf(msg, "MAINPID=%d\nREADY=1", &newPid); err != nil || pid != g.cmd.Process.Pid || newPid == pid {
		t.Fatalf("after SIGUSR2: %q from pid %d, want MAINPID=<new pid>\\nREADY=1 from %d", msg, pid, g.cmd.Process.Pid)
	}
	g.newPid.Store(int64(newPid))
	select {
	case err := <-g.exited:
		if err != nil {
			t.Errorf("the old process exited with %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the old process did not exit")
	}
	g.waitHealthy(t) // the new process serves the same admin listener
	if err := syscall.Kill(newPid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if pid, msg := next(); pid != newPid || msg != "STOPPING=1" {
		t.Fatalf("on SIGTERM: %q from pid %d, want STOPPING=1 from the new main process %d", msg, pid, newPid)
	}
}
