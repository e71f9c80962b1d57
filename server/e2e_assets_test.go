package server_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/wasmgate/wasmgate/web"
)

// TestServer_ServesTheBrowserClient: the public listener serves the
// browser client (classic script, ES module, types) to plain GETs, while
// module routes keep answering 426 to them.
func TestServer_ServesTheBrowserClient(t *testing.T) {
	srv := startServer(t, handlersWith(t, "echo"), nil)
	base := "http://" + srv.Addr().String()
	for path, want := range map[string][]byte{"/wasmgate.js": web.Script, "/wasmgate.mjs": web.Module, "/wasmgate.d.ts": web.Types} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(body, want) || len(want) == 0 {
			t.Errorf("GET %s: %d, %d bytes, want 200 and the embedded %d bytes", path, resp.StatusCode, len(body), len(want))
		}
		if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, "script") && !strings.Contains(ct, "typescript") {
			t.Errorf("GET %s: Content-Type %q", path, ct)
		}
	}
	if !bytes.Contains(web.Script, []byte("wasmgate")) || !bytes.Contains(web.Module, []byte("export")) {
		t.Error("the embedded client is not the client")
	}
	resp, err := http.Post(base+"/wasmgate.js", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /wasmgate.js: %d, want 405", resp.StatusCode)
	}
	resp, err = http.Get(base + "/echo")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("plain GET /echo: %d, want 426", resp.StatusCode)
	}
}
