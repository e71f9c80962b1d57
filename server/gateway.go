package server

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/internal/cluster"
	"github.com/wasmgate/wasmgate/internal/push"
	"github.com/wasmgate/wasmgate/internal/transport"
)

// Gateway implements GatewayWorker's Lib\Gateway commands on top of a
// Registry (who is connected, uids, groups, sessions) and the local hub (the
// sockets). It is the one implementation of their semantics: the WASM host
// functions call it through abi.Host, and backend push ports call the same
// methods.
type Gateway struct {
	// reg answers for the whole gateway (cluster-wide in cluster mode);
	// local holds this node's clients only, the ones hub can reach. On a
	// single node they are the same registry.
	reg   Registry
	local Registry
	hub   *transport.Hub
	// cluster publishes for other nodes' clients; nil on a single node,
	// where no call pays for it.
	cluster        *cluster.Node
	maxMessageSize int
	// writeNow is the write strategy of this Gateway's sends: see
	// withWriteNow.
	writeNow bool
}

// checkMessage refuses what must never reach a socket: an oversize message
// or a text frame that is not UTF-8 (browsers close on it).
func (g *Gateway) checkMessage(msg abi.Message) error {
	if len(msg.Data) > g.maxMessageSize {
		return fmt.Errorf("message of %d bytes exceeds max_message_size %d: %w", len(msg.Data), g.maxMessageSize, abi.ErrnoTooLarge)
	}
	if !msg.Binary && !utf8.Valid(msg.Data) {
		return fmt.Errorf("text message is not valid UTF-8: %w", abi.ErrnoInvalid)
	}
	return nil
}

// withWriteNow returns a copy of g whose sends write to an idle client
// from the caller's goroutine (Conn.sendNow). It is the Gateway of a
// caller that has nothing else to do right now: a text-port connection
// with no further request buffered, a single HTTP API request. g itself
// (the Gateway guests and busy callers use) leaves every write to the
// clients' writer goroutines (Conn.enqueue), which then run in parallel
// with the caller and, under load, carry several frames per write(2):
// writing directly from a pipelined text port measured 2.5 times fewer
// pushes per second on two cores (docs/BENCHMARKS.md). Call it once g is
// fully built: the copy shares g's registry and hub.
func (g *Gateway) withWriteNow() *Gateway {
	now := *g
	now.writeNow = true
	return &now
}

// send hands msg to c with g's write strategy.
func (g *Gateway) send(c *transport.Conn, msg abi.Message, borrowed bool) error {
	return g.hub.SendOrdered(c, msg, g.writeNow, borrowed)
}

// SendToClient queues msg for one client.
func (g *Gateway) SendToClient(ctx context.Context, clientID string, msg abi.Message) error {
	if err := g.checkMessage(msg); err != nil {
		return err
	}
	if g.remote(clientID) {
		return g.cluster.SendToClient(ctx, clientID, msg)
	}
	c := g.hub.Get(clientID)
	if c == nil {
		return abi.ErrnoNotFound
	}
	return g.send(c, msg, false)
}

// remote reports whether id is a client of another node of the cluster.
func (g *Gateway) remote(id string) bool {
	if g.cluster == nil {
		return false
	}
	_, self, ok := g.cluster.Owner(id)
	return ok && !self
}

// SendBorrowed is SendToClient for the push ports: id and msg.Data may
// alias the request, valid only during the call. A message written at
// once is not copied; one that has to be queued is.
func (g *Gateway) SendBorrowed(ctx context.Context, id []byte, msg abi.Message) error {
	if err := g.checkMessage(msg); err != nil {
		return err
	}
	c := g.hub.GetBytes(id)
	if c == nil {
		if g.cluster != nil && g.remote(string(id)) {
			msg.Data = append([]byte(nil), msg.Data...) // published after the request is gone
			return g.cluster.SendToClient(ctx, string(id), msg)
		}
		return abi.ErrnoNotFound
	}
	return g.send(c, msg, true)
}

// SendToAll queues msg for every client, or only those listed when
// onlyGiven, minus exclude (a large fan-out is handed off: see transport/hub.go).
func (g *Gateway) SendToAll(ctx context.Context, msg abi.Message, only []string, onlyGiven bool, exclude []string) (int, error) {
	if err := g.checkMessage(msg); err != nil {
		return 0, err
	}
	skip := toSet(exclude)
	if g.cluster == nil {
		if onlyGiven {
			return g.deliver(ctx, only, false, skip, msg)
		}
		return g.hub.FanoutAll(msg, skip)
	}
	if !onlyGiven {
		n, err := g.hub.FanoutAll(msg, skip)
		if err != nil {
			return n, err
		}
		return n, g.cluster.PublishAll(ctx, msg, exclude)
	}
	// The listed clients of other nodes: one message per node.
	var mine []string
	byNode := map[string][]string{}
	for _, id := range only {
		if owner, self, ok := g.cluster.Owner(id); ok && !self {
			byNode[owner] = append(byNode[owner], id)
		} else {
			mine = append(mine, id)
		}
	}
	n, err := g.deliver(ctx, mine, false, skip, msg)
	for owner, ids := range byNode {
		if perr := g.cluster.PublishClients(ctx, owner, ids, msg, exclude); perr != nil && err == nil {
			err = perr
		}
	}
	return n, err
}

// directFanout is the largest number of recipients a writeNow caller
// writes to itself; larger fan-outs leave the writes to the clients' writer
// goroutines, which run them in parallel.
const directFanout = 8

// deliver sends msg once to each id not in skip and returns how many
// queued it. More than transport.FanoutInline recipients are handed to the hub's
// fan-out lanes, and the count is then how many were handed the message
// (transport/hub.go); unique says ids holds no duplicates.
func (g *Gateway) deliver(ctx context.Context, ids []string, unique bool, skip map[string]struct{}, msg abi.Message) (int, error) {
	if len(ids) > transport.FanoutInline {
		if !unique {
			ids = dedupe(ids)
		}
		return g.hub.Fanout(ids, skip, msg)
	}
	direct := g.writeNow && len(ids) <= directFanout
	var z *transport.Deflated // one compression for every deflate client
	if len(ids) > 1 {
		z = transport.NewDeflated()
	}
	n := 0
	seen := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		if _, ok := skip[id]; ok {
			continue
		}
		if c := g.hub.Get(id); c != nil && g.hub.SendOrderedShared(c, msg, z, direct) == nil {
			n++
		}
	}
	return n, nil
}

// dedupe returns ids without repeats, in first-seen order.
func dedupe(ids []string) []string {
	seen := make(map[string]struct{}, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if _, dup := seen[id]; !dup {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}

func toSet(ids []string) map[string]struct{} {
	if len(ids) == 0 {
		return nil
	}
	set := make(map[string]struct{}, len(ids))
	for _, id := range ids {
		set[id] = struct{}{}
	}
	return set
}

// CloseClient sends final (if not nil) and closes the client with code
// (0: 1000, normal).
func (g *Gateway) CloseClient(ctx context.Context, clientID string, final *abi.Message, code int) error {
	if !abi.CloseCodeOK(code) {
		return fmt.Errorf("close code %d: a handler or backend may close with 1000 or 4000–4999: %w", code, abi.ErrnoInvalid)
	}
	if final != nil {
		if err := g.checkMessage(*final); err != nil {
			return err
		}
	}
	if g.remote(clientID) {
		return g.cluster.CloseClient(ctx, clientID, final, code)
	}
	c := g.hub.Get(clientID)
	if c == nil {
		return abi.ErrnoNotFound
	}
	return g.hub.CloseOrdered(c, final, code)
}

// IsOnline reports whether the client is connected.
func (g *Gateway) IsOnline(ctx context.Context, clientID string) (bool, error) {
	return g.reg.HasClient(ctx, clientID)
}

// BindUid binds the client to uid, replacing an earlier uid.
func (g *Gateway) BindUid(ctx context.Context, clientID, uid string) error {
	return g.reg.BindUid(ctx, clientID, uid)
}

// UnbindUid removes the client's binding to uid.
func (g *Gateway) UnbindUid(ctx context.Context, clientID, uid string) error {
	return g.reg.UnbindUid(ctx, clientID, uid)
}

// IsUidOnline reports whether any client is bound to uid.
func (g *Gateway) IsUidOnline(ctx context.Context, uid string) (bool, error) {
	ids, err := g.reg.ClientsByUid(ctx, uid)
	return len(ids) > 0, err
}

// GetClientIdByUid lists the clients bound to uid.
func (g *Gateway) GetClientIdByUid(ctx context.Context, uid string) ([]string, error) {
	return g.reg.ClientsByUid(ctx, uid)
}

// GetUidByClientId returns the client's uid, "" if it has none.
func (g *Gateway) GetUidByClientId(ctx context.Context, clientID string) (string, error) {
	return g.reg.UidOf(ctx, clientID)
}

// SendToUid queues msg once for every client bound to any of uids.
func (g *Gateway) SendToUid(ctx context.Context, uids []string, msg abi.Message) (int, error) {
	if err := g.checkMessage(msg); err != nil {
		return 0, err
	}
	uids = dedupe(uids)
	var ids []string
	for _, uid := range uids {
		got, err := g.local.ClientsByUid(ctx, uid)
		if err != nil {
			return 0, err
		}
		ids = append(ids, got...)
	}
	// A client has one uid, but may be rebound between two lookups.
	n, err := g.deliver(ctx, ids, len(uids) <= 1, nil, msg)
	if err == nil && g.cluster != nil {
		err = g.cluster.PublishUids(ctx, uids, msg)
	}
	return n, err
}

// JoinGroup adds the client to group.
func (g *Gateway) JoinGroup(ctx context.Context, clientID, group string) error {
	return g.reg.JoinGroup(ctx, clientID, group)
}

// LeaveGroup removes the client from group.
func (g *Gateway) LeaveGroup(ctx context.Context, clientID, group string) error {
	return g.reg.LeaveGroup(ctx, clientID, group)
}

// Ungroup removes every member from group.
func (g *Gateway) Ungroup(ctx context.Context, group string) error {
	return g.reg.Ungroup(ctx, group)
}

// SendToGroup queues msg once for every member of any of groups, minus
// exclude.
func (g *Gateway) SendToGroup(ctx context.Context, groups []string, msg abi.Message, exclude []string) (int, error) {
	if err := g.checkMessage(msg); err != nil {
		return 0, err
	}
	var ids []string
	for _, group := range groups {
		got, err := g.local.GroupClients(ctx, group)
		if err != nil {
			return 0, err
		}
		ids = append(ids, got...)
	}
	n, err := g.deliver(ctx, ids, len(groups) <= 1, toSet(exclude), msg)
	if err == nil && g.cluster != nil {
		err = g.cluster.PublishGroups(ctx, groups, msg, exclude)
	}
	return n, err
}

// GetClientIdCountByGroup counts the group's members.
func (g *Gateway) GetClientIdCountByGroup(ctx context.Context, group string) (int, error) {
	return g.reg.GroupClientCount(ctx, group)
}

// GetClientIdListByGroup lists the group's members.
func (g *Gateway) GetClientIdListByGroup(ctx context.Context, group string) ([]string, error) {
	return g.reg.GroupClients(ctx, group)
}

// GetUidListByGroup lists the distinct uids of the group's members.
func (g *Gateway) GetUidListByGroup(ctx context.Context, group string) ([]string, error) {
	return g.reg.GroupUids(ctx, group)
}

// GetUidCountByGroup counts the distinct uids of the group's members.
func (g *Gateway) GetUidCountByGroup(ctx context.Context, group string) (int, error) {
	uids, err := g.reg.GroupUids(ctx, group)
	return len(uids), err
}

// GetAllClientIdCount counts connected clients.
func (g *Gateway) GetAllClientIdCount(ctx context.Context) (int, error) {
	return g.reg.ClientCount(ctx)
}

// GetAllClientIdList lists connected clients.
func (g *Gateway) GetAllClientIdList(ctx context.Context) ([]string, error) {
	return g.reg.ClientIDs(ctx)
}

// GetAllUidList lists uids with a connected client.
func (g *Gateway) GetAllUidList(ctx context.Context) ([]string, error) {
	return g.reg.Uids(ctx)
}

// GetAllUidCount counts uids with a connected client.
func (g *Gateway) GetAllUidCount(ctx context.Context) (int, error) {
	return g.reg.UidCount(ctx)
}

// GetAllGroupIdList lists groups with at least one member.
func (g *Gateway) GetAllGroupIdList(ctx context.Context) ([]string, error) {
	return g.reg.GroupIDs(ctx)
}

// SetSession replaces the client's session.
func (g *Gateway) SetSession(ctx context.Context, clientID string, session []byte) error {
	return g.reg.SetSession(ctx, clientID, session)
}

// UpdateSession merges patch into the client's session.
func (g *Gateway) UpdateSession(ctx context.Context, clientID string, patch []byte) error {
	return g.reg.UpdateSession(ctx, clientID, patch)
}

// GetSession returns the client's session.
func (g *Gateway) GetSession(ctx context.Context, clientID string) ([]byte, error) {
	return g.reg.Session(ctx, clientID)
}

var (
	_ abi.Host     = (*Gateway)(nil)
	_ push.Gateway = (*Gateway)(nil)
)

// DestroyClient drops the client's connection at once, discarding queued
// messages (GatewayWorker's destoryClient).
func (g *Gateway) DestroyClient(ctx context.Context, clientID string) error {
	if g.remote(clientID) {
		return g.cluster.DestroyClient(ctx, clientID)
	}
	c := g.hub.Get(clientID)
	if c == nil {
		return abi.ErrnoNotFound
	}
	c.Abort()
	return nil
}

// The cluster.Deliverer side: what other nodes publish for this node's
// clients. Each runs on the goroutine reading the pub/sub connection and
// only queues (the clients' writers do the writes).

var _ cluster.Deliverer = (*Gateway)(nil)

// DeliverGroups implements cluster.Deliverer.
func (g *Gateway) DeliverGroups(groups []string, via int, msg abi.Message, exclude []string) {
	ctx := context.Background()
	ids, _ := g.local.GroupClients(ctx, groups[via])
	skip := toSet(exclude)
	if via > 0 { // members of an earlier group got it through that group's copy
		if skip == nil {
			skip = map[string]struct{}{}
		}
		for _, earlier := range groups[:via] {
			members, _ := g.local.GroupClients(ctx, earlier)
			for _, id := range members {
				skip[id] = struct{}{}
			}
		}
	}
	_, _ = g.deliver(ctx, ids, true, skip, msg)
}

// DeliverUids implements cluster.Deliverer.
func (g *Gateway) DeliverUids(uids []string, via int, msg abi.Message) {
	ids, _ := g.local.ClientsByUid(context.Background(), uids[via])
	_, _ = g.deliver(context.Background(), ids, true, nil, msg)
}

// DeliverAll implements cluster.Deliverer.
func (g *Gateway) DeliverAll(msg abi.Message, exclude []string) {
	_, _ = g.hub.FanoutAll(msg, toSet(exclude))
}

// DeliverClients implements cluster.Deliverer.
func (g *Gateway) DeliverClients(ids []string, msg abi.Message, exclude []string) {
	_, _ = g.deliver(context.Background(), ids, false, toSet(exclude), msg)
}

// CloseLocal implements cluster.Deliverer.
func (g *Gateway) CloseLocal(id string, final *abi.Message, code int) {
	if c := g.hub.Get(id); c != nil {
		_ = g.hub.CloseOrdered(c, final, code)
	}
}

// DestroyLocal implements cluster.Deliverer.
func (g *Gateway) DestroyLocal(id string) {
	if c := g.hub.Get(id); c != nil {
		c.Abort()
	}
}
