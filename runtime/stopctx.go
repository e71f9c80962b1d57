package runtime

import (
	"context"
	"sync"
	"time"
)

// stopContext is the context every call on one instance runs under. It
// never ends by itself; the watchdog ends it (stop) when the instance's
// event runs past its deadline, and it then reports DeadlineExceeded.
//
// Stopping through the context, rather than closing the module from the
// watchdog's goroutine, lets wazero do it safely: its per-call goroutine
// only marks the module closed, and the guest's own goroutine releases
// the module's resources (its WASI file table) at its next check. Closing
// the module from another goroutine releases them under a guest that may
// be inside a WASI call (fd_write looking up its file): a data race.
//
// One stopContext is made per instance, not per event; a stopped instance
// is discarded, so it is never reset.
type stopContext struct {
	values context.Context // only its values are used, not its end
	done   chan struct{}
	once   sync.Once
}

func newStopContext(parent context.Context) *stopContext {
	return &stopContext{values: parent, done: make(chan struct{})}
}

func (c *stopContext) Deadline() (time.Time, bool) { return time.Time{}, false }

// Value asks the parent directly (embedding context.WithoutCancel's result
// would box it on every lookup: one allocation per event).
func (c *stopContext) Value(key any) any { return c.values.Value(key) }

func (c *stopContext) Done() <-chan struct{} { return c.done }

func (c *stopContext) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}

// stop ends the context; the running call, if any, fails at its next
// termination check (a loop back-edge) or at its next call's start.
func (c *stopContext) stop() { c.once.Do(func() { close(c.done) }) }
