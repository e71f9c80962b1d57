package server_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// reply is one answer a client saw: which build made it and when the
// message it answers was sent.
type reply struct {
	build          byte
	sentAt, recvAt time.Time
}

// TestReload_NoClientDroppedAndNewBuildServes replaces the module under 500
// echo clients sending continuously, 10 times, alternating two builds that
// answer differently: no client may be disconnected, no message lost or
// duplicated, and every message sent after a reload returned must be
// answered by the new build.
func TestReload_NoClientDroppedAndNewBuildServes(t *testing.T) {
	clients := 500
	if testing.Short() {
		clients = 50
	}
	dir := handlersWith(t, "echoA")
	path := filepath.Join(dir, "echo.wasm")
	if err := os.Rename(filepath.Join(dir, "echoA.wasm"), path); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, dir, nil)
	builds := map[byte][]byte{}
	for _, b := range []string{"A", "B"} {
		data, err := os.ReadFile(filepath.Join("..", "runtime", "testdata", "echo"+b+".wasm"))
		if err != nil {
			t.Fatal(err)
		}
		builds[b[0]] = data
	}

	var stop atomic.Bool
	var wg sync.WaitGroup
	seen := make([][]reply, clients)
	answered := make([]atomic.Int64, clients) // len(seen[i]), readable while the clients run
	for i := 0; i < clients; i++ {
		c := srv.dial(t, "/echo")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; !stop.Load(); seq++ {
				msg := strconv.Itoa(seq)
				sent := time.Now()
				if err := c.ws.WriteMessage(1, []byte(msg)); err != nil {
					t.Errorf("client %d: write: %v", i, err)
					return
				}
				f, ok := c.next(10 * time.Second)
				if !ok || f.err != nil {
					t.Errorf("client %d: no answer to %d (disconnected: %v)", i, seq, f.err)
					return
				}
				got := string(f.data)
				if len(got) < 2 || got[1] != ':' || got[2:] != msg {
					t.Errorf("client %d: answer %q to %q (lost or duplicated)", i, got, msg)
					return
				}
				seen[i] = append(seen[i], reply{got[0], sent, time.Now()})
				answered[i].Add(1)
			}
		}()
	}

	type swap struct {
		build     byte
		begun, at time.Time // Reload called, Reload returned
	}
	var swaps []swap
	var reloadTimes []time.Duration
	// everyAnswered waits until every client i has had marks[i] answers:
	// two more than when a reload returned means an answer to a message
	// sent after it (each client sends once the previous one is answered).
	everyAnswered := func(what string, marks []int64) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second) // a no-freeze bound: 500 clients under -race on a loaded box
		for i := range answered {
			for answered[i].Load() < marks[i] {
				if time.Now().After(deadline) {
					t.Fatalf("%s: client %d has %d answers after 60s, want %d", what, i, answered[i].Load(), marks[i])
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
	ones := make([]int64, clients)
	for i := range ones {
		ones[i] = 1
	}
	everyAnswered("before the reloads", ones)
	for k := 0; k < 10; k++ {
		b := byte("BA"[k%2])
		if err := os.WriteFile(path, builds[b], 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		rep, err := srv.Reload(t.Context())
		if err != nil || len(rep.Replaced) != 1 || len(rep.Refused) != 0 {
			t.Fatalf("reload %d: %+v, %v", k, rep, err)
		}
		reloadTimes = append(reloadTimes, time.Since(start))
		swaps = append(swaps, swap{b, start, time.Now()})
		marks := make([]int64, clients)
		for i := range marks {
			marks[i] = answered[i].Load() + 2
		}
		everyAnswered(fmt.Sprintf("after reload %d", k), marks)
	}
	stop.Store(true)
	wg.Wait()

	// A message sent after a reload returned must be answered by that build,
	// or by a build whose reload began before the answer arrived.
	valid := func(r reply) bool {
		want := byte('A')
		for _, s := range swaps {
			if s.at.Before(r.sentAt) {
				want = s.build
			}
		}
		if r.build == want {
			return true
		}
		for _, s := range swaps {
			if s.at.After(r.sentAt) && s.begun.Before(r.recvAt) && s.build == r.build {
				return true
			}
		}
		return false
	}
	n := 0
	for i, rs := range seen {
		for _, r := range rs {
			n++
			if !valid(r) {
				t.Fatalf("client %d: message sent at %v answered by old build %c", i, r.sentAt.Format("15:04:05.000000"), r.build)
			}
		}
	}
	if n < clients*10 {
		t.Fatalf("only %d answers in all", n)
	}
	if c, _ := srv.Gateway().GetAllClientIdCount(t.Context()); c != clients {
		t.Fatalf("%d clients connected after the reloads, want %d", c, clients)
	}
	t.Logf("%d answers; reload (compile + swap) of a WAT module: %v", n, reloadTimes)
}

func TestReload_BrokenBuildKeepsOldVersion(t *testing.T) {
	dir := handlersWith(t, "echoA")
	srv := startServer(t, dir, nil)
	c := srv.dial(t, "/echoA")
	if err := os.WriteFile(filepath.Join(dir, "echoA.wasm"), []byte("\x00asm garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := srv.Reload(t.Context())
	if err != nil || len(rep.Refused) != 1 || !strings.Contains(rep.Refused[0].Error(), "previous version keeps serving") {
		t.Fatalf("reload of a broken build: %+v, %v", rep, err)
	}
	c.sendText("still")
	if _, d := c.read(); string(d) != "A:still" {
		t.Fatalf("got %q", d)
	}
	if !strings.Contains(srv.logs.String(), "sha256=") {
		t.Error("reloads are not logged with the module's SHA-256")
	}
}
