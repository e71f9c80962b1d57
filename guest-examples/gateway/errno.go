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
	// ErrnoInvalid means an argument was malformed: an empty id, uid or
	// group, a bad list encoding, an unknown flag bit, invalid UTF-8 in a
	// text message, or a session that is not a JSON object.
	ErrnoInvalid Errno = 2
	// ErrnoNotFound means the client id is not connected.
	ErrnoNotFound Errno = 3
	// ErrnoTooLarge means a message or value is over the configured maximum.
	ErrnoTooLarge Errno = 4
	// ErrnoQueueFull means the client's send queue is full; the host is
	// closing it as a slow consumer.
	ErrnoQueueFull Errno = 5
	// ErrnoUnavailable means the registry backend (cluster mode) did not
	// answer in time.
	ErrnoUnavailable Errno = 6
	// ErrnoInternal means a host failure unrelated to the arguments.
	ErrnoInternal Errno = 7
)

var errnoNames = [...]string{
	ErrnoBadPointer:  "bad pointer",
	ErrnoInvalid:     "invalid argument",
	ErrnoNotFound:    "not found",
	ErrnoTooLarge:    "too large",
	ErrnoQueueFull:   "queue full",
	ErrnoUnavailable: "unavailable",
	ErrnoInternal:    "internal error",
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
