package server_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/server"
)

// Issue 8, unbounded growth: removed modules, timer storms, and reload or
// shutdown held up by a running guest. Each test runs while a canary
// client keeps echoing on another route.

// heapAfterGC is the live Go heap after a full collection (wazero keeps
// guest linear memory and compiled-module metadata on it).
func heapAfterGC() int64 { return int64(memAfterGC().HeapAlloc) }

// memAfterGC is the runtime's memory statistics after two full
// collections (the second frees what the first only unlinked: pools'
// victim caches, ended goroutines' stacks).
func memAfterGC() goruntime.MemStats {
	goruntime.GC()
	goruntime.GC()
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	return ms
}

// moduleStats returns name's line of Status (the zero value if absent).
func moduleStats(srv *testServer, name string) server.ModuleStatus {
	for _, m := range srv.Status().Modules {
		if m.Module == name {
			return m
		}
	}
	return server.ModuleStatus{}
}

// TestReload_RemovedModuleIsClosed adds and removes a module 100 times
// (every tenth time with a client connected across the removal, which
// keeps being served until it leaves): the memory of its versions comes
// back. A removed module used to be forgotten but never closed, leaking
// its compiled code and instances — over 1 MiB of guest memory a cycle
// for rust-echo.
func TestReload_RemovedModuleIsClosed(t *testing.T) {
	wasm, err := os.ReadFile(filepath.Join(guestDir, "rust-echo.wasm"))
	if err != nil {
		t.Fatalf("%v (run `make guests`)", err)
	}
	dir := handlersWith(t, "echo")
	srv := startServer(t, dir, func(c *server.Config) { c.Server.WatchHandlers = false }) // the test reloads
	canary := srv.startCanary(t, "/echo")
	path := filepath.Join(dir, "gone.wasm")
	cycle := func(i int) {
		t.Helper()
		if err := os.WriteFile(path, wasm, 0o644); err != nil {
			t.Fatal(err)
		}
		if rep, err := srv.Reload(t.Context()); err != nil || len(rep.Loaded) != 1 {
			t.Fatalf("cycle %d: add: %+v, %v", i, rep, err)
		}
		var c *wsClient
		if i%10 == 0 {
			c = srv.dial(t, "/gone")
			c.sendText("before")
			if _, data := c.read(); string(data) != "before" {
				t.Fatalf("cycle %d: echo %q", i, data)
			}
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if rep, err := srv.Reload(t.Context()); err != nil || len(rep.Removed) != 1 {
			t.Fatalf("cycle %d: remove: %+v, %v", i, rep, err)
		}
		if c != nil {
			c.sendText("after") // still served by the removed version
			if _, data := c.read(); string(data) != "after" {
				t.Fatalf("cycle %d: echo after removal %q", i, data)
			}
			c.ws.Close()
		}
	}
	cycle(0) // warm up: compile cache, first-use allocations
	eventually(t, "the warm-up client to leave", func() bool { return srv.Status().Clients == 1 })
	heap0, rss0 := heapAfterGC(), rssBytes()
	start := time.Now()
	for i := 1; i <= 100; i++ {
		cycle(i)
	}
	t.Logf("100 cycles took %v", time.Since(start))
	eventually(t, "the clients of removed versions to leave", func() bool { return srv.Status().Clients == 1 })
	heap1, rss1 := heapAfterGC(), rssBytes()
	t.Logf("100 add/remove cycles: heap %d → %d MiB, RSS %d → %d MiB; canary worst %v",
		heap0>>20, heap1>>20, rss0>>20, rss1>>20, canary.check())
	if grown := heap1 - heap0; grown > 32<<20 {
		t.Errorf("heap grew by %d MiB over 100 add/remove cycles: removed versions are not closed", grown>>20)
	}
}

// TestTimer_StormStaysBounded: a module arming 100 zero-delay timers from
// on_message and from every on_timer. Fired timers waiting for an instance
// count against max_timers, so the storm costs a bounded queue and a few
// delivery goroutines; it used to cost a blocked goroutine and a payload
// per fired timer, without bound.
func TestTimer_StormStaysBounded(t *testing.T) {
	srv := startServer(t, handlersWith(t, "echo", "timer_storm"), nil)
	canary := srv.startCanary(t, "/echo")
	base, heap0 := goruntime.NumGoroutine(), heapAfterGC()
	c := srv.dial(t, "/timer_storm")
	c.sendText("go")
	peak, peakTimers := 0, 0
	deadline := time.Now().Add(60 * time.Second)
	for {
		st := moduleStats(srv, "timer_storm")
		peak, peakTimers = max(peak, goruntime.NumGoroutine()), max(peakTimers, st.Timers)
		if st.TimersRun >= 5000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d timers fired in 60s", st.TimersRun)
		}
		time.Sleep(5 * time.Millisecond)
	}
	heap1 := heapAfterGC()
	t.Logf("5000 timers fired: goroutines %d → peak %d, timers waiting peak %d, heap %d → %d MiB, canary worst %v",
		base, peak, peakTimers, heap0>>20, heap1>>20, canary.check())
	if peak > base+100 {
		t.Errorf("goroutines peaked at %d (from %d): fired timers must not hold a goroutine each", peak, base)
	}
	if peakTimers > 1000 {
		t.Errorf("%d timers waiting, over max_timers (1000)", peakTimers)
	}
	if grown := heap1 - heap0; grown > 32<<20 {
		t.Errorf("heap grew by %d MiB during the storm", grown>>20)
	}
}

// startLoopingTask starts a server on the state fixture with a one-hour
// task deadline and a connected client whose task loops for ever.
func startLoopingTask(t *testing.T, names ...string) (srv *testServer, dir string) {
	t.Helper()
	dir = handlersWith(t, append([]string{"state"}, names...)...)
	srv = startServer(t, dir, func(c *server.Config) {
		c.Runtime.TaskTimeout.Duration = time.Hour
		c.Runtime.EventTimeout.Duration = time.Second // watchdog ticks every 250 ms
		c.Server.WatchHandlers = false                // the test reloads
	})
	c := srv.dial(t, "/state")
	c.sendText("tloop") // on_task("loop") loops for ever
	eventually(t, "the looping task to start", func() bool { return moduleStats(srv, "state").TaskBusy == 1 })
	return srv, dir
}

// TestShutdown_StopsALoopingTask: Shutdown with a 1 s context returns
// within a few seconds although on_task loops under a one-hour deadline.
// It used to wait for the task (task_timeout; for ever without deadlines).
func TestShutdown_StopsALoopingTask(t *testing.T) {
	srv, _ := startLoopingTask(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	select {
	case err := <-done:
		took := time.Since(start)
		t.Logf("Shutdown(1s) returned after %v: %v", took, err)
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if took > 8*time.Second {
			t.Errorf("Shutdown(1s) took %v", took)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Shutdown(1s) still running after 30s: it waits for the looping task")
	}
	if !strings.Contains(srv.logs.String(), "its caller is gone") {
		t.Errorf("the task was not stopped: %s", srv.logs)
	}
}

// TestReload_StatusAnswersWhileATaskRuns: removing a module whose on_task
// loops neither hangs Reload nor blocks /status. Reload used to wait for
// the task while holding the lock /status, /metrics and quarantine take.
func TestReload_StatusAnswersWhileATaskRuns(t *testing.T) {
	srv, dir := startLoopingTask(t, "echo")
	canary := srv.startCanary(t, "/echo")
	if err := os.Remove(filepath.Join(dir, "state.wasm")); err != nil {
		t.Fatal(err)
	}
	reloaded := make(chan error, 1)
	go func() {
		rep, err := srv.Reload(context.Background())
		if err == nil && len(rep.Removed) != 1 {
			err = errorString("reload removed " + strings.Join(rep.Removed, ","))
		}
		reloaded <- err
	}()
	status := make(chan error, 1)
	go func() {
		cl := http.Client{Timeout: 5 * time.Second}
		resp, err := cl.Get("http://" + srv.AdminAddr().String() + "/status")
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		status <- err
	}()
	for _, ch := range []struct {
		what string
		c    chan error
	}{{"/status", status}, {"Reload", reloaded}} {
		select {
		case err := <-ch.c:
			if err != nil {
				t.Errorf("%s: %v", ch.what, err)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("%s did not answer within 15s while a removed module's task loops", ch.what)
		}
	}
	eventually(t, "the removed module's task to be stopped", func() bool {
		return strings.Contains(srv.logs.String(), "its caller is gone")
	})
	canary.check()
}

type errorString string

func (e errorString) Error() string { return string(e) }
