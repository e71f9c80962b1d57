package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/wasmgate/wasmgate/internal/handover"
	"github.com/wasmgate/wasmgate/server"
)

// Restarts without refusing anyone (docs/DEPLOY.md). SIGUSR2 or `wasmgate
// restart` (POST /restart on the admin listener) make the running process
// start the binary on disk with the same arguments, handing it the
// listening sockets (internal/handover). Once the new process has loaded
// its modules and serves, the old one tells systemd the new main pid, stops
// accepting, closes its clients with 1012 after what was queued for them,
// and exits. If the new process fails, the old one keeps serving.
//
// Goroutines: the SIGUSR2 watcher, and the restart itself, run on their
// own; a restart runs at a time (restarter.mu), and a successful one hands
// the new pid to start's main loop through restarter.done.

const (
	// restartReadyTimeout bounds the wait for the new process to load its
	// modules and serve.
	restartReadyTimeout = 2 * time.Minute
	// stopTimeout bounds how long a stopping process delivers what its
	// clients were sent and waits for their close events.
	stopTimeout = 10 * time.Second
)

type restarter struct {
	args []string // the start command's own arguments, for the new process
	log  *slog.Logger
	srv  *server.Server // set once started
	mu   sync.Mutex     // held by the restart under way
	done chan int       // the new process's pid, once it serves
	over bool           // guarded by mu: handed over, nothing more to do
}

func newRestarter(args []string, log *slog.Logger) *restarter {
	return &restarter{args: args, log: log, done: make(chan int, 1)}
}

// restart starts the new process and waits until it serves. It is
// server.RestartFunc.
func (r *restarter) restart(ctx context.Context) (int, error) {
	if !r.mu.TryLock() {
		return 0, errors.New("a restart is already under way")
	}
	defer r.mu.Unlock()
	if r.over {
		return 0, errors.New("this process has already handed over")
	}
	if err := r.srv.CanRestart(); err != nil {
		return 0, err
	}
	exe, err := os.Executable() // the binary on disk now, even if replaced since we started
	if err != nil {
		return 0, fmt.Errorf("finding the wasmgate binary: %w", err)
	}
	files, err := r.srv.ListenerFiles()
	if err != nil {
		return 0, err
	}
	defer func() {
		for _, f := range files {
			_ = f.File.Close()
		}
	}()
	r.log.Info("restart: starting the new process", "binary", exe)
	ctx, cancel := context.WithTimeout(ctx, restartReadyTimeout)
	defer cancel()
	child, err := handover.Start(ctx, exe, r.args, files)
	if err != nil {
		r.log.Error("restart failed; this process keeps serving", "err", err)
		return 0, err
	}
	// systemd must follow the new process before this one exits, or it
	// would take the unit as stopped (NotifyAccess=main allows the main
	// process to name its successor).
	if ok, err := handover.Notify(fmt.Sprintf("MAINPID=%d\nREADY=1", child.Pid)); err != nil {
		r.log.Warn("restart: telling systemd the new main pid", "err", err)
	} else if ok {
		r.log.Info("restart: told systemd the new main pid", "pid", child.Pid)
	}
	r.over = true
	r.done <- child.Pid
	return child.Pid, nil
}

// handOff closes the old process once the new one (pid) serves.
func handOff(srv *server.Server, pid int, log *slog.Logger) int {
	log.Info("restart: the new process serves; closing clients with 1012 (service restart)", "new_pid", pid, "clients", srv.Status().Clients)
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := srv.Handoff(ctx); err != nil {
		log.Error("handoff", "err", err)
		return 1
	}
	log.Info("handed over", "new_pid", pid)
	return 0
}

// restartCmd asks the running gateway, through its admin listener, to
// restart, and returns once the new process serves.
func restartCmd(cfg server.Config, stdout, stderr io.Writer) int {
	return postAdmin(cfg, "restart", "SIGUSR2", restartReadyTimeout+30*time.Second, stdout, stderr)
}
