package cluster

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Batch queues the PUBLISHes of consecutive sends of one caller (a
// pipelining text-port connection, an HTTP API batch) so that they reach
// Redis in one round trip instead of one each. It has no goroutine: the
// caller that owns it queues (sends run under With's context) and then
// calls Exec, which writes the queued PUBLISHes as one go-redis pipeline,
// in the order they were queued, and returns each one's outcome. The
// caller answers a send only after Exec, so a send is still acknowledged
// only once Redis took its message.
//
// Order is kept: Redis runs a pipeline's commands in order, and a caller
// runs one Exec at a time, so the messages of one caller reach the other
// nodes in the order they were sent. The caller must Exec before anything
// else it does that reaches Redis (another command, a sendToClient), or
// that could overtake a queued message: the text port does it before any
// command that is not a send it batches.
//
// A Batch is not safe for concurrent use.
type Batch struct {
	n    *Node
	chs  []string
	msgs [][]byte
	size int
}

type batchKey struct{}

// NewBatch returns an empty batch of this node's publishes.
func (n *Node) NewBatch() *Batch { return &Batch{n: n} }

// With returns ctx under which this node's group, uid and sendToAll
// publishes are queued in b instead of sent (batchOf).
func (b *Batch) With(ctx context.Context) context.Context {
	return context.WithValue(ctx, batchKey{}, b)
}

// Len is the number of PUBLISHes queued.
func (b *Batch) Len() int { return len(b.chs) }

// Size is the number of payload bytes queued: the caller bounds it.
func (b *Batch) Size() int { return b.size }

// batchOf returns the batch ctx queues n's publishes in, or nil.
func (n *Node) batchOf(ctx context.Context) *Batch {
	if b, ok := ctx.Value(batchKey{}).(*Batch); ok && b.n == n {
		return b
	}
	return nil
}

func (b *Batch) add(ch string, payload []byte) {
	b.chs = append(b.chs, ch)
	b.msgs = append(b.msgs, payload)
	b.size += len(payload)
}

// Exec sends the queued PUBLISHes in one round trip and empties the
// batch. errs[i] is the outcome of the i-th queued PUBLISH (unavailable
// when Redis could not take it); errs is nil when all succeeded. It waits
// at most the node's timeout.
func (b *Batch) Exec(ctx context.Context) (errs []error) {
	n := b.n
	k := len(b.chs)
	if k == 0 {
		return nil
	}
	defer b.reset()
	fail := func(err error) []error {
		errs := make([]error, k)
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	// Queued while Redis answered, but the heartbeat failed since: fail
	// fast rather than wait out a dial.
	if err := n.errRedisDown(); err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, n.o.Timeout)
	defer cancel()
	if k == 1 {
		if err := n.rdb.Publish(ctx, b.chs[0], b.msgs[0]).Err(); err != nil {
			n.stats.RedisErrors.Add(1)
			return fail(unavailable("publish", err))
		}
		n.stats.Published.Add(1)
		return nil
	}
	p := n.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, k)
	for i, ch := range b.chs {
		cmds[i] = p.Publish(ctx, ch, b.msgs[i])
	}
	if _, err := p.Exec(ctx); err == nil {
		n.stats.Published.Add(uint64(k))
		return nil
	}
	// A connection lost mid-pipeline fails the PUBLISHes from there on:
	// those before it were taken.
	errs = make([]error, k)
	ok := 0
	for i, c := range cmds {
		if err := c.Err(); err != nil {
			errs[i] = unavailable("publish", err)
		} else {
			ok++
		}
	}
	n.stats.Published.Add(uint64(ok))
	n.stats.RedisErrors.Add(1)
	return errs
}

func (b *Batch) reset() {
	clear(b.msgs) // the payloads may be large: do not keep them alive
	b.chs, b.msgs, b.size = b.chs[:0], b.msgs[:0], 0
}
