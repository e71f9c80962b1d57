package server_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/server"
)

// TestHandshake_AllowedOrigins: with server.allowed_origins set, a browser
// handshake from another origin is refused with 403 before the handler
// runs (notify's on_handshake counts events), counted in /status and
// /metrics; listed origins, subdomains of a wildcard and non-browser
// clients (no Origin header) are accepted.
func TestHandshake_AllowedOrigins(t *testing.T) {
	srv := startServer(t, handlersWith(t, "echo"), func(c *server.Config) {
		c.Server.AllowedOrigins = []string{"https://app.example.com", "*.example.org"}
	})
	dial := func(origin string) (int, error) {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		ws, resp, err := websocket.DefaultDialer.Dial(srv.url+"/echo", h)
		if ws != nil {
			ws.Close()
		}
		if resp == nil {
			return 0, err
		}
		return resp.StatusCode, err
	}
	for _, tc := range []struct {
		origin string
		want   int
	}{
		{"https://app.example.com", http.StatusSwitchingProtocols},
		{"HTTPS://APP.EXAMPLE.COM", http.StatusSwitchingProtocols},
		{"https://chat.example.org", http.StatusSwitchingProtocols},
		{"http://a.b.example.org", http.StatusSwitchingProtocols},
		{"", http.StatusSwitchingProtocols}, // not a browser
		{"http://app.example.com", http.StatusForbidden},
		{"https://evil.example", http.StatusForbidden},
		{"https://example.org", http.StatusForbidden},
		{"https://example.org.evil.example", http.StatusForbidden},
		{"https://notexample.org", http.StatusForbidden},
	} {
		if got, err := dial(tc.origin); got != tc.want {
			t.Errorf("Origin %q: HTTP %d (%v), want %d", tc.origin, got, err, tc.want)
		}
	}
	if st := srv.Status(); st.OriginsRefused != 5 {
		t.Errorf("origins_refused = %d, want 5", st.OriginsRefused)
	}
	code, metrics := httpGet(t, "http://"+srv.AdminAddr().String()+"/metrics", "")
	if code != 200 || !strings.Contains(metrics, "wasmgate_origins_refused_total 5\n") {
		t.Errorf("metrics: %d, no wasmgate_origins_refused_total 5", code)
	}
	if !strings.Contains(srv.logs.String(), "origin not in server.allowed_origins") {
		t.Error("no log line for the refused origin")
	}
}

// TestLoadConfig_BadAllowedOrigins: a pattern that could never match as
// meant is refused at load, naming the key and the entry.
func TestLoadConfig_BadAllowedOrigins(t *testing.T) {
	for _, bad := range []string{"", "https://app.example.com/path", "app.*.example.com", "*example.com"} {
		cfg := server.DefaultConfig()
		cfg.Server.AllowedOrigins = []string{"https://ok.example", bad}
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "server.allowed_origins[1]") {
			t.Errorf("allowed_origins %q: %v, want an error naming server.allowed_origins[1]", bad, err)
		}
	}
}
