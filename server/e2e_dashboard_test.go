package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/server"
	"github.com/wasmgate/wasmgate/web"
)

// getPage fetches url with an optional bearer token.
func getPage(t *testing.T, url, token string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

// TestServer_ServesTheDemoPages: /demo/chat and /demo/tasks answer plain
// GETs on the public listener with the embedded pages; a module route still
// answers 426, and the admin dashboard is not there.
func TestServer_ServesTheDemoPages(t *testing.T) {
	srv := startServer(t, handlersWith(t, "chat", "notify"), nil)
	base := "http://" + srv.Addr().String()
	for path, want := range map[string][]byte{"/demo/chat": web.ChatDemo, "/demo/tasks": web.TasksDemo} {
		status, h, body := getPage(t, base+path, "")
		if status != 200 || !bytes.Equal(body, want) || !bytes.Contains(body, []byte("/wasmgate.js")) {
			t.Errorf("GET %s: %d, %d bytes, want 200 and the embedded page (%d bytes)", path, status, len(body), len(want))
		}
		if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
	}
	for path, want := range map[string]int{"/chat": 426, "/notify": 426, "/ui": 404, "/demo/nothing": 404} {
		if status, _, _ := getPage(t, base+path, ""); status != want {
			t.Errorf("plain GET %s on the public listener: %d, want %d", path, status, want)
		}
	}
}

// TestAdmin_Dashboard: the admin listener serves the dashboard at /ui; the
// /status it reads needs the push secret and carries what it shows: event
// time percentiles per module and the reload history with each version's
// SHA-256.
func TestAdmin_Dashboard(t *testing.T) {
	dir := handlersWith(t, "echo")
	srv := startServer(t, dir, func(c *server.Config) { c.Push.Secret = "pw"; c.Server.WatchHandlers = false })
	admin := "http://" + srv.AdminAddr().String()
	status, h, body := getPage(t, admin+"/ui", "")
	if status != 200 || !bytes.Equal(body, web.Dashboard) || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /ui: %d %q, %d bytes, want the dashboard", status, h.Get("Content-Type"), len(body))
	}
	if h.Get("X-Frame-Options") != "DENY" {
		t.Errorf("GET /ui: X-Frame-Options %q, want DENY", h.Get("X-Frame-Options"))
	}
	if status, _, _ := getPage(t, admin+"/status", ""); status != http.StatusUnauthorized {
		t.Fatalf("GET /status without the secret: %d, want 401", status)
	}

	c := srv.dial(t, "/echo")
	c.sendText("hi")
	c.read()
	status, _, body = getPage(t, admin+"/status", "pw")
	if status != 200 {
		t.Fatalf("GET /status: %d %s", status, body)
	}
	var st server.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Modules) != 1 || st.Modules[0].EventP50 <= 0 || st.Modules[0].EventP99 < st.Modules[0].EventP50 {
		t.Fatalf("modules = %+v, want echo with event-time percentiles", st.Modules)
	}
	if len(st.Reloads) != 1 || st.Reloads[0].Module != "echo" || st.Reloads[0].Action != "loaded" ||
		st.Reloads[0].SHA256 != st.Modules[0].SHA256 || st.Reloads[0].Time.IsZero() {
		t.Fatalf("reloads = %+v, want echo loaded with its sha256 %s", st.Reloads, st.Modules[0].SHA256)
	}
	first := st.Modules[0].SHA256

	// A new version (c-echo's code under the name echo), then a broken one.
	data, err := readGuest(guestDir, "c-echo")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "echo.wasm")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(path, data, 0o644))
	_, err = srv.Reload(context.Background())
	must(err)
	must(os.WriteFile(path, []byte("not wasm"), 0o644))
	_, err = srv.Reload(context.Background())
	must(err)
	st = srv.Status()
	r := st.Reloads
	if len(r) != 3 || r[1].Action != "replaced" || r[1].Previous != first || r[1].SHA256 != st.Modules[0].SHA256 ||
		r[2].Action != "refused" || r[2].Error == "" || r[2].SHA256 == st.Modules[0].SHA256 {
		t.Fatalf("reloads = %+v, want loaded, replaced (previous %s), refused", r, first)
	}
}

// TestAdmin_CrossSiteRequestsRefused: a web page of another origin cannot
// use the admin listener through the operator's browser (no secret is set,
// as by default): its POSTs are refused with 403 and push nothing, while a
// backend (no Origin) and the /ui page (its own origin) are served.
func TestAdmin_CrossSiteRequestsRefused(t *testing.T) {
	srv := startServer(t, handlersWith(t, "echo"), nil)
	admin := srv.AdminAddr().String()
	c := srv.dial(t, "/echo")
	post := func(origin, path, body string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+admin+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "text/plain") // a simple request: no preflight
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, origin := range []string{"https://evil.example", "null", "http://127.0.0.1:1"} {
		if got := post(origin, "/api/sendToAll", `{"data":"pwned"}`); got != http.StatusForbidden {
			t.Fatalf("POST /api/sendToAll from %s: %d, want 403", origin, got)
		}
		if got := post(origin, "/reload", ""); got != http.StatusForbidden {
			t.Fatalf("POST /reload from %s: %d, want 403", origin, got)
		}
	}
	c.expectSilence(200 * time.Millisecond)
	if got := post("http://"+admin, "/api/sendToAll", `{"data":"from the dashboard"}`); got != http.StatusOK {
		t.Fatalf("POST from the admin listener's own origin: %d", got)
	}
	if _, data := c.read(); string(data) != "from the dashboard" {
		t.Fatalf("got %q", data)
	}
	if got := post("", "/api/sendToAll", `{"data":"from a backend"}`); got != http.StatusOK {
		t.Fatalf("POST without Origin (a backend): %d", got)
	}
	if _, data := c.read(); string(data) != "from a backend" {
		t.Fatalf("got %q", data)
	}
}
