package gateway

import (
	"runtime"
	"strconv"
)

// Tasks (ABI.md §5.7): slow work handed off from an event to the module's
// task instances, which have a longer deadline (task_timeout, default 10 s)
// and do not serve clients.

// TaskStatus says how a task ended; OnFinish callbacks receive it.
type TaskStatus int32

const (
	// TaskOK: the OnTask callback returned a nil error; the result is what
	// it returned.
	TaskOK TaskStatus = 0
	// TaskFailed: the OnTask callback returned an error or panicked; the
	// result is the error's text (a panic's is "panic: " and its value).
	TaskFailed TaskStatus = 1
	// TaskCrashed: the task trapped, ran past the task deadline or could not
	// run; the result is the host's error text.
	TaskCrashed TaskStatus = 2
)

// String returns "ok", "failed" or "crashed".
func (s TaskStatus) String() string {
	switch s {
	case TaskOK:
		return "ok"
	case TaskFailed:
		return "failed"
	case TaskCrashed:
		return "crashed"
	}
	return "status " + strconv.Itoa(int(s))
}

var (
	taskFn   func(id int64, payload []byte) ([]byte, error)
	finishFn func(id int64, result []byte, status TaskStatus)
)

// OnTask registers f (call it from init) to run each task, on one of the
// module's task instances. payload is what was passed to Task, valid only
// during f. f's result, or its error's text, reaches OnFinish. f may call
// every host function, but it serves no client: carry whom the task is for
// in the payload (and in the result, or in the key-value store).
func OnTask(f func(id int64, payload []byte) (result []byte, err error)) { taskFn = f }

// OnFinish registers f (call it from init) to run, on an ordinary instance,
// once a task has ended, with its id, its result (valid only during f) and
// how it ended. Without an OnFinish callback tasks still run and their
// results are dropped.
//
// f may run before the event that called Task has returned: a record that
// the event writes after Task returns (in the key-value store, say) may not
// exist yet when f runs. guest-examples/tasks shows a hand-over that works
// whichever side comes second.
func OnFinish(f func(id int64, result []byte, status TaskStatus)) { finishFn = f }

// Task queues payload (copied) for the module's OnTask callback and returns
// the task's id (> 0) at once; it never blocks. It fails with
// ErrnoQueueFull when the module's task queue is full, and with
// ErrnoUnsupported when no OnTask callback is registered or the server has
// tasks switched off.
func Task(payload []byte) (int64, error) {
	if taskFn == nil {
		return 0, ErrnoUnsupported
	}
	r := hostTask(bytesPtr(payload), uint32(len(payload)))
	runtime.KeepAlive(payload)
	return result64(r)
}

// taskResult hands the running task's result to the host (task_result).
func taskResult(result []byte) error {
	r := hostTaskResult(bytesPtr(result), uint32(len(result)))
	runtime.KeepAlive(result)
	return check(r)
}

// Results of on_task besides resultBadInput and resultPanic.
const (
	resultTaskError = 3 // the OnTask callback returned an error
	resultNoTask    = 4 // no OnTask callback is registered
)

func handleTask(taskID int64, payloadLen uint32) int32 {
	payload, ok := input(0, payloadLen)
	if !ok {
		return resultBadInput
	}
	result, rc := runTask(taskFn, taskID, payload)
	if err := taskResult(result); err != nil {
		// Typically a result over max_message_size: fail the task with a
		// reason rather than let it succeed with no result.
		msg := "task_result: " + err.Error()
		Log(LevelError, "task "+strconv.FormatInt(taskID, 10)+": "+msg)
		_ = taskResult([]byte(msg))
		if rc == resultOK {
			rc = resultTaskError
		}
	}
	return rc
}

// runTask calls f and returns what to pass to task_result and on_task's
// result: f's result and 0, or the error's text (a panic's) and non-zero.
func runTask(f func(int64, []byte) ([]byte, error), taskID int64, payload []byte) (result []byte, rc int32) {
	if f == nil {
		return []byte("no OnTask callback registered"), resultNoTask
	}
	defer func() {
		if v := recover(); v != nil {
			msg := "panic: " + panicText(v)
			Log(LevelError, "task "+strconv.FormatInt(taskID, 10)+": "+msg)
			result, rc = []byte(msg), resultPanic
		}
	}()
	result, err := f(taskID, payload)
	if err != nil {
		return []byte(err.Error()), resultTaskError
	}
	return result, resultOK
}

func handleFinish(taskID int64, resultLen uint32, status int32) (r int32) {
	result, ok := input(0, resultLen)
	if !ok {
		return resultBadInput
	}
	if finishFn == nil {
		return resultOK
	}
	defer recoverTo("on_finish", &r, resultPanic)
	finishFn(taskID, result, TaskStatus(status))
	return resultOK
}
