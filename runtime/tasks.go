package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/wasmgate/wasmgate/abi"
)

// taskQueue runs one module's tasks (the task host function, ABI.md §5.7):
// a bounded queue drained by a fixed number of worker goroutines, started
// with the first task. A worker runs on_task on the target's task pool (its
// own instances and deadline, so slow work never holds the instances that
// serve clients) and then on_finish on a normal instance. Submitting never
// blocks: a full queue is abi.ErrnoQueueFull for the caller.
type taskQueue struct {
	workers int
	queue   chan task
	target  func() Target
	log     *slog.Logger

	start   sync.Once
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	nextID  atomic.Int64
	running atomic.Int64
	done    atomic.Int64
	failed  atomic.Int64 // finished with a status other than TaskOK

	closeMu sync.RWMutex // submit holds it shared; close exclusively
	closed  bool
}

type task struct {
	id      int64
	payload []byte
}

func newTaskQueue(workers, queueLen int, target func() Target, log *slog.Logger) *taskQueue {
	ctx, cancel := context.WithCancel(context.Background())
	return &taskQueue{workers: workers, queue: make(chan task, max(queueLen, 0)), target: target, log: log, ctx: ctx, cancel: cancel}
}

// submit queues payload and returns its task id (> 0).
func (q *taskQueue) submit(payload []byte) (int64, error) {
	if q.workers <= 0 {
		return 0, abi.ErrnoUnsupported
	}
	q.closeMu.RLock()
	defer q.closeMu.RUnlock()
	if q.closed {
		return 0, abi.ErrnoUnsupported
	}
	q.start.Do(q.startWorkers)
	id := q.nextID.Add(1)
	select {
	case q.queue <- task{id: id, payload: payload}:
		return id, nil
	default:
		return 0, abi.ErrnoQueueFull
	}
}

func (q *taskQueue) startWorkers() {
	for range q.workers {
		q.wg.Add(1)
		go q.work()
	}
}

func (q *taskQueue) work() {
	defer q.wg.Done()
	for {
		select {
		case <-q.ctx.Done():
			return
		case t := <-q.queue:
			if q.ctx.Err() != nil { // select picked the task over a close
				return
			}
			q.run(t)
		}
	}
}

func (q *taskQueue) run(t task) {
	tg := q.target()
	if tg == nil {
		return
	}
	q.running.Add(1)
	result, status := tg.OnTask(q.ctx, t.id, t.payload)
	q.running.Add(-1)
	q.done.Add(1)
	if status != abi.TaskOK {
		q.failed.Add(1)
	}
	if q.ctx.Err() != nil { // closed under it (module removed, shutdown): nobody to tell
		return
	}
	if err := tg.OnFinish(q.ctx, t.id, result, status); err != nil {
		q.log.Warn("on_finish failed", "task", t.id, "err", err)
	}
}

// close stops the workers without waiting for them (wait does): a
// running on_task is stopped by the watchdog (its context ends) and gets
// no on_finish; queued tasks are dropped (their module is gone).
func (q *taskQueue) close() {
	q.closeMu.Lock()
	already := q.closed
	q.closed = true
	q.closeMu.Unlock()
	q.cancel()
	if n := len(q.queue); n > 0 && !already {
		q.log.Warn("module removed; queued tasks dropped", "tasks", n)
	}
}

// wait waits until the workers have returned, or until ctx ends: a
// runtime without deadlines (event_timeout 0) cannot stop a running
// on_task, and a caller must not hang on it.
func (q *taskQueue) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d tasks still running: %w", q.running.Load(), ctx.Err())
	}
}
