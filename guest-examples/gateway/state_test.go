package gateway

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestMillis(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want int64
	}{
		{0, 0},
		{time.Nanosecond, 1}, // never 0: that would mean "no expiry" or "now"
		{time.Millisecond, 1},
		{time.Millisecond + 1, 2},
		{1500 * time.Microsecond, 2},
		{time.Second, 1000},
		{math.MaxInt64, int64(math.MaxInt64/time.Millisecond) + 1},
	} {
		if got, err := millis(c.d); err != nil || got != c.want {
			t.Errorf("millis(%v) = %d, %v; want %d", c.d, got, err, c.want)
		}
	}
	if _, err := millis(-time.Millisecond); err != ErrnoInvalid {
		t.Errorf("millis(-1ms) error = %v, want ErrnoInvalid", err)
	}
}

func TestResult64AndNewErrnos(t *testing.T) {
	if id, err := result64(42); id != 42 || err != nil {
		t.Errorf("result64(42) = %d, %v", id, err)
	}
	for _, e := range []Errno{ErrnoQueueFull, ErrnoLimit, ErrnoUnsupported} {
		if id, err := result64(-int64(e)); id != 0 || err != e {
			t.Errorf("result64(-%d) = %d, %v; want %v", e, id, err, e)
		}
	}
	if ErrnoLimit != 8 || ErrnoUnsupported != 9 {
		t.Fatal("errno values differ from ABI.md §2")
	}
	if ErrnoLimit.String() != "limit reached" || ErrnoUnsupported.Error() != "wasmgate: unsupported here" {
		t.Errorf("names: %q, %q", ErrnoLimit.String(), ErrnoUnsupported.Error())
	}
	if Errno(10).String() != "errno 10" {
		t.Errorf("Errno(10) = %q", Errno(10).String())
	}
}

func TestDecodeI64(t *testing.T) {
	if got := decodeI64([8]byte{42}); got != 42 {
		t.Errorf("decodeI64(42) = %d", got)
	}
	if got := decodeI64([8]byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}); got != -2 {
		t.Errorf("decodeI64(-2) = %d", got)
	}
	if got := decodeI64([8]byte{0, 0, 0, 0, 0, 0, 0, 0x80}); got != math.MinInt64 {
		t.Errorf("decodeI64(min) = %d", got)
	}
}

func TestTaskStatusString(t *testing.T) {
	for s, want := range map[TaskStatus]string{TaskOK: "ok", TaskFailed: "failed", TaskCrashed: "crashed", 7: "status 7"} {
		if s.String() != want {
			t.Errorf("TaskStatus(%d) = %q, want %q", s, s.String(), want)
		}
	}
}

func TestRunTask(t *testing.T) {
	res, rc := runTask(func(id int64, p []byte) ([]byte, error) { return append([]byte("r:"), p...), nil }, 1, []byte("x"))
	if string(res) != "r:x" || rc != resultOK {
		t.Errorf("ok task: %q, %d", res, rc)
	}
	res, rc = runTask(func(int64, []byte) ([]byte, error) { return []byte("ignored"), errors.New("no luck") }, 2, nil)
	if string(res) != "no luck" || rc == resultOK {
		t.Errorf("failing task: %q, %d; want the error's text and non-zero", res, rc)
	}
	res, rc = runTask(func(int64, []byte) ([]byte, error) { panic("boom") }, 3, nil)
	if string(res) != "panic: boom" || rc != resultPanic {
		t.Errorf("panicking task: %q, %d", res, rc)
	}
	res, rc = runTask(func(int64, []byte) ([]byte, error) { var p *int; return []byte{byte(*p)}, nil }, 4, nil)
	if rc != resultPanic || len(res) < len("panic: ") {
		t.Errorf("nil dereference: %q, %d", res, rc)
	}
	if res, rc = runTask(nil, 5, nil); rc == resultOK || len(res) == 0 {
		t.Errorf("no callback: %q, %d", res, rc)
	}
}

func TestTaskAndTimerNeedTheirCallbacks(t *testing.T) {
	defer func() { taskFn, finishFn, timerFn = nil, nil, nil }()
	taskFn, timerFn = nil, nil
	if _, err := Task([]byte("x")); err != ErrnoUnsupported {
		t.Errorf("Task without OnTask: %v, want ErrnoUnsupported", err)
	}
	if _, err := SetTimer(time.Second, nil); err != ErrnoUnsupported {
		t.Errorf("SetTimer without OnTimer: %v, want ErrnoUnsupported", err)
	}
	OnTask(func(int64, []byte) ([]byte, error) { return nil, nil })
	OnTimer(func(int64, []byte) {})
	// With callbacks the host is called: the native stand-ins fail with
	// ErrnoInternal, which must come back through the i64 results.
	if id, err := Task(nil); id != 0 || err != ErrnoInternal {
		t.Errorf("Task = %d, %v; want the host's ErrnoInternal", id, err)
	}
	if _, err := SetTimer(-time.Second, nil); err != ErrnoInvalid {
		t.Errorf("SetTimer(-1s) = %v, want ErrnoInvalid", err)
	}
	if id, err := SetTimer(0, []byte("p")); id != 0 || err != ErrnoInternal {
		t.Errorf("SetTimer = %d, %v", id, err)
	}
	if _, err := ClearTimer(1); err != ErrnoInternal {
		t.Errorf("ClearTimer = %v", err)
	}
}

func TestKVArgumentChecks(t *testing.T) {
	if err := KV.Set("k", nil, -time.Second); err != ErrnoInvalid {
		t.Errorf("Set with a negative ttl = %v", err)
	}
	if _, err := KV.Incr("k", 1, -1); err != ErrnoInvalid {
		t.Errorf("Incr with a negative ttl = %v", err)
	}
	if _, err := KV.SetIfAbsent("k", nil, -1); err != ErrnoInvalid {
		t.Errorf("SetIfAbsent with a negative ttl = %v", err)
	}
	// Otherwise the host decides (the native stand-ins: ErrnoInternal).
	if _, err := KV.Get("k"); err != ErrnoInternal {
		t.Errorf("Get = %v", err)
	}
	if _, err := KV.Delete("k"); err != ErrnoInternal {
		t.Errorf("Delete = %v", err)
	}
	if n, err := KV.Incr("k", 1, time.Second); n != 0 || err != ErrnoInternal {
		t.Errorf("Incr = %d, %v", n, err)
	}
	if _, err := KV.CompareAndSwap("k", []byte("a"), []byte("b"), 0); err != ErrnoInternal {
		t.Errorf("CompareAndSwap = %v", err)
	}
}

func TestDispatchFinishAndTimer(t *testing.T) {
	defer func() { finishFn, timerFn = nil, nil }()
	growInbuf(64)
	n := copy(inbuf, "result")
	if r := handleFinish(1, uint32(n), 0); r != resultOK {
		t.Errorf("on_finish without a callback = %d", r)
	}
	var gotID int64
	var got string
	var gotStatus TaskStatus
	OnFinish(func(id int64, result []byte, status TaskStatus) { gotID, got, gotStatus = id, string(result), status })
	if r := handleFinish(7, uint32(n), 2); r != resultOK || gotID != 7 || got != "result" || gotStatus != TaskCrashed {
		t.Errorf("on_finish = %d: %d %q %v", r, gotID, got, gotStatus)
	}
	if r := handleFinish(7, uint32(len(inbuf)+1), 0); r != resultBadInput {
		t.Errorf("on_finish with a bad length = %d", r)
	}
	OnFinish(func(int64, []byte, TaskStatus) { panic("x") })
	if r := handleFinish(7, 0, 0); r != resultPanic {
		t.Errorf("panicking on_finish = %d", r)
	}

	OnTimer(func(id int64, payload []byte) { gotID, got = id, string(payload) })
	n = copy(inbuf, "tick")
	if r := handleTimer(9, uint32(n)); r != resultOK || gotID != 9 || got != "tick" {
		t.Errorf("on_timer = %d: %d %q", r, gotID, got)
	}
	if r := handleTimer(9, uint32(len(inbuf)+1)); r != resultBadInput {
		t.Errorf("on_timer with a bad length = %d", r)
	}
}

func TestHandleTask(t *testing.T) {
	defer func() { taskFn = nil }()
	growInbuf(64)
	n := copy(inbuf, "payload")
	var got string
	OnTask(func(id int64, p []byte) ([]byte, error) { got = string(p); return p, nil })
	// The native task_result stand-in fails: the task must then fail too,
	// rather than succeed without its result.
	if r := handleTask(3, uint32(n)); r == resultOK || got != "payload" {
		t.Errorf("handleTask = %d, payload %q", r, got)
	}
	if r := handleTask(3, uint32(len(inbuf)+1)); r != resultBadInput {
		t.Errorf("handleTask with a bad length = %d", r)
	}
}
