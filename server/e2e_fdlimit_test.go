package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/server"
)

// fdChildEnv carries the handlers folder to the child process of
// TestFDExhaustion_ListenersRecover; set, the test runs as that child.
const fdChildEnv = "WASMGATE_FD_CHILD_HANDLERS"

// The child's open-file limit and headroom: 192 clients at most.
const (
	fdChildLimit    = 256
	fdChildHeadroom = 64
)

// TestFDExhaustion_ListenersRecover is the adversarial run's fd exhaustion,
// small: a child process with a hard RLIMIT_NOFILE of 256 (Go raises the
// soft limit to the hard one at start, so the hard one is lowered) is
// flooded with bare TCP connects until accept fails with EMFILE on every
// listener. Once the flood is gone, new WebSocket clients, backends and
// /healthz must be served again, and a canary connected before must have
// been answered throughout. Before the fix, fasthttp's Serve and the text
// port's accept loop returned on the first EMFILE, for good.
func TestFDExhaustion_ListenersRecover(t *testing.T) {
	if dir := os.Getenv(fdChildEnv); dir != "" {
		fdChild(t, dir)
		return
	}
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs Linux")
	}
	child := startTestChild(t, 3*time.Minute, "TestFDExhaustion_ListenersRecover", fdChildEnv+"="+handlersWith(t, "echo"))
	stdout, logs := child.stdout, child.logs

	var wsAddr, textAddr, adminAddr string
	var maxConns int
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err == nil {
			_, err = fmt.Sscanf(line, "READY %s %s %s %d", &wsAddr, &textAddr, &adminAddr, &maxConns)
		}
		ready <- err
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("child did not start: %v\n%s", err, logs.String())
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("child did not start within 90s\n%s", logs.String())
	}
	if want := fdChildLimit - fdChildHeadroom; maxConns != want || !strings.Contains(logs.String(), "max_connections lowered") {
		t.Errorf("effective max_connections = %d, want %d, logged as lowered\n%s", maxConns, want, logs.String())
	}

	ts := &testServer{url: "ws://" + wsAddr}
	canary := ts.startCanary(t, "/echo")
	waitCanary(t, canary)

	// The flood: bare connects that send nothing, more than the child has
	// descriptors. The kernel completes them into the backlog whether or
	// not the child can accept.
	var flood []net.Conn
	defer func() {
		for _, nc := range flood {
			nc.Close()
		}
	}()
	dial := func(addr string) {
		nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("flood dial %s: %v", addr, err)
		}
		flood = append(flood, nc)
	}
	for i := 0; i < 2*fdChildLimit; i++ {
		dial(wsAddr)
	}
	waitLog(t, logs, "the WebSocket listener to run out of descriptors", func(line string) bool { return true })
	// One connect on each backend port while no descriptor is left: each
	// accept loop meets EMFILE too.
	dial(textAddr)
	dial(adminAddr)
	waitLog(t, logs, "the text port to run out of descriptors", func(line string) bool { return strings.Contains(line, "text") })
	waitLog(t, logs, "the admin listener to run out of descriptors", func(line string) bool { return strings.Contains(line, "admin") })
	for _, nc := range flood {
		nc.Close()
	}
	flood = nil

	// Everyone may come back.
	deadline := time.Now().Add(60 * time.Second)
	try := func(what string, f func() error) {
		t.Helper()
		for {
			err := f()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s after the flood: %v\n%s", what, err, logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	try("a new WebSocket client", func() error {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+wsAddr+"/echo", nil)
		if err != nil {
			return err
		}
		defer ws.Close()
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := ws.WriteMessage(1, []byte("back")); err != nil {
			return err
		}
		_, got, err := ws.ReadMessage()
		if err == nil && string(got) != "back" {
			err = fmt.Errorf("echo %q", got)
		}
		return err
	})
	try("a backend on the text port", func() error {
		nc, err := net.DialTimeout("tcp", textAddr, 5*time.Second)
		if err != nil {
			return err
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(nc, `{"id":1,"cmd":"ping"}`+"\n"); err != nil {
			return err
		}
		line, err := bufio.NewReader(nc).ReadString('\n')
		if err == nil && !strings.Contains(line, "pong") {
			err = fmt.Errorf("ping answered %q", line)
		}
		return err
	})
	try("/healthz", func() error {
		c := http.Client{Timeout: 5 * time.Second}
		r, err := c.Get("http://" + adminAddr + "/healthz")
		if err != nil {
			return err
		}
		r.Body.Close()
		if r.StatusCode != http.StatusOK {
			return fmt.Errorf("HTTP %d", r.StatusCode)
		}
		return nil
	})
	canary.check()
}

// waitLog waits up to 60 s for a log line about running out of
// descriptors for which match holds.
func waitLog(t *testing.T, logs *syncBuffer, what string, match func(line string) bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "too many open files") && match(line) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s\n%s", what, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fdChild is the child process: a server under a 256-descriptor limit,
// announcing its addresses on stdout and stopping when stdin closes.
func fdChild(t *testing.T, dir string) {
	lim := syscall.Rlimit{Cur: fdChildLimit, Max: fdChildLimit}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("setrlimit: %v", err)
	}
	cfg := server.DefaultConfig()
	cfg.Server.Listen, cfg.Push.Listen, cfg.Admin.Listen = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Server.HandlersDir = dir
	cfg.Server.FDHeadroom = fdChildHeadroom
	cfg.Runtime.PoolSize = 2
	cfg.Runtime.EventTimeout.Duration = 5 * time.Second
	cfg.Runtime.CacheDir = filepath.Join(os.TempDir(), "wasmgate-test-cache")
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := server.New(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("READY %s %s %s %d\n", srv.Addr(), srv.TextAddr(), srv.AdminAddr(), srv.MaxConnections())
	_, _ = io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
}
