package abi

import "errors"

// Errno is the one error-code enum every host function uses. A host function
// returns a negative i32 for an error: the code is the negation of the result.
type Errno int32

// Error codes.
const (
	// ErrnoSuccess is not an error.
	ErrnoSuccess Errno = 0
	// ErrnoBadPointer: a (pointer, length) pair is outside guest memory.
	ErrnoBadPointer Errno = 1
	// ErrnoInvalid: an argument is malformed (empty id or key, bad list
	// encoding, unknown flag, session not a JSON object, negative ttl or
	// delay), or kv_incr met a value that is not an integer or would
	// overflow.
	ErrnoInvalid Errno = 2
	// ErrnoNotFound: the client is not connected, or kv_get's key is
	// absent.
	ErrnoNotFound Errno = 3
	// ErrnoTooLarge: a message or value is over the configured maximum, or
	// a uid, group name or session key is longer than max_name_bytes.
	ErrnoTooLarge Errno = 4
	// ErrnoQueueFull: a bounded queue is full: the client's send queue (the
	// client is being closed as a slow consumer) or the task queue.
	ErrnoQueueFull Errno = 5
	// ErrnoUnavailable: the registry backend could not answer in time.
	ErrnoUnavailable Errno = 6
	// ErrnoInternal: a host failure unrelated to the arguments.
	ErrnoInternal Errno = 7
	// ErrnoLimit: a per-module or per-client limit is reached: the
	// key-value store's total size, the number of timers, a session over
	// max_session_bytes, or a client already in max_groups_per_client
	// groups.
	ErrnoLimit Errno = 8
	// ErrnoUnsupported: the call is not possible here: task_result outside
	// on_task, task or set_timer in a module without the export that would
	// receive the result, or a feature switched off in the config.
	ErrnoUnsupported Errno = 9
)

var errnoNames = [...]string{
	ErrnoSuccess:     "success",
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

// String returns the code's name.
func (e Errno) String() string {
	if e >= 0 && int(e) < len(errnoNames) {
		return errnoNames[e]
	}
	return "unknown errno"
}

// Error makes Errno an error so host implementations can return it. The text
// is the code's name alone: it ends chains such as `client "x": not found`
// that push replies and logs show to people, where a package prefix would
// only be noise.
func (e Errno) Error() string { return e.String() }

// Result is the i32 a host function returns for err: the negated code, or
// ErrnoInternal's for an error that is not an Errno.
func Result(err error) int32 {
	return -int32(ErrnoOf(err))
}

// ErrnoOf maps err to its code: nil is ErrnoSuccess; an error wrapping an
// Errno is that code; anything else is ErrnoInternal.
func ErrnoOf(err error) Errno {
	if err == nil {
		return ErrnoSuccess
	}
	var e Errno
	if errors.As(err, &e) {
		return e
	}
	return ErrnoInternal
}
