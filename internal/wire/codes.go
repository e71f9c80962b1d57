package wire

// Error codes of the push protocol: the "code" of an ok:false answer
// (docs/PUSH.md, "Error codes"). The server and the Go client share them.
const (
	CodeBadJSON      = "bad_json"      // the line or body is not JSON
	CodeBadRequest   = "bad_request"   // not an object, or a field missing or mistyped
	CodeUnknownCmd   = "unknown_cmd"   // no command has that name
	CodeUnauthorized = "unauthorized"  // missing or wrong secret
	CodeNotFound     = "not_found"     // the client id is not online
	CodeInvalid      = "invalid"       // an unacceptable value
	CodeTooLarge     = "too_large"     // over max_message_size, or a name over max_name_bytes
	CodeLimit        = "limit"         // a per-client bound is reached (session size, groups)
	CodeLineTooLong  = "line_too_long" // over max_line; the connection is closed
	CodeQueueFull    = "queue_full"    // the target's send queue is full
	CodeUnavailable  = "unavailable"   // the registry backend is down
	CodeInternal     = "internal"      // an unexpected server error
	// CodeTooManyBackends refuses a text-port connection over
	// push.max_backends; the connection is then closed.
	CodeTooManyBackends = "too_many_backends"
)
