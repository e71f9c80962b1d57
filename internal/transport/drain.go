package transport

import (
	"context"
	"time"
)

// WaitLanes waits until every fan-out lane has delivered its jobs to the
// clients' own queues, or ctx ends; it reports whether they all did. A
// server closing its clients calls it first (after the push ports have
// stopped), so that a send to many that was acknowledged before is
// queued ahead of the close frame rather than dropped behind it.
func (h *Hub) WaitLanes(ctx context.Context) bool {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		busy := false
		for i := range h.lanes {
			l := &h.lanes[i]
			l.mu.Lock()
			busy = busy || l.busy
			l.mu.Unlock()
		}
		if !busy {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}
