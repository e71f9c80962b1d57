package redisreg

// Design of the Redis registry (the first slice of issue 10).
//
// Key layout. Every key starts with Options.Prefix (P, default "wasmgate:"),
// so several clusters or test runs share one Redis without meeting:
//
//	P nodes                   SET    node ids (8 hex digits) that heartbeated and may own clients
//	P node:<nid>              STRING the node's heartbeat, "1" with a TTL (Options.NodeTTL)
//	P node:<nid>:clients      SET    the node's client ids (presence; ClientIDs is their union)
//	P client:<id>             HASH   n=<nid> (always set: the hash exists iff the client does),
//	                                 uid=<uid> (absent when unbound), s=<session JSON>, v=<session version>
//	P client:<id>:groups      SET    the client's groups (max_groups_per_client, RemoveClient)
//	P uid:<uid>               SET    client ids bound to uid
//	P uids                    SET    uids with at least one client (Uids, UidCount = SCARD)
//	P group:<g>               SET    members of g (GroupClients = SMEMBERS, count = SCARD)
//	P groups                  SET    groups with at least one member (GroupIDs)
//
// A client id is 20 hex digits whose first 8 are its node id
// (server/clientid.go); the client hash is the source of truth, the uid and
// group sets mirror it, and every script that changes one changes the others
// in the same script. Keys are built inside the scripts from the prefix, so
// this layout needs one Redis (or a Sentinel-managed primary), not Redis
// Cluster: a script touches keys of many hash slots.
//
// Atomicity. Every read-check-write is one Lua script (go-redis Script:
// EVALSHA, EVAL when Redis lost its script cache, e.g. after a restart):
// AddClient (refuse a duplicate), RemoveClient (uid, groups, session and
// presence in one step), BindUid (replace the previous uid), UnbindUid,
// JoinGroup (the max_groups_per_client check and the add), LeaveGroup,
// Ungroup, SetSession (exists check and write). So two nodes racing on one
// client never leave an index entry without its client, nor a client past
// its group limit.
//
// UpdateSession is optimistic: HMGET the session and its version, merge in
// Go, then a compare-and-set script stores the result only if the version
// is unchanged (every session write increments it), else the merge is
// redone. Not a Lua merge: Redis's cjson decodes numbers as doubles (so
// 12345678901234567890123, 1e400 and 1.10 would not survive), cannot tell {}
// from [] and orders keys its own way, so the session bytes would differ
// from the in-process registry's; the merge must be the one Go code. Not
// WATCH/MULTI: it is the same optimistic scheme but pins a connection and
// costs WATCH, HGET, MULTI/EXEC (3 round trips); the version CAS costs 2
// and needs no pinned connection. max_session_bytes is checked in Go on the
// merged bytes, and only those bytes are stored, so the limit holds.
//
// Liveness. Heartbeat sets P node:<nid> with a TTL (SET ... PX ... GET: an
// absent old value means this node's presence may be gone, because the key
// expired or Redis lost its data, and the caller re-publishes with
// Republish). HasClient, ClientIDs and ClientCount look only at nodes whose
// heartbeat key exists, so a dead node's clients drop out of them as soon as
// its TTL ends. The uid and group sets, UidOf and Session of a dead node's
// clients are cleaned by Sweep, which survivors call periodically (Maintain
// does heartbeat, republish-when-lost and sweep on one ticker): it removes
// the clients of every node in P nodes whose heartbeat is gone, in batches of
// sweepBatch clients per script so that a node of 100,000 clients does not
// block Redis for long, and stops as soon as the node heartbeats again.
//
// Cost per call: every method is one round trip (one script or one command)
// except UpdateSession (2, more under contention) and HasClient (1 script,
// 2 reads). Scripts are O(1) except where the data is the answer:
// RemoveClient and Ungroup are O(the client's groups / the group's members),
// GroupUids O(members), ClientIDs/ClientCount O(nodes) (+ O(clients) for the
// list).
//
// Unavailability. Every call runs under Options.Timeout (dial, read, write
// and the pool wait are bounded by it too) and go-redis retries are off, so
// a dead Redis fails a call in about one Timeout, as an error wrapping
// abi.ErrnoUnavailable; nothing hangs. A Redis error reply to a script (a
// bug, not an outage) is abi.ErrnoInternal.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/internal/registry"
)

// Defaults of Options.
const (
	DefaultPrefix  = "wasmgate:"
	DefaultNodeTTL = 15 * time.Second
	DefaultTimeout = time.Second
)

// sweepBatch is how many clients of a dead node one sweep script removes.
const sweepBatch = 500

// maxCASAttempts bounds UpdateSession's retries; each failed attempt means
// another write to the same session succeeded, so reaching it takes a storm
// of writes to one session.
const maxCASAttempts = 100

// clientIDLen is the length of a client id: 8 hex digits of node id and 12
// of sequence (server/clientid.go).
const clientIDLen = 20

// Options configure a Registry.
type Options struct {
	// URL locates Redis (NewClient's forms); unused when Client is set.
	URL string
	// Client, when not nil, is the connection pool to use (from NewClient),
	// shared with the rest of the node; Close closes it.
	Client *redis.Client
	// Prefix starts every key (DefaultPrefix when empty).
	Prefix string
	// Node is this node's id, the first 8 hex digits of its client ids.
	// AddClient accepts only this node's clients.
	Node uint32
	// Limits are the per-client limits, the same as registry.Local's.
	Limits registry.Limits
	// NodeTTL is how long the node's heartbeat lives (DefaultNodeTTL when
	// zero): survivors sweep a node that has not heartbeated for NodeTTL.
	NodeTTL time.Duration
	// Timeout bounds every call, including dialing (DefaultTimeout when
	// zero).
	Timeout time.Duration
}

// Registry is a registry.Registry stored in Redis, shared by every node of
// a cluster. Create it with New; Close it when done.
type Registry struct {
	rdb    *redis.Client
	prefix string
	node   string // Options.Node as 8 hex digits
	limits registry.Limits
	ttl    time.Duration
	tmo    time.Duration
}

var _ registry.Registry = (*Registry)(nil)

// NewClient returns a go-redis client for url, set up the way the cluster
// needs it: every dial, read, write and pool wait bounded by timeout, no
// retries. url is redis://[user:password@]host:port/db, rediss:// for TLS,
// unix:///path, or a Sentinel form: redis://[user:password@]sentinel:port/db
// ?master_name=NAME[&addr=sentinel2:port...] (go-redis ParseFailoverURL).
// It connects lazily: the first command dials.
func NewClient(url string, timeout time.Duration) (*redis.Client, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if strings.Contains(url, "master_name=") {
		fo, err := redis.ParseFailoverURL(url)
		if err != nil {
			return nil, fmt.Errorf("redis sentinel url %q: %v: %w", url, err, abi.ErrnoInvalid)
		}
		fo.DialTimeout, fo.ReadTimeout, fo.WriteTimeout, fo.PoolTimeout = timeout, timeout, timeout, timeout
		fo.ContextTimeoutEnabled = true
		fo.MaxRetries = -1
		fo.DisableIdentity = true
		return redis.NewFailoverClient(fo), nil
	}
	ro, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis url %q: %v: %w", url, err, abi.ErrnoInvalid)
	}
	ro.DialTimeout = timeout
	ro.ReadTimeout = timeout
	ro.WriteTimeout = timeout
	ro.PoolTimeout = timeout
	ro.ContextTimeoutEnabled = true
	// No retries: a script is not always safe to run twice, and a retry
	// after a timeout doubles the time a caller waits on a dead Redis.
	ro.MaxRetries = -1
	ro.DialerRetries = 1
	// CLIENT SETINFO (Redis >= 7.2) and maintenance notifications cost
	// round trips on every new connection and are of no use here.
	ro.DisableIdentity = true
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	return redis.NewClient(ro), nil
}

// New returns the registry; it connects lazily (the first call dials).
func New(o Options) (*Registry, error) {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.NodeTTL <= 0 {
		o.NodeTTL = DefaultNodeTTL
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	rdb := o.Client
	if rdb == nil {
		var err error
		if rdb, err = NewClient(o.URL, o.Timeout); err != nil {
			return nil, err
		}
	}
	return &Registry{
		rdb:    rdb,
		prefix: o.Prefix,
		node:   fmt.Sprintf("%08x", o.Node),
		limits: o.Limits,
		ttl:    o.NodeTTL,
		tmo:    o.Timeout,
	}, nil
}

// Close closes the connections to Redis.
func (r *Registry) Close() error { return r.rdb.Close() }

// Prefix returns the key prefix in use.
func (r *Registry) Prefix() string { return r.prefix }

// call bounds one call by the timeout.
func (r *Registry) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.tmo)
}

// fail wraps a Redis error: an error reply is a bug here (internal), any
// other failure (network, timeout, a Redis that is loading or read-only)
// means the shared state cannot be reached (unavailable).
func fail(op string, err error) error {
	var reply redis.Error
	if errors.As(err, &reply) && strings.HasPrefix(err.Error(), "ERR") {
		return fmt.Errorf("redis %s: %v: %w", op, err, abi.ErrnoInternal)
	}
	return fmt.Errorf("redis %s: %v: %w", op, err, abi.ErrnoUnavailable)
}

func invalid(what string) error {
	return fmt.Errorf("%s: %w", what, abi.ErrnoInvalid)
}

func notFound(id string) error {
	return fmt.Errorf("client %q: %w", id, abi.ErrnoNotFound)
}

// wellFormed reports whether id is a client id (20 lower-case hex digits):
// anything else cannot be connected, and must not become part of a key.
func wellFormed(id string) bool {
	if len(id) != clientIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// checkID: "" is invalid, a malformed id is an unknown client.
func checkID(id string) error {
	if id == "" {
		return invalid("empty client id")
	}
	if !wellFormed(id) {
		return notFound(id)
	}
	return nil
}

// checkName refuses an empty name or one longer than MaxNameBytes.
func (r *Registry) checkName(what, name string) error { return r.limits.CheckName(what, name) }

// Script results that are not data.
const (
	resOK       = 0
	resNotFound = -1
	resLimit    = -2
	resExists   = -3
	resConflict = -4
)

// run runs a script that answers one of the res codes.
func (r *Registry) run(ctx context.Context, op string, s *redis.Script, args ...any) (int64, error) {
	ctx, cancel := r.call(ctx)
	defer cancel()
	n, err := s.Run(ctx, r.rdb, nil, append([]any{r.prefix}, args...)...).Int64()
	if err != nil {
		return 0, fail(op, err)
	}
	return n, nil
}

// AddClient implements registry.Registry. Only this node's clients can be
// added: presence is tracked per node. Heartbeat first: until this node's
// heartbeat exists its clients are invisible to HasClient and ClientIDs,
// and a survivor's Sweep may remove them.
func (r *Registry) AddClient(ctx context.Context, id string) error {
	if id == "" {
		return invalid("empty client id")
	}
	if !wellFormed(id) {
		return invalid(fmt.Sprintf("client id %q is not 20 hex digits", id))
	}
	if id[:8] != r.node {
		return invalid(fmt.Sprintf("client %q belongs to node %s, not to this node %s", id, id[:8], r.node))
	}
	n, err := r.run(ctx, "add client", scriptAdd, id, r.node)
	if err != nil {
		return err
	}
	if n == resExists {
		return invalid(fmt.Sprintf("client %q already exists", id))
	}
	return nil
}

// RemoveClient implements registry.Registry.
func (r *Registry) RemoveClient(ctx context.Context, id string) (bool, error) {
	if err := checkID(id); err != nil {
		return false, ignoreNotFound(err)
	}
	n, err := r.run(ctx, "remove client", scriptRemove, id)
	return n == 1, err
}

// ignoreNotFound turns a malformed id (an unknown client) into no error.
func ignoreNotFound(err error) error {
	if abi.ErrnoOf(err) == abi.ErrnoNotFound {
		return nil
	}
	return err
}

// HasClient implements registry.Registry: the client exists and its node's
// heartbeat is alive.
func (r *Registry) HasClient(ctx context.Context, id string) (bool, error) {
	if err := checkID(id); err != nil {
		return false, ignoreNotFound(err)
	}
	n, err := r.run(ctx, "has client", scriptHas, id)
	return n == 1, err
}

// BindUid implements registry.Registry.
func (r *Registry) BindUid(ctx context.Context, id, uid string) error {
	if err := r.checkName("uid", uid); err != nil {
		return err
	}
	return r.write(ctx, "bind uid", scriptBind, id, uid)
}

// UnbindUid implements registry.Registry.
func (r *Registry) UnbindUid(ctx context.Context, id, uid string) error {
	if uid == "" {
		return invalid("empty uid")
	}
	return r.write(ctx, "unbind uid", scriptUnbind, id, uid)
}

// write runs a script on client id that answers resOK or resNotFound.
func (r *Registry) write(ctx context.Context, op string, s *redis.Script, id string, args ...any) error {
	if err := checkID(id); err != nil {
		return err
	}
	n, err := r.run(ctx, op, s, append([]any{id}, args...)...)
	if err != nil {
		return err
	}
	if n == resNotFound {
		return notFound(id)
	}
	return nil
}

// members runs SMEMBERS.
func (r *Registry) members(ctx context.Context, op, key string) ([]string, error) {
	ctx, cancel := r.call(ctx)
	defer cancel()
	m, err := r.rdb.SMembers(ctx, key).Result()
	if err != nil {
		return nil, fail(op, err)
	}
	return m, nil
}

// card runs SCARD.
func (r *Registry) card(ctx context.Context, op, key string) (int, error) {
	ctx, cancel := r.call(ctx)
	defer cancel()
	n, err := r.rdb.SCard(ctx, key).Result()
	if err != nil {
		return 0, fail(op, err)
	}
	return int(n), nil
}

// ClientsByUid implements registry.Registry.
func (r *Registry) ClientsByUid(ctx context.Context, uid string) ([]string, error) {
	if uid == "" {
		return nil, invalid("empty uid")
	}
	return r.members(ctx, "clients by uid", r.prefix+"uid:"+uid)
}

// field reads one field of client id's hash; found is false for an unknown
// client.
func (r *Registry) field(ctx context.Context, op, id, name string) (val string, set, found bool, err error) {
	if err := checkID(id); err != nil {
		return "", false, false, err
	}
	ctx, cancel := r.call(ctx)
	defer cancel()
	v, err := r.rdb.HMGet(ctx, r.prefix+"client:"+id, "n", name).Result()
	if err != nil {
		return "", false, false, fail(op, err)
	}
	if v[0] == nil {
		return "", false, false, notFound(id)
	}
	s, ok := v[1].(string)
	return s, ok, true, nil
}

// UidOf implements registry.Registry.
func (r *Registry) UidOf(ctx context.Context, id string) (string, error) {
	uid, _, _, err := r.field(ctx, "uid of", id, "uid")
	return uid, err
}

// JoinGroup implements registry.Registry. The group limit is checked and the
// join made in one script, so concurrent joins from any number of nodes
// never pass it.
func (r *Registry) JoinGroup(ctx context.Context, id, group string) error {
	if err := r.checkName("group name", group); err != nil {
		return err
	}
	if err := checkID(id); err != nil {
		return err
	}
	n, err := r.run(ctx, "join group", scriptJoin, id, group, r.limits.MaxGroupsPerClient)
	switch {
	case err != nil:
		return err
	case n == resNotFound:
		return notFound(id)
	case n == resLimit:
		return fmt.Errorf("client %q is already in %d groups (max_groups_per_client): %w", id, r.limits.MaxGroupsPerClient, abi.ErrnoLimit)
	}
	return nil
}

// LeaveGroup implements registry.Registry.
func (r *Registry) LeaveGroup(ctx context.Context, id, group string) error {
	if group == "" {
		return invalid("empty group")
	}
	return r.write(ctx, "leave group", scriptLeave, id, group)
}

// Ungroup implements registry.Registry.
func (r *Registry) Ungroup(ctx context.Context, group string) error {
	if group == "" {
		return invalid("empty group")
	}
	_, err := r.run(ctx, "ungroup", scriptUngroup, group)
	return err
}

// GroupClients implements registry.Registry.
func (r *Registry) GroupClients(ctx context.Context, group string) ([]string, error) {
	if group == "" {
		return nil, invalid("empty group")
	}
	return r.members(ctx, "group clients", r.prefix+"group:"+group)
}

// GroupClientCount implements registry.Registry.
func (r *Registry) GroupClientCount(ctx context.Context, group string) (int, error) {
	if group == "" {
		return 0, invalid("empty group")
	}
	return r.card(ctx, "group client count", r.prefix+"group:"+group)
}

// list runs a script that answers a list of strings.
func (r *Registry) list(ctx context.Context, op string, s *redis.Script, args ...any) ([]string, error) {
	ctx, cancel := r.call(ctx)
	defer cancel()
	v, err := s.Run(ctx, r.rdb, nil, append([]any{r.prefix}, args...)...).StringSlice()
	if err != nil {
		return nil, fail(op, err)
	}
	return v, nil
}

// GroupUids implements registry.Registry.
func (r *Registry) GroupUids(ctx context.Context, group string) ([]string, error) {
	if group == "" {
		return nil, invalid("empty group")
	}
	uids, err := r.list(ctx, "group uids", scriptGroupUids, group)
	slices.Sort(uids)
	return uids, err
}

// GroupIDs implements registry.Registry.
func (r *Registry) GroupIDs(ctx context.Context) ([]string, error) {
	g, err := r.members(ctx, "group ids", r.prefix+"groups")
	slices.Sort(g)
	return g, err
}

// ClientIDs implements registry.Registry: the clients of the nodes whose
// heartbeat is alive.
func (r *Registry) ClientIDs(ctx context.Context) ([]string, error) {
	ids, err := r.list(ctx, "client ids", scriptClients)
	slices.Sort(ids)
	return ids, err
}

// ClientCount implements registry.Registry, counting like ClientIDs.
func (r *Registry) ClientCount(ctx context.Context) (int, error) {
	n, err := r.run(ctx, "client count", scriptClientCount)
	return int(n), err
}

// Uids implements registry.Registry.
func (r *Registry) Uids(ctx context.Context) ([]string, error) {
	u, err := r.members(ctx, "uids", r.prefix+"uids")
	slices.Sort(u)
	return u, err
}

// UidCount implements registry.Registry.
func (r *Registry) UidCount(ctx context.Context) (int, error) {
	return r.card(ctx, "uid count", r.prefix+"uids")
}

// SetSession implements registry.Registry.
func (r *Registry) SetSession(ctx context.Context, id string, session []byte) error {
	if err := checkID(id); err != nil {
		return err
	}
	obj, err := r.limits.DecodeSession(session)
	if err != nil {
		return err
	}
	enc, err := r.limits.EncodeSession(id, obj)
	if err != nil {
		return err
	}
	return r.write(ctx, "set session", scriptSetSession, id, enc)
}

// UpdateSession implements registry.Registry: read, merge in Go, store if
// the session's version is unchanged, else merge again (see the design
// note at the top of this file).
func (r *Registry) UpdateSession(ctx context.Context, id string, patch []byte) error {
	if err := checkID(id); err != nil {
		return err
	}
	obj, err := r.limits.DecodeSession(patch)
	if err != nil {
		return err
	}
	for range maxCASAttempts {
		base, ver, err := r.readSession(ctx, id)
		if err != nil {
			return err
		}
		var baseObj map[string]any
		if base != "" {
			if baseObj, err = registry.DecodeStoredSession([]byte(base)); err != nil {
				return fmt.Errorf("stored session of client %q: %v: %w", id, err, abi.ErrnoInternal)
			}
		}
		enc, err := r.limits.EncodeSession(id, registry.MergeSession(baseObj, obj))
		if err != nil {
			return err
		}
		n, err := r.run(ctx, "update session", scriptCASSession, id, enc, ver)
		switch {
		case err != nil:
			return err
		case n == resNotFound:
			return notFound(id)
		case n == resOK:
			return nil
		}
		// resConflict: another write landed between the read and the store.
	}
	return fmt.Errorf("session of client %q: %d concurrent writes won over this update: %w", id, maxCASAttempts, abi.ErrnoUnavailable)
}

// readSession returns client id's stored session ("" when none) and its
// version.
func (r *Registry) readSession(ctx context.Context, id string) (session, version string, err error) {
	ctx, cancel := r.call(ctx)
	defer cancel()
	v, err := r.rdb.HMGet(ctx, r.prefix+"client:"+id, "n", "s", "v").Result()
	if err != nil {
		return "", "", fail("read session", err)
	}
	if v[0] == nil {
		return "", "", notFound(id)
	}
	session, _ = v[1].(string)
	version, _ = v[2].(string)
	return session, version, nil
}

// Session implements registry.Registry.
func (r *Registry) Session(ctx context.Context, id string) ([]byte, error) {
	s, set, _, err := r.field(ctx, "session", id, "s")
	if err != nil {
		return nil, err
	}
	if !set {
		return []byte("{}"), nil
	}
	return []byte(s), nil
}

// Heartbeat marks this node alive for NodeTTL. lost is true when the
// heartbeat key was absent (the first heartbeat, a TTL that ran out, or a
// Redis that lost its data): survivors may have swept this node's clients,
// so the caller must Republish them.
func (r *Registry) Heartbeat(ctx context.Context) (lost bool, err error) {
	ctx, cancel := r.call(ctx)
	defer cancel()
	v, err := scriptHeartbeat.Run(ctx, r.rdb, nil, r.prefix, r.node, r.ttl.Milliseconds()).Int64()
	if err != nil {
		return false, fail("heartbeat", err)
	}
	return v == 0, nil
}

// Sweep removes the clients, with their uids, groups and sessions, of every
// other node whose heartbeat has expired, and forgets those nodes. It
// returns how many clients it removed. Survivors call it periodically
// (Maintain); it is safe to run on every node at once.
func (r *Registry) Sweep(ctx context.Context) (int, error) {
	nodes, err := r.members(ctx, "sweep", r.prefix+"nodes")
	if err != nil {
		return 0, err
	}
	total := 0
	for _, n := range nodes {
		if n == r.node {
			continue
		}
		removed, err := r.dropNode(ctx, n, dropIfDead)
		total += removed
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Modes of scriptSweepNode.
const (
	dropIfDead = 0 // a survivor's sweep: only while the heartbeat is absent
	dropLeave  = 1 // this node leaving: every client and the heartbeat
	dropPurge  = 2 // this node starting: every client, keeping the heartbeat
)

// dropNode removes node n's clients in batches, as mode says.
func (r *Registry) dropNode(ctx context.Context, n string, mode int) (int, error) {
	total := 0
	for {
		v, err := r.run(ctx, "sweep node "+n, scriptSweepNode, n, sweepBatch, mode)
		if err != nil {
			return total, err
		}
		if v < 0 { // alive again, or done
			return total, nil
		}
		total += int(v)
	}
}

// Leave removes this node's clients and heartbeat, for a clean shutdown:
// the other nodes need not wait for the TTL.
func (r *Registry) Leave(ctx context.Context) error {
	_, err := r.dropNode(ctx, r.node, dropLeave)
	return err
}

// Claim makes node id this caller's if no live node holds it: it creates
// the id's heartbeat (SET NX with ttl) and reports whether it did. An id
// whose holder died is free again once its heartbeat's TTL has run out.
func Claim(ctx context.Context, rdb redis.Scripter, prefix string, node uint32, ttl time.Duration) (bool, error) {
	v, err := scriptClaim.Run(ctx, rdb, nil, prefix, fmt.Sprintf("%08x", node), ttl.Milliseconds()).Int64()
	if err != nil {
		return false, fail("claim node id", err)
	}
	return v == 1, nil
}

// Purge removes every client Redis holds for this node, keeping its
// heartbeat. A node that has just claimed its id calls it: clients left by
// an earlier holder of the id that died are gone with it, and must not pass
// for this node's.
func (r *Registry) Purge(ctx context.Context) (int, error) {
	return r.dropNode(ctx, r.node, dropPurge)
}

// Client returns the go-redis client the registry uses, for the rest of a
// cluster node (publish and subscribe, the module key-value store) to
// share its connections and settings.
func (r *Registry) Client() *redis.Client { return r.rdb }

// Client is one client's whole state, as Republish stores it.
type Client struct {
	ID      string
	Uid     string   // "" when unbound
	Groups  []string // in any order
	Session []byte   // a JSON object; nil is {}
}

// Snapshot reads the state of every client of this node from src (for
// example a registry.Local that mirrors this node's clients).
func (r *Registry) Snapshot(ctx context.Context, src registry.Registry) ([]Client, error) {
	ids, err := src.ClientIDs(ctx)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*Client)
	var out []Client
	for _, id := range ids {
		if wellFormed(id) && id[:8] == r.node {
			out = append(out, Client{ID: id})
		}
	}
	for i := range out {
		c := &out[i]
		byID[c.ID] = c
		if c.Uid, err = src.UidOf(ctx, c.ID); ignoreNotFound(err) != nil {
			return nil, err
		}
		if c.Session, err = src.Session(ctx, c.ID); ignoreNotFound(err) != nil {
			return nil, err
		}
	}
	groups, err := src.GroupIDs(ctx)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		members, err := src.GroupClients(ctx, g)
		if err != nil {
			return nil, err
		}
		for _, id := range members {
			if c := byID[id]; c != nil {
				c.Groups = append(c.Groups, g)
			}
		}
	}
	return out, nil
}

// Republish makes Redis hold exactly clients as this node's clients: it
// heartbeats, removes this node's clients that are not in clients, and
// stores each of clients (uid, groups, session) in place of what Redis
// has. Run it when Heartbeat reports the presence lost, e.g. after Redis
// came back empty. Limits are not checked: the state was accepted once.
func (r *Registry) Republish(ctx context.Context, clients []Client) error {
	if _, err := r.Heartbeat(ctx); err != nil {
		return err
	}
	keep := make(map[string]bool, len(clients))
	for _, c := range clients {
		if !wellFormed(c.ID) || c.ID[:8] != r.node {
			return invalid(fmt.Sprintf("republish: client %q is not a client of node %s", c.ID, r.node))
		}
		keep[c.ID] = true
	}
	have, err := r.members(ctx, "republish", r.prefix+"node:"+r.node+":clients")
	if err != nil {
		return err
	}
	for _, id := range have {
		if !keep[id] {
			if _, err := r.run(ctx, "republish", scriptRemove, id); err != nil {
				return err
			}
		}
	}
	// Pipelined in batches: one round trip per batch, not per client.
	const batch = 256
	lctx, cancel := r.call(ctx)
	err = scriptRestore.Load(lctx, r.rdb).Err()
	cancel()
	if err != nil {
		return fail("republish", err)
	}
	for start := 0; start < len(clients); start += batch {
		end := min(start+batch, len(clients))
		bctx, cancel := r.call(ctx)
		_, err := r.rdb.Pipelined(bctx, func(p redis.Pipeliner) error {
			for _, c := range clients[start:end] {
				session := c.Session
				if len(session) == 0 {
					session = []byte("{}")
				}
				args := []any{r.prefix, c.ID, r.node, c.Uid, session}
				for _, g := range c.Groups {
					args = append(args, g)
				}
				scriptRestore.EvalSha(bctx, p, nil, args...)
			}
			return nil
		})
		cancel()
		if err != nil {
			return fail("republish", err)
		}
	}
	return nil
}

// Maintain heartbeats and sweeps every interval until ctx ends; interval
// should be a third of NodeTTL or less, so that one late heartbeat does not
// make the node look dead. When a
// heartbeat finds this node's presence lost it calls republish (which
// typically builds a Snapshot and calls Republish). Errors are logged, and
// the loop goes on: Redis may come back.
func (r *Registry) Maintain(ctx context.Context, interval time.Duration, republish func(context.Context) error, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	pending := false // a re-publish failed: retry it on the next tick
	for {
		lost, err := r.Heartbeat(ctx)
		if err != nil {
			log.Warn("cluster heartbeat failed", "node", r.node, "err", err)
		} else {
			if lost || pending {
				if err := republish(ctx); err != nil {
					pending = true
					log.Warn("cluster re-publish failed", "node", r.node, "err", err)
				} else {
					pending = false
					log.Info("cluster presence re-published", "node", r.node)
				}
			}
			if _, err := r.Sweep(ctx); err != nil {
				log.Warn("cluster sweep failed", "node", r.node, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
