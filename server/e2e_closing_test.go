package server_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/internal/registry"
	"github.com/wasmgate/wasmgate/server"
)

// on_close reads the closing client's uid, session and groups with
// closing_state (abi/ABI.md §5.4), through the Go SDK (/presence), the C
// SDK (/c-presence) and the Rust SDK (/rust-presence): the handler reports
// them to the client's groups.

// scanRegistry hides Local's ClientGroups: the closing state then comes
// from the Registry interface alone (a scan of the groups), as it would
// with a registry that lacks the shortcut.
type scanRegistry struct{ registry.Registry }

func TestOnClose_ReadsClosingState(t *testing.T) {
	for _, reg := range []struct {
		name string
		opt  func() []server.Option
	}{
		{"local", func() []server.Option { return nil }},
		{"interface-only", func() []server.Option {
			return []server.Option{server.WithRegistry(scanRegistry{registry.NewLocal()})}
		}},
	} {
		t.Run(reg.name, func(t *testing.T) {
			srv := startServer(t, handlersWith(t, "presence", "c-presence", "rust-presence"), nil, reg.opt()...)
			for _, path := range []string{"/presence", "/c-presence", "/rust-presence"} {
				t.Run(path, func(t *testing.T) {
					// Groups are gateway-wide: each route gets its own, so that
					// a client of the other route closing late reports elsewhere.
					ga, gb := path[1:]+"-a", path[1:]+"-b"
					leaving, a, b := srv.dial(t, path), srv.dial(t, path), srv.dial(t, path)
					for _, step := range []struct {
						c   *wsClient
						cmd string
					}{
						{a, "join " + ga}, {b, "join " + gb},
						{leaving, "uid alice"}, {leaving, "join " + gb}, {leaving, "join " + ga},
						{leaving, `session {"name":"Alice","n":1}`},
					} {
						step.c.sendText(step.cmd)
						if _, got := step.c.read(); string(got) != "ok" {
							t.Fatalf("%s: got %q", step.cmd, got)
						}
					}
					leaving.ws.Close()
					want := regexp.MustCompile(`^closed [0-9a-f]{20} uid=alice groups=` + ga + `,` + gb + ` session=\{"n":1,"name":"Alice"\}$`)
					for _, c := range []*wsClient{a, b} {
						if _, got := c.read(); !want.Match(got) {
							t.Errorf("report: got %q, want %s", got, want)
						}
					}
					// A client with no uid, session or group reports nothing.
					srv.dial(t, path).ws.Close()
					a.expectSilence(100 * time.Millisecond)
					if strings.Contains(srv.logs.String(), "closing state") {
						t.Errorf("on_close logged a failure:\n%s", srv.logs)
					}
				})
			}
		})
	}
}
