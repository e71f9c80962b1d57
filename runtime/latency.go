package runtime

import "github.com/wasmgate/wasmgate/internal/metrics"

// Event durations: every guest call a Module makes is timed into a
// fixed-bucket histogram per event kind (internal/metrics), which /metrics
// exposes as wasmgate_event_duration_seconds and `wasmgate status` reads
// its p99 from. The time is the guest call's own, from an instance in hand
// to its return (waiting for an instance shows in Stats.Queued and
// Paused). Observing costs two clock reads and two atomic adds.

// eventKinds are the events timed, in the order of latency's histograms.
var eventKinds = [...]string{"on_handshake", "on_connect", "on_message", "on_close", "on_timer", "on_task", "on_finish"}

// latency holds one histogram per event kind.
type latency [len(eventKinds)]metrics.Histogram

// of returns event's histogram; event is one of eventKinds (the Module's
// own calls name them).
func (l *latency) of(event string) *metrics.Histogram {
	switch event {
	case "on_message":
		return &l[2]
	case "on_handshake":
		return &l[0]
	case "on_connect":
		return &l[1]
	case "on_close":
		return &l[3]
	case "on_timer":
		return &l[4]
	case "on_task":
		return &l[5]
	default:
		return &l[6]
	}
}

// snapshot returns the histograms of the kinds called at least once.
func (l *latency) snapshot() map[string]metrics.HistogramSnapshot {
	out := map[string]metrics.HistogramSnapshot{}
	for i := range l {
		if s := l[i].Snapshot(); s.Count() > 0 {
			out[eventKinds[i]] = s
		}
	}
	return out
}
