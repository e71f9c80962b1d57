package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/server"
)

func adminGet(t *testing.T, srv *testServer, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + srv.AdminAddr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", path, resp.Status, body)
	}
	return string(body)
}

func moduleStatus(t *testing.T, srv *testServer, name string) server.ModuleStatus {
	t.Helper()
	var st server.Status
	if err := json.Unmarshal([]byte(adminGet(t, srv, "/status")), &st); err != nil {
		t.Fatal(err)
	}
	for _, m := range st.Modules {
		if m.Module == name {
			return m
		}
	}
	t.Fatalf("module %s not in /status", name)
	return server.ModuleStatus{}
}

// TestQuarantine_503And1011UntilReload: a module whose calls mostly trap
// is quarantined — its clients are closed with 1011, new handshakes get 503,
// /status and /metrics say why — while another module keeps serving; with
// quarantine_cooldown = 0 only a reload lifts it.
func TestQuarantine_503And1011UntilReload(t *testing.T) {
	dir := handlersWith(t, "trap", "echo")
	srv := startServer(t, dir, func(c *server.Config) {
		c.Runtime.QuarantineCooldown.Duration = 0
		c.Runtime.CrashLimit = 3
		c.Runtime.RestartBackoff.Duration = time.Millisecond
		c.Runtime.RestartBackoffMax.Duration = 5 * time.Millisecond
	})
	echo := srv.dial(t, "/echo")
	bystander := srv.dial(t, "/trap")
	bad := srv.dial(t, "/trap")
	bad.sendText("ok")
	if _, got := bad.read(); string(got) != "ok" {
		t.Fatalf("trap module echo: %q", got)
	}
	for range 3 {
		bad.sendText("trap!")
	}
	if code := bad.expectClose(); code != websocket.CloseInternalServerErr {
		t.Fatalf("client of the quarantined module closed with %d, want 1011", code)
	}
	if code := bystander.expectClose(); code != websocket.CloseInternalServerErr {
		t.Fatalf("other client of the quarantined module closed with %d, want 1011", code)
	}
	_, resp, err := websocket.DefaultDialer.Dial(srv.url+"/trap", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("handshake on a quarantined module: err %v, resp %v; want 503", err, resp)
	}
	st := moduleStatus(t, srv, "trap")
	if !strings.Contains(st.Quarantined, "3 failures") || st.Traps != 3 {
		t.Errorf("/status for trap: %+v", st)
	}
	if m := adminGet(t, srv, "/metrics"); !strings.Contains(m, `wasmgate_quarantined{module="trap"} 1`) ||
		!strings.Contains(m, `wasmgate_quarantined{module="echo"} 0`) || !strings.Contains(m, `wasmgate_traps_total{module="trap"} 3`) {
		t.Errorf("/metrics:\n%s", m)
	}

	echo.sendText(`{"n":1}`) // the other module never noticed
	if _, got := echo.read(); string(got) != `{"n":1}` {
		t.Fatalf("echo while trap is quarantined: %q", got)
	}

	rep, err := srv.Reload(context.Background())
	if err != nil || len(rep.Replaced) != 1 || rep.Replaced[0] != "trap" {
		t.Fatalf("reload of the quarantined module: %+v, %v", rep, err)
	}
	again := srv.dial(t, "/trap")
	again.sendText("back")
	if _, got := again.read(); string(got) != "back" {
		t.Fatalf("after reload: %q", got)
	}
}

// TestTimer_SurvivesReload: a timer set by one build fires into the next.
func TestTimer_SurvivesReload(t *testing.T) {
	dir := handlersWith(t, "state")
	srv := startServer(t, dir, nil)
	c := srv.dial(t, "/state")
	var ids []string
	eventually(t, "the client to register", func() bool {
		ids, _ = srv.Gateway().GetAllClientIdList(context.Background())
		return len(ids) == 1
	})
	c.sendText("s" + ids[0]) // on_timer (500 ms later) sends "T<id>" to that client
	// The old build must have handled that message (set the timer) before
	// the reload; otherwise the new one does, and runs two events.
	eventually(t, "the timer to be set", func() bool {
		st := moduleStatus(t, srv, "state")
		return st.Timers+int(st.TimersRun) > 0
	})
	// Same code, new bytes (a custom section): a real replacement.
	path := filepath.Join(dir, "state.wasm")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, 0, 6, 4, 'n', 'e', 'x', 't', 1)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := srv.Reload(context.Background())
	if err != nil || len(rep.Replaced) != 1 {
		t.Fatalf("reload: %+v, %v", rep, err)
	}
	if _, got := c.read(); string(got) != "T"+ids[0] {
		t.Fatalf("timer: %q", got)
	}
	if st := moduleStatus(t, srv, "state"); st.TimersRun != 1 || st.Timers != 0 || st.Events != 1 {
		t.Errorf("the new build should have run exactly the timer: %+v", st)
	}
}

// TestModuleLimits_FromConfig: [modules.NAME] keys override [runtime] for
// that module only.
func TestModuleLimits_FromConfig(t *testing.T) {
	three, zero := 3, 0
	srv := startServer(t, handlersWith(t, "echo", "trap"), func(c *server.Config) {
		c.Modules = map[string]server.ModuleConfig{"trap": {PoolSize: &three, TaskWorkers: &zero}}
	})
	if st := moduleStatus(t, srv, "trap"); st.PoolSize != 3 {
		t.Errorf("trap pool_size = %d, want its own 3", st.PoolSize)
	}
	if st := moduleStatus(t, srv, "echo"); st.PoolSize != 4 {
		t.Errorf("echo pool_size = %d, want [runtime]'s 4", st.PoolSize)
	}
}

// TestQuarantine_LiftsAfterCooldown: a quarantine ends by itself after
// quarantine_cooldown: handshakes are accepted and events run again
// without a reload.
func TestQuarantine_LiftsAfterCooldown(t *testing.T) {
	srv := startServer(t, handlersWith(t, "trap"), func(c *server.Config) {
		c.Runtime.CrashLimit = 3
		c.Runtime.QuarantineCooldown.Duration = 500 * time.Millisecond
		c.Runtime.RestartBackoff.Duration = time.Millisecond
		c.Runtime.RestartBackoffMax.Duration = 5 * time.Millisecond
	})
	bad := srv.dial(t, "/trap")
	for range 3 {
		bad.sendText("trap!")
	}
	if code := bad.expectClose(); code != websocket.CloseInternalServerErr {
		t.Fatalf("client of the quarantined module closed with %d, want 1011", code)
	}
	if st := moduleStatus(t, srv, "trap"); st.Quarantined == "" {
		t.Fatalf("not quarantined: %+v", st)
	}
	eventually(t, "the quarantine to lift", func() bool {
		ws, _, err := websocket.DefaultDialer.Dial(srv.url+"/trap", nil)
		if err != nil {
			return false
		}
		ws.Close()
		return true
	})
	again := srv.dial(t, "/trap")
	again.sendText("back")
	if _, got := again.read(); string(got) != "back" {
		t.Fatalf("after the cool-down: %q", got)
	}
	if st := moduleStatus(t, srv, "trap"); st.Quarantined != "" {
		t.Errorf("/status still quarantined: %+v", st)
	}
}
