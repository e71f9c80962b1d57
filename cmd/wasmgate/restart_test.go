//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
)

// The restart tests run the real binary: a restart starts the binary on
// disk, which a test binary is not.

// buildWasmgate builds ./cmd/wasmgate into a temporary folder.
func buildWasmgate(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wasmgate")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address with a port free a moment ago: the
// restart tests need fixed ports the new process's config agrees on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// gateway is a wasmgate process started by a test and its addresses.
type gateway struct {
	cmd             *exec.Cmd
	log             fileLog
	ws, text, admin string
	exited          chan error
	config          string
	bin             string
	newPid          atomic.Int64 // the process a restart handed over to
}

// startGateway runs `bin start` with a config serving modules on fixed
// ports, the per-IP limits off (every client here is 127.0.0.1), and waits
// until its admin listener answers.
func startGateway(t *testing.T, bin, extra string, env []string, modules ...string) *gateway {
	t.Helper()
	g := &gateway{ws: freeAddr(t), text: freeAddr(t), admin: freeAddr(t), bin: bin, log: fileLog(filepath.Join(t.TempDir(), "wasmgate.log")), exited: make(chan error, 1)}
	path := writeConfig(t, "", modules...)
	conf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := strings.Replace(string(conf), "[server]\nlisten = \"127.0.0.1:0\"\n",
		"[server]\nlisten = \""+g.ws+"\"\nmax_connections_per_ip = 0\nhandshake_rate_per_ip = 0\n"+extra, 1)
	c = strings.Replace(c, "[push]\nlisten = \"127.0.0.1:0\"", "[push]\nlisten = \""+g.text+"\"", 1)
	c = strings.Replace(c, "[admin]\nlisten = \"127.0.0.1:0\"", "[admin]\nlisten = \""+g.admin+"\"", 1)
	if err := os.WriteFile(path, []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}
	g.config = path
	g.cmd = exec.Command(bin, "start", "-c", path)
	g.cmd.Env = append(os.Environ(), env...)
	// A file, not a pipe: the new process a restart starts inherits it,
	// and Wait would wait for it to close a pipe.
	logf, err := os.Create(string(g.log))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { g.exited <- g.cmd.Wait() }()
	t.Cleanup(func() {
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		if pid := int(g.newPid.Load()); pid != 0 {
			stopPid(t, pid)
		}
		select {
		case <-g.exited:
		case <-time.After(20 * time.Second):
			_ = g.cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("gateway log:\n%s", g.log.String())
		}
	})
	g.waitHealthy(t)
	return g
}

// waitHealthy waits until GET /healthz answers 200.
func (g *gateway) waitHealthy(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + g.admin + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not come up: %v\n%s", err, g.log.String())
		}
		select {
		case err := <-g.exited:
			t.Fatalf("the gateway exited: %v\n%s", err, g.log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stopPid stops a process this test's gateway started (the one a restart
// handed over to, which is not the test's child) and waits until it is
// gone or a zombie.
func stopPid(t *testing.T, pid int) {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(stat), ") Z ") {
			return
		}
	}
	t.Errorf("pid %d did not stop on SIGTERM; killing it", pid)
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// fileLog is the file a gateway logs to (both processes of a restart).
type fileLog string

func (f fileLog) String() string {
	b, _ := os.ReadFile(string(f))
	return string(b)
}

var handedOverPid = regexp.MustCompile(`pid (\d+)`)

// restartClient is one of the clients held through the restart: what its
// first connection received, how it ended, and when it was back.
type restartClient struct {
	first     []int // the pushes received on the first connection, in order
	code      int   // the first connection's close code
	closedAt  time.Time
	backAt    time.Time
	dialErrs  int  // handshakes refused when reconnecting
	gotMarker bool // the second connection got the push sent after the restart
}

// TestRestart_NoRefusalsAndAckedPushesDelivered: 1,000 clients and a
// backend pushing to all of them steadily, through `wasmgate restart`:
// no handshake is refused (dialers keep connecting throughout), each
// client's first connection gets every push the old process acknowledged
// before its 1012 close, and every client is back on the new process.
func TestRestart_NoRefusalsAndAckedPushesDelivered(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and holds 1,000 clients")
	}
	const clients = 1000
	bin := buildWasmgate(t)
	g := startGateway(t, bin, "", nil, "echo")
	url := "ws://" + g.ws + "/echo"
	dialer := &websocket.Dialer{HandshakeTimeout: 30 * time.Second}

	cs := make([]*restartClient, clients)
	conns := make([]*websocket.Conn, clients)
	for i := range cs {
		ws, _, err := dialer.Dial(url, nil)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		cs[i], conns[i] = &restartClient{}, ws
	}
	var wg sync.WaitGroup
	var back atomic.Int64
	stop := make(chan struct{})
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run(conns[i], dialer, url, stop, &back)
		}()
	}

	// Dialers that keep connecting and hanging up, before, during and
	// after the restart: any failed handshake is a refusal.
	var dials, refused atomic.Int64
	var refusals sync.Map
	stopDialing := make(chan struct{})
	var dwg sync.WaitGroup
	for range 4 {
		dwg.Add(1)
		go func() {
			defer dwg.Done()
			for {
				select {
				case <-stopDialing:
					return
				default:
				}
				ws, _, err := dialer.Dial(url, nil)
				dials.Add(1)
				if err != nil {
					refused.Add(1)
					refusals.Store(err.Error(), true)
					continue
				}
				_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
				ws.Close()
			}
		}()
	}

	b := &pushBackend{addr: g.text}
	stopPushing := make(chan struct{})
	pushed := make(chan struct{})
	go func() { defer close(pushed); b.run(stopPushing, 20*time.Millisecond) }()
	waitFor(t, 30*time.Second, "pushes before the restart", func() bool { return b.ackedIn(0) >= 25 })

	began := time.Now()
	out, err := exec.Command(bin, "restart", "-c", g.config).CombinedOutput()
	if err != nil {
		t.Fatalf("wasmgate restart: %v\n%s", err, out)
	}
	t.Logf("wasmgate restart answered in %v: %s", time.Since(began).Round(time.Millisecond), strings.TrimSpace(string(out)))
	m := handedOverPid.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no pid in %q", out)
	}
	pid, _ := strconv.Atoi(m[1])
	g.newPid.Store(int64(pid))

	// The old process exits once its clients are gone.
	select {
	case err := <-g.exited:
		if err != nil {
			t.Errorf("the old process exited with %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the old process did not exit")
	}
	waitFor(t, 60*time.Second, "every client back", func() bool { return back.Load() == clients })
	allBack := time.Since(began)
	waitFor(t, 30*time.Second, "pushes after the restart", func() bool { return b.ackedAfter(0) >= 5 })
	close(stopDialing)
	dwg.Wait()
	close(stopPushing)
	<-pushed
	if err := b.final(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the push after the restart reaching every client", func() bool {
		n := 0
		for _, c := range cs {
			if c.marker() {
				n++
			}
		}
		return n == clients
	})
	close(stop)
	wg.Wait()

	acked := b.acked(0)
	var gaps []time.Duration
	for i, c := range cs {
		if c.code != websocket.CloseServiceRestart {
			t.Errorf("client %d: first connection ended with %d, want 1012", i, c.code)
		}
		if c.dialErrs > 0 {
			t.Errorf("client %d: %d reconnections refused", i, c.dialErrs)
		}
		// Every acknowledged push, in order; the one under way when the
		// backend's connection closed may have arrived too.
		if len(c.first) < len(acked) || !slices.Equal(c.first[:len(acked)], acked) || len(c.first) > len(acked)+1 {
			t.Errorf("client %d got %d pushes (first %v, last %v); the old process acknowledged %d (1..%d)",
				i, len(c.first), head(c.first), tail(c.first), len(acked), acked[len(acked)-1])
		}
		gaps = append(gaps, c.backAt.Sub(c.closedAt))
	}
	if n := refused.Load(); n > 0 {
		var errs []string
		refusals.Range(func(k, _ any) bool { errs = append(errs, k.(string)); return true })
		t.Errorf("%d of %d handshakes refused during the restart: %v", n, dials.Load(), errs)
	}
	slices.Sort(gaps)
	t.Logf("restart: %d clients; %d pushes acknowledged by the old process, all delivered before 1012; %d dials during the restart, 0 refused; "+
		"reconnect after 1012: median %v, p99 %v, max %v; every client back %v after `wasmgate restart` began",
		clients, len(acked), dials.Load(), gaps[len(gaps)/2].Round(time.Millisecond), gaps[len(gaps)*99/100].Round(time.Millisecond),
		gaps[len(gaps)-1].Round(time.Millisecond), allBack.Round(time.Millisecond))
	if allBack > 60*time.Second {
		t.Errorf("clients took %v to come back", allBack)
	}
}

func head(s []int) []int { return s[:min(3, len(s))] }
func tail(s []int) []int { return s[max(0, len(s)-3):] }

// run reads the first connection until it closes, reconnects at once, and
// reads the second until stop.
func (c *restartClient) run(ws *websocket.Conn, d *websocket.Dialer, url string, stop chan struct{}, back *atomic.Int64) {
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.code = ce.Code
			}
			c.closedAt = time.Now()
			break
		}
		if n, err := strconv.Atoi(string(data)); err == nil {
			c.first = append(c.first, n)
		}
	}
	ws.Close()
	for {
		ws2, _, err := d.Dial(url, nil)
		if err == nil {
			ws = ws2
			break
		}
		c.dialErrs++
		time.Sleep(10 * time.Millisecond)
	}
	c.backAt = time.Now()
	back.Add(1)
	go func() { <-stop; ws.Close() }()
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		if string(data) == "final" {
			c.setMarker()
		}
	}
}

var markerMu sync.Mutex

func (c *restartClient) setMarker() { markerMu.Lock(); c.gotMarker = true; markerMu.Unlock() }
func (c *restartClient) marker() bool {
	markerMu.Lock()
	defer markerMu.Unlock()
	return c.gotMarker
}

// pushBackend pushes numbered messages to every client through the text
// port, one at a time, reconnecting when the connection drops, and records
// which were acknowledged on which connection (0: the first one, to the
// old process).
type pushBackend struct {
	addr string

	mu     sync.Mutex
	byConn [][]int // acknowledged pushes, per connection
	conn   net.Conn
	rd     *bufio.Reader
}

func (b *pushBackend) run(stop chan struct{}, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for seq := 1; ; seq++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		_ = b.send(fmt.Sprintf(`{"id":%d,"cmd":"sendToAll","data":"%d"}`, seq, seq), seq)
	}
}

// send sends one command and records its acknowledgement.
func (b *pushBackend) send(line string, seq int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn == nil {
		c, err := net.DialTimeout("tcp", b.addr, 10*time.Second)
		if err != nil {
			return err
		}
		b.conn, b.rd = c, bufio.NewReader(c)
		b.byConn = append(b.byConn, nil)
	}
	_ = b.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := b.conn.Write([]byte(line + "\n")); err != nil {
		b.conn.Close()
		b.conn = nil
		return err
	}
	answer, err := b.rd.ReadString('\n')
	if err != nil {
		b.conn.Close()
		b.conn = nil
		return err
	}
	if !strings.Contains(answer, `"ok":true`) {
		return fmt.Errorf("push %d: %s", seq, answer)
	}
	b.byConn[len(b.byConn)-1] = append(b.byConn[len(b.byConn)-1], seq)
	return nil
}

// final pushes "final" on the current (new) process.
func (b *pushBackend) final() error {
	for range 10 {
		if err := b.send(`{"cmd":"sendToAll","data":"final"}`, 0); err == nil {
			return nil
		}
	}
	return errors.New("the final push failed 10 times")
}

func (b *pushBackend) acked(conn int) []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if conn >= len(b.byConn) {
		return nil
	}
	return slices.Clone(b.byConn[conn])
}

func (b *pushBackend) ackedIn(conn int) int { return len(b.acked(conn)) }

// ackedAfter counts the pushes acknowledged on the connections after conn.
func (b *pushBackend) ackedAfter(conn int) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, s := range b.byConn[min(conn+1, len(b.byConn)):] {
		n += len(s)
	}
	return n
}

// waitFor polls cond until it holds, failing after d (a "no freeze" bound).
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
