//go:build !unix

package main

import "context"

// restartOnUSR2 does nothing where there is no SIGUSR2: `wasmgate
// restart` still works through the admin listener.
func restartOnUSR2(context.Context, *restarter) {}
