package push

import (
	"bytes"
	"context"

	"github.com/wasmgate/wasmgate/internal/wire"
)

// Publish pipelining, in cluster mode only. A send to groups, uids or
// everyone delivers to this node's clients at once and PUBLISHes for the
// other nodes, and is answered only once Redis took the PUBLISH; run one
// after the other, a pipelining backend's sends would cost a Redis round
// trip each. So while a caller has more work buffered (a text-port
// connection more complete lines, an HTTP API batch more items), the sends
// among it queue their PUBLISHes in the caller's PublishBatch and their
// answers are held. The batch goes to Redis as one pipeline when the
// caller runs out of buffered work, when it is full (maxBatched,
// maxBatchBytes), or before any other command or answer: another command
// could reach Redis, or a client, ahead of a held message (a sendToClient
// to a member), and its answer would overtake the held ones. The held
// answers are then written in order, each ok only if its PUBLISHes were
// taken, else the unavailable error it gets today. All of it runs on the
// caller's goroutine; on a single node there is no batch and none of this
// runs.
//
// Ordering stays as it was: a send still delivers to this node's clients
// before the next command runs, and its PUBLISHes reach Redis in command
// order (one pipeline at a time, its commands in order), so no message of
// a connection overtakes an earlier one on any client.

// Batch bounds: how many PUBLISHes and payload bytes a caller may queue
// before they are sent. They bound the memory held and the delay a held
// message can take; past a few hundred commands a round trip is no longer
// what costs.
const (
	maxBatched    = 256
	maxBatchBytes = 1 << 20
)

// isBatchable reports whether command name's cluster part is PUBLISHes
// only, which a PublishBatch can queue.
func isBatchable(name string) bool {
	switch name {
	case "sendToGroup", "sendToUid", "sendToAll":
		return true
	}
	return false
}

// publishPipe is one caller's batch and the answers it holds.
type publishPipe struct {
	batch PublishBatch
	ctx   context.Context // the Ports' ctx, queueing into batch
	held  []heldAnswer
}

// heldAnswer is a command that ran, whose answer waits for its
// PUBLISHes, batch entries [from, to).
type heldAnswer struct {
	cmd      *timedCommand
	id       []byte // a copy: the request's bytes are gone by then
	result   any
	err      error
	from, to int
}

// answerer appends one answer: the text port's line, or an item of an
// HTTP API batch.
type answerer func(dst, id []byte, result any, err error) []byte

// newPipe returns a caller's pipe, nil on a single node.
func (p *Ports) newPipe() *publishPipe {
	if p.node == nil {
		return nil
	}
	b := p.node.NewPublishBatch()
	if b == nil {
		return nil
	}
	return &publishPipe{batch: b, ctx: b.With(p.ctx)}
}

// batchable returns r's command if its PUBLISHes can be batched.
func (p *Ports) batchable(r *wire.Request) *timedCommand {
	if len(r.Cmd) >= 2 && r.Cmd[0] == '"' {
		if c, ok := p.commands[string(r.Cmd[1:len(r.Cmd)-1])]; ok && c.batchable {
			return c
		}
	}
	return nil
}

// holding reports whether answers are held.
func (pp *publishPipe) holding() bool { return pp != nil && len(pp.held) > 0 }

// send runs batchable command c, queueing its PUBLISHes, and holds its
// answer (or appends it at once when nothing is queued or held).
func (pp *publishPipe) send(c *timedCommand, gw Gateway, r *wire.Request, dst []byte, add answerer) []byte {
	from := pp.batch.Len()
	result, err := c.timed(pp.ctx, gw, r)
	to := pp.batch.Len()
	if to == from && len(pp.held) == 0 {
		c.count(err)
		return add(dst, r.ID, result, err)
	}
	pp.held = append(pp.held, heldAnswer{cmd: c, id: bytes.Clone(r.ID), result: result, err: err, from: from, to: to})
	if pp.batch.Len() >= maxBatched || pp.batch.Size() >= maxBatchBytes {
		dst = pp.settle(dst, add)
	}
	return dst
}

// settle sends the batch and appends the held answers, in order.
func (pp *publishPipe) settle(dst []byte, add answerer) []byte {
	if !pp.holding() {
		return dst
	}
	errs := pp.batch.Exec(pp.ctx)
	for i := range pp.held {
		h := &pp.held[i]
		err := h.err
		if err == nil && errs != nil {
			for _, e := range errs[h.from:h.to] {
				if e != nil {
					err = e
					break
				}
			}
		}
		h.cmd.count(err)
		dst = add(dst, h.id, h.result, err)
		*h = heldAnswer{}
	}
	pp.held = pp.held[:0]
	return dst
}
