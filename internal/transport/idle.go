package transport

import (
	"bufio"
	"time"

	"github.com/fasthttp/websocket"
)

// An idle client's memory. A client that sends nothing for minutes is
// the common case of a gateway, and what it holds then is almost all of
// its memory: its reader goroutine's stack and its read buffer.
//
// The stack: a goroutine's stack grows as its deepest call needs and
// shrinks only at a GC, by half, and only while less than a quarter of it
// is in use. The reader calls the guest on every message, which grows its
// stack to 8 KiB; and a reader blocked in the websocket package's
// NextReader waits under a dozen frames (NextReader, advanceFrame, bufio,
// the frame guard, net, the poller), more than fits in 2 KiB. So an idle
// reader kept a 4 KiB stack, 8 KiB once it had handled a message.
//
// So between messages the reader waits for the socket itself, a few frames
// under ReadLoop (waitShallow): a non-blocking read(2) through the
// socket's syscall.RawConn, and the poller when there is nothing to read.
// That wait fits in a fresh goroutine's 2 KiB; a GC cannot shrink a grown
// stack back to it (see the sweep below), so the sweep moves a reader that
// has waited a while, after a message, to a fresh goroutine. Pings and
// pongs would wake NextReader, which
// handles them inside and then waits deep for the next data frame; so the
// whole control frames that arrive while waiting are handled here
// (stripControl) and the reader waits shallow again. Anything else, or a
// control frame split across reads, goes to the websocket package as
// before, through the frame guard (its pending bytes).
//
// The read buffer: while the reader waits shallow its bufio.Reader is
// empty, and its buffer goes back to a pool shared by the server's
// clients (lendReadBuffer); it is taken again when bytes arrive.
//
// TLS clients keep the plain path (a *tls.Conn has its own buffers and no
// raw socket), as do clients whose first bytes came with the handshake.

// readBufferSize is the websocket reader's buffer when the Upgrader names
// none: large enough for a whole control frame (125 bytes of payload),
// and for a burst of small messages in one read(2).
const readBufferSize = 1024

// waitShallow waits until the socket has bytes other than whole pings
// and pongs, which it handles, and leaves those bytes (or the read's
// error) to the frame guard for NextReader. It returns at once when it
// cannot wait shallow: no raw socket, bytes already buffered, or the
// stream is inside a frame.
//
// It returns true when a sweep (SweepIdle) woke it to move to a fresh
// goroutine: the caller starts one to go on reading and returns.
func (c *Conn) waitShallow() (respawn bool) {
	if c.rr == nil || c.br.Buffered() > 0 || !c.guard.atBoundary() {
		return false
	}
	c.lendReadBuffer()
	defer c.takeReadBuffer()
	since := c.opt.sweeps.Load() // pings and pongs handled here do not end the wait
	for {
		if c.grown { // only a grown stack is worth a sweep's kick
			c.mu.Lock()
			c.parked, c.parkedSince = true, since
			c.mu.Unlock()
		}
		chunk, rest, err := c.rr.read()
		if c.grown && c.unpark() && err != nil {
			return true // the kick's deadline, not the client's
		}
		if err != nil {
			// The poller's error (a deadline, a closed socket) comes back
			// on NextReader's own read.
			return false
		}
		for c.rr.wake {
			// Written here, not in the poller's loop: the write may fail and
			// close the socket, and a Close waits for that loop to end.
			// stripControl stops after each ping, so each gets its pong.
			c.rr.wake = false
			c.control(websocket.PongMessage, c.ping)
			if len(rest) > 0 {
				rest = c.stripControl(rest)
			}
		}
		if len(rest) == 0 {
			c.rr.put(chunk)
		} else {
			c.guard.pending, c.guard.pendingBuf = rest, chunk
		}
		if c.rr.err != nil {
			// read(2)'s error, or io.EOF, after the bytes read: handed over,
			// so that NextReader sees what its own read would have.
			c.guard.pendingErr = c.rr.err
		}
		if len(rest) > 0 || c.rr.err != nil {
			return false
		}
	}
}

// stripControl handles the whole, well-formed pings and pongs at the front
// of b (a client's frames, at a frame boundary) and returns the bytes from
// the first frame it leaves to the websocket package. It takes only what
// the package would accept: final, no RSV bits, masked, at most 125 bytes;
// anything else is the package's (and the frame guard's) to refuse. It
// stops after a ping: its payload is kept in c.ping and c.rr.wake set, and
// waitShallow writes the pong (out of the poller's loop, where a failed
// write's Close would wait on the reader itself), then calls it again on
// what is left, so every ping gets its pong (RFC 6455 §5.5.2).
func (c *Conn) stripControl(b []byte) []byte {
	for len(b) >= 6 { // 2 header bytes and the 4-byte mask at least
		op := b[0]
		if op != 0x80|websocket.PingMessage && op != 0x80|websocket.PongMessage {
			return b
		}
		if b[1]&0x80 == 0 || b[1]&0x7f > 125 {
			return b
		}
		n := int(b[1] & 0x7f)
		if len(b) < 6+n {
			return b // split across reads: the package reads the rest
		}
		payload := b[6 : 6+n]
		for i := range payload {
			payload[i] ^= b[2+i%4]
		}
		b = b[6+n:]
		if op&0x0f == websocket.PingMessage {
			// Answered by waitShallow, which calls again for the rest.
			c.ping = append(c.ping[:0], payload...)
			c.rr.wake = true
			return b
		}
		c.touch() // the pong handler's work (WatchLiveness)
	}
	return b
}

// lendReadBuffer puts the empty read buffer in the server's pool while the
// reader waits; takeReadBuffer gets one back. The bufio.Reader the
// websocket package holds stays where it is; only its contents move, into
// and out of a holder that travels with the buffer.
func (c *Conn) lendReadBuffer() {
	h := c.spareBR
	if h == nil {
		h = new(bufio.Reader)
	}
	*h = *c.br
	h.Reset(nil) // the pooled buffer must not keep this client reachable
	*c.br = bufio.Reader{}
	c.spareBR = nil
	c.opt.readers.Put(h)
}

func (c *Conn) takeReadBuffer() {
	h, _ := c.opt.readers.Get().(*bufio.Reader)
	if h == nil || h.Size() != c.brSize {
		h = bufio.NewReaderSize(nil, c.brSize)
	}
	*c.br = *h
	c.br.Reset(c.guard)
	*h = bufio.Reader{}
	c.spareBR = h
}

// The sweep. A reader waiting shallow keeps the stack its last guest call
// grew (8 KiB), and a GC shrinks a stack to 2 KiB only if under 224 bytes
// of it are in use (the runtime counts its 800-byte no-split reserve as
// used), which no reader is. A fresh goroutine starts at 2 KiB. So a
// reader that has waited, with a grown stack, for a whole sweep period is
// woken by the sweep (its read deadline set in the past) and hands the
// connection to a fresh goroutine; the old stack is freed as it returns.
// A busy client is never kicked (it does not wait a whole period), and a
// reader pays nothing for this until it has handled a message: then one
// lock around each wait.

// unpark ends a wait the sweep may have kicked; it reports whether the
// reader is to move to a fresh goroutine, having cleared the kick's read
// deadline. An expired client's deadline stays in the past: its reader
// ends.
func (c *Conn) unpark() (respawn bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.parked = false
	if !c.kicked {
		return false
	}
	c.kicked = false
	if c.closing || c.expired { // a close in progress has its own deadline
		return false
	}
	_ = c.ws.SetReadDeadline(time.Time{})
	return true
}

// sweep is Hub.Sweep's visit of one client, at sweep number now: it ends
// the client if it has been silent for more than idle sweeps (0: no
// limit), or kicks its reader if the reader has waited, with a grown
// stack, since before the previous sweep.
func (c *Conn) sweep(now, idle uint64) (kicked, expired bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || c.expired {
		return false, false
	}
	if idle > 0 && now-c.lastSeen.Load() > idle {
		c.expired = true
		_ = c.ws.SetReadDeadline(time.Unix(1, 0))
		return false, true
	}
	if !c.parked || c.kicked || c.parkedSince+1 >= now {
		return false, false
	}
	c.kicked = true
	_ = c.ws.SetReadDeadline(time.Unix(1, 0))
	return true, false
}

// SweepResult is what one Hub.Sweep did.
type SweepResult struct {
	// Moved is how many readers were woken to move to a fresh goroutine,
	// each freeing the stack a guest call grew.
	Moved int
	// Expired is how many clients were ended for silence (IdleTimeout).
	Expired int
}

// Sweep visits every client once: it ends those silent for
// opt.IdleTimeout, and wakes the readers that have waited, with a stack a
// guest call grew, since the sweep before this one, to move to fresh
// goroutines. The server calls it every opt.SweepEvery.
func (h *Hub) Sweep(opt *Options) SweepResult {
	now := opt.sweeps.Add(1)
	var idle uint64
	if opt.IdleTimeout > 0 && opt.SweepEvery > 0 {
		// Silent for more than this many whole sweeps: at least
		// IdleTimeout, at most one sweep period more.
		idle = uint64((opt.IdleTimeout + opt.SweepEvery - 1) / opt.SweepEvery)
	}
	var r SweepResult
	h.Each(func(c *Conn) {
		kicked, expired := c.sweep(now, idle)
		if kicked {
			r.Moved++
		}
		if expired {
			r.Expired++
		}
	})
	return r
}
