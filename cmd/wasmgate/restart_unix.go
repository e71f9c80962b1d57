//go:build unix

package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// restartOnUSR2 restarts on every SIGUSR2 until ctx ends.
func restartOnUSR2(ctx context.Context, r *restarter) {
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	go func() {
		defer signal.Stop(usr2)
		for {
			select {
			case <-ctx.Done():
				return
			case <-usr2:
				_, _ = r.restart(ctx) // logs its outcome
			}
		}
	}()
}
