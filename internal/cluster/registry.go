package cluster

import (
	"context"
	"fmt"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/internal/registry"
)

// Registry is the cluster-wide registry.Registry: changes to a client go
// through the node that owns it (mirror, subscriptions, then Redis), lists
// and counts come from Redis. See node.go's package comment.
type Registry struct{ n *Node }

var _ registry.Registry = (*Registry)(nil)

// Operations a node asks another to apply to one of its clients.
const (
	opBind = iota + 1
	opUnbind
	opJoin
	opLeave
	opSetSession
	opUpdateSession
)

// Owner returns the node (8 hex digits) that owns client id, and whether
// it is this node. ok is false for a malformed id.
func (n *Node) Owner(id string) (node string, self, ok bool) {
	if len(id) != 20 {
		return "", false, false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false, false
		}
	}
	return id[:8], id[:8] == n.hex, true
}

// route says where a change to client id is applied: here (own), on
// another node (owner), or nowhere (err: the id cannot be a client).
func (r *Registry) route(id string) (owner string, own bool, err error) {
	if id == "" {
		return "", false, fmt.Errorf("empty client id: %w", abi.ErrnoInvalid)
	}
	owner, own, ok := r.n.Owner(id)
	if !ok {
		return "", false, fmt.Errorf("client %q: %w", id, abi.ErrnoNotFound)
	}
	return owner, own, nil
}

// resync makes the node's group and uid subscriptions match the mirror
// for the names given, and waits until new ones are confirmed.
func (r *Registry) resync(ctx context.Context, groups, uids []string) error {
	b := r.n.bus
	var waits []*subWaiter
	for _, g := range groups {
		if g == "" {
			continue
		}
		waits = append(waits, b.want(ctx, b.groupCh+g, func() bool {
			k, _ := r.n.local.GroupClientCount(ctx, g)
			return k > 0
		}))
	}
	for _, u := range uids {
		if u == "" {
			continue
		}
		waits = append(waits, b.want(ctx, b.uidCh+u, func() bool {
			ids, _ := r.n.local.ClientsByUid(ctx, u)
			return len(ids) > 0
		}))
	}
	for _, w := range waits {
		if err := b.wait(ctx, w); err != nil {
			return err
		}
	}
	return nil
}

// skipRedis reports whether an own client's change should not wait for
// Redis: while the last heartbeat failed the write would only wait out its
// timeout (on every connect, for one). The change is marked for the
// re-publish that follows Redis's return.
func (r *Registry) skipRedis() bool {
	if r.n.redisOK.Load() {
		return false
	}
	r.n.dirty.Store(true)
	return true
}

// stored handles the Redis write that follows a mirror change of an own
// client: when Redis cannot be reached the change stands (the mirror is
// the truth for own clients) and is re-published when Redis returns.
func (r *Registry) stored(err error) error {
	if err == nil {
		return nil
	}
	r.n.redisFailed(err)
	if isUnavailable(err) {
		return nil
	}
	return err
}

// AddClient implements registry.Registry; only own clients are added.
func (r *Registry) AddClient(ctx context.Context, id string) error {
	if _, own, err := r.route(id); err != nil || !own {
		if err == nil {
			err = fmt.Errorf("client %q belongs to another node: %w", id, abi.ErrnoInvalid)
		}
		return err
	}
	if err := r.n.local.AddClient(ctx, id); err != nil {
		return err
	}
	if r.skipRedis() {
		return nil
	}
	return r.stored(r.n.shared.AddClient(ctx, id))
}

// RemoveClient implements registry.Registry; only own clients are removed
// (a client goes when its connection closes).
func (r *Registry) RemoveClient(ctx context.Context, id string) (bool, error) {
	if _, own, err := r.route(id); err != nil || !own {
		return false, err
	}
	groups, _ := r.n.local.ClientGroups(ctx, id)
	uid, _ := r.n.local.UidOf(ctx, id)
	ok, err := r.n.local.RemoveClient(ctx, id)
	if err != nil || !ok {
		return ok, err
	}
	// Unsubscribing waits for nothing; a failure only costs messages
	// this node then ignores.
	_ = r.resync(ctx, groups, []string{uid})
	if r.skipRedis() {
		return true, nil
	}
	_, err = r.n.shared.RemoveClient(ctx, id)
	return true, r.stored(err)
}

// HasClient implements registry.Registry.
func (r *Registry) HasClient(ctx context.Context, id string) (bool, error) {
	_, own, err := r.route(id)
	if err != nil {
		if abi.ErrnoOf(err) == abi.ErrnoNotFound {
			return false, nil
		}
		return false, err
	}
	if own {
		return r.n.local.HasClient(ctx, id)
	}
	return r.n.shared.HasClient(ctx, id)
}

// BindUid implements registry.Registry.
func (r *Registry) BindUid(ctx context.Context, id, uid string) error {
	return r.change(ctx, id, opBind, []string{id, uid}, nil)
}

// UnbindUid implements registry.Registry.
func (r *Registry) UnbindUid(ctx context.Context, id, uid string) error {
	return r.change(ctx, id, opUnbind, []string{id, uid}, nil)
}

// JoinGroup implements registry.Registry.
func (r *Registry) JoinGroup(ctx context.Context, id, group string) error {
	return r.change(ctx, id, opJoin, []string{id, group}, nil)
}

// LeaveGroup implements registry.Registry.
func (r *Registry) LeaveGroup(ctx context.Context, id, group string) error {
	return r.change(ctx, id, opLeave, []string{id, group}, nil)
}

// SetSession implements registry.Registry.
func (r *Registry) SetSession(ctx context.Context, id string, session []byte) error {
	return r.change(ctx, id, opSetSession, []string{id}, session)
}

// UpdateSession implements registry.Registry.
func (r *Registry) UpdateSession(ctx context.Context, id string, patch []byte) error {
	return r.change(ctx, id, opUpdateSession, []string{id}, patch)
}

// change applies op to client args[0] here, or asks its node to.
func (r *Registry) change(ctx context.Context, id string, op uint64, args []string, data []byte) error {
	owner, own, err := r.route(id)
	if err != nil {
		return err
	}
	if own {
		return r.applyOwn(ctx, op, args, data)
	}
	// Check names here too: a bad argument is refused without a round
	// trip, with the same error as on one node.
	for _, name := range args[1:] {
		if err := r.n.o.Limits.CheckName(opName(op), name); err != nil {
			return err
		}
	}
	return r.n.bus.request(ctx, owner, envelope{code: op, names: args, data: data})
}

func opName(op uint64) string {
	switch op {
	case opBind, opUnbind:
		return "uid"
	default:
		return "group"
	}
}

// apply runs a request from another node.
func (r *Registry) apply(ctx context.Context, m envelope) error {
	if len(m.names) == 0 {
		return fmt.Errorf("request without a client id: %w", abi.ErrnoInvalid)
	}
	if _, own, err := r.route(m.names[0]); err != nil || !own {
		if err == nil {
			err = fmt.Errorf("client %q is not on node %s: %w", m.names[0], r.n.hex, abi.ErrnoNotFound)
		}
		return err
	}
	return r.applyOwn(ctx, m.code, m.names, m.data)
}

// applyOwn changes an own client: mirror, subscriptions, Redis.
func (r *Registry) applyOwn(ctx context.Context, op uint64, args []string, data []byte) error {
	err := r.applyMirror(ctx, op, args, data)
	if err != nil || r.skipRedis() {
		return err
	}
	return r.stored(r.applyShared(ctx, op, args))
}

// applyMirror makes the change in the mirror and the subscriptions.
func (r *Registry) applyMirror(ctx context.Context, op uint64, args []string, data []byte) error {
	n, id := r.n, args[0]
	arg := func() (string, error) {
		if len(args) != 2 {
			return "", fmt.Errorf("request %d needs 2 arguments: %w", op, abi.ErrnoInvalid)
		}
		return args[1], nil
	}
	switch op {
	case opBind:
		uid, err := arg()
		if err != nil {
			return err
		}
		old, _ := n.local.UidOf(ctx, id)
		if err := n.local.BindUid(ctx, id, uid); err != nil {
			return err
		}
		return r.resync(ctx, nil, []string{old, uid})
	case opUnbind:
		uid, err := arg()
		if err != nil {
			return err
		}
		if err := n.local.UnbindUid(ctx, id, uid); err != nil {
			return err
		}
		_ = r.resync(ctx, nil, []string{uid}) // unsubscribing waits for nothing
		return nil
	case opJoin:
		g, err := arg()
		if err != nil {
			return err
		}
		if err := n.local.JoinGroup(ctx, id, g); err != nil {
			return err
		}
		return r.resync(ctx, []string{g}, nil)
	case opLeave:
		g, err := arg()
		if err != nil {
			return err
		}
		if err := n.local.LeaveGroup(ctx, id, g); err != nil {
			return err
		}
		_ = r.resync(ctx, []string{g}, nil)
		return nil
	case opSetSession, opUpdateSession:
		var err error
		if op == opSetSession {
			err = n.local.SetSession(ctx, id, data)
		} else {
			err = n.local.UpdateSession(ctx, id, data)
		}
		return err
	}
	return fmt.Errorf("unknown request %d: %w", op, abi.ErrnoInvalid)
}

// applyShared writes a change applyMirror made to Redis. Sessions are
// written as the mirror holds them, whatever the operation: the merge is
// done once, in the mirror, and both hold the same bytes.
func (r *Registry) applyShared(ctx context.Context, op uint64, args []string) error {
	n, id := r.n, args[0]
	switch op {
	case opBind:
		return n.shared.BindUid(ctx, id, args[1])
	case opUnbind:
		return n.shared.UnbindUid(ctx, id, args[1])
	case opJoin:
		return n.shared.JoinGroup(ctx, id, args[1])
	case opLeave:
		return n.shared.LeaveGroup(ctx, id, args[1])
	case opSetSession, opUpdateSession:
		s, err := n.local.Session(ctx, id)
		if err != nil {
			return err
		}
		return n.shared.SetSession(ctx, id, s)
	}
	return nil
}

// ClientGroups implements registry.ClientGrouper (on_close's
// closing_state reads it for every closing client, so it must not scan the
// cluster's groups): an own client's from the mirror, another's from Redis.
func (r *Registry) ClientGroups(ctx context.Context, id string) ([]string, error) {
	_, own, err := r.route(id)
	if err != nil {
		return nil, err
	}
	if own {
		return r.n.local.ClientGroups(ctx, id)
	}
	return r.n.shared.ClientGroups(ctx, id)
}

var _ registry.ClientGrouper = (*Registry)(nil)

// ClientsByUid implements registry.Registry (cluster-wide, from Redis).
func (r *Registry) ClientsByUid(ctx context.Context, uid string) ([]string, error) {
	return r.n.shared.ClientsByUid(ctx, uid)
}

// UidOf implements registry.Registry.
func (r *Registry) UidOf(ctx context.Context, id string) (string, error) {
	_, own, err := r.route(id)
	if err != nil {
		return "", err
	}
	if own {
		return r.n.local.UidOf(ctx, id)
	}
	return r.n.shared.UidOf(ctx, id)
}

// Ungroup implements registry.Registry: Redis drops the group's members
// everywhere, and the nodes with members forget it (an Ungroup message on
// the group's channel).
func (r *Registry) Ungroup(ctx context.Context, group string) error {
	if err := r.n.o.Limits.CheckName("group", group); err != nil {
		return err
	}
	err := r.n.shared.Ungroup(ctx, group)
	if err == nil {
		_, err = r.n.bus.publish(ctx, r.n.bus.groupCh+group, &envelope{kind: kindUngroup, origin: r.n.id, names: []string{group}})
	}
	r.forgetGroup(ctx, group)
	return err
}

// forgetGroup drops group from the mirror and its subscription.
func (r *Registry) forgetGroup(ctx context.Context, group string) {
	_ = r.n.local.Ungroup(ctx, group)
	_ = r.resync(ctx, []string{group}, nil)
}

// GroupClients implements registry.Registry (cluster-wide).
func (r *Registry) GroupClients(ctx context.Context, group string) ([]string, error) {
	return r.n.shared.GroupClients(ctx, group)
}

// GroupClientCount implements registry.Registry (cluster-wide).
func (r *Registry) GroupClientCount(ctx context.Context, group string) (int, error) {
	return r.n.shared.GroupClientCount(ctx, group)
}

// GroupUids implements registry.Registry (cluster-wide).
func (r *Registry) GroupUids(ctx context.Context, group string) ([]string, error) {
	return r.n.shared.GroupUids(ctx, group)
}

// GroupIDs implements registry.Registry (cluster-wide).
func (r *Registry) GroupIDs(ctx context.Context) ([]string, error) {
	return r.n.shared.GroupIDs(ctx)
}

// ClientIDs implements registry.Registry (cluster-wide).
func (r *Registry) ClientIDs(ctx context.Context) ([]string, error) {
	return r.n.shared.ClientIDs(ctx)
}

// ClientCount implements registry.Registry (cluster-wide).
func (r *Registry) ClientCount(ctx context.Context) (int, error) {
	return r.n.shared.ClientCount(ctx)
}

// Uids implements registry.Registry (cluster-wide).
func (r *Registry) Uids(ctx context.Context) ([]string, error) {
	return r.n.shared.Uids(ctx)
}

// UidCount implements registry.Registry (cluster-wide).
func (r *Registry) UidCount(ctx context.Context) (int, error) {
	return r.n.shared.UidCount(ctx)
}

// Session implements registry.Registry.
func (r *Registry) Session(ctx context.Context, id string) ([]byte, error) {
	_, own, err := r.route(id)
	if err != nil {
		return nil, err
	}
	if own {
		return r.n.local.Session(ctx, id)
	}
	return r.n.shared.Session(ctx, id)
}

// Delivery to other nodes' clients. Each publishes what the Deliverer of
// the receiving nodes acts on; the caller has delivered to its own clients.

// PublishGroups publishes msg for the members of groups on other nodes:
// one PUBLISH per group.
func (n *Node) PublishGroups(ctx context.Context, groups []string, msg abi.Message, exclude []string) error {
	m := envelope{kind: kindGroups, origin: n.id, binary: msg.Binary, names: groups, exclude: exclude, data: msg.Data}
	return n.publishEach(ctx, n.bus.groupCh, groups, &m)
}

// PublishUids publishes msg for the clients of uids on other nodes: one
// PUBLISH per uid.
func (n *Node) PublishUids(ctx context.Context, uids []string, msg abi.Message) error {
	m := envelope{kind: kindUids, origin: n.id, binary: msg.Binary, names: uids, data: msg.Data}
	return n.publishEach(ctx, n.bus.uidCh, uids, &m)
}

func (n *Node) publishEach(ctx context.Context, prefix string, names []string, m *envelope) error {
	if len(names) == 0 {
		return nil
	}
	if err := n.errRedisDown(); err != nil {
		return err
	}
	payload := m.encode()
	if b := n.batchOf(ctx); b != nil {
		for _, name := range names {
			b.add(prefix+name, payload)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, n.o.Timeout)
	defer cancel()
	if len(names) == 1 {
		if err := n.rdb.Publish(ctx, prefix+names[0], payload).Err(); err != nil {
			n.stats.RedisErrors.Add(1)
			return unavailable("publish", err)
		}
		n.stats.Published.Add(1)
		return nil
	}
	// Several names: one round trip for all the PUBLISHes.
	p := n.rdb.Pipeline()
	for _, name := range names {
		p.Publish(ctx, prefix+name, payload)
	}
	if _, err := p.Exec(ctx); err != nil {
		n.stats.RedisErrors.Add(1)
		return unavailable("publish", err)
	}
	n.stats.Published.Add(uint64(len(names)))
	return nil
}

// PublishAll publishes msg for every client of the other nodes.
func (n *Node) PublishAll(ctx context.Context, msg abi.Message, exclude []string) error {
	return n.publishOne(ctx, n.bus.allCh, &envelope{kind: kindAll, origin: n.id, binary: msg.Binary, exclude: exclude, data: msg.Data})
}

// PublishClients publishes msg for the listed clients of node owner.
func (n *Node) PublishClients(ctx context.Context, owner string, ids []string, msg abi.Message, exclude []string) error {
	return n.publishOne(ctx, n.o.Prefix+"n:"+owner, &envelope{kind: kindClients, origin: n.id, binary: msg.Binary, names: ids, exclude: exclude, data: msg.Data})
}

// publishOne publishes a delivery on ch, or queues it in ctx's Batch.
func (n *Node) publishOne(ctx context.Context, ch string, m *envelope) error {
	if b := n.batchOf(ctx); b != nil {
		if err := n.errRedisDown(); err != nil {
			return err
		}
		b.add(ch, m.encode())
		return nil
	}
	_, err := n.bus.publish(ctx, ch, m)
	return err
}

// SendToClient sends msg to client id of another node; not_found when that
// node is dead or does not have the client.
func (n *Node) SendToClient(ctx context.Context, id string, msg abi.Message) error {
	owner, _, _ := n.Owner(id)
	return n.bus.toClient(ctx, owner, id, &envelope{kind: kindClients, origin: n.id, binary: msg.Binary, names: []string{id}, data: msg.Data})
}

// CloseClient closes client id of another node, after final if not nil.
func (n *Node) CloseClient(ctx context.Context, id string, final *abi.Message, code int) error {
	owner, _, _ := n.Owner(id)
	m := envelope{kind: kindClose, origin: n.id, names: []string{id}, code: uint64(code)}
	if final != nil {
		m.final, m.binary, m.data = true, final.Binary, final.Data
	}
	return n.bus.toClient(ctx, owner, id, &m)
}

// DestroyClient drops client id's connection on another node at once.
func (n *Node) DestroyClient(ctx context.Context, id string) error {
	owner, _, _ := n.Owner(id)
	return n.bus.toClient(ctx, owner, id, &envelope{kind: kindDestroy, origin: n.id, names: []string{id}})
}
