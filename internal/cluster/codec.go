package cluster

import (
	"encoding/binary"
	"errors"
)

// What travels on the cluster's Redis channels. One message is one
// PUBLISH payload: a kind byte, the origin node (4 bytes, big-endian) and
// the kind's fields, each an unsigned varint or a varint-length-prefixed
// byte string. Binary and compact on purpose: a group message to 3,000
// members is one payload, decoded once per receiving node, and JSON
// would base64 every binary message.
const (
	kindGroups  = 'G' // deliver to local members of groups (channel g:<group>)
	kindUids    = 'U' // deliver to local clients of uids (channel u:<uid>)
	kindAll     = 'A' // deliver to every local client (channel all)
	kindClients = 'C' // deliver to listed local clients (channel n:<node>)
	kindClose   = 'K' // close a local client, after an optional final message
	kindDestroy = 'D' // drop a local client's connection at once
	kindUngroup = 'X' // a group was dissolved: forget it (channel g:<group>)
	kindRequest = 'Q' // a change to a client of the receiving node (RPC)
	kindReply   = 'R' // the answer to a kindRequest
)

// envelope is one decoded channel message. Which fields are set depends on
// kind.
type envelope struct {
	kind    byte
	origin  uint32
	binary  bool     // the message is a binary frame
	names   []string // groups, uids or client ids
	exclude []string
	data    []byte // the message, or a request's payload
	code    uint64 // close code, request op, or reply errno
	req     uint64 // request id (kindRequest, kindReply)
	final   bool   // kindClose: data is a final message to send first
}

var errMalformed = errors.New("malformed cluster message")

type encoder struct{ b []byte }

func (e *encoder) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) bytes(p []byte)   { e.uvarint(uint64(len(p))); e.b = append(e.b, p...) }
func (e *encoder) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) strs(ss []string) {
	e.uvarint(uint64(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}

func boolBit(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// encode returns m's payload.
func (m *envelope) encode() []byte {
	e := encoder{b: make([]byte, 0, 16+len(m.data))}
	e.b = append(e.b, m.kind)
	e.b = binary.BigEndian.AppendUint32(e.b, m.origin)
	e.uvarint(boolBit(m.binary) | boolBit(m.final)<<1)
	e.uvarint(m.code)
	e.uvarint(m.req)
	e.strs(m.names)
	e.strs(m.exclude)
	e.bytes(m.data)
	return e.b
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errMalformed
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err = errMalformed
		d.b = nil
		return nil
	}
	p := d.b[:n:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) strs() []string {
	n := d.uvarint()
	if n > uint64(len(d.b)) { // every string takes at least its length byte
		d.err = errMalformed
		d.b = nil
		return nil
	}
	out := make([]string, 0, n)
	for range n {
		out = append(out, string(d.bytes()))
	}
	return out
}

// decode parses a payload; data aliases p.
func decode(p []byte) (envelope, error) {
	if len(p) < 5 {
		return envelope{}, errMalformed
	}
	m := envelope{kind: p[0], origin: binary.BigEndian.Uint32(p[1:5])}
	d := decoder{b: p[5:]}
	flags := d.uvarint()
	m.binary, m.final = flags&1 != 0, flags&2 != 0
	m.code = d.uvarint()
	m.req = d.uvarint()
	m.names = d.strs()
	m.exclude = d.strs()
	m.data = d.bytes()
	if d.err != nil {
		return envelope{}, d.err
	}
	if len(d.b) != 0 {
		return envelope{}, errMalformed
	}
	return m, nil
}
