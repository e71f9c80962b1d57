package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/server"
)

// guestDir is where `make guests` puts the example handlers.
const guestDir = "../handlers"

// exampleGuests are the modules `make guests` builds into ../handlers from
// guest-examples/. A test naming one gets that build, never a fixture of
// the same name: runtime/testdata has a WAT echo too, and silently testing
// it instead of the Go guest would hide a missing build.
var exampleGuests = map[string]bool{"echo": true, "chat": true, "notify": true, "tasks": true, "rust-echo": true, "rust-chat": true, "c-echo": true, "c-chat": true, "presence": true, "c-presence": true, "rust-presence": true, "as-echo": true, "as-chat": true}

// readGuest reads the module called name: an example guest from
// handlers (../handlers in tests), a WAT fixture from ../runtime/testdata.
func readGuest(handlers, name string) ([]byte, error) {
	if exampleGuests[name] {
		data, err := os.ReadFile(filepath.Join(handlers, name+".wasm"))
		if err != nil {
			return nil, fmt.Errorf("example guest %s not built (run `make guests`): %w", name, err)
		}
		return data, nil
	}
	data, err := os.ReadFile(filepath.Join("..", "runtime", "testdata", name+".wasm"))
	if err != nil {
		return nil, fmt.Errorf("fixture %s: %w", name, err)
	}
	return data, nil
}

// handlersWith copies the named modules (example guests from ../handlers,
// fixtures from ../runtime/testdata) into a fresh folder. A missing example
// guest fails the test: run `make guests`.
func handlersWith(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range names {
		data, err := readGuest(guestDir, name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".wasm"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestHarness_MissingExampleGuestFailsLoudly checks that a test asking for
// an example guest that was not built fails with a hint, instead of
// quietly getting runtime/testdata's WAT echo of the same name.
func TestHarness_MissingExampleGuestFailsLoudly(t *testing.T) {
	empty := t.TempDir()
	for name := range exampleGuests {
		_, err := readGuest(empty, name)
		if err == nil || !strings.Contains(err.Error(), "make guests") {
			t.Errorf("%s missing from handlers: err %v, want one naming `make guests`", name, err)
		}
	}
	if _, err := readGuest(empty, "echoA"); err != nil { // fixtures do not need the build
		t.Errorf("fixture echoA: %v", err)
	}
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testServer struct {
	*server.Server
	url  string
	logs *syncBuffer
	// dialer dials url's clients; nil is websocket.DefaultDialer (a wss://
	// server sets one that trusts its certificate).
	dialer *websocket.Dialer
}

// wsDialer is the dialer of the server's clients.
func (s *testServer) wsDialer() *websocket.Dialer {
	if s.dialer != nil {
		return s.dialer
	}
	return websocket.DefaultDialer
}

// startServer runs a real server on 127.0.0.1:0 serving the modules in dir,
// and stops it when the test ends.
func startServer(t *testing.T, dir string, edit func(*server.Config), opts ...server.Option) *testServer {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Push.Listen = "127.0.0.1:0"
	cfg.Admin.Listen = "127.0.0.1:0"
	cfg.Server.HandlersDir = dir
	cfg.Runtime.PoolSize = 4
	// Generous: a loaded CI machine must not turn slow events into traps.
	cfg.Runtime.EventTimeout.Duration = 5 * time.Second
	// Compiling a Go guest takes seconds under -race; share compiled code
	// between tests and runs (wazero writes cache files atomically).
	cfg.Runtime.CacheDir = filepath.Join(os.TempDir(), "wasmgate-test-cache")
	if edit != nil {
		edit(&cfg)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(io.MultiWriter(logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(context.Background(), cfg, log, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &testServer{Server: srv, url: "ws://" + srv.Addr().String(), logs: logs}
}

// wsClient is a test WebSocket client. A goroutine reads every frame into
// a channel, so a test can wait for a message with a timeout without
// breaking the connection (a websocket read that times out cannot be retried).
type wsClient struct {
	t    *testing.T
	ws   *websocket.Conn
	in   chan frame
	done chan struct{}
}

type frame struct {
	typ  int
	data []byte
	err  error // the read error that ended the connection, last on in
}

func (s *testServer) dial(t *testing.T, path string) *wsClient {
	t.Helper()
	ws, resp, err := s.wsDialer().Dial(s.url+path, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", path, err, status)
	}
	c := &wsClient{t: t, ws: ws, in: make(chan frame, 4096), done: make(chan struct{})}
	go c.readAll()
	t.Cleanup(func() { ws.Close(); <-c.done })
	return c
}

func (c *wsClient) readAll() {
	defer close(c.done)
	for {
		typ, data, err := c.ws.ReadMessage()
		c.in <- frame{typ, data, err}
		if err != nil {
			return
		}
	}
}

func (c *wsClient) send(typ int, data []byte) {
	c.t.Helper()
	if err := c.ws.WriteMessage(typ, data); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *wsClient) sendText(s string) { c.t.Helper(); c.send(websocket.TextMessage, []byte(s)) }

func (c *wsClient) sendJSON(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.send(websocket.TextMessage, b)
}

// next waits up to d for the next frame; ok is false on timeout.
func (c *wsClient) next(d time.Duration) (frame, bool) {
	select {
	case f := <-c.in:
		return f, true
	case <-time.After(d):
		return frame{}, false
	}
}

func (c *wsClient) read() (int, []byte) {
	c.t.Helper()
	f, ok := c.next(5 * time.Second)
	if !ok {
		c.t.Fatal("read: no message within 5s")
	}
	if f.err != nil {
		c.t.Fatalf("read: %v", f.err)
	}
	return f.typ, f.data
}

// readJSON reads one message and decodes it as a JSON object.
func (c *wsClient) readJSON() map[string]any {
	c.t.Helper()
	_, data := c.read()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		c.t.Fatalf("message %q is not a JSON object: %v", data, err)
	}
	return m
}

// expectType reads one message and checks its "type".
func (c *wsClient) expectType(typ string) map[string]any {
	c.t.Helper()
	m := c.readJSON()
	if m["type"] != typ {
		c.t.Fatalf("got %v, want type %q", m, typ)
	}
	return m
}

// expectSilence asserts nothing arrives within d.
func (c *wsClient) expectSilence(d time.Duration) {
	c.t.Helper()
	if f, ok := c.next(d); ok {
		c.t.Fatalf("unexpected frame %q (err %v)", f.data, f.err)
	}
}

// expectClose skips messages until the connection ends and returns the
// close code the server sent.
func (c *wsClient) expectClose() int {
	c.t.Helper()
	for {
		f, ok := c.next(5 * time.Second)
		if !ok {
			c.t.Fatal("connection still open after 5s")
		}
		if f.err == nil {
			continue
		}
		if ce, ok := f.err.(*websocket.CloseError); ok {
			return ce.Code
		}
		c.t.Fatalf("connection ended without a close frame: %v", f.err)
	}
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testChild is this test binary run again as the child process of one
// test: an environment variable tells the child which part to play. It
// stops when its stdin closes.
type testChild struct {
	stdin  io.WriteCloser
	stdout io.Reader
	logs   *syncBuffer // its stderr
	exited chan error  // its exit, once
	cmd    *exec.Cmd
}

// startTestChild runs the test named test in a child process (this test
// binary) with env added to the environment, killed after limit. When the
// test ends, the child's stdin is closed and it is given 30 s to exit; a
// failed exit fails the test.
func startTestChild(t *testing.T, limit time.Duration, test string, env ...string) *testChild {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env...)
	c := &testChild{logs: &syncBuffer{}, exited: make(chan error, 1), cmd: cmd}
	cmd.Stderr = c.logs
	var err error
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if c.stdout, err = cmd.StdoutPipe(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { c.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		defer cancel()
		c.stdin.Close() // the child shuts down on EOF
		select {
		case err := <-c.exited:
			if err != nil {
				t.Errorf("child: %v\n%s", err, c.logs.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("child did not stop within 30s")
		}
	})
	return c
}
