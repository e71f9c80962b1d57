package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/internal/kv"
)

// waitSent waits until host has recorded a send to `to` and returns the
// messages sent to it.
func waitSent(t *testing.T, host *recordingHost, to string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got []string
		for _, s := range host.messages() {
			if s.to == to {
				got = append(got, string(s.msg.Data))
			}
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages to %q after 10s, want %d: %q", len(got), to, n, got)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitFor polls cond until it holds, failing the test after 10 s: tests
// wait on a condition, never on a sleep.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 10s waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func send(t *testing.T, m *Module, msg string) {
	t.Helper()
	if err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte(msg)}); err != nil {
		t.Fatalf("on_message %q: %v", msg, err)
	}
}

func TestKV_ConcurrentIncrFromAllInstances(t *testing.T) {
	// Eight instances held at once, each running on_message("i") 125 times
	// on its own goroutine: 1,000 kv_incr from eight instances that share
	// no memory must sum exactly.
	m := loadWith(t, Config{PoolSize: 8}, &recordingHost{}, "state")
	ctx := context.Background()
	insts := make([]*instance, 8)
	for i := range insts {
		inst, err := m.pool.get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		insts[i] = inst
	}
	var wg sync.WaitGroup
	for _, inst := range insts {
		wg.Go(func() {
			for range 125 {
				if err := inst.writeMessage("c1", []byte("i")); err != nil {
					t.Error(err)
					return
				}
				if rc, err := inst.call(inst.onMessage, 2, 1, 0); rc != 0 || err != nil {
					t.Errorf("kv_incr: %d, %v", rc, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for _, inst := range insts {
		m.pool.put(inst, true)
	}
	v, err := m.state.kv.Get(ctx, "n")
	if err != nil || string(v) != "1000" {
		t.Fatalf("n = %q, %v; want 1000", v, err)
	}
}

func TestKV_CASSetIfAbsent(t *testing.T) {
	m := loadWith(t, Config{PoolSize: 1}, &recordingHost{}, "state")
	send(t, m, "cfirst")
	send(t, m, "csecond") // key exists now: no swap
	if v, _ := m.state.kv.Get(context.Background(), "k"); string(v) != "first" {
		t.Fatalf("k = %q, want first", v)
	}
}

func TestTask_RoundTrip(t *testing.T) {
	host := &recordingHost{}
	m := loadWith(t, Config{PoolSize: 2, TaskWorkers: 2, EventTimeout: 5 * time.Second}, host, "state")
	send(t, m, "thello")
	if got := waitSent(t, host, "finish", 1); got[0] != "0hello" {
		t.Fatalf("on_finish got %q, want status 0 and the result", got[0])
	}
	send(t, m, "tfsorry")
	if got := waitSent(t, host, "finish", 2); got[1] != "1fsorry" {
		t.Fatalf("failed task: on_finish got %q, want status 1", got[1])
	}
}

func TestTask_TrapAndTimeoutReachOnFinish(t *testing.T) {
	host := &recordingHost{}
	m := loadWith(t, Config{PoolSize: 1, TaskWorkers: 1, EventTimeout: 50 * time.Millisecond, TaskTimeout: 200 * time.Millisecond}, host, "state")
	send(t, m, "txboom")
	got := waitSent(t, host, "finish", 1)
	if !strings.HasPrefix(got[0], "2") || !strings.Contains(got[0], "on_task") {
		t.Fatalf("trapping task: on_finish got %q, want status 2 and the error", got[0])
	}
	start := time.Now()
	send(t, m, "tloop")
	got = waitSent(t, host, "finish", 2)
	if !strings.HasPrefix(got[1], "2") || !strings.Contains(got[1], "deadline") {
		t.Fatalf("looping task: on_finish got %q, want status 2 and a deadline error", got[1])
	}
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("looping task stopped after %s, before its 200ms task deadline", took)
	}
	send(t, m, "tafter") // the task pool recovered
	if got = waitSent(t, host, "finish", 3); got[2] != "0after" {
		t.Fatalf("task after failures: %q", got[2])
	}
	if st := m.Stats(); st.TasksDone != 3 || st.TasksFail != 2 || st.Timeouts != 1 || st.Traps != 1 {
		t.Errorf("stats %+v: want 3 tasks done, 2 failed, 1 timeout, 1 trap", st)
	}
}

func TestTask_QueueFullIsAnErrorNotABlock(t *testing.T) {
	host := &recordingHost{}
	r, logs := newTestRuntimeWith(t, Config{PoolSize: 1, TaskWorkers: 1, TaskQueue: 1, EventTimeout: 50 * time.Millisecond, TaskTimeout: 300 * time.Millisecond}, host)
	m, err := loadFixture(t, r, "state", "")
	if err != nil {
		t.Fatal(err)
	}
	send(t, m, "tloop") // occupies the only worker
	waitFor(t, "the looping task to start", func() bool { return m.Stats().TaskBusy == 1 })
	send(t, m, "tqueued") // fills the queue
	start := time.Now()
	send(t, m, "trefused")
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("task with a full queue took %s: it must not wait", took)
	}
	want := fmt.Sprintf("result=%d", -int(abi.ErrnoQueueFull))
	if !strings.Contains(logs.String(), want) {
		t.Errorf("logs should show on_message returning %s: %s", want, logs)
	}
	got := waitSent(t, host, "finish", 2)
	if !strings.HasPrefix(got[0], "2") || got[1] != "0queued" {
		t.Errorf("on_finish got %q", got)
	}
}

func TestTask_ResultOnlyInsideOnTask(t *testing.T) {
	host := &recordingHost{}
	m := loadWith(t, Config{PoolSize: 1}, host, "state")
	send(t, m, "r")
	if got := waitSent(t, host, "c1", 1); got[0] != fmt.Sprint(int(abi.ErrnoUnsupported)) {
		t.Fatalf("task_result outside on_task = errno %s, want %d", got[0], abi.ErrnoUnsupported)
	}
}

func TestTimer_FiresIntoTheCurrentVersion(t *testing.T) {
	host := &recordingHost{}
	r, _ := newTestRuntimeWith(t, Config{PoolSize: 1}, host)
	old, err := loadFixture(t, r, "state", "")
	if err != nil {
		t.Fatal(err)
	}
	send(t, old, "stimer")
	// A reload: the new version becomes the target, the old one closes
	// before the 500 ms timer fires.
	cur, err := loadFixture(t, r, "state", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := waitSent(t, host, "timer", 1); got[0] != "Ttimer" {
		t.Fatalf("on_timer got %q", got[0])
	}
	if st := cur.Stats(); st.TimersRun != 1 || st.Events < 1 {
		t.Errorf("the timer should have run on the new version: %+v", st)
	}
}

func TestTimer_BoundedPerModule(t *testing.T) {
	host := &recordingHost{}
	r, logs := newTestRuntimeWith(t, Config{PoolSize: 1, MaxTimers: 2}, host)
	m, err := loadFixture(t, r, "state", "")
	if err != nil {
		t.Fatal(err)
	}
	send(t, m, "stimer")
	send(t, m, "stimer")
	send(t, m, "stimer")
	if want := fmt.Sprintf("result=%d", -int(abi.ErrnoLimit)); !strings.Contains(logs.String(), want) {
		t.Errorf("third timer should fail with %s: %s", want, logs)
	}
	waitSent(t, host, "timer", 2)
}

// TestCrashPolicy_BackoffThenQuarantine: a failure delays the next instance
// (back-off); failures spread among successes (load, one client's poison
// input) do not quarantine; crash_limit failures that are most of the calls
// do, and the quarantine lifts by itself after the cool-down.
func TestCrashPolicy_BackoffThenQuarantine(t *testing.T) {
	host := &recordingHost{}
	quarantined := make(chan string, 1)
	cfg := Config{PoolSize: 1, CrashLimit: 3, CrashWindow: time.Minute, RestartBackoff: 40 * time.Millisecond, RestartBackoffMax: time.Second,
		QuarantineCooldown: 300 * time.Millisecond,
		OnQuarantine:       func(m *Module, why string) { quarantined <- why }}
	m := loadWith(t, cfg, host, "trap")
	ctx := context.Background()
	if err := m.OnMessage(ctx, "c1", abi.Message{Data: []byte("trap")}); !errors.Is(err, ErrTrap) {
		t.Fatalf("first trap: %v", err)
	}
	start := time.Now()
	if err := m.OnMessage(ctx, "c1", abi.Message{Data: []byte("ok")}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 40*time.Millisecond {
		t.Errorf("the replacement instance started after %s, before the 40ms back-off", took)
	}
	// Five more traps, each among three successes: 6 failures in the
	// window, over the limit, but a minority of the calls.
	for range 5 {
		for range 3 {
			if err := m.OnMessage(ctx, "c1", abi.Message{Data: []byte("ok")}); err != nil {
				t.Fatal(err)
			}
		}
		_ = m.OnMessage(ctx, "c1", abi.Message{Data: []byte("trap")})
	}
	if why := m.Quarantined(); why != "" {
		t.Fatalf("quarantined by failures spread among successes: %s", why)
	}
	for range 3 {
		_ = m.OnMessage(ctx, "c1", abi.Message{Data: []byte("trap")})
	}
	select {
	case why := <-quarantined:
		if !strings.Contains(why, "4 failures in 7 calls") { // traps at calls 18, 22, 23 and 24: 4 of the last 7 calls; the 3rd trap of the loop is refused
			t.Errorf("reason %q", why)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no quarantine after 3 traps with a limit of 3")
	}
	if err := m.OnMessage(ctx, "c1", abi.Message{Data: []byte("ok")}); !errors.Is(err, ErrQuarantined) {
		t.Fatalf("event on a quarantined module: %v", err)
	}
	if status, err := m.OnHandshake(ctx, &abi.Handshake{ClientID: "c2"}); status != http.StatusServiceUnavailable || err == nil {
		t.Fatalf("handshake on a quarantined module = %d, %v; want 503", status, err)
	}
	if st := m.Stats(); st.Quarantined == "" || st.Traps != 8 {
		t.Errorf("stats %+v", st)
	}
	// The cool-down lifts it: events run again.
	deadline := time.Now().Add(10 * time.Second)
	for m.Quarantined() != "" {
		if time.Now().After(deadline) {
			t.Fatal("quarantine not lifted 10s after a 300ms cool-down")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := m.OnMessage(ctx, "c1", abi.Message{Data: []byte("ok")}); err != nil {
		t.Fatalf("event after the cool-down: %v", err)
	}
	if status, err := m.OnHandshake(ctx, &abi.Handshake{ClientID: "c3"}); status != 0 || err != nil {
		t.Fatalf("handshake after the cool-down = %d, %v", status, err)
	}
}

func TestPool_BoundedQueueThenPause(t *testing.T) {
	p := newPool(1, 2, func(context.Context) (*instance, error) { return &instance{}, nil })
	ctx := context.Background()
	held, err := p.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	served := 0
	for range 5 {
		wg.Go(func() {
			inst, err := p.get(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			served++
			mu.Unlock()
			p.put(inst, true)
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for s := p.stats(); s.Waiting != 2 || s.Paused != 3; s = p.stats() {
		if time.Now().After(deadline) {
			t.Fatalf("with 1 busy instance and 5 callers: %+v, want 2 queued and 3 paused", s)
		}
		time.Sleep(time.Millisecond)
	}
	p.put(held, true)
	wg.Wait()
	if s := p.stats(); served != 5 || s.Waiting != 0 || s.Paused != 0 || s.Pauses != 3 {
		t.Fatalf("served %d, stats %+v", served, s)
	}
}

func TestPool_WaitingCallerGivesUpWithItsContext(t *testing.T) {
	p := newPool(1, 1, func(context.Context) (*instance, error) { return &instance{}, nil })
	held, _ := p.get(context.Background())
	defer p.put(held, true)
	gone, leave := context.WithCancel(context.Background())
	for range 2 { // one queued, one paused
		go func() { _, _ = p.get(gone) }()
	}
	waitFor(t, "one caller queued and one paused", func() bool {
		s := p.stats()
		return s.Waiting == 1 && s.Paused == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := p.get(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("get = %v, want deadline exceeded", err)
	}
	leave()
	waitFor(t, "callers that gave up to be uncounted", func() bool {
		s := p.stats()
		return s.Waiting == 0 && s.Paused == 0
	})
}

func TestLoad_PerModuleLimits(t *testing.T) {
	r, _ := newTestRuntimeWith(t, Config{PoolSize: 2, EventTimeout: 10 * time.Second}, &recordingHost{})
	strict, err := r.LoadFile(context.Background(), "loop", "testdata/loop.wasm", "", WithLimits(func(c *Config) {
		c.EventTimeout = 50 * time.Millisecond
		c.PoolSize = 3
		c.MemoryLimitPages = 1 // runtime-wide: ignored
	}))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := loadFixture(t, r, "echo", "")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := strict.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("loop")}); !errors.Is(err, ErrTrap) {
		t.Fatalf("looping guest with a 50ms deadline: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("stopped after %s: the module's 50ms deadline was not used (the runtime's is 10s)", took)
	}
	if got := strict.Stats(); got.PoolSize != 3 || got.Timeouts != 1 {
		t.Errorf("strict module stats %+v: want pool 3 and one timeout", got)
	}
	if got := plain.Stats(); got.PoolSize != 2 {
		t.Errorf("other module's pool = %d, want the runtime's 2", got.PoolSize)
	}
	if strict.cfg.MemoryLimitPages != r.cfg.MemoryLimitPages {
		t.Error("a runtime-wide field was overridden per module")
	}
}

func TestLoad_LoopingOnStartIsStopped(t *testing.T) {
	r, _ := newTestRuntimeWith(t, Config{PoolSize: 1, EventTimeout: 50 * time.Millisecond}, &recordingHost{})
	_, err := loadFixture(t, r, "start_loops", "")
	if err == nil || !strings.Contains(err.Error(), "starting the instance ran past 1s") {
		t.Fatalf("load of a module whose on_start loops: %v", err)
	}
}

// TestLoad_HugeDeclaredCountsRefused: wazero v1.12 allocates whatever count
// a module declares, so this 15-byte file (2^32-1 globals) would kill the
// process with an out-of-memory; the runtime's own decoder refuses it first,
// with deadlines on or off.
func TestLoad_HugeDeclaredCountsRefused(t *testing.T) {
	bomb := []byte("\x00asm\x01\x00\x00\x00\x06\x05\xff\xff\xff\xff\x0f")
	for _, timeout := range []time.Duration{0, 50 * time.Millisecond} {
		r, _ := newTestRuntimeWith(t, Config{PoolSize: 1, EventTimeout: timeout}, &recordingHost{})
		if _, err := r.Load(context.Background(), "bomb", bomb, ""); err == nil || !strings.Contains(err.Error(), "not a valid wasm module") {
			t.Fatalf("deadline %s: %v", timeout, err)
		}
	}
}

// TestKV_StoreFromConfig: Config.KVStore gives each module its store, as
// cluster mode gives every node's runtime the same Redis store: two
// runtimes whose factory returns one shared store count into one counter,
// the factory sees the module's name and bound, and a factory that fails
// refuses the Load.
func TestKV_StoreFromConfig(t *testing.T) {
	shared := kv.New(1 << 20)
	var mu sync.Mutex
	var asked []string
	cfg := Config{PoolSize: 1, KVMaxBytes: 12345, KVStore: func(module string, maxBytes int) (kv.KV, error) {
		mu.Lock()
		asked = append(asked, fmt.Sprintf("%s/%d", module, maxBytes))
		mu.Unlock()
		return shared, nil
	}}
	a := loadWith(t, cfg, &recordingHost{}, "state")
	b := loadWith(t, cfg, &recordingHost{}, "state")
	for range 3 {
		send(t, a, "i")
		send(t, b, "i")
	}
	if v, err := shared.Get(context.Background(), "n"); err != nil || string(v) != "6" {
		t.Fatalf("n = %q, %v; want 6 (both runtimes count into the shared store)", v, err)
	}
	if keys := a.Stats().KVKeys; keys != 1 {
		t.Errorf("stats: %d keys, want 1", keys)
	}
	mu.Lock()
	if len(asked) != 2 || asked[0] != "state/12345" {
		t.Errorf("factory calls = %q, want state/12345 once per runtime", asked)
	}
	mu.Unlock()

	cfg.KVStore = func(string, int) (kv.KV, error) { return nil, abi.ErrnoUnavailable }
	r, err := New(context.Background(), cfg, &recordingHost{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	if _, err := loadFixture(t, r, "state", ""); !errors.Is(err, abi.ErrnoUnavailable) || !strings.Contains(err.Error(), `module "state"`) {
		t.Fatalf("load with a failing store factory: %v, want the factory's error naming the module", err)
	}
}
