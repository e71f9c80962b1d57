package runtime

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/abi"
)

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newTestRuntime(t *testing.T, host abi.Host) (*Runtime, *logBuffer) {
	t.Helper()
	return newTestRuntimeWith(t, Config{PoolSize: 2}, host)
}

func newTestRuntimeWith(t *testing.T, cfg Config, host abi.Host) (*Runtime, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r, err := New(context.Background(), cfg, host, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r, logs
}

func loadFixture(t *testing.T, r *Runtime, name, config string) (*Module, error) {
	t.Helper()
	return r.LoadFile(context.Background(), name, filepath.Join("testdata", name+".wasm"), config)
}

func TestLoad_RefusesBadModules(t *testing.T) {
	r, _ := newTestRuntime(t, &recordingHost{})
	tests := []struct{ name, config, want string }{
		{"notwasm", "", "not a valid wasm module"},
		{"version2", "", "declares ABI version 2, this host implements version 1"},
		{"unknown_import", "", "imports unknown host function wasmgate.send_to_moon"},
		{"env_import", "", `imports env.abort from unknown module "env"`},
		{"bad_signature", "", "imports wasmgate.send_to_client with signature (i32, i32) -> (i32)"},
		{"no_on_message", "", `does not export required function "on_message"`},
		{"memory_only", "", `exports no function at all, only memory. clang hides wasm32 symbols by default: mark each export __attribute__((export_name("on_message"))) or build with -fvisibility=default`},
		{"start_fails", "nope", "on_start returned 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadFixture(t, r, tc.name, tc.config)
			if err == nil {
				t.Fatal("loaded; want refusal")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.name+".wasm") {
				t.Fatalf("error %q should name the file and contain %q", err, tc.want)
			}
			if tc.name != "memory_only" && strings.Contains(err.Error(), "visibility") {
				t.Errorf("error %q: the export visibility hint is for a module without function exports", err)
			}
		})
	}
}

func TestLoad_OnStartGetsConfig(t *testing.T) {
	r, _ := newTestRuntime(t, &recordingHost{})
	if _, err := loadFixture(t, r, "start_fails", "ok"); err != nil {
		t.Fatalf("config %q should be accepted: %v", "ok", err)
	}
}

func TestModule_Echo(t *testing.T) {
	host := &recordingHost{}
	r, logs := newTestRuntime(t, host)
	m, err := loadFixture(t, r, "echo", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	big := bytes.Repeat([]byte("x"), 200_000) // forces the guest buffer to grow
	steps := []error{
		m.OnConnect(ctx, "c1"),
		m.OnMessage(ctx, "c1", abi.Message{Data: []byte("hi")}),
		m.OnMessage(ctx, "c1", abi.Message{Data: []byte{0, 1, 2}, Binary: true}),
		m.OnMessage(ctx, "c1", abi.Message{Data: big}),
		m.OnClose(ctx, "c1"),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	got := host.messages()
	want := []sent{{"c1", abi.Message{Data: []byte("connected")}}, {"c1", abi.Message{Data: []byte("hi")}},
		{"c1", abi.Message{Data: []byte{0, 1, 2}, Binary: true}}, {"c1", abi.Message{Data: big}}}
	if len(got) != len(want) {
		t.Fatalf("got %d sends, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].to != want[i].to || !bytes.Equal(got[i].msg.Data, want[i].msg.Data) || got[i].msg.Binary != want[i].msg.Binary {
			t.Errorf("send %d = %q %q binary=%v", i, got[i].to, trim(got[i].msg.Data), got[i].msg.Binary)
		}
	}
	if !strings.Contains(logs.String(), "msg=closed module=echo") {
		t.Errorf("guest log line missing from %q", logs.String())
	}
}

func trim(b []byte) []byte { return b[:min(len(b), 20)] }

func TestModule_TrapDiscardsInstanceOnly(t *testing.T) {
	host := &recordingHost{}
	r, logs := newTestRuntime(t, host)
	m, err := loadFixture(t, r, "trap", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		err := m.OnMessage(ctx, "c1", abi.Message{Data: []byte("trap")})
		if !errors.Is(err, ErrTrap) {
			t.Fatalf("trap %d: err = %v, want ErrTrap", i, err)
		}
		if err := m.OnMessage(ctx, "c1", abi.Message{Data: []byte("ok")}); err != nil {
			t.Fatalf("message after trap %d: %v", i, err)
		}
	}
	if n := len(host.messages()); n != 5 {
		t.Fatalf("%d echoes, want 5", n)
	}
	if !strings.Contains(logs.String(), "module=trap event=on_message client=c1") {
		t.Errorf("trap log should name module, event and client: %q", logs.String())
	}
}

func TestHost_BadPointerGetsErrno(t *testing.T) {
	host := &recordingHost{}
	r, _ := newTestRuntime(t, host)
	m, err := loadFixture(t, r, "badptr", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	got := host.messages()
	if len(got) != 1 || len(got[0].msg.Data) != 8 {
		t.Fatalf("sends = %+v, want one 8-byte report", got)
	}
	for i := 0; i < 2; i++ {
		if rc := int32(binary.LittleEndian.Uint32(got[0].msg.Data[4*i:])); rc != -int32(abi.ErrnoBadPointer) {
			t.Errorf("call %d returned %d, want %d", i, rc, -int32(abi.ErrnoBadPointer))
		}
	}
}

// TestHostFuncs_EveryTableRowImplemented: the runtime implements exactly
// the functions of abi.HostFuncs (abi/sdk_test.go checks ABI.md and the
// guest SDKs against the same table).
func TestHostFuncs_EveryTableRowImplemented(t *testing.T) {
	if _, err := bindHostFuncs(abi.HostFuncs(), hostFuncs{}.impls()); err != nil {
		t.Fatal(err)
	}
}

// TestHostFuncs_BindRefusesMissingOrExtra: a table row without an
// implementation, or an implementation the table does not list, stops the
// runtime at start with both names.
func TestHostFuncs_BindRefusesMissingOrExtra(t *testing.T) {
	impls := hostFuncs{}.impls()
	delete(impls, abi.FuncKVGet)
	impls["kv_scan"] = impls[abi.FuncKVSet]
	_, err := bindHostFuncs(abi.HostFuncs(), impls)
	if err == nil || !strings.Contains(err.Error(), "no implementation of [kv_get]") || !strings.Contains(err.Error(), "not in the table: [kv_scan]") {
		t.Fatalf("err = %v, want kv_get missing and kv_scan extra", err)
	}
	if _, err := bindHostFuncs(append(abi.HostFuncs(), abi.Func{Name: "kv_scan"}), hostFuncs{}.impls()); err == nil || !strings.Contains(err.Error(), "[kv_scan]") {
		t.Fatalf("a table row without an implementation: err = %v", err)
	}
}

func TestRuntime_CacheDir(t *testing.T) {
	dir := t.TempDir()
	r, err := New(context.Background(), Config{PoolSize: 1, CacheDir: dir}, &recordingHost{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if _, err := loadFixture(t, r, "echo", ""); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) == 0 {
		t.Fatal("compilation cache dir is empty after a load")
	}
}

func TestModule_StdoutGoesToLogTaggedWithModule(t *testing.T) {
	r, logs := newTestRuntime(t, &recordingHost{})
	m, err := loadFixture(t, r, "stdout", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{`msg="line one" module=stdout stream=guest`, `msg="line two" module=stdout stream=guest`} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("log lacks %s:\n%s", line, logs.String())
		}
	}
}

func TestModule_RunawayGuestStoppedAtDeadline(t *testing.T) {
	host := &recordingHost{}
	m := loadWith(t, Config{PoolSize: 2, EventTimeout: 50 * time.Millisecond}, host, "loop")
	ctx := context.Background()
	// More runaway events than instances or CPUs: each must be stopped.
	for i := 0; i < 4; i++ {
		start := time.Now()
		err := m.OnMessage(ctx, "c1", abi.Message{Data: []byte("loop")})
		if !errors.Is(err, ErrTrap) || !strings.Contains(err.Error(), "deadline") {
			t.Fatalf("runaway %d: err = %v, want a deadline trap", i, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("runaway %d stopped only after %v", i, d)
		}
	}
	if err := m.OnMessage(ctx, "c1", abi.Message{Data: []byte("ok")}); err != nil {
		t.Fatalf("message after runaways: %v", err)
	}
	if n := len(host.messages()); n != 1 {
		t.Fatalf("%d echoes, want 1", n)
	}
}

func TestHost_OversizeArgumentRefusedBeforeCopy(t *testing.T) {
	host := &recordingHost{}
	m := loadWith(t, Config{PoolSize: 1, MaxMessageSize: 1000}, host, "badptr")
	if err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	got := host.messages()
	if len(got) != 1 {
		t.Fatalf("sends = %+v", got)
	}
	if rc := int32(binary.LittleEndian.Uint32(got[0].msg.Data[4:])); rc != -int32(abi.ErrnoTooLarge) {
		t.Fatalf("a 2 GiB message argument returned %d, want %d", rc, -int32(abi.ErrnoTooLarge))
	}
}

func TestModule_MemoryCapStopsGrowthInsideTheGuest(t *testing.T) {
	host := &recordingHost{}
	m := loadWith(t, Config{PoolSize: 1, MemoryLimitPages: 160}, host, "membomb")
	if err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	got := host.messages()
	if len(got) != 1 {
		t.Fatalf("sends = %+v", got)
	}
	if pages := binary.LittleEndian.Uint32(got[0].msg.Data); pages > 160 {
		t.Fatalf("guest grew to %d pages past the 160-page cap", pages)
	}
}

// loadWith starts a runtime with cfg and loads one fixture into it.
func loadWith(t *testing.T, cfg Config, host abi.Host, fixture string) *Module {
	t.Helper()
	r, err := New(context.Background(), cfg, host, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	m, err := loadFixture(t, r, fixture, "")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestModule_GuestSeesNoEnvArgsOrFiles(t *testing.T) {
	t.Setenv("WASMGATE_SECRET_PROBE", "must not leak")
	host := &recordingHost{}
	m := loadWith(t, Config{PoolSize: 1}, host, "wasi_probe")
	if err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	got := host.messages()
	if len(got) != 1 || len(got[0].msg.Data) != 56 {
		t.Fatalf("sends = %+v", got)
	}
	d := got[0].msg.Data
	at := func(off int) int32 { return int32(binary.LittleEndian.Uint32(d[off:])) }
	const ebadf = 8
	checks := []struct {
		what      string
		got, want int32
	}{
		{"environ_sizes_get count", at(0), 0},
		{"environ_sizes_get size", at(4), 0},
		{"args_sizes_get count", at(8), 0},
		{"args_sizes_get size", at(12), 0},
		{"fd_prestat_get(3)", at(16), ebadf},
		{"path_open(3, etc/passwd)", at(20), ebadf},
		{"path_open(4, etc/passwd)", at(24), ebadf},
		{"path_open(5, etc/passwd)", at(28), ebadf},
		{"fd written by path_open", at(32), -1},
		{"fd_read(3)", at(36), ebadf},
		{"bytes read from fd 3", at(40), -1},
		{"fd_read(0) (stdin)", at(44), 0},
		{"bytes read from stdin", at(48), 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.what, c.got, c.want)
		}
	}
	if string(d[52:56]) != "SENT" {
		t.Errorf("read buffer now holds %q: something was read", d[52:56])
	}
}

// The watchdog naps when no call has run for a while, and the first call
// wakes it: a runaway call after the nap is still stopped at its deadline,
// and not before it (its start was stamped with the clock of before the
// nap, which must not count against it).
func TestModule_WatchdogNapsWhileIdleAndWakesForACall(t *testing.T) {
	host := &recordingHost{}
	const timeout = 100 * time.Millisecond
	m := loadWith(t, Config{PoolSize: 1, EventTimeout: timeout}, host, "loop")
	if err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("ok")}); err != nil {
		t.Fatal(err)
	}
	for give := time.Now().Add(10 * time.Second); !m.rt.asleep.Load(); {
		if time.Now().After(give) {
			t.Fatal("the watchdog never napped with no call running")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // the clock is stale by this much
	for i := range 3 {
		start := time.Now()
		err := m.OnMessage(context.Background(), "c1", abi.Message{Data: []byte("loop")})
		d := time.Since(start)
		if !errors.Is(err, ErrTrap) || !strings.Contains(err.Error(), "deadline") {
			t.Fatalf("runaway %d after the nap: err = %v, want a deadline trap", i, err)
		}
		if d < timeout {
			t.Fatalf("runaway %d after the nap stopped after %v, before its %v deadline", i, d, timeout)
		}
		if d > 5*time.Second {
			t.Fatalf("runaway %d after the nap stopped only after %v", i, d)
		}
		time.Sleep(watchdogNapAfter + 300*time.Millisecond) // let it nap again
	}
}
