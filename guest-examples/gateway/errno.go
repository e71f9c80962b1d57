package gateway

import "strconv"

// Errno is the error a host function reports: the negation of its negative
// result (ABI.md §2). Values are comparable, so errors.Is(err,
// ErrnoNotFound) and err == ErrnoNotFound both work.
type Errno int32

// Error codes of ABI version 1.
const (
	// ErrnoBadPointer means a (pointer, length) pair was outside guest memory.
	ErrnoBadPointer Errno = 1
	// ErrnoInvalid means an argument was malformed: an empty id, uid, group
	// or key, a bad list encoding, an unknown flag bit, invalid UTF-8 in a
	// text message, a session that is not a JSON object, or a negative TTL
	// or delay; or KV.Incr met a value that is not an integer or would
	// overflow.
	ErrnoInvalid Errno = 2
	// ErrnoNotFound means the client id is not connected, or, for KV.Get,
	// that the key is absent.
	ErrnoNotFound Errno = 3
	// ErrnoTooLarge means a message or value is over the configured maximum.
	ErrnoTooLarge Errno = 4
	// ErrnoQueueFull means the client's send queue is full (the host is
	// closing it as a slow consumer), or, for Task, that the module's task
	// queue is full.
	ErrnoQueueFull Errno = 5
	// ErrnoUnavailable means the registry backend (cluster mode) did not
	// answer in time.
	ErrnoUnavailable Errno = 6
	// ErrnoInternal means a host failure unrelated to the arguments.
	ErrnoInternal Errno = 7
	// ErrnoLimit means a per-module bound is reached: the key-value store
	// is full, or too many timers are pending.
	ErrnoLimit Errno = 8
	// ErrnoUnsupported means the call is not possible here: Task without an
	// OnTask callback or with tasks switched off in the server's config
	// (task_workers = 0), SetTimer without an OnTimer callback.
	ErrnoUnsupported Errno = 9
)

var errnoNames = [...]string{
	ErrnoBadPointer:  "bad pointer",
	ErrnoInvalid:     "invalid argument",
	ErrnoNotFound:    "not found",
	ErrnoTooLarge:    "too large",
	ErrnoQueueFull:   "queue full",
	ErrnoUnavailable: "unavailable",
	ErrnoInternal:    "internal error",
	ErrnoLimit:       "limit reached",
	ErrnoUnsupported: "unsupported here",
}

// String returns the code's name, such as "not found".
func (e Errno) String() string {
	if e > 0 && int(e) < len(errnoNames) {
		return errnoNames[e]
	}
	return "errno " + strconv.Itoa(int(e))
}

// Error returns the code's name prefixed with "wasmgate: ".
func (e Errno) Error() string { return "wasmgate: " + e.String() }

// check converts a host result to an error.
func check(r int32) error {
	if r < 0 {
		return Errno(-r)
	}
	return nil
}

// count converts a host result that is a count to (count, error).
func count(r int32) (int, error) {
	if r < 0 {
		return 0, Errno(-r)
	}
	return int(r), nil
}

// flag converts a host result that is 1 or 0 to (bool, error).
func flag(r int32) (bool, error) {
	if r < 0 {
		return false, Errno(-r)
	}
	return r != 0, nil
}

// result64 converts a host result that is an i64 id (task, set_timer) to
// (id, error).
func result64(r int64) (int64, error) {
	if r < 0 {
		return 0, Errno(-r)
	}
	return r, nil
}
