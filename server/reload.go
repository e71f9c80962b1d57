package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/config"
	"github.com/wasmgate/wasmgate/internal/push"
	"github.com/wasmgate/wasmgate/runtime"
)

// Hot reload. Every module is served through a moduleSlot, the Handler its
// routes (and its connected clients) hold. Reload compiles and validates a
// changed file off the hot path and, only if it loads, swaps it into the
// slot atomically: events already running finish on the old version, every
// event that starts after the swap runs on the new one, and connections,
// uids, groups and sessions (all owned by the host) are untouched. The old
// version is closed when its last running event returns (reference count).

// liveModule is one loaded version of a module.
type liveModule struct {
	mod       *runtime.Module
	sha       string
	refs      atomic.Int64 // events running on it
	retired   atomic.Bool  // replaced: close when refs reaches 0
	closeOnce sync.Once
}

func (lm *liveModule) release() {
	if lm.refs.Add(-1) == 0 && lm.retired.Load() {
		lm.close()
	}
}

func (lm *liveModule) retire() {
	lm.retired.Store(true)
	if lm.refs.Load() == 0 {
		lm.close()
	}
}

func (lm *liveModule) close() {
	lm.closeOnce.Do(func() { _ = lm.mod.Close(context.Background()) })
}

// moduleSlot serves whatever version of one module is current.
type moduleSlot struct {
	name string
	cur  atomic.Pointer[liveModule]
	// clients counts the clients connected through the slot (OnConnect to
	// OnClose). A removed slot retires its last version when the last of
	// them leaves: until then they keep being served by it.
	clients atomic.Int64
	removed atomic.Bool
}

// remove marks the slot's module as removed from the handlers folder and
// retires its version now if no client is connected through it, else when
// the last one leaves (OnClose).
func (s *moduleSlot) remove() {
	s.removed.Store(true)
	if s.clients.Load() == 0 {
		s.cur.Load().retire()
	}
}

// acquire returns the current version with a reference held. The re-check
// after counting closes the race with a concurrent swap: a version that was
// swapped out meanwhile is released (and closed, if retired) and the loop
// takes the new one.
func (s *moduleSlot) acquire() *liveModule {
	for {
		lm := s.cur.Load()
		lm.refs.Add(1)
		if s.cur.Load() == lm {
			return lm
		}
		lm.release()
	}
}

// OnHandshake implements Handler.
func (s *moduleSlot) OnHandshake(ctx context.Context, h *abi.Handshake) (int, error) {
	lm := s.acquire()
	defer lm.release()
	return lm.mod.OnHandshake(ctx, h)
}

// OnConnect implements Handler.
func (s *moduleSlot) OnConnect(ctx context.Context, id string) error {
	s.clients.Add(1)
	lm := s.acquire()
	defer lm.release()
	return lm.mod.OnConnect(ctx, id)
}

// OnMessage implements Handler.
func (s *moduleSlot) OnMessage(ctx context.Context, id string, msg abi.Message) error {
	lm := s.acquire()
	defer lm.release()
	return lm.mod.OnMessage(ctx, id, msg)
}

// WantsClosingState implements closingStater for the current version.
func (s *moduleSlot) WantsClosingState() bool { return s.cur.Load().mod.WantsClosingState() }

// OnClose implements Handler.
func (s *moduleSlot) OnClose(ctx context.Context, id string) error {
	lm := s.acquire()
	err := lm.mod.OnClose(ctx, id)
	lm.release()
	// Both this and remove check the other's flag after setting their own
	// (sequentially consistent atomics): at least one of them retires.
	if s.clients.Add(-1) == 0 && s.removed.Load() {
		s.cur.Load().retire()
	}
	return err
}

// OnTimer implements runtime.Target: timers outlive versions and fire into
// the current one.
func (s *moduleSlot) OnTimer(ctx context.Context, id int64, payload []byte) error {
	lm := s.acquire()
	defer lm.release()
	return lm.mod.OnTimer(ctx, id, payload)
}

// OnTask implements runtime.Target.
func (s *moduleSlot) OnTask(ctx context.Context, id int64, payload []byte) ([]byte, int32) {
	lm := s.acquire()
	defer lm.release()
	return lm.mod.OnTask(ctx, id, payload)
}

// OnFinish implements runtime.Target.
func (s *moduleSlot) OnFinish(ctx context.Context, id int64, result []byte, status int32) error {
	lm := s.acquire()
	defer lm.release()
	return lm.mod.OnFinish(ctx, id, result, status)
}

// ReloadReport says what one Reload changed.
type ReloadReport struct {
	Loaded, Replaced, Removed, Unchanged []string
	// Refused lists modules that failed to load; their previous version,
	// if any, keeps serving.
	Refused []error
}

// Reload rescans the handlers folder: new and changed modules are loaded
// and swapped in, removed ones stop accepting new clients (connected ones
// keep their version until they leave), and a module that fails to load
// leaves its previous version serving.
//
// Reload holds s.serialMu throughout (one reload at a time) but s.reloadMu
// only to change s.slots, so a reload busy compiling never blocks /status,
// /metrics or a quarantine; it waits for no guest call (a removed module's
// running task is stopped, not awaited: runtime.Forget).
//
// Each call counts in wasmgate_reloads_total: failed if the folder could
// not be read or a module was refused, ok otherwise.
func (s *Server) Reload(ctx context.Context) (ReloadReport, error) {
	rep, err := s.reload(ctx)
	if err != nil || len(rep.Refused) > 0 {
		s.reloads.failed.Add(1)
	} else {
		s.reloads.ok.Add(1)
	}
	return rep, err
}

// reload is Reload without the count: the first load is not a reload.
func (s *Server) reload(ctx context.Context) (ReloadReport, error) {
	s.serialMu.Lock()
	defer s.serialMu.Unlock()
	var rep ReloadReport
	files, err := filepath.Glob(filepath.Join(s.cfg.Server.HandlersDir, "*.wasm"))
	if err != nil {
		return rep, err
	}
	seen := map[string]bool{}
	for _, path := range files {
		name := strings.TrimSuffix(filepath.Base(path), ".wasm")
		seen[name] = true
		s.reloadFile(ctx, name, path, &rep)
	}
	for name, slot := range s.slots {
		if !seen[name] {
			s.reloadMu.Lock()
			delete(s.slots, name)
			s.reloadMu.Unlock()
			s.rt.Forget(name) // its timers, tasks and key-value store
			slot.remove()     // closed once its connected clients have left
			rep.Removed = append(rep.Removed, name)
			s.history.add(push.ReloadEvent{Module: name, Action: "removed", SHA256: slot.cur.Load().sha})
			s.log.Info("module removed; its connected clients keep their version", "module", name)
		}
	}
	s.publishRoutes(&rep)
	return rep, nil
}

// reloadFile loads path if it is new or changed.
func (s *Server) reloadFile(ctx context.Context, name, path string, rep *ReloadReport) {
	wasm, err := os.ReadFile(path)
	if err != nil {
		rep.Refused = append(rep.Refused, fmt.Errorf("load %s: %w", path, err))
		s.history.add(push.ReloadEvent{Module: name, Action: "refused", Error: err.Error()})
		return
	}
	sum := sha256.Sum256(wasm)
	sha := hex.EncodeToString(sum[:])
	slot := s.slots[name]
	// An unchanged file is reloaded only to lift a quarantine.
	if slot != nil && slot.cur.Load().sha == sha && slot.cur.Load().mod.Quarantined() == "" {
		rep.Unchanged = append(rep.Unchanged, name)
		return
	}
	start := time.Now()
	mc := s.cfg.Modules[name]
	limits := s.runtimeConfig(mc.Limits(s.cfg.Runtime))
	mod, err := s.rt.Load(ctx, name, wasm, mc.Config, runtime.WithLimits(func(c *runtime.Config) { *c = limits }))
	if err != nil {
		err = fmt.Errorf("load %s: %w", path, err)
		if slot != nil {
			err = fmt.Errorf("%w (the previous version keeps serving)", err)
		}
		rep.Refused = append(rep.Refused, err)
		s.log.Error("module refused", "module", name, "sha256", sha, "err", err)
		s.history.add(push.ReloadEvent{Module: name, Action: "refused", SHA256: sha, Error: err.Error()})
		return
	}
	lm := &liveModule{mod: mod, sha: sha}
	took := time.Since(start).Round(time.Microsecond)
	if slot == nil {
		slot = &moduleSlot{name: name}
		slot.cur.Store(lm)
		s.reloadMu.Lock()
		s.slots[name] = slot
		s.reloadMu.Unlock()
		s.rt.State(name).SetTarget(slot)
		rep.Loaded = append(rep.Loaded, name)
		s.log.Info("module loaded", "module", name, "file", path, "sha256", sha, "took", took)
		s.history.add(push.ReloadEvent{Module: name, Action: "loaded", SHA256: sha})
		return
	}
	old := slot.cur.Swap(lm)
	old.retire()
	rep.Replaced = append(rep.Replaced, name)
	s.log.Info("module reloaded", "module", name, "sha256", sha, "previous_sha256", old.sha, "took", took)
	s.history.add(push.ReloadEvent{Module: name, Action: "replaced", SHA256: sha, Previous: old.sha})
}

// publishRoutes builds the route table from the native handlers, the module
// slots and [routes], and swaps it in atomically.
func (s *Server) publishRoutes(rep *ReloadReport) {
	routes := map[string]*route{}
	for path, h := range s.natives {
		routes[path] = &route{path: path, module: "native", handler: h}
	}
	for name, slot := range s.slots {
		routes["/"+name] = &route{path: "/" + name, module: name, handler: slot, deflate: s.cfg.Modules[name].Deflate}
	}
	for _, path := range config.SortedKeys(s.cfg.Routes) {
		name := s.cfg.Routes[path]
		slot, ok := s.slots[name]
		if !ok {
			err := fmt.Errorf("routes.%s: module %q is not loaded", path, name)
			rep.Refused = append(rep.Refused, err)
			s.log.Error("module refused", "err", err)
			continue
		}
		routes[path] = &route{path: path, module: name, handler: slot, deflate: s.cfg.Modules[name].Deflate}
	}
	s.routes.Store(&routes)
}

// route returns the route serving path, or nil.
func (s *Server) route(path string) *route { return (*s.routes.Load())[path] }

// Routes returns the served paths and the module behind each, sorted.
func (s *Server) Routes() []string {
	routes := *s.routes.Load()
	out := make([]string, 0, len(routes))
	for p, r := range routes {
		out = append(out, p+" -> "+r.module)
	}
	sort.Strings(out)
	return out
}

// loadInitial is the first Reload, run by New: refused modules are logged
// and kept in LoadErrors; no module at all is an error.
func (s *Server) loadInitial(ctx context.Context) error {
	rep, err := s.reload(ctx)
	if err != nil {
		return err
	}
	s.loadErrs = rep.Refused
	if len(rep.Loaded) == 0 && len(s.natives) == 0 {
		if len(s.loadErrs) == 0 {
			s.loadErrs = []error{fmt.Errorf("handlers folder %s has no .wasm files", s.cfg.Server.HandlersDir)}
		}
		return fmt.Errorf("no handler could be loaded from %s: %w", s.cfg.Server.HandlersDir, errors.Join(s.loadErrs...))
	}
	return nil
}

// handleReload serves POST /reload on the admin listener (`wasmgate
// reload`).
func (s *Server) reloadSummary(ctx context.Context) (int, string) {
	rep, err := s.Reload(ctx)
	if err != nil {
		return http.StatusInternalServerError, err.Error()
	}
	msg := fmt.Sprintf("loaded %v, replaced %v, removed %v, unchanged %v", rep.Loaded, rep.Replaced, rep.Removed, rep.Unchanged)
	for _, e := range rep.Refused {
		msg += "\nrefused: " + e.Error()
	}
	if s.certs != nil {
		if err := s.ReloadTLS(); err != nil {
			msg += "\nrefused: " + err.Error()
		} else {
			msg += "\nTLS certificate reloaded"
		}
	}
	return http.StatusOK, msg
}

// reloadHistory keeps the last maxReloadHistory module events for /status
// (the admin dashboard's reload history). Reload adds under serialMu,
// Status reads; its own mutex keeps Status off serialMu, which a reload
// holds while it compiles.
type reloadHistory struct {
	mu     sync.Mutex
	events []push.ReloadEvent
}

const maxReloadHistory = 50

func (h *reloadHistory) add(e push.ReloadEvent) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.events) == maxReloadHistory {
		h.events = append(h.events[:0], h.events[1:]...)
	}
	h.events = append(h.events, e)
}

// list returns a copy, oldest first.
func (h *reloadHistory) list() []push.ReloadEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]push.ReloadEvent{}, h.events...)
}
