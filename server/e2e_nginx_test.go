package server_test

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/server"
)

// startNginx runs Debian's nginx (`make nginx` installs it) with
// deploy/nginx-wasmgate.conf in front of upstream, as an unprivileged-safe
// private instance: its own prefix, pid file and logs in a temporary
// folder, on a free loopback port. It returns nginx's address.
func startNginx(t *testing.T, upstream string) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/nginx"); serr != nil {
			t.Fatal("nginx is not installed: run `make nginx` (Debian's nginx package)")
		}
		bin = "/usr/sbin/nginx"
	}
	snippet, err := os.ReadFile(filepath.Join("..", "deploy", "nginx-wasmgate.conf"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := string(snippet)
	for old, repl := range map[string]string{
		"server 127.0.0.1:8282;  # test: wasmgate": "server " + upstream + ";",
		"listen 80;  # test: nginx":                "listen " + addr + ";",
	} {
		if !strings.Contains(conf, old) {
			t.Fatalf("deploy/nginx-wasmgate.conf lacks the line %q the test replaces", old)
		}
		conf = strings.Replace(conf, old, repl, 1)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "wasmgate.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	main := `daemon off;
worker_processes 1;
pid ` + dir + `/nginx.pid;
error_log ` + dir + `/error.log info;
events { worker_connections 256; }
http {
    access_log ` + dir + `/access.log;
    client_body_temp_path ` + dir + `/body;
    proxy_temp_path ` + dir + `/proxy;
    fastcgi_temp_path ` + dir + `/fastcgi;
    uwsgi_temp_path ` + dir + `/uwsgi;
    scgi_temp_path ` + dir + `/scgi;
    include ` + dir + `/wasmgate.conf;
}
`
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", filepath.Join(dir, "nginx.conf"))
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // nginx's fast shutdown; the master stops its worker
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output:\n%s\nerror.log:\n%s", out.String(), errLog)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case err := <-exited:
			errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %v\n%s\n%s", err, out.String(), errLog)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not listen on %s", addr)
		}
	}
}

// dialerFrom dials from the loopback address ip, so that the client's
// address differs from nginx's own (127.0.0.1).
func dialerFrom(ip string) *websocket.Dialer {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return &websocket.Dialer{NetDial: d.Dial, HandshakeTimeout: 10 * time.Second}
}

// TestNginx_ChatFlowAndClientAddress: the chat example works through
// nginx with deploy/nginx-wasmgate.conf (the Upgrade headers, the
// timeouts), and with server.trusted_proxies naming nginx a handler sees
// the client's own address, not nginx's and not one the client forged.
func TestNginx_ChatFlowAndClientAddress(t *testing.T) {
	srv := startServer(t, handlersWith(t, "chat", "whoami"), func(c *server.Config) {
		c.Server.TrustedProxies = []string{"127.0.0.1"}
	})
	proxied := &testServer{Server: srv.Server, url: "ws://" + startNginx(t, srv.Addr().String()), logs: srv.logs, dialer: dialerFrom("127.0.0.2")}

	chat := chatServer{proxied, "/chat"}
	alice, bob := chat.chat(t), chat.chat(t)
	alice.login("alice")
	bob.login("bob")
	alice.join("lobby")
	bob.join("lobby")
	alice.say("hello through nginx")
	for _, c := range []*chatClient{alice, bob} {
		m := c.expectType("say")
		if m["text"] != "hello through nginx" || m["from"] != alice.id || m["uid"] != "alice" {
			t.Errorf("say as received: %v", m)
		}
	}
	bob.sendJSON(map[string]string{"type": "to_uid", "uid": "alice", "text": "hi alice"})
	if m := alice.expectType("to_uid"); m["text"] != "hi alice" || m["from"] != bob.id {
		t.Errorf("to_uid as received: %v", m)
	}

	whoami := func(url string, d *websocket.Dialer) string {
		t.Helper()
		ws, resp, err := d.Dial(url+"/whoami", http.Header{"X-Forwarded-For": {"6.6.6.6"}})
		if err != nil {
			t.Fatalf("dial %s: %v (%v)", url, err, resp)
		}
		defer ws.Close()
		if err := ws.WriteMessage(websocket.TextMessage, []byte("?")); err != nil {
			t.Fatal(err)
		}
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, got, err := ws.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		return string(got)
	}
	// Through nginx: 127.0.0.2, from the X-Forwarded-For nginx appended
	// to the client's forged one (port 0: a header carries no port).
	if got := whoami(proxied.url, proxied.dialer); got != "127.0.0.2:0" {
		t.Errorf("through nginx the handler saw %q, want the client's 127.0.0.2:0", got)
	}
	// Straight to wasmgate from an address not in trusted_proxies: the
	// header is ignored and the handler sees the peer.
	if got := whoami(srv.url, dialerFrom("127.0.0.2")); !strings.HasPrefix(got, "127.0.0.2:") || got == "127.0.0.2:0" {
		t.Errorf("without a proxy the handler saw %q, want 127.0.0.2:<port>", got)
	}
}
