package client

import (
	"errors"

	"github.com/wasmgate/wasmgate/internal/wire"
)

// Error codes a server puts in the "code" field of an ok:false response
// (see docs/PUSH.md, "Error codes").
const (
	// CodeBadJSON: the request line or body is not JSON.
	CodeBadJSON = wire.CodeBadJSON
	// CodeBadRequest: the request is not an object, or a field is missing or
	// has the wrong JSON type; the message names the field.
	CodeBadRequest = wire.CodeBadRequest
	// CodeUnknownCmd: no command has that name.
	CodeUnknownCmd = wire.CodeUnknownCmd
	// CodeUnauthorized: the secret was missing or wrong; the server closes
	// the connection.
	CodeUnauthorized = wire.CodeUnauthorized
	// CodeNotFound: the client id is not online.
	CodeNotFound = wire.CodeNotFound
	// CodeInvalid: a value is not acceptable (session not an object, bad
	// base64, text that is not UTF-8).
	CodeInvalid = wire.CodeInvalid
	// CodeTooLarge: the message exceeds the server's max_message_size, or a
	// uid, group name or session key its max_name_bytes.
	CodeTooLarge = wire.CodeTooLarge
	// CodeLimit: a per-client bound is reached: the session would exceed
	// max_session_bytes, or the client is in max_groups_per_client groups.
	CodeLimit = wire.CodeLimit
	// CodeLineTooLong: the request line exceeds the server's max_line; the
	// server closes the connection.
	CodeLineTooLong = wire.CodeLineTooLong
	// CodeTooManyBackends: the server already has push.max_backends text-port
	// connections; it closes this one. Retry later or share connections.
	CodeTooManyBackends = wire.CodeTooManyBackends
	// CodeQueueFull: the target client's send queue is full; it is being
	// closed as a slow consumer.
	CodeQueueFull = wire.CodeQueueFull
	// CodeUnavailable: the server's registry backend is down.
	CodeUnavailable = wire.CodeUnavailable
	// CodeInternal: an unexpected server error.
	CodeInternal = wire.CodeInternal
)

// Error is an ok:false answer from the server: the command was received and
// refused. Match it with errors.As, or use IsNotFound.
type Error struct {
	Code    string `json:"code"`    // one of the Code* constants
	Message string `json:"message"` // human-readable detail
}

// Error returns "wasmgate: <code>: <message>".
func (e *Error) Error() string {
	if e.Message == "" {
		return "wasmgate: " + e.Code
	}
	return "wasmgate: " + e.Code + ": " + e.Message
}

// ErrConnLost is wrapped by the error of every call that was in flight when
// its connection broke (or was closed by Close). Whether the server executed
// such a call is unknown. The next call redials.
var ErrConnLost = errors.New("wasmgate: connection lost")

// ErrClosed is returned by calls made after Close, and is wrapped (together
// with ErrConnLost) by calls that were in flight when Close was called.
var ErrClosed = errors.New("wasmgate: client closed")

// ErrProtocol is wrapped (together with ErrConnLost) when the server sent
// something that is not a valid answer to the oldest pending request: an
// unparsable line, an unexpected line, or an "id" that does not match. The
// connection is dropped.
var ErrProtocol = errors.New("wasmgate: protocol error")

// IsNotFound reports whether err is an *Error with code CodeNotFound (the
// client id is not online).
func IsNotFound(err error) bool { return hasCode(err, CodeNotFound) }

// hasCode reports whether err wraps an *Error with the given code.
func hasCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}
