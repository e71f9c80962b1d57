package server_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/wasmgate/wasmgate/server"
)

// hostileEventTimeout is the event (and task) deadline of the hostile-guest
// suite: short, so runaway guests are stopped often.
const hostileEventTimeout = 50 * time.Millisecond

// hostileAttack is one misbehaving module of the suite: a copy of
// runtime/testdata/hostile.wasm whose module config selects the event that
// loops (or recurses), and how a client makes it misbehave once.
type hostileAttack struct {
	name, mode string
	event      string // the event that fails, as logged
	want       string // what its failure says (alternatives split by "|")
	provoke    func(t *testing.T, srv *testServer, route string) error
}

// TestHostileGuests_NoFreeze runs, while a canary client echoes on another
// route, guests that try to stall the process: a loop in every event
// (handshake, connect, message, close, task, timer), a loop-free call tree
// of 2^41 calls, unbounded recursion, and modules whose _initialize or
// on_start loops or which set globals they do not declare (the deadline
// rewrite's own). Each misbehaviour is provoked three times. The canary
// must never miss an answer (canaryBound), every runaway must be stopped
// with a deadline or stack-overflow error, the loader modules must be
// refused at start, and after runtime/debug.FreeOSMemory the process's RSS
// must be back within 20% of where it started.
func TestHostileGuests_NoFreeze(t *testing.T) {
	dial := func(t *testing.T, srv *testServer, route string) (*websocket.Conn, error) {
		ws, _, err := websocket.DefaultDialer.Dial(srv.url+route, nil)
		return ws, err
	}
	sendOne := func(t *testing.T, srv *testServer, route string) error {
		ws, err := dial(t, srv, route)
		if err != nil {
			return err
		}
		defer ws.Close()
		return ws.WriteMessage(websocket.TextMessage, []byte("x"))
	}
	attacks := []hostileAttack{
		{"hostile_handshake", "h", "on_handshake", "deadline", func(t *testing.T, srv *testServer, route string) error {
			ws, err := dial(t, srv, route)
			if err == nil {
				ws.Close()
				return errors.New("a handshake whose handler was stopped was accepted")
			}
			return nil
		}},
		{"hostile_connect", "c", "on_connect", "deadline", func(t *testing.T, srv *testServer, route string) error {
			ws, err := dial(t, srv, route)
			if err == nil {
				ws.Close()
			}
			return err
		}},
		{"hostile_message", "m", "on_message", "deadline", sendOne},
		{"hostile_close", "x", "on_close", "deadline", func(t *testing.T, srv *testServer, route string) error {
			ws, err := dial(t, srv, route)
			if err == nil {
				ws.Close()
			}
			return err
		}},
		{"hostile_task", "t", "on_task", "deadline", sendOne},
		{"hostile_timer", "T", "on_timer", "deadline", sendOne},
		{"hostile_tree", "r", "on_message", "deadline", sendOne},
		// 10,000 frames take more than 50 ms under -race on a loaded
		// machine, so the deadline may win the race with the depth bound.
		{"hostile_deep", "d", "on_message", "stack overflow|deadline", sendOne},
	}
	refused := map[string]string{
		"hostile_start":   "ran past", // on_start loops
		"init_loops":      "ran past", // _initialize loops
		"crafted_globals": "global.set 0 at offset",
	}

	dir := handlersWith(t, "echo", "init_loops", "crafted_globals")
	hostile, err := os.ReadFile(filepath.Join("..", "runtime", "testdata", "hostile.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	modules := map[string]server.ModuleConfig{"hostile_start": {Config: "s"}}
	for _, a := range attacks {
		modules[a.name] = server.ModuleConfig{Config: a.mode}
	}
	for name := range modules {
		if err := os.WriteFile(filepath.Join(dir, name+".wasm"), hostile, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv := startServer(t, dir, func(c *server.Config) {
		c.Runtime.EventTimeout.Duration = hostileEventTimeout
		c.Runtime.TaskTimeout.Duration = hostileEventTimeout
		c.Runtime.CrashLimit = 0 // failing over and over is the point
		c.Runtime.RestartBackoff.Duration = 0
		c.Runtime.RestartBackoffMax.Duration = 0
		c.Modules = modules
	})

	// The loaders that never finish, or reference the rewrite's globals,
	// are refused at start, each for its reason.
	loadErrs := fmt.Sprint(srv.LoadErrors())
	for name, want := range refused {
		found := false
		for _, e := range srv.LoadErrors() {
			if strings.Contains(e.Error(), name) && strings.Contains(e.Error(), want) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s not refused with %q at start; refused: %s", name, want, loadErrs)
		}
	}

	canary := srv.startCanary(t, "/echo")
	debug.FreeOSMemory()
	rss0 := rssBytes()

	failures := func(module, event string) int {
		n := 0
		for _, line := range strings.Split(srv.logs.String(), "\n") {
			if strings.Contains(line, "handler failed") && strings.Contains(line, "module="+module+" event="+event+" ") {
				n++
			}
		}
		return n
	}
	const rounds = 3
	for round := 1; round <= rounds; round++ {
		var wg sync.WaitGroup
		for _, a := range attacks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := a.provoke(t, srv, "/"+a.name); err != nil {
					t.Errorf("/%s round %d: %v", a.name, round, err)
				}
			}()
		}
		wg.Wait()
		for _, a := range attacks {
			eventually(t, fmt.Sprintf("%s's %s stopped %d times", a.name, a.event, round), func() bool {
				return failures(a.name, a.event) >= round
			})
		}
	}
	logs := srv.logs.String()
	for _, a := range attacks {
		ok := false
		for _, line := range strings.Split(logs, "\n") {
			if !strings.Contains(line, "module="+a.name+" event="+a.event+" ") {
				continue
			}
			for _, want := range strings.Split(a.want, "|") {
				ok = ok || strings.Contains(line, want)
			}
		}
		if !ok {
			t.Errorf("%s: no %s failure saying %q:\n%s", a.name, a.event, a.want, grepLines(logs, "module="+a.name+" "))
		}
	}
	worst := canary.check()

	// Memory: back within 20% of the start once the heap is returned.
	var rss int64
	deadline := time.Now().Add(10 * time.Second)
	for {
		debug.FreeOSMemory()
		if rss = rssBytes(); rss <= rss0+rss0/5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("canary worst round trip %v; RSS %.1f MiB at the start, %.1f MiB after %d rounds", worst, float64(rss0)/(1<<20), float64(rss)/(1<<20), rounds)
	if rss0 > 0 && rss > rss0+rss0/5 {
		t.Errorf("RSS %d MiB after the attacks, more than 20%% over the %d MiB at the start", rss>>20, rss0>>20)
	}
}

// grepLines returns the lines of text that contain sub.
func grepLines(text, sub string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, sub) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
