package server

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"
)

// Client ids are 20 lower-case hex digits, like GatewayWorker's: 8 for the
// node that owns the connection and 12 for a per-node sequence. A cluster
// can route a command for a client to its node from the id alone. The
// sequence starts at a random point so ids are not reused across restarts.
const clientIDLen = 20

type idGenerator struct {
	node uint32
	seq  atomic.Uint64
}

func newIDGenerator(node uint32) *idGenerator {
	g := &idGenerator{node: node}
	var b [8]byte
	_, _ = rand.Read(b[:])
	g.seq.Store(binary.LittleEndian.Uint64(b[:]) >> 17) // leaves room before the 48-bit wrap
	return g
}

func (g *idGenerator) next() string {
	var raw [10]byte
	binary.BigEndian.PutUint32(raw[:4], g.node)
	seq := g.seq.Add(1)
	binary.BigEndian.PutUint16(raw[4:6], uint16(seq>>32))
	binary.BigEndian.PutUint32(raw[6:], uint32(seq))
	var out [clientIDLen]byte
	hex.Encode(out[:], raw[:])
	return string(out[:])
}

// NodeOf returns the node id encoded in a client id, and false if id is not
// a well-formed client id.
func NodeOf(id string) (uint32, bool) {
	if len(id) != clientIDLen {
		return 0, false
	}
	raw, err := hex.DecodeString(id)
	if err != nil {
		return 0, false
	}
	return binary.BigEndian.Uint32(raw[:4]), true
}
