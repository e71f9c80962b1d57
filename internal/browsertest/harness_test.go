package browsertest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The harness: the real wasmgate binary and the demo backend (built once
// per run), processes on free loopback ports, and one headless Chromium
// per test. Every wait is bounded by the test's context (testTimeout).

const testTimeout = 90 * time.Second

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// repoRoot is the module root (this package is internal/browsertest).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// binaries builds cmd/wasmgate and examples/demo-backend into a
// temporary folder shared by the tests of this run.
func binaries(t *testing.T) (gateway, backend string) {
	t.Helper()
	root := repoRoot(t)
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "wasmgate-browsertest-")
		if buildErr != nil {
			return
		}
		for _, pkg := range []string{"./cmd/wasmgate", "./examples/demo-backend"} {
			cmd := exec.Command("go", "build", "-o", binDir, pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "wasmgate"), filepath.Join(binDir, "demo-backend")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// freePort returns a loopback address nothing listens on (just now),
// below the ephemeral port range: a client that keeps redialing a port in
// that range while nothing listens there (the demo backend and the pages
// while the gateway restarts) can connect to itself (TCP simultaneous
// open) and keep the port from the restarted gateway.
func freePort(t *testing.T) string {
	t.Helper()
	for range 1000 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		_ = ln.Close()
		return addr
	}
	t.Fatal("no free port in 20000–32000")
	return ""
}

// gateway is a wasmgate process with its addresses; restart keeps them.
type gateway struct {
	t                  *testing.T
	exe, config        string
	listen, push, admn string
	cmd                *exec.Cmd
	exited             chan struct{} // closed once cmd has exited
	logs               *os.File
}

// startGateway runs the wasmgate binary on free ports with the example
// handlers (make guests) and push.secret secret. The compiled modules are
// cached for the whole run (the binaries' folder).
func startGateway(t *testing.T, secret string) *gateway {
	t.Helper()
	exe, _ := binaries(t)
	// Only the modules the pages use: the repo's handlers folder holds
	// more (the conformance builds, a 2.4 MB Go module among them), and
	// compiling them all delays the start for nothing.
	built := filepath.Join(repoRoot(t), "handlers")
	handlers := t.TempDir()
	for _, m := range []string{"chat", "c-chat", "notify"} {
		b, err := os.ReadFile(filepath.Join(built, m+".wasm"))
		if err != nil {
			t.Fatalf("%s.wasm is missing from %s: run `make guests` first (%v)", m, built, err)
		}
		if err := os.WriteFile(filepath.Join(handlers, m+".wasm"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	g := &gateway{t: t, exe: exe, listen: freePort(t), push: freePort(t), admn: freePort(t)}
	cfg := fmt.Sprintf(`[server]
listen = %q
handlers_dir = %q
watch_handlers = false

[runtime]
cache_dir = %q

[push]
listen = %q
secret = %q

[admin]
listen = %q

[modules.chat]
config = "rate_limit=0"

[modules.c-chat]
config = "rate_limit=0"
`, g.listen, handlers, filepath.Join(binDir, "cache"), g.push, secret, g.admn)
	g.config = filepath.Join(dir, "wasmgate.toml")
	if err := os.WriteFile(g.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	if g.logs, err = os.Create(filepath.Join(dir, "wasmgate.log")); err != nil {
		t.Fatal(err)
	}
	g.start()
	t.Cleanup(func() {
		g.kill()
		if t.Failed() {
			out, _ := os.ReadFile(g.logs.Name())
			t.Logf("wasmgate log:\n%s", tail(string(out), 4000))
		}
	})
	return g
}

func (g *gateway) start() {
	g.t.Helper()
	g.cmd = exec.Command(g.exe, "start", "-c", g.config)
	g.cmd.Stdout, g.cmd.Stderr = g.logs, g.logs
	g.cmd.SysProcAttr = ChildAttr()
	if err := g.cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	exited := make(chan struct{})
	g.exited = exited
	cmd := g.cmd
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(90 * time.Second) // a cold compile cache under a loaded machine
	for {
		resp, err := http.Get("http://" + g.listen + "/wasmgate.js")
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(g.logs.Name())
			g.t.Fatalf("wasmgate exited at start:\n%s", tail(string(out), 4000))
		default:
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("wasmgate did not come up on %s: %v", g.listen, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill stops the gateway at once (SIGKILL: no close frames, as in a crash).
func (g *gateway) kill() {
	if g.cmd == nil {
		return
	}
	_ = g.cmd.Process.Kill()
	<-g.exited // reaped by start's watcher
	g.cmd = nil
}

func (g *gateway) url(path string) string { return "http://" + g.listen + path }

func (g *gateway) adminURL(path string) string { return "http://" + g.admn + path }

// startBackend runs the demo backend against g's text port.
func startBackend(t *testing.T, g *gateway, secret string) string {
	t.Helper()
	_, exe := binaries(t)
	addr := freePort(t)
	cmd := exec.Command(exe, "-listen", addr, "-push", g.push, "-secret", secret, "-job", "1s")
	logs, err := os.Create(filepath.Join(t.TempDir(), "backend.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	cmd.SysProcAttr = ChildAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			out, _ := os.ReadFile(logs.Name())
			t.Logf("demo backend log:\n%s", tail(string(out), 4000))
		}
	})
	waitHTTP(t, "http://"+addr+"/healthz")
	return "http://" + addr
}

// waitHTTP waits until url answers 200.
func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not come up: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// browser launches Chromium for one test, or skips the test when none is
// installed (make test-browser and make test install it; they skip only
// when it cannot be installed, and say so).
func browser(t *testing.T) (context.Context, *Browser) {
	t.Helper()
	exe := FindChromium()
	if exe == "" {
		t.Skip("SKIP: no chromium on PATH; `make test-browser` installs Debian's chromium (apt-get install -y chromium)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	b, err := Launch(ctx, exe, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return ctx, b
}

// open opens url in a new tab of a phone-sized or desktop viewport and
// fails the test, at its end, if the page had JavaScript errors.
func open(ctx context.Context, t *testing.T, b *Browser, url string, width, height int) *Page {
	t.Helper()
	p, err := b.NewPage(ctx, url, width, height)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() {
		if errs := p.Errors(); len(errs) > 0 {
			t.Errorf("%s had JavaScript errors:\n  %s", url, strings.Join(errs, "\n  "))
		}
	})
	return p
}

// must fails the test on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// screenshot saves the page to $WASMGATE_SCREENSHOTS/name (make
// screenshots sets it to docs/img) and does nothing otherwise.
func screenshot(ctx context.Context, t *testing.T, p *Page, name string) {
	t.Helper()
	dir := os.Getenv("WASMGATE_SCREENSHOTS")
	if dir == "" {
		return
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(repoRoot(t), dir)
	}
	must(t, os.MkdirAll(dir, 0o755))
	must(t, p.Screenshot(ctx, filepath.Join(dir, name)))
	t.Logf("screenshot %s", filepath.Join(dir, name))
}
