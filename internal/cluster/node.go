// Package cluster joins wasmgate nodes into one gateway through Redis, the
// only shared engine: presence (who is connected, uids, groups, sessions)
// lives in Redis (internal/registry/redisreg), and messages for clients of
// other nodes travel on Redis pub/sub channels. There are no node-to-node
// links. docs/CLUSTER.md is the user's account of it; this comment is the
// design.
//
// # State
//
// Each node keeps a registry.Local mirror of its own clients (uid, groups,
// session) beside the shared registry in Redis. The mirror is what local
// delivery reads (which of my clients are in group g), what point reads of
// an own client answer from, and what the node re-publishes when Redis lost
// its data. Every change to a client is made by the node that owns its
// connection (the node is the first 8 hex digits of the client id): mirror
// first, then Redis. A change asked for on another node (a backend calling
// joinGroup through node A for a client of node B) is sent to B as a
// request on B's channel and answered on A's (request/reply over pub/sub,
// bounded by the timeout), so that B's subscriptions (below) change before
// the call returns. Lists and counts (group members, uids, all clients) are
// read from Redis: they are cluster-wide.
//
// # Channels (P = the key prefix)
//
//	P n:<node>    one per node: sendToClient, closeClient, destroyClient and
//	              sendToAll-with-a-list for its clients; requests and replies
//	P all         every node: sendToAll
//	P g:<group>   the nodes that have a local member of group: sendToGroup
//	P u:<uid>     the nodes that have a local client bound to uid: sendToUid
//
// A node subscribes to g:<group> when its first local client joins the
// group and unsubscribes when its last one leaves (u:<uid> alike), and a
// join returns only once Redis confirmed the subscription: a sendToGroup
// issued after a join returned reaches the new member. So sendToGroup costs
// one PUBLISH per group, whatever the number of members and nodes, and
// reaches only nodes with members; Redis does the fan-out to them. The
// cost moves to joins and leaves that change a node's set: one SUBSCRIBE or
// UNSUBSCRIBE on the node's pub/sub connection. Redis handles millions of
// channels; a node's subscriptions are at most its distinct groups and uids.
//
// The sending node delivers to its own clients directly (no Redis round
// trip, and it keeps working while Redis is away) and publishes for the
// others; a node ignores the copies of its own messages. A message for
// several groups is published once per group; a receiving node that gets it
// on g_i delivers it to its members of g_i that are in none of g_1..g_i-1,
// so a client in several target groups receives it once.
//
// # Ordering
//
// Redis executes PUBLISHes one at a time and writes a subscriber's messages
// in that order on its one connection, and a node handles its pub/sub
// messages on one goroutine, in order, queueing each delivery with the
// client's other messages (transport.Hub.SendOrdered). So messages one
// sender publishes one after the other reach a client in that order,
// whichever channels they take. A Batch (batch.go) keeps it: a caller's
// queued PUBLISHes go in one pipeline, in order, before anything else it
// does reaches Redis.
//
// # Liveness and Redis outages
//
// maintain (one goroutine) heartbeats every Options.Heartbeat (a key with a
// TTL of Options.NodeTTL), sweeps dead nodes' clients, and re-publishes
// this node's clients from the mirror when its heartbeat was found missing
// (Redis restarted empty, or the TTL ran out during a pause) or a write to
// Redis failed (dirty). receive (one goroutine) reads the pub/sub
// connection; go-redis reconnects it and re-subscribes every channel after
// an error. The node is healthy when the last heartbeat succeeded, the
// pub/sub connection answered a ping within three heartbeats, and nothing
// waits to be re-published. While Redis is away, local delivery and changes
// to own clients keep working (changes are re-published when it returns);
// what needs another node or a cluster-wide list fails within the timeout
// with abi.ErrnoUnavailable.
//
// # Goroutines
//
// receive and maintain, started by Start and ended by Close; a small pool
// of workers (requestWorkers) runs requests from other nodes, because a
// request may wait for a subscription confirmation that only receive can
// read.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmgate/wasmgate/abi"
	"github.com/wasmgate/wasmgate/internal/registry"
	"github.com/wasmgate/wasmgate/internal/registry/redisreg"
)

// Defaults of Options.
const (
	DefaultNodeTTL   = 10 * time.Second
	DefaultHeartbeat = time.Second
	DefaultTimeout   = time.Second
)

// requestWorkers run requests from other nodes; requestQueue bounds those
// waiting. A full queue answers unavailable rather than blocking receive.
const (
	requestWorkers = 8
	requestQueue   = 4096
)

// maxClaimTries bounds the node ids tried when claiming one.
const maxClaimTries = 4096

// Options configure a Node.
type Options struct {
	// URL locates Redis (redisreg.NewClient's forms).
	URL string
	// Prefix starts every key and channel (redisreg.DefaultPrefix when
	// empty).
	Prefix string
	// NodeID is this node's id; 0 claims a free one.
	NodeID uint32
	// NodeTTL is how long a node's heartbeat lives: survivors remove a dead
	// node's clients within NodeTTL plus one Heartbeat.
	NodeTTL time.Duration
	// Heartbeat is how often the node renews its heartbeat and sweeps dead
	// nodes; a third of NodeTTL or less.
	Heartbeat time.Duration
	// Timeout bounds every Redis call and every request to another node.
	Timeout time.Duration
	// Limits are the per-client limits (the same on every node).
	Limits registry.Limits
	// Log receives the node's log lines.
	Log *slog.Logger
}

// Deliverer is the local side of delivery: what the server does with a
// message another node published for this node's clients. Its methods must
// not block on I/O: they run on the goroutine that reads the pub/sub
// connection.
type Deliverer interface {
	// DeliverGroups sends msg to the local members of groups[via] that are
	// in none of groups[:via], minus exclude.
	DeliverGroups(groups []string, via int, msg abi.Message, exclude []string)
	// DeliverUids sends msg to the local clients bound to uids[via].
	DeliverUids(uids []string, via int, msg abi.Message)
	// DeliverAll sends msg to every local client minus exclude.
	DeliverAll(msg abi.Message, exclude []string)
	// DeliverClients sends msg to the listed local clients minus exclude.
	DeliverClients(ids []string, msg abi.Message, exclude []string)
	// CloseLocal closes a local client (after final, when not nil).
	CloseLocal(id string, final *abi.Message, code int)
	// DestroyLocal drops a local client's connection at once.
	DestroyLocal(id string)
}

// Node is this process's membership in a cluster. Join creates it, Start
// starts its goroutines, Close leaves the cluster.
type Node struct {
	o      Options
	log    *slog.Logger
	id     uint32
	hex    string // id as 8 hex digits
	rdb    *redis.Client
	shared *redisreg.Registry
	local  *registry.Local
	reg    *Registry
	bus    *bus

	deliver Deliverer
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	kick    chan struct{} // wakes maintain early (the pub/sub reconnected)

	redisOK  atomic.Bool              // the last heartbeat succeeded
	dirty    atomic.Bool              // Redis may differ from the mirror: re-publish
	lastPong atomic.Int64             // UnixNano of the pub/sub connection's last answer
	alive    atomic.Pointer[[]string] // nodes seen alive by the last heartbeat
	stats    Stats
}

// Stats count what the node did; all fields are read with atomic loads.
type Stats struct {
	Published    atomic.Uint64 // messages published for other nodes
	Received     atomic.Uint64 // messages received from other nodes
	Requests     atomic.Uint64 // changes sent to other nodes' clients
	Republished  atomic.Uint64 // times this node re-published its clients
	Swept        atomic.Uint64 // dead nodes' clients removed by this node
	RedisErrors  atomic.Uint64 // failed Redis calls
	Malformed    atomic.Uint64 // channel messages that did not decode
	RequestsBusy atomic.Uint64 // requests refused because the queue was full
}

// Join connects to Redis, claims the node id (Options.NodeID, or a free one
// when 0) and drops whatever an earlier holder of the id left in Redis. A
// fixed id held by a live node is waited for up to one NodeTTL (a node
// restarted after a crash finds its own old heartbeat), then refused.
func Join(ctx context.Context, o Options) (*Node, error) {
	if o.Prefix == "" {
		o.Prefix = redisreg.DefaultPrefix
	}
	if o.NodeTTL <= 0 {
		o.NodeTTL = DefaultNodeTTL
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	rdb, err := redisreg.NewClient(o.URL, o.Timeout)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	id, err := claim(ctx, rdb, o)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	shared, err := redisreg.New(redisreg.Options{Client: rdb, Prefix: o.Prefix, Node: id, Limits: o.Limits, NodeTTL: o.NodeTTL, Timeout: o.Timeout})
	if err != nil {
		rdb.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if n, err := shared.Purge(ctx); err != nil {
		rdb.Close()
		return nil, fmt.Errorf("cluster: dropping what an earlier node %08x left: %w", id, err)
	} else if n > 0 {
		o.Log.Info("cluster: dropped clients an earlier holder of this node id left", "node", fmt.Sprintf("%08x", id), "clients", n)
	}
	n := &Node{
		o: o, log: o.Log, id: id, hex: fmt.Sprintf("%08x", id), rdb: rdb, shared: shared,
		local: registry.NewLocalWithLimits(o.Limits),
		kick:  make(chan struct{}, 1),
	}
	n.reg = &Registry{n: n}
	n.bus = newBus(n)
	n.redisOK.Store(true)
	return n, nil
}

// startWait is how long a starting node waits for Redis to answer: nodes
// and Redis are often started together (a machine boots, a demo script).
const startWait = 10 * time.Second

// claim returns the node id this node may use.
func claim(ctx context.Context, rdb *redis.Client, o Options) (uint32, error) {
	reachable := false
	try := func(id uint32) (bool, error) {
		deadline := time.Now().Add(startWait)
		for {
			cctx, cancel := context.WithTimeout(ctx, o.Timeout)
			ok, err := redisreg.Claim(cctx, rdb, o.Prefix, id, o.NodeTTL)
			cancel()
			if err == nil {
				reachable = true
				return ok, nil
			}
			if reachable || !isUnavailable(err) || time.Now().After(deadline) {
				return false, fmt.Errorf("cluster: redis %s: %w", redactURL(o.URL), err)
			}
			o.Log.Warn("cluster: waiting for redis", "redis", redactURL(o.URL), "err", err)
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
	if o.NodeID != 0 {
		deadline := time.Now().Add(o.NodeTTL + o.Heartbeat)
		for {
			ok, err := try(o.NodeID)
			if err != nil || ok {
				return o.NodeID, err
			}
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("cluster: node_id %d is in use by a live node (its heartbeat key %snode:%08x exists): give every node its own id, or 0 to claim a free one", o.NodeID, o.Prefix, o.NodeID)
			}
			o.Log.Warn("cluster: node id held by a live node, waiting for its heartbeat to expire", "node_id", o.NodeID, "ttl", o.NodeTTL)
			select {
			case <-ctx.Done():
				return 0, ctx.Err()
			case <-time.After(o.Heartbeat):
			}
		}
	}
	// Start at a random id so that nodes starting together do not all
	// race for 1, 2, 3...; ids stay small (1..4096) to read well in logs.
	start := rand.Uint32N(maxClaimTries)
	for i := range uint32(maxClaimTries) {
		id := (start+i)%maxClaimTries + 1
		ok, err := try(id)
		if err != nil {
			return 0, err
		}
		if ok {
			return id, nil
		}
	}
	return 0, fmt.Errorf("cluster: no free node id among %d", maxClaimTries)
}

// ID returns the node id.
func (n *Node) ID() uint32 { return n.id }

// Registry returns the cluster-wide registry the server's Gateway uses.
func (n *Node) Registry() *Registry { return n.reg }

// Local returns the mirror of this node's own clients, for local delivery.
func (n *Node) Local() *registry.Local { return n.local }

// Client returns the Redis connection pool, shared with the cluster
// key-value store.
func (n *Node) Client() *redis.Client { return n.rdb }

// Start subscribes to the node's channels and starts its goroutines; d
// receives what other nodes publish for this node's clients.
func (n *Node) Start(ctx context.Context, d Deliverer) error {
	n.deliver = d
	ctx, n.cancel = context.WithCancel(context.WithoutCancel(ctx))
	n.lastPong.Store(time.Now().UnixNano())
	n.bus.ps = n.rdb.Subscribe(ctx) // connects with the first SUBSCRIBE
	n.wg.Add(2 + requestWorkers)
	go func() { defer n.wg.Done(); n.bus.receive(ctx) }()
	for range requestWorkers {
		go func() { defer n.wg.Done(); n.bus.work(ctx) }()
	}
	if err := n.bus.start(ctx); err != nil {
		n.cancel()
		n.wg.Done() // maintain was never started
		n.bus.close()
		n.wg.Wait()
		return fmt.Errorf("cluster: subscribing to the node's channels: %w", err)
	}
	go func() { defer n.wg.Done(); n.maintain(ctx) }()
	return nil
}

// Close leaves the cluster: it removes this node's clients and heartbeat
// from Redis (so the others need not wait for the TTL, and the id is free
// again), stops the goroutines and closes the connections.
func (n *Node) Close(ctx context.Context) error {
	if n.cancel != nil {
		n.cancel()
	}
	n.bus.close()
	n.wg.Wait()
	lctx, cancel := context.WithTimeout(ctx, 5*n.o.Timeout)
	defer cancel()
	err := n.shared.Leave(lctx)
	if cerr := n.rdb.Close(); err == nil {
		err = cerr
	}
	return err
}

// maintain heartbeats, re-publishes and sweeps until ctx ends.
func (n *Node) maintain(ctx context.Context) {
	t := time.NewTicker(n.o.Heartbeat)
	defer t.Stop()
	var lastWarn time.Time
	warn := func(msg string, err error) {
		n.stats.RedisErrors.Add(1)
		if time.Since(lastWarn) >= 10*time.Second { // an outage logs a line per 10 s, not per tick
			lastWarn = time.Now()
			n.log.Warn(msg, "node", n.hex, "err", err)
		}
	}
	for {
		lost, err := n.shared.Heartbeat(ctx)
		switch {
		case err != nil:
			if n.redisOK.Swap(false) {
				n.log.Warn("cluster: redis unreachable; serving local clients, cross-node calls fail until it returns", "node", n.hex, "err", err)
			} else {
				warn("cluster: heartbeat failed", err)
			}
		default:
			if !n.redisOK.Swap(true) {
				n.log.Info("cluster: redis reachable again", "node", n.hex)
				n.bus.flush(ctx)
			}
			if lost || n.dirty.Load() {
				if err := n.republish(ctx); err != nil {
					warn("cluster: re-publishing this node's clients failed", err)
				}
			}
			if removed, err := n.shared.Sweep(ctx); err != nil {
				warn("cluster: sweep failed", err)
			} else if removed > 0 {
				n.stats.Swept.Add(uint64(removed))
				n.log.Info("cluster: removed a dead node's clients", "clients", removed)
			}
			if alive, err := n.aliveNodes(ctx); err == nil {
				n.alive.Store(&alive)
			}
		}
		if n.bus.stale() {
			n.bus.ping(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.kick:
		}
	}
}

// republish makes Redis hold exactly the mirror's clients for this node.
func (n *Node) republish(ctx context.Context) error {
	n.dirty.Store(false)
	clients, err := n.shared.Snapshot(ctx, n.local)
	if err == nil {
		err = n.shared.Republish(ctx, clients)
	}
	if err != nil {
		n.dirty.Store(true)
		return err
	}
	n.stats.Republished.Add(1)
	n.log.Info("cluster: presence re-published", "node", n.hex, "clients", len(clients))
	return nil
}

// wake asks maintain to run now.
func (n *Node) wake() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// redisFailed records a failed write of an own client's state: the mirror
// has it, Redis may not, so maintain re-publishes once Redis answers.
func (n *Node) redisFailed(err error) {
	n.stats.RedisErrors.Add(1)
	n.dirty.Store(true)
	_ = err
}

// errRedisDown is what cross-node calls return at once while the last
// heartbeat failed: without it, every call would wait its whole timeout on
// a Redis that stopped answering (a paused process, a dead link).
func (n *Node) errRedisDown() error {
	if n.redisOK.Load() {
		return nil
	}
	return unavailable("redis is unreachable (the last heartbeat failed)", nil)
}

// Healthy reports whether the node is fully part of the cluster: Redis
// answers, the pub/sub connection is up, and Redis holds this node's
// clients as they are.
func (n *Node) Healthy() bool {
	return n.redisOK.Load() && n.bus.up() && !n.dirty.Load()
}

// Status is the cluster part of /status.
type Status struct {
	Node        string   `json:"node"`
	Redis       string   `json:"redis"` // "ok" or "unreachable"
	PubSub      string   `json:"pubsub"`
	Healthy     bool     `json:"healthy"`
	NodesAlive  []string `json:"nodes_alive"`
	Channels    int      `json:"channels"`
	Published   uint64   `json:"published"`
	Received    uint64   `json:"received"`
	Requests    uint64   `json:"requests"`
	Republished uint64   `json:"republished"`
	Swept       uint64   `json:"swept"`
	RedisErrors uint64   `json:"redis_errors"`
}

// Status reports the node's view of the cluster without calling Redis
// (/healthz must answer while Redis is away): NodesAlive is what the last
// successful heartbeat saw.
func (n *Node) Status() Status {
	st := Status{
		Node: n.hex, Redis: "ok", PubSub: "ok", Healthy: n.Healthy(),
		Channels:    n.bus.channels(),
		Published:   n.stats.Published.Load(),
		Received:    n.stats.Received.Load(),
		Requests:    n.stats.Requests.Load(),
		Republished: n.stats.Republished.Load(),
		Swept:       n.stats.Swept.Load(),
		RedisErrors: n.stats.RedisErrors.Load(),
	}
	if !n.redisOK.Load() {
		st.Redis = "unreachable"
	}
	if !n.bus.up() {
		st.PubSub = "down"
	}
	st.NodesAlive = []string{}
	if p := n.alive.Load(); p != nil {
		st.NodesAlive = append(st.NodesAlive, (*p)...)
	}
	return st
}

// aliveNodes lists the nodes whose heartbeat exists.
func (n *Node) aliveNodes(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, n.o.Timeout)
	defer cancel()
	nodes, err := n.rdb.SMembers(ctx, n.o.Prefix+"nodes").Result()
	if err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, nil
	}
	keys := make([]string, len(nodes))
	for i, id := range nodes {
		keys[i] = n.o.Prefix + "node:" + id
	}
	// One EXISTS per node in a pipeline: the heartbeat keys may live in
	// different slots, and the count alone would not say which are alive.
	cmds := make([]*redis.IntCmd, len(keys))
	_, err = n.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Exists(ctx, k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := []string{}
	for i, c := range cmds {
		if c.Val() == 1 {
			out = append(out, nodes[i])
		}
	}
	return out, nil
}

// unavailable wraps err (or a description) as abi.ErrnoUnavailable.
func unavailable(what string, err error) error {
	if err != nil && abi.ErrnoOf(err) == abi.ErrnoUnavailable {
		return fmt.Errorf("cluster: %s: %w", what, err)
	}
	if err != nil {
		return fmt.Errorf("cluster: %s: %v: %w", what, err, abi.ErrnoUnavailable)
	}
	return fmt.Errorf("cluster: %s: %w", what, abi.ErrnoUnavailable)
}

// isUnavailable reports whether err means Redis could not be reached.
func isUnavailable(err error) bool {
	return err != nil && errors.Is(err, abi.ErrnoUnavailable)
}

// redactURL hides a password in a Redis URL for logs and errors.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "(unparsable redis url)"
	}
	return p.Redacted()
}

// Redacted returns a Redis URL with its password hidden, for logs.
func Redacted(url string) string { return redactURL(url) }

// RouteRedisLogs sends go-redis's own log lines to log at debug level.
// go-redis has one logger for the whole process (it prints reconnect
// attempts to stderr by default); the program's main calls this once.
func RouteRedisLogs(log *slog.Logger) { redis.SetLogger(redisLogger{log}) }

type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Debug(fmt.Sprintf(format, v...), "component", "go-redis")
}
