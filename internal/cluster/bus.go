package cluster

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wasmgate/wasmgate/abi"
)

// bus is the node's side of the Redis channels: its one pub/sub
// connection (subscriptions and the receive loop), publishing, and
// requests to other nodes with their replies. The design is in node.go's
// package comment.
type bus struct {
	n       *Node
	ps      *redis.PubSub
	nodeCh  string // P n:<this node>
	allCh   string // P all
	groupCh string // P g: (+ group)
	uidCh   string // P u: (+ uid)

	// mu orders subscription changes: the SUBSCRIBE and UNSUBSCRIBE
	// commands reach Redis in the order the mirror changed.
	mu       sync.Mutex
	subs     map[string]*sub
	deferred map[string]bool // changes to send once Redis is back (flush)

	pendMu  sync.Mutex
	pending map[uint64]chan envelope // request id → its reply
	seq     atomic.Uint64

	requests chan envelope // from other nodes, run by work
	isUp     atomic.Bool
	everUp   atomic.Bool // the connection has been up once (later ups are reconnects)
	closing  atomic.Bool
}

// sub is one channel's subscription state. issued counts SUBSCRIBE
// commands sent for it and confirmed their confirmations, so a waiter
// knows when its own SUBSCRIBE (number issued at the time) went through.
type sub struct {
	on                bool
	issued, confirmed uint64
	waiters           []subWaiter
}

type subWaiter struct {
	seq  uint64
	done chan struct{}
}

func newBus(n *Node) *bus {
	p := n.o.Prefix
	return &bus{
		n: n, nodeCh: p + "n:" + n.hex, allCh: p + "all", groupCh: p + "g:", uidCh: p + "u:",
		subs:     map[string]*sub{},
		deferred: map[string]bool{},
		pending:  map[uint64]chan envelope{},
		requests: make(chan envelope, requestQueue),
	}
}

// start opens the pub/sub connection and subscribes to the node's own
// channel and the all channel, waiting for Redis to confirm.
func (b *bus) start(ctx context.Context) error {
	for _, ch := range []string{b.nodeCh, b.allCh} {
		w := b.want(ctx, ch, func() bool { return true })
		if err := b.wait(ctx, w); err != nil {
			return err
		}
	}
	return nil
}

func (b *bus) close() {
	b.closing.Store(true)
	if b.ps != nil {
		_ = b.ps.Close()
	}
}

// up reports whether the pub/sub connection works: it is connected and
// answered within three heartbeats.
func (b *bus) up() bool {
	return b.isUp.Load() && time.Since(time.Unix(0, b.n.lastPong.Load())) < 3*b.n.o.Heartbeat
}

// stale reports whether the connection has been silent for a heartbeat:
// maintain then pings it, so that a Redis that stopped answering (paused,
// or a dead link without a reset) is noticed.
func (b *bus) stale() bool {
	return time.Since(time.Unix(0, b.n.lastPong.Load())) >= b.n.o.Heartbeat
}

func (b *bus) ping(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, b.n.o.Timeout)
	defer cancel()
	_ = b.ps.Ping(ctx)
}

func (b *bus) channels() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := 0
	for _, s := range b.subs {
		if s.on {
			k++
		}
	}
	return k
}

// want makes the subscription to ch match desired(), and returns what to
// wait for before a message published to ch is sure to reach this node
// (nil: nothing). desired reads the mirror under b.mu, and the command is
// sent under it: of two changes racing on one group (a join and the last
// leave), the one that sends its command last has read the mirror last, so
// the subscription ends as the mirror is. The wait happens outside b.mu.
func (b *bus) want(ctx context.Context, ch string, desired func() bool) *subWaiter {
	b.mu.Lock()
	defer b.mu.Unlock()
	on := desired()
	s := b.subs[ch]
	if s == nil {
		if !on {
			return nil
		}
		s = &sub{}
		b.subs[ch] = s
	}
	if s.on == on {
		if on && s.confirmed < s.issued { // someone else's SUBSCRIBE is on its way
			w := subWaiter{seq: s.issued, done: make(chan struct{})}
			s.waiters = append(s.waiters, w)
			return &w
		}
		return nil
	}
	s.on = on
	if b.everUp.Load() && (!b.up() || !b.n.redisOK.Load()) {
		// Redis is known to be away: a command now could wait out a dial
		// (go-redis reconnects inside Subscribe) under b.mu, and hold up
		// every other change. flush sends it once the connection is back.
		b.deferred[ch] = on
		return nil
	}
	delete(b.deferred, ch)
	cctx, cancel := context.WithTimeout(ctx, b.n.o.Timeout)
	defer cancel()
	if !on {
		// go-redis forgets the channel even when the command fails, so a
		// reconnect does not subscribe it again.
		_ = b.ps.Unsubscribe(cctx, ch)
		if s.confirmed >= s.issued && len(s.waiters) == 0 {
			delete(b.subs, ch)
		}
		return nil
	}
	s.issued++
	w := subWaiter{seq: s.issued, done: make(chan struct{})}
	s.waiters = append(s.waiters, w)
	// A failed write leaves the channel in go-redis's set: the reconnect
	// that follows subscribes it, and the confirmation releases w.
	_ = b.ps.Subscribe(cctx, ch)
	return &w
}

// flush sends the subscription changes deferred while Redis was away.
func (b *bus) flush(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, b.n.o.Timeout)
	defer cancel()
	for ch, on := range b.deferred {
		delete(b.deferred, ch)
		s := b.subs[ch]
		if s == nil || s.on != on {
			continue // changed again since, and sent then
		}
		if on {
			s.issued++
			_ = b.ps.Subscribe(cctx, ch)
		} else {
			_ = b.ps.Unsubscribe(cctx, ch)
			if s.confirmed >= s.issued && len(s.waiters) == 0 {
				delete(b.subs, ch)
			}
		}
	}
}

// wait blocks until w's subscription is confirmed. While the pub/sub
// connection is down it does not wait: the reconnect re-subscribes, and
// the node is not healthy until then.
func (b *bus) wait(ctx context.Context, w *subWaiter) error {
	if w == nil {
		return nil
	}
	if !b.up() || !b.n.redisOK.Load() {
		return nil // known down: the confirmation will come with the reconnect
	}
	t := time.NewTimer(b.n.o.Timeout)
	defer t.Stop()
	select {
	case <-w.done:
		return nil
	case <-t.C:
		if !b.up() {
			return nil
		}
		return unavailable("redis did not confirm a subscription in time", nil)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// confirmed records Redis's confirmation of a SUBSCRIBE to ch.
func (b *bus) confirm(ch string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.subs[ch]
	if s == nil {
		return
	}
	s.confirmed++
	if s.confirmed > s.issued { // go-redis re-subscribed after a reconnect
		s.issued = s.confirmed
	}
	keep := s.waiters[:0]
	for _, w := range s.waiters {
		if w.seq <= s.confirmed {
			close(w.done)
		} else {
			keep = append(keep, w)
		}
	}
	s.waiters = keep
	if !s.on && s.confirmed >= s.issued && len(s.waiters) == 0 {
		delete(b.subs, ch)
	}
}

// receive reads the pub/sub connection until ctx ends.
func (b *bus) receive(ctx context.Context) {
	backoff := 50 * time.Millisecond
	for {
		m, err := b.ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil || b.closing.Load() {
				return
			}
			if b.isUp.Swap(false) {
				b.n.log.Warn("cluster: pub/sub connection lost; reconnecting", "node", b.n.hex, "err", err)
			}
			b.n.stats.RedisErrors.Add(1)
			select { // the next Receive reconnects and re-subscribes
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 500*time.Millisecond)
			continue
		}
		backoff = 50 * time.Millisecond
		b.n.lastPong.Store(time.Now().UnixNano())
		if !b.isUp.Swap(true) {
			if b.everUp.Swap(true) {
				// Reconnected: Redis may have restarted empty. Not healthy
				// until maintain has re-published this node's clients.
				b.n.dirty.Store(true)
			}
			b.n.wake()
			go b.flush(ctx)
		}
		switch v := m.(type) {
		case *redis.Subscription:
			if v.Kind == "subscribe" {
				b.confirm(v.Channel)
			}
		case *redis.Message:
			b.handle(ctx, v.Channel, []byte(v.Payload))
		}
	}
}

// handle acts on one channel message.
func (b *bus) handle(ctx context.Context, ch string, payload []byte) {
	m, err := decode(payload)
	if err != nil {
		b.n.stats.Malformed.Add(1)
		return
	}
	n := b.n
	switch m.kind {
	case kindGroups, kindUids, kindAll, kindUngroup:
		if m.origin == n.id { // delivered locally by the sender
			return
		}
	}
	n.stats.Received.Add(1)
	msg := abi.Message{Data: m.data, Binary: m.binary}
	switch m.kind {
	case kindGroups:
		if via := indexOf(m.names, strings.TrimPrefix(ch, b.groupCh)); via >= 0 {
			n.deliver.DeliverGroups(m.names, via, msg, m.exclude)
		}
	case kindUids:
		if via := indexOf(m.names, strings.TrimPrefix(ch, b.uidCh)); via >= 0 {
			n.deliver.DeliverUids(m.names, via, msg)
		}
	case kindAll:
		n.deliver.DeliverAll(msg, m.exclude)
	case kindClients:
		n.deliver.DeliverClients(m.names, msg, m.exclude)
	case kindClose:
		if len(m.names) == 1 {
			var final *abi.Message
			if m.final {
				final = &msg
			}
			n.deliver.CloseLocal(m.names[0], final, int(m.code))
		}
	case kindDestroy:
		if len(m.names) == 1 {
			n.deliver.DestroyLocal(m.names[0])
		}
	case kindUngroup:
		if len(m.names) == 1 {
			n.reg.forgetGroup(ctx, m.names[0])
		}
	case kindRequest:
		select {
		case b.requests <- m:
		default:
			n.stats.RequestsBusy.Add(1)
			b.reply(ctx, m, unavailable(fmt.Sprintf("node %s has %d requests waiting", n.hex, requestQueue), nil))
		}
	case kindReply:
		b.pendMu.Lock()
		c := b.pending[m.req]
		delete(b.pending, m.req)
		b.pendMu.Unlock()
		if c != nil {
			c <- m
		}
	default:
		n.stats.Malformed.Add(1)
	}
}

func indexOf(names []string, name string) int {
	for i, s := range names {
		if s == name {
			return i
		}
	}
	return -1
}

// work runs requests from other nodes until ctx ends.
func (b *bus) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-b.requests:
			b.reply(ctx, m, b.n.reg.apply(ctx, m))
		}
	}
}

// reply answers request m with err's code and text.
func (b *bus) reply(ctx context.Context, m envelope, err error) {
	r := envelope{kind: kindReply, origin: b.n.id, req: m.req, code: uint64(abi.ErrnoOf(err))}
	if err != nil {
		r.data = []byte(err.Error())
	}
	_, _ = b.publish(ctx, fmt.Sprintf("%sn:%08x", b.n.o.Prefix, m.origin), &r)
}

// publish sends m on ch and returns how many nodes received it.
func (b *bus) publish(ctx context.Context, ch string, m *envelope) (int64, error) {
	if err := b.n.errRedisDown(); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, b.n.o.Timeout)
	defer cancel()
	k, err := b.n.rdb.Publish(ctx, ch, m.encode()).Result()
	if err != nil {
		b.n.stats.RedisErrors.Add(1)
		return 0, unavailable("publish", err)
	}
	b.n.stats.Published.Add(1)
	return k, nil
}

// scriptToClient publishes to a client's node only if that node is alive
// and has the client: one round trip, and a client that is gone is
// not_found as on one node. ARGV: prefix, node, client id, payload.
var scriptToClient = redis.NewScript(`
local P, n = ARGV[1], ARGV[2]
if redis.call('EXISTS', P .. 'node:' .. n) == 0 or
   redis.call('SISMEMBER', P .. 'node:' .. n .. ':clients', ARGV[3]) == 0 then
  return -1
end
return redis.call('PUBLISH', P .. 'n:' .. n, ARGV[4])
`)

// toClient publishes m for client id of node owner.
func (b *bus) toClient(ctx context.Context, owner, id string, m *envelope) error {
	if err := b.n.errRedisDown(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, b.n.o.Timeout)
	defer cancel()
	k, err := scriptToClient.Run(ctx, b.n.rdb, nil, b.n.o.Prefix, owner, id, m.encode()).Int64()
	if err != nil {
		b.n.stats.RedisErrors.Add(1)
		return unavailable("send to client "+id, err)
	}
	if k <= 0 {
		return fmt.Errorf("client %q: %w", id, abi.ErrnoNotFound)
	}
	b.n.stats.Published.Add(1)
	return nil
}

// request asks node owner to apply a change to one of its clients and
// waits for the answer, at most the timeout.
func (b *bus) request(ctx context.Context, owner string, m envelope) error {
	m.kind, m.origin = kindRequest, b.n.id
	m.req = b.seq.Add(1)
	c := make(chan envelope, 1)
	b.pendMu.Lock()
	b.pending[m.req] = c
	b.pendMu.Unlock()
	defer func() {
		b.pendMu.Lock()
		delete(b.pending, m.req)
		b.pendMu.Unlock()
	}()
	b.n.stats.Requests.Add(1)
	k, err := b.publish(ctx, b.n.o.Prefix+"n:"+owner, &m)
	if err != nil {
		return err
	}
	if k == 0 {
		id := ""
		if len(m.names) > 0 {
			id = m.names[0]
		}
		return fmt.Errorf("client %q: its node %s is not running: %w", id, owner, abi.ErrnoNotFound)
	}
	t := time.NewTimer(b.n.o.Timeout)
	defer t.Stop()
	select {
	case r := <-c:
		if r.code == 0 {
			return nil
		}
		return fmt.Errorf("node %s: %s: %w", owner, r.data, abi.Errno(r.code))
	case <-t.C:
		return unavailable(fmt.Sprintf("node %s did not answer within %s", owner, b.n.o.Timeout), nil)
	case <-ctx.Done():
		return ctx.Err()
	}
}
