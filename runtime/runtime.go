// Package runtime runs wasmgate event handlers: WebAssembly modules that
// implement the ABI in package abi. It compiles each module once, checks it
// against the ABI, keeps a pool of instances per module and exposes the
// handler events as plain Go methods. It exports no wazero types.
//
// # Concurrency
//
// A Runtime and its Modules are safe for concurrent use. An instance serves
// one event at a time: each event takes an instance from the module's pool for
// the length of one guest call and gives it back. An instance whose call
// failed (trap, exit) is closed, never reused. Ordering of one client's events
// is the caller's job: the server delivers them from the client's reader
// goroutine, one after the other.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/internal/kv"
	"github.com/wasmgate/wasmgate/runtime/internal/guestlog"
	"github.com/wasmgate/wasmgate/runtime/internal/stopcheck"
)

// Config tunes a Runtime.
type Config struct {
	// PoolSize is the maximum number of instances per module; events beyond
	// it wait for a free instance.
	PoolSize int
	// CacheDir keeps compiled modules between restarts; empty keeps them in
	// memory only.
	CacheDir string
	// MemoryLimitPages caps each instance's linear memory, in 64 KiB pages
	// (0: wazero's default, 4 GiB). Growth past it fails inside the guest.
	MemoryLimitPages uint32
	// EventTimeout stops a guest call that runs longer (0: no limit).
	EventTimeout time.Duration
	// MaxCallDepth bounds how deeply a guest's calls may nest, in frames;
	// the call that would go deeper traps as a stack overflow. Without it
	// wazero grows a recursing guest's stack on the Go heap up to ~400 MB.
	// Default 10,000.
	MaxCallDepth int
	// MaxMessageSize bounds what a guest may hand the host in one message
	// or session; longer arguments fail with ErrnoTooLarge before any copy.
	MaxMessageSize int
	// EventQueue is how many events may wait for a busy pool, per module;
	// callers beyond it pause (pool.go). Default 1024.
	EventQueue int

	// TaskWorkers is the size of each module's task pool (instances that
	// run on_task); 0 switches tasks off (task returns ErrnoUnsupported).
	TaskWorkers int
	// TaskQueue bounds the tasks waiting for a worker, per module; task
	// returns ErrnoQueueFull beyond it. Default 256.
	TaskQueue int
	// TaskTimeout stops an on_task call that runs longer. Default 10 s;
	// enforced only when EventTimeout is set (it starts the watchdog).
	TaskTimeout time.Duration

	// KVMaxBytes bounds each module's key-value store (keys + values + 64
	// bytes per entry). Default 16 MiB.
	KVMaxBytes int
	// KVStore, if set, gives each module its key-value store: called once
	// per module name, with the module's KVMaxBytes, when its State is
	// created (cluster mode passes the Redis store's, rediskv.Stores.Open).
	// Nil: an in-process kv.Store per module. A runtime-wide setting, like
	// CacheDir.
	KVStore func(module string, maxBytes int) (kv.KV, error)
	// MaxTimers bounds each module's timers not yet delivered: pending, or
	// fired and waiting for an instance (timers.go). Default 1000.
	MaxTimers int

	// CrashLimit failures (traps or timeouts) within CrashWindow, when they
	// are at least half of the calls made meanwhile, quarantine a module
	// version; 0 never quarantines. See crash.go.
	CrashLimit  int
	CrashWindow time.Duration
	// QuarantineCooldown is how long a quarantine lasts before it lifts by
	// itself; 0: until the module is reloaded.
	QuarantineCooldown time.Duration
	// RestartBackoff delays the instance that replaces a failed one,
	// doubling per consecutive failure up to RestartBackoffMax; 0: none.
	RestartBackoff    time.Duration
	RestartBackoffMax time.Duration
	// OnQuarantine, if set, is called (on its own goroutine) when a module
	// version is quarantined, with the reason.
	OnQuarantine func(m *Module, reason string)

	// Guest log limits, per module (shared by its instances), over its
	// stdout/stderr lines and log host calls together. Lines over either
	// budget are dropped and counted; the next line let through is preceded
	// by one "guest log lines suppressed" record with the counts.
	//
	// LogLinesPerSecond is the sustained rate of lines (0: 100; negative:
	// no line limit). LogBurst is how many lines may come at once (0: twice
	// LogLinesPerSecond). LogBytesPerSecond is the sustained rate of bytes
	// (0: 64 KiB; negative: no byte limit), with a burst of two seconds'
	// worth.
	LogLinesPerSecond int
	LogBurst          int
	LogBytesPerSecond int
}

// Defaults for the guest log limits in Config (used when a field is 0).
const (
	DefaultLogLinesPerSecond = guestlog.DefaultLinesPerSecond
	DefaultLogBurst          = guestlog.DefaultBurst
	DefaultLogBytesPerSecond = guestlog.DefaultBytesPerSecond
)

// logLimits is the Config's guest log limits, for guestlog.NewLimiter
// (which fills in the defaults).
func (c Config) logLimits() guestlog.Limits {
	return guestlog.Limits{LinesPerSecond: c.LogLinesPerSecond, Burst: c.LogBurst, BytesPerSecond: c.LogBytesPerSecond}
}

// DefaultMaxCallDepth is Config.MaxCallDepth's default: deep enough for any
// handler's own recursion and the Go or Rust runtime under it, and at ~100
// bytes of engine stack per simple frame it caps a runaway recursion at a
// few MB instead of hundreds.
const DefaultMaxCallDepth = 10_000

// withDefaults fills the zero fields that have a default.
func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.EventQueue, 1024)
	def(&c.TaskQueue, 256)
	def(&c.KVMaxBytes, 16<<20)
	def(&c.MaxTimers, 1000)
	def(&c.MaxCallDepth, DefaultMaxCallDepth)
	if c.TaskTimeout <= 0 {
		c.TaskTimeout = 10 * time.Second
	}
	if c.EventTimeout <= 0 {
		c.TaskTimeout = 0 // no watchdog: nothing could enforce it
	}
	if c.CrashWindow <= 0 {
		c.CrashWindow = time.Minute
	}
	if c.RestartBackoffMax < c.RestartBackoff {
		c.RestartBackoffMax = c.RestartBackoff
	}
	return c
}

// Runtime compiles and runs handler modules against one abi.Host.
type Runtime struct {
	cfg   Config
	wz    wazero.Runtime
	cache wazero.CompilationCache
	host  abi.Host
	log   *slog.Logger

	mu      sync.Mutex // guards modules, states
	modules map[*Module]struct{}
	states  map[string]*State
	// stopWatchdog ends the event-deadline watchdog (watchdog.go).
	stopWatchdog chan struct{}
	// tick is how often the watchdog looks (ns), a quarter of the shortest
	// deadline any module has.
	tick atomic.Int64
	// clock is the time (UnixNano) the watchdog last looked: calls stamp
	// their start with it instead of reading the real clock, which costs
	// as much as the rest of the deadline bookkeeping.
	clock atomic.Int64
	// asleep: the watchdog naps, no call running; a call that begins
	// wakes it through wakeWatchdog (watchdog.go).
	asleep       atomic.Bool
	wakeWatchdog chan struct{}
}

// New returns a Runtime whose host functions call host. Close it to release
// compiled code.
func New(ctx context.Context, cfg Config, host abi.Host, log *slog.Logger) (*Runtime, error) {
	if cfg.PoolSize < 1 {
		return nil, fmt.Errorf("runtime: pool size %d: must be at least 1", cfg.PoolSize)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	cache, err := newCache(cfg.CacheDir)
	if err != nil {
		return nil, err
	}
	sweepCache(cfg.CacheDir, log) // cache.go
	// No WithCloseOnContextDone: deadlines are enforced by the stop global
	// Load instruments every module with (watchdog.go), which costs a load
	// and a branch per loop iteration instead of a Go exit per iteration and
	// a goroutine per call.
	rcfg := wazero.NewRuntimeConfig().WithCompilationCache(cache)
	if cfg.MemoryLimitPages > 0 {
		rcfg = rcfg.WithMemoryLimitPages(cfg.MemoryLimitPages)
	}
	wz := wazero.NewRuntimeWithConfig(ctx, rcfg)
	r := &Runtime{cfg: cfg, wz: wz, cache: cache, host: host, log: log, modules: map[*Module]struct{}{}, states: map[string]*State{}}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, wz); err != nil {
		return nil, fmt.Errorf("runtime: instantiate wasi: %w", err)
	}
	if err := r.instantiateHostModule(ctx); err != nil {
		return nil, fmt.Errorf("runtime: instantiate host module: %w", err)
	}
	r.startWatchdog()
	return r, nil
}

func newCache(dir string) (wazero.CompilationCache, error) {
	if dir == "" {
		return wazero.NewCompilationCache(), nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("runtime: cache dir: %w", err)
	}
	cache, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return nil, fmt.Errorf("runtime: cache dir %s: %w", dir, err)
	}
	return cache, nil
}

// LoadFile reads, compiles and validates the module at path and starts its
// first instance. name identifies it in logs.
func (r *Runtime) LoadFile(ctx context.Context, name, path, moduleConfig string, opts ...LoadOption) (*Module, error) {
	wasm, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	m, err := r.Load(ctx, name, wasm, moduleConfig, opts...)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return m, nil
}

// LoadOption changes how one module is loaded.
type LoadOption func(*Config)

// WithLimits gives one module its own limits: edit changes a copy of the
// runtime's Config. Only the per-module fields count — PoolSize,
// EventQueue, EventTimeout, the Task*, KV, timer, crash and log fields;
// the others (CacheDir, KVStore, MemoryLimitPages, MaxMessageSize, MaxCallDepth,
// OnQuarantine) are the runtime's. A module cannot have a deadline in a
// runtime without one (EventTimeout 0 starts no watchdog).
func WithLimits(edit func(*Config)) LoadOption { return edit }

// Load compiles and validates wasm, then starts one instance so that a module
// that cannot start (wrong ABI version, failing on_start) is refused now
// rather than at its first event.
func (r *Runtime) Load(ctx context.Context, name string, wasm []byte, moduleConfig string, opts ...LoadOption) (*Module, error) {
	wasm, err := r.prepare(wasm)
	if err != nil {
		return nil, err
	}
	compiled, err := r.compileCached(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("not a valid wasm module: %w", err)
	}
	exports, err := validate(compiled)
	if err != nil {
		_ = compiled.Close(ctx)
		return nil, err
	}
	cfg := r.moduleConfig(opts)
	st, err := r.state(name, cfg)
	if err != nil {
		_ = compiled.Close(ctx)
		return nil, err
	}
	m := newModule(r, name, compiled, exports, moduleConfig, cfg, st)
	inst, err := m.pool.get(ctx)
	if err != nil {
		_ = m.Close(ctx)
		return nil, err
	}
	m.pool.put(inst, true)
	r.mu.Lock()
	r.modules[m] = struct{}{}
	r.mu.Unlock()
	m.state.loaded(m)
	return m, nil
}

// prepare decodes the module's structure before wazero sees it and
// rewrites it (runtime/internal/stopcheck, watchdog.go): a stop check and a
// periodic yield at every loop iteration and function entry, and the call
// depth bound. The rewrite is made with deadlines off too: the yields keep a
// runaway guest from holding up the garbage collector's stop-the-world (and
// with it the whole process), and the depth bound keeps a recursing guest
// from growing its stack on the Go heap. wazero v1.12 also trusts the counts
// a module declares (a 15-byte file declaring 2^32 globals made
// CompileModule die of an unrecoverable out-of-memory); the decoder checks
// every count against the bytes left.
func (r *Runtime) prepare(wasm []byte) ([]byte, error) {
	out, err := stopcheck.InstrumentWith(wasm, stopcheck.Options{
		YieldEvery: stopcheck.DefaultYieldEvery,
		MaxDepth:   uint32(r.cfg.MaxCallDepth),
	})
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, stopcheck.ErrExportExists) || errors.Is(err, stopcheck.ErrUnsupported):
		return nil, fmt.Errorf("cannot add the deadline checks: %w", err)
	}
	return nil, fmt.Errorf("not a valid wasm module: %w", err)
}

// compile is wazero's CompileModule with its panics (seen on malformed
// modules) turned into errors: a bad file must not take the process down.
func compile(ctx context.Context, wz wazero.Runtime, wasm []byte) (c wazero.CompiledModule, err error) {
	defer func() {
		if p := recover(); p != nil {
			c, err = nil, fmt.Errorf("compiler panic: %v", p)
		}
	}()
	return wz.CompileModule(ctx, wasm)
}

// moduleConfig is the runtime's Config with opts applied to the per-module
// fields.
func (r *Runtime) moduleConfig(opts []LoadOption) Config {
	cfg := r.cfg
	for _, opt := range opts {
		opt(&cfg)
	}
	if r.cfg.EventTimeout <= 0 {
		cfg.EventTimeout = 0
	}
	cfg.CacheDir, cfg.MemoryLimitPages, cfg.MaxMessageSize, cfg.OnQuarantine = r.cfg.CacheDir, r.cfg.MemoryLimitPages, r.cfg.MaxMessageSize, r.cfg.OnQuarantine
	cfg.MaxCallDepth = r.cfg.MaxCallDepth // compiled into the module by prepare
	cfg = cfg.withDefaults()
	if cfg.PoolSize < 1 {
		cfg.PoolSize = r.cfg.PoolSize
	}
	r.noteTimeout(cfg.EventTimeout)
	r.noteTimeout(cfg.TaskTimeout)
	return cfg
}

// Close stops every module's timers and tasks (calls under way are
// stopped through their context, watchdog.go), waits until no guest call
// is running or ctx ends, and releases every module and compiled code. If
// calls still run when ctx ends — a runtime without deadlines cannot stop
// them — the compiled code is not pulled from under them: Close returns an
// error and leaves it to the process's exit.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	states := r.states
	r.states = map[string]*State{}
	r.mu.Unlock()
	for _, st := range states {
		st.close()
	}
	var errs []error
	for name, st := range states {
		if err := st.wait(ctx); err != nil {
			errs = append(errs, fmt.Errorf("module %s: %w", name, err))
		}
	}
	if err := r.waitCalls(ctx); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("runtime: close: compiled code left open: %w", errors.Join(errs...))
	}
	if r.stopWatchdog != nil {
		close(r.stopWatchdog)
		r.stopWatchdog = nil
	}
	err := r.wz.Close(ctx)
	if cerr := r.cache.Close(ctx); err == nil {
		err = cerr
	}
	sweepCache(r.cfg.CacheDir, r.log)
	return err
}

// waitCalls waits until no instance of any module is busy, or ctx ends.
func (r *Runtime) waitCalls(ctx context.Context) error {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		busy := 0
		for _, m := range r.liveModules() {
			busy += m.pool.stats().Busy + m.taskPool.stats().Busy
		}
		if busy == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d guest calls still running: %w", busy, ctx.Err())
		case <-tick.C:
		}
	}
}
