package cluster_test

// The cluster tests run real wasmgate processes (the binary built from
// cmd/wasmgate) against a real redis-server (internal/redistest), and talk
// to them as browsers and backends do: WebSocket, the text port and the
// HTTP API, all on loopback.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// wasmgateBin builds cmd/wasmgate once per test binary.
func wasmgateBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wasmgate-cluster-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "wasmgate")
		out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/wasmgate").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// handlersDir returns a folder with the chat example and the counter test
// module. The chat example comes from make guests; a missing one fails
// loudly rather than skipping.
func handlersDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	chat, err := os.ReadFile("../../handlers/chat.wasm")
	if err != nil {
		t.Fatalf("the chat example is not built (%v): run make guests (make test does)", err)
	}
	counter, err := os.ReadFile("testdata/counter.wasm")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"chat.wasm": chat, "counter.wasm": counter} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// node is one wasmgate process.
type node struct {
	t        *testing.T
	name     string
	cfgPath  string
	ws, text string // host:port
	admin    string
	cmd      *exec.Cmd
	logs     *lockedBuffer
	done     chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// clusterOpts are the [cluster] and node settings of a test node.
type clusterOpts struct {
	nodeID    uint32
	nodeTTL   string
	heartbeat string
}

// startNode starts a wasmgate process joined to the cluster on redisURL
// and waits until its HTTP API answers.
func startNode(t *testing.T, name, redisURL, handlers string, o clusterOpts) *node {
	t.Helper()
	n := newNode(t, name, redisURL, handlers, o)
	n.start()
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			t.Logf("node %s (%s) logs:\n%s", n.name, n.ws, n.logs)
		}
	})
	return n
}

// newNode writes a node's config without starting it.
func newNode(t *testing.T, name, redisURL, handlers string, o clusterOpts) *node {
	t.Helper()
	if o.nodeTTL == "" {
		o.nodeTTL = "3s"
	}
	if o.heartbeat == "" {
		o.heartbeat = "250ms"
	}
	// Port 0 everywhere: the node logs the addresses it got (start reads
	// them), so no two processes can race for a port picked in advance.
	n := &node{t: t, name: name, ws: "127.0.0.1:0", text: "127.0.0.1:0", admin: "127.0.0.1:0"}
	dir := t.TempDir()
	n.cfgPath = filepath.Join(dir, "config.toml")
	cfg := fmt.Sprintf(`
[server]
listen = %q
handlers_dir = %q
node_id = %d
watch_handlers = false

[runtime]
pool_size = 2
event_timeout = "5s"
cache_dir = %q

[push]
listen = %q

[admin]
listen = %q

[cluster]
redis = %q
node_ttl = %q
heartbeat = %q
timeout = "1s"

[modules.chat]
config = "rate_limit=0"
`, n.ws, handlers, o.nodeID, filepath.Join(os.TempDir(), "wasmgate-test-cache"), n.text, n.admin, redisURL, o.nodeTTL, o.heartbeat)
	if err := os.WriteFile(n.cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return n
}

// run runs the node in the foreground until it exits (at most d) and
// returns its output.
func (n *node) run(d time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	out, err := exec.CommandContext(ctx, wasmgateBin(n.t), "start", "-c", n.cfgPath).CombinedOutput()
	return string(out), err
}

func (n *node) start() {
	t := n.t
	t.Helper()
	n.logs = &lockedBuffer{}
	n.cmd = exec.Command(wasmgateBin(t), "start", "-c", n.cfgPath)
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.done = make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-n.done:
			t.Fatalf("node %s exited at start:\n%s", n.name, n.logs)
		default:
		}
		logs := n.logs.String()
		n.ws, n.text, n.admin = logAddr(logs, "listening"), logAddr(logs, `"text port listening"`), logAddr(logs, `"HTTP API listening"`)
		if n.admin == "" {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if resp, err := http.Get("http://" + n.admin + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s did not answer /healthz within 60 s:\n%s", n.name, n.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logAddr finds the address a "msg=<msg> addr=<addr>" log line gives.
func logAddr(logs, msg string) string {
	m := regexp.MustCompile(`msg=` + regexp.QuoteMeta(msg) + ` addr=(\S+)`).FindStringSubmatch(logs)
	if m == nil {
		return ""
	}
	return m[1]
}

// stop ends the process gracefully (SIGTERM), then kills it.
func (n *node) stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	began := time.Now()
	defer func() { n.t.Logf("node %s stopped in %v", n.name, time.Since(began).Round(time.Millisecond)) }()
	select {
	case <-n.done:
	case <-time.After(15 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

// kill ends the process with SIGKILL: no goodbye to Redis.
func (n *node) kill() {
	_ = n.cmd.Process.Kill()
	<-n.done
}

// health returns the /healthz body.
func (n *node) health() map[string]any {
	resp, err := http.Get("http://" + n.admin + "/healthz")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return m
}

// clusterStatus returns the "cluster" object of GET /status.
func (n *node) clusterStatus() map[string]any {
	resp, err := http.Get("http://" + n.admin + "/status")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	c, _ := m["cluster"].(map[string]any)
	return c
}

// metrics returns GET /metrics.
func (n *node) metrics() string {
	resp, err := http.Get("http://" + n.admin + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (n *node) healthy() bool {
	h := n.health()
	return h != nil && h["healthy"] == true
}

// api calls POST /api/<cmd> and returns the decoded answer.
func (n *node) api(cmd string, args map[string]any) map[string]any {
	n.t.Helper()
	if args == nil {
		args = map[string]any{}
	}
	body, _ := json.Marshal(args)
	resp, err := http.Post("http://"+n.admin+"/api/"+cmd, "application/json", bytes.NewReader(body))
	if err != nil {
		n.t.Fatalf("%s /api/%s: %v", n.name, cmd, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		n.t.Fatalf("%s /api/%s: %v: %s", n.name, cmd, err, raw)
	}
	return m
}

// result calls api and returns the result of a successful call.
func (n *node) result(cmd string, args map[string]any) any {
	n.t.Helper()
	m := n.api(cmd, args)
	if m["ok"] != true {
		n.t.Fatalf("%s %s %v: %v", n.name, cmd, args, m)
	}
	return m["result"]
}

// backend is a text-port connection.
type backend struct {
	t  *testing.T
	c  net.Conn
	r  *bufio.Reader
	id int
}

func (n *node) backend() *backend {
	n.t.Helper()
	c, err := net.DialTimeout("tcp", n.text, 5*time.Second)
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { c.Close() })
	return &backend{t: n.t, c: c, r: bufio.NewReader(c)}
}

// call sends one command and returns its answer.
func (b *backend) call(cmd string, args map[string]any) map[string]any {
	b.t.Helper()
	b.id++
	req := map[string]any{"id": b.id, "cmd": cmd}
	for k, v := range args {
		req[k] = v
	}
	line, _ := json.Marshal(req)
	_ = b.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := b.c.Write(append(line, '\n')); err != nil {
		b.t.Fatal(err)
	}
	answer, err := b.r.ReadBytes('\n')
	if err != nil {
		b.t.Fatalf("text port %s: %v", cmd, err)
	}
	var m map[string]any
	if err := json.Unmarshal(answer, &m); err != nil {
		b.t.Fatalf("text port %s: %v: %s", cmd, err, answer)
	}
	return m
}

// client is a WebSocket client; a goroutine reads every frame into in.
type client struct {
	t    *testing.T
	ws   *websocket.Conn
	in   chan []byte
	id   string
	done chan struct{}
	code int // close code, once done
}

func (n *node) dial(path string) *client {
	n.t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+n.ws+path, nil)
	if err != nil {
		n.t.Fatalf("dial %s%s: %v", n.name, path, err)
	}
	c := &client{t: n.t, ws: ws, in: make(chan []byte, 4096), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				if ce, ok := err.(*websocket.CloseError); ok {
					c.code = ce.Code
				}
				return
			}
			c.in <- b
		}
	}()
	n.t.Cleanup(func() { ws.Close() })
	return c
}

// chat dials /chat and asks the chat example its client id.
func (n *node) chat() *client {
	n.t.Helper()
	c := n.dial("/chat")
	c.send(map[string]string{"type": "whoami"})
	m := c.expect("whoami")
	c.id, _ = m["client_id"].(string)
	if c.id == "" {
		n.t.Fatalf("init without client_id: %v", m)
	}
	return c
}

func (c *client) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatal(err)
	}
}

// next returns the next message, or nil after d.
func (c *client) next(d time.Duration) []byte {
	select {
	case b := <-c.in:
		return b
	case <-time.After(d):
		return nil
	}
}

// expect waits for a JSON message of the given type, failing on an error
// message or after 10 s.
func (c *client) expect(typ string) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		b := c.next(time.Until(deadline))
		if b == nil {
			break
		}
		var m map[string]any
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		if m["type"] == typ {
			return m
		}
		if m["type"] == "error" {
			c.t.Fatalf("client %s: expected %q, got error %v", c.id, typ, m["error"])
		}
	}
	c.t.Fatalf("client %s: no %q message within 10 s", c.id, typ)
	return nil
}

// expectText waits for exactly the raw message want.
func (c *client) expectText(want string) {
	c.t.Helper()
	b := c.next(10 * time.Second)
	if string(b) != want {
		c.t.Fatalf("client %s: got %q, want %q", c.id, b, want)
	}
}

// silent checks that nothing arrives for d.
func (c *client) silent(d time.Duration) {
	c.t.Helper()
	if b := c.next(d); b != nil {
		c.t.Fatalf("client %s: unexpected message %q", c.id, b)
	}
}

// eventually polls cond until it holds, failing after 30 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 30 s: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sortedStrings turns a JSON array result into a sorted string list.
func sortedStrings(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		out = append(out, fmt.Sprint(x))
	}
	slices.Sort(out)
	return out
}

func join(s []string) string { return strings.Join(s, ",") }
