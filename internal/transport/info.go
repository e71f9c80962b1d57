package transport

import "time"

// Info is what `wasmgate connections` shows of one connection
// (GET /connections on the admin listener).
type Info struct {
	ID       string    `json:"client_id"`
	Module   string    `json:"module"`
	Remote   string    `json:"remote"`
	Since    time.Time `json:"connected_since"`
	MsgsIn   uint64    `json:"messages_in"`
	BytesIn  uint64    `json:"bytes_in"`
	MsgsOut  uint64    `json:"messages_out"`
	BytesOut uint64    `json:"bytes_out"`
	UID      string    `json:"uid,omitempty"`
	Groups   []string  `json:"groups,omitempty"`
}

// SetOrigin records the client's address and the connection time. Call it
// once, before ReadLoop starts.
func (c *Conn) SetOrigin(remote string, at time.Time) {
	c.remote, c.connectedAt = remote, at.UnixNano()
}

// Info returns the connection's identity and traffic so far (payload
// bytes and data messages: the messages read, and those written to the
// socket; control frames are not counted). UID and Groups are the caller's
// to fill in from the registry.
func (c *Conn) Info() Info {
	return Info{
		ID: c.id, Module: c.module, Remote: c.remote, Since: time.Unix(0, c.connectedAt),
		MsgsIn: c.msgsIn.Load(), BytesIn: c.bytesIn.Load(), MsgsOut: c.msgsOut.Load(), BytesOut: c.bytesOut.Load(),
	}
}

// Traffic is a connection's data messages and payload bytes each way.
type Traffic struct {
	MsgsIn   uint64 `json:"messages_in"`
	BytesIn  uint64 `json:"bytes_in"`
	MsgsOut  uint64 `json:"messages_out"`
	BytesOut uint64 `json:"bytes_out"`
}

// Add adds o to t.
func (t *Traffic) Add(o Traffic) {
	t.MsgsIn += o.MsgsIn
	t.BytesIn += o.BytesIn
	t.MsgsOut += o.MsgsOut
	t.BytesOut += o.BytesOut
}

// Traffic returns the connection's counters so far (as Info does, without
// the rest).
func (c *Conn) Traffic() Traffic {
	return Traffic{MsgsIn: c.msgsIn.Load(), BytesIn: c.bytesIn.Load(), MsgsOut: c.msgsOut.Load(), BytesOut: c.bytesOut.Load()}
}
