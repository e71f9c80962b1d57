// Command tasks is a wasmgate handler that hands slow work to a task: the
// client is answered at once, and again when the work is done.
//
//	{"type":"compute","n":28}  → at once:  {"type":"progress","task":7,"state":"queued","n":28}
//	                           → later:    {"type":"result","task":7,"n":28,"value":317811}
//
// The work is a naive, exponential Fibonacci: fib(n) for n from 0 to 34.
// n = 28 takes about 0.1 s, and each step up about 1.6 times as long (n = 34,
// some 2 s), far more than an ordinary event may take (event_timeout,
// default 100 ms) but well inside the task deadline (task_timeout, default
// 10 s). Two values make the task fail, for tests and demonstrations:
//
//	"n":-1   the task panics: the SDK recovers it and the task fails (status "failed")
//	"n":-2   the task traps (a real WebAssembly trap that Go cannot recover):
//	         the host discards the task instance (status "crashed")
//
// A task that does not succeed is answered {"type":"error","task":7,
// "status":"failed"|"crashed","error":"…"}. Bad JSON, an unknown type, an n
// out of range or a failed task() call get {"type":"error","error":"…"},
// with no task.
//
// Timers, for work that must wait rather than work that is slow:
//
//	{"type":"remind","ms":500,"text":"t"}  → {"type":"timer","timer":3,"state":"set"}
//	                                       → 500 ms later: {"type":"reminder","timer":3,"text":"t"}
//	{"type":"cancel","timer":3}            → {"type":"cancel","timer":3,"cleared":true|false}
//
// A timer's payload carries the client id and the text, since on_timer,
// like on_finish, belongs to no client.
//
// # Who gets the result
//
// on_finish is told only the task id and the result, and a task that
// crashes has no result of its own (on_finish gets the host's error text),
// so the client id cannot ride in the payload and the result alone. It is
// kept in the module's key-value store under "task:<id>", which every
// instance shares. But on_finish may run before the on_message that called
// task() has stored it: the task can be that quick. So both sides try
// KV.SetIfAbsent on the key, on_message with "c<client id>" and on_finish
// with "r<message>"; whichever comes second finds the other's value,
// delivers the message and deletes the key.
package main

import (
	"encoding/json"
	"strconv"
	"time"
	"unsafe"

	"github.com/wasmgate/wasmgate/guest-examples/gateway"
)

// maxN bounds n: fib(34) takes some 2 s, inside the default 10 s task
// deadline even on a slow machine.
const maxN = 34

// handOverTTL bounds how long a hand-over key may live when its other half
// never comes (the module was removed, the store was full).
const handOverTTL = 10 * time.Minute

type request struct {
	Type  string `json:"type"`
	N     *int   `json:"n"`
	Ms    int64  `json:"ms"`
	Text  string `json:"text"`
	Timer int64  `json:"timer"`
}

// reminder is a timer's payload.
type reminder struct {
	Client string `json:"client"`
	Text   string `json:"text"`
}

type timerMessage struct {
	Type    string `json:"type"`
	Timer   int64  `json:"timer"`
	State   string `json:"state,omitempty"`
	Text    string `json:"text,omitempty"`
	Cleared *bool  `json:"cleared,omitempty"`
}

// job is a task's payload.
type job struct {
	N int `json:"n"`
}

type progressMessage struct {
	Type  string `json:"type"`
	Task  int64  `json:"task"`
	State string `json:"state"`
	N     int    `json:"n"`
}

type resultMessage struct {
	Type  string `json:"type"`
	Task  int64  `json:"task"`
	N     int    `json:"n"`
	Value int64  `json:"value"`
}

type errorMessage struct {
	Type   string `json:"type"`
	Task   int64  `json:"task,omitempty"`
	Status string `json:"status,omitempty"`
	Error  string `json:"error"`
}

func init() {
	gateway.OnMessage(onMessage)
	gateway.OnTask(onTask)
	gateway.OnFinish(onFinish)
	gateway.OnTimer(onTimer)
}

func main() {}

func send(c gateway.Client, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		gateway.Error("tasks: " + err.Error())
		return
	}
	sendRaw(c.ID, b)
}

func onMessage(c gateway.Client, msg []byte) {
	var req request
	if err := json.Unmarshal(msg, &req); err != nil {
		send(c, errorMessage{Type: "error", Error: "bad json: " + err.Error()})
		return
	}
	switch req.Type {
	case "compute":
		compute(c, req)
	case "remind":
		remind(c, req)
	case "cancel":
		cancel(c, req)
	default:
		send(c, errorMessage{Type: "error", Error: "unknown type " + strconv.Quote(req.Type)})
	}
}

func compute(c gateway.Client, req request) {
	if req.N == nil || *req.N < -2 || *req.N > maxN {
		send(c, errorMessage{Type: "error", Error: "n must be from 0 to " + strconv.Itoa(maxN)})
		return
	}
	payload, _ := json.Marshal(job{N: *req.N})
	id, err := gateway.Task(payload)
	if err != nil {
		// ErrnoQueueFull: too much work already waiting; never blocks.
		send(c, errorMessage{Type: "error", Error: "cannot start task: " + err.Error()})
		return
	}
	send(c, progressMessage{Type: "progress", Task: id, State: "queued", N: *req.N})
	// Hand-over (see the package comment): claim the key for this client,
	// or deliver the result on_finish left there.
	key := taskKey(id)
	claimed, err := gateway.KV.SetIfAbsent(key, []byte("c"+c.ID), handOverTTL)
	if err != nil {
		send(c, errorMessage{Type: "error", Task: id, Error: "cannot track task: " + err.Error()})
		return
	}
	if !claimed { // on_finish was first: the key holds the message
		if v, ok := take(key, 'r'); ok {
			sendRaw(c.ID, v)
		}
	}
}

func taskKey(id int64) string { return "task:" + strconv.FormatInt(id, 10) }

// onTask runs on a task instance, with the task deadline instead of the
// event deadline.
func onTask(id int64, payload []byte) ([]byte, error) {
	var j job
	if err := json.Unmarshal(payload, &j); err != nil {
		return nil, err
	}
	switch j.N {
	case -1:
		panic("asked to panic (n = -1)")
	case -2:
		trap()
	}
	return json.Marshal(resultMessage{Type: "result", Task: id, N: j.N, Value: fib(j.N)})
}

func fib(n int) int64 {
	if n < 2 {
		return int64(n)
	}
	return fib(n-1) + fib(n-2)
}

//lint:ignore U1000 only written: the store is what makes the faulting load happen
var sink byte

// trap makes a real WebAssembly trap, which no Go code can recover: a load
// gigabytes past the end of linear memory.
func trap() {
	var b byte
	sink = *(*byte)(unsafe.Add(unsafe.Pointer(&b), 3<<30))
}

// onFinish runs on an ordinary instance once a task has ended.
func onFinish(id int64, result []byte, status gateway.TaskStatus) {
	var msg []byte
	if status == gateway.TaskOK {
		msg = append(msg, result...) // on_task made the client's message
	} else {
		var err error
		msg, err = json.Marshal(errorMessage{Type: "error", Task: id, Status: status.String(), Error: firstLine(string(result))})
		if err != nil {
			gateway.Error("tasks: " + err.Error())
			return
		}
	}
	key := taskKey(id)
	stored, err := gateway.KV.SetIfAbsent(key, append([]byte("r"), msg...), handOverTTL)
	if err != nil {
		gateway.Error("tasks: " + key + ": cannot hand over the result: " + err.Error())
		return
	}
	if !stored { // on_message was first: the key names the client
		if v, ok := take(key, 'c'); ok {
			sendRaw(string(v), msg)
		}
	}
}

// take reads and deletes the hand-over key, whose value must start with
// kind, and returns the rest of the value.
func take(key string, kind byte) ([]byte, bool) {
	v, err := gateway.KV.Get(key)
	if err == nil {
		_, err = gateway.KV.Delete(key)
	}
	if err != nil {
		gateway.Error("tasks: " + key + ": " + err.Error())
		return nil, false
	}
	if len(v) == 0 || v[0] != kind {
		gateway.Error("tasks: " + key + ": unexpected value " + strconv.Quote(string(v)))
		return nil, false
	}
	return v[1:], true
}

func sendRaw(id string, msg []byte) {
	if err := gateway.SendToClient(id, msg); err != nil && err != gateway.ErrnoNotFound {
		gateway.Warn("tasks: cannot send to " + id + ": " + err.Error())
	}
}

func remind(c gateway.Client, req request) {
	payload, _ := json.Marshal(reminder{Client: c.ID, Text: req.Text})
	id, err := gateway.SetTimer(time.Duration(req.Ms)*time.Millisecond, payload)
	if err != nil { // ErrnoLimit: too many pending timers; ErrnoInvalid: ms < 0
		send(c, errorMessage{Type: "error", Error: "cannot set timer: " + err.Error()})
		return
	}
	// With a delay of a few milliseconds, the reminder (sent from another
	// instance) may reach the client before this confirmation.
	send(c, timerMessage{Type: "timer", Timer: id, State: "set"})
}

func cancel(c gateway.Client, req request) {
	cleared, err := gateway.ClearTimer(req.Timer)
	if err != nil {
		send(c, errorMessage{Type: "error", Error: err.Error()})
		return
	}
	send(c, timerMessage{Type: "cancel", Timer: req.Timer, Cleared: &cleared})
}

// onTimer runs on an ordinary instance when a reminder is due.
func onTimer(id int64, payload []byte) {
	var r reminder
	if err := json.Unmarshal(payload, &r); err != nil {
		gateway.Error("tasks: timer " + strconv.FormatInt(id, 10) + ": " + err.Error())
		return
	}
	send(gateway.Client{ID: r.Client}, timerMessage{Type: "reminder", Timer: id, Text: r.Text})
}

// firstLine keeps the first line of a host error text (a trap's carries a
// WebAssembly stack trace).
func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
