// Package wasmgatetest runs a wasmgate handler — a .wasm built in any
// language — in-process, with the real runtime and an in-memory gateway,
// so that a Go test can deliver events and assert what the handler did
// without a server, sockets or timing:
//
//	h := wasmgatetest.Load(t, "handlers/chat.wasm", wasmgatetest.Options{Config: "rate_limit=0"})
//	alice := h.Connect()
//	alice.Send(`{"type":"join","room":"r"}`)
//	if got := alice.Last(); string(got.Data) != `{"type":"joined","room":"r"}` { ... }
//	h.Uid(alice.ID); h.Groups(alice.ID); h.Session(alice.ID); h.KV("key")
//
// Events (on_handshake, on_connect, on_message, on_close, on_timer,
// on_task, on_finish) run on the module's instances exactly as the server
// runs them: the same sandbox, limits, ABI checks and buffer handling. The
// gateway is the server's registry (uids, groups, sessions and their
// limits) with sends recorded per client instead of written to sockets.
// Each event method returns when the handler has returned; a trap or a
// deadline comes back as an error wrapping runtime.ErrTrap.
//
// Timers and tasks the handler starts itself run as on the server: a timer
// fires after its delay, a task runs on a task instance and its on_finish
// follows. Fired and Finished list them, and WaitFor waits for a
// condition. To drive them by hand instead, call Timer, Task and Finish.
//
// # Concurrency
//
// A Handler is safe for concurrent use. Its records (sends, closes) are
// guarded by one mutex; events run on the runtime's pool. A client closed
// by the handler (close_client) gets its on_close when the event that
// closed it returns, on the goroutine that delivered that event.
package wasmgatetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/internal/registry"
	"github.com/wasmgate/wasmgate/runtime"
)

// Options tune the runtime and the gateway. The zero value is the server's
// defaults, with a 5 s event deadline (generous: tests run under -race on
// loaded machines).
type Options struct {
	// Config is the module's config string, passed to on_start.
	Config string
	// Name is the module's name (default: the file name without .wasm).
	Name string
	// MaxMessageSize is server.max_message_size (default 65,536).
	MaxMessageSize int
	// PoolSize is runtime.pool_size (default 2); TaskWorkers
	// runtime.task_workers (default 1; tasks cannot be switched off here).
	PoolSize, TaskWorkers int
	// EventTimeout is runtime.event_timeout (default 5 s).
	EventTimeout time.Duration
	// Limits are the registry's per-client limits (default: the server's,
	// 64 KiB sessions, 256 groups, 256-byte names).
	Limits registry.Limits
	// Log receives the runtime's and the guest's log records (default:
	// kept in memory, see Handler.Logs).
	Log *slog.Logger
	// CacheDir keeps compiled modules between loads and test runs
	// (runtime.cache_dir): compiling a Go guest takes seconds, more under
	// -race. Default: wasmgatetest-cache in the system's temporary folder;
	// "-" compiles every time.
	CacheDir string
}

func (o Options) withDefaults(path string) Options {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.MaxMessageSize, 65536)
	def(&o.PoolSize, 2)
	def(&o.TaskWorkers, 1)
	if o.EventTimeout <= 0 {
		o.EventTimeout = 5 * time.Second
	}
	switch o.CacheDir {
	case "":
		o.CacheDir = filepath.Join(os.TempDir(), "wasmgatetest-cache")
	case "-":
		o.CacheDir = ""
	}
	if o.Name == "" {
		o.Name = strings.TrimSuffix(filepath.Base(path), ".wasm")
	}
	if o.Limits == (registry.Limits{}) {
		o.Limits = registry.Limits{MaxSessionBytes: 64 << 10, MaxGroupsPerClient: 256, MaxNameBytes: 256}
	}
	return o
}

// Handler is one loaded handler module with its in-memory gateway.
type Handler struct {
	gw   *gateway
	rt   *runtime.Runtime
	mod  *runtime.Module
	st   *runtime.State
	logs *logBuffer
	ctx  context.Context

	mu       sync.Mutex // guards fired, finished
	fired    []Timer
	finished []Finish
}

// Load loads the module at path and closes it when the test ends. A module
// the server would refuse fails the test with the server's reason.
func Load(t testing.TB, path string, opts Options) *Handler {
	t.Helper()
	h, err := New(context.Background(), path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("wasmgatetest: close: %v", err)
		}
	})
	return h
}

// New loads the module at path; Close releases it. Load is New for tests.
func New(ctx context.Context, path string, opts Options) (*Handler, error) {
	wasm, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wasmgatetest: %w", err)
	}
	opts = opts.withDefaults(path)
	h := &Handler{gw: newGateway(opts.MaxMessageSize, opts.Limits), logs: &logBuffer{}, ctx: ctx}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	h.rt, err = runtime.New(ctx, runtime.Config{
		PoolSize: opts.PoolSize, EventTimeout: opts.EventTimeout, MaxMessageSize: opts.MaxMessageSize,
		TaskWorkers: opts.TaskWorkers, CacheDir: opts.CacheDir,
	}, h.gw, log)
	if err != nil {
		return nil, fmt.Errorf("wasmgatetest: %w", err)
	}
	h.mod, err = h.rt.Load(ctx, opts.Name, wasm, opts.Config)
	if err != nil {
		_ = h.rt.Close(ctx)
		return nil, fmt.Errorf("wasmgatetest: load %s: %w", path, err)
	}
	// From now on the handler's timers and tasks are recorded (a timer
	// on_start set with no delay may have reached the module directly).
	h.st = h.rt.State(opts.Name)
	h.st.SetTarget(target{h})
	return h, nil
}

// Close stops the handler's timers and tasks and releases the runtime.
func (h *Handler) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.rt.Close(ctx)
}

// Module is the loaded module, for what this package does not wrap
// (Stats, Quarantined).
func (h *Handler) Module() *runtime.Module { return h.mod }

// Logs returns everything logged so far: the runtime's records and the
// guest's log calls and stdout/stderr lines (slog text format).
func (h *Handler) Logs() string { return h.logs.String() }

// Request is an upgrade request as on_handshake sees it. Empty fields get
// defaults: method GET, path "/" + the module's name, remote address
// 127.0.0.1:40000.
type Request struct {
	// ClientID is the id to give the client (default: a fresh random one,
	// 20 hex digits as the server makes them); a replay reuses recorded ids.
	ClientID string

	Method, Path, Query, RemoteAddr string
	// Headers are name/value pairs; names are lower-cased.
	Headers [][2]string
}

// Connect connects a client with a default request; it panics if the
// handler refuses it or on_connect fails (use TryConnect to test those).
func (h *Handler) Connect() *Client {
	c, status, err := h.TryConnect(Request{})
	if err != nil || status != 0 {
		panic(fmt.Sprintf("wasmgatetest: connect refused: status %d, %v", status, err))
	}
	return c
}

// TryConnect runs on_handshake with req; if the handler accepts (status
// 0), it registers the client and runs on_connect. A refused client gets
// its HTTP status and no client; err is a failed on_handshake or
// on_connect (the client is connected all the same after a failed
// on_connect, as on the server).
func (h *Handler) TryConnect(req Request) (*Client, int, error) {
	id := req.ClientID
	if id == "" {
		id = newClientID()
	}
	hs := &abi.Handshake{ClientID: id, Method: req.Method, Path: req.Path, Query: req.Query, RemoteAddr: req.RemoteAddr}
	if hs.Method == "" {
		hs.Method = http.MethodGet
	}
	if hs.Path == "" {
		hs.Path = "/" + h.mod.Name()
	}
	if hs.RemoteAddr == "" {
		hs.RemoteAddr = "127.0.0.1:40000"
	}
	for _, kv := range req.Headers {
		hs.Headers = append(hs.Headers, [2]string{strings.ToLower(kv[0]), kv[1]})
	}
	status, err := h.mod.OnHandshake(h.ctx, hs)
	if err != nil || status != 0 {
		return nil, status, err
	}
	if err := h.gw.reg.AddClient(h.ctx, id); err != nil {
		return nil, 0, fmt.Errorf("wasmgatetest: register %s: %w", id, err)
	}
	c := &Client{ID: id, h: h}
	err = h.mod.OnConnect(h.ctx, id)
	h.closePending()
	return c, 0, err
}

// newClientID makes a client id as the server does: 20 lower-case hex
// digits.
func newClientID() string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// disconnect ends a client as the server's reader does: read its closing
// state (for closing_state), remove it from the registry, then run
// on_close. It reports false if the client was already gone.
func (h *Handler) disconnect(id string, code int) (bool, error) {
	ctx := h.ctx
	if h.mod.WantsClosingState() {
		ctx = runtime.WithClosingState(ctx, registry.ClosingStateOf(ctx, h.gw.reg, id))
	}
	h.gw.mu.Lock()
	if _, done := h.gw.closed[id]; done {
		h.gw.mu.Unlock()
		return false, nil
	}
	h.gw.closed[id] = code
	delete(h.gw.closing, id)
	h.gw.mu.Unlock()
	if _, err := h.gw.reg.RemoveClient(ctx, id); err != nil {
		return true, fmt.Errorf("wasmgatetest: unregister %s: %w", id, err)
	}
	return true, h.mod.OnClose(ctx, id)
}

// closePending runs on_close for the clients the handler closed with
// close_client, as the server does once their sockets are closed.
func (h *Handler) closePending() {
	for {
		h.gw.mu.Lock()
		var id string
		var code int
		for k, v := range h.gw.closing {
			id, code = k, v
			break
		}
		h.gw.mu.Unlock()
		if id == "" {
			return
		}
		_, _ = h.disconnect(id, code)
	}
}

// Client returns the connected client id, for a test that learnt an id from
// the handler (a replay); nil if it is not connected.
func (h *Handler) Client(id string) *Client {
	if ok, _ := h.gw.reg.HasClient(h.ctx, id); !ok {
		return nil
	}
	return &Client{ID: id, h: h}
}

// Host is the gateway the handler runs against, for what a backend would
// push (BindUid, JoinGroup, SetSession, SendToClient…): the handler sees
// the change in its next event. A send through it is recorded like the
// handler's own.
func (h *Handler) Host() abi.Host { return h.gw }

// Sent returns every message sent so far, one entry per recipient, in the
// order the handler sent them (a send to several clients in client id
// order).
func (h *Handler) Sent() []Sent {
	h.gw.mu.Lock()
	defer h.gw.mu.Unlock()
	return slices.Clone(h.gw.sent)
}

// Clients lists the connected clients, sorted.
func (h *Handler) Clients() []string { return h.sorted(h.gw.reg.ClientIDs(h.ctx)) }

// Uid returns the uid the client is bound to ("" if none or gone).
func (h *Handler) Uid(id string) string {
	uid, _ := h.gw.reg.UidOf(h.ctx, id)
	return uid
}

// ClientsByUid lists the clients bound to uid, sorted.
func (h *Handler) ClientsByUid(uid string) []string {
	return h.sorted(h.gw.reg.ClientsByUid(h.ctx, uid))
}

// Groups lists the groups the client is in, sorted.
func (h *Handler) Groups(id string) []string { return h.sorted(h.gw.reg.ClientGroups(h.ctx, id)) }

// GroupMembers lists the group's clients, sorted.
func (h *Handler) GroupMembers(group string) []string {
	return h.sorted(h.gw.reg.GroupClients(h.ctx, group))
}

// AllGroups lists the groups with at least one member, sorted.
func (h *Handler) AllGroups() []string { return h.sorted(h.gw.reg.GroupIDs(h.ctx)) }

// Session returns the client's session JSON ("{}" if empty, nil if gone).
func (h *Handler) Session(id string) []byte {
	s, err := h.gw.reg.Session(h.ctx, id)
	if err != nil {
		return nil
	}
	return slices.Clone(s)
}

func (h *Handler) sorted(l []string, err error) []string {
	if err != nil {
		return nil
	}
	slices.Sort(l)
	return l
}

// KV returns the value at key in the module's key-value store; false if
// absent.
func (h *Handler) KV(key string) ([]byte, bool) { return h.st.KVGet(key) }

// SetKV stores value at key with no expiry, to set up a test.
func (h *Handler) SetKV(key string, value []byte) error { return h.st.KVSet(key, value, 0) }

// Timer delivers on_timer with timerID and payload now, as if a timer of
// the handler had fired.
func (h *Handler) Timer(timerID int64, payload []byte) error {
	err := h.mod.OnTimer(h.ctx, timerID, payload)
	h.closePending()
	return err
}

// Task runs on_task with payload on a task instance and returns what it
// passed to task_result and its status (abi.TaskOK, TaskFailed,
// TaskCrashed). on_finish is not called: see Finish.
func (h *Handler) Task(taskID int64, payload []byte) ([]byte, int32) {
	res, status := h.mod.OnTask(h.ctx, taskID, payload)
	h.closePending()
	return res, status
}

// Finish delivers on_finish for taskID with result and status.
func (h *Handler) Finish(taskID int64, result []byte, status int32) error {
	err := h.mod.OnFinish(h.ctx, taskID, result, status)
	h.closePending()
	return err
}

// Timer is a timer of the handler's that fired and was delivered.
type Timer struct {
	ID      int64
	Payload []byte
	Err     error // on_timer's failure, if it failed
}

// Finish is a task of the handler's that ran and whose on_finish was
// delivered.
type Finish struct {
	ID     int64
	Result []byte
	Status int32
	Err    error // on_finish's failure, if it failed
}

// Fired lists the timers the handler set that have fired, in order.
func (h *Handler) Fired() []Timer {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.fired)
}

// Finished lists the tasks the handler started whose on_finish ran, in
// order.
func (h *Handler) Finished() []Finish {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.finished)
}

// WaitFor polls cond until it holds, and fails the test if it does not
// within 10 s (a bound against a hang, not a timing assertion): for the
// handler's own timers and tasks.
func (h *Handler) WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("wasmgatetest: timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// target receives the module's own timers and tasks (runtime.Target),
// delivers them as the server would and records them.
type target struct{ h *Handler }

func (tg target) OnTimer(ctx context.Context, id int64, payload []byte) error {
	err := tg.h.mod.OnTimer(ctx, id, payload)
	tg.h.closePending()
	tg.h.mu.Lock()
	tg.h.fired = append(tg.h.fired, Timer{ID: id, Payload: slices.Clone(payload), Err: err})
	tg.h.mu.Unlock()
	return err
}

func (tg target) OnTask(ctx context.Context, id int64, payload []byte) ([]byte, int32) {
	res, status := tg.h.mod.OnTask(ctx, id, payload)
	tg.h.closePending()
	return res, status
}

func (tg target) OnFinish(ctx context.Context, id int64, result []byte, status int32) error {
	err := tg.h.mod.OnFinish(ctx, id, result, status)
	tg.h.closePending()
	tg.h.mu.Lock()
	tg.h.finished = append(tg.h.finished, Finish{ID: id, Result: slices.Clone(result), Status: status, Err: err})
	tg.h.mu.Unlock()
	return err
}

// logBuffer collects log output for Logs.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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
