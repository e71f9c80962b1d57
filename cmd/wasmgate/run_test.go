package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/server"
)

// writeConfig writes a config serving the given modules (copied from the
// example handlers or the runtime fixtures) on 127.0.0.1:0.
func writeConfig(t *testing.T, extra string, modules ...string) string {
	t.Helper()
	dir := t.TempDir()
	hdir := filepath.Join(dir, "handlers")
	if err := os.Mkdir(hdir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, m := range modules {
		src := filepath.Join("..", "..", "handlers", m+".wasm")
		if _, err := os.Stat(src); err != nil {
			src = filepath.Join("..", "..", "runtime", "testdata", m+".wasm")
		}
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatalf("%v (run `make guests`)", err)
		}
		if err := os.WriteFile(filepath.Join(hdir, m+".wasm"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := "[server]\nlisten = \"127.0.0.1:0\"\n[push]\nlisten = \"127.0.0.1:0\"\n[admin]\nlisten = \"127.0.0.1:0\"\n[runtime]\ncache_dir = \"" + filepath.Join(os.TempDir(), "wasmgate-test-cache") + "\"\n" + extra
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func runCmd(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut, nil)
	return code, out.String(), errOut.String()
}

func TestRun_Version(t *testing.T) {
	if code, out, _ := runCmd("version"); code != 0 || !strings.HasPrefix(out, "wasmgate ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestRun_Usage(t *testing.T) {
	if code, _, errOut := runCmd("fly"); code != 2 || !strings.Contains(errOut, `unknown command "fly"`) {
		t.Fatalf("unknown command: %d %q", code, errOut)
	}
}

func TestRun_CheckGoodConfig(t *testing.T) {
	path := writeConfig(t, "", "echo")
	if code, out, errOut := runCmd("check", "-c", path); code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("check: %d %q %q", code, out, errOut)
	}
}

func TestRun_CheckNamesBadModule(t *testing.T) {
	path := writeConfig(t, "", "echo", "version2")
	code, _, errOut := runCmd("check", "-c", path)
	if code == 0 || !strings.Contains(errOut, "version2.wasm") || !strings.Contains(errOut, "ABI version 2") {
		t.Fatalf("check: exit %d, stderr %q", code, errOut)
	}
}

func TestRun_CheckNamesUnknownKey(t *testing.T) {
	path := writeConfig(t, "[server.tls]\ncert = \"x\"\n", "echo")
	code, _, errOut := runCmd("check", "-c", path)
	if code != 1 || !strings.Contains(errOut, "unknown key server.tls") {
		t.Fatalf("check: exit %d, stderr %q", code, errOut)
	}
}

func TestRun_StartServesAndStopsOnSIGTERM(t *testing.T) {
	path := writeConfig(t, "", "echo", "notwasm")
	ready := make(chan *server.Server, 1)
	var errOut bytes.Buffer
	exit := make(chan int, 1)
	go func() { exit <- run([]string{"start", "-c", path}, &bytes.Buffer{}, &errOut, ready) }()
	var srv *server.Server
	select {
	case srv = <-ready:
	case code := <-exit:
		t.Fatalf("start exited with %d", code)
	case <-time.After(30 * time.Second):
		t.Fatal("start did not become ready")
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr().String()+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit %d after SIGTERM", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no shutdown after SIGTERM")
	}
	_, _, err = ws.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != websocket.CloseGoingAway {
		t.Errorf("client got %v, want close 1001", err)
	}
	if !strings.Contains(errOut.String(), "notwasm.wasm") || !strings.Contains(errOut.String(), "serving without the refused modules") {
		t.Errorf("start did not report the bad module:\n%s", errOut.String())
	}
}
