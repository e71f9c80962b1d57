package cluster_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/internal/redistest"
)

// TestCluster_SentinelURL: a node given the Sentinel form of the redis URL
// finds the primary through a real redis-sentinel and joins the same
// cluster as a node given the primary's address.
func TestCluster_SentinelURL(t *testing.T) {
	rs := redistest.Start(t)
	sentinel := startSentinel(t, rs.Port)
	h := handlersDir(t)
	direct := startNode(t, "direct", rs.URL(), h, clusterOpts{})
	viaSentinel := startNode(t, "sentinel", fmt.Sprintf("redis://%s/0?master_name=wasmgate", sentinel), h, clusterOpts{})
	a, b := direct.chat(), viaSentinel.chat()
	eventually(t, "both nodes see two live nodes", func() bool {
		h1, h2 := direct.health(), viaSentinel.health()
		return h1 != nil && h2 != nil && h1["nodes_alive"] == 2.0 && h2["nodes_alive"] == 2.0
	})
	if m := viaSentinel.backend().call("sendToClient", map[string]any{"client_id": a.id, "data": "through sentinel"}); m["ok"] != true {
		t.Fatal(m)
	}
	a.expectText("through sentinel")
	if got := direct.result("isOnline", map[string]any{"client_id": b.id}); got != 1.0 {
		t.Fatalf("the sentinel node's client is not online on the other node: %v", got)
	}
}

// startSentinel runs redis-server --sentinel monitoring the primary on
// port primary as "wasmgate", and returns its address.
func startSentinel(t *testing.T, primary int) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor wasmgate 127.0.0.1 %d 1\n", port, dir, primary)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("redis-server", conf, "--sentinel")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis sentinel did not listen on %s:\n%s", addr, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
