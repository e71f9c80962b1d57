package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
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
	code, out, _ := runCmd("version")
	if code != 0 || !strings.HasPrefix(out, "wasmgate ") {
		t.Fatalf("version: %d %q", code, out)
	}
	// The test binary is built with the same go and wazero as wasmgate.
	for _, want := range []string{"\ncommit ", "\ngo       " + goruntime.Version(), "\nwazero   v"} {
		if !strings.Contains(out, want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
}

func TestRun_Usage(t *testing.T) {
	if code, _, errOut := runCmd("fly"); code != 2 || !strings.Contains(errOut, `unknown command "fly"`) {
		t.Fatalf("unknown command: %d %q", code, errOut)
	}
}

// TestRun_Help: every usual way of asking for help prints the usage on
// stdout and succeeds (they were "unknown command").
func TestRun_Help(t *testing.T) {
	for _, arg := range []string{"help", "-h", "-help", "--help"} {
		code, out, errOut := runCmd(arg)
		if code != 0 || !strings.HasPrefix(out, "usage: wasmgate") || errOut != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", arg, code, out, errOut)
		}
	}
	if code, _, errOut := runCmd("check", "-h"); code != 0 || !strings.Contains(errOut, "path to the config file") {
		t.Errorf("check -h: exit %d, stderr %q", code, errOut)
	}
}

// TestRun_CheckGoodConfig: check lists the routes and modules it loaded.
func TestRun_CheckGoodConfig(t *testing.T) {
	path := writeConfig(t, "", "echo", "echoA")
	code, out, errOut := runCmd("check", "-c", path)
	if code != 0 || !strings.Contains(out, "OK") {
		t.Fatalf("check: %d %q %q", code, out, errOut)
	}
	for _, want := range []string{"2 module(s) loaded", "  /echo -> echo\n", "  /echoA -> echoA\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}

// TestRun_CheckDoesNotJoinTheCluster: check on a cluster node's config
// contacts no Redis (here there is none at that address): it would claim
// a node id, or wait for a live node's.
func TestRun_CheckDoesNotJoinTheCluster(t *testing.T) {
	path := writeConfig(t, "[cluster]\nredis = \"redis://127.0.0.1:1/0\"\n", "echo")
	code, out, errOut := runCmd("check", "-c", path)
	if code != 0 || !strings.Contains(out, "not contacted by check") || !strings.Contains(out, "OK") {
		t.Fatalf("check of a cluster config: %d %q %q", code, out, errOut)
	}
}

// TestRun_CheckErrorsNameNoInternalPackage: a file that is not wasm is
// reported as such, without the name of the package that found it.
func TestRun_CheckErrorsNameNoInternalPackage(t *testing.T) {
	path := writeConfig(t, "", "echo", "notwasm")
	code, out, errOut := runCmd("check", "-c", path)
	if code != 1 || !strings.Contains(errOut, "notwasm.wasm") || !strings.Contains(errOut, "not a valid wasm module") {
		t.Fatalf("check: exit %d, stderr %q", code, errOut)
	}
	if strings.Contains(errOut, "stopcheck") {
		t.Errorf("the error names an internal package:\n%s", errOut)
	}
	if !strings.Contains(out, "  /echo -> echo\n") {
		t.Errorf("check did not list the module it loaded:\n%s", out)
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

// startInProcess runs `wasmgate start` on a config and returns the server
// once it listens, and a function that stops it.
func startInProcess(t *testing.T, path string) (*server.Server, *lockedBuffer) {
	t.Helper()
	ready := make(chan *server.Server, 1)
	errOut := &lockedBuffer{}
	exit := make(chan int, 1)
	go func() { exit <- run([]string{"start", "-c", path}, &bytes.Buffer{}, errOut, ready) }()
	select {
	case srv := <-ready:
		t.Cleanup(func() {
			_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
			<-exit
		})
		return srv, errOut
	case code := <-exit:
		t.Fatalf("start exited with %d", code)
	case <-time.After(30 * time.Second):
		t.Fatal("start did not become ready")
	}
	return nil, nil
}

// lockedBuffer is a log sink the server's goroutines may write while the
// test reads it.
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

// waitLog waits up to 10 s until the log has n lines containing s.
func waitLog(t *testing.T, log *lockedBuffer, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(log.String(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d log lines with %q after 10s, want %d:\n%s", strings.Count(log.String(), s), s, n, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRun_ReloadCommandAndSIGHUP(t *testing.T) {
	path := writeConfig(t, "", "echoA")
	// No folder watcher: only the reload command and SIGHUP may reload, so
	// what the test sees is their doing.
	conf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	conf = bytes.Replace(conf, []byte("[server]\n"), []byte("[server]\nwatch_handlers = false\n"), 1)
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	srv, logs := startInProcess(t, path)
	hdir := filepath.Join(filepath.Dir(path), "handlers")
	b, err := os.ReadFile(filepath.Join("..", "..", "runtime", "testdata", "echoB.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	// The config's admin.listen is :0, so point `reload` at the real port.
	cfg := "[admin]\nlisten = \"" + srv.AdminAddr().String() + "\"\n[push]\nlisten = \"127.0.0.1:0\"\n"
	rpath := filepath.Join(t.TempDir(), "reload.toml")
	if err := os.WriteFile(rpath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hdir, "echoA.wasm"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd("reload", "-c", rpath)
	if code != 0 || !strings.Contains(out, "replaced [echoA]") {
		t.Fatalf("reload: %d %q %q", code, out, errOut)
	}
	echoOnce(t, srv, "/echoA", "B:x")

	// SIGHUP reloads: build A is back.
	a, err := os.ReadFile(filepath.Join("..", "..", "runtime", "testdata", "echoA.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hdir, "echoA.wasm"), a, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, logs, "reload on SIGHUP", 1)
	if !strings.Contains(logs.String(), "replaced=[echoA]") {
		t.Fatalf("SIGHUP did not replace echoA:\n%s", logs)
	}
	echoOnce(t, srv, "/echoA", "A:x")

	// SIGHUP with nothing changed reloads nothing and breaks nothing.
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, logs, "reload on SIGHUP", 2)
	if n := strings.Count(logs.String(), "replaced=[echoA]"); n != 1 {
		t.Fatalf("the second SIGHUP replaced echoA again (%d replacements):\n%s", n, logs)
	}
	echoOnce(t, srv, "/echoA", "A:x")
}

func TestRun_WatcherReloadsChangedModule(t *testing.T) {
	path := writeConfig(t, "", "echoA")
	srv, _ := startInProcess(t, path)
	hdir := filepath.Join(filepath.Dir(path), "handlers")
	b, err := os.ReadFile(filepath.Join("..", "..", "runtime", "testdata", "echoB.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(hdir, "late.wasm"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !slicesContains(srv.Routes(), "/late -> late") {
		if time.Now().After(deadline) {
			t.Fatalf("a module dropped into the folder was not picked up: %v", srv.Routes())
		}
		time.Sleep(50 * time.Millisecond)
	}
	echoOnce(t, srv, "/late", "B:x")
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func echoOnce(t *testing.T, srv *server.Server, path, want string) {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr().String()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte("x")); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, data, err := ws.ReadMessage(); err != nil || string(data) != want {
		t.Fatalf("%s answered %q, %v; want %q", path, data, err, want)
	}
}

// TestRun_CheckOneRefusalPerLine: the summary line stands alone, and each
// refused module gets a line of its own, the first one included.
func TestRun_CheckOneRefusalPerLine(t *testing.T) {
	path := writeConfig(t, "", "echo", "version2", "memory_only")
	code, _, errOut := runCmd("check", "-c", path)
	lines := strings.Split(strings.TrimSuffix(errOut, "\n"), "\n")
	if code != 1 || len(lines) != 3 || lines[0] != "wasmgate: check failed:" {
		t.Fatalf("check: exit %d, stderr:\n%s", code, errOut)
	}
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, "load ") || strings.Count(l, ".wasm:") != 1 {
			t.Errorf("not one refusal on its own line: %q", l)
		}
	}
}

// TestRun_RecordThenReplay records /c-chat (server.record_route) while two
// clients chat and a backend joins one of them to a room, then replays the
// file against the same module: the replay prints the same messages the
// clients received.
func TestRun_RecordThenReplay(t *testing.T) {
	rec := filepath.Join(t.TempDir(), "rec.jsonl")
	path := writeConfig(t, "[modules.c-chat]\nconfig = \"rate_limit=0\"\n", "c-chat")
	cfgText, _ := os.ReadFile(path)
	cfgText = bytes.Replace(cfgText, []byte("[server]\n"), []byte("[server]\nrecord_route = \"/c-chat\"\nrecord_file = \""+rec+"\"\n"), 1)
	if err := os.WriteFile(path, cfgText, 0o644); err != nil {
		t.Fatal(err)
	}
	srv, _ := startInProcess(t, path)
	dial := func() *websocket.Conn {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr().String()+"/c-chat?x=1", nil)
		if err != nil {
			t.Fatal(err)
		}
		return ws
	}
	var received []string
	talk := func(ws *websocket.Conn, msg string, replies ...*websocket.Conn) {
		if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		for _, r := range replies {
			_ = r.SetReadDeadline(time.Now().Add(10 * time.Second)) // no hang if a reply is missing
			_, got, err := r.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			received = append(received, string(got))
		}
	}
	a, b := dial(), dial()
	talk(a, `{"type":"login","uid":"ann"}`, a)
	talk(b, `{"type":"whoami"}`, b)
	var who struct {
		ClientID string `json:"client_id"`
	}
	if err := json.Unmarshal([]byte(received[len(received)-1]), &who); err != nil {
		t.Fatal(err)
	}
	talk(a, `{"type":"join","room":"r"}`, a)
	resp, err := http.Post("http://"+srv.AdminAddr().String()+"/api/joinGroup", "application/json",
		strings.NewReader(`{"client_id":"`+who.ClientID+`","group":"r"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("push joinGroup: %v %v", resp, err)
	}
	resp.Body.Close()
	talk(a, `{"type":"say","text":"hi ✓"}`, a, b) // b is in r by the push
	a.Close()
	b.Close()
	waitFile(t, rec, `"ev":"close"`, 2)

	code, out, errOut := runCmd("replay", "-c", path, filepath.Join(filepath.Dir(path), "handlers", "c-chat.wasm"), rec)
	if code != 0 {
		t.Fatalf("replay: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"push joinGroup " + who.ClientID + ` "r"`, `text "{\"type\":\"say\",\"text\":\"hi ✓\"}"`} {
		if !strings.Contains(out, want) {
			t.Errorf("replay output lacks %q:\n%s", want, out)
		}
	}
	for _, msg := range received {
		if !strings.Contains(out, strconv.Quote(msg)) {
			t.Errorf("replay did not send %s:\n%s", msg, out)
		}
	}
}

// waitFile waits up to 10 s until the file holds n occurrences of s.
func waitFile(t *testing.T, path, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ := os.ReadFile(path)
		if strings.Count(string(data), s) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %q after 10s, want %d:\n%s", path, strings.Count(string(data), s), s, n, data)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRun_ReplayRefusesBadRecording: a bad line is named.
func TestRun_ReplayRefusesBadRecording(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "bad.jsonl")
	_ = os.WriteFile(rec, []byte(`{"ev":"connect","client":"c1"}`+"\n"+`{"ev":"message"}`+"\n"), 0o644)
	code, _, errOut := runCmd("replay", filepath.Join("..", "..", "runtime", "testdata", "echo.wasm"), rec)
	if code != 1 || !strings.Contains(errOut, "line 2: message event without a client") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}
