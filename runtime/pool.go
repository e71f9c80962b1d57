package runtime

import (
	"context"
	"sync"
)

// pool hands out at most cap(tokens) instances at a time. Idle instances are
// reused; an instance that failed is dropped and a new one is made on demand,
// so a trapping guest never shrinks the pool.
type pool struct {
	tokens      chan struct{}
	newInstance func(context.Context) (*instance, error)

	mu   sync.Mutex // guards idle, live and closed
	idle []*instance
	// live holds every open instance, idle or busy, for the watchdog.
	live map[*instance]struct{}
	// closed makes put close instances instead of keeping them.
	closed bool
}

func newPool(size int, newInstance func(context.Context) (*instance, error)) *pool {
	return &pool{tokens: make(chan struct{}, size), newInstance: newInstance, live: map[*instance]struct{}{}}
}

// get returns an instance for the caller's exclusive use, waiting while all
// are busy.
func (p *pool) get(ctx context.Context) (*instance, error) {
	select {
	case p.tokens <- struct{}{}: // a free slot wins even if ctx is done
	default:
		select {
		case p.tokens <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
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
