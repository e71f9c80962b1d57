// Package registry holds the cluster-wide state of clients: which are
// connected, their uid bindings, groups and sessions. Registry is the
// contract; Local is the in-process implementation. A cluster
// implementation (Redis) belongs beside Local, in this package or below it,
// and needs nothing from the server.
package registry

import "context"

// Registry stores which clients are connected and their uid bindings, groups
// and sessions. The local implementation is in-process; a cluster
// implementation (Redis) can replace it without touching handlers or the ABI.
// Errors are, or wrap, an abi.Errno (abi.ErrnoNotFound for an unknown client,
// abi.ErrnoInvalid for bad arguments such as an empty uid or a session that is
// not a JSON object). An implementation enforces Limits: a uid, group
// name or session key over the name limit is abi.ErrnoTooLarge; a session
// over its size limit or a join past the group limit is abi.ErrnoLimit, and
// leaves the state unchanged.
type Registry interface {
	// AddClient registers a newly connected client with no uid, no groups
	// and an empty session. Adding an id that is already connected is
	// abi.ErrnoInvalid.
	AddClient(ctx context.Context, id string) error
	// RemoveClient drops the client with its uid binding, groups and session; false if it was unknown.
	RemoveClient(ctx context.Context, id string) (bool, error)
	// HasClient reports whether the client is connected (GatewayWorker isOnline).
	HasClient(ctx context.Context, id string) (bool, error)
	// BindUid binds id to uid; a client has at most one uid, binding another replaces it. A uid has many clients.
	BindUid(ctx context.Context, id, uid string) error
	// UnbindUid removes the binding if id is bound to uid; no-op otherwise.
	UnbindUid(ctx context.Context, id, uid string) error
	// ClientsByUid lists the connected clients bound to uid, in no
	// particular order; empty when none.
	ClientsByUid(ctx context.Context, uid string) ([]string, error)
	// UidOf returns "" when the client has no uid.
	UidOf(ctx context.Context, id string) (string, error)
	// JoinGroup adds the client to group; joining a group twice is a no-op.
	JoinGroup(ctx context.Context, id, group string) error
	// LeaveGroup removes the client from group; no-op if it is not a member.
	LeaveGroup(ctx context.Context, id, group string) error
	// Ungroup makes every member leave the group; no-op for an unknown group.
	Ungroup(ctx context.Context, group string) error
	// GroupClients lists the group's members, in no particular order (sends
	// use it, so it skips sorting); empty for an unknown group.
	GroupClients(ctx context.Context, group string) ([]string, error)
	// GroupClientCount is len(GroupClients) without building the list.
	GroupClientCount(ctx context.Context, group string) (int, error)
	// GroupUids returns the distinct uids bound to the group's members.
	GroupUids(ctx context.Context, group string) ([]string, error)
	// GroupIDs lists groups with at least one member.
	GroupIDs(ctx context.Context) ([]string, error)
	// ClientIDs lists every connected client.
	ClientIDs(ctx context.Context) ([]string, error)
	// ClientCount is the number of connected clients.
	ClientCount(ctx context.Context) (int, error)
	// Uids lists uids with at least one connected client.
	Uids(ctx context.Context) ([]string, error)
	// UidCount is len(Uids) without building the list.
	UidCount(ctx context.Context) (int, error)
	// SetSession replaces the session with a JSON object.
	SetSession(ctx context.Context, id string, session []byte) error
	// UpdateSession merges a JSON object into the session, recursively for nested objects (PHP array_replace_recursive).
	UpdateSession(ctx context.Context, id string, patch []byte) error
	// Session returns the session JSON object, "{}" when empty. The caller
	// must not modify the bytes.
	Session(ctx context.Context, id string) ([]byte, error)
}
