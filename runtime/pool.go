package runtime

import (
	"context"
	"sync"
	"sync/atomic"
)

// pool hands out at most cap(tokens) instances at a time. Idle instances are
// reused; an instance that failed is dropped and a new one is made on demand,
// so a trapping guest never shrinks the pool.
//
// When every instance is busy, callers wait in a queue of at most
// cap(queue) places (Go channel senders are served in order). A caller that
// finds the queue full too pauses before it even joins: for a client event
// the caller is that client's reader goroutine, which then stops reading
// its socket, so TCP flow control pushes back on the sender. Either way a
// caller holds one event, so memory stays bounded by callers, never by
// what clients send.
type pool struct {
	tokens      chan struct{}
	queue       chan struct{}
	newInstance func(context.Context) (*instance, error)
	waiting     atomic.Int64 // callers in the queue
	paused      atomic.Int64 // callers waiting for a place in the queue
	pauses      atomic.Int64 // times a caller had to pause, ever

	mu   sync.Mutex // guards idle, live and closed
	idle []*instance
	// live holds every open instance, idle or busy, for the watchdog.
	live map[*instance]struct{}
	// closed makes put close instances instead of keeping them.
	closed bool
}

func newPool(size, queue int, newInstance func(context.Context) (*instance, error)) *pool {
	return &pool{
		tokens: make(chan struct{}, size), queue: make(chan struct{}, max(queue, 1)),
		newInstance: newInstance, live: map[*instance]struct{}{},
	}
}

// get returns an instance for the caller's exclusive use, waiting while all
// are busy.
func (p *pool) get(ctx context.Context) (*instance, error) {
	select {
	case p.tokens <- struct{}{}: // a free slot wins even if ctx is done
	default:
		if err := p.wait(ctx); err != nil {
			return nil, err
		}
	}
	if inst := p.popIdle(); inst != nil {
		return inst, nil
	}
	inst, err := p.newInstance(ctx)
	if err != nil {
		<-p.tokens
		return nil, err
	}
	p.mu.Lock()
	p.live[inst] = struct{}{}
	p.mu.Unlock()
	return inst, nil
}

// wait takes a place in the queue (pausing first if it is full) and then
// an instance slot.
func (p *pool) wait(ctx context.Context) error {
	select {
	case p.queue <- struct{}{}:
	default:
		p.paused.Add(1)
		p.pauses.Add(1)
		select {
		case p.queue <- struct{}{}:
			p.paused.Add(-1)
		case <-ctx.Done():
			p.paused.Add(-1)
			return ctx.Err()
		}
	}
	p.waiting.Add(1)
	defer func() { p.waiting.Add(-1); <-p.queue }()
	select {
	case p.tokens <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pool) popIdle() *instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	inst := p.idle[n-1]
	p.idle = p.idle[:n-1]
	return inst
}

// put returns inst; healthy false (its call failed) closes it instead.
func (p *pool) put(inst *instance, healthy bool) {
	p.mu.Lock()
	keep := healthy && !p.closed
	if keep {
		p.idle = append(p.idle, inst)
	} else {
		delete(p.live, inst)
	}
	p.mu.Unlock()
	if !keep {
		inst.close()
	}
	<-p.tokens
}

// close closes idle instances now and busy ones when they come back.
func (p *pool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	for _, inst := range idle {
		delete(p.live, inst)
	}
	p.mu.Unlock()
	for _, inst := range idle {
		inst.close()
	}
}

// poolStats is a snapshot of a pool.
type poolStats struct {
	Size, Live, Idle, Busy, Waiting, Paused int
	Pauses                                  int64
}

func (p *pool) stats() poolStats {
	p.mu.Lock()
	live, idle := len(p.live), len(p.idle)
	p.mu.Unlock()
	return poolStats{
		Size: cap(p.tokens), Live: live, Idle: idle, Busy: len(p.tokens),
		Waiting: int(p.waiting.Load()), Paused: int(p.paused.Load()), Pauses: p.pauses.Load(),
	}
}

// each calls fn for every open instance, outside the lock.
func (p *pool) each(fn func(*instance)) {
	p.mu.Lock()
	all := make([]*instance, 0, len(p.live))
	for inst := range p.live {
		all = append(all, inst)
	}
	p.mu.Unlock()
	for _, inst := range all {
		fn(inst)
	}
}
