package server

import (
	"hash/maphash"
	"sync"
)

// hub holds the clients connected to this node, for delivery. Which clients
// exist cluster-wide, and their uids and groups, is the Registry's job; the
// hub only maps a local client id to its connection.
type hub struct {
	seed   maphash.Seed
	shards [hubShards]hubShard
}

const hubShards = 64

type hubShard struct {
	mu    sync.RWMutex // guards conns
	conns map[string]*conn
}

func newHub() *hub {
	h := &hub{seed: maphash.MakeSeed()}
	for i := range h.shards {
		h.shards[i].conns = make(map[string]*conn)
	}
	return h
}

func (h *hub) shard(id string) *hubShard {
	return &h.shards[maphash.String(h.seed, id)%hubShards]
}

func (h *hub) add(c *conn) {
	s := h.shard(c.id)
	s.mu.Lock()
	s.conns[c.id] = c
	s.mu.Unlock()
}

func (h *hub) remove(id string) {
	s := h.shard(id)
	s.mu.Lock()
	delete(s.conns, id)
	s.mu.Unlock()
}

func (h *hub) get(id string) *conn {
	s := h.shard(id)
	s.mu.RLock()
	c := s.conns[id]
	s.mu.RUnlock()
	return c
}

// getBytes is get for an id held as bytes (no string allocated).
func (h *hub) getBytes(id []byte) *conn {
	s := &h.shards[maphash.Bytes(h.seed, id)%hubShards] // hashes as maphash.String does
	s.mu.RLock()
	c := s.conns[string(id)]
	s.mu.RUnlock()
	return c
}

// each calls fn for every connection, outside the shard locks (on a
// snapshot), so fn may block or send.
func (h *hub) each(fn func(*conn)) {
	var batch []*conn
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		for _, c := range s.conns {
			batch = append(batch, c)
		}
		s.mu.RUnlock()
		for _, c := range batch {
			fn(c)
		}
		batch = batch[:0]
	}
}

func (h *hub) count() int {
	n := 0
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.RLock()
		n += len(s.conns)
		s.mu.RUnlock()
	}
	return n
}
