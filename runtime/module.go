package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/internal/metrics"
	"github.com/wasmgate/wasmgate/runtime/internal/guestlog"
)

// Module is one loaded handler: compiled code plus a pool of instances. Its
// On* methods deliver events; each runs on one instance from the pool.
type Module struct {
	rt       *Runtime
	cfg      Config // the runtime's, with this module's limits (WithLimits)
	name     string
	config   string
	compiled wazero.CompiledModule
	exports  exportSet
	pool     *pool
	taskPool *pool // instances that run on_task, with the task deadline
	state    *State
	health   health
	events   atomic.Int64      // guest calls made, for Stats
	latency  latency           // guest call durations by event kind (latency.go)
	logLimit *guestlog.Limiter // shared by the instances' log lines
	names    traceNames        // trap backtraces (tracenames.go)
}

func newModule(rt *Runtime, name string, compiled wazero.CompiledModule, exports exportSet, config string, cfg Config, st *State) *Module {
	m := &Module{rt: rt, cfg: cfg, name: name, config: config, compiled: compiled, exports: exports, state: st, names: newTraceNames(compiled)}
	m.health.cfg, m.health.calls = cfg, &m.events
	m.health.onLift = func(why string) {
		rt.log.Warn("module quarantine lifted after its cool-down", "module", name, "cooldown", cfg.QuarantineCooldown, "was", why)
	}
	m.logLimit = guestlog.NewLimiter(cfg.logLimits(), rt.log, name)
	m.pool = newPool(cfg.PoolSize, cfg.EventQueue, func(ctx context.Context) (*instance, error) {
		return m.newInstance(ctx, cfg.EventTimeout)
	})
	m.taskPool = newPool(max(cfg.TaskWorkers, 1), 1, func(ctx context.Context) (*instance, error) {
		return m.newInstance(ctx, cfg.TaskTimeout)
	})
	return m
}

// Name returns the name the module was loaded under.
func (m *Module) Name() string { return m.name }

// ErrTrap reports a guest call that failed: a trap, or a broken ABI promise
// such as a bad buffer. The instance it ran on has been discarded.
var ErrTrap = errors.New("handler failed")

// OnHandshake asks the module whether to accept an upgrade. It returns 0 to
// accept or the HTTP status to refuse with. A module without on_handshake
// accepts everything; one that fails refuses with 500.
func (m *Module) OnHandshake(ctx context.Context, h *abi.Handshake) (int, error) {
	if m.health.reason() != "" {
		return http.StatusServiceUnavailable, fmt.Errorf("%s: %w", m.name, ErrQuarantined)
	}
	if !m.exports.handshake {
		return 0, nil
	}
	input := abi.EncodeList(h.Fields())
	rc, err := m.event(ctx, m.pool, "on_handshake", h.ClientID, func(inst *instance) (int32, error) {
		if err := inst.writeInput(input); err != nil {
			return 0, err
		}
		return inst.call(inst.onHandshake, uint64(len(input)))
	})
	if err != nil {
		return http.StatusInternalServerError, err
	}
	switch {
	case rc == 0:
		return 0, nil
	case rc >= 400 && rc <= 599:
		return int(rc), nil
	default:
		m.rt.log.Warn("on_handshake returned an invalid status; refusing with 500", "module", m.name, "client", h.ClientID, "status", rc)
		return http.StatusInternalServerError, nil
	}
}

// OnConnect delivers on_connect, if the module has it.
func (m *Module) OnConnect(ctx context.Context, clientID string) error {
	if !m.exports.connect {
		return nil
	}
	return m.idEvent(ctx, "on_connect", clientID, func(inst *instance) api.Function { return inst.onConnect })
}

// OnClose delivers on_close, if the module has it. closing_state answers
// with the state ctx carries (WithClosingState), if any.
func (m *Module) OnClose(ctx context.Context, clientID string) error {
	if !m.exports.close {
		return nil
	}
	st := closingStateFrom(ctx)
	rc, err := m.event(ctx, m.pool, "on_close", clientID, func(inst *instance) (int32, error) {
		if err := inst.writeString(clientID); err != nil {
			return 0, err
		}
		inst.inClose, inst.closing = true, st
		defer func() { inst.inClose, inst.closing = false, nil }()
		return inst.call(inst.onClose, uint64(len(clientID)))
	})
	m.warnResult("on_close", clientID, rc)
	return err
}

// OnMessage delivers one message to on_message.
func (m *Module) OnMessage(ctx context.Context, clientID string, msg abi.Message) error {
	var flags uint64
	if msg.Binary {
		flags = uint64(abi.FlagBinary)
	}
	rc, err := m.event(ctx, m.pool, "on_message", clientID, func(inst *instance) (int32, error) {
		if err := inst.writeMessage(clientID, msg.Data); err != nil {
			return 0, err
		}
		return inst.call(inst.onMessage, uint64(len(clientID)), uint64(len(msg.Data)), flags)
	})
	m.warnResult("on_message", clientID, rc)
	return err
}

func (m *Module) idEvent(ctx context.Context, event, clientID string, fn func(*instance) api.Function) error {
	rc, err := m.event(ctx, m.pool, event, clientID, func(inst *instance) (int32, error) {
		if err := inst.writeString(clientID); err != nil {
			return 0, err
		}
		return inst.call(fn(inst), uint64(len(clientID)))
	})
	m.warnResult(event, clientID, rc)
	return err
}

func (m *Module) warnResult(event, clientID string, rc int32) {
	if rc != 0 {
		m.rt.log.Warn("handler returned non-zero", "module", m.name, "event", event, "client", clientID, "result", rc)
	}
}

// OnTimer delivers on_timer for a timer the module set.
func (m *Module) OnTimer(ctx context.Context, timerID int64, payload []byte) error {
	if !m.exports.timer {
		return fmt.Errorf("%s: timer %d fired but the module does not export %s", m.name, timerID, abi.ExportOnTimer)
	}
	rc, err := m.event(ctx, m.pool, "on_timer", "", func(inst *instance) (int32, error) {
		if err := inst.writeInput(payload); err != nil {
			return 0, err
		}
		return inst.call(inst.onTimer, uint64(timerID), uint64(len(payload)))
	})
	m.warnResult("on_timer", "", rc)
	return err
}

// OnTask runs on_task on the task pool and returns what the guest passed
// to task_result and the status for on_finish.
func (m *Module) OnTask(ctx context.Context, taskID int64, payload []byte) ([]byte, int32) {
	if !m.exports.task {
		return []byte(m.name + " does not export " + abi.ExportOnTask), abi.TaskCrashed
	}
	var result []byte
	rc, err := m.event(ctx, m.taskPool, "on_task", "", func(inst *instance) (int32, error) {
		if err := inst.writeInput(payload); err != nil {
			return 0, err
		}
		inst.inTask, inst.taskResult = true, nil
		defer func() { result, inst.inTask, inst.taskResult = inst.taskResult, false, nil }()
		return inst.call(inst.onTask, uint64(taskID), uint64(len(payload)))
	})
	switch {
	case err != nil:
		return []byte(err.Error()), abi.TaskCrashed
	case rc != 0:
		return result, abi.TaskFailed
	}
	return result, abi.TaskOK
}

// OnFinish delivers a task's outcome to on_finish.
func (m *Module) OnFinish(ctx context.Context, taskID int64, result []byte, status int32) error {
	if !m.exports.finish {
		return fmt.Errorf("%s: task %d finished but the module does not export %s", m.name, taskID, abi.ExportOnFinish)
	}
	rc, err := m.event(ctx, m.pool, "on_finish", "", func(inst *instance) (int32, error) {
		if err := inst.writeInput(result); err != nil {
			return 0, err
		}
		return inst.call(inst.onFinish, uint64(taskID), uint64(len(result)), uint64(uint32(status)))
	})
	m.warnResult("on_finish", "", rc)
	return err
}

// event runs fn on an instance from p. A failed call is logged with the
// module, event and client, its instance discarded, and counted by the
// crash policy (crash.go).
func (m *Module) event(ctx context.Context, p *pool, event, clientID string, fn func(*instance) (int32, error)) (int32, error) {
	if why := m.health.reason(); why != "" {
		return 0, fmt.Errorf("%s %s: %w: %s", m.name, event, ErrQuarantined, why)
	}
	inst, err := p.get(ctx)
	if err != nil {
		m.rt.log.Error("no instance for event", "module", m.name, "event", event, "client", clientID, "err", err)
		return 0, fmt.Errorf("%s %s: %w", m.name, event, err)
	}
	m.events.Add(1)
	start := metrics.Now()
	rc, err := m.runWithDeadline(ctx, inst, fn)
	m.latency.of(event).Since(start)
	err = m.names.rewrite(err)
	p.put(inst, err == nil)
	if errors.Is(err, errCancelled) { // not the guest's fault: no crash count, no back-off
		m.rt.log.Warn("guest call stopped: its caller is gone", "module", m.name, "event", event, "client", clientID, "err", err)
		return 0, fmt.Errorf("%s %s: %w", m.name, event, err)
	}
	if err != nil {
		m.rt.log.Error("handler failed; instance discarded", "module", m.name, "event", event, "client", clientID, "err", err)
		if why := m.health.failed(err); why != "" {
			m.rt.log.Error("module quarantined", "module", m.name, "reason", why)
			if hook := m.rt.cfg.OnQuarantine; hook != nil {
				go hook(m, why)
			}
		}
		return 0, fmt.Errorf("%s %s: %w: %w", m.name, event, ErrTrap, err)
	}
	m.health.succeeded()
	return rc, nil
}

// runWithDeadline runs fn while the watchdog may stop it at the event
// deadline or when ctx is done. A stopped call fails; its instance is then
// discarded.
func (m *Module) runWithDeadline(ctx context.Context, inst *instance, fn func(*instance) (int32, error)) (int32, error) {
	if inst.stop == nil { // no checks compiled in: nothing can stop it
		return fn(inst)
	}
	inst.callDone.Store(ctx.Done())
	// Coarse (see watchdog.go), and made unique per call on this instance
	// by a sequence number in its low bits (under a microsecond): two calls
	// within one clock tick would otherwise share a stamp, and a watchdog
	// that read call N's stamp and its ended context could then stop call
	// N+1 with its CAS.
	inst.seq++
	start := m.rt.clock.Load() + int64(inst.seq&1023)
	inst.callStart.Store(start)
	if m.rt.asleep.Load() { // after the store: see watchdog.go's nap
		m.rt.wake()
	}
	rc, err := fn(inst)
	if !inst.callStart.CompareAndSwap(start, 0) { // the watchdog stopped it
		if inst.callStart.Swap(0) == stoppedCancelled {
			return 0, fmt.Errorf("%w (%w): %w", errCancelled, context.Cause(ctx), errOr(err))
		}
		return 0, fmt.Errorf("%w of %s: %w", errDeadline, inst.timeout, errOr(err))
	}
	return rc, err
}

// errCancelled marks a guest call the watchdog stopped because its context
// ended (its caller gave up), as opposed to errDeadline.
var errCancelled = errors.New("stopped: its context ended")

func errOr(err error) error {
	if err == nil {
		return errors.New("stopped")
	}
	return err
}

// Close stops the module: idle instances close now, busy ones when their
// event ends.
func (m *Module) Close(ctx context.Context) error {
	m.rt.mu.Lock()
	delete(m.rt.modules, m)
	m.rt.mu.Unlock()
	m.pool.close()
	m.taskPool.close()
	return m.compiled.Close(ctx)
}

// LogValue lets a *Module be logged by name.
func (m *Module) LogValue() slog.Value { return slog.StringValue(m.name) }
