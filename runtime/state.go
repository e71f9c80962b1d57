package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/wasmgate/wasmgate/internal/kv"
)

// Target receives the events a module's State originates itself — timers
// firing and tasks running and finishing — as opposed to client events. A
// *Module is a Target; a server that hot-reloads modules passes its own
// reload slot (SetTarget) so that these events reach whichever version is
// current when they fire, not the one that asked for them.
type Target interface {
	OnTimer(ctx context.Context, timerID int64, payload []byte) error
	OnTask(ctx context.Context, taskID int64, payload []byte) (result []byte, status int32)
	OnFinish(ctx context.Context, taskID int64, result []byte, status int32) error
}

// State is what every version of one named module shares and what outlives
// a reload: the key-value store, the timers and the task queue. The runtime
// creates it with the first Load of a name and keeps it until Forget.
type State struct {
	name   string
	kv     kv.KV
	timers *timerSet
	tasks  *taskQueue

	mu       sync.Mutex // guards target, external
	target   Target
	external bool // set by SetTarget: Load no longer retargets
}

func newState(name string, cfg Config, log *slog.Logger) (*State, error) {
	var store kv.KV = kv.New(cfg.KVMaxBytes)
	if cfg.KVStore != nil {
		var err error
		if store, err = cfg.KVStore(name, cfg.KVMaxBytes); err != nil {
			return nil, fmt.Errorf("key-value store of module %q: %w", name, err)
		}
	}
	st := &State{name: name, kv: store}
	st.timers = newTimerSet(cfg.MaxTimers, cfg.PoolSize, st.currentTarget, log.With("module", name))
	st.tasks = newTaskQueue(cfg.TaskWorkers, cfg.TaskQueue, st.currentTarget, log.With("module", name))
	return st, nil
}

// SetTarget makes t receive this module's timers and tasks from now on.
func (st *State) SetTarget(t Target) {
	st.mu.Lock()
	st.target, st.external = t, true
	st.mu.Unlock()
}

// loaded makes m the target unless a server set its own.
func (st *State) loaded(m *Module) {
	st.mu.Lock()
	if !st.external {
		st.target = m
	}
	st.mu.Unlock()
}

func (st *State) currentTarget() Target {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.target
}

// close stops the timers and tasks without waiting: calls under way are
// stopped through their context (watchdog.go); wait waits for them.
func (st *State) close() {
	st.timers.close()
	st.tasks.close()
}

// wait waits until no timer or task of st is running, or ctx ends.
func (st *State) wait(ctx context.Context) error {
	return errors.Join(st.timers.wait(ctx), st.tasks.wait(ctx))
}

// state returns name's State, creating it with cfg's limits on first use.
// Only creating its key-value store (Config.KVStore) can fail.
func (r *Runtime) state(name string, cfg Config) (*State, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.states[name]
	if st == nil {
		var err error
		if st, err = newState(name, cfg, r.log); err != nil {
			return nil, err
		}
		r.states[name] = st
	}
	return st, nil
}

// State returns the shared state of the module loaded under name, or nil
// if no module was ever loaded under name (or it was forgotten) and its
// state cannot be created (Config.KVStore failed).
func (r *Runtime) State(name string) *State {
	st, err := r.state(name, r.cfg)
	if err != nil {
		r.log.Error("module state", "module", name, "err", err)
		return nil
	}
	return st
}

// Forget drops name's State: its timers stop, its queued tasks are
// dropped, a running on_task or on_timer is stopped (it does not wait for
// it: Reload must not hang on a guest) and its key-value store is freed.
// Call it when a module is removed for good, not when it is replaced.
func (r *Runtime) Forget(name string) {
	r.mu.Lock()
	st := r.states[name]
	delete(r.states, name)
	r.mu.Unlock()
	if st != nil {
		st.close()
	}
}
