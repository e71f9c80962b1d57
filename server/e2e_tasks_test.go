package server_test

import (
	"testing"
	"time"
)

// The tasks example (guest-examples/tasks): {"type":"compute","n":N} is
// answered at once with a progress message, and later, from on_finish, with
// the result of fib(N) computed in on_task on a task instance.

func fib(n int) int64 {
	a, b := int64(0), int64(1)
	for range n {
		a, b = b, a+b
	}
	return a
}

// compute asks for fib(n) and returns the task id from the progress reply.
func compute(t *testing.T, c *wsClient, n int) int64 {
	t.Helper()
	c.sendJSON(map[string]any{"type": "compute", "n": n})
	m := c.expectType("progress")
	id, _ := m["task"].(float64)
	if id <= 0 || m["state"] != "queued" || m["n"] != float64(n) {
		t.Fatalf("progress = %v", m)
	}
	return int64(id)
}

func expectResult(t *testing.T, c *wsClient, task int64, n int) {
	t.Helper()
	m := c.expectType("result")
	if m["task"] != float64(task) || m["n"] != float64(n) || m["value"] != float64(fib(n)) {
		t.Fatalf("result = %v, want task %d fib(%d) = %d", m, task, n, fib(n))
	}
}

func expectTaskError(t *testing.T, c *wsClient, task int64, status string) string {
	t.Helper()
	m := c.expectType("error")
	msg, _ := m["error"].(string)
	if m["task"] != float64(task) || m["status"] != status || msg == "" {
		t.Fatalf("error = %v, want task %d status %q and a reason", m, task, status)
	}
	return msg
}

func TestTasks_ProgressThenResult(t *testing.T) {
	srv := startServer(t, handlersWith(t, "tasks"), nil)
	c := srv.dial(t, "/tasks")
	start := time.Now()
	id := compute(t, c, 27)
	expectResult(t, c, id, 27)
	t.Logf("fib(27) as a task, with a new task instance: %s", time.Since(start))

	// Anything else is refused without a task.
	c.sendJSON(map[string]any{"type": "compute", "n": 99})
	if m := c.expectType("error"); m["task"] != nil {
		t.Fatalf("n out of range started a task: %v", m)
	}
	c.sendText("{")
	c.expectType("error")

	// The hand-over keys in the module's key-value store are gone.
	eventually(t, "no hand-over keys left", func() bool { return moduleStatus(t, srv, "tasks").KVKeys == 0 })
	if st := moduleStatus(t, srv, "tasks"); st.TasksDone != 1 || st.TasksFail != 0 {
		t.Fatalf("status: %+v", st)
	}
}

func TestTasks_FailedAndCrashedTasksReportAndTheNextOneWorks(t *testing.T) {
	srv := startServer(t, handlersWith(t, "tasks"), nil)
	c := srv.dial(t, "/tasks")

	id := compute(t, c, -1) // on_task panics; the SDK recovers it
	if msg := expectTaskError(t, c, id, "failed"); msg != "panic: asked to panic (n = -1)" {
		t.Fatalf("panicking task: error %q", msg)
	}
	id = compute(t, c, -2) // on_task traps; the host discards the instance
	msg := expectTaskError(t, c, id, "crashed")
	t.Logf("crashed task: %q", msg)

	id = compute(t, c, 20)
	expectResult(t, c, id, 20)
	st := moduleStatus(t, srv, "tasks")
	if st.TasksDone != 3 || st.TasksFail != 2 || st.Traps != 1 || st.Quarantined != "" {
		t.Fatalf("status: %+v; want 3 tasks done, 2 failed, 1 trap", st)
	}
}

func TestTasks_ResultsGoBackToTheirOwnClients(t *testing.T) {
	srv := startServer(t, handlersWith(t, "tasks"), nil)
	a, b := srv.dial(t, "/tasks"), srv.dial(t, "/tasks")
	// Small n finish in microseconds, often before on_message has
	// returned: both orders of the hand-over get exercised.
	ns := []int{25, 0, 1, 12, 5, 22, 2, 18, 3, 9}
	for i, n := range ns {
		for _, c := range []*wsClient{a, b} {
			c.sendJSON(map[string]any{"type": "compute", "n": n + i%2})
		}
	}
	for _, c := range []*wsClient{a, b} {
		byTask := map[int64]int{} // task → n, from the progress messages
		results := 0
		for results < len(ns) {
			m := c.readJSON()
			task := int64(m["task"].(float64))
			n := int(m["n"].(float64))
			switch m["type"] {
			case "progress":
				byTask[task] = n
			case "result":
				want, ok := byTask[task]
				if !ok {
					t.Fatalf("result %v: no progress for that task on this client before it", m)
				}
				if n != want || m["value"] != float64(fib(n)) {
					t.Fatalf("result %v: want fib(%d) = %d", m, want, fib(want))
				}
				delete(byTask, task)
				results++
			default:
				t.Fatalf("unexpected %v", m)
			}
		}
		if len(byTask) != 0 {
			t.Fatalf("tasks without a result: %v", byTask)
		}
	}
	a.expectSilence(50 * time.Millisecond)
	b.expectSilence(50 * time.Millisecond)
	eventually(t, "no hand-over keys left", func() bool { return moduleStatus(t, srv, "tasks").KVKeys == 0 })
}

// TestTasks_TimerReminderAndCancel: the SDK's SetTimer/OnTimer/ClearTimer
// through the example's reminders.
func TestTasks_TimerReminderAndCancel(t *testing.T) {
	srv := startServer(t, handlersWith(t, "tasks"), nil)
	c := srv.dial(t, "/tasks")
	start := time.Now()
	c.sendJSON(map[string]any{"type": "remind", "ms": 100, "text": "tea"})
	id := c.expectType("timer")["timer"]
	if m := c.expectType("reminder"); m["timer"] != id || m["text"] != "tea" {
		t.Fatalf("reminder = %v, want timer %v", m, id)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Fatalf("reminder after %s, before its 100 ms", took)
	}

	c.sendJSON(map[string]any{"type": "remind", "ms": 60_000, "text": "never"})
	id = c.expectType("timer")["timer"]
	for _, want := range []bool{true, false} { // pending, then gone
		c.sendJSON(map[string]any{"type": "cancel", "timer": id})
		if m := c.expectType("cancel"); m["timer"] != id || m["cleared"] != want {
			t.Fatalf("cancel = %v, want cleared %v", m, want)
		}
	}
	if st := moduleStatus(t, srv, "tasks"); st.Timers != 0 || st.TimersRun != 1 {
		t.Fatalf("status: %+v; want no pending timer and 1 run", st)
	}
}
