package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/server"
)

// TestPushHostile_SilentStrangersCannotHoldEverySlot: with a secret set,
// connections that send nothing used to hold their push.max_backends slot
// for ever (line_timeout starts only with a line's first byte), so a few
// idle TCP connects locked every real backend out. A stranger now has
// line_timeout from connecting to authenticate; after that its slot frees
// and a real backend gets in.
func TestPushHostile_SilentStrangersCannotHoldEverySlot(t *testing.T) {
	const limit = 2
	srv := hostileServer(t, func(c *server.Config) {
		c.Push.MaxBackends = limit
		c.Push.LineTimeout.Duration = 300 * time.Millisecond
	})
	canary := srv.startCanary(t, "/echo")
	for range limit {
		silent := srv.backend(t)
		silent.expectClosed(10 * time.Second) // cut at line_timeout, not never
	}
	deadline := time.Now().Add(10 * time.Second) // a no-freeze bound
	for srv.Status().Backends > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d silent strangers still counted after their auth deadline", srv.Status().Backends)
		}
		time.Sleep(10 * time.Millisecond)
	}
	b := srv.backend(t)
	b.send(`{"cmd":"auth","secret":"` + hostileSecret + `"}`)
	if ans := b.readLine(); strings.Contains(ans, "too_many_backends") || !strings.Contains(ans, `"ok":true`) {
		t.Fatalf("a real backend after the strangers got %q", ans)
	}
	// Once authenticated, an idle backend is not cut.
	time.Sleep(600 * time.Millisecond)
	b.expectOK(`{"cmd":"ping"}`)
	canary.check()
}
