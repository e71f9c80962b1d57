package runtime

import (
	"context"

	"github.com/wasmgate/wasmgate/internal/metrics"
)

// Stats is a snapshot of one module version and of its shared State, for
// status pages and metrics.
type Stats struct {
	Module string `json:"module"`
	// Quarantined says why the module was quarantined; empty if it is not.
	Quarantined string `json:"quarantined,omitempty"`
	Events      int64  `json:"events"`   // guest calls made
	Traps       int64  `json:"traps"`    // calls that trapped or broke the ABI
	Timeouts    int64  `json:"timeouts"` // calls stopped at their deadline
	// Event-time percentiles of every guest call since this version was
	// loaded, in microseconds, each the upper edge of a histogram bucket
	// (within 25 % above the true value); 0 before the first call.
	EventP50 int64 `json:"event_p50_us"`
	EventP99 int64 `json:"event_p99_us"`

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
	KVKeys     int   `json:"kv_keys"`  // -1: unknown (cluster store unreachable)
	KVBytes    int   `json:"kv_bytes"` // -1: unknown
	// Latency holds the guest call durations by event kind ("on_message"
	// and the rest), for the kinds called at least once: their counts add
	// up to Events once no call is under way (latency.go).
	Latency map[string]metrics.HistogramSnapshot `json:"latency"`
}

// Stats returns the module's counters.
func (m *Module) Stats() Stats {
	ps := m.pool.stats()
	keys, bytes, err := m.state.kv.Usage(context.Background())
	if err != nil { // a cluster store that cannot be reached: unknown
		keys, bytes = -1, -1
	}
	timers, fired := m.state.timers.counts()
	lat := m.latency.snapshot()
	p50, p99 := percentilesUs(lat)
	return Stats{
		Module:      m.name,
		EventP50:    p50,
		EventP99:    p99,
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
		Latency:     lat,
	}
}

// Quarantined returns why the module was quarantined, or "".
func (m *Module) Quarantined() string { return m.health.reason() }

// percentilesUs returns the median and the 99th percentile, in µs, of the
// guest call times of every event kind together (the histograms of
// latency.go, interpolated inside their buckets as Prometheus does).
func percentilesUs(lat map[string]metrics.HistogramSnapshot) (p50, p99 int64) {
	var all metrics.HistogramSnapshot
	for _, s := range lat {
		all.Add(s)
	}
	if q, ok := all.Quantile(0.50); ok {
		p50 = int64(q * 1e6)
	}
	if q, ok := all.Quantile(0.99); ok {
		p99 = int64(q * 1e6)
	}
	return p50, p99
}
