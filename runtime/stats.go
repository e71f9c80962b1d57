package runtime

import "github.com/wasmgate/wasmgate/internal/metrics"

// Stats is a snapshot of one module version and of its shared State, for
// status pages and metrics.
type Stats struct {
	Module string `json:"module"`
	// Quarantined says why the module was quarantined; empty if it is not.
	Quarantined string `json:"quarantined,omitempty"`
	Events      int64  `json:"events"`   // guest calls made
	Traps       int64  `json:"traps"`    // calls that trapped or broke the ABI
	Timeouts    int64  `json:"timeouts"` // calls stopped at their deadline

	Instances  int   `json:"instances"` // live event instances
	Busy       int   `json:"busy"`
	PoolSize   int   `json:"pool_size"`
	Queued     int   `json:"queued"`      // events waiting for an instance
	Paused     int   `json:"paused"`      // callers waiting for a queue place
	Pauses     int64 `json:"pauses"`      // times a caller had to pause
	TaskBusy   int   `json:"task_busy"`   // on_task calls running
	TaskQueued int   `json:"task_queued"` // tasks waiting for a worker
	TasksDone  int64 `json:"tasks_done"`
	TasksFail  int64 `json:"tasks_failed"` // status other than TaskOK
	Timers     int   `json:"timers"`       // not yet delivered: pending or fired and waiting
	TimersRun  int64 `json:"timers_fired"`
	KVKeys     int   `json:"kv_keys"`
	KVBytes    int   `json:"kv_bytes"`
	// Latency holds the guest call durations by event kind ("on_message"
	// and the rest), for the kinds called at least once: their counts add
	// up to Events once no call is under way (latency.go).
	Latency map[string]metrics.HistogramSnapshot `json:"latency"`
}

// Stats returns the module's counters.
func (m *Module) Stats() Stats {
	ps := m.pool.stats()
	keys, bytes := m.state.kv.Usage()
	timers, fired := m.state.timers.counts()
	return Stats{
		Module:      m.name,
		Quarantined: m.health.reason(),
		Events:      m.events.Load(),
		Traps:       m.health.traps.Load(),
		Timeouts:    m.health.timeouts.Load(),
		Instances:   ps.Live,
		Busy:        ps.Busy,
		PoolSize:    ps.Size,
		Queued:      ps.Waiting,
		Paused:      ps.Paused,
		Pauses:      ps.Pauses,
		TaskBusy:    int(m.state.tasks.running.Load()),
		TaskQueued:  len(m.state.tasks.queue),
		TasksDone:   m.state.tasks.done.Load(),
		TasksFail:   m.state.tasks.failed.Load(),
		Timers:      timers,
		TimersRun:   fired,
		KVKeys:      keys,
		KVBytes:     bytes,
		Latency:     m.latency.snapshot(),
	}
}

// Quarantined returns why the module was quarantined, or "".
func (m *Module) Quarantined() string { return m.health.reason() }
