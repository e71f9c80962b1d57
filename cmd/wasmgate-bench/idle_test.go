package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/server"
)

// liveServer starts a server with module (from make guests' handlers)
// that pings every 50 ms and ends a client silent for 200 ms; it is shut
// down when the test ends.
func liveServer(t *testing.T, module string) *server.Server {
	t.Helper()
	dir, err := copyModules("../../handlers", []string{module})
	if dir != "" {
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
	}
	if err != nil {
		t.Fatal(err)
	}
	srv, err := startServer(dir, 2, time.Second, 0, "", [2]string{}, "", "", "", liveness{ping: 50 * time.Millisecond, idle: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return srv
}

// TestHeldClientsAnswerPingsAndCountDrops runs the hold phase's clients
// (idle -send-one) against a real server whose idle_timeout would end any
// client that did not answer its pings: they get their echo, stay
// connected over several idle timeouts, and a server shutdown is counted
// as drops.
func TestHeldClientsAnswerPingsAndCountDrops(t *testing.T) {
	srv := liveServer(t, "echo")

	const n = 20
	h := &heldClients{}
	conns, err := openIdle("ws://"+srv.Addr().String()+"/echo", n, h.echoThenRead)
	defer func() { h.closing.Store(true); closeAll(conns) }()
	if err != nil {
		t.Fatal(err)
	}
	if got := h.noEcho.Load(); got != 0 {
		t.Fatalf("%d clients got no echo", got)
	}
	// Ten pings each span more than two idle timeouts.
	waitFor(t, "10 pings answered per client", func() bool { return h.pings.Load() >= 10*n })
	if open, dropped := h.open.Load(), h.dropped.Load(); open != n || dropped != 0 {
		t.Fatalf("after the pings: %d open, %d dropped (first: %v), want %d open", open, dropped, h.firstDrop.Load(), n)
	}
	if got := srv.Status().Clients; got != n {
		t.Fatalf("server counts %d clients, want %d", got, n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every client counted as dropped", func() bool { return h.dropped.Load() == n })
	if h.open.Load() != 0 || h.firstDrop.Load() == nil {
		t.Fatalf("after shutdown: %d open, first drop %v", h.open.Load(), h.firstDrop.Load())
	}
}

// waitFor polls cond until it holds, failing after a generous bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 30 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
