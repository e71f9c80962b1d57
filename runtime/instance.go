package runtime

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/runtime/internal/guestlog"
	"github.com/wasmgate/wasmgate/runtime/internal/stopcheck"
)

// minBuffer is the smallest event buffer asked of a guest, so that small
// messages never make the host call wasmgate_buffer again.
const minBuffer = 4096

// instance is one instantiated module. It is used by one goroutine at a time
// (the pool guarantees it).
type instance struct {
	mod  *Module
	wasm api.Module
	mem  api.Memory
	ctx  context.Context // carries the instance to host functions
	// stop is the instrumented module's stop global (watchdog.go); depth is
	// its call depth budget, 0 after a call that went too deep.
	stop   api.MutableGlobal
	depth  api.Global
	stdout *guestlog.Writer

	buffer, onMessage, onHandshake, onConnect, onClose api.Function
	onTask, onFinish, onTimer                          api.Function

	// callStart is when the running event began (UnixNano), 0 when idle;
	// the watchdog and the event race to CAS it away (watchdog.go).
	callStart atomic.Int64
	// seq numbers this instance's calls, for callStart (only the call's
	// own goroutine touches it: an instance runs one call at a time).
	seq uint64
	// callDone is the running call's ctx.Done() (a <-chan struct{}, nil
	// for a context that never ends): the watchdog stops a call whose
	// caller has gone (Shutdown, a removed module), not only one past its
	// deadline.
	callDone atomic.Value
	// timeout is this instance's deadline per call: the event timeout, or
	// the task timeout for task-pool instances. 0: none.
	timeout time.Duration

	// inTask is set while on_task runs; task_result stores into taskResult.
	inTask     bool
	taskResult []byte
	// inClose is set while on_close runs, with closing the state
	// closing_state reads (closing.go): nil if the caller gave none.
	inClose bool
	closing *abi.ClosingState

	bufPtr, bufCap uint32
	stack          [3]uint64 // reused for every call: no allocation per event
}

// callStateKey is the context key under which host functions find the calling
// instance.
type callStateKey struct{}

func instanceFrom(ctx context.Context) *instance {
	inst, _ := ctx.Value(callStateKey{}).(*instance)
	return inst
}

func (m *Module) newInstance(ctx context.Context, timeout time.Duration) (*instance, error) {
	if err := m.health.waitRestart(ctx); err != nil {
		return nil, err
	}
	inst := &instance{mod: m, stdout: guestlog.NewWriter(m.rt.log, m.name, m.logLimit), timeout: timeout}
	inst.ctx = context.WithValue(context.WithoutCancel(ctx), callStateKey{}, inst)
	cfg := wazero.NewModuleConfig().
		WithName("").
		WithSysNanotime().WithSysWalltime(). // no WithSysNanosleep: a sleeping guest would block its caller
		WithRandSource(rand.Reader).
		WithStdout(inst.stdout).WithStderr(inst.stdout).
		WithStartFunctions()
	wm, err := m.rt.wz.InstantiateModule(inst.ctx, m.compiled, cfg)
	if err != nil {
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	inst.wasm, inst.mem = wm, wm.ExportedMemory(abi.ExportMemory)
	inst.stop, _ = wm.ExportedGlobal(stopcheck.Export).(api.MutableGlobal)
	inst.depth = wm.ExportedGlobal(stopcheck.ExportDepth)
	inst.bindExports()
	if err := inst.startWithDeadline(); err != nil {
		inst.close()
		return nil, err
	}
	return inst, nil
}

// startWithDeadline runs start under a deadline of its own — ten event
// deadlines, at least a second: a Go guest's runtime initialisation takes
// milliseconds, and a looping on_start must not hang a load (and with it
// the reload lock) forever. Instances are started rarely, so one timer
// each is fine here, unlike per event.
func (inst *instance) startWithDeadline() error {
	if inst.stop == nil || inst.timeout <= 0 {
		return inst.tooDeep(inst.start())
	}
	limit := max(10*inst.timeout, time.Second)
	var stopped atomic.Bool
	t := time.AfterFunc(limit, func() { stopped.Store(true); inst.stop.Set(1) })
	err := inst.start()
	t.Stop()
	if stopped.Load() {
		return fmt.Errorf("starting the instance ran past %s: %w", limit, errOr(err))
	}
	return inst.tooDeep(err)
}

// errTooDeep reports a call that nested deeper than Config.MaxCallDepth.
var errTooDeep = errors.New("stack overflow")

// tooDeep names the cause of a guest call's failure when it was the depth
// bound: the guest then traps with a bare "unreachable", and its depth
// budget is left at 0.
func (inst *instance) tooDeep(err error) error {
	if err == nil || inst.depth == nil || inst.depth.Get() != 0 {
		return err
	}
	return fmt.Errorf("%w: calls nested deeper than max_call_depth (%d frames): %w", errTooDeep, inst.mod.cfg.MaxCallDepth, err)
}

func (inst *instance) bindExports() {
	f := inst.wasm.ExportedFunction
	inst.buffer, inst.onMessage = f(abi.ExportBuffer), f(abi.ExportOnMessage)
	inst.onHandshake, inst.onConnect, inst.onClose = f(abi.ExportOnHandshake), f(abi.ExportOnConnect), f(abi.ExportOnClose)
	inst.onTask, inst.onFinish, inst.onTimer = f(abi.ExportOnTask), f(abi.ExportOnFinish), f(abi.ExportOnTimer)
}

// start runs _initialize, checks the ABI version and runs on_start.
func (inst *instance) start() error {
	m := inst.mod
	if m.exports.initialize {
		if _, err := inst.wasm.ExportedFunction(abi.ExportInitialize).Call(inst.ctx); err != nil {
			return fmt.Errorf("%s: %w", abi.ExportInitialize, err)
		}
	}
	res, err := inst.wasm.ExportedFunction(abi.ExportABIVersion).Call(inst.ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", abi.ExportABIVersion, err)
	}
	if v := api.DecodeI32(res[0]); v != abi.Version {
		return fmt.Errorf("declares ABI version %d, this host implements version %d", v, abi.Version)
	}
	if !m.exports.start {
		return nil
	}
	if err := inst.writeInput([]byte(m.config)); err != nil {
		return err
	}
	res, err = inst.wasm.ExportedFunction(abi.ExportOnStart).Call(inst.ctx, uint64(len(m.config)))
	if err != nil {
		return fmt.Errorf("%s: %w", abi.ExportOnStart, err)
	}
	if rc := api.DecodeI32(res[0]); rc != 0 {
		return fmt.Errorf("%s returned %d", abi.ExportOnStart, rc)
	}
	return nil
}

// reserve makes the guest buffer at least n bytes long.
func (inst *instance) reserve(n int) error {
	if uint64(n) <= uint64(inst.bufCap) {
		return nil
	}
	size := max(n, minBuffer)
	if uint64(size) > 1<<31 {
		return fmt.Errorf("event input of %d bytes is too large", n)
	}
	inst.stack[0] = api.EncodeI32(int32(size))
	if err := inst.buffer.CallWithStack(inst.ctx, inst.stack[:]); err != nil {
		return fmt.Errorf("%s: %w", abi.ExportBuffer, inst.tooDeep(err))
	}
	ptr := api.DecodeU32(inst.stack[0])
	if ptr == 0 { // ABI.md §2: 0 means the guest cannot allocate; never write at address 0
		return fmt.Errorf("%s(%d) returned 0: the guest cannot allocate a %d-byte event buffer", abi.ExportBuffer, size, size)
	}
	if uint64(ptr)+uint64(size) > uint64(inst.mem.Size()) {
		return fmt.Errorf("%s(%d) returned %#x, outside the guest's %d bytes of memory", abi.ExportBuffer, size, ptr, inst.mem.Size())
	}
	inst.bufPtr, inst.bufCap = ptr, uint32(size)
	return nil
}

// writeInput places parts one after another at the start of the guest buffer.
func (inst *instance) writeInput(parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	if err := inst.reserve(n); err != nil {
		return err
	}
	off := inst.bufPtr
	for _, p := range parts {
		if !inst.mem.Write(off, p) {
			return fmt.Errorf("event buffer at %#x is outside guest memory", off)
		}
		off += uint32(len(p))
	}
	return nil
}

// writeString is writeInput for one string without converting it to bytes.
func (inst *instance) writeString(s string) error {
	if err := inst.reserve(len(s)); err != nil {
		return err
	}
	if !inst.mem.WriteString(inst.bufPtr, s) {
		return fmt.Errorf("event buffer at %#x is outside guest memory", inst.bufPtr)
	}
	return nil
}

// call runs fn with params on the reused stack and returns its i32 result.
func (inst *instance) call(fn api.Function, params ...uint64) (int32, error) {
	n := copy(inst.stack[:], params)
	if err := fn.CallWithStack(inst.ctx, inst.stack[:max(n, 1)]); err != nil {
		return 0, inst.tooDeep(err)
	}
	return api.DecodeI32(inst.stack[0]), nil
}

func (inst *instance) close() {
	if inst.wasm != nil {
		_ = inst.wasm.Close(context.Background())
	}
	inst.stdout.Flush()
}

// writeMessage places the client id and then the message in the guest buffer.
func (inst *instance) writeMessage(clientID string, data []byte) error {
	if err := inst.reserve(len(clientID) + len(data)); err != nil {
		return err
	}
	if !inst.mem.WriteString(inst.bufPtr, clientID) || !inst.mem.Write(inst.bufPtr+uint32(len(clientID)), data) {
		return fmt.Errorf("event buffer at %#x is outside guest memory", inst.bufPtr)
	}
	return nil
}
