package abi

import "context"

// Message is one WebSocket message: its payload and whether it travels in a
// binary frame (otherwise a text frame).
type Message struct {
	Data   []byte
	Binary bool
}

// Handshake is what a handler sees of an upgrade request before it is
// accepted. Header names are lower case.
type Handshake struct {
	ClientID   string
	Method     string
	Path       string
	Query      string
	RemoteAddr string
	Headers    [][2]string
}

// Fields returns the handshake in the order on_handshake receives it as a
// list: client_id, method, path, query, remote_addr, then name/value pairs.
func (h *Handshake) Fields() []string {
	out := make([]string, 0, 5+2*len(h.Headers))
	out = append(out, h.ClientID, h.Method, h.Path, h.Query, h.RemoteAddr)
	for _, kv := range h.Headers {
		out = append(out, kv[0], kv[1])
	}
	return out
}

// Host is what the host functions need from the gateway: GatewayWorker's
// Lib\Gateway API. Its method names are GatewayWorker's; its semantics are
// documented in ABI.md. Errors are, or wrap, an Errno.
//
// # Notes
//
//   - Implementations are safe for concurrent use: every instance of every
//     module calls them at once.
//   - Byte slices passed in are only valid during the call; an implementation
//     that keeps them must copy.
type Host interface {
	SendToClient(ctx context.Context, clientID string, msg Message) error
	// SendToAll sends to every client, or only to those in only when
	// onlyGiven, minus those in exclude. It returns how many were queued.
	SendToAll(ctx context.Context, msg Message, only []string, onlyGiven bool, exclude []string) (int, error)
	// CloseClient closes the client with code (0: 1000, normal) after
	// sending final, when not nil. code has passed CloseCodeOK.
	CloseClient(ctx context.Context, clientID string, final *Message, code int) error
	IsOnline(ctx context.Context, clientID string) (bool, error)
	BindUid(ctx context.Context, clientID, uid string) error
	UnbindUid(ctx context.Context, clientID, uid string) error
	IsUidOnline(ctx context.Context, uid string) (bool, error)
	GetClientIdByUid(ctx context.Context, uid string) ([]string, error)
	// GetUidByClientId returns "" when the client has no uid, and
	// ErrnoNotFound when it is not connected.
	GetUidByClientId(ctx context.Context, clientID string) (string, error)
	SendToUid(ctx context.Context, uids []string, msg Message) (int, error)
	JoinGroup(ctx context.Context, clientID, group string) error
	LeaveGroup(ctx context.Context, clientID, group string) error
	Ungroup(ctx context.Context, group string) error
	SendToGroup(ctx context.Context, groups []string, msg Message, exclude []string) (int, error)
	GetClientIdCountByGroup(ctx context.Context, group string) (int, error)
	GetClientIdListByGroup(ctx context.Context, group string) ([]string, error)
	GetUidListByGroup(ctx context.Context, group string) ([]string, error)
	GetUidCountByGroup(ctx context.Context, group string) (int, error)
	GetAllClientIdCount(ctx context.Context) (int, error)
	GetAllClientIdList(ctx context.Context) ([]string, error)
	GetAllUidList(ctx context.Context) ([]string, error)
	GetAllUidCount(ctx context.Context) (int, error)
	GetAllGroupIdList(ctx context.Context) ([]string, error)
	// SetSession replaces the client's session with a JSON object.
	SetSession(ctx context.Context, clientID string, session []byte) error
	// UpdateSession merges a JSON object into the session, recursively for
	// nested objects (PHP's array_replace_recursive).
	UpdateSession(ctx context.Context, clientID string, patch []byte) error
	// GetSession returns the session as a JSON object ("{}" when empty).
	GetSession(ctx context.Context, clientID string) ([]byte, error)
}
