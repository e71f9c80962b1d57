package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/server"
)

const testSecret = "s3cret-for-ops"

// withSecret sets push.secret in a config written by writeConfig.
func withSecret(t *testing.T, path string) {
	t.Helper()
	conf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	conf = bytes.Replace(conf, []byte("[push]\n"), []byte("[push]\nsecret = \""+testSecret+"\"\n"), 1)
	if err := os.WriteFile(path, conf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// cliConfig writes the config the CLI reads: the running server's real
// admin address (the server's own config says :0), the secret and extra.
func cliConfig(t *testing.T, admin, secret, extra string) string {
	t.Helper()
	cfg := "[server]\n" + extra + "[admin]\nlisten = \"" + admin + "\"\n[push]\nlisten = \"127.0.0.1:0\"\nsecret = \"" + secret + "\"\n"
	path := filepath.Join(t.TempDir(), "cli.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// adminPost runs a push command through the HTTP API.
func adminPost(t *testing.T, admin, cmd, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+admin+"/api/"+cmd, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"ok":true`) {
		t.Fatalf("%s: %s %s", cmd, resp.Status, b)
	}
}

// echoClient dials path and exchanges n messages of "hello".
func echoClient(t *testing.T, srv *server.Server, path string, n int) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr().String()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	for range n {
		if err := ws.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := ws.ReadMessage(); err != nil {
			t.Fatal(err)
		}
	}
	return ws
}

type connList struct {
	Total       int               `json:"total"`
	Connections []server.ConnInfo `json:"connections"`
}

func connectionsJSON(t *testing.T, cli string, args ...string) connList {
	t.Helper()
	code, out, errOut := runCmd(append([]string{"connections", "-c", cli, "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("connections %v: exit %d, %s", args, code, errOut)
	}
	var l connList
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("connections --json is not JSON: %v\n%s", err, out)
	}
	return l
}

// TestOps_StatusAndConnections: `wasmgate status` and `wasmgate
// connections` print what the running gateway holds, as a table and as
// JSON, with the per-connection traffic counted exactly.
func TestOps_StatusAndConnections(t *testing.T) {
	path := writeConfig(t, "", "echo", "echoA")
	withSecret(t, path)
	srv, _ := startInProcess(t, path)
	admin := srv.AdminAddr().String()
	cli := cliConfig(t, admin, testSecret, "")

	a := echoClient(t, srv, "/echo", 3)
	echoClient(t, srv, "/echoA", 1)
	all := connectionsJSON(t, cli)
	if all.Total != 2 || len(all.Connections) != 2 {
		t.Fatalf("connections: %+v", all)
	}
	var aID string
	for _, c := range all.Connections {
		if c.Module == "echo" {
			aID = c.ID
			// 3 messages of 5 bytes each way; echo answers each.
			if c.MsgsIn != 3 || c.BytesIn != 15 || c.MsgsOut != 3 || c.BytesOut != 15 {
				t.Errorf("echo client traffic: in %d/%dB out %d/%dB, want 3/15B each way", c.MsgsIn, c.BytesIn, c.MsgsOut, c.BytesOut)
			}
			if !strings.HasPrefix(c.Remote, "127.0.0.1:") || time.Since(c.Since) > time.Minute || c.Since.After(time.Now()) {
				t.Errorf("echo client: remote %q since %v", c.Remote, c.Since)
			}
		}
	}
	adminPost(t, admin, "bindUid", `{"client_id":"`+aID+`","uid":"alice"}`)
	adminPost(t, admin, "joinGroup", `{"client_id":"`+aID+`","group":"room1"}`)
	adminPost(t, admin, "joinGroup", `{"client_id":"`+aID+`","group":"room2"}`)

	for _, f := range [][]string{{"--uid", "alice"}, {"--group", "room1"}, {"--module", "echo"}} {
		l := connectionsJSON(t, cli, f...)
		if l.Total != 1 || l.Connections[0].ID != aID || l.Connections[0].UID != "alice" ||
			strings.Join(l.Connections[0].Groups, ",") != "room1,room2" {
			t.Errorf("connections %v: %+v", f, l)
		}
	}
	if l := connectionsJSON(t, cli, "--uid", "nobody"); l.Total != 0 {
		t.Errorf("--uid nobody: %+v", l)
	}
	if l := connectionsJSON(t, cli, "--limit", "1"); l.Total != 2 || len(l.Connections) != 1 {
		t.Errorf("--limit 1: %+v", l)
	}
	code, out, errOut := runCmd("connections", "-c", cli)
	if code != 0 {
		t.Fatalf("connections: %d %s", code, errOut)
	}
	for _, want := range []string{"CLIENT ID", "REMOTE", "MSGS IN", "BYTES OUT", aID, "alice", "room1,room2", "2 connection(s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("connections table lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(aID + `\s+127\.0\.0\.1:\d+\s+echo\s+alice\s+room1,room2\s+.*\s3\s+3\s+15\s+15\n`).MatchString(out) {
		t.Errorf("the echo client's row is not as expected:\n%s", out)
	}

	// status, as a table and as JSON.
	code, out, errOut = runCmd("status", "-c", cli, "--interval", "200ms")
	if code != 0 {
		t.Fatalf("status: %d %s", code, errOut)
	}
	for _, want := range []string{"pid " + strconv.Itoa(os.Getpid()), "node 00000000", "connections 2   uids 1   groups 2",
		"goroutines ", "rss", "MODULE", "EVENTS/S", "P99", "POOL BUSY"} {
		if !strings.Contains(out, want) {
			t.Errorf("status table lacks %q:\n%s", want, out)
		}
	}
	// echo: 1 on_connect + 3 on_message (the Go guest has on_connect).
	if !regexp.MustCompile(`(?m)^echo\s+0\.0\s+\S+\*\s+\d+\s+0\s+0\s+0/\d+\s+0\s+ok$`).MatchString(out) {
		t.Errorf("echo's row is not as expected:\n%s", out)
	}
	// Traffic during the sampling interval: events/s and a p99 of it.
	stop, sent := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sent)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if a.WriteMessage(websocket.TextMessage, []byte("hello")) != nil {
				return
			}
			if _, _, err := a.ReadMessage(); err != nil {
				return
			}
		}
	}()
	code, out, errOut = runCmd("status", "-c", cli, "--json", "--interval", "300ms")
	close(stop)
	<-sent
	if code != 0 {
		t.Fatalf("status --json: %d %s", code, errOut)
	}
	var busy statusReport
	if err := json.Unmarshal([]byte(out), &busy); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	for _, m := range busy.Modules {
		if m.Module == "echo" && (m.EventsPerSecond == nil || *m.EventsPerSecond <= 0 || m.P99Over != "interval") {
			t.Errorf("echo under traffic: events/s %v, p99 over %q; want a rate and the interval's p99", m.EventsPerSecond, m.P99Over)
		}
	}

	a.Close()
	code, out, errOut = runCmd("status", "-c", cli, "--json", "--interval", "0")
	if code != 0 {
		t.Fatalf("status --json: %d %s", code, errOut)
	}
	var rep statusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if rep.PID != os.Getpid() || rep.Uptime <= 0 || rep.Goroutines == 0 || rep.HeapBytes == 0 || len(rep.Modules) != 2 {
		t.Errorf("status --json: %+v", rep)
	}
	for _, m := range rep.Modules {
		if m.Events == 0 || m.P99 == nil || *m.P99 <= 0 || m.P99Over != "loaded" || m.PoolSize == 0 || m.EventsPerSecond != nil {
			t.Errorf("module %s: %+v", m.Module, m)
		}
	}

	// The wrong secret is refused, and said so.
	bad := cliConfig(t, admin, "wrong", "")
	if code, _, errOut := runCmd("status", "-c", bad); code != 1 || !strings.Contains(errOut, "401") || !strings.Contains(errOut, "push.secret") {
		t.Errorf("wrong secret: exit %d, %q", code, errOut)
	}
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestOps_StalePIDFile: with the gateway gone and its pid file left
// behind, status and stop say the pid file is stale (exit 1); without a
// pid file, not running (exit 3). start replaces a stale file, and
// refuses to start over a live one.
func TestOps_StalePIDFile(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "wasmgate.pid")
	dead := deadPID(t)
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(dead)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cli := cliConfig(t, freeAddr(t), testSecret, "pid_file = \""+pidFile+"\"\n")
	for _, cmd := range []string{"status", "stop", "connections"} {
		code, _, errOut := runCmd(cmd, "-c", cli)
		if code != 1 || !strings.Contains(errOut, "stale pid file "+pidFile) || !strings.Contains(errOut, fmt.Sprintf("pid %d is not running", dead)) {
			t.Errorf("%s with a stale pid file: exit %d, %q", cmd, code, errOut)
		}
	}
	os.Remove(pidFile)
	if code, _, errOut := runCmd("status", "-c", cli); code != exitNotRunning || !strings.Contains(errOut, "not running") {
		t.Errorf("status without pid file: exit %d, %q", code, errOut)
	}

	// A live process in the pid file: start refuses.
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()
	os.WriteFile(pidFile, []byte(strconv.Itoa(sleeper.Process.Pid)), 0o644)
	path := writeConfig(t, "", "echo")
	conf, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(conf, []byte("[server]\n"), []byte("[server]\npid_file = \""+pidFile+"\"\n"), 1), 0o644)
	code, _, errOut := runCmd("start", "-c", path)
	if code != 1 || !strings.Contains(errOut, fmt.Sprintf("names pid %d, which is running", sleeper.Process.Pid)) {
		t.Fatalf("start over a live pid file: exit %d, %q", code, errOut)
	}
	// A stale one is replaced (and said so), and removed at exit.
	os.WriteFile(pidFile, []byte(strconv.Itoa(dead)), 0o644)
	srv, logs := startInProcess(t, path)
	if pid, err := readPIDFile(pidFile); err != nil || pid != os.Getpid() {
		t.Fatalf("pid file after start: %d, %v", pid, err)
	}
	if !strings.Contains(logs.String(), "replaced a stale pid file") || !strings.Contains(logs.String(), "stale_pid="+strconv.Itoa(dead)) {
		t.Errorf("start did not say it replaced the stale pid file:\n%s", logs)
	}
	// Running, with the pid file: status's JSON names it without a problem.
	live := cliConfig(t, srv.AdminAddr().String(), "", "pid_file = \""+pidFile+"\"\n")
	if code, out, errOut := runCmd("status", "-c", live, "--json", "--interval", "0"); code != 0 || strings.Contains(out, "pid_file_problem") {
		t.Errorf("status of a running gateway: exit %d, %s %s", code, out, errOut)
	}
}

// TestOps_StopIsGraceful builds the real binary, starts it, and stops it
// with `wasmgate stop`: the client gets close 1001, the process exits 0
// and removes its pid file, and the CLI returns once it is gone.
func TestOps_StopIsGraceful(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "wasmgate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	path := writeConfig(t, "", "echo")
	withSecret(t, path)
	pidFile := filepath.Join(t.TempDir(), "wasmgate.pid")
	wsAddr, adminAddr := freeAddr(t), freeAddr(t)
	conf, _ := os.ReadFile(path)
	conf = bytes.Replace(conf, []byte("listen = \"127.0.0.1:0\"\n[push]"), []byte("listen = \""+wsAddr+"\"\npid_file = \""+pidFile+"\"\n[push]"), 1)
	conf = bytes.Replace(conf, []byte("[admin]\nlisten = \"127.0.0.1:0\""), []byte("[admin]\nlisten = \""+adminAddr+"\""), 1)
	os.WriteFile(path, conf, 0o644)

	proc := exec.Command(bin, "start", "-c", path)
	var logs lockedBuffer
	proc.Stderr = &logs
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- proc.Wait() }()
	t.Cleanup(func() { _ = proc.Process.Kill() })
	var ws *websocket.Conn
	for deadline := time.Now().Add(60 * time.Second); ; {
		var err error
		if ws, _, err = websocket.DefaultDialer.Dial("ws://"+wsAddr+"/echo", nil); err == nil {
			if _, err := http.Get("http://" + adminAddr + "/healthz"); err == nil {
				break
			}
			ws.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway did not come up: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer ws.Close()
	if pid, err := readPIDFile(pidFile); err != nil || pid != proc.Process.Pid {
		t.Fatalf("pid file: %d %v, want %d", pid, err, proc.Process.Pid)
	}
	code, out, errOut := runCmd("stop", "-c", path, "--timeout", "5s")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("stopping pid %d", proc.Process.Pid)) || !strings.HasSuffix(out, "stopped\n") {
		t.Fatalf("stop: exit %d, %q %q", code, out, errOut)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("the gateway exited with %v:\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the process is still there after `stop` returned")
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := ws.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != websocket.CloseGoingAway {
		t.Errorf("client got %v, want close 1001", err)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
	if !strings.Contains(logs.String(), "stop requested through the admin listener") {
		t.Errorf("log does not say why it stopped:\n%s", logs.String())
	}
	// Stopped: stop now says it is not running.
	if code, _, errOut := runCmd("stop", "-c", path); code != exitNotRunning || !strings.Contains(errOut, "not running") {
		t.Errorf("second stop: exit %d, %q", code, errOut)
	}
}

// TestOps_JSONLogs: with log_format = "json" every line start writes is
// one valid JSON object, a trapping guest's multi-line error included;
// log_level filters.
func TestOps_JSONLogs(t *testing.T) {
	path := writeConfig(t, "", "trap")
	conf, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(conf, []byte("[server]\n"), []byte("[server]\nlog_format = \"json\"\nlog_level = \"debug\"\n"), 1), 0o644)
	srv, logs := startInProcess(t, path)
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+srv.Addr().String()+"/trap", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if err := ws.WriteMessage(websocket.TextMessage, []byte("trap now")); err != nil {
		t.Fatal(err)
	}
	waitLog(t, logs, "handler failed", 1)
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	sc.Buffer(nil, 1<<20)
	n, trap := 0, false
	for sc.Scan() {
		n++
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %d is not JSON: %v\n%s", n, err, sc.Text())
		}
		if rec["msg"] == nil || rec["level"] == nil || rec["time"] == nil {
			t.Errorf("log line %d lacks time, level or msg: %s", n, sc.Text())
		}
		if strings.Contains(fmt.Sprint(rec["msg"]), "handler failed") {
			trap = strings.Contains(fmt.Sprint(rec["err"]), "\n") // the stack, kept in its record
		}
	}
	if n < 3 || !trap {
		t.Errorf("%d lines, trap record with its stack: %v\n%s", n, trap, logs)
	}
}

// TestOps_LogLevel: log_level = "warn" leaves out info records. (A test
// of its own: two in-process starts at once would both take the SIGTERM
// that stops one.)
func TestOps_LogLevel(t *testing.T) {
	path := writeConfig(t, "", "echo")
	conf, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(conf, []byte("[server]\n"), []byte("[server]\nlog_level = \"warn\"\n"), 1), 0o644)
	srv, logs := startInProcess(t, path)
	echoOnce(t, srv, "/echo", "x")
	if strings.Contains(logs.String(), "level=INFO") {
		t.Errorf("info records at log_level warn:\n%s", logs)
	}
}

// TestOps_BadLogSettingsNamed: a wrong log_format or log_level is named.
func TestOps_BadLogSettingsNamed(t *testing.T) {
	path := writeConfig(t, "", "echo")
	conf, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(conf, []byte("[server]\n"), []byte("[server]\nlog_format = \"xml\"\nlog_level = \"loud\"\n"), 1), 0o644)
	code, _, errOut := runCmd("check", "-c", path)
	if code != 1 || !strings.Contains(errOut, `server.log_format: "xml" is not one of text, json`) || !strings.Contains(errOut, `server.log_level: "loud" is not one of debug, info, warn, error`) {
		t.Errorf("check: exit %d, %q", code, errOut)
	}
}
