package registry

// Concurrency design of Local.
//
// State is split into three arrays of regShardCount shards, each picked by the
// seeded hash of its key (shardOf) and guarded by its own sync.RWMutex:
//
//   - clients: client id -> *regClient (the client's uid, groups, session);
//   - uids:    uid   -> set of client ids (the uid index);
//   - groups:  group -> set of client ids (the group index).
//
// The client entry is the source of truth; the two indexes mirror it.
//
// Lock order. A goroutine holds at most one client-shard lock and at most one
// index-shard lock at a time, and takes them in this order only:
//
//	client shard  ->  index shard (uid or group)
//
// A client-shard lock may be held while an index-shard lock is taken; an
// index-shard lock is never held while a client-shard lock is taken. So there
// is no lock cycle and no deadlock.
//
// Every mutation of a client's uid or groups (BindUid, UnbindUid, JoinGroup,
// LeaveGroup, RemoveClient) happens under the client's shard write lock, after
// checking under that lock that the client still exists, and updates the
// index while still holding it. A RemoveClient racing with BindUid/JoinGroup
// is therefore serialised by that lock: either the bind sees the client gone
// (abi.ErrnoNotFound) or the remove sees the binding and drops it from the
// index. The indexes never keep a stale id.
//
// Ungroup cannot walk the members from the group side (that would take the
// client lock under the index lock), so it snapshots the members under the
// group shard's read lock, releases it, and then removes each member through
// the normal client -> index path. A client that joins after the snapshot
// stays a member: that Join is ordered after the Ungroup. GroupUids likewise
// snapshots the members, then reads each member's uid under its client lock.
//
// Lists that span shards (ClientIDs, Uids, GroupIDs, counts) are consistent
// per shard, not a global point-in-time snapshot.
//
// No lock is held during I/O: the registry does none. Sessions are immutable
// once stored (UpdateSession builds a new map, see MergeSession). A
// session is stored only as its encoding, which is computed outside the lock
// (that is also how its size is measured against max_session_bytes), so
// Session only copies a slice header under the lock. An UpdateSession that
// lost a race with another write to the same session (the session changed
// between the read and the store) merges again.

import (
	"context"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"

	"github.com/wasmgate/wasmgate/abi"
)

// regShardCount is the number of shards per array; a power of two.
const regShardCount = 64

// Local is the in-process Registry, sharded for concurrency. The zero
// value is not usable; call NewLocal. The context arguments of its
// methods are unused: every call completes without blocking on I/O.
type Local struct {
	seed    maphash.Seed // picks shards (shardOf)
	limits  Limits
	clients [regShardCount]regClientShard
	uids    [regShardCount]regIndexShard
	groups  [regShardCount]regIndexShard
}

// Limits bound what one client may store, so that no client can grow
// the registry (or the cost of reading its session) without bound. A zero
// field is no limit. Exceeding a count or size is abi.ErrnoLimit; a name
// longer than MaxNameBytes is abi.ErrnoTooLarge (docs/SANDBOX.md, abi/ABI.md).
type Limits struct {
	// MaxSessionBytes caps a client's session, measured as its compact
	// JSON encoding after the write (server.max_session_bytes).
	MaxSessionBytes int
	// MaxGroupsPerClient caps how many groups one client is in at once
	// (server.max_groups_per_client).
	MaxGroupsPerClient int
	// MaxNameBytes caps a uid, a group name and every key of a session
	// object, at any depth (server.max_name_bytes).
	MaxNameBytes int
}

// regClientShard holds the clients whose id hashes to it.
type regClientShard struct {
	// mu guards clients and every field of every *regClient in it.
	mu      sync.RWMutex
	clients map[string]*regClient
}

// regClient is one connected client's state.
type regClient struct {
	uid    string              // "" when unbound
	groups map[string]struct{} // nil until the first JoinGroup
	// The session is kept only as its compact JSON, immutable once stored
	// (nil is {}): that is what max_session_bytes measures, and a decoded
	// map of many tiny keys would hold an order of magnitude more memory
	// than its encoding. sessionGen counts stores, for UpdateSession's
	// compare-and-store.
	sessionJSON []byte
	sessionGen  uint64
}

// regIndexShard maps keys (uids or groups) hashing to it to sets of client ids.
type regIndexShard struct {
	// mu guards sets and every set in it. A key is deleted with its last id.
	mu   sync.RWMutex
	sets map[string]map[string]struct{}
}

// NewLocal returns an empty registry without per-client limits.
func NewLocal() *Local {
	return NewLocalWithLimits(Limits{})
}

// NewLocalWithLimits returns an empty registry enforcing l.
func NewLocalWithLimits(l Limits) *Local {
	r := &Local{seed: maphash.MakeSeed(), limits: l}
	for i := range regShardCount {
		r.clients[i].clients = make(map[string]*regClient)
		r.uids[i].sets = make(map[string]map[string]struct{})
		r.groups[i].sets = make(map[string]map[string]struct{})
	}
	return r
}

// shardOf picks key's shard with a hash seeded per registry: with a fixed
// hash (the FNV-1a this used before) anyone who can choose uids or group
// names could pick ones that all land in one shard and serialise every
// call on its lock. maphash.String does not allocate.
func (r *Local) shardOf(key string) int {
	return int(maphash.String(r.seed, key) & (regShardCount - 1))
}

func (r *Local) clientShard(id string) *regClientShard {
	return &r.clients[r.shardOf(id)]
}

func (r *Local) uidShard(uid string) *regIndexShard {
	return &r.uids[r.shardOf(uid)]
}

func (r *Local) groupShard(group string) *regIndexShard {
	return &r.groups[r.shardOf(group)]
}

func regInvalid(what string) error {
	return fmt.Errorf("%s: %w", what, abi.ErrnoInvalid)
}

// checkName refuses an empty uid or group name, or one longer than
// MaxNameBytes.
func (r *Local) checkName(what, name string) error { return r.limits.CheckName(what, name) }

func regNotFound(id string) error {
	return fmt.Errorf("client %q: %w", id, abi.ErrnoNotFound)
}

// update runs fn on the client's entry under its shard's write lock.
func (r *Local) update(id string, fn func(c *regClient)) error {
	if id == "" {
		return regInvalid("empty client id")
	}
	s := r.clientShard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return regNotFound(id)
	}
	fn(c)
	return nil
}

// view runs fn on the client's entry under its shard's read lock.
func (r *Local) view(id string, fn func(c *regClient)) error {
	if id == "" {
		return regInvalid("empty client id")
	}
	s := r.clientShard(id)
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.clients[id]
	if !ok {
		return regNotFound(id)
	}
	fn(c)
	return nil
}

// AddClient implements Registry.
func (r *Local) AddClient(_ context.Context, id string) error {
	if id == "" {
		return regInvalid("empty client id")
	}
	s := r.clientShard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[id]; ok {
		return regInvalid(fmt.Sprintf("client %q already exists", id))
	}
	s.clients[id] = &regClient{}
	return nil
}

// RemoveClient implements Registry.
func (r *Local) RemoveClient(_ context.Context, id string) (bool, error) {
	if id == "" {
		return false, regInvalid("empty client id")
	}
	s := r.clientShard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return false, nil
	}
	delete(s.clients, id)
	if c.uid != "" {
		r.uidShard(c.uid).remove(c.uid, id)
	}
	for g := range c.groups {
		r.groupShard(g).remove(g, id)
	}
	return true, nil
}

// HasClient implements Registry.
func (r *Local) HasClient(_ context.Context, id string) (bool, error) {
	err := r.view(id, func(*regClient) {})
	if abi.ErrnoOf(err) == abi.ErrnoNotFound {
		return false, nil
	}
	return err == nil, err
}

// BindUid implements Registry.
func (r *Local) BindUid(_ context.Context, id, uid string) error {
	if err := r.checkName("uid", uid); err != nil {
		return err
	}
	return r.update(id, func(c *regClient) {
		if c.uid == uid {
			return
		}
		if c.uid != "" {
			r.uidShard(c.uid).remove(c.uid, id)
		}
		r.uidShard(uid).add(uid, id)
		c.uid = uid
	})
}

// UnbindUid implements Registry.
func (r *Local) UnbindUid(_ context.Context, id, uid string) error {
	if uid == "" {
		return regInvalid("empty uid")
	}
	return r.update(id, func(c *regClient) {
		if c.uid != uid {
			return
		}
		r.uidShard(uid).remove(uid, id)
		c.uid = ""
	})
}

// ClientsByUid implements Registry.
func (r *Local) ClientsByUid(_ context.Context, uid string) ([]string, error) {
	if uid == "" {
		return nil, regInvalid("empty uid")
	}
	return r.uidShard(uid).members(uid), nil
}

// UidOf implements Registry.
func (r *Local) UidOf(_ context.Context, id string) (string, error) {
	var uid string
	err := r.view(id, func(c *regClient) { uid = c.uid })
	return uid, err
}

// JoinGroup implements Registry.
func (r *Local) JoinGroup(_ context.Context, id, group string) error {
	if err := r.checkName("group name", group); err != nil {
		return err
	}
	var full error
	err := r.update(id, func(c *regClient) {
		if _, ok := c.groups[group]; ok {
			return
		}
		if max := r.limits.MaxGroupsPerClient; max > 0 && len(c.groups) >= max {
			full = fmt.Errorf("client %q is already in %d groups (max_groups_per_client): %w", id, len(c.groups), abi.ErrnoLimit)
			return
		}
		if c.groups == nil {
			c.groups = make(map[string]struct{})
		}
		c.groups[group] = struct{}{}
		r.groupShard(group).add(group, id)
	})
	if err != nil {
		return err
	}
	return full
}

// LeaveGroup implements Registry.
func (r *Local) LeaveGroup(_ context.Context, id, group string) error {
	if group == "" {
		return regInvalid("empty group")
	}
	return r.update(id, func(c *regClient) { r.leave(c, id, group) })
}

// leave removes client id (entry c) from group. The caller holds id's client
// shard write lock.
func (r *Local) leave(c *regClient, id, group string) {
	if _, ok := c.groups[group]; !ok {
		return
	}
	delete(c.groups, group)
	r.groupShard(group).remove(group, id)
}

// Ungroup implements Registry.
func (r *Local) Ungroup(_ context.Context, group string) error {
	if group == "" {
		return regInvalid("empty group")
	}
	for _, id := range r.groupShard(group).members(group) {
		// abi.ErrnoNotFound: the member was removed since the snapshot.
		_ = r.update(id, func(c *regClient) { r.leave(c, id, group) })
	}
	return nil
}

// GroupClients implements Registry.
func (r *Local) GroupClients(_ context.Context, group string) ([]string, error) {
	if group == "" {
		return nil, regInvalid("empty group")
	}
	return r.groupShard(group).members(group), nil
}

// GroupClientCount implements Registry.
func (r *Local) GroupClientCount(_ context.Context, group string) (int, error) {
	if group == "" {
		return 0, regInvalid("empty group")
	}
	return r.groupShard(group).count(group), nil
}

// GroupUids implements Registry.
func (r *Local) GroupUids(_ context.Context, group string) ([]string, error) {
	if group == "" {
		return nil, regInvalid("empty group")
	}
	seen := make(map[string]struct{})
	for _, id := range r.groupShard(group).members(group) {
		var uid string
		// abi.ErrnoNotFound: the member was removed since the snapshot.
		_ = r.view(id, func(c *regClient) { uid = c.uid })
		if uid != "" {
			seen[uid] = struct{}{}
		}
	}
	return regSorted(regKeys(seen, nil)), nil
}

// GroupIDs implements Registry.
func (r *Local) GroupIDs(context.Context) ([]string, error) {
	return regAllKeys(&r.groups), nil
}

// ClientIDs implements Registry.
func (r *Local) ClientIDs(context.Context) ([]string, error) {
	var ids []string
	for i := range r.clients {
		s := &r.clients[i]
		s.mu.RLock()
		ids = regKeys(s.clients, ids)
		s.mu.RUnlock()
	}
	return regSorted(ids), nil
}

// ClientCount implements Registry.
func (r *Local) ClientCount(context.Context) (int, error) {
	n := 0
	for i := range r.clients {
		s := &r.clients[i]
		s.mu.RLock()
		n += len(s.clients)
		s.mu.RUnlock()
	}
	return n, nil
}

// Uids implements Registry.
func (r *Local) Uids(context.Context) ([]string, error) {
	return regAllKeys(&r.uids), nil
}

// UidCount implements Registry.
func (r *Local) UidCount(context.Context) (int, error) {
	n := 0
	for i := range r.uids {
		s := &r.uids[i]
		s.mu.RLock()
		n += len(s.sets)
		s.mu.RUnlock()
	}
	return n, nil
}

// SetSession implements Registry.
func (r *Local) SetSession(_ context.Context, id string, session []byte) error {
	obj, err := r.limits.DecodeSession(session)
	if err != nil {
		return err
	}
	enc, err := r.limits.EncodeSession(id, obj)
	if err != nil {
		return err
	}
	return r.update(id, func(c *regClient) { c.sessionJSON = enc; c.sessionGen++ })
}

// UpdateSession implements Registry. The merge and its encoding run outside
// the lock, on the session read under it; the result is stored only if the
// session is still the one merged into, else the merge is redone.
func (r *Local) UpdateSession(_ context.Context, id string, patch []byte) error {
	obj, err := r.limits.DecodeSession(patch)
	if err != nil {
		return err
	}
	for {
		var baseJSON []byte
		var gen uint64
		if err := r.view(id, func(c *regClient) { baseJSON, gen = c.sessionJSON, c.sessionGen }); err != nil {
			return err
		}
		var base map[string]any
		if baseJSON != nil {
			if base, err = decodeSessionJSON(baseJSON); err != nil {
				return fmt.Errorf("session: stored session of client %q: %w", id, err)
			}
		}
		merged := MergeSession(base, obj)
		enc, err := r.limits.EncodeSession(id, merged)
		if err != nil {
			return err
		}
		stored := false
		err = r.update(id, func(c *regClient) {
			if c.sessionGen == gen {
				c.sessionJSON, stored = enc, true
				c.sessionGen++
			}
		})
		if err != nil || stored {
			return err
		}
	}
}

// Session implements Registry. The stored encoding is immutable: it is
// returned without a copy.
func (r *Local) Session(_ context.Context, id string) ([]byte, error) {
	var enc []byte
	if err := r.view(id, func(c *regClient) { enc = c.sessionJSON }); err != nil {
		return nil, err
	}
	if enc == nil {
		return []byte("{}"), nil
	}
	return enc, nil
}

// add puts id in key's set.
func (s *regIndexShard) add(key, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set, ok := s.sets[key]
	if !ok {
		set = make(map[string]struct{})
		s.sets[key] = set
	}
	set[id] = struct{}{}
}

// remove takes id out of key's set and deletes the key when its set empties.
func (s *regIndexShard) remove(key, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.sets[key]
	delete(set, id)
	if len(set) == 0 {
		delete(s.sets, key)
	}
}

// members returns a copy of key's set, unsorted.
func (s *regIndexShard) members(key string) []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return regKeys(s.sets[key], nil)
}

// count returns the size of key's set.
func (s *regIndexShard) count(key string) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.sets[key])
}

// regAllKeys lists the keys of every shard of an index, sorted.
func regAllKeys(shards *[regShardCount]regIndexShard) []string {
	var keys []string
	for i := range shards {
		s := &shards[i]
		s.mu.RLock()
		keys = regKeys(s.sets, keys)
		s.mu.RUnlock()
	}
	return regSorted(keys)
}

// regKeys appends m's keys to dst; never returns nil.
func regKeys[V any](m map[string]V, dst []string) []string {
	if dst == nil {
		dst = make([]string, 0, len(m))
	}
	for k := range m {
		dst = append(dst, k)
	}
	return dst
}

func regSorted(s []string) []string {
	slices.Sort(s)
	return s
}

var _ Registry = (*Local)(nil)
