package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The pid file (server.pid_file): `wasmgate start` writes its process id
// there and removes the file at exit; `status` and `stop` read it to tell
// "not running" from "running but not answering" and to spot a stale file
// (one naming a process that is gone: a crash, a kill -9, a reboot).

// readPIDFile returns the pid the file names; os.ErrNotExist if there is
// no file.
func readPIDFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s holds %q, not a process id", path, strings.TrimSpace(string(b)))
	}
	return pid, nil
}

// claimPIDFile writes this process's id to path, refusing while the file
// names another live process, unless that is replacing (the process this
// one takes over from, for a restart; 0 for none). A stale file is
// replaced, and stale reports the pid it named (0 if none). The write is
// atomic (a temporary file renamed over it), so a reader never sees half
// a pid.
//
// Hook for `wasmgate restart`: the new process calls claimPIDFile with
// the old one's pid as replacing, and the old one's removePIDFile then
// leaves the file alone, since it no longer names the old process.
func claimPIDFile(path string, replacing int) (stale int, err error) {
	if pid, err := readPIDFile(path); err == nil {
		if pid != os.Getpid() && pid != replacing && processAlive(pid) {
			return 0, fmt.Errorf("server.pid_file %s names pid %d, which is running: is wasmgate already started? (`wasmgate stop` stops it)", path, pid)
		}
		if pid != os.Getpid() && pid != replacing {
			stale = pid
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		stale = -1 // unreadable content: replaced, and said so
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".wasmgate-pid-*")
	if err != nil {
		return 0, fmt.Errorf("server.pid_file: %w", err)
	}
	_, werr := fmt.Fprintf(tmp, "%d\n", os.Getpid())
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return 0, fmt.Errorf("server.pid_file: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		_ = os.Remove(tmp.Name())
		return 0, fmt.Errorf("server.pid_file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		_ = os.Remove(tmp.Name())
		return 0, fmt.Errorf("server.pid_file: %w", err)
	}
	return stale, nil
}

// removePIDFile removes path if it still names this process: after a
// restart it names the new one, which must keep it.
func removePIDFile(path string) error {
	pid, err := readPIDFile(path)
	if err != nil || pid != os.Getpid() {
		return nil
	}
	return os.Remove(path)
}

// pidState describes what the pid file says for the CLI: "" when no pid
// file is configured, else one sentence. running reports a live process.
func pidState(path string) (pid int, running bool, state string) {
	if path == "" {
		return 0, false, ""
	}
	pid, err := readPIDFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return 0, false, "no pid file " + path
	case err != nil:
		return 0, false, err.Error()
	case processAlive(pid):
		return pid, true, fmt.Sprintf("pid file %s: pid %d is running", path, pid)
	default:
		return pid, false, fmt.Sprintf("stale pid file %s: pid %d is not running (wasmgate exited without removing it: crashed, killed or the machine restarted)", path, pid)
	}
}
